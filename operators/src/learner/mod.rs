//! Online learners: models that update on every label, one example at a time.
//!
//! The engine talks to every learner through [`OnlineLearner`] and never names a concrete
//! model: it scores, learns, asks for a snapshot to publish and for a [`LearnerState`] to
//! checkpoint. [`LearnerConfig`] is the registry: it builds a learner from the configuration,
//! restores one from its state, and turns a full retrain's result into a learner that goes on
//! learning online.
//!
//! Adding a model family is one new file here (the learner, its state type and its unit tests)
//! plus one variant in [`LearnerState`] with its arms in the `match`es of this file.
//!
//! Today's only family is linear ([`LinearLearner`]): a generalised linear model over an
//! encoded sparse row (see `eddy_scorer::encoding`), whose loss comes from the model kind and
//! whose update rule comes from the optimizer. Scoring goes through `eddy_scorer::model` so
//! that a snapshot of a learner scores exactly as the learner does.

mod linear;
mod optimizer;

pub use linear::{LinearLearner, LinearState};
pub use optimizer::{OptimizerConfig, OptimizerKind};

use eddy_scorer::encoding::{Encoding, Feature};
use eddy_scorer::model::ModelKind;
use eddy_scorer::snapshot::ModelSnapshot;
use serde::{Deserialize, Serialize};

/// A model that scores encoded rows and learns from labelled ones.
///
/// The engine only ever talks to learners through this trait, so a new model family is one
/// new file plus its registration in [`LearnerConfig`] and [`LearnerState`].
pub trait OnlineLearner: Send {
    /// What the prediction means (probability of class 1, or a real value).
    fn kind(&self) -> ModelKind;
    /// Prediction for an encoded row with the current model (link applied).
    fn predict(&self, row: &[Feature]) -> f32;
    /// Learns one labelled row: `y` is 0/1 for classification, the target for regression.
    fn learn(&mut self, row: &[Feature], y: f32);
    /// Number of `learn` calls so far.
    fn updates(&self) -> u64;
    /// The servable model as of now, for the registry: `encoding` is the frozen encoding the
    /// rows were encoded with, `version` the number the registry will give it.
    fn snapshot(&self, version: u64, encoding: Encoding) -> ModelSnapshot;
    /// The complete state, for checkpoints and exact restarts.
    fn state(&self) -> LearnerState;
}

/// The complete state of a learner, one variant per model family; serialised in checkpoints
/// (tagged by `family`, so a state never restores into another family).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum LearnerState {
    /// A [`LinearLearner`].
    Linear(LinearState),
}

impl LearnerState {
    /// The model family's name, for messages.
    pub fn family(&self) -> &'static str {
        match self {
            LearnerState::Linear(_) => "linear",
        }
    }

    /// The parameters a full retrain may start from (its warm start), as a weight per encoded
    /// column and an intercept; `None` for families a batch trainer cannot start from.
    pub fn warm_start(&self) -> Option<(&[f32], f32)> {
        match self {
            LearnerState::Linear(s) => Some((&s.weights, s.bias)),
        }
    }
}

/// Why a learner could not be built or restored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LearnerError {
    /// A checkpointed state is inconsistent (or belongs to another kind of model).
    #[error("learner state ({family}): {why}")]
    BadState {
        /// The state's model family.
        family: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A full retrain's result cannot become a learner.
    #[error("retrained model: {0}")]
    BadTrainedModel(String),
}

/// Configuration of one online learner: the model kind comes from the pipeline's task, the
/// update rule from here.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerConfig {
    /// Update rule and its hyper-parameters.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
}

impl LearnerConfig {
    /// Builds a fresh learner for a model of `kind` over `dim` encoded columns.
    pub fn build(&self, kind: ModelKind, dim: usize) -> Box<dyn OnlineLearner> {
        Box::new(LinearLearner::new(kind, dim, self.optimizer.clone()))
    }

    /// Continues a learner from its checkpointed state.
    ///
    /// # Errors
    /// When the state is inconsistent.
    pub fn restore(&self, state: LearnerState) -> Result<Box<dyn OnlineLearner>, LearnerError> {
        match state {
            LearnerState::Linear(s) => Ok(Box::new(LinearLearner::from_state(s)?)),
        }
    }

    /// A learner of `kind` over `dim` encoded columns that starts from a full retrain's
    /// result (`weights[j]` is the weight of encoded column `columns[j]`, every other column
    /// starts at zero) with fresh optimizer state, so that it goes on learning online.
    ///
    /// # Errors
    /// When `dim` is zero.
    pub fn from_trained(
        &self,
        kind: ModelKind,
        dim: usize,
        columns: &[u32],
        weights: &[f32],
        bias: f32,
    ) -> Result<Box<dyn OnlineLearner>, LearnerError> {
        let mut dense = vec![0.0f32; dim];
        for (&c, &w) in columns.iter().zip(weights) {
            if let Some(slot) = dense.get_mut(c as usize) {
                *slot = w;
            }
        }
        Ok(Box::new(LinearLearner::with_weights(kind, dense, bias, self.optimizer.clone())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[f32]) -> Vec<Feature> {
        values.iter().enumerate().map(|(i, &v)| Feature { index: i as u32, value: v }).collect()
    }

    /// The registry round trip every family must pass: a learner restored from its state
    /// predicts and goes on learning bit for bit like the original.
    #[test]
    fn every_family_restores_from_its_state_bit_for_bit() {
        let config = LearnerConfig { optimizer: OptimizerConfig::default() };
        for kind in [ModelKind::Logistic, ModelKind::Linear] {
            let mut a = config.build(kind, 3);
            for i in 0..200 {
                a.learn(&row(&[(i % 7) as f32 / 7.0, 1.0, -0.5]), (i % 2) as f32);
            }
            let state = a.state();
            let mut b = config.restore(state.clone()).unwrap();
            assert_eq!(b.state(), state);
            for i in 0..50 {
                let r = row(&[i as f32 / 50.0, 0.5, 1.0]);
                assert_eq!(a.predict(&r).to_bits(), b.predict(&r).to_bits());
                a.learn(&r, (i % 3 == 0) as u8 as f32);
                b.learn(&r, (i % 3 == 0) as u8 as f32);
            }
            assert_eq!(a.state(), b.state());
        }
    }

    #[test]
    fn trained_weights_land_on_their_columns() {
        let config = LearnerConfig { optimizer: OptimizerConfig::default() };
        let learner = config.from_trained(ModelKind::Linear, 5, &[1, 3, 9], &[0.5, -2.0, 7.0], 0.25).unwrap();
        let state = learner.state();
        let (w, b) = state.warm_start().unwrap();
        assert_eq!(w, &[0.0, 0.5, 0.0, -2.0, 0.0]);
        assert_eq!(b, 0.25);
        assert!(config.from_trained(ModelKind::Linear, 0, &[], &[], 0.0).is_err());
    }

    #[test]
    fn a_bad_state_is_refused_with_its_family() {
        let config = LearnerConfig { optimizer: OptimizerConfig::default() };
        let mut state = config.build(ModelKind::Logistic, 2).state();
        let LearnerState::Linear(s) = &mut state;
        s.config.kind = OptimizerKind::Ftrl;
        let err = config.restore(state).err().unwrap();
        assert!(err.to_string().contains("linear"), "{err}");
    }
}
