//! The pipeline config file: its structure ([`PipelineConfig`]), how it is loaded with
//! `--set` overrides and readable errors ([`load`]), and how it becomes an engine
//! [`PipelineSpec`] ([`PipelineConfig::to_spec`]).

mod load;
mod located;
mod validate;

pub use load::load;

use std::collections::BTreeMap;

use eddy_connectors::sinks::SinkConfig;
use eddy_connectors::sources::SourceConfig;
use eddy_engine::checkpoint::CheckpointConfig;
use eddy_engine::drift::DriftMonitorConfig;
use eddy_engine::evaluator::EvaluationConfig;
use eddy_engine::feature_sql::FeaturesConfig;
use eddy_engine::feature_stats::{FeatureWindowConfig, ReferenceDriftSection};
use eddy_engine::label_join::JoinConfig;
use eddy_engine::pipeline::{PipelineSpec, RegistrySpec};
use eddy_engine::promotion::PromotionConfig;
use eddy_engine::publisher::RegistryConfig;
use eddy_engine::retrain::RetrainConfig;
use eddy_engine::slot::{SlotRole, SlotSpec};
use eddy_engine::source::{LabelField, StreamSpec};
use eddy_engine::units::ConfigDuration;
use eddy_operators::encoder::EncodingConfig;
use eddy_operators::learner::{LearnerConfig, OptimizerConfig};
use eddy_scorer::encoding::FeatureKind;
use eddy_scorer::model::ModelKind;
use serde::{Deserialize, Serialize};

use crate::admin::AdminConfig;
use crate::exporter::MetricsConfig;

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name and runtime settings.
    pub pipeline: PipelineSection,
    /// Sources by name. `events` and `labels` are the conventional names; a generator provides
    /// both.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Sinks by name. A sink named `predictions`, `dead_letters` or `drift` receives that
    /// output unless it says otherwise with `input`.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// The event stream's fields.
    #[serde(default)]
    pub events: EventsSection,
    /// The label stream's fields.
    #[serde(default)]
    pub labels: LabelsSection,
    /// Label join.
    #[serde(default)]
    pub join: JoinConfig,
    /// The model.
    pub model: ModelSection,
    /// Prequential evaluation.
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// Drift monitors by name.
    #[serde(default)]
    pub drift: BTreeMap<String, DriftMonitorConfig>,
    /// Windowed statistics of the features, by name.
    #[serde(default)]
    pub windows: BTreeMap<String, FeatureWindowConfig>,
    /// PSI/KS drift of the features against a reference.
    #[serde(default)]
    pub reference_drift: Option<ReferenceDriftSection>,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The model registry the champion is published to.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// When a shadow slot replaces the champion.
    #[serde(default)]
    pub promotion: Option<PromotionConfig>,
    /// Full retrains into a shadow slot.
    #[serde(default)]
    pub retrain: Option<RetrainConfig>,
    /// The admin endpoint (manual retrains), off by default.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Checkpoints of the whole pipeline state (crash recovery), off by default.
    #[serde(default)]
    pub checkpoint: Option<CheckpointConfig>,
    /// Feature SQL and windowed aggregates as features.
    #[serde(default)]
    pub features: FeaturesConfig,
}

fn default_batch_size() -> usize {
    4096
}
fn default_idle_timeout() -> ConfigDuration {
    ConfigDuration::from_millis(50)
}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Name used in metrics labels and the model registry path.
    pub name: String,
    /// Rows per batch between stages.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long an unbounded source may stay silent before the merge goes on without it.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: ConfigDuration,
}

/// A declared field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A real number.
    Numeric,
    /// A category (hashed).
    Categorical,
    /// true/false.
    Boolean,
}

impl From<FieldType> for FeatureKind {
    fn from(t: FieldType) -> Self {
        match t {
            FieldType::Numeric => FeatureKind::Numeric,
            FieldType::Categorical => FeatureKind::Categorical,
            FieldType::Boolean => FeatureKind::Boolean,
        }
    }
}

fn id() -> String {
    "id".into()
}
fn ts() -> String {
    "ts".into()
}
fn label() -> String {
    "label".into()
}

/// `[events]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSection {
    /// Field that identifies an event (labels refer to it).
    #[serde(default = "id")]
    pub key: String,
    /// Event-time field: epoch milliseconds or an RFC 3339 string.
    #[serde(default = "ts")]
    pub time: String,
    /// Declared field types (others are inferred: numbers numeric, strings categorical).
    #[serde(default)]
    pub fields: BTreeMap<String, FieldType>,
    /// Fields never used as features.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection { key: id(), time: ts(), fields: BTreeMap::new(), exclude: Vec::new() }
    }
}

/// `[labels]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsSection {
    /// Field holding the key of the labelled event.
    #[serde(default = "id")]
    pub key: String,
    /// Label time field.
    #[serde(default = "ts")]
    pub time: String,
    /// Field holding the label (0/1 or false/true for classification, a number for
    /// regression).
    #[serde(default = "label")]
    pub field: String,
}

impl Default for LabelsSection {
    fn default() -> Self {
        LabelsSection { key: id(), time: ts(), field: label() }
    }
}

/// Model kinds as written in configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKindName {
    /// Binary logistic regression (classification).
    Logistic,
    /// Linear regression.
    Linear,
}

/// `[model]`: the champion; `[[model.shadows]]` add shadow slots.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `logistic` (classification) or `linear` (regression).
    pub kind: ModelKindName,
    /// Input features; absent means every event field but the key and time.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Seed of everything random in the model (feature hashing).
    #[serde(default)]
    pub seed: u64,
    /// Feature encoding.
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// Update rule of the champion.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// Shadow slots: score and learn beside the champion, never served.
    #[serde(default)]
    pub shadows: Vec<ShadowSection>,
}

/// `[[model.shadows]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowSection {
    /// Slot name.
    pub name: String,
    /// Update rule of this slot.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
}

impl PipelineConfig {
    /// Names of the model slots: the champion, then the shadows.
    pub fn slot_names(&self) -> Vec<String> {
        std::iter::once("champion".to_string())
            .chain(self.model.shadows.iter().map(|s| s.name.clone()))
            .collect()
    }

    /// The registry directory: configured, or `models/<pipeline>`.
    pub fn registry_dir(&self) -> std::path::PathBuf {
        self.registry.dir.clone().unwrap_or_else(|| std::path::Path::new("models").join(&self.pipeline.name))
    }

    /// A stable hash of the whole config (after overrides), recorded in model manifests.
    pub fn hash(&self) -> String {
        let text = serde_json::to_vec(self).unwrap_or_default();
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&text))
    }

    /// The model kind.
    pub fn task(&self) -> ModelKind {
        match self.model.kind {
            ModelKindName::Logistic => ModelKind::Logistic,
            ModelKindName::Linear => ModelKind::Linear,
        }
    }

    /// The engine's view of this config.
    pub fn to_spec(&self) -> PipelineSpec {
        let task = self.task();
        let declared: Vec<(String, FeatureKind)> =
            self.events.fields.iter().map(|(n, t)| (n.clone(), FeatureKind::from(*t))).collect();
        let features = self.model.features.clone();
        let mut slots = vec![SlotSpec {
            name: "champion".into(),
            role: SlotRole::Champion,
            learner: LearnerConfig { optimizer: self.model.optimizer.clone() },
        }];
        slots.extend(self.model.shadows.iter().map(|s| SlotSpec {
            name: s.name.clone(),
            role: SlotRole::Shadow,
            learner: LearnerConfig { optimizer: s.optimizer.clone() },
        }));
        PipelineSpec {
            name: self.pipeline.name.clone(),
            events: StreamSpec {
                key: self.events.key.clone(),
                time: self.events.time.clone(),
                label: None,
                declared,
            },
            labels: StreamSpec {
                key: self.labels.key.clone(),
                time: self.labels.time.clone(),
                label: Some(LabelField {
                    name: self.labels.field.clone(),
                    binary: task == ModelKind::Logistic,
                }),
                declared: Vec::new(),
            },
            features,
            exclude: self.events.exclude.clone(),
            task,
            encoding: self.model.encoding.clone(),
            seed: self.model.seed,
            slots,
            join: self.join.clone(),
            evaluation: self.evaluation.clone(),
            batch_size: self.pipeline.batch_size,
            idle_timeout: self.pipeline.idle_timeout.0,
            drift: self.drift.iter().map(|(n, c)| (n.clone(), c.clone())).collect(),
            windows: self.windows.iter().map(|(n, c)| (n.clone(), c.clone())).collect(),
            reference_drift: self.reference_drift.clone(),
            registry: self.registry.enabled.then(|| RegistrySpec {
                dir: self.registry_dir(),
                every_updates: self.registry.publish_every_updates,
                interval: self.registry.publish_interval.map(|d| d.0),
                config_hash: self.hash(),
            }),
            promotion: self.promotion.clone(),
            retrain: self.retrain.clone(),
            feature_sql: self.features.clone(),
        }
    }
}
