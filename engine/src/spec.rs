//! `PipelineSpec`: the resolved, validated description of a pipeline, as plain data.
//!
//! The binary builds it from the config file; every part of the engine is constructed from
//! it. This module is a leaf of the crate's module graph: it holds configuration types only
//! (each component's own config struct lives next to that component, and none of them imports
//! this module), so nothing here can depend on the runtime.

use std::path::PathBuf;
use std::time::Duration;

use eddy_operators::encoder::EncodingConfig;
use eddy_scorer::model::ModelKind;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::drift::DriftMonitorConfig;
use crate::evaluator::EvaluationConfig;
use crate::feature_sql::FeaturesConfig;
use crate::feature_stats::{FeatureWindowConfig, ReferenceDriftSection};
use crate::label_join::JoinConfig;
use crate::promotion::PromotionConfig;
use crate::retrain::RetrainConfig;
use crate::slot::SlotSpec;
use crate::source::StreamSpec;

/// The resolved, validated description of a pipeline (built from the config by the binary).
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// Pipeline name (used in metrics and the registry).
    pub name: String,
    /// Decoding spec of events.
    pub events: StreamSpec,
    /// Decoding spec of labels (its `label` is set).
    pub labels: StreamSpec,
    /// Names of the model's features; `None` means every event field but the key and time.
    /// Kinds come from `events.declared`, else from the decoded type of the first batch.
    pub features: Option<Vec<String>>,
    /// Fields never used as features.
    pub exclude: Vec<String>,
    /// Classification (logistic) or regression (linear).
    pub task: ModelKind,
    /// Feature encoding.
    pub encoding: EncodingConfig,
    /// Seed of everything random (feature hashing).
    pub seed: u64,
    /// Model slots; the first is the champion.
    pub slots: Vec<SlotSpec>,
    /// Label join.
    pub join: JoinConfig,
    /// Evaluator.
    pub evaluation: EvaluationConfig,
    /// Rows per source batch.
    pub batch_size: usize,
    /// How long an unbounded source may be silent before the merge goes on without it.
    pub idle_timeout: Duration,
    /// Drift monitors by name.
    pub drift: Vec<(String, DriftMonitorConfig)>,
    /// Windowed feature statistics by name.
    pub windows: Vec<(String, FeatureWindowConfig)>,
    /// Feature drift against a reference.
    pub reference_drift: Option<ReferenceDriftSection>,
    /// Where and how often models are published; `None` publishes nothing.
    pub registry: Option<RegistrySpec>,
    /// When shadows replace the champion; `None` never promotes.
    pub promotion: Option<PromotionConfig>,
    /// Full retrains into a shadow slot; `None` never retrains.
    pub retrain: Option<RetrainConfig>,
    /// Feature SQL and windowed aggregates (`[features]`).
    pub feature_sql: FeaturesConfig,
}

/// Resolved registry settings.
#[derive(Debug, Clone)]
pub struct RegistrySpec {
    /// Registry directory.
    pub dir: PathBuf,
    /// Publish the champion every this many label updates.
    pub every_updates: Option<u64>,
    /// ... and at least this often (wall clock).
    pub interval: Option<Duration>,
    /// Hash of the config, recorded in manifests.
    pub config_hash: String,
}

/// The parts of a [`PipelineSpec`] that shape the engine's state, in a fixed order: what
/// [`PipelineSpec::fingerprint`] hashes. Left out: the config file's own hash (recorded in
/// manifests only) and the idle timeout (a wall-clock setting that decides nothing a
/// checkpoint holds).
#[derive(Serialize)]
struct StateShape<'a> {
    name: &'a str,
    events: &'a StreamSpec,
    labels: &'a StreamSpec,
    features: &'a Option<Vec<String>>,
    exclude: &'a [String],
    task: ModelKind,
    encoding: &'a EncodingConfig,
    seed: u64,
    slots: &'a [SlotSpec],
    join: &'a JoinConfig,
    evaluation: &'a EvaluationConfig,
    batch_size: usize,
    drift: &'a [(String, DriftMonitorConfig)],
    windows: &'a [(String, FeatureWindowConfig)],
    reference_drift: &'a Option<ReferenceDriftSection>,
    registry: Option<RegistryShape<'a>>,
    promotion: &'a Option<PromotionConfig>,
    retrain: &'a Option<RetrainConfig>,
    feature_sql: &'a FeaturesConfig,
}

#[derive(Serialize)]
struct RegistryShape<'a> {
    dir: &'a std::path::Path,
    every_updates: Option<u64>,
    interval_ms: Option<u128>,
}

impl PipelineSpec {
    /// Fingerprint of the configuration that shapes the pipeline's state: checkpoints are
    /// only restored into a pipeline with the same fingerprint, since state shaped by one
    /// configuration (feature encoding, slots, detectors, windows) means nothing under another.
    ///
    /// It hashes a canonical serialisation (MessagePack with field names, fields in a fixed
    /// order) of [`StateShape`], prefixed by the checkpoint format version — never a `Debug`
    /// rendering, which may change with any dependency. Settings outside the spec (sink
    /// paths, the metrics endpoint, the checkpoint cadence) can change between restarts.
    pub fn fingerprint(&self, format_version: u32) -> u64 {
        let shape = StateShape {
            name: &self.name,
            events: &self.events,
            labels: &self.labels,
            features: &self.features,
            exclude: &self.exclude,
            task: self.task,
            encoding: &self.encoding,
            seed: self.seed,
            slots: &self.slots,
            join: &self.join,
            evaluation: &self.evaluation,
            batch_size: self.batch_size,
            drift: &self.drift,
            windows: &self.windows,
            reference_drift: &self.reference_drift,
            registry: self.registry.as_ref().map(|r| RegistryShape {
                dir: &r.dir,
                every_updates: r.every_updates,
                interval_ms: r.interval.map(|d| d.as_millis()),
            }),
            promotion: &self.promotion,
            retrain: &self.retrain,
            feature_sql: &self.feature_sql,
        };
        // Serialising plain config data into a Vec cannot fail; an empty payload would still
        // be versioned, never silently equal to a real one.
        let payload = rmp_serde::to_vec_named(&shape).unwrap_or_default();
        let mut bytes = format_version.to_le_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        xxh3_64(&bytes)
    }

    /// The slot names, champion first.
    pub fn slot_names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name.clone()).collect()
    }

    /// The names of the `[windows.NAME]` sections.
    pub fn window_names(&self) -> Vec<String> {
        self.windows.iter().map(|w| w.0.clone()).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::slot::SlotRole;
    use crate::source::LabelField;
    use eddy_operators::learner::{LearnerConfig, OptimizerConfig};

    /// A small but complete spec: two slots, one drift monitor, a registry.
    pub(crate) fn spec() -> PipelineSpec {
        let stream = |label: Option<&str>| StreamSpec {
            key: "id".into(),
            time: "ts".into(),
            label: label.map(|l| LabelField { name: l.into(), binary: true }),
            declared: Vec::new(),
        };
        let slot = |name: &str, role| SlotSpec {
            name: name.into(),
            role,
            learner: LearnerConfig { optimizer: OptimizerConfig::default() },
        };
        PipelineSpec {
            name: "test".into(),
            events: stream(None),
            labels: stream(Some("label")),
            features: None,
            exclude: Vec::new(),
            task: ModelKind::Logistic,
            encoding: EncodingConfig { standardize: true, hash_bits: 10 },
            seed: 7,
            slots: vec![slot("champion", SlotRole::Champion), slot("shadow", SlotRole::Shadow)],
            join: toml_like_default(),
            evaluation: serde_json::from_str("{}").expect("evaluation defaults"),
            batch_size: 1024,
            idle_timeout: Duration::from_millis(500),
            drift: vec![(
                "errors".into(),
                serde_json::from_str(r#"{"input":"champion.error","detector":{"kind":"adwin"}}"#)
                    .expect("drift monitor config"),
            )],
            windows: Vec::new(),
            reference_drift: None,
            registry: Some(RegistrySpec {
                dir: "models".into(),
                every_updates: Some(1000),
                interval: None,
                config_hash: "abc".into(),
            }),
            promotion: None,
            retrain: None,
            feature_sql: FeaturesConfig::default(),
        }
    }

    fn toml_like_default() -> JoinConfig {
        serde_json::from_str("{}").expect("join defaults")
    }

    /// The fingerprint of a fixed spec is pinned: it may only change when the state's shape
    /// changes on purpose (then every old checkpoint is refused, which the format version
    /// bump says anyway). A `Debug` impl changing anywhere cannot move it.
    #[test]
    fn fingerprint_is_pinned_for_a_fixed_spec() {
        let a = spec().fingerprint(3);
        assert_eq!(a, spec().fingerprint(3), "deterministic");
        assert_eq!(a, PINNED, "the canonical serialisation of the spec changed: {a:#x}");
    }

    const PINNED: u64 = 0x4895_bf98_9ecd_66b4;

    #[test]
    fn fingerprint_ignores_what_does_not_shape_state_and_sees_what_does() {
        let base = spec().fingerprint(3);
        let mut s = spec();
        s.registry.as_mut().unwrap().config_hash = "another file".into();
        s.idle_timeout = Duration::from_secs(30);
        assert_eq!(s.fingerprint(3), base);
        let mut s = spec();
        s.seed = 8;
        assert_ne!(s.fingerprint(3), base);
        let mut s = spec();
        s.slots.pop();
        assert_ne!(s.fingerprint(3), base);
        assert_ne!(spec().fingerprint(4), base, "the format version is part of it");
    }
}
