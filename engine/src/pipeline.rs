//! `Pipeline`: the dataflow runtime that ties sources, the label join, the model slots, the
//! evaluator and the sinks together.
//!
//! Threads: one per source (read + decode + validate), one per sink, one for dead letters, and
//! the engine thread that runs this file's hot loop. They talk over bounded crossbeam channels,
//! so a slow sink slows the engine and a slow engine slows the sources — backpressure, never
//! unbounded queues. The hot loop is synchronous and allocation-free per row.
//!
//! Per event: update the watermark and expire the join, encode, score with every slot, emit
//! the predictions, buffer the encoded row. Per label: find the event, record each slot's
//! *earlier* prediction in its evaluator (prequential), then let each slot learn.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::builder::{Float32Builder, Int64Builder, StringBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use crossbeam_channel::{bounded, Receiver, Sender};
use eddy_operators::encoder::{EncodingConfig, FeatureEncoder};
use eddy_scorer::encoding::{Feature, FeatureKind, FeatureSpec};
use eddy_scorer::model::ModelKind;
use xxhash_rust::xxh3::xxh3_64;

use crate::drift::{DriftInput, DriftMonitor, DriftMonitorConfig};
use crate::encode::BatchEncoder;
use crate::error::EngineError;
use crate::evaluator::EvaluationConfig;
use crate::feature_stats::{
    window_stat, ClosedWindow, FeatureMonitors, FeatureWindowConfig, ReferenceDriftSection,
};
use crate::label_join::JoinCounters;
use crate::label_join::{EventOutcome, JoinConfig, LabelJoin, LabelOutcome};
use crate::merge::{MergeInput, Next, SourceMessage, StreamMerger};
use crate::metrics::{EngineMetrics, MetricsFactory, SharedRecorder, SlotMetricsHandles};
use crate::promotion::{PromotionConfig, PromotionGate};
use crate::publisher::{ModelPublisher, PublishJob};
use crate::record::{DeadLetter, StreamRole};
use crate::retrain::{ManualTrigger, RetrainConfig, RetrainOutcome, RetrainRecord, Running, TrainingBuffer};
use crate::sink::{Sink, SinkError, SinkInput};
use crate::slot::{Slot, SlotSpec};
use crate::source::{Poll, Source, SourceContext, StreamSpec};
use crate::summary::{DriftRecord, FeatureSummary, PromotionRecord, RunSummary};
use eddy_operators::learner::LinearLearner;
use eddy_scorer::registry::{Manifest, Producer, TimeRange};
use eddy_scorer::snapshot::ModelSnapshot;

/// Batches in flight per channel.
const CHANNEL_DEPTH: usize = 8;

/// Metrics and drift events are published every this many rows (and when input pauses or
/// ends): often enough for a scrape, rare enough to cost nothing per row.
const PUBLISH_EVERY_ROWS: usize = 4096;

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
}

/// Resolved registry settings.
#[derive(Debug, Clone)]
pub struct RegistrySpec {
    /// Registry directory.
    pub dir: std::path::PathBuf,
    /// Publish the champion every this many label updates.
    pub every_updates: Option<u64>,
    /// ... and at least this often (wall clock).
    pub interval: Option<Duration>,
    /// Hash of the config, recorded in manifests.
    pub config_hash: String,
}

/// Shared run controls: a stop flag (set by signal handlers) and live counters for progress
/// reporting.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Set to ask the pipeline to stop reading, drain and finish.
    pub stop: Arc<AtomicBool>,
    /// Events processed so far.
    pub events: Arc<AtomicU64>,
    /// Manual retrain requests (from the admin endpoint).
    pub manual_retrain: ManualTrigger,
}

/// A sink attached to one output stream.
pub struct SinkBinding {
    /// Config name.
    pub name: String,
    /// Which output it receives.
    pub input: SinkInput,
    /// The sink.
    pub sink: Box<dyn Sink>,
}

/// A pipeline ready to run. See the module docs.
pub struct Pipeline {
    spec: PipelineSpec,
    control: RunControl,
    metrics: MetricsFactory,
    dead_letter_tx: Sender<DeadLetter>,
    dead_letter_rx: Receiver<DeadLetter>,
}

impl Pipeline {
    /// A pipeline for `spec`.
    pub fn new(spec: PipelineSpec, control: RunControl) -> Self {
        let (dead_letter_tx, dead_letter_rx) = bounded(4096);
        let metrics = MetricsFactory::noop(&spec.name);
        Pipeline { spec, control, metrics, dead_letter_tx, dead_letter_rx }
    }

    /// Records the pipeline's metrics with `recorder` (e.g. a Prometheus recorder).
    pub fn with_metrics(mut self, recorder: SharedRecorder) -> Self {
        self.metrics = MetricsFactory::new(recorder, &self.spec.name);
        self
    }

    /// The spec.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// What a source named `name` playing `role` needs to be built.
    pub fn source_context(&self, name: &str, role: StreamRole) -> SourceContext {
        SourceContext {
            name: name.to_string(),
            events: self.spec.events.clone(),
            labels: self.spec.labels.clone(),
            role,
            batch_size: self.spec.batch_size,
            dead_letters: self.dead_letter_tx.clone(),
            stop: self.control.stop.clone(),
        }
    }

    /// Runs until every source has ended (or the stop flag is set and the sources drained).
    ///
    /// # Errors
    /// When a source or sink fails, or no usable feature exists.
    pub fn run(
        self,
        sources: Vec<(String, Box<dyn Source>)>,
        sinks: Vec<SinkBinding>,
    ) -> Result<RunSummary, EngineError> {
        let started = Instant::now();
        let Pipeline { spec, control, metrics, dead_letter_tx, dead_letter_rx } = self;

        // Sinks, each on its own thread.
        let mut outputs: BTreeMap<SinkInput, Vec<Sender<RecordBatch>>> = BTreeMap::new();
        let mut sink_threads: Vec<(String, JoinHandle<Result<(), SinkError>>)> = Vec::new();
        for binding in sinks {
            let (tx, rx) = bounded::<RecordBatch>(CHANNEL_DEPTH);
            outputs.entry(binding.input).or_default().push(tx);
            let mut sink = binding.sink;
            let name = binding.name.clone();
            let handle = std::thread::Builder::new()
                .name(format!("sink-{name}"))
                .spawn(move || {
                    for batch in rx {
                        sink.write(&batch)?;
                    }
                    sink.flush()
                })
                .map_err(|e| EngineError::Internal(format!("cannot spawn sink thread: {e}")))?;
            sink_threads.push((binding.name, handle));
        }

        // Dead letters: counted always, written when a sink wants them.
        let dead_letter_outputs = outputs.remove(&SinkInput::DeadLetters).unwrap_or_default();
        let dead_letter_metrics = metrics.clone();
        let dead_letter_thread = std::thread::Builder::new()
            .name("dead-letters".into())
            .spawn(move || collect_dead_letters(dead_letter_rx, dead_letter_outputs, &dead_letter_metrics))
            .map_err(|e| EngineError::Internal(format!("cannot spawn dead-letter thread: {e}")))?;
        drop(dead_letter_tx);

        // Sources, each on its own thread.
        let mut inputs = Vec::new();
        let mut source_threads = Vec::new();
        for (name, mut source) in sources {
            let (tx, rx) = bounded::<SourceMessage>(CHANNEL_DEPTH);
            let bounded_source = source.is_bounded();
            let roles = source.roles();
            let stop = control.stop.clone();
            let thread_name = name.clone();
            let handle = std::thread::Builder::new()
                .name(format!("source-{name}"))
                .spawn(move || {
                    let _ = thread_name;
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            let _ = tx.send(SourceMessage::End);
                            return;
                        }
                        match source.poll() {
                            Ok(Poll::Batch(b)) => {
                                if tx.send(SourceMessage::Batch(b)).is_err() {
                                    return;
                                }
                            }
                            Ok(Poll::Idle) => std::thread::sleep(Duration::from_millis(20)),
                            Ok(Poll::End) => {
                                let _ = tx.send(SourceMessage::End);
                                return;
                            }
                            Err(e) => {
                                let _ = tx.send(SourceMessage::Failed(e));
                                return;
                            }
                        }
                    }
                })
                .map_err(|e| EngineError::Internal(format!("cannot spawn source thread: {e}")))?;
            source_threads.push(handle);
            inputs.push(MergeInput { name, rx, bounded: bounded_source, roles });
        }

        let merger = StreamMerger::new(inputs, &spec.events.time, &spec.labels.time, spec.idle_timeout);
        let predictions = outputs.remove(&SinkInput::Predictions).unwrap_or_default();
        let drift_outputs = outputs.remove(&SinkInput::Drift).unwrap_or_default();
        let mut engine = match Engine::new(&spec, control.clone(), predictions, drift_outputs, &metrics) {
            Ok(e) => e,
            Err(e) => {
                // Sources see the stop flag, sinks their closed channels: every thread ends.
                control.stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        let result = engine.run(merger);
        let mut summary = engine.finish();
        if let Some(publisher) = engine.publisher.take() {
            let report = publisher.finish();
            summary.published_versions = report.written;
            summary.registry_errors = report.errors;
        }
        drop(engine);
        drop(outputs);

        // Sources stop when their channel closes; sinks when theirs does.
        for h in source_threads {
            let _ = h.join();
        }
        let dead = dead_letter_thread
            .join()
            .map_err(|_| EngineError::Internal("dead-letter thread panicked".into()))?;
        let mut first_error = result.err();
        for (name, h) in sink_threads {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // The sink's own error explains an engine "sink stopped" error: prefer it.
                    if matches!(first_error, None | Some(EngineError::SinkStopped)) {
                        first_error = Some(EngineError::Sink(e));
                    }
                }
                Err(_) => {
                    first_error.get_or_insert(EngineError::Internal(format!("sink `{name}` panicked")));
                }
            }
        }
        match dead {
            Ok(counts) => {
                summary.dead_letters = counts.values().sum();
                summary.dead_letters_by_reason = counts;
            }
            Err(e) => {
                first_error.get_or_insert(EngineError::Sink(e));
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        summary.elapsed_seconds = started.elapsed().as_secs_f64();
        summary.events_per_second =
            if summary.elapsed_seconds > 0.0 { summary.events as f64 / summary.elapsed_seconds } else { 0.0 };
        Ok(summary)
    }
}

/// Writes dead letters to their sinks in batches and counts them by reason.
fn collect_dead_letters(
    rx: Receiver<DeadLetter>,
    outputs: Vec<Sender<RecordBatch>>,
    metrics: &MetricsFactory,
) -> Result<BTreeMap<String, u64>, SinkError> {
    let mut counters: BTreeMap<(String, String), metrics::Counter> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    let mut pending: Vec<DeadLetter> = Vec::new();
    let mut warned = 0;
    while let Ok(first) = rx.recv() {
        pending.push(first);
        while pending.len() < 1024 {
            match rx.try_recv() {
                Ok(d) => pending.push(d),
                Err(_) => break,
            }
        }
        for d in &pending {
            *counts.entry(d.reason.clone()).or_insert(0u64) += 1;
            counters
                .entry((d.source.clone(), d.reason.clone()))
                .or_insert_with(|| {
                    metrics
                        .counter("eddy_dead_letters_total", &[("source", &d.source), ("reason", &d.reason)])
                })
                .increment(1);
            if outputs.is_empty() && warned < 10 {
                warned += 1;
                tracing::warn!(source = %d.source, offset = d.offset, reason = %d.reason, "rejected record: {}", d.detail);
            }
        }
        if !outputs.is_empty() {
            let batch = dead_letter_batch(&pending);
            for tx in &outputs {
                tx.send(batch.clone()).map_err(|_| SinkError::new("dead_letters", "sink stopped"))?;
            }
        }
        pending.clear();
    }
    Ok(counts)
}

fn dead_letter_batch(letters: &[DeadLetter]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("offset", DataType::UInt64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("record", DataType::Utf8, false),
    ]));
    let col = |f: fn(&DeadLetter) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(letters.iter().map(f)))
    };
    let offsets: ArrayRef =
        Arc::new(arrow_array::UInt64Array::from_iter_values(letters.iter().map(|d| d.offset)));
    RecordBatch::try_new(
        schema,
        vec![col(|d| &d.source), offsets, col(|d| &d.reason), col(|d| &d.detail), col(|d| &d.record)],
    )
    .expect("dead-letter columns match their schema")
}

/// Column positions of the batch being processed, resolved once per batch: when events and
/// labels interleave row by row, runs are a single row long and name lookups per run would
/// dominate.
#[derive(Default)]
struct Resolved {
    batch: Option<u64>,
    key: usize,
    time: usize,
    label: usize,
    features: Vec<Option<usize>>,
    monitors: Vec<(usize, usize)>,
}

fn position(batch: &RecordBatch, name: &str) -> Result<usize, EngineError> {
    batch.schema().index_of(name).map_err(|_| {
        EngineError::Internal(format!("validated batch lacks column `{name}` (a bug in the source)"))
    })
}

/// The engine thread's state.
struct Engine<'s> {
    spec: &'s PipelineSpec,
    control: RunControl,
    encoder: Option<FeatureEncoder>,
    slots: Vec<Slot>,
    join: LabelJoin,
    predictions: Vec<Sender<RecordBatch>>,
    prediction_schema: SchemaRef,
    events: u64,
    labels: u64,
    late: u64,
    max_ts: i64,
    row: Vec<Feature>,
    scores: Vec<f32>,
    metrics: EngineMetrics,
    slot_metrics: Vec<SlotMetricsHandles>,
    published: JoinCounters,
    published_events: u64,
    published_labels: u64,
    published_late: u64,
    monitors: Vec<DriftMonitor>,
    /// Monitors of each slot's error stream.
    error_monitors: Vec<Vec<usize>>,
    detections: Vec<DriftRecord>,
    drift_outputs: Vec<Sender<RecordBatch>>,
    drift_published: usize,
    factory: MetricsFactory,
    features: Option<FeatureMonitors>,
    publisher: Option<ModelPublisher>,
    next_version: u64,
    /// Champion updates at its last publish.
    published_updates: u64,
    published_at: Instant,
    /// Event-time range each slot has learned from.
    learned_time: Vec<Option<(i64, i64)>>,
    gate: Option<PromotionGate>,
    promotions: Vec<PromotionRecord>,
    event_cols: Resolved,
    label_cols: Resolved,
    retrain: Option<RetrainState>,
}

/// The engine's side of continuous training (see [`crate::retrain`]).
struct RetrainState {
    slot: usize,
    buffer: TrainingBuffer,
    armed: Option<(String, u64)>,
    running: Option<Running>,
    records: Vec<RetrainRecord>,
    cooldown_until: u64,
    last_every: u64,
    last_schedule: Option<i64>,
    last_wall: Instant,
    detections_seen: usize,
    /// The retrain record whose model each slot holds, if any.
    origin: Vec<Option<usize>>,
    started: Option<Instant>,
    skipped: u64,
    metrics: RetrainMetrics,
}

impl RetrainMetrics {
    /// Counts a retrain reaching a final outcome (`rejected` is only known when the run ends,
    /// and is reported in the summary).
    fn count(&self, outcome: RetrainOutcome) {
        let i = match outcome {
            RetrainOutcome::Promoted => 0,
            RetrainOutcome::Superseded => 1,
            RetrainOutcome::Failed => 2,
            RetrainOutcome::Pending | RetrainOutcome::Rejected => return,
        };
        self.outcomes[i].increment(1);
    }
}

struct RetrainMetrics {
    outcomes: [metrics::Counter; 3],
    skipped_busy: metrics::Counter,
    skipped_cooldown: metrics::Counter,
    duration: metrics::Histogram,
    buffer_examples: metrics::Gauge,
    buffer_bytes: metrics::Gauge,
    factory: MetricsFactory,
}

impl<'s> Engine<'s> {
    fn new(
        spec: &'s PipelineSpec,
        control: RunControl,
        predictions: Vec<Sender<RecordBatch>>,
        drift_outputs: Vec<Sender<RecordBatch>>,
        factory: &MetricsFactory,
    ) -> Result<Self, EngineError> {
        let slot_names: Vec<String> = spec.slots.iter().map(|s| s.name.clone()).collect();
        let window_names: Vec<String> = spec.windows.iter().map(|w| w.0.clone()).collect();
        let mut monitors = Vec::new();
        let mut error_monitors = vec![Vec::new(); spec.slots.len()];
        for (name, config) in &spec.drift {
            let input = config
                .resolve(&slot_names, &window_names, spec.task)
                .map_err(|e| EngineError::Input(format!("drift.{name}: {e}")))?;
            if let DriftInput::SlotError { slot, .. } = input {
                error_monitors[slot].push(monitors.len());
            }
            monitors.push(
                DriftMonitor::new(name, config, input, factory)
                    .map_err(|e| EngineError::Input(format!("drift.{name}: {e}")))?,
            );
        }
        let mut fields = vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("ts", DataType::Int64, false),
            Field::new("slot", DataType::Utf8, false),
            Field::new("model_version", DataType::UInt64, false),
            Field::new("prediction", DataType::Float32, false),
        ];
        if spec.task == ModelKind::Logistic {
            fields.push(Field::new("predicted_label", DataType::Int64, false));
        }
        let retrain = match &spec.retrain {
            None => None,
            Some(r) => {
                let slot = spec.slots.iter().position(|s| s.name == r.slot).ok_or_else(|| {
                    EngineError::Input(format!("retrain.slot: no shadow slot named `{}`", r.slot))
                })?;
                Some(RetrainState {
                    slot,
                    buffer: TrainingBuffer::new(
                        r.max_examples,
                        r.max_age.map(|d| d.as_millis_i64()),
                        r.max_bytes.0,
                    ),
                    armed: None,
                    running: None,
                    records: Vec::new(),
                    cooldown_until: 0,
                    last_every: 0,
                    last_schedule: None,
                    last_wall: Instant::now(),
                    detections_seen: 0,
                    origin: vec![None; spec.slots.len()],
                    started: None,
                    skipped: 0,
                    metrics: RetrainMetrics {
                        outcomes: ["promoted", "superseded", "failed"]
                            .map(|o| factory.counter("eddy_retrain_outcomes_total", &[("outcome", o)])),
                        skipped_busy: factory
                            .counter("eddy_retrain_skipped_total", &[("reason", "in_flight")]),
                        skipped_cooldown: factory
                            .counter("eddy_retrain_skipped_total", &[("reason", "cooldown")]),
                        duration: factory.histogram("eddy_retrain_duration_seconds", &[]),
                        buffer_examples: factory.gauge("eddy_training_buffer_examples", &[]),
                        buffer_bytes: factory.gauge("eddy_training_buffer_bytes", &[]),
                        factory: factory.clone(),
                    },
                })
            }
        };
        let (publisher, next_version) = match &spec.registry {
            Some(r) => {
                let (p, next) = ModelPublisher::start(r.dir.clone())
                    .map_err(|e| EngineError::Input(format!("model registry {}: {e}", r.dir.display())))?;
                (Some(p), next)
            }
            None => (None, 1),
        };
        Ok(Engine {
            spec,
            control,
            encoder: None,
            slots: Vec::new(),
            join: LabelJoin::new(&spec.join, spec.slots.len()),
            predictions,
            prediction_schema: Arc::new(Schema::new(fields)),
            events: 0,
            labels: 0,
            late: 0,
            max_ts: i64::MIN,
            row: Vec::with_capacity(64),
            scores: vec![0.0; spec.slots.len()],
            metrics: EngineMetrics::new(factory),
            slot_metrics: spec.slots.iter().map(|s| SlotMetricsHandles::new(factory, &s.name)).collect(),
            published: JoinCounters::default(),
            published_events: 0,
            published_labels: 0,
            published_late: 0,
            monitors,
            error_monitors,
            detections: Vec::new(),
            drift_outputs,
            drift_published: 0,
            factory: factory.clone(),
            features: None,
            publisher,
            next_version,
            published_updates: 0,
            published_at: Instant::now(),
            learned_time: vec![None; spec.slots.len()],
            gate: spec.promotion.clone().map(|c| PromotionGate::new(c, spec.slots.len())),
            promotions: Vec::new(),
            event_cols: Resolved::default(),
            label_cols: Resolved::default(),
            retrain,
        })
    }

    fn run(&mut self, mut merger: StreamMerger) -> Result<(), EngineError> {
        // Per lane: when its current batch started (a small vector: lanes are few and this is
        // touched on every run).
        let mut lane_time: Vec<Option<Instant>> = Vec::new();
        let mut rows_since_publish = 0;
        loop {
            match merger.next_run()? {
                Next::Run { input, start, end } => {
                    let batch = merger.head(input);
                    let id = merger.head_id(input);
                    let role = batch.role;
                    // A batch's latency: from its first row to its last in the engine (runs of
                    // other lanes in between included), timed once per batch, not per run.
                    if lane_time.len() <= input {
                        lane_time.resize(input + 1, None);
                    }
                    lane_time[input].get_or_insert_with(Instant::now);
                    match role {
                        StreamRole::Events => self.events_run(&batch.batch, id, start, end)?,
                        StreamRole::Labels => self.labels_run(&batch.batch, id, start, end)?,
                    }
                    if merger.consume(input, end) {
                        if let Some(started) = lane_time[input].take() {
                            let seconds = started.elapsed().as_secs_f64();
                            match role {
                                StreamRole::Events => self.metrics.score_seconds.record(seconds),
                                StreamRole::Labels => self.metrics.learn_seconds.record(seconds),
                            }
                        }
                    }
                    rows_since_publish += end - start;
                    if rows_since_publish >= PUBLISH_EVERY_ROWS {
                        rows_since_publish = 0;
                        self.publish()?;
                    }
                }
                Next::Idle => {
                    self.publish()?;
                    if self.control.stop.load(Ordering::Relaxed) {
                        merger.stop_waiting();
                    }
                }
                Next::Done => {
                    if let Some(f) = &mut self.features {
                        let closed = f.flush();
                        self.feed_windows(closed);
                    }
                    if let Some(rt) = &mut self.retrain {
                        // Wait for a retrain still running, so no thread outlives the run.
                        if let Some(run) = &mut rt.running {
                            let _ = run.poll(true);
                        }
                    }
                    self.maybe_publish_champion(true);
                    return self.publish();
                }
            }
        }
    }

    /// Feeds closed windows to the monitors that watch them.
    fn feed_windows(&mut self, closed: Vec<ClosedWindow>) {
        for (window, feature, result) in closed {
            for m in &mut self.monitors {
                if let DriftInput::Window { window: w, feature: f, stat } = &m.input {
                    if *w == window && *f == feature {
                        if let Some(x) = window_stat(&result, stat) {
                            if let Some(d) = m.update(x, self.events, result.end) {
                                self.detections.push(d);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sends slot `i`'s current model to the registry; returns the version it got.
    fn publish_model(
        &mut self,
        i: usize,
        promote: bool,
        must: bool,
        metrics: BTreeMap<String, f64>,
        origin: Option<&str>,
    ) -> Option<u64> {
        let encoder = self.encoder.as_ref()?;
        let publisher = self.publisher.as_mut()?;
        let registry = self.spec.registry.as_ref()?;
        let slot = &self.slots[i];
        let version = self.next_version;
        let snapshot = ModelSnapshot {
            version,
            kind: self.spec.task,
            encoding: encoder.frozen(),
            weights: slot.learner.weights().to_vec(),
            bias: slot.learner.bias(),
        };
        let since = (slot.version > 0).then_some(slot.version);
        let retrained = self.retrain.as_ref().and_then(|rt| rt.origin[i].map(|r| &rt.records[r]));
        let producer = match retrained {
            Some(r) if since.is_none() => Producer::Retrain { trigger: r.trigger.clone() },
            _ => Producer::Online {
                since,
                updates: slot.learner.updates().saturating_sub(if i == 0 {
                    self.published_updates
                } else {
                    0
                }),
            },
        };
        let device = retrained.map_or_else(|| "cpu".to_string(), |r| r.device.clone());
        let retrain_figures: Vec<(String, f64)> = match (retrained, since) {
            (Some(r), None) => vec![
                ("retrain_final_loss".into(), r.final_loss),
                ("retrain_seconds".into(), r.seconds),
                ("retrain_examples".into(), r.examples as f64),
                ("retrain_converged".into(), r.converged as u8 as f64),
            ],
            _ => Vec::new(),
        };
        let mut manifest = Manifest::new(
            origin.map_or_else(|| slot.name.clone(), |o| format!("{o} (promoted to {})", slot.name)),
            producer,
        );
        manifest.device = device;
        manifest.parent = since;
        manifest.examples = slot.learner.updates();
        manifest.event_time = self.learned_time[i].map(|(min_ms, max_ms)| TimeRange { min_ms, max_ms });
        manifest.metrics = metrics;
        manifest.metrics.extend(retrain_figures);
        manifest.config_hash = registry.config_hash.clone();
        if !publisher.submit(PublishJob { snapshot, manifest, promote }, must) {
            return None;
        }
        self.next_version += 1;
        self.slots[i].version = version;
        if i == 0 {
            self.published_updates = self.slots[0].learner.updates();
            self.published_at = Instant::now();
        }
        Some(version)
    }

    fn slot_metric_map(&self, i: usize) -> BTreeMap<String, f64> {
        let r = self.slots[i].evaluator.rolling_figures();
        [
            ("rolling_accuracy", r.accuracy),
            ("rolling_log_loss", r.log_loss),
            ("rolling_mae", r.mae),
            ("rolling_rmse", r.rmse),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .chain(std::iter::once(("labels".to_string(), self.slots[i].evaluator.labels() as f64)))
        .collect()
    }

    /// Publishes the champion when its cadence says so (or `force`, at the end of the run).
    fn maybe_publish_champion(&mut self, force: bool) {
        let Some(registry) = &self.spec.registry else { return };
        if self.slots.is_empty() {
            return;
        }
        let updates = self.slots[0].learner.updates();
        let new = updates - self.published_updates;
        let due = force && (new > 0 || self.slots[0].version == 0)
            || new > 0
                && (registry.every_updates.is_some_and(|n| new >= n)
                    || registry.interval.is_some_and(|d| self.published_at.elapsed() >= d));
        if due {
            let metrics = self.slot_metric_map(0);
            self.publish_model(0, true, force, metrics, None);
        }
    }

    /// Triggers, starts and installs retrains (called after each run of labels).
    fn retrain_tick(&mut self, ts: i64) {
        let Some(config) = self.spec.retrain.as_ref() else { return };
        let joined = self.join.counters().joined;
        let mut fired: Vec<String> = Vec::new();
        if let Some(rt) = &mut self.retrain {
            for d in &self.detections[rt.detections_seen..] {
                if config.triggers.on_drift.contains(&d.detector) {
                    fired.push(format!("drift:{}", d.detector));
                }
            }
            rt.detections_seen = self.detections.len();
            if let Some(n) = config.triggers.every_labels {
                if joined >= rt.last_every + n {
                    rt.last_every = joined;
                    fired.push("every_labels".into());
                }
            }
            if let Some(every) = config.triggers.every_wall {
                if rt.last_wall.elapsed() >= every.0 {
                    rt.last_wall = Instant::now();
                    fired.push("schedule_wall".into());
                }
            }
            if let Some(every) = config.triggers.every {
                match rt.last_schedule {
                    None => rt.last_schedule = Some(ts),
                    Some(last) if ts - last >= every.as_millis_i64() => {
                        rt.last_schedule = Some(ts);
                        fired.push("schedule".into());
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(floor) = &config.triggers.performance_floor {
            let e = &self.slots[0].evaluator;
            if e.labels() >= self.spec.evaluation.rolling_window as u64 {
                let r = e.rolling_figures();
                let below = match floor.metric.as_str() {
                    "accuracy" => r.accuracy.is_some_and(|a| a < floor.threshold),
                    _ => r.mae.is_some_and(|m| m > floor.threshold),
                };
                if below {
                    fired.push("performance_floor".into());
                }
            }
        }
        if self.control.manual_retrain.take() {
            fired.push("manual".into());
        }
        let Some(rt) = &mut self.retrain else { return };
        for trigger in fired {
            if rt.armed.is_some() || rt.running.is_some() {
                rt.metrics.skipped_busy.increment(1);
                rt.skipped += 1;
            } else if joined < rt.cooldown_until {
                rt.metrics.skipped_cooldown.increment(1);
                rt.skipped += 1;
            } else {
                rt.metrics
                    .factory
                    .counter("eddy_retrain_triggers_total", &[("trigger", &trigger)])
                    .increment(1);
                rt.armed = Some((trigger, joined + config.collect_after_trigger));
            }
        }
        if rt.armed.as_ref().is_some_and(|(_, at)| joined >= *at) {
            let (trigger, _) = rt.armed.take().expect("armed checked above");
            self.start_retrain(trigger, joined);
        }
        let Some(rt) = &mut self.retrain else { return };
        rt.metrics.buffer_examples.set(rt.buffer.len() as f64);
        rt.metrics.buffer_bytes.set(rt.buffer.size_bytes() as f64);
        let finished = match &mut rt.running {
            Some(run) if config.deterministic => (joined >= run.install_at).then(|| run.poll(true)).flatten(),
            Some(run) => run.poll(false),
            None => None,
        };
        if let Some(done) = finished {
            self.install_retrain(done, joined);
        }
    }

    fn start_retrain(&mut self, trigger: String, joined: u64) {
        let config = self.spec.retrain.as_ref().expect("retrain configured");
        let init = config
            .trainer
            .warm_start
            .then(|| (self.slots[0].learner.weights().to_vec(), self.slots[0].learner.bias()));
        let rt = self.retrain.as_mut().expect("retrain state");
        let mut record = RetrainRecord {
            trigger: trigger.clone(),
            device: String::new(),
            device_reason: String::new(),
            examples: rt.buffer.len(),
            columns: 0,
            seconds: 0.0,
            final_loss: f64::NAN,
            converged: false,
            started_at_label: joined,
            installed_at_label: None,
            outcome: RetrainOutcome::Pending,
        };
        match crate::retrain::start(self.spec.task, &config.trainer, &rt.buffer, config.max_columns, init) {
            Ok(started) => {
                record.device = started.device;
                record.device_reason = started.reason;
                record.examples = started.examples;
                record.columns = started.columns;
                rt.records.push(record);
                let install_at = joined + config.install_after;
                rt.running = Some(Running::new(
                    rt.records.len() - 1,
                    rt.buffer.added(),
                    install_at,
                    started.rx,
                    started.handle,
                ));
                rt.cooldown_until = joined + config.cooldown_labels;
                rt.started = Some(Instant::now());
            }
            Err(e) => {
                tracing::error!(trigger = %trigger, "retrain could not start: {e}");
                record.outcome = RetrainOutcome::Failed;
                record.device_reason = e;
                rt.metrics.count(RetrainOutcome::Failed);
                rt.records.push(record);
            }
        }
    }

    fn install_retrain(&mut self, done: crate::retrain::Finished, joined: u64) {
        let Some(rt) = &mut self.retrain else { return };
        let Some(run) = rt.running.take() else { return };
        let record = &mut rt.records[run.record];
        if let Some(started) = rt.started.take() {
            rt.metrics.duration.record(started.elapsed().as_secs_f64());
        }
        let model = match done.model {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("retrain failed: {e}");
                rt.metrics.count(RetrainOutcome::Failed);
                record.outcome = RetrainOutcome::Failed;
                record.device_reason = e;
                return;
            }
        };
        record.seconds = model.seconds;
        record.final_loss = model.final_loss;
        record.converged = model.converged;
        record.installed_at_label = Some(joined);
        let k = rt.slot;
        let dim = self.slots[k].learner.weights().len();
        let mut weights = vec![0.0f32; dim];
        for (j, &c) in done.columns.iter().enumerate() {
            if let Some(w) = weights.get_mut(c as usize) {
                *w = model.weights[j];
            }
        }
        let optimizer = self.spec.slots[k].learner.optimizer.clone();
        let mut learner = match LinearLearner::with_weights(self.spec.task, weights, model.bias, optimizer) {
            Ok(l) => l,
            Err(e) => {
                record.outcome = RetrainOutcome::Failed;
                record.device_reason = e;
                rt.metrics.count(RetrainOutcome::Failed);
                return;
            }
        };
        // Catch up on the labels that arrived while the trainer ran.
        for (row, y) in rt.buffer.since(run.data_seq) {
            eddy_operators::learner::OnlineLearner::learn(&mut learner, row, y);
        }
        if let Some(previous) = rt.origin[k] {
            if rt.records[previous].outcome == RetrainOutcome::Pending {
                rt.records[previous].outcome = RetrainOutcome::Superseded;
                rt.metrics.count(RetrainOutcome::Superseded);
            }
        }
        rt.origin[k] = Some(run.record);
        self.slots[k].learner = Box::new(learner);
        self.slots[k].version = 0;
        self.learned_time[k] = None;
        if let Some(g) = &mut self.gate {
            g.reset_slot(k);
        }
        tracing::info!(slot = %self.slots[k].name, "retrained model installed");
    }

    /// Runs the promotion gate; on a win, swaps the shadow's model into the champion slot.
    fn maybe_promote(&mut self, event_time: i64) {
        let Some(gate) = &mut self.gate else { return };
        if !gate.due() {
            return;
        }
        let Some((k, figures)) = gate.check() else { return };
        gate.reset();
        let old_version = self.slots[0].version;
        // Record the demoted champion as it is now, then swap the models.
        let demoted_metrics = self.slot_metric_map(0);
        self.publish_model(0, false, true, demoted_metrics, None);
        let (a, b) = self.slots.split_at_mut(k);
        std::mem::swap(&mut a[0].learner, &mut b[0].learner);
        std::mem::swap(&mut a[0].version, &mut b[0].version);
        self.learned_time.swap(0, k);
        if let Some(rt) = &mut self.retrain {
            if let Some(r) = rt.origin[k] {
                rt.records[r].outcome = RetrainOutcome::Promoted;
                rt.metrics.count(RetrainOutcome::Promoted);
            }
            rt.origin.swap(0, k);
        }
        // The champion slot now holds another model: its publish cadence starts over, and
        // feature drift is measured against the data it was chosen on.
        self.published_updates = 0;
        if let Some(f) = &mut self.features {
            f.champion_changed();
        }
        let mut metrics = self.slot_metric_map(k);
        metrics.insert(format!("gate_{}_champion", figures.metric), figures.champion);
        metrics.insert(format!("gate_{}_shadow", figures.metric), figures.shadow);
        if let Some(p) = figures.p_value {
            metrics.insert("gate_p_value".into(), p);
        }
        let origin = self.slots[k].name.clone();
        let new_version = self.publish_model(0, true, true, metrics, Some(&origin)).unwrap_or(0);
        tracing::info!(from = %self.slots[k].name, old_version, new_version, "shadow promoted to champion");
        self.promotions.push(PromotionRecord {
            event_time,
            at_label: self.join.counters().joined,
            from_slot: self.slots[k].name.clone(),
            old_version,
            new_version,
            gate: figures,
        });
    }

    /// Per-batch metrics and drift events.
    fn publish(&mut self) -> Result<(), EngineError> {
        self.maybe_publish_champion(false);
        if let Some(f) = &mut self.features {
            f.publish();
        }
        let c = self.join.counters();
        let p = self.published;
        let m = &self.metrics;
        m.events.increment(self.events - self.published_events);
        m.labels.increment(self.labels - self.published_labels);
        m.late.increment(self.late - self.published_late);
        m.joined.increment(c.joined - p.joined);
        m.expired.increment(c.expired - p.expired);
        m.unmatched.increment(c.unmatched_labels - p.unmatched_labels);
        m.early.increment(c.early_labels - p.early_labels);
        m.duplicate_labels.increment(c.duplicate_labels - p.duplicate_labels);
        m.evicted.increment((c.evicted + c.rejected_full) - (p.evicted + p.rejected_full));
        m.buffer_events.set(self.join.pending() as f64);
        m.buffer_bytes.set(self.join.size_bytes() as f64);
        if self.max_ts > i64::MIN {
            m.watermark.set(self.max_ts as f64 / 1000.0);
        }
        self.published = c;
        self.published_events = self.events;
        self.published_labels = self.labels;
        self.published_late = self.late;
        for (slot, h) in self.slots.iter().zip(&self.slot_metrics) {
            h.labels.absolute(slot.evaluator.labels());
            h.version.set(slot.version as f64);
            let r = slot.evaluator.rolling_figures();
            if let Some(a) = r.accuracy {
                h.accuracy.set(a);
            }
            if let Some(l) = r.log_loss {
                h.log_loss.set(l);
            }
            if let Some(mae) = r.mae {
                h.mae.set(mae);
            }
            if let Some(auc) = slot.evaluator.rolling_auc() {
                h.auc.set(auc);
            }
        }
        for monitor in &self.monitors {
            monitor.publish();
        }
        if self.detections.len() > self.drift_published {
            let batch = drift_batch(&self.detections[self.drift_published..]);
            self.drift_published = self.detections.len();
            for tx in &self.drift_outputs {
                tx.send(batch.clone()).map_err(|_| EngineError::SinkStopped)?;
            }
        }
        Ok(())
    }

    /// Resolves the model's features from the first event batch and builds the slots.
    fn init_model(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let schema = batch.schema();
        let names: Vec<String> = match &self.spec.features {
            Some(names) => names.clone(),
            None => schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| {
                    n != &self.spec.events.key
                        && n != &self.spec.events.time
                        && !self.spec.exclude.contains(n)
                })
                .collect(),
        };
        let declared = |n: &str| self.spec.events.declared.iter().find(|(d, _)| d == n).map(|(_, k)| *k);
        let features: Vec<FeatureSpec> = names
            .into_iter()
            .filter_map(|name| {
                let kind = match declared(&name) {
                    Some(k) => k,
                    None => match schema.field_with_name(&name).map(|f| f.data_type().clone()) {
                        Ok(DataType::Float64) => FeatureKind::Numeric,
                        Ok(DataType::Utf8) => FeatureKind::Categorical,
                        Ok(DataType::Boolean) => FeatureKind::Boolean,
                        Ok(_) => return None,
                        Err(_) => {
                            tracing::warn!(feature = %name, "listed feature is absent from the events; it is encoded as missing");
                            FeatureKind::Numeric
                        }
                    },
                };
                Some(FeatureSpec { name, kind })
            })
            .collect();
        if features.is_empty() {
            return Err(EngineError::Input(format!(
                "the events have no usable feature: fields are {:?}; besides the key `{}` and time `{}` the model needs at least one numeric, string or boolean field",
                batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(),
                self.spec.events.key,
                self.spec.events.time
            )));
        }
        tracing::info!(
            features = ?features.iter().map(|f| format!("{}:{}", f.name, f.kind.as_str())).collect::<Vec<_>>(),
            "model features resolved"
        );
        let numeric: Vec<String> =
            features.iter().filter(|f| f.kind == FeatureKind::Numeric).map(|f| f.name.clone()).collect();
        let monitors = FeatureMonitors::new(
            &self.spec.windows,
            self.spec.reference_drift.as_ref(),
            &numeric,
            &self.factory,
        )
        .map_err(EngineError::Input)?;
        self.features = (!monitors.is_empty()).then_some(monitors);
        let encoder = FeatureEncoder::new(features, &self.spec.encoding, self.spec.seed);
        self.slots = self
            .spec
            .slots
            .iter()
            .map(|s| Slot::new(s, self.spec.task, encoder.dim(), &self.spec.evaluation))
            .collect();
        self.encoder = Some(encoder);
        Ok(())
    }

    #[inline]
    fn observe_time(&mut self, ts: i64) {
        let lateness = self.spec.join.allowed_lateness.as_millis_i64();
        if ts > self.max_ts {
            self.max_ts = ts;
            self.join.advance(ts.saturating_sub(lateness));
        } else if ts < self.max_ts.saturating_sub(lateness) {
            self.late += 1;
        }
    }

    fn events_run(
        &mut self,
        batch: &RecordBatch,
        id: u64,
        start: usize,
        end: usize,
    ) -> Result<(), EngineError> {
        if self.encoder.is_none() {
            self.init_model(batch)?;
        }
        let mut encoder = self.encoder.take().expect("encoder initialised above");
        if self.event_cols.batch != Some(id) {
            self.event_cols = Resolved {
                batch: Some(id),
                key: position(batch, &self.spec.events.key)?,
                time: position(batch, &self.spec.events.time)?,
                label: 0,
                features: BatchEncoder::positions(&encoder, batch),
                monitors: self
                    .monitors
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| match &m.input {
                        DriftInput::Feature(name) => batch.schema().index_of(name).ok().map(|c| (i, c)),
                        DriftInput::SlotError { .. } | DriftInput::Window { .. } => None,
                    })
                    .collect(),
            };
        }
        let cols = &self.event_cols;
        let keys = batch.column(cols.key).as_string::<i32>();
        let times = batch.column(cols.time).as_primitive::<Int64Type>().values();
        let emit = !self.predictions.is_empty();
        let n = (end - start) * self.slots.len();
        let mut out = emit.then(|| PredictionBuilders::new(n, self.spec.task));
        let feature_monitors: Vec<(usize, &arrow_array::Float64Array)> = cols
            .monitors
            .iter()
            .filter_map(|&(i, c)| batch.column(c).as_primitive_opt::<Float64Type>().map(|a| (i, a)))
            .collect();
        for r in start..end {
            let ts = times[r];
            self.observe_time(ts);
            let key = keys.value(r);
            BatchEncoder::encode_row(&mut encoder, batch, &self.event_cols.features, r, &mut self.row);
            for (s, slot) in self.slots.iter().enumerate() {
                self.scores[s] = slot.learner.predict(&self.row);
            }
            if let Some(out) = &mut out {
                for (s, slot) in self.slots.iter().enumerate() {
                    out.push(key, ts, &slot.name, slot.version, self.scores[s]);
                }
            }
            let index = self.events;
            self.events += 1;
            for (m, values) in &feature_monitors {
                if values.is_valid(r) {
                    if let Some(d) = self.monitors[*m].update(values.value(r), index, ts) {
                        self.detections.push(d);
                    }
                }
            }
            match self.join.insert_event(xxh3_64(key.as_bytes()), ts, index, &self.row, &self.scores) {
                EventOutcome::JoinedEarly(y) => {
                    if let Some(rt) = &mut self.retrain {
                        rt.buffer.push(&self.row, y, ts);
                    }
                    for (s, slot) in self.slots.iter_mut().enumerate() {
                        slot.evaluator.record(self.scores[s], y);
                        if let Some(g) = &mut self.gate {
                            g.record(s, self.scores[s], y);
                        }
                        let t = &mut self.learned_time[s];
                        *t = Some(t.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
                        slot.learner.learn(&self.row, y);
                        for &m in &self.error_monitors[s] {
                            let monitor = &mut self.monitors[m];
                            let DriftInput::SlotError { error, .. } = monitor.input else { continue };
                            if let Some(d) = monitor.update(error.of(self.scores[s], y), index, ts) {
                                self.detections.push(d);
                            }
                        }
                    }
                }
                EventOutcome::Buffered | EventOutcome::Rejected => {}
            }
        }
        self.encoder = Some(encoder);
        if let Some(f) = &mut self.features {
            f.update(batch, times, start, end, self.events - (end - start) as u64, &mut self.detections);
            let watermark = self.max_ts.saturating_sub(self.spec.join.allowed_lateness.as_millis_i64());
            let closed = f.advance(watermark);
            if !closed.is_empty() {
                self.feed_windows(closed);
            }
        }
        self.control.events.store(self.events, Ordering::Relaxed);
        if let Some(out) = out {
            let batch = out.finish(self.prediction_schema.clone());
            for tx in &self.predictions {
                tx.send(batch.clone()).map_err(|_| EngineError::SinkStopped)?;
            }
        }
        Ok(())
    }

    fn labels_run(
        &mut self,
        batch: &RecordBatch,
        id: u64,
        start: usize,
        end: usize,
    ) -> Result<(), EngineError> {
        if self.label_cols.batch != Some(id) {
            let label_name = self.spec.labels.label.as_ref().map(|l| l.name.as_str()).unwrap_or("label");
            self.label_cols = Resolved {
                batch: Some(id),
                key: position(batch, &self.spec.labels.key)?,
                time: position(batch, &self.spec.labels.time)?,
                label: position(batch, label_name)?,
                ..Resolved::default()
            };
        }
        let keys = batch.column(self.label_cols.key).as_string::<i32>();
        let times = batch.column(self.label_cols.time).as_primitive::<Int64Type>().values();
        let ys = batch.column(self.label_cols.label).as_primitive::<Float64Type>().values();
        for r in start..end {
            let ts = times[r];
            self.observe_time(ts);
            self.labels += 1;
            let y = ys[r] as f32;
            if let LabelOutcome::Joined(j) = self.join.take_label(xxh3_64(keys.value(r).as_bytes()), ts, y) {
                if let Some(rt) = &mut self.retrain {
                    rt.buffer.push(j.row, y, j.event_ts);
                }
                for (s, slot) in self.slots.iter_mut().enumerate() {
                    slot.evaluator.record(j.predictions[s], y);
                    if let Some(g) = &mut self.gate {
                        g.record(s, j.predictions[s], y);
                    }
                    let t = &mut self.learned_time[s];
                    *t =
                        Some(t.map_or((j.event_ts, j.event_ts), |(a, b)| {
                            (a.min(j.event_ts), b.max(j.event_ts))
                        }));
                    slot.learner.learn(j.row, y);
                    for &m in &self.error_monitors[s] {
                        let monitor = &mut self.monitors[m];
                        let DriftInput::SlotError { error, .. } = monitor.input else { continue };
                        if let Some(d) =
                            monitor.update(error.of(j.predictions[s], y), j.event_index, j.event_ts)
                        {
                            self.detections.push(d);
                        }
                    }
                }
            }
            if self.gate.is_some() {
                self.maybe_promote(ts);
            }
        }
        if self.retrain.is_some() {
            self.retrain_tick(times[end - 1]);
        }
        Ok(())
    }

    fn finish(&self) -> RunSummary {
        let c = self.join.counters();
        RunSummary {
            pipeline: self.spec.name.clone(),
            events: self.events,
            labels: self.labels,
            joined: c.joined,
            expired: c.expired,
            unmatched_labels: c.unmatched_labels,
            early_labels: c.early_labels,
            duplicate_labels: c.duplicate_labels,
            duplicate_events: c.duplicate_events,
            evicted: c.evicted,
            rejected_full: c.rejected_full,
            late_records: self.late,
            pending_at_end: self.join.pending() as u64,
            waiting_labels_at_end: self.join.waiting_labels() as u64,
            metrics: self.slots.iter().map(|s| (s.name.clone(), s.evaluator.report())).collect(),
            drift: self.detections.clone(),
            promotions: self.promotions.clone(),
            retrains: self
                .retrain
                .as_ref()
                .map(|rt| {
                    rt.records
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            if r.outcome == RetrainOutcome::Pending {
                                r.outcome = RetrainOutcome::Rejected;
                            }
                            r
                        })
                        .collect()
                })
                .unwrap_or_default(),
            retrains_skipped: self.retrain.as_ref().map_or(0, |rt| rt.skipped),
            features: self
                .encoder
                .iter()
                .flat_map(|e| e.encoding().features.iter())
                .map(|f| FeatureSummary { name: f.name.clone(), kind: f.kind.as_str().into() })
                .collect(),
            ..RunSummary::default()
        }
    }
}

fn drift_batch(records: &[DriftRecord]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("detector", DataType::Utf8, false),
        Field::new("input", DataType::Utf8, false),
        Field::new("event_index", DataType::UInt64, false),
        Field::new("event_time", DataType::Int64, false),
        Field::new("estimate_before", DataType::Float64, false),
        Field::new("estimate_after", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(records.iter().map(|r| r.detector.as_str()))),
        Arc::new(StringArray::from_iter_values(records.iter().map(|r| r.input.as_str()))),
        Arc::new(arrow_array::UInt64Array::from_iter_values(records.iter().map(|r| r.event_index))),
        Arc::new(arrow_array::Int64Array::from_iter_values(records.iter().map(|r| r.event_time))),
        Arc::new(arrow_array::Float64Array::from_iter_values(records.iter().map(|r| r.estimate_before))),
        Arc::new(arrow_array::Float64Array::from_iter_values(records.iter().map(|r| r.estimate_after))),
    ];
    RecordBatch::try_new(schema, cols).expect("drift columns match their schema")
}

/// Column builders of one predictions batch.
struct PredictionBuilders {
    id: StringBuilder,
    ts: Int64Builder,
    slot: StringBuilder,
    version: UInt64Builder,
    prediction: Float32Builder,
    label: Option<Int64Builder>,
}

impl PredictionBuilders {
    fn new(n: usize, task: ModelKind) -> Self {
        PredictionBuilders {
            id: StringBuilder::with_capacity(n, n * 16),
            ts: Int64Builder::with_capacity(n),
            slot: StringBuilder::with_capacity(n, n * 8),
            version: UInt64Builder::with_capacity(n),
            prediction: Float32Builder::with_capacity(n),
            label: (task == ModelKind::Logistic).then(|| Int64Builder::with_capacity(n)),
        }
    }

    #[inline]
    fn push(&mut self, id: &str, ts: i64, slot: &str, version: u64, p: f32) {
        self.id.append_value(id);
        self.ts.append_value(ts);
        self.slot.append_value(slot);
        self.version.append_value(version);
        self.prediction.append_value(p);
        if let Some(l) = &mut self.label {
            l.append_value((p >= 0.5) as i64);
        }
    }

    fn finish(mut self, schema: SchemaRef) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.slot.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.prediction.finish()),
        ];
        if let Some(mut l) = self.label {
            cols.push(Arc::new(l.finish()));
        }
        RecordBatch::try_new(schema, cols).expect("prediction columns match their schema")
    }
}
