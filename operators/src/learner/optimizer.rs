//! Per-coordinate update rules for linear learners: SGD, AdaGrad and FTRL-Proximal.
//!
//! Written by hand rather than taken from a crate because they are eddy's core: they run once
//! per label per non-zero feature, must touch only the coordinates present in the row (sparse
//! rows over a 2^20 hashed space), and must be bit-for-bit deterministic for exact restarts.

use serde::{Deserialize, Serialize};

/// Which update rule to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Plain stochastic gradient descent with an optional inverse-scaling step size
    /// `learning_rate / (1 + t)^power_t`.
    Sgd,
    /// AdaGrad: per-coordinate steps shrink with the accumulated squared gradient, which
    /// suits sparse hashed features whose coordinates are seen at very different rates.
    Adagrad,
    /// FTRL-Proximal (McMahan et al., 2013): per-coordinate adaptive steps with L1 giving
    /// exactly sparse weights.
    Ftrl,
}

/// Hyper-parameters of the update rule. Keys that an optimizer does not use are accepted but
/// ignored only when they keep their defaults; `eddy validate` reports the rest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// Update rule.
    pub kind: OptimizerKind,
    /// Step size (SGD, AdaGrad).
    pub learning_rate: f32,
    /// Exponent of the inverse-scaling step size of SGD (0 = constant).
    pub power_t: f32,
    /// L1 penalty.
    pub l1: f32,
    /// L2 penalty.
    pub l2: f32,
    /// Step size of the intercept for SGD (defaults to `learning_rate`). A larger intercept
    /// step lets the model follow shifts of the base rate or of a decision threshold — the
    /// commonest kind of abrupt drift — without making the weights noisy.
    pub intercept_learning_rate: Option<f32>,
    /// FTRL's alpha (per-coordinate learning rate scale).
    pub alpha: f32,
    /// FTRL's beta (smoothing of the per-coordinate rate).
    pub beta: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adagrad,
            learning_rate: 0.1,
            power_t: 0.0,
            intercept_learning_rate: None,
            l1: 0.0,
            l2: 0.0,
            alpha: 0.1,
            beta: 1.0,
        }
    }
}

impl OptimizerConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let positive = |v: f32| v.is_finite() && v > 0.0;
        let non_negative = |v: f32| v.is_finite() && v >= 0.0;
        if !positive(self.learning_rate) {
            out.push(("learning_rate", format!("must be a positive number, got {}", self.learning_rate)));
        }
        if self.intercept_learning_rate.is_some_and(|v| !positive(v)) {
            out.push(("intercept_learning_rate", "must be a positive number".to_string()));
        }
        if !non_negative(self.power_t) {
            out.push(("power_t", format!("must be >= 0, got {}", self.power_t)));
        }
        if !non_negative(self.l1) {
            out.push(("l1", format!("must be >= 0, got {}", self.l1)));
        }
        if !non_negative(self.l2) {
            out.push(("l2", format!("must be >= 0, got {}", self.l2)));
        }
        if !positive(self.alpha) {
            out.push(("alpha", format!("must be a positive number, got {}", self.alpha)));
        }
        if !non_negative(self.beta) {
            out.push(("beta", format!("must be >= 0, got {}", self.beta)));
        }
        out
    }
}

/// Soft thresholding: the proximal step of an L1 penalty of strength `t`.
#[inline]
pub(crate) fn soft_threshold(w: f32, t: f32) -> f32 {
    if w > t {
        w - t
    } else if w < -t {
        w + t
    } else {
        0.0
    }
}

/// FTRL-Proximal's closed-form weight from its accumulators.
#[inline]
pub(crate) fn ftrl_weight(z: f32, n: f32, alpha: f32, beta: f32, l1: f32, l2: f32) -> f32 {
    if z.abs() <= l1 {
        0.0
    } else {
        -(z - z.signum() * l1) / ((beta + n.sqrt()) / alpha + l2)
    }
}
