//! The engine thread: the per-row hot loop that merges events and labels, encodes, scores
//! with every slot, joins labels, evaluates and learns, and publishes metrics and drift events
//! once per batch. Model publishing, promotion and retrains live in `model_lifecycle.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{Float32Builder, Int64Builder, StringBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use crossbeam_channel::Sender;
use eddy_operators::encoder::FeatureEncoder;
use eddy_scorer::encoding::{Feature, FeatureKind, FeatureSpec};
use eddy_scorer::model::ModelKind;
use xxhash_rust::xxh3::xxh3_64;

use crate::checkpoint::Checkpointer;
use crate::drift::{DriftInput, DriftMonitor};
use crate::encode::BatchEncoder;
use crate::error::EngineError;
use crate::feature_stats::{window_stat, ClosedWindow, FeatureMonitors};
use crate::label_join::JoinCounters;
use crate::label_join::{EventOutcome, LabelJoin, LabelOutcome};
use crate::merge::{Next, StreamMerger};
use crate::metrics::{EngineMetrics, MetricsFactory, RetrainMetrics, SlotMetricsHandles};
use crate::model_lifecycle::RetrainState;
use crate::pipeline::{PipelineSpec, RunControl};
use crate::promotion::PromotionGate;
use crate::publisher::ModelPublisher;
use crate::record::{DeadLetter, StreamRole};
use crate::retrain::{RetrainOutcome, TrainingBuffer};
use crate::sink::{SinkAck, SinkMessage};
use crate::slot::Slot;
use crate::summary::{DriftRecord, FeatureSummary, PromotionRecord, RunSummary};
use crate::window_features::WindowFeatures;

/// Metrics and drift events are published every this many rows (and when input pauses or
/// ends): often enough for a scrape, rare enough to cost nothing per row.
const PUBLISH_EVERY_ROWS: usize = 4096;

/// Column positions of the batch being processed, resolved once per batch: when events and
/// labels interleave row by row, runs are a single row long and name lookups per run would
/// dominate.
#[derive(Default)]
pub(crate) struct Resolved {
    batch: Option<u64>,
    key: usize,
    time: usize,
    label: usize,
    /// The feature columns (events only).
    features: Option<BatchEncoder>,
    monitors: Vec<(usize, usize)>,
}

/// How many rows ahead of the one being encoded its numeric feature values are prefetched
/// (see [`BatchEncoder::prefetch`]).
const PREFETCH_ROWS: usize = 16;

fn position(batch: &RecordBatch, name: &str) -> Result<usize, EngineError> {
    batch.schema().index_of(name).map_err(|_| {
        EngineError::Internal(format!("validated batch lacks column `{name}` (a bug in the source)"))
    })
}

/// The models and everything that judges them: what learning one joined label touches. Kept
/// apart from the join buffer so a joined row can be learned while the buffer still lends it.
pub(crate) struct Learning {
    /// Model slots; the first is the champion.
    pub(crate) slots: Vec<Slot>,
    /// The promotion gate, when configured.
    pub(crate) gate: Option<PromotionGate>,
    /// Event-time range each slot has learned from.
    pub(crate) learned_time: Vec<Option<(i64, i64)>>,
    /// Drift monitors.
    pub(crate) monitors: Vec<DriftMonitor>,
    /// Monitors of each slot's error stream.
    pub(crate) error_monitors: Vec<Vec<usize>>,
    /// Drift detections so far.
    pub(crate) detections: Vec<DriftRecord>,
}

impl Learning {
    /// Learns one joined example: each slot's earlier prediction is evaluated (prequential),
    /// judged by the gate and the error monitors, then the slot learns the row; the example
    /// also enters the training buffer when retrains are on.
    #[inline]
    fn learn(
        &mut self,
        row: &[Feature],
        predictions: &[f32],
        y: f32,
        event_index: u64,
        event_ts: i64,
        buffer: Option<&mut TrainingBuffer>,
    ) {
        if let Some(b) = buffer {
            b.push(row, y, event_ts);
        }
        for (s, slot) in self.slots.iter_mut().enumerate() {
            let p = predictions[s];
            slot.evaluator.record(p, y);
            if let Some(g) = &mut self.gate {
                g.record(s, p, y);
            }
            let t = &mut self.learned_time[s];
            *t = Some(t.map_or((event_ts, event_ts), |(a, b)| (a.min(event_ts), b.max(event_ts))));
            slot.learner.learn(row, y);
            for &m in &self.error_monitors[s] {
                let monitor = &mut self.monitors[m];
                let DriftInput::SlotError { error, .. } = monitor.input else { continue };
                if let Some(d) = monitor.update(error.of(p, y), event_index, event_ts) {
                    self.detections.push(d);
                }
            }
        }
    }
}

/// The engine thread's state.
pub(crate) struct Engine<'s> {
    pub(crate) spec: &'s PipelineSpec,
    pub(crate) control: RunControl,
    pub(crate) encoder: Option<FeatureEncoder>,
    pub(crate) learning: Learning,
    pub(crate) join: LabelJoin,
    pub(crate) predictions: Vec<Sender<SinkMessage>>,
    pub(crate) prediction_schema: SchemaRef,
    pub(crate) events: u64,
    pub(crate) labels: u64,
    pub(crate) late: u64,
    pub(crate) max_ts: i64,
    pub(crate) row: Vec<Feature>,
    pub(crate) scores: Vec<f32>,
    pub(crate) metrics: EngineMetrics,
    pub(crate) slot_metrics: Vec<SlotMetricsHandles>,
    pub(crate) published: JoinCounters,
    pub(crate) published_events: u64,
    pub(crate) published_labels: u64,
    pub(crate) published_late: u64,
    pub(crate) drift_outputs: Vec<Sender<SinkMessage>>,
    pub(crate) drift_published: usize,
    pub(crate) factory: MetricsFactory,
    pub(crate) features: Option<FeatureMonitors>,
    pub(crate) publisher: Option<ModelPublisher>,
    pub(crate) next_version: u64,
    /// Champion updates at its last publish.
    pub(crate) published_updates: u64,
    pub(crate) published_at: Instant,
    pub(crate) promotions: Vec<PromotionRecord>,
    pub(crate) event_cols: Resolved,
    pub(crate) label_cols: Resolved,
    pub(crate) retrain: Option<RetrainState>,
    /// Where dead letters go (the dead-letter thread).
    pub(crate) dead_letters: Sender<DeadLetterMessage>,
    /// Dead letters emitted so far, by reason (state: checkpointed).
    pub(crate) dead_letter_counts: BTreeMap<String, u64>,
    /// Whether checkpoints are on: periodic model publishes then wait for the writer instead
    /// of being dropped when it is busy, so version numbers do not depend on timing.
    pub(crate) checkpointing: bool,
    /// Windowed aggregates joined to each event as of its time (`[features.aggregates]`).
    pub(crate) windows: Option<WindowFeatures>,
}

/// What the engine sends the dead-letter thread.
pub(crate) enum DeadLetterMessage {
    /// Letters to write.
    Letters(Vec<DeadLetter>),
    /// A checkpoint barrier, passed on to every dead-letter sink.
    Barrier(Sender<SinkAck>),
}

impl<'s> Engine<'s> {
    pub(crate) fn new(
        spec: &'s PipelineSpec,
        control: RunControl,
        predictions: Vec<Sender<SinkMessage>>,
        drift_outputs: Vec<Sender<SinkMessage>>,
        dead_letters: Sender<DeadLetterMessage>,
        windows: Option<WindowFeatures>,
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
                    metrics: RetrainMetrics::new(factory),
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
            learning: Learning {
                slots: Vec::new(),
                gate: spec.promotion.clone().map(|c| PromotionGate::new(c, spec.slots.len())),
                learned_time: vec![None; spec.slots.len()],
                monitors,
                error_monitors,
                detections: Vec::new(),
            },
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
            drift_outputs,
            drift_published: 0,
            factory: factory.clone(),
            features: None,
            publisher,
            next_version,
            published_updates: 0,
            published_at: Instant::now(),
            promotions: Vec::new(),
            event_cols: Resolved::default(),
            label_cols: Resolved::default(),
            retrain,
            dead_letters,
            dead_letter_counts: BTreeMap::new(),
            checkpointing: false,
            windows,
        })
    }

    pub(crate) fn run(
        &mut self,
        merger: &mut StreamMerger,
        mut checkpoints: Option<&mut Checkpointer>,
    ) -> Result<(), EngineError> {
        // Per lane: when its current batch started (a small vector: lanes are few and this is
        // touched on every run).
        let mut lane_time: Vec<Option<Instant>> = Vec::new();
        let mut rows_since_publish = 0;
        loop {
            let next = merger.next_run()?;
            self.emit_dead_letters(merger)?;
            if let Some(c) = checkpoints.as_deref_mut() {
                if c.due(self.events) && self.can_checkpoint() {
                    self.checkpoint(merger, c)?;
                    // It may have taken batches into the merger (aggregates computed on a
                    // source thread): pick the next run again.
                    continue;
                }
            }
            match next {
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
                    if let Some(c) = checkpoints.as_deref_mut() {
                        if c.due_idle(self.events) && self.can_checkpoint() {
                            self.checkpoint(merger, c)?;
                        }
                    }
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
                    self.publish()?;
                    if let Some(c) = checkpoints {
                        // The final checkpoint: a restart after a clean stop resumes here. A
                        // retrain whose model was not installed yet cannot be captured; the
                        // previous checkpoint stands then (the restart redoes what follows).
                        if self.can_checkpoint() {
                            self.checkpoint(merger, c)?;
                        } else {
                            tracing::warn!("final checkpoint skipped: a retrain was still in flight; the previous checkpoint stands");
                        }
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Feeds closed windows to the monitors that watch them.
    fn feed_windows(&mut self, closed: Vec<ClosedWindow>) {
        for (window, feature, result) in closed {
            for m in &mut self.learning.monitors {
                if let DriftInput::Window { window: w, feature: f, stat } = &m.input {
                    if *w == window && *f == feature {
                        if let Some(x) = window_stat(&result, stat) {
                            if let Some(d) = m.update(x, self.events, result.end) {
                                self.learning.detections.push(d);
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<'s> Engine<'s> {
    /// Per-batch metrics and drift events.
    pub(crate) fn publish(&mut self) -> Result<(), EngineError> {
        self.maybe_publish_champion(false);
        if let Some(f) = &mut self.features {
            f.publish();
        }
        if let Some(w) = &self.windows {
            w.publish();
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
        for (slot, h) in self.learning.slots.iter().zip(&self.slot_metrics) {
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
        for monitor in &self.learning.monitors {
            monitor.publish();
        }
        if self.learning.detections.len() > self.drift_published {
            let batch = drift_batch(&self.learning.detections[self.drift_published..]);
            self.drift_published = self.learning.detections.len();
            for tx in &self.drift_outputs {
                tx.send(SinkMessage::Batch(batch.clone())).map_err(|_| EngineError::SinkStopped)?;
            }
        }
        Ok(())
    }

    /// Publishes the champion the moment it has learned `publish_every_updates` more labels:
    /// checked per label (one comparison), so the version every prediction carries depends on
    /// the data only — not on batch boundaries, which differ after a restart.
    #[inline]
    fn publish_when_due(&mut self) {
        if let Some(n) = self.spec.registry.as_ref().and_then(|r| r.every_updates) {
            if self.learning.slots[0].learner.updates() - self.published_updates >= n {
                self.maybe_publish_champion(false);
            }
        }
    }

    /// Counts the dead letters of the batches the merger took and hands them to the
    /// dead-letter thread.
    pub(crate) fn emit_dead_letters(&mut self, merger: &mut StreamMerger) -> Result<(), EngineError> {
        let letters = merger.take_dead_letters();
        if letters.is_empty() {
            return Ok(());
        }
        for d in &letters {
            *self.dead_letter_counts.entry(d.reason.clone()).or_insert(0) += 1;
        }
        self.dead_letters.send(DeadLetterMessage::Letters(letters)).map_err(|_| EngineError::SinkStopped)
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
        let (names, window_names) = match &self.windows {
            Some(w) => w.split_names(names, self.spec.features.is_some()),
            None => (names, Vec::new()),
        };
        let declared = |n: &str| self.spec.events.declared.iter().find(|(d, _)| d == n).map(|(_, k)| *k);
        let mut features: Vec<FeatureSpec> = names
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
        let numeric: Vec<String> =
            features.iter().filter(|f| f.kind == FeatureKind::Numeric).map(|f| f.name.clone()).collect();
        if let Some(w) = &mut self.windows {
            w.bind(&mut features, window_names, batch)?;
        }
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
        self.build_model(features, numeric).map_err(EngineError::Input)
    }

    /// Builds the encoder, the feature monitors (over `numeric`, the events' own numeric
    /// features) and the slots for `features`.
    pub(crate) fn build_model(
        &mut self,
        features: Vec<FeatureSpec>,
        numeric: Vec<String>,
    ) -> Result<(), String> {
        let monitors = FeatureMonitors::new(
            &self.spec.windows,
            self.spec.reference_drift.as_ref(),
            &numeric,
            &self.factory,
        )?;
        self.features = (!monitors.is_empty()).then_some(monitors);
        let encoder = FeatureEncoder::new(features, &self.spec.encoding, self.spec.seed);
        self.learning.slots = self
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
            // Aggregate features come last. Computed on the engine thread they are encoded
            // from `windows`; from a source thread they are batch columns.
            let mut n = encoder.encoding().features.len();
            if let Some(w) = self.windows.as_ref().filter(|w| !w.on_source()) {
                n -= w.bound();
            }
            self.event_cols = Resolved {
                batch: Some(id),
                key: position(batch, &self.spec.events.key)?,
                time: position(batch, &self.spec.events.time)?,
                label: 0,
                features: Some(BatchEncoder::new(&encoder, batch, n)),
                monitors: self
                    .learning
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
        let windows_here = self.windows.as_ref().is_some_and(|w| !w.on_source());
        if let Some(w) = self.windows.as_mut().filter(|_| windows_here) {
            w.run(batch, id, times, start, end)?;
        }
        let emit = !self.predictions.is_empty();
        let n = (end - start) * self.learning.slots.len();
        let mut out = emit.then(|| PredictionBuilders::new(n, self.spec.task));
        let feature_monitors: Vec<(usize, &arrow_array::Float64Array)> = cols
            .monitors
            .iter()
            .filter_map(|&(i, c)| batch.column(c).as_primitive_opt::<Float64Type>().map(|a| (i, a)))
            .collect();
        // Taken out like the encoder so the loop can borrow `self` mutably; put back below.
        let features = self.event_cols.features.take().expect("events columns resolved above");
        for r in start..end {
            features.prefetch(r + PREFETCH_ROWS);
            let ts = times[r];
            self.observe_time(ts);
            let key = keys.value(r);
            features.encode(&mut encoder, r, &mut self.row);
            if let Some(w) = self.windows.as_ref().filter(|_| windows_here) {
                w.encode(&mut encoder, r, &mut self.row);
            }
            for (s, slot) in self.learning.slots.iter().enumerate() {
                self.scores[s] = slot.learner.predict(&self.row);
            }
            if let Some(out) = &mut out {
                for (s, slot) in self.learning.slots.iter().enumerate() {
                    out.push(key, ts, &slot.name, slot.version, self.scores[s]);
                }
            }
            let index = self.events;
            self.events += 1;
            for (m, values) in &feature_monitors {
                if values.is_valid(r) {
                    if let Some(d) = self.learning.monitors[*m].update(values.value(r), index, ts) {
                        self.learning.detections.push(d);
                    }
                }
            }
            match self.join.insert_event(xxh3_64(key.as_bytes()), ts, index, &self.row, &self.scores) {
                EventOutcome::JoinedEarly(y) => {
                    let buffer = self.retrain.as_mut().map(|rt| &mut rt.buffer);
                    self.learning.learn(&self.row, &self.scores, y, index, ts, buffer);
                    self.publish_when_due();
                }
                EventOutcome::Buffered | EventOutcome::Rejected => {}
            }
        }
        self.encoder = Some(encoder);
        self.event_cols.features = Some(features);
        if let Some(f) = &mut self.features {
            f.update(
                batch,
                times,
                start,
                end,
                self.events - (end - start) as u64,
                &mut self.learning.detections,
            );
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
                tx.send(SinkMessage::Batch(batch.clone())).map_err(|_| EngineError::SinkStopped)?;
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
                let buffer = self.retrain.as_mut().map(|rt| &mut rt.buffer);
                self.learning.learn(j.row, j.predictions, y, j.event_index, j.event_ts, buffer);
                self.publish_when_due();
            }
            if self.learning.gate.is_some() {
                self.maybe_promote(ts);
            }
        }
        if self.retrain.is_some() {
            self.retrain_tick(times[end - 1]);
        }
        Ok(())
    }

    pub(crate) fn finish(&self) -> RunSummary {
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
            metrics: self.learning.slots.iter().map(|s| (s.name.clone(), s.evaluator.report())).collect(),
            drift: self.learning.detections.clone(),
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
            dead_letters: self.dead_letter_counts.values().sum(),
            dead_letters_by_reason: self.dead_letter_counts.clone(),
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
