//! Every metric eddy exports, in one place, with its help text.
//!
//! Names follow Prometheus conventions (`eddy_<noun>_<unit>[_total]`, base units) and every
//! series carries a `pipeline` label. Handles are registered once per pipeline against the
//! recorder the caller injects (no global recorder, so tests and several pipelines in one
//! process do not interfere) and updated per batch, never per row.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};

/// A recorder shared between the engine's threads.
pub type SharedRecorder = Arc<dyn Recorder + Send + Sync>;

/// `(name, unit, help)` of every metric, for documentation and `describe_*`.
pub const METRICS: &[(&str, &str, &str)] = &[
    ("eddy_events_total", "count", "Events read and validated."),
    ("eddy_labels_total", "count", "Labels read and validated."),
    ("eddy_joined_total", "count", "Labels that met their event (learned once per slot)."),
    ("eddy_expired_total", "count", "Events whose label did not come within the TTL."),
    (
        "eddy_unmatched_labels_total",
        "count",
        "Labels whose event never came within the TTL, or that could not be kept.",
    ),
    ("eddy_early_labels_total", "count", "Labels that arrived before their event."),
    ("eddy_duplicate_labels_total", "count", "Labels for an event already joined."),
    ("eddy_evicted_total", "count", "Events evicted from, or refused by, a full join buffer."),
    ("eddy_late_records_total", "count", "Records older than the watermark minus the allowed lateness."),
    ("eddy_dead_letters_total", "count", "Records rejected by a source, by source and reason."),
    (
        "eddy_batch_duration_seconds",
        "seconds",
        "Engine time per batch, by stage (score: events, learn: labels).",
    ),
    ("eddy_join_buffer_events", "count", "Events waiting for their label."),
    ("eddy_join_buffer_bytes", "bytes", "Memory held by the label join buffer."),
    ("eddy_watermark_seconds", "seconds", "Event-time watermark (newest event time seen), Unix seconds."),
    ("eddy_slot_labels_total", "count", "Labels evaluated by a slot."),
    ("eddy_slot_rolling_accuracy", "ratio", "Prequential accuracy of a slot over the rolling window."),
    ("eddy_slot_rolling_log_loss", "count", "Prequential log loss of a slot over the rolling window."),
    ("eddy_slot_rolling_roc_auc", "ratio", "Prequential ROC AUC of a slot over the rolling window."),
    ("eddy_slot_rolling_mae", "count", "Prequential mean absolute error of a slot over the rolling window."),
    ("eddy_slot_model_version", "count", "Registry version of the model a slot serves."),
    ("eddy_drift_detections_total", "count", "Drift detections by detector."),
    ("eddy_drift_estimate", "count", "A drift detector's current estimate (mean of its window)."),
    ("eddy_drift_window_width", "count", "Values in a drift detector's window (ADWIN, KSWIN)."),
    ("eddy_drift_state", "count", "A drift detector's last state: 0 none, 1 warning, 2 drift."),
    ("eddy_feature_window_count", "count", "Values in the last closed window of a feature."),
    ("eddy_feature_window_mean", "count", "Mean of a feature over its last closed window."),
    ("eddy_feature_window_std", "count", "Standard deviation of a feature over its last closed window."),
    ("eddy_feature_window_min", "count", "Minimum of a feature over its last closed window."),
    ("eddy_feature_window_max", "count", "Maximum of a feature over its last closed window."),
    (
        "eddy_feature_window_quantile",
        "count",
        "Quantile of a feature over its last closed window (DDSketch).",
    ),
    (
        "eddy_window_late_records_total",
        "count",
        "Records that came after every window they belong to had closed.",
    ),
    ("eddy_window_state_bytes", "bytes", "Memory held by a feature's window state."),
    ("eddy_window_keys", "count", "Group-by keys with open windows."),
    ("eddy_retrain_triggers_total", "count", "Retrain triggers acted on, by trigger."),
    ("eddy_retrain_outcomes_total", "count", "Retrains by final outcome (promoted, superseded, failed)."),
    ("eddy_retrain_skipped_total", "count", "Retrain triggers skipped, by reason (in_flight, cooldown)."),
    (
        "eddy_retrain_duration_seconds",
        "seconds",
        "Wall time from starting a retrain to installing its model.",
    ),
    ("eddy_training_buffer_examples", "count", "Labelled examples in the training buffer."),
    ("eddy_training_buffer_bytes", "bytes", "Memory held by the training buffer."),
    ("eddy_feature_sql_filtered_total", "count", "Events dropped by the WHERE clause of features.sql."),
    ("eddy_feature_aggregate_keys", "count", "Keys held by a windowed aggregate."),
    ("eddy_feature_aggregate_state_bytes", "bytes", "Estimated memory held by a windowed aggregate's state."),
    (
        "eddy_feature_aggregate_evictions_total",
        "count",
        "Keys a windowed aggregate evicted (least recently seen first) to stay under max_state.",
    ),
    (
        "eddy_feature_aggregate_late_total",
        "count",
        "Events older than their key's newest event in an aggregate.",
    ),
    (
        "eddy_feature_aggregate_value",
        "count",
        "With export_metrics: an aggregate output's value as of the latest event (one series per output).",
    ),
    ("eddy_feature_psi", "count", "Population Stability Index of a feature against its reference."),
    (
        "eddy_feature_ks",
        "count",
        "Two-sample Kolmogorov-Smirnov statistic of a feature against its reference.",
    ),
    (
        "eddy_fluvio_connected",
        "count",
        "1 while a Fluvio connector is connected, 0 while it retries, by connector and direction.",
    ),
    (
        "eddy_fluvio_reconnects_total",
        "count",
        "Failed Fluvio connections followed by a retry (with backoff), by connector and direction.",
    ),
    (
        "eddy_source_lag_records",
        "count",
        "Records a stream source is behind its partition's high watermark, by source and partition.",
    ),
    (
        "eddy_source_committed_offset",
        "count",
        "Last consumer offset a stream source committed (after a durable checkpoint), by partition.",
    ),
    ("eddy_checkpoints_total", "count", "Checkpoints written by this process."),
    ("eddy_checkpoint_seconds", "seconds", "Pause of the engine while a checkpoint is taken and written."),
    ("eddy_checkpoint_bytes", "bytes", "Size of the last checkpoint file."),
    ("eddy_checkpoint_last_unixtime_seconds", "seconds", "When the last checkpoint became durable."),
];

fn unit(u: &str) -> Option<Unit> {
    match u {
        "seconds" => Some(Unit::Seconds),
        "bytes" => Some(Unit::Bytes),
        "count" => Some(Unit::Count),
        "ratio" => Some(Unit::Percent),
        _ => None,
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Registers metric handles with one recorder, labelled with the pipeline name.
#[derive(Clone)]
pub struct MetricsFactory {
    recorder: SharedRecorder,
    pipeline: String,
}

impl std::fmt::Debug for MetricsFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsFactory").field("pipeline", &self.pipeline).finish_non_exhaustive()
    }
}

impl MetricsFactory {
    /// A factory over `recorder`; describes every metric once.
    pub fn new(recorder: SharedRecorder, pipeline: &str) -> Self {
        for (name, u, help) in METRICS {
            let key = KeyName::from_const_str(name);
            let help = SharedString::const_str(help);
            if name.ends_with("_total") {
                recorder.describe_counter(key, unit(u), help);
            } else if name.ends_with("_duration_seconds") {
                recorder.describe_histogram(key, unit(u), help);
            } else {
                recorder.describe_gauge(key, unit(u), help);
            }
        }
        MetricsFactory { recorder, pipeline: pipeline.to_string() }
    }

    /// A factory that records nothing.
    pub fn noop(pipeline: &str) -> Self {
        MetricsFactory { recorder: Arc::new(metrics::NoopRecorder), pipeline: pipeline.to_string() }
    }

    fn key(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Key {
        let mut all = vec![Label::new("pipeline", self.pipeline.clone())];
        all.extend(labels.iter().map(|(k, v)| Label::new(*k, v.to_string())));
        Key::from_parts(name, all)
    }

    /// A counter.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder.register_counter(&self.key(name, labels), &METADATA)
    }

    /// A gauge.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&self.key(name, labels), &METADATA)
    }

    /// A histogram.
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder.register_histogram(&self.key(name, labels), &METADATA)
    }
}

/// The engine's own series.
pub struct EngineMetrics {
    pub(crate) events: Counter,
    pub(crate) labels: Counter,
    pub(crate) joined: Counter,
    pub(crate) expired: Counter,
    pub(crate) unmatched: Counter,
    pub(crate) early: Counter,
    pub(crate) duplicate_labels: Counter,
    pub(crate) evicted: Counter,
    pub(crate) late: Counter,
    pub(crate) score_seconds: Histogram,
    pub(crate) learn_seconds: Histogram,
    pub(crate) buffer_events: Gauge,
    pub(crate) buffer_bytes: Gauge,
    pub(crate) watermark: Gauge,
}

impl EngineMetrics {
    /// Registers the engine's series.
    pub fn new(f: &MetricsFactory) -> Self {
        EngineMetrics {
            events: f.counter("eddy_events_total", &[]),
            labels: f.counter("eddy_labels_total", &[]),
            joined: f.counter("eddy_joined_total", &[]),
            expired: f.counter("eddy_expired_total", &[]),
            unmatched: f.counter("eddy_unmatched_labels_total", &[]),
            early: f.counter("eddy_early_labels_total", &[]),
            duplicate_labels: f.counter("eddy_duplicate_labels_total", &[]),
            evicted: f.counter("eddy_evicted_total", &[]),
            late: f.counter("eddy_late_records_total", &[]),
            score_seconds: f.histogram("eddy_batch_duration_seconds", &[("stage", "score")]),
            learn_seconds: f.histogram("eddy_batch_duration_seconds", &[("stage", "learn")]),
            buffer_events: f.gauge("eddy_join_buffer_events", &[]),
            buffer_bytes: f.gauge("eddy_join_buffer_bytes", &[]),
            watermark: f.gauge("eddy_watermark_seconds", &[]),
        }
    }
}

/// The continuous-training series.
pub struct RetrainMetrics {
    promoted: Counter,
    superseded: Counter,
    failed: Counter,
    pub(crate) skipped_busy: Counter,
    pub(crate) skipped_cooldown: Counter,
    pub(crate) duration: Histogram,
    pub(crate) buffer_examples: Gauge,
    pub(crate) buffer_bytes: Gauge,
    factory: MetricsFactory,
}

impl RetrainMetrics {
    /// Registers the continuous-training series.
    pub fn new(f: &MetricsFactory) -> Self {
        let outcome = |o: &str| f.counter("eddy_retrain_outcomes_total", &[("outcome", o)]);
        RetrainMetrics {
            promoted: outcome("promoted"),
            superseded: outcome("superseded"),
            failed: outcome("failed"),
            skipped_busy: f.counter("eddy_retrain_skipped_total", &[("reason", "in_flight")]),
            skipped_cooldown: f.counter("eddy_retrain_skipped_total", &[("reason", "cooldown")]),
            duration: f.histogram("eddy_retrain_duration_seconds", &[]),
            buffer_examples: f.gauge("eddy_training_buffer_examples", &[]),
            buffer_bytes: f.gauge("eddy_training_buffer_bytes", &[]),
            factory: f.clone(),
        }
    }

    /// Counts a retrain reaching a final outcome (`rejected` is only known when the run ends,
    /// and is reported in the summary).
    pub fn count(&self, outcome: crate::retrain::RetrainOutcome) {
        use crate::retrain::RetrainOutcome;
        match outcome {
            RetrainOutcome::Promoted => self.promoted.increment(1),
            RetrainOutcome::Superseded => self.superseded.increment(1),
            RetrainOutcome::Failed => self.failed.increment(1),
            RetrainOutcome::Pending | RetrainOutcome::Rejected => {}
        }
    }

    /// Counts a trigger acted on.
    pub fn triggered(&self, trigger: &crate::retrain::RetrainTrigger) {
        self.factory
            .counter("eddy_retrain_triggers_total", &[("trigger", &trigger.to_string())])
            .increment(1);
    }
}

/// One slot's series.
pub struct SlotMetricsHandles {
    pub(crate) labels: Counter,
    pub(crate) accuracy: Gauge,
    pub(crate) log_loss: Gauge,
    pub(crate) auc: Gauge,
    pub(crate) mae: Gauge,
    pub(crate) version: Gauge,
}

impl SlotMetricsHandles {
    /// Registers the series of slot `slot`.
    pub fn new(f: &MetricsFactory, slot: &str) -> Self {
        let l = [("slot", slot)];
        SlotMetricsHandles {
            labels: f.counter("eddy_slot_labels_total", &l),
            accuracy: f.gauge("eddy_slot_rolling_accuracy", &l),
            log_loss: f.gauge("eddy_slot_rolling_log_loss", &l),
            auc: f.gauge("eddy_slot_rolling_roc_auc", &l),
            mae: f.gauge("eddy_slot_rolling_mae", &l),
            version: f.gauge("eddy_slot_model_version", &l),
        }
    }
}

/// One drift detector's series.
pub struct DetectorMetrics {
    pub(crate) detections: Counter,
    pub(crate) estimate: Gauge,
    pub(crate) width: Gauge,
    pub(crate) state: Gauge,
}

impl DetectorMetrics {
    /// Registers the series of detector `name` watching `input`.
    pub fn new(f: &MetricsFactory, name: &str, input: &str) -> Self {
        let l = [("detector", name), ("input", input)];
        DetectorMetrics {
            detections: f.counter("eddy_drift_detections_total", &l),
            estimate: f.gauge("eddy_drift_estimate", &l),
            width: f.gauge("eddy_drift_window_width", &l),
            state: f.gauge("eddy_drift_state", &l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_unique_and_conventional() {
        let mut names: Vec<_> = METRICS.iter().map(|m| m.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for (name, unit, _) in METRICS {
            assert!(name.starts_with("eddy_"), "{name}");
            if *unit == "seconds" {
                assert!(name.ends_with("_seconds"), "{name}");
            }
            if *unit == "bytes" {
                assert!(name.ends_with("_bytes"), "{name}");
            }
        }
    }
}
