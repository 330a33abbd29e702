//! `LinearLearner`: logistic or linear regression updated by one of the optimizers.

use eddy_scorer::encoding::{Encoding, Feature};
use eddy_scorer::model::{linear_score, ModelKind};
use eddy_scorer::snapshot::ModelSnapshot;
use serde::{Deserialize, Serialize};

use super::optimizer::{ftrl_weight, soft_threshold, OptimizerConfig, OptimizerKind};
use super::{LearnerError, LearnerState, OnlineLearner};

/// Guard against division by zero in AdaGrad's step.
const ADAGRAD_EPS: f32 = 1e-8;

/// A generalised linear model learning online.
///
/// Weights are always kept materialised (FTRL recomputes the touched coordinates after each
/// update), so prediction is the same plain dot product for every optimizer and a snapshot is
/// a copy of `weights`.
#[derive(Debug, Clone)]
pub struct LinearLearner {
    kind: ModelKind,
    config: OptimizerConfig,
    weights: Vec<f32>,
    bias: f32,
    /// Per-coordinate accumulator: AdaGrad's Σg², FTRL's n. Empty for SGD.
    acc: Vec<f32>,
    /// FTRL's z. Empty otherwise.
    z: Vec<f32>,
    /// Accumulators of the bias (same meaning as `acc`/`z`).
    bias_acc: f32,
    bias_z: f32,
    updates: u64,
}

/// The full state of a [`LinearLearner`], enough to continue bit for bit after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearState {
    /// What the score means (the loss the model learns).
    pub kind: ModelKind,
    /// Optimizer configuration the state belongs to.
    pub config: OptimizerConfig,
    /// Weights.
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f32,
    /// Per-coordinate accumulator.
    pub acc: Vec<f32>,
    /// FTRL's z.
    pub z: Vec<f32>,
    /// Bias accumulators.
    pub bias_acc: f32,
    /// Bias z.
    pub bias_z: f32,
    /// Number of updates.
    pub updates: u64,
}

impl LinearLearner {
    /// A zero-initialised model with `dim` weights.
    pub fn new(kind: ModelKind, dim: usize, config: OptimizerConfig) -> Self {
        let (acc, z) = match config.kind {
            OptimizerKind::Sgd => (Vec::new(), Vec::new()),
            OptimizerKind::Adagrad => (vec![0.0; dim], Vec::new()),
            OptimizerKind::Ftrl => (vec![0.0; dim], vec![0.0; dim]),
        };
        LinearLearner {
            kind,
            config,
            weights: vec![0.0; dim],
            bias: 0.0,
            acc,
            z,
            bias_acc: 0.0,
            bias_z: 0.0,
            updates: 0,
        }
    }

    /// A model starting from given weights (e.g. a full retrain's result) with fresh optimizer
    /// accumulators, so that it goes on learning online from there.
    ///
    /// # Errors
    /// When `weights` is empty.
    pub fn with_weights(
        kind: ModelKind,
        weights: Vec<f32>,
        bias: f32,
        config: OptimizerConfig,
    ) -> Result<Self, LearnerError> {
        if weights.is_empty() {
            return Err(LearnerError::BadTrainedModel("a model needs at least one weight".into()));
        }
        let mut m = LinearLearner::new(kind, weights.len(), config);
        if m.config.kind == OptimizerKind::Ftrl {
            // FTRL's weights are a function of (z, n); with n = 0 the weight w is reproduced by
            // z = -w · beta / alpha (when |z| > l1), so that learning continues from `weights`.
            let c = &m.config;
            for (z, w) in m.z.iter_mut().zip(&weights) {
                *z = if *w == 0.0 { 0.0 } else { -(w * (c.beta / c.alpha + c.l2)) - w.signum() * c.l1 };
            }
            m.bias_z = -bias * (c.beta / c.alpha);
        }
        m.weights = weights;
        m.bias = bias;
        Ok(m)
    }

    /// Restores a learner from its [`LinearState`].
    ///
    /// # Errors
    /// When the state's vectors disagree in length.
    pub fn from_state(state: LinearState) -> Result<Self, LearnerError> {
        let kind = state.kind;
        let dim = state.weights.len();
        let consistent = match state.config.kind {
            OptimizerKind::Sgd => state.acc.is_empty() && state.z.is_empty(),
            OptimizerKind::Adagrad => state.acc.len() == dim && state.z.is_empty(),
            OptimizerKind::Ftrl => state.acc.len() == dim && state.z.len() == dim,
        };
        if !consistent {
            return Err(LearnerError::BadState {
                family: "linear",
                why: format!(
                    "accumulators of the wrong length for {:?} over {dim} weights",
                    state.config.kind
                ),
            });
        }
        Ok(LinearLearner {
            kind,
            config: state.config,
            weights: state.weights,
            bias: state.bias,
            acc: state.acc,
            z: state.z,
            bias_acc: state.bias_acc,
            bias_z: state.bias_z,
            updates: state.updates,
        })
    }

    /// The current weights (length = encoding dimension).
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The current intercept.
    pub fn bias(&self) -> f32 {
        self.bias
    }

    /// The full state as its own type (see [`OnlineLearner::state`] for the tagged form).
    pub fn linear_state(&self) -> LinearState {
        LinearState {
            kind: self.kind,
            config: self.config.clone(),
            weights: self.weights.clone(),
            bias: self.bias,
            acc: self.acc.clone(),
            z: self.z.clone(),
            bias_acc: self.bias_acc,
            bias_z: self.bias_z,
            updates: self.updates,
        }
    }

    /// Derivative of the loss with respect to the linear score.
    #[inline]
    fn loss_gradient(&self, z: f32, y: f32) -> f32 {
        match self.kind {
            // d/dz of log loss with p = σ(z) is p - y.
            ModelKind::Logistic => self.kind.link(z) - y,
            // d/dz of ½(z - y)² is z - y.
            ModelKind::Linear => z - y,
        }
    }
}

impl OnlineLearner for LinearLearner {
    fn kind(&self) -> ModelKind {
        self.kind
    }

    #[inline]
    fn predict(&self, row: &[Feature]) -> f32 {
        self.kind.link(linear_score(&self.weights, self.bias, row))
    }

    fn learn(&mut self, row: &[Feature], y: f32) {
        let z = linear_score(&self.weights, self.bias, row);
        let g = self.loss_gradient(z, y);
        let c = &self.config;
        let dim = self.weights.len();
        match c.kind {
            OptimizerKind::Sgd => {
                let lr = if c.power_t == 0.0 {
                    c.learning_rate
                } else {
                    c.learning_rate / (1.0 + self.updates as f32).powf(c.power_t)
                };
                for f in row {
                    let i = f.index as usize;
                    if i >= dim {
                        continue;
                    }
                    let w = self.weights[i];
                    let w = w - lr * (g * f.value + c.l2 * w);
                    self.weights[i] = if c.l1 > 0.0 { soft_threshold(w, lr * c.l1) } else { w };
                }
                let ilr = match c.intercept_learning_rate {
                    Some(i) if c.power_t == 0.0 => i,
                    Some(i) => i / (1.0 + self.updates as f32).powf(c.power_t),
                    None => lr,
                };
                self.bias -= ilr * g;
            }
            OptimizerKind::Adagrad => {
                for f in row {
                    let i = f.index as usize;
                    if i >= dim {
                        continue;
                    }
                    let w = self.weights[i];
                    let gi = g * f.value + c.l2 * w;
                    self.acc[i] += gi * gi;
                    let step = c.learning_rate / (self.acc[i].sqrt() + ADAGRAD_EPS);
                    let w = w - step * gi;
                    self.weights[i] = if c.l1 > 0.0 { soft_threshold(w, step * c.l1) } else { w };
                }
                self.bias_acc += g * g;
                self.bias -= c.learning_rate / (self.bias_acc.sqrt() + ADAGRAD_EPS) * g;
            }
            OptimizerKind::Ftrl => {
                for f in row {
                    let i = f.index as usize;
                    if i >= dim {
                        continue;
                    }
                    let gi = g * f.value;
                    let n = self.acc[i];
                    let sigma = ((n + gi * gi).sqrt() - n.sqrt()) / c.alpha;
                    self.z[i] += gi - sigma * self.weights[i];
                    self.acc[i] = n + gi * gi;
                    self.weights[i] = ftrl_weight(self.z[i], self.acc[i], c.alpha, c.beta, c.l1, c.l2);
                }
                let n = self.bias_acc;
                let sigma = ((n + g * g).sqrt() - n.sqrt()) / c.alpha;
                self.bias_z += g - sigma * self.bias;
                self.bias_acc = n + g * g;
                // The intercept is never regularised.
                self.bias = ftrl_weight(self.bias_z, self.bias_acc, c.alpha, c.beta, 0.0, 0.0);
            }
        }
        self.updates += 1;
    }

    fn updates(&self) -> u64 {
        self.updates
    }

    fn snapshot(&self, version: u64, encoding: Encoding) -> ModelSnapshot {
        ModelSnapshot { version, kind: self.kind, encoding, weights: self.weights.clone(), bias: self.bias }
    }

    fn state(&self) -> LearnerState {
        LearnerState::Linear(self.linear_state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[f32]) -> Vec<Feature> {
        values.iter().enumerate().map(|(i, &v)| Feature { index: i as u32, value: v }).collect()
    }

    fn config(kind: OptimizerKind) -> OptimizerConfig {
        OptimizerConfig { kind, ..OptimizerConfig::default() }
    }

    /// FTRL-Proximal against an update sequence computed by hand from the paper's algorithm
    /// (alpha = 0.1, beta = 1, l1 = 0.01, l2 = 0.1; one feature of value 2, labels 1 then 0).
    #[test]
    fn ftrl_matches_hand_computed_updates() {
        let cfg = OptimizerConfig { alpha: 0.1, beta: 1.0, l1: 0.01, l2: 0.1, ..config(OptimizerKind::Ftrl) };
        let mut m = LinearLearner::new(ModelKind::Logistic, 1, cfg);
        let x = row(&[2.0]);
        // Step 1: w = 0, b = 0 → p = 0.5, g = p - y = -0.5; gi = -1.
        // n: 0 → 1; sigma = (1 - 0)/0.1 = 10; z = -1 - 10·0 = -1.
        // w = -(z + l1)/((1 + 1)/0.1 + 0.1) = 0.99/20.1.
        // bias: g = -0.5, n_b = 0.25, sigma = 5, z_b = -0.5, b = 0.5/((1 + 0.5)/0.1) = 0.5/15.
        m.learn(&x, 1.0);
        let w1 = 0.99f32 / 20.1;
        let b1 = 0.5f32 / 15.0;
        assert!((m.weights()[0] - w1).abs() < 1e-7, "{} vs {w1}", m.weights()[0]);
        assert!((m.bias() - b1).abs() < 1e-7);
        // Step 2: label 0.
        let p = 1.0 / (1.0 + (-(2.0 * w1 + b1)).exp());
        let gi = p * 2.0;
        let sigma = ((1.0 + gi * gi).sqrt() - 1.0) / 0.1;
        let z = -1.0 + gi - sigma * w1;
        let n = 1.0 + gi * gi;
        let w2 =
            if z.abs() <= 0.01 { 0.0 } else { -(z - z.signum() * 0.01) / ((1.0 + n.sqrt()) / 0.1 + 0.1) };
        m.learn(&x, 0.0);
        assert!((m.weights()[0] - w2).abs() < 1e-6, "{} vs {w2}", m.weights()[0]);
    }

    #[test]
    fn ftrl_l1_gives_exact_zeros() {
        let cfg = OptimizerConfig { l1: 10.0, ..config(OptimizerKind::Ftrl) };
        let mut m = LinearLearner::new(ModelKind::Logistic, 3, cfg);
        for i in 0..100 {
            m.learn(&row(&[1.0, 0.5, -0.2]), (i % 2) as f32);
        }
        assert!(m.weights().iter().all(|&w| w == 0.0));
    }

    /// On a noiseless linear problem every optimizer reaches the least-squares solution.
    #[test]
    fn linear_regression_reaches_least_squares_solution() {
        let truth = [1.5f32, -2.0, 0.5];
        let b = 0.25f32;
        let data: Vec<[f32; 3]> = (0..200)
            .map(|i| {
                let t = i as f32;
                [(t * 0.37).sin(), (t * 0.11).cos(), ((t * 0.73).sin() * 2.0).tanh()]
            })
            .collect();
        for (kind, lr) in
            [(OptimizerKind::Sgd, 0.05), (OptimizerKind::Adagrad, 0.5), (OptimizerKind::Ftrl, 0.0)]
        {
            let cfg = OptimizerConfig {
                learning_rate: if lr > 0.0 { lr } else { 0.1 },
                alpha: 0.5,
                ..config(kind)
            };
            let mut m = LinearLearner::new(ModelKind::Linear, 3, cfg);
            for _epoch in 0..300 {
                for x in &data {
                    let y = truth.iter().zip(x).map(|(w, v)| w * v).sum::<f32>() + b;
                    m.learn(&row(x), y);
                }
            }
            for (w, t) in m.weights().iter().zip(truth) {
                assert!((w - t).abs() < 1e-2, "{kind:?}: {:?} vs {truth:?}", m.weights());
            }
            assert!((m.bias() - b).abs() < 1e-2, "{kind:?}: bias {}", m.bias());
        }
    }

    #[test]
    fn logistic_learns_a_separable_problem_and_state_round_trips() {
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adagrad, OptimizerKind::Ftrl] {
            let mut m = LinearLearner::new(ModelKind::Logistic, 2, config(kind));
            for i in 0..2000 {
                let x = ((i * 37) % 100) as f32 / 50.0 - 1.0;
                m.learn(&row(&[x, 1.0]), if x > 0.0 { 1.0 } else { 0.0 });
            }
            assert!(m.predict(&row(&[0.8, 1.0])) > 0.8, "{kind:?}");
            assert!(m.predict(&row(&[-0.8, 1.0])) < 0.2, "{kind:?}");
            let restored = LinearLearner::from_state(m.linear_state()).unwrap();
            let mut a = m.clone();
            let mut b = restored;
            for i in 0..50 {
                let r = row(&[i as f32 / 25.0 - 1.0, 1.0]);
                a.learn(&r, (i % 2) as f32);
                b.learn(&r, (i % 2) as f32);
            }
            assert_eq!(a.weights(), b.weights());
            assert_eq!(a.bias().to_bits(), b.bias().to_bits());
        }
    }

    #[test]
    fn l2_shrinks_weights() {
        let plain = {
            let mut m = LinearLearner::new(ModelKind::Linear, 1, config(OptimizerKind::Sgd));
            (0..500).for_each(|_| m.learn(&row(&[1.0]), 3.0));
            m.weights()[0]
        };
        let shrunk = {
            let mut m = LinearLearner::new(
                ModelKind::Linear,
                1,
                OptimizerConfig { l2: 1.0, ..config(OptimizerKind::Sgd) },
            );
            (0..500).for_each(|_| m.learn(&row(&[1.0]), 3.0));
            m.weights()[0]
        };
        assert!(shrunk.abs() < plain.abs());
    }

    #[test]
    fn optimizer_config_reports_bad_values() {
        let bad = OptimizerConfig { learning_rate: -1.0, l1: f32::NAN, ..OptimizerConfig::default() };
        let keys: Vec<_> = bad.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["learning_rate", "l1"]);
    }
}
