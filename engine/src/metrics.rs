//! Every metric eddy exports, in one place: its name, type, unit and help text.
//!
//! Names follow Prometheus conventions (`eddy_<noun>_<unit>[_total]`, base units; counters and
//! only counters end in `_total`) and every series carries a `pipeline` label. Each metric is
//! one [`MetricDef`] constant below, listed in [`METRICS`]; code elsewhere registers a series
//! by passing the constant to [`MetricsFactory`], never a name, so a name is spelled once.
//! Handles are registered once per pipeline against the recorder the caller injects (no global
//! recorder, so tests and several pipelines in one process do not interfere) and updated per
//! batch, never per row.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};

use crate::retrain::RetrainOutcome;

/// A recorder shared between the engine's threads.
pub type SharedRecorder = Arc<dyn Recorder + Send + Sync>;

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up; the name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution (rendered with `_bucket`, `_sum` and `_count` series).
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`, as in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric: what [`MetricsFactory`] registers and describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Prometheus name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Unit of the value; `None` for dimensionless figures (ratios, losses, estimates, states,
    /// versions, offsets) and for values in the units of the data (feature statistics).
    pub unit: Option<Unit>,
    /// Help text.
    pub help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> MetricDef {
    MetricDef { name, kind: MetricKind::Counter, unit: Some(Unit::Count), help }
}

const fn gauge(name: &'static str, unit: Option<Unit>, help: &'static str) -> MetricDef {
    MetricDef { name, kind: MetricKind::Gauge, unit, help }
}

const fn seconds_histogram(name: &'static str, help: &'static str) -> MetricDef {
    MetricDef { name, kind: MetricKind::Histogram, unit: Some(Unit::Seconds), help }
}

const COUNT: Option<Unit> = Some(Unit::Count);
const BYTES: Option<Unit> = Some(Unit::Bytes);
const SECONDS: Option<Unit> = Some(Unit::Seconds);
const NONE: Option<Unit> = None;

// Join and engine.
/// `eddy_events_total`.
pub const EVENTS_TOTAL: MetricDef = counter("eddy_events_total", "Events read and validated.");
/// `eddy_labels_total`.
pub const LABELS_TOTAL: MetricDef = counter("eddy_labels_total", "Labels read and validated.");
/// `eddy_joined_total`.
pub const JOINED_TOTAL: MetricDef =
    counter("eddy_joined_total", "Labels that met their event (learned once per slot).");
/// `eddy_expired_total`.
pub const EXPIRED_TOTAL: MetricDef =
    counter("eddy_expired_total", "Events whose label did not come within the TTL.");
/// `eddy_unmatched_labels_total`.
pub const UNMATCHED_LABELS_TOTAL: MetricDef = counter(
    "eddy_unmatched_labels_total",
    "Labels whose event never came within the TTL, or that could not be kept.",
);
/// `eddy_early_labels_total`.
pub const EARLY_LABELS_TOTAL: MetricDef =
    counter("eddy_early_labels_total", "Labels that arrived before their event.");
/// `eddy_duplicate_labels_total`.
pub const DUPLICATE_LABELS_TOTAL: MetricDef =
    counter("eddy_duplicate_labels_total", "Labels for an event already joined.");
/// `eddy_evicted_total`.
pub const EVICTED_TOTAL: MetricDef =
    counter("eddy_evicted_total", "Events evicted from, or refused by, a full join buffer.");
/// `eddy_late_records_total`.
pub const LATE_RECORDS_TOTAL: MetricDef =
    counter("eddy_late_records_total", "Records older than the watermark minus the allowed lateness.");
/// `eddy_skipped_blank_lines_total`.
pub const SKIPPED_BLANK_LINES_TOTAL: MetricDef = counter(
    "eddy_skipped_blank_lines_total",
    "Blank lines of text inputs, skipped (lines read = events + labels + dead letters + these).",
);
/// `eddy_dead_letters_total{source,reason}`.
pub const DEAD_LETTERS_TOTAL: MetricDef =
    counter("eddy_dead_letters_total", "Records rejected by a source, by source and reason.");
/// `eddy_batch_duration_seconds{stage}` (see [`BatchStage`]).
pub const BATCH_DURATION_SECONDS: MetricDef = seconds_histogram(
    "eddy_batch_duration_seconds",
    "Engine time per batch, by stage (score: events, learn: labels).",
);
/// `eddy_join_buffer_events`.
pub const JOIN_BUFFER_EVENTS: MetricDef =
    gauge("eddy_join_buffer_events", COUNT, "Events waiting for their label.");
/// `eddy_join_buffer_bytes`.
pub const JOIN_BUFFER_BYTES: MetricDef =
    gauge("eddy_join_buffer_bytes", BYTES, "Memory held by the label join buffer.");
/// `eddy_watermark_seconds`.
pub const WATERMARK_SECONDS: MetricDef =
    gauge("eddy_watermark_seconds", SECONDS, "Event-time watermark (newest event time seen), Unix seconds.");

// Slots.
/// `eddy_slot_labels_total{slot}`.
pub const SLOT_LABELS_TOTAL: MetricDef = counter("eddy_slot_labels_total", "Labels evaluated by a slot.");
/// `eddy_slot_rolling_accuracy{slot}`: a ratio in [0, 1].
pub const SLOT_ROLLING_ACCURACY: MetricDef = gauge(
    "eddy_slot_rolling_accuracy",
    NONE,
    "Prequential accuracy of a slot over the rolling window (0 to 1).",
);
/// `eddy_slot_rolling_log_loss{slot}`.
pub const SLOT_ROLLING_LOG_LOSS: MetricDef =
    gauge("eddy_slot_rolling_log_loss", NONE, "Prequential log loss of a slot over the rolling window.");
/// `eddy_slot_rolling_roc_auc{slot}`: a ratio in [0, 1].
pub const SLOT_ROLLING_ROC_AUC: MetricDef = gauge(
    "eddy_slot_rolling_roc_auc",
    NONE,
    "Prequential ROC AUC of a slot over the rolling window (0 to 1).",
);
/// `eddy_slot_rolling_mae{slot}`: in the units of the label.
pub const SLOT_ROLLING_MAE: MetricDef = gauge(
    "eddy_slot_rolling_mae",
    NONE,
    "Prequential mean absolute error of a slot over the rolling window (in the label's units).",
);
/// `eddy_slot_model_version{slot}`.
pub const SLOT_MODEL_VERSION: MetricDef =
    gauge("eddy_slot_model_version", NONE, "Registry version of the model a slot serves.");

// Drift detectors.
/// `eddy_drift_detections_total{detector,input}`.
pub const DRIFT_DETECTIONS_TOTAL: MetricDef =
    counter("eddy_drift_detections_total", "Drift detections by detector.");
/// `eddy_drift_estimate{detector,input}`.
pub const DRIFT_ESTIMATE: MetricDef =
    gauge("eddy_drift_estimate", NONE, "A drift detector's current estimate (mean of its window).");
/// `eddy_drift_window_width{detector,input}`.
pub const DRIFT_WINDOW_WIDTH: MetricDef =
    gauge("eddy_drift_window_width", COUNT, "Values in a drift detector's window (ADWIN, KSWIN).");
/// `eddy_drift_state{detector,input}`.
pub const DRIFT_STATE: MetricDef =
    gauge("eddy_drift_state", NONE, "A drift detector's last state: 0 none, 1 warning, 2 drift.");

// Feature windows (`[windows]`) and reference drift (`[reference_drift]`).
/// `eddy_feature_window_values{window,feature[,key]}` (was `eddy_feature_window_count`, which
/// Prometheus reserves for histograms and summaries).
pub const FEATURE_WINDOW_VALUES: MetricDef =
    gauge("eddy_feature_window_values", COUNT, "Values in the last closed window of a feature.");
/// `eddy_feature_window_mean{window,feature[,key]}`.
pub const FEATURE_WINDOW_MEAN: MetricDef =
    gauge("eddy_feature_window_mean", NONE, "Mean of a feature over its last closed window.");
/// `eddy_feature_window_std{window,feature[,key]}`.
pub const FEATURE_WINDOW_STD: MetricDef =
    gauge("eddy_feature_window_std", NONE, "Standard deviation of a feature over its last closed window.");
/// `eddy_feature_window_min{window,feature[,key]}`.
pub const FEATURE_WINDOW_MIN: MetricDef =
    gauge("eddy_feature_window_min", NONE, "Minimum of a feature over its last closed window.");
/// `eddy_feature_window_max{window,feature[,key]}`.
pub const FEATURE_WINDOW_MAX: MetricDef =
    gauge("eddy_feature_window_max", NONE, "Maximum of a feature over its last closed window.");
/// `eddy_feature_window_quantile{window,feature[,key],q}`: the label is `q`, not `quantile`,
/// which Prometheus reserves for summaries.
pub const FEATURE_WINDOW_QUANTILE: MetricDef = gauge(
    "eddy_feature_window_quantile",
    NONE,
    "Quantile q of a feature over its last closed window (DDSketch).",
);
/// `eddy_window_late_records_total{window,feature}`.
pub const WINDOW_LATE_RECORDS_TOTAL: MetricDef = counter(
    "eddy_window_late_records_total",
    "Records that came after every window they belong to had closed.",
);
/// `eddy_window_state_bytes{window,feature}`.
pub const WINDOW_STATE_BYTES: MetricDef =
    gauge("eddy_window_state_bytes", BYTES, "Memory held by a feature's window state.");
/// `eddy_window_keys{window,feature}`.
pub const WINDOW_KEYS: MetricDef = gauge("eddy_window_keys", COUNT, "Group-by keys with open windows.");
/// `eddy_feature_psi{feature}`.
pub const FEATURE_PSI: MetricDef =
    gauge("eddy_feature_psi", NONE, "Population Stability Index of a feature against its reference.");
/// `eddy_feature_ks{feature}`.
pub const FEATURE_KS: MetricDef = gauge(
    "eddy_feature_ks",
    NONE,
    "Two-sample Kolmogorov-Smirnov statistic of a feature against its reference.",
);

// Continuous training.
/// `eddy_retrain_triggers_total{trigger}`.
pub const RETRAIN_TRIGGERS_TOTAL: MetricDef =
    counter("eddy_retrain_triggers_total", "Retrain triggers acted on, by trigger.");
/// `eddy_retrain_outcomes_total{outcome}` (see [`RetrainOutcomeCounters`]).
pub const RETRAIN_OUTCOMES_TOTAL: MetricDef =
    counter("eddy_retrain_outcomes_total", "Retrains by final outcome (promoted, superseded, failed).");
/// `eddy_retrain_skipped_total{reason}` (see [`RetrainSkipReason`]).
pub const RETRAIN_SKIPPED_TOTAL: MetricDef =
    counter("eddy_retrain_skipped_total", "Retrain triggers skipped, by reason (in_flight, cooldown).");
/// `eddy_retrain_duration_seconds`.
pub const RETRAIN_DURATION_SECONDS: MetricDef = seconds_histogram(
    "eddy_retrain_duration_seconds",
    "Wall time from starting a retrain to installing its model.",
);
/// `eddy_training_buffer_examples`.
pub const TRAINING_BUFFER_EXAMPLES: MetricDef =
    gauge("eddy_training_buffer_examples", COUNT, "Labelled examples in the training buffer.");
/// `eddy_training_buffer_bytes`.
pub const TRAINING_BUFFER_BYTES: MetricDef =
    gauge("eddy_training_buffer_bytes", BYTES, "Memory held by the training buffer.");

// Feature SQL.
/// `eddy_feature_sql_filtered_total`.
pub const FEATURE_SQL_FILTERED_TOTAL: MetricDef =
    counter("eddy_feature_sql_filtered_total", "Events dropped by the WHERE clause of features.sql.");
/// `eddy_feature_aggregate_keys{aggregate}`.
pub const FEATURE_AGGREGATE_KEYS: MetricDef =
    gauge("eddy_feature_aggregate_keys", COUNT, "Keys held by a windowed aggregate.");
/// `eddy_feature_aggregate_state_bytes{aggregate}`.
pub const FEATURE_AGGREGATE_STATE_BYTES: MetricDef = gauge(
    "eddy_feature_aggregate_state_bytes",
    BYTES,
    "Estimated memory held by a windowed aggregate's state.",
);
/// `eddy_feature_aggregate_evictions_total{aggregate}`.
pub const FEATURE_AGGREGATE_EVICTIONS_TOTAL: MetricDef = counter(
    "eddy_feature_aggregate_evictions_total",
    "Keys a windowed aggregate evicted (least recently seen first) to stay under max_state.",
);
/// `eddy_feature_aggregate_late_total{aggregate}`.
pub const FEATURE_AGGREGATE_LATE_TOTAL: MetricDef = counter(
    "eddy_feature_aggregate_late_total",
    "Events older than their key's newest event in an aggregate.",
);
/// `eddy_feature_aggregate_value{aggregate,output}`.
pub const FEATURE_AGGREGATE_VALUE: MetricDef = gauge(
    "eddy_feature_aggregate_value",
    NONE,
    "With export_metrics: an aggregate output's value as of the latest event (one series per output).",
);

// Fluvio connectors (only with a cluster).
/// `eddy_fluvio_connected{connector,direction}`.
pub const FLUVIO_CONNECTED: MetricDef = gauge(
    "eddy_fluvio_connected",
    NONE,
    "1 while a Fluvio connector is connected, 0 while it retries, by connector and direction.",
);
/// `eddy_fluvio_reconnects_total{connector,direction}`.
pub const FLUVIO_RECONNECTS_TOTAL: MetricDef = counter(
    "eddy_fluvio_reconnects_total",
    "Failed Fluvio connections followed by a retry (with backoff), by connector and direction.",
);
/// `eddy_source_lag_records{source,partition}`.
pub const SOURCE_LAG_RECORDS: MetricDef = gauge(
    "eddy_source_lag_records",
    COUNT,
    "Records a stream source is behind its partition's high watermark, by source and partition.",
);
/// `eddy_source_committed_offset{source,partition}`.
pub const SOURCE_COMMITTED_OFFSET: MetricDef = gauge(
    "eddy_source_committed_offset",
    NONE,
    "Last consumer offset a stream source committed (after a durable checkpoint), by partition.",
);

// Checkpoints.
/// `eddy_checkpoints_total`.
pub const CHECKPOINTS_TOTAL: MetricDef =
    counter("eddy_checkpoints_total", "Checkpoints written by this process.");
/// `eddy_checkpoint_seconds` (a histogram).
pub const CHECKPOINT_SECONDS: MetricDef = seconds_histogram(
    "eddy_checkpoint_seconds",
    "Pause of the engine while a checkpoint is taken and written.",
);
/// `eddy_checkpoint_bytes`.
pub const CHECKPOINT_BYTES: MetricDef =
    gauge("eddy_checkpoint_bytes", BYTES, "Size of the last checkpoint file.");
/// `eddy_checkpoint_last_unixtime_seconds`.
pub const CHECKPOINT_LAST_UNIXTIME_SECONDS: MetricDef =
    gauge("eddy_checkpoint_last_unixtime_seconds", SECONDS, "When the last checkpoint became durable.");

/// Every metric, for documentation and `describe_*`.
pub const METRICS: &[&MetricDef] = &[
    &EVENTS_TOTAL,
    &LABELS_TOTAL,
    &JOINED_TOTAL,
    &EXPIRED_TOTAL,
    &UNMATCHED_LABELS_TOTAL,
    &EARLY_LABELS_TOTAL,
    &DUPLICATE_LABELS_TOTAL,
    &EVICTED_TOTAL,
    &LATE_RECORDS_TOTAL,
    &SKIPPED_BLANK_LINES_TOTAL,
    &DEAD_LETTERS_TOTAL,
    &BATCH_DURATION_SECONDS,
    &JOIN_BUFFER_EVENTS,
    &JOIN_BUFFER_BYTES,
    &WATERMARK_SECONDS,
    &SLOT_LABELS_TOTAL,
    &SLOT_ROLLING_ACCURACY,
    &SLOT_ROLLING_LOG_LOSS,
    &SLOT_ROLLING_ROC_AUC,
    &SLOT_ROLLING_MAE,
    &SLOT_MODEL_VERSION,
    &DRIFT_DETECTIONS_TOTAL,
    &DRIFT_ESTIMATE,
    &DRIFT_WINDOW_WIDTH,
    &DRIFT_STATE,
    &FEATURE_WINDOW_VALUES,
    &FEATURE_WINDOW_MEAN,
    &FEATURE_WINDOW_STD,
    &FEATURE_WINDOW_MIN,
    &FEATURE_WINDOW_MAX,
    &FEATURE_WINDOW_QUANTILE,
    &WINDOW_LATE_RECORDS_TOTAL,
    &WINDOW_STATE_BYTES,
    &WINDOW_KEYS,
    &FEATURE_PSI,
    &FEATURE_KS,
    &RETRAIN_TRIGGERS_TOTAL,
    &RETRAIN_OUTCOMES_TOTAL,
    &RETRAIN_SKIPPED_TOTAL,
    &RETRAIN_DURATION_SECONDS,
    &TRAINING_BUFFER_EXAMPLES,
    &TRAINING_BUFFER_BYTES,
    &FEATURE_SQL_FILTERED_TOTAL,
    &FEATURE_AGGREGATE_KEYS,
    &FEATURE_AGGREGATE_STATE_BYTES,
    &FEATURE_AGGREGATE_EVICTIONS_TOTAL,
    &FEATURE_AGGREGATE_LATE_TOTAL,
    &FEATURE_AGGREGATE_VALUE,
    &FLUVIO_CONNECTED,
    &FLUVIO_RECONNECTS_TOTAL,
    &SOURCE_LAG_RECORDS,
    &SOURCE_COMMITTED_OFFSET,
    &CHECKPOINTS_TOTAL,
    &CHECKPOINT_SECONDS,
    &CHECKPOINT_BYTES,
    &CHECKPOINT_LAST_UNIXTIME_SECONDS,
];

/// The metrics only a Fluvio connector emits (they need a cluster).
pub const FLUVIO_METRICS: &[&MetricDef] =
    &[&FLUVIO_CONNECTED, &FLUVIO_RECONNECTS_TOTAL, &SOURCE_LAG_RECORDS, &SOURCE_COMMITTED_OFFSET];

/// The `stage` label of [`BATCH_DURATION_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStage {
    /// Scoring a batch of events.
    Score,
    /// Learning from a batch of labels.
    Learn,
}

impl BatchStage {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStage::Score => "score",
            BatchStage::Learn => "learn",
        }
    }
}

/// The `reason` label of [`RETRAIN_SKIPPED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrainSkipReason {
    /// A retrain was already armed or running.
    InFlight,
    /// The trigger came within the cooldown after the previous retrain.
    Cooldown,
}

impl RetrainSkipReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetrainSkipReason::InFlight => "in_flight",
            RetrainSkipReason::Cooldown => "cooldown",
        }
    }
}

/// The `direction` label of the Fluvio connection metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorDirection {
    /// A source (consumer).
    Source,
    /// A sink (producer).
    Sink,
}

impl ConnectorDirection {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorDirection::Source => "source",
            ConnectorDirection::Sink => "sink",
        }
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
    /// A factory over `recorder`; describes every metric in [`METRICS`] once, with its
    /// declared type and unit.
    pub fn new(recorder: SharedRecorder, pipeline: &str) -> Self {
        for m in METRICS {
            let key = KeyName::from_const_str(m.name);
            let help = SharedString::const_str(m.help);
            match m.kind {
                MetricKind::Counter => recorder.describe_counter(key, m.unit, help),
                MetricKind::Gauge => recorder.describe_gauge(key, m.unit, help),
                MetricKind::Histogram => recorder.describe_histogram(key, m.unit, help),
            }
        }
        MetricsFactory { recorder, pipeline: pipeline.to_string() }
    }

    /// A factory that records nothing.
    pub fn noop(pipeline: &str) -> Self {
        MetricsFactory { recorder: Arc::new(metrics::NoopRecorder), pipeline: pipeline.to_string() }
    }

    fn key(&self, def: &MetricDef, kind: MetricKind, labels: &[(&'static str, &str)]) -> Key {
        assert!(
            def.kind == kind,
            "metric {} is declared a {}, registered as a {}",
            def.name,
            def.kind.as_str(),
            kind.as_str()
        );
        let mut all = vec![Label::new("pipeline", self.pipeline.clone())];
        all.extend(labels.iter().map(|(k, v)| Label::new(*k, v.to_string())));
        Key::from_parts(def.name, all)
    }

    /// The series of counter `def` with `labels` (besides `pipeline`).
    ///
    /// # Panics
    /// When `def` is not declared a counter.
    pub fn counter(&self, def: &MetricDef, labels: &[(&'static str, &str)]) -> Counter {
        self.recorder.register_counter(&self.key(def, MetricKind::Counter, labels), &METADATA)
    }

    /// The series of gauge `def` with `labels` (besides `pipeline`).
    ///
    /// # Panics
    /// When `def` is not declared a gauge.
    pub fn gauge(&self, def: &MetricDef, labels: &[(&'static str, &str)]) -> Gauge {
        self.recorder.register_gauge(&self.key(def, MetricKind::Gauge, labels), &METADATA)
    }

    /// The series of histogram `def` with `labels` (besides `pipeline`).
    ///
    /// # Panics
    /// When `def` is not declared a histogram.
    pub fn histogram(&self, def: &MetricDef, labels: &[(&'static str, &str)]) -> Histogram {
        self.recorder.register_histogram(&self.key(def, MetricKind::Histogram, labels), &METADATA)
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
    pub(crate) blank_lines: Counter,
    pub(crate) score_seconds: Histogram,
    pub(crate) learn_seconds: Histogram,
    pub(crate) buffer_events: Gauge,
    pub(crate) buffer_bytes: Gauge,
    pub(crate) watermark: Gauge,
}

impl EngineMetrics {
    /// Registers the engine's series.
    pub fn new(f: &MetricsFactory) -> Self {
        let stage = |s: BatchStage| f.histogram(&BATCH_DURATION_SECONDS, &[("stage", s.as_str())]);
        EngineMetrics {
            events: f.counter(&EVENTS_TOTAL, &[]),
            labels: f.counter(&LABELS_TOTAL, &[]),
            joined: f.counter(&JOINED_TOTAL, &[]),
            expired: f.counter(&EXPIRED_TOTAL, &[]),
            unmatched: f.counter(&UNMATCHED_LABELS_TOTAL, &[]),
            early: f.counter(&EARLY_LABELS_TOTAL, &[]),
            duplicate_labels: f.counter(&DUPLICATE_LABELS_TOTAL, &[]),
            evicted: f.counter(&EVICTED_TOTAL, &[]),
            late: f.counter(&LATE_RECORDS_TOTAL, &[]),
            blank_lines: f.counter(&SKIPPED_BLANK_LINES_TOTAL, &[]),
            score_seconds: stage(BatchStage::Score),
            learn_seconds: stage(BatchStage::Learn),
            buffer_events: f.gauge(&JOIN_BUFFER_EVENTS, &[]),
            buffer_bytes: f.gauge(&JOIN_BUFFER_BYTES, &[]),
            watermark: f.gauge(&WATERMARK_SECONDS, &[]),
        }
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
            labels: f.counter(&SLOT_LABELS_TOTAL, &l),
            accuracy: f.gauge(&SLOT_ROLLING_ACCURACY, &l),
            log_loss: f.gauge(&SLOT_ROLLING_LOG_LOSS, &l),
            auc: f.gauge(&SLOT_ROLLING_ROC_AUC, &l),
            mae: f.gauge(&SLOT_ROLLING_MAE, &l),
            version: f.gauge(&SLOT_MODEL_VERSION, &l),
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
            detections: f.counter(&DRIFT_DETECTIONS_TOTAL, &l),
            estimate: f.gauge(&DRIFT_ESTIMATE, &l),
            width: f.gauge(&DRIFT_WINDOW_WIDTH, &l),
            state: f.gauge(&DRIFT_STATE, &l),
        }
    }
}

/// `eddy_retrain_outcomes_total`, one counter per final outcome.
pub(crate) struct RetrainOutcomeCounters {
    promoted: Counter,
    superseded: Counter,
    failed: Counter,
}

impl RetrainOutcomeCounters {
    fn new(f: &MetricsFactory) -> Self {
        let c = |o: RetrainOutcome| f.counter(&RETRAIN_OUTCOMES_TOTAL, &[("outcome", o.as_str())]);
        RetrainOutcomeCounters {
            promoted: c(RetrainOutcome::Promoted),
            superseded: c(RetrainOutcome::Superseded),
            failed: c(RetrainOutcome::Failed),
        }
    }
}

/// Continuous training's series.
pub struct RetrainMetrics {
    outcomes: RetrainOutcomeCounters,
    pub(crate) skipped_busy: Counter,
    pub(crate) skipped_cooldown: Counter,
    pub(crate) duration: Histogram,
    pub(crate) buffer_examples: Gauge,
    pub(crate) buffer_bytes: Gauge,
    factory: MetricsFactory,
}

impl RetrainMetrics {
    /// Registers the series of continuous training.
    pub(crate) fn new(f: &MetricsFactory) -> Self {
        let skipped = |r: RetrainSkipReason| f.counter(&RETRAIN_SKIPPED_TOTAL, &[("reason", r.as_str())]);
        RetrainMetrics {
            outcomes: RetrainOutcomeCounters::new(f),
            skipped_busy: skipped(RetrainSkipReason::InFlight),
            skipped_cooldown: skipped(RetrainSkipReason::Cooldown),
            duration: f.histogram(&RETRAIN_DURATION_SECONDS, &[]),
            buffer_examples: f.gauge(&TRAINING_BUFFER_EXAMPLES, &[]),
            buffer_bytes: f.gauge(&TRAINING_BUFFER_BYTES, &[]),
            factory: f.clone(),
        }
    }

    /// Counts a retrain reaching a final outcome (`rejected` is only known when the run ends,
    /// and is reported in the summary).
    pub(crate) fn count(&self, outcome: RetrainOutcome) {
        match outcome {
            RetrainOutcome::Promoted => self.outcomes.promoted.increment(1),
            RetrainOutcome::Superseded => self.outcomes.superseded.increment(1),
            RetrainOutcome::Failed => self.outcomes.failed.increment(1),
            RetrainOutcome::Pending | RetrainOutcome::Rejected => {}
        }
    }

    /// Counts a trigger acted on (`trigger` is open-ended: `drift:NAME`, `every_labels`, ...).
    pub(crate) fn triggered(&self, trigger: &str) {
        self.factory.counter(&RETRAIN_TRIGGERS_TOTAL, &[("trigger", trigger)]).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_unique_and_conventional() {
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "a name is listed twice");
        for m in METRICS {
            let name = m.name;
            assert!(name.starts_with("eddy_"), "{name}: must start with eddy_");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !name.contains("__")
                    && !name.ends_with('_'),
                "{name}: snake_case only"
            );
            assert!(!m.help.is_empty() && m.help.ends_with('.'), "{name}: help must be a sentence");
            // Counters, and only counters, end in `_total`.
            assert_eq!(m.kind == MetricKind::Counter, name.ends_with("_total"), "{name}: _total iff counter");
            // The exposition format appends these to histograms (and summaries); on any other
            // name promtool rejects them, and on a histogram they would be doubled.
            for reserved in ["_count", "_sum", "_bucket"] {
                assert!(!name.ends_with(reserved), "{name}: must not end in {reserved}");
            }
            let base = name.strip_suffix("_total").unwrap_or(name);
            assert_eq!(
                m.unit == Some(Unit::Seconds),
                base.ends_with("_seconds"),
                "{name}: _seconds iff seconds"
            );
            assert_eq!(m.unit == Some(Unit::Bytes), base.ends_with("_bytes"), "{name}: _bytes iff bytes");
            match m.kind {
                MetricKind::Counter => assert_eq!(m.unit, Some(Unit::Count), "{name}: counters count"),
                // The exporter gives every histogram the same buckets, in seconds.
                MetricKind::Histogram => {
                    assert_eq!(m.unit, Some(Unit::Seconds), "{name}: histograms are in seconds")
                }
                MetricKind::Gauge => {}
            }
            // Only base units (promtool's lint), no abbreviations.
            for word in name.split('_') {
                assert!(
                    !["ms", "us", "ns", "sec", "secs", "millis", "milliseconds", "kb", "mb", "gb", "percent"]
                        .contains(&word),
                    "{name}: use base units"
                );
            }
        }
        for m in FLUVIO_METRICS {
            assert!(METRICS.contains(m), "{} is not in METRICS", m.name);
        }
    }

    #[test]
    fn dimensionless_figures_have_no_unit() {
        for m in [
            &SLOT_ROLLING_ACCURACY,
            &SLOT_ROLLING_LOG_LOSS,
            &SLOT_ROLLING_ROC_AUC,
            &SLOT_ROLLING_MAE,
            &DRIFT_ESTIMATE,
            &DRIFT_STATE,
            &FEATURE_PSI,
            &FEATURE_KS,
            &FEATURE_WINDOW_MEAN,
            &FEATURE_WINDOW_QUANTILE,
        ] {
            assert_eq!(m.unit, None, "{}", m.name);
        }
    }

    #[test]
    #[should_panic(expected = "declared a histogram, registered as a gauge")]
    fn registering_a_metric_as_another_type_panics() {
        let _ = MetricsFactory::noop("t").gauge(&CHECKPOINT_SECONDS, &[]);
    }

    /// Metric names are spelled in this file only: every other source file registers a series
    /// through a [`MetricDef`] constant. Test directories (which check scrapes) are exempt.
    #[test]
    fn no_metric_name_literals_outside_this_file() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if path.is_dir() {
                    if !(name.starts_with('.') || name == "target" || name == "tests" || name == "out") {
                        walk(&path, out);
                    }
                } else if name.ends_with(".rs") {
                    out.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let this = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("metrics.rs");
        let mut files = Vec::new();
        walk(root, &mut files);
        assert!(files.iter().any(|f| f.ends_with("connectors/src/fluvio_client.rs")), "walked {root:?}");
        let needle = concat!("\"", "eddy", "_");
        let mut found = Vec::new();
        for f in files.iter().filter(|f| **f != this) {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for (i, line) in text.lines().enumerate() {
                if line.contains(needle) {
                    found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "metric names belong in engine/src/metrics.rs (use its MetricDef constants):\n{}",
            found.join("\n")
        );
    }
}
