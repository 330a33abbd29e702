//! The CPU trainers against answers computed independently of them.

use eddy_operators::trainer::{
    build_trainer, CpuTrainer, Device, ModelKind, Solver, TrainError, TrainedModel, Trainer, TrainerConfig,
    TrainingData,
};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller: keeps the test free of a distributions crate.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n × d` standard-normal features; labels from `w_true`, `b_true` (Bernoulli for logistic,
/// Gaussian noise σ = 0.1 for linear).
fn problem(kind: ModelKind, n: usize, w_true: &[f64], b_true: f64, seed: u64) -> (Array2<f32>, Array1<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = w_true.len();
    let x = Array2::from_shape_fn((n, d), |_| normal(&mut rng) as f32);
    let y = Array1::from_shape_fn(n, |i| {
        let z: f64 = b_true + x.row(i).iter().zip(w_true).map(|(a, b)| f64::from(*a) * b).sum::<f64>();
        match kind {
            ModelKind::Logistic => f32::from(rng.random::<f64>() < 1.0 / (1.0 + (-z).exp())),
            ModelKind::Linear => (z + 0.1 * normal(&mut rng)) as f32,
        }
    });
    (x, y)
}

fn cfg() -> TrainerConfig {
    TrainerConfig { device: Device::Cpu, tolerance: 1e-8, ..TrainerConfig::default() }
}

fn train(kind: ModelKind, config: &TrainerConfig, x: &Array2<f32>, y: &Array1<f32>) -> TrainedModel {
    CpuTrainer::new(kind, config.clone()).train(&TrainingData::new(x.view(), y.view()), None).expect("trains")
}

fn mean_log_loss(x: &Array2<f32>, y: &Array1<f32>, w: &[f64], b: f64) -> f64 {
    let n = y.len() as f64;
    x.rows()
        .into_iter()
        .zip(y)
        .map(|(row, &yi)| {
            let z = b + row.iter().zip(w).map(|(a, c)| f64::from(*a) * c).sum::<f64>();
            z.max(0.0) + (-z.abs()).exp().ln_1p() - f64::from(yi) * z
        })
        .sum::<f64>()
        / n
}

/// Solves `A x = b` by Gaussian elimination with partial pivoting: an independent route to the
/// normal-equation solution (the trainer uses Cholesky).
#[allow(clippy::needless_range_loop)] // textbook index form
fn gauss(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let p = b.len();
    for col in 0..p {
        let piv = (col..p).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).expect("rows");
        a.swap(col, piv);
        b.swap(col, piv);
        for row in col + 1..p {
            let f = a[row][col] / a[col][col];
            for k in col..p {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        x[i] = (b[i] - (i + 1..p).map(|k| a[i][k] * x[k]).sum::<f64>()) / a[i][i];
    }
    x
}

#[test]
fn least_squares_equals_independent_normal_equations() {
    // Hand-sized problem: 7 rows, 2 features + intercept, with weights and an L2 penalty.
    let x = ndarray::arr2(&[
        [1.0f32, 2.0],
        [2.0, -1.0],
        [3.0, 0.5],
        [-1.0, 1.0],
        [0.0, 3.0],
        [2.5, 2.5],
        [-2.0, -0.5],
    ]);
    let y = ndarray::arr1(&[3.1f32, 0.9, 4.2, -0.3, 2.8, 5.5, -2.4]);
    let s = ndarray::arr1(&[1.0f32, 2.0, 0.5, 1.0, 3.0, 1.0, 0.25]);
    let l2 = 0.3;
    // Mean loss ½ Σ s(y − Xw − b)² / S + (l2/2)‖w‖²  ⇒  (X̃ᵀSX̃/S + l2·D) θ = X̃ᵀSy/S.
    let total: f64 = s.iter().map(|v| f64::from(*v)).sum();
    let mut a = vec![vec![0.0; 3]; 3];
    let mut rhs = vec![0.0; 3];
    for i in 0..7 {
        let row = [f64::from(x[[i, 0]]), f64::from(x[[i, 1]]), 1.0];
        for j in 0..3 {
            for k in 0..3 {
                a[j][k] += f64::from(s[i]) * row[j] * row[k] / total;
            }
            rhs[j] += f64::from(s[i]) * row[j] * f64::from(y[i]) / total;
        }
    }
    a[0][0] += l2;
    a[1][1] += l2;
    let want = gauss(a, rhs);

    let config = TrainerConfig { l2: l2 as f32, ..cfg() };
    let data = TrainingData { x: x.view(), y: y.view(), weights: Some(s.view()) };
    let m = CpuTrainer::new(ModelKind::Linear, config).train(&data, None).expect("trains");
    let got = [f64::from(m.weights[0]), f64::from(m.weights[1]), f64::from(m.bias)];
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "got {got:?}, want {want:?}");
    }
    assert!(m.converged && m.gradient_norm <= 1e-8, "{m:?}");
    assert!(m.iterations <= 2, "closed form plus at most one refinement: {m:?}");
}

#[test]
fn least_squares_recovers_generating_weights() {
    let w_true = [1.5, -2.0, 0.0, 0.75];
    let (x, y) = problem(ModelKind::Linear, 20_000, &w_true, 0.5, 7);
    let m = train(ModelKind::Linear, &cfg(), &x, &y);
    assert!(m.converged, "{m:?}");
    for (g, w) in m.weights.iter().zip(w_true) {
        assert!((f64::from(*g) - w).abs() < 0.01, "{m:?}");
    }
    assert!((m.bias - 0.5).abs() < 0.01);
    // ½·σ² with σ = 0.1.
    assert!((m.final_loss - 0.005).abs() < 0.0005, "{m:?}");
}

#[test]
fn logistic_reaches_tolerance_and_beats_the_generating_weights() {
    let w_true = [2.0, -1.0, 0.5, 0.0, 1.0];
    let (x, y) = problem(ModelKind::Logistic, 10_000, &w_true, -0.5, 11);
    let at_truth = mean_log_loss(&x, &y, &w_true, -0.5);
    let mut fits = Vec::new();
    for solver in [Solver::Newton, Solver::Lbfgs] {
        let config = TrainerConfig { solver, ..cfg() };
        let m = train(ModelKind::Logistic, &config, &x, &y);
        assert!(m.converged && m.gradient_norm <= 1e-8, "{solver:?}: {m:?}");
        assert!(m.final_loss <= at_truth, "{solver:?}: {} > {at_truth}", m.final_loss);
        // Independent check of the reported loss.
        let w: Vec<f64> = m.weights.iter().map(|v| f64::from(*v)).collect();
        assert!((mean_log_loss(&x, &y, &w, f64::from(m.bias)) - m.final_loss).abs() < 1e-6);
        fits.push(m);
    }
    // Newton and L-BFGS reach the same optimum.
    for (a, b) in fits[0].weights.iter().zip(&fits[1].weights) {
        assert!((a - b).abs() < 1e-4, "{:?} vs {:?}", fits[0].weights, fits[1].weights);
    }
    assert!(fits[0].iterations < fits[1].iterations, "Newton should need fewer iterations");
}

#[test]
fn l2_shrinks_weights() {
    for kind in [ModelKind::Logistic, ModelKind::Linear] {
        let (x, y) = problem(kind, 5_000, &[1.0, -1.0, 2.0], 0.0, 3);
        let norms: Vec<f64> = [0.0, 0.1, 1.0]
            .iter()
            .map(|&l2| {
                let m = train(kind, &TrainerConfig { l2, ..cfg() }, &x, &y);
                assert!(m.converged, "{kind:?} l2={l2}: {m:?}");
                m.weights.iter().map(|w| f64::from(*w).powi(2)).sum::<f64>().sqrt()
            })
            .collect();
        assert!(norms[0] > norms[1] && norms[1] > norms[2], "{kind:?}: {norms:?}");
    }
}

#[test]
fn l1_zeroes_irrelevant_features() {
    let w_true = [1.5, -1.0, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0];
    for kind in [ModelKind::Logistic, ModelKind::Linear] {
        let (x, y) = problem(kind, 20_000, &w_true, 0.2, 5);
        let config = TrainerConfig { l1: 0.03, ..cfg() };
        let m = train(kind, &config, &x, &y);
        assert!(m.converged, "{kind:?}: {m:?}");
        assert!(m.weights[..3].iter().all(|w| w.abs() > 0.3), "{kind:?}: {:?}", m.weights);
        assert!(m.weights[3..].iter().all(|w| *w == 0.0), "{kind:?}: {:?}", m.weights);
        // Without L1 the irrelevant weights are small but not exactly zero.
        let dense = train(kind, &cfg(), &x, &y);
        assert!(dense.weights[3..].iter().all(|w| *w != 0.0), "{kind:?}: {:?}", dense.weights);
    }
}

#[test]
fn warm_start_from_the_optimum_converges_immediately() {
    for (kind, l1) in [(ModelKind::Logistic, 0.0), (ModelKind::Logistic, 0.01), (ModelKind::Linear, 0.0)] {
        let (x, y) = problem(kind, 5_000, &[1.0, -0.5, 0.25, 2.0], 0.3, 9);
        let config = TrainerConfig { l1, l2: 0.01, tolerance: 1e-6, ..cfg() };
        let cold = train(kind, &config, &x, &y);
        assert!(cold.converged, "{kind:?}: {cold:?}");
        let warm_cfg = TrainerConfig { warm_start: true, ..config };
        let data = TrainingData::new(x.view(), y.view());
        let warm =
            CpuTrainer::new(kind, warm_cfg).train(&data, Some((&cold.weights, cold.bias))).expect("trains");
        assert!(warm.converged && warm.iterations <= 2, "{kind:?} l1={l1}: {warm:?}");
        assert!((warm.final_loss - cold.final_loss).abs() < 1e-9);
    }
}

#[test]
fn converged_flag_is_honest() {
    let (x, y) = problem(ModelKind::Logistic, 5_000, &[3.0, -2.0, 1.0], 0.0, 13);
    for solver in [Solver::Newton, Solver::Lbfgs] {
        let config = TrainerConfig { solver, max_iterations: 1, tolerance: 1e-10, ..cfg() };
        let m = train(ModelKind::Logistic, &config, &x, &y);
        assert_eq!(m.iterations, 1);
        assert!(!m.converged && m.gradient_norm > 1e-10, "{solver:?}: {m:?}");
    }
    // Separable data without L2 has no finite optimum (the gradient only decays like e^−‖w‖):
    // the fit must stop at the cap and say so.
    let x = ndarray::arr2(&[[-2.0f32], [-1.0], [1.0], [2.0]]);
    let y = ndarray::arr1(&[0.0f32, 0.0, 1.0, 1.0]);
    let config = TrainerConfig { max_iterations: 30, tolerance: 1e-30, ..cfg() };
    let m = train(ModelKind::Logistic, &config, &x, &y);
    assert!(!m.converged && m.iterations == 30 && m.gradient_norm > 1e-30, "{m:?}");
    assert!(m.weights[0] > 5.0);
}

#[test]
fn sample_weights_equal_duplicated_rows() {
    let (x, y) = problem(ModelKind::Logistic, 500, &[1.0, -1.0], 0.0, 17);
    let s = Array1::from_shape_fn(500, |i| (i % 3) as f32);
    let weighted = CpuTrainer::new(ModelKind::Logistic, cfg())
        .train(&TrainingData { x: x.view(), y: y.view(), weights: Some(s.view()) }, None)
        .expect("trains");
    let rows: Vec<usize> = (0..500).flat_map(|i| std::iter::repeat_n(i, i % 3)).collect();
    let xd = x.select(ndarray::Axis(0), &rows);
    let yd = y.select(ndarray::Axis(0), &rows);
    let dup = train(ModelKind::Logistic, &cfg(), &xd, &yd);
    for (a, b) in weighted.weights.iter().zip(&dup.weights) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn any_memory_layout_gives_the_same_fit() {
    let (x, y) = problem(ModelKind::Linear, 1_000, &[1.0, 2.0, 3.0], 0.0, 19);
    let column_major = x.t().as_standard_layout().into_owned();
    let a = train(ModelKind::Linear, &cfg(), &x, &y);
    let data = TrainingData::new(column_major.t(), y.view());
    let b = CpuTrainer::new(ModelKind::Linear, cfg()).train(&data, None).expect("trains");
    assert_eq!(a.weights, b.weights);
}

#[test]
fn no_intercept_means_zero_bias() {
    let (x, y) = problem(ModelKind::Linear, 1_000, &[1.0, 2.0], 3.0, 23);
    let m = train(ModelKind::Linear, &TrainerConfig { fit_intercept: false, ..cfg() }, &x, &y);
    assert_eq!(m.bias, 0.0);
    assert!(m.converged);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let t = CpuTrainer::new(ModelKind::Logistic, cfg());
    let x = Array2::<f32>::zeros((0, 3));
    let y = Array1::<f32>::zeros(0);
    assert!(matches!(t.train(&TrainingData::new(x.view(), y.view()), None), Err(TrainError::EmptyData(_))));

    let x = Array2::<f32>::zeros((4, 2));
    let y3 = Array1::<f32>::zeros(3);
    assert!(matches!(
        t.train(&TrainingData::new(x.view(), y3.view()), None),
        Err(TrainError::LengthMismatch { what: "y", expected: 4, got: 3 })
    ));

    let mut xn = Array2::<f32>::zeros((4, 2));
    xn[[2, 1]] = f32::NAN;
    let y = Array1::<f32>::zeros(4);
    assert!(matches!(
        t.train(&TrainingData::new(xn.view(), y.view()), None),
        Err(TrainError::NonFinite { what: "x", index: 5 })
    ));

    let yb = ndarray::arr1(&[0.0f32, 1.0, 2.0, 0.0]);
    assert!(matches!(
        t.train(&TrainingData::new(x.view(), yb.view()), None),
        Err(TrainError::InvalidData(_))
    ));

    let s = Array1::<f32>::zeros(4);
    let data = TrainingData { x: x.view(), y: y.view(), weights: Some(s.view()) };
    assert!(matches!(t.train(&data, None), Err(TrainError::InvalidData(_))));

    let warm = CpuTrainer::new(ModelKind::Logistic, TrainerConfig { warm_start: true, ..cfg() });
    assert!(matches!(
        warm.train(&TrainingData::new(x.view(), y.view()), Some((&[1.0], 0.0))),
        Err(TrainError::LengthMismatch { what: "init weights", .. })
    ));

    let bad = TrainerConfig { tolerance: f64::NAN, ..cfg() };
    assert!(matches!(build_trainer(ModelKind::Linear, &bad), Err(TrainError::InvalidConfig(_))));
}
