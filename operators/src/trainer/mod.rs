//! Full-batch trainers: retrain a challenger from a window of encoded examples.
//!
//! The online learners in [`crate::learner`] follow the stream one record at a time; a trainer
//! instead fits the *same* model kinds (binary logistic regression, linear regression) to a whole
//! batch, to a stated tolerance, so the engine can periodically compare the drifting champion
//! with the exact optimum on recent data.
//!
//! # What is minimised
//!
//! With sample weights `s_i` (all 1 when absent) and `S = Σ s_i`, the objective is
//!
//! ```text
//! f(w, b) = (1/S) Σ s_i ℓ(x_i·w + b, y_i) + (l2/2)‖w‖² + l1‖w‖₁
//! ```
//!
//! with `ℓ` the log loss (labels in `[0, 1]`) for [`ModelKind::Logistic`] and `½(z − y)²` for
//! [`ModelKind::Linear`]. The intercept is never penalised. Using the *mean* loss keeps `l2`/`l1`
//! and the tolerance meaningful whatever the batch size.
//!
//! # Solvers
//!
//! | kind     | penalty | CPU                                        | CUDA                          |
//! |----------|---------|--------------------------------------------|-------------------------------|
//! | linear   | L2      | normal equations, Cholesky                 | Gram on device, host Cholesky |
//! | logistic | L2      | Newton/IRLS (Cholesky) when `d ≤ newton_max_features`, else L-BFGS | L-BFGS (Newton if `solver = "newton"`) |
//! | either   | L1 > 0  | OWL-QN (L-BFGS for the orthant-wise L1 objective), warm from the L2 fit | OWL-QN |
//!
//! # Stopping rule and `converged`
//!
//! A fit *converged* when the infinity norm of the (pseudo-)gradient of `f` is at most
//! [`TrainerConfig::tolerance`]. The pseudo-gradient is the minimum-norm subgradient, so it is
//! zero exactly at the L1 optimum. The flag is computed from the final gradient, never assumed:
//! a fit that stops at `max_iterations`, or whose line search can no longer decrease `f` (f32
//! data limits how small the gradient can get), reports `converged = false` together with the
//! [`TrainedModel::gradient_norm`] it did reach.
//!
//! # Devices
//!
//! `device = "auto" | "cpu" | "cuda"`. CUDA is *discovered, not required*: the driver, NVRTC and
//! cuBLAS are loaded at run time (cudarc `dynamic-loading`), so the binary builds and runs where
//! there is no CUDA at all. [`build_trainer`] returns a [`DeviceChoice`] saying which device it
//! picked and why, and logs it.
//!
//! # Features
//!
//! The trainer takes a dense `f32` matrix. The engine's encoded rows are a dense numeric block
//! plus hashed (sparse) categoricals: it should pass only the columns actually used in the window
//! and map the returned weights back to hashed slots itself. Keeping the input dense keeps the
//! CUDA path a plain cuBLAS matrix and the CPU loops branch-free.

mod cpu;
mod gpu;
mod linalg;
mod optim;

use std::fmt;

pub use eddy_scorer::model::ModelKind;
use ndarray::{ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

pub use self::cpu::CpuTrainer;
pub use self::gpu::{cuda_probe, CudaUnavailable, GpuTrainer};

/// A batch of examples to fit: rows are examples, columns are features.
#[derive(Debug, Clone, Copy)]
pub struct TrainingData<'a> {
    /// Feature matrix, `n × d`. Any memory layout is accepted; non-row-major input is copied once.
    pub x: ArrayView2<'a, f32>,
    /// Labels, length `n`: in `[0, 1]` for logistic regression (soft labels allowed).
    pub y: ArrayView1<'a, f32>,
    /// Optional non-negative sample weights, length `n`. At least one must be positive.
    pub weights: Option<ArrayView1<'a, f32>>,
}

impl<'a> TrainingData<'a> {
    /// Unweighted data.
    pub fn new(x: ArrayView2<'a, f32>, y: ArrayView1<'a, f32>) -> Self {
        TrainingData { x, y, weights: None }
    }

    /// Checks shapes and values; every trainer calls this before touching the data, so bad input
    /// is an error, never a panic or a NaN model.
    pub fn validate(&self, kind: ModelKind) -> Result<(), TrainError> {
        let (n, d) = self.x.dim();
        if n == 0 {
            return Err(TrainError::EmptyData("no examples".into()));
        }
        if d == 0 {
            return Err(TrainError::EmptyData("no feature columns".into()));
        }
        if self.y.len() != n {
            return Err(TrainError::LengthMismatch { what: "y", expected: n, got: self.y.len() });
        }
        if let Some((i, _)) = self.x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(TrainError::NonFinite { what: "x", index: i.0 * d + i.1 });
        }
        if let Some(i) = self.y.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite { what: "y", index: i });
        }
        if kind == ModelKind::Logistic {
            if let Some(i) = self.y.iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(TrainError::InvalidData(format!(
                    "logistic labels must lie in [0, 1]; y[{i}] = {}",
                    self.y[i]
                )));
            }
        }
        if let Some(w) = &self.weights {
            if w.len() != n {
                return Err(TrainError::LengthMismatch { what: "weights", expected: n, got: w.len() });
            }
            if let Some(i) = w.iter().position(|v| !v.is_finite()) {
                return Err(TrainError::NonFinite { what: "weights", index: i });
            }
            if let Some(i) = w.iter().position(|v| *v < 0.0) {
                return Err(TrainError::InvalidData(format!("weights[{i}] = {} is negative", w[i])));
            }
            if !w.iter().any(|v| *v > 0.0) {
                return Err(TrainError::InvalidData("all sample weights are zero".into()));
            }
        }
        Ok(())
    }
}

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA when a device is usable, otherwise the CPU; the choice and its reason are logged.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// Always CUDA; building the trainer fails with [`TrainError::NoCuda`] when none is usable.
    Cuda,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// Which optimiser fits logistic regression without L1 (linear regression is always solved in
/// closed form, and any L1 penalty always uses OWL-QN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Newton/IRLS on the CPU when `d ≤ newton_max_features`, L-BFGS otherwise and on CUDA.
    #[default]
    Auto,
    /// Newton/IRLS. On CUDA the Hessian is an `sgemm` over a row-scaled copy of X, an extra
    /// `n × d` of device memory, which is why `auto` does not pick it there.
    Newton,
    /// L-BFGS with a strong-Wolfe line search.
    Lbfgs,
}

/// Trainer settings, as they appear in the pipeline config (`[trainer]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainerConfig {
    /// `"auto"`, `"cpu"` or `"cuda"`.
    pub device: Device,
    /// L2 penalty strength on the weights (not the intercept), on the mean-loss scale.
    pub l2: f32,
    /// L1 penalty strength on the weights (not the intercept), on the mean-loss scale.
    pub l1: f32,
    /// Stop when ‖∇f‖∞ (pseudo-gradient with L1) is at most this.
    pub tolerance: f64,
    /// Upper bound on optimiser iterations (Newton steps, L-BFGS/OWL-QN iterations, or
    /// iterative-refinement steps for least squares).
    pub max_iterations: usize,
    /// Start from the champion's weights when the caller passes them to [`Trainer::train`].
    pub warm_start: bool,
    /// Fit an unpenalised intercept.
    pub fit_intercept: bool,
    /// Optimiser for L2-only logistic regression.
    pub solver: Solver,
    /// Largest feature count for which `solver = "auto"` uses Newton on the CPU. Newton costs
    /// `n·d²` per step against L-BFGS's `n·d` per evaluation, so it wins only for narrow or
    /// badly conditioned data: on 1M × 32 well-conditioned rows (2 cores) Newton took 0.62 s in
    /// 4 steps and L-BFGS 0.43 s in 9 iterations, hence the default of 16.
    pub newton_max_features: usize,
    /// L-BFGS history length.
    pub lbfgs_memory: usize,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            device: Device::Auto,
            l2: 0.0,
            l1: 0.0,
            tolerance: 1e-5,
            max_iterations: 500,
            warm_start: false,
            fit_intercept: true,
            solver: Solver::Auto,
            newton_max_features: 16,
            lbfgs_memory: 10,
        }
    }
}

impl TrainerConfig {
    /// Rejects settings no trainer can honour.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(TrainError::InvalidConfig(format!("l2 must be finite and ≥ 0, got {}", self.l2)));
        }
        if !(self.l1.is_finite() && self.l1 >= 0.0) {
            return Err(TrainError::InvalidConfig(format!("l1 must be finite and ≥ 0, got {}", self.l1)));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(TrainError::InvalidConfig(format!(
                "tolerance must be finite and > 0, got {}",
                self.tolerance
            )));
        }
        if self.max_iterations == 0 {
            return Err(TrainError::InvalidConfig("max_iterations must be ≥ 1".into()));
        }
        if self.lbfgs_memory == 0 {
            return Err(TrainError::InvalidConfig("lbfgs_memory must be ≥ 1".into()));
        }
        Ok(())
    }
}

/// The result of a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedModel {
    /// One weight per column of [`TrainingData::x`].
    pub weights: Vec<f32>,
    /// Intercept (0 when `fit_intercept = false`).
    pub bias: f32,
    /// Final value of the full objective `f` (mean loss plus penalties).
    pub final_loss: f64,
    /// ‖∇f‖∞ at the returned weights (pseudo-gradient with L1).
    pub gradient_norm: f64,
    /// Optimiser iterations taken (0 when the start point already met the tolerance).
    pub iterations: usize,
    /// `gradient_norm ≤ tolerance`.
    pub converged: bool,
    /// Where it ran, e.g. `cpu (2 threads)` or `cuda:0 (NVIDIA H100)`.
    pub device: String,
    /// Wall-clock seconds for the fit, including upload to the device.
    pub seconds: f64,
}

/// Why a fit could not be done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// No rows or no columns.
    #[error("empty training data: {0}")]
    EmptyData(String),
    /// A vector's length does not match the number of rows or columns.
    #[error("length mismatch for {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// The length it should have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// A NaN or infinity in the input.
    #[error("non-finite value in {what} at flat index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Row-major flat index of the first bad value.
        index: usize,
    },
    /// Values that are finite but unusable (labels outside [0, 1], negative weights, …).
    #[error("invalid training data: {0}")]
    InvalidData(String),
    /// A config value no trainer can honour.
    #[error("invalid trainer config: {0}")]
    InvalidConfig(String),
    /// `device = "cuda"` was asked for and no CUDA device is usable.
    #[error("device = \"cuda\" but no CUDA device is usable: {0}")]
    NoCuda(CudaUnavailable),
    /// A CUDA call failed after the device was chosen.
    #[error("CUDA error: {0}")]
    Cuda(String),
    /// The objective or the weights became non-finite. (Separable logistic data without L2,
    /// whose optimum is at infinity, is *not* this: it stops at `max_iterations`, unconverged.)
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// A full-batch trainer for one model kind on one device.
pub trait Trainer: Send {
    /// Fits the batch. `init` is the champion's `(weights, bias)`; it is used only when
    /// [`TrainerConfig::warm_start`] is set and must have one weight per column.
    fn train(&self, data: &TrainingData<'_>, init: Option<(&[f32], f32)>)
        -> Result<TrainedModel, TrainError>;

    /// Human-readable device, e.g. `cpu (2 threads)`.
    fn device(&self) -> String;
}

/// Which device [`build_trainer`] picked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChoice {
    /// `"cpu"` or `"cuda"`.
    pub device: String,
    /// One sentence, e.g. `no CUDA driver found (libcuda could not be loaded); using the CPU`.
    pub reason: String,
}

/// Builds the trainer for `kind` on the device `config.device` resolves to.
///
/// `auto` probes CUDA (driver library, a device, a context, NVRTC and cuBLAS, and compiles the
/// kernel) and falls back to the CPU with the probe's reason; `cuda` turns the same reason into
/// [`TrainError::NoCuda`]. The choice is logged at `info`.
pub fn build_trainer(
    kind: ModelKind,
    config: &TrainerConfig,
) -> Result<(Box<dyn Trainer>, DeviceChoice), TrainError> {
    config.validate()?;
    let (trainer, choice): (Box<dyn Trainer>, DeviceChoice) = match config.device {
        Device::Cpu => (
            Box::new(CpuTrainer::new(kind, config.clone())),
            DeviceChoice { device: "cpu".into(), reason: "device = \"cpu\" in the config".into() },
        ),
        Device::Cuda => {
            let gpu = GpuTrainer::new(kind, config.clone()).map_err(TrainError::NoCuda)?;
            let reason = format!("device = \"cuda\" in the config; using {}", gpu.device());
            (Box::new(gpu), DeviceChoice { device: "cuda".into(), reason })
        }
        Device::Auto => match GpuTrainer::new(kind, config.clone()) {
            Ok(gpu) => {
                let reason = format!("device = \"auto\" and a CUDA device is usable: {}", gpu.device());
                (Box::new(gpu), DeviceChoice { device: "cuda".into(), reason })
            }
            Err(why) => (
                Box::new(CpuTrainer::new(kind, config.clone())),
                DeviceChoice { device: "cpu".into(), reason: format!("{why}; using the CPU") },
            ),
        },
    };
    tracing::info!(kind = kind.as_str(), device = %choice.device, reason = %choice.reason, "trainer device chosen");
    Ok((trainer, choice))
}

/// Resolves the starting point shared by both devices: zeros, or the champion when warm-starting.
fn initial_params(
    config: &TrainerConfig,
    d: usize,
    init: Option<(&[f32], f32)>,
) -> Result<Vec<f64>, TrainError> {
    let p = d + usize::from(config.fit_intercept);
    let mut theta = vec![0.0; p];
    if let (true, Some((w, b))) = (config.warm_start, init) {
        if w.len() != d {
            return Err(TrainError::LengthMismatch { what: "init weights", expected: d, got: w.len() });
        }
        if let Some(i) = w.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite { what: "init weights", index: i });
        }
        if !b.is_finite() {
            return Err(TrainError::NonFinite { what: "init bias", index: 0 });
        }
        for (t, v) in theta.iter_mut().zip(w) {
            *t = f64::from(*v);
        }
        if config.fit_intercept {
            theta[d] = f64::from(b);
        }
    }
    Ok(theta)
}

/// Runs the solver the kind and config call for; shared by both devices so they take the same
/// path through the same host-side optimiser code. `use_newton` is the device's choice for
/// L2-only logistic regression (see [`Solver`]).
fn fit(
    kind: ModelKind,
    config: &TrainerConfig,
    obj: &mut dyn optim::Objective,
    theta: &mut [f64],
    d: usize,
    use_newton: bool,
) -> Result<optim::Outcome, TrainError> {
    let set = optim::Settings {
        tolerance: config.tolerance,
        max_iterations: config.max_iterations,
        memory: config.lbfgs_memory,
    };
    let smooth = optim::Penalty { l2: f64::from(config.l2), l1: 0.0, penalized: d };
    let full = optim::Penalty { l1: f64::from(config.l1), ..smooth };
    match (kind, config.l1 > 0.0) {
        // Least squares: one Newton step on a quadratic is the normal-equation solve.
        (ModelKind::Linear, false) => optim::newton(obj, &smooth, theta, &set, false),
        (ModelKind::Linear, true) => {
            // Start OWL-QN from the ridge solution unless warm-started: it is one Cholesky away
            // and usually has the right signs already.
            let mut spent = 0;
            if !(config.warm_start && theta.iter().any(|v| *v != 0.0)) {
                spent =
                    optim::newton(obj, &smooth, theta, &optim::Settings { max_iterations: 1, ..set }, false)?
                        .iterations;
            }
            let rest = optim::Settings { max_iterations: set.max_iterations.saturating_sub(spent), ..set };
            let mut out = optim::quasi_newton(obj, &full, theta, &rest)?;
            out.iterations += spent;
            Ok(out)
        }
        (ModelKind::Logistic, true) => optim::quasi_newton(obj, &full, theta, &set),
        (ModelKind::Logistic, false) if use_newton => optim::newton(obj, &smooth, theta, &set, true),
        (ModelKind::Logistic, false) => optim::quasi_newton(obj, &smooth, theta, &set),
    }
}

/// Per-example loss and its derivative in the linear score `z`; one definition for both devices
/// (the CUDA kernel mirrors it line for line).
#[inline]
fn loss_and_residual(kind: ModelKind, z: f64, y: f64) -> (f64, f64) {
    match kind {
        ModelKind::Logistic => {
            // softplus(z) − y·z without overflow, and a sigmoid that never divides inf by inf.
            let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
            let e = (-z.abs()).exp();
            let p = if z >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            (softplus - y * z, p - y)
        }
        ModelKind::Linear => {
            let r = z - y;
            (0.5 * r * r, r)
        }
    }
}

/// Second derivative of the per-example loss in `z` (the IRLS weight).
#[inline]
fn curvature(kind: ModelKind, z: f64) -> f64 {
    match kind {
        ModelKind::Logistic => {
            let e = (-z.abs()).exp();
            e / ((1.0 + e) * (1.0 + e))
        }
        ModelKind::Linear => 1.0,
    }
}

/// Packs an optimiser result into the public model.
fn finish(
    theta: &[f64],
    d: usize,
    result: optim::Outcome,
    config: &TrainerConfig,
    device: String,
    started: std::time::Instant,
) -> Result<TrainedModel, TrainError> {
    if !result.value.is_finite() || theta.iter().any(|t| !t.is_finite()) {
        return Err(TrainError::Numerical(format!(
            "objective became non-finite ({}) after {} iterations",
            result.value, result.iterations
        )));
    }
    Ok(TrainedModel {
        weights: theta[..d].iter().map(|&v| v as f32).collect(),
        bias: if config.fit_intercept { theta[d] as f32 } else { 0.0 },
        final_loss: result.value,
        gradient_norm: result.gradient_norm,
        iterations: result.iterations,
        converged: result.gradient_norm <= config.tolerance,
        device,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: TrainerConfig = serde_json::from_str(r#"{"device": "cpu", "l2": 0.5}"#).expect("parses");
        assert_eq!(c.device, Device::Cpu);
        assert_eq!(c.l2, 0.5);
        assert!(c.fit_intercept);
        assert_eq!(c.tolerance, TrainerConfig::default().tolerance);
        let err = serde_json::from_str::<TrainerConfig>(r#"{"devcie": "cpu"}"#).expect_err("typo rejected");
        assert!(err.to_string().contains("devcie"), "{err}");
        let err =
            serde_json::from_str::<TrainerConfig>(r#"{"device": "tpu"}"#).expect_err("bad device rejected");
        assert!(err.to_string().contains("tpu"), "{err}");
    }

    #[test]
    fn config_validation() {
        let bad = TrainerConfig { l2: -1.0, ..TrainerConfig::default() };
        assert!(matches!(bad.validate(), Err(TrainError::InvalidConfig(_))));
        let bad = TrainerConfig { tolerance: 0.0, ..TrainerConfig::default() };
        assert!(matches!(bad.validate(), Err(TrainError::InvalidConfig(_))));
        assert!(TrainerConfig::default().validate().is_ok());
    }

    #[test]
    fn warm_start_needs_matching_length() {
        let c = TrainerConfig { warm_start: true, ..TrainerConfig::default() };
        assert!(matches!(
            initial_params(&c, 3, Some((&[1.0, 2.0], 0.0))),
            Err(TrainError::LengthMismatch { .. })
        ));
        assert_eq!(initial_params(&c, 2, Some((&[1.0, 2.0], 3.0))).ok(), Some(vec![1.0, 2.0, 3.0]));
        let cold = TrainerConfig::default();
        assert_eq!(initial_params(&cold, 2, Some((&[1.0, 2.0], 3.0))).ok(), Some(vec![0.0; 3]));
    }
}
