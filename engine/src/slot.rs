//! `Slot`: one model in the pipeline — the champion that serves, or a shadow that only scores
//! and learns beside it — with its own prequential evaluator.

use eddy_operators::learner::{LearnerConfig, OnlineLearner};
use eddy_scorer::model::ModelKind;

use crate::evaluator::{EvaluationConfig, Evaluator};

/// Whether a slot's predictions are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotRole {
    /// Serves predictions.
    Champion,
    /// Scores and learns; its predictions are recorded, never served.
    Shadow,
}

/// What a slot is built from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlotSpec {
    /// Slot name (`champion` for the main model).
    pub name: String,
    /// Champion or shadow.
    pub role: SlotRole,
    /// Learner configuration.
    pub learner: LearnerConfig,
}

/// A live model slot.
pub struct Slot {
    /// Slot name.
    pub name: String,
    /// Champion or shadow.
    pub role: SlotRole,
    /// The model.
    pub learner: Box<dyn OnlineLearner>,
    /// Its prequential metrics.
    pub evaluator: Evaluator,
    /// Registry version of the model this slot serves (0 until first published).
    pub version: u64,
}

impl Slot {
    /// Builds a fresh slot for a model of `kind` with `dim` weights.
    pub fn new(spec: &SlotSpec, kind: ModelKind, dim: usize, evaluation: &EvaluationConfig) -> Self {
        Slot {
            name: spec.name.clone(),
            role: spec.role,
            learner: spec.learner.build(kind, dim),
            evaluator: Evaluator::new(kind, evaluation),
            version: 0,
        }
    }
}
