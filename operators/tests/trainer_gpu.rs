//! Device selection everywhere, and CPU/CUDA agreement where a CUDA device is usable.
//!
//! The agreement tests run only when `cuda_probe()` finds a usable device; otherwise each prints
//! one line, `skipped: no CUDA device (<reason>)`, and passes.

use eddy_operators::trainer::{
    build_trainer, cuda_probe, CpuTrainer, Device, GpuTrainer, ModelKind, Solver, TrainError, TrainedModel,
    Trainer, TrainerConfig, TrainingData,
};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn cpu_is_cpu() {
    let config = TrainerConfig { device: Device::Cpu, ..TrainerConfig::default() };
    let (trainer, choice) = build_trainer(ModelKind::Logistic, &config).expect("builds");
    assert_eq!(choice.device, "cpu");
    assert!(trainer.device().starts_with("cpu"));
}

#[test]
fn auto_falls_back_to_cpu_with_the_reason() {
    let (trainer, choice) =
        build_trainer(ModelKind::Logistic, &TrainerConfig::default()).expect("auto never fails");
    match cuda_probe() {
        Ok(name) => {
            assert_eq!(choice.device, "cuda");
            assert!(choice.reason.contains(&name), "{choice:?}");
        }
        Err(reason) => {
            let reason = reason.to_string();
            assert_eq!(choice.device, "cpu");
            assert!(choice.reason.contains(&reason), "{choice:?}");
            assert!(trainer.device().starts_with("cpu"));
            // On a machine without the driver library (CI, this dev box) the reason says so.
            if reason.starts_with("no CUDA driver") {
                assert!(choice.reason.starts_with("no CUDA driver found"), "{choice:?}");
            }
        }
    }
}

#[test]
fn cuda_fails_clearly_without_a_device() {
    let config = TrainerConfig { device: Device::Cuda, ..TrainerConfig::default() };
    match (build_trainer(ModelKind::Linear, &config), cuda_probe()) {
        (Ok((_, choice)), Ok(_)) => assert_eq!(choice.device, "cuda"),
        (Err(TrainError::NoCuda(why)), Err(reason)) => {
            assert_eq!(why, reason);
            let msg = TrainError::NoCuda(why).to_string();
            let reason = reason.to_string();
            assert!(msg.contains("device = \"cuda\"") && msg.contains(&reason), "{msg}");
        }
        (got, probe) => {
            panic!("build_trainer and cuda_probe disagree: {:?} / {probe:?}", got.map(|(_, c)| c))
        }
    }
}

fn seeded(kind: ModelKind, n: usize, d: usize, seed: u64) -> (Array2<f32>, Array1<f32>, Array1<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<f64> =
        (0..d).map(|j| if j % 3 == 2 { 0.0 } else { rng.random::<f64>() * 2.0 - 1.0 }).collect();
    let x = Array2::from_shape_fn((n, d), |_| (rng.random::<f64>() * 2.0 - 1.0) as f32);
    let y = Array1::from_shape_fn(n, |i| {
        let z: f64 = 0.3 + x.row(i).iter().zip(&w).map(|(a, b)| f64::from(*a) * b).sum::<f64>();
        match kind {
            ModelKind::Logistic => f32::from(rng.random::<f64>() < 1.0 / (1.0 + (-z).exp())),
            ModelKind::Linear => (z + 0.1 * (rng.random::<f64>() - 0.5)) as f32,
        }
    });
    let s = Array1::from_shape_fn(n, |i| 0.5 + (i % 4) as f32 * 0.5);
    (x, y, s)
}

fn assert_agree(label: &str, cpu: &TrainedModel, gpu: &TrainedModel) {
    let scale = cpu.weights.iter().fold(0.0_f32, |m, w| m.max(w.abs())).max(1e-3);
    for (j, (a, b)) in cpu.weights.iter().zip(&gpu.weights).enumerate() {
        assert!((a - b).abs() <= 1e-3 * scale, "{label}: weight {j}: cpu {a} gpu {b}");
    }
    assert!((cpu.bias - gpu.bias).abs() <= 1e-3 * scale.max(cpu.bias.abs()), "{label}: bias");
    assert!(
        (cpu.final_loss - gpu.final_loss).abs() <= 1e-5,
        "{label}: loss {} vs {}",
        cpu.final_loss,
        gpu.final_loss
    );
}

#[test]
fn gpu_and_cpu_agree() {
    let name = match cuda_probe() {
        Ok(name) => name,
        Err(reason) => {
            println!("skipped: no CUDA device ({reason})");
            return;
        }
    };
    let cases: [(ModelKind, f32, f32, Solver); 5] = [
        (ModelKind::Linear, 0.01, 0.0, Solver::Auto),
        (ModelKind::Linear, 0.0, 0.01, Solver::Auto),
        (ModelKind::Logistic, 0.01, 0.0, Solver::Auto),
        (ModelKind::Logistic, 0.01, 0.0, Solver::Newton),
        (ModelKind::Logistic, 0.001, 0.005, Solver::Auto),
    ];
    for (kind, l2, l1, solver) in cases {
        let (x, y, s) = seeded(kind, 200_000, 24, 42);
        for weights in [None, Some(s.view())] {
            let data = TrainingData { x: x.view(), y: y.view(), weights };
            let config = TrainerConfig { l2, l1, solver, tolerance: 1e-5, ..TrainerConfig::default() };
            let cpu = CpuTrainer::new(kind, config.clone()).train(&data, None).expect("cpu trains");
            let gpu = GpuTrainer::new(kind, config)
                .expect("probe said usable")
                .train(&data, None)
                .expect("gpu trains");
            let label = format!("{kind:?} l2={l2} l1={l1} {solver:?} weighted={}", weights.is_some());
            println!("{label}: cpu {} it, gpu {} it on {name}", cpu.iterations, gpu.iterations);
            assert!(cpu.converged, "{label}: cpu {cpu:?}");
            assert!(gpu.converged, "{label}: gpu {gpu:?}");
            assert_agree(&label, &cpu, &gpu);
        }
    }
}

#[test]
fn gpu_reaches_the_least_squares_optimum() {
    if let Err(reason) = cuda_probe() {
        println!("skipped: no CUDA device ({reason})");
        return;
    }
    // y is an exact linear function of x: the optimum is the generating weights, loss 0.
    let x = Array2::from_shape_fn((10_000, 4), |(i, j)| ((i * (j + 3)) % 17) as f32 / 17.0 - 0.5);
    let y = Array1::from_shape_fn(10_000, |i| {
        1.0 + x[[i, 0]] - 2.0 * x[[i, 1]] + 0.5 * x[[i, 2]] + 3.0 * x[[i, 3]]
    });
    let config = TrainerConfig { device: Device::Cuda, ..TrainerConfig::default() };
    let (t, _) = build_trainer(ModelKind::Linear, &config).expect("cuda usable");
    let m = t.train(&TrainingData::new(x.view(), y.view()), None).expect("trains");
    for (g, w) in m.weights.iter().zip([1.0, -2.0, 0.5, 3.0]) {
        assert!((g - w).abs() < 1e-3, "{m:?}");
    }
    assert!((m.bias - 1.0).abs() < 1e-3 && m.final_loss < 1e-8, "{m:?}");
}
