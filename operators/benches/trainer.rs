//! Full-batch retrain time.
//!
//! * `trainer/cpu/1Mx32/*`: 1M × 32 dense logistic (Newton and L-BFGS) and linear, criterion-timed.
//! * `trainer/cuda/1Mx32/*`: the same on CUDA; skipped with one line when no device is usable.
//! * `N×100` logistic (N = 2M, or `EDDY_BENCH_LARGE_ROWS`, e.g. 10000000 for the issue's
//!   10M × 100 = 4 GB of f32): one timed fit per solver, printed. Set `EDDY_BENCH_SKIP_LARGE=1`
//!   to skip it.
//!
//! Run: `cargo bench -p eddy-operators --bench trainer`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use eddy_operators::trainer::{
    cuda_probe, CpuTrainer, GpuTrainer, ModelKind, Solver, Trainer, TrainerConfig, TrainingData,
};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn problem(kind: ModelKind, n: usize, d: usize, seed: u64) -> (Array2<f32>, Array1<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<f32> = (0..d).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let x = Array2::from_shape_fn((n, d), |_| rng.random::<f32>() * 2.0 - 1.0);
    let y = Array1::from_shape_fn(n, |i| {
        let z: f32 = x.row(i).dot(&ndarray::ArrayView1::from(&w[..]));
        match kind {
            ModelKind::Logistic => f32::from(rng.random::<f32>() < 1.0 / (1.0 + (-z).exp())),
            ModelKind::Linear => z + 0.1 * (rng.random::<f32>() - 0.5),
        }
    });
    (x, y)
}

fn config(solver: Solver) -> TrainerConfig {
    TrainerConfig { l2: 1e-4, tolerance: 1e-6, solver, ..TrainerConfig::default() }
}

fn bench_1m(c: &mut Criterion) {
    let (xl, yl) = problem(ModelKind::Logistic, 1_000_000, 32, 1);
    let (xr, yr) = problem(ModelKind::Linear, 1_000_000, 32, 2);
    let logistic = TrainingData::new(xl.view(), yl.view());
    let linear = TrainingData::new(xr.view(), yr.view());
    let mut group = c.benchmark_group("trainer/cpu/1Mx32");
    group.sample_size(10);
    for (name, kind, solver, data) in [
        ("logistic_newton", ModelKind::Logistic, Solver::Newton, &logistic),
        ("logistic_lbfgs", ModelKind::Logistic, Solver::Lbfgs, &logistic),
        ("linear_normal_equations", ModelKind::Linear, Solver::Auto, &linear),
    ] {
        let t = CpuTrainer::new(kind, config(solver));
        if let Ok(m) = t.train(data, None) {
            eprintln!(
                "{name}: {} iterations, converged {}, ‖∇‖∞ {:.2e}",
                m.iterations, m.converged, m.gradient_norm
            );
        }
        group.bench_function(name, |b| b.iter(|| black_box(t.train(data, None))));
    }
    group.finish();

    let mut group = c.benchmark_group("trainer/cuda/1Mx32");
    group.sample_size(10);
    match cuda_probe() {
        Err(reason) => eprintln!("trainer/cuda: skipped: no CUDA device ({reason})"),
        Ok(_) => {
            for (name, kind, data) in [
                ("logistic_lbfgs", ModelKind::Logistic, &logistic),
                ("linear_gram", ModelKind::Linear, &linear),
            ] {
                let Ok(t) = GpuTrainer::new(kind, config(Solver::Auto)) else { continue };
                group.bench_function(name, |b| b.iter(|| black_box(t.train(data, None))));
            }
        }
    }
    group.finish();
}

fn large_once(_c: &mut Criterion) {
    if std::env::var_os("EDDY_BENCH_SKIP_LARGE").is_some() {
        return;
    }
    let n: usize =
        std::env::var("EDDY_BENCH_LARGE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000_000);
    let d = 100;
    let (x, y) = problem(ModelKind::Logistic, n, d, 3);
    let data = TrainingData::new(x.view(), y.view());
    for solver in [Solver::Lbfgs, Solver::Newton] {
        let t = CpuTrainer::new(ModelKind::Logistic, config(solver));
        let started = Instant::now();
        let m = t.train(&data, None);
        let secs = started.elapsed().as_secs_f64();
        if let Ok(m) = m {
            eprintln!(
                "trainer/cpu/{n}x{d}/logistic_{solver:?}: {secs:.2} s once ({} iterations, converged {})",
                m.iterations, m.converged
            );
        }
    }
}

criterion_group!(benches, bench_1m, large_once);
criterion_main!(benches);
