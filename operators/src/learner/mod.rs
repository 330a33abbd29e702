//! Online learners: models that update on every label, one example at a time.
//!
//! Every learner is a generalised linear model over an encoded sparse row (see
//! `eddy_scorer::encoding`); what differs is the loss (the model kind) and the update rule
//! (the optimizer). Scoring goes through `eddy_scorer::model` so that a snapshot of a learner
//! scores exactly as the learner does.

mod linear;
mod optimizer;

pub use linear::{LearnerState, LinearLearner};
pub use optimizer::{OptimizerConfig, OptimizerKind};

use eddy_scorer::encoding::Feature;
use eddy_scorer::model::ModelKind;

/// A model that scores encoded rows and learns from labelled ones.
///
/// The engine only ever talks to learners through this trait, so a new learner is one new
/// file and one line in [`LearnerConfig::build`].
pub trait OnlineLearner: Send {
    /// What the prediction means (probability of class 1, or a real value).
    fn kind(&self) -> ModelKind;
    /// Prediction for an encoded row with the current weights (link applied).
    fn predict(&self, row: &[Feature]) -> f32;
    /// Learns one labelled row: `y` is 0/1 for classification, the target for regression.
    fn learn(&mut self, row: &[Feature], y: f32);
    /// Number of `learn` calls so far.
    fn updates(&self) -> u64;
    /// The current weights, materialised (length = encoding dimension).
    fn weights(&self) -> &[f32];
    /// The current intercept.
    fn bias(&self) -> f32;
    /// The complete state, for checkpoints and exact restarts.
    fn state(&self) -> LearnerState;
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
    /// Builds the learner for a model of `kind` with `dim` weights.
    pub fn build(&self, kind: ModelKind, dim: usize) -> Box<dyn OnlineLearner> {
        Box::new(LinearLearner::new(kind, dim, self.optimizer.clone()))
    }
}
