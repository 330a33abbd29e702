//! `Engine`: the engine thread. It merges events and labels, encodes, scores with every
//! slot, joins labels, evaluates and learns — the per-row hot loop — and once per batch
//! publishes metrics and drift events; between two runs of rows it takes checkpoints.
//!
//! The engine owns no state of its own beyond wiring: its state lives in its parts, each of
//! which owns, captures and restores its own —
//!
//! | part | file | state |
//! | --- | --- | --- |
//! | [`Counters`] | `counters.rs` | events, labels, late records, watermark, dead letters |
//! | [`LabelJoin`] | `label_join.rs` | events waiting for their label, early labels |
//! | [`Models`] | `models.rs` | encoder, slots, gate, versions, promotions, retrains |
//! | [`Monitors`] | `monitors.rs` | drift detectors, windowed statistics, reference drift, detections |
//! | [`WindowFeatures`] | `window_features.rs` | windowed SQL aggregates |
//!
//! and [`EngineState`] is the struct of their states.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{Float32Builder, Int64Builder, StringBuilder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use crossbeam_channel::{bounded, Sender};
use eddy_scorer::encoding::{Feature, FeatureKind, FeatureSpec};
use eddy_scorer::model::ModelKind;
use xxhash_rust::xxh3::xxh3_64;

use crate::checkpoint::{now_ms, Checkpoint, Checkpointer};
use crate::control::RunControl;
use crate::counters::Counters;
use crate::encode::BatchEncoder;
use crate::error::{CheckpointError, EngineError};
use crate::label_join::{EventOutcome, LabelJoin, LabelOutcome};
use crate::merge::{Next, StreamMerger};
use crate::metrics::MetricsFactory;
use crate::models::Models;
use crate::monitors::{numeric_column, Monitors};
use crate::record::{DeadLetter, StreamRole};
use crate::sink::{SinkAck, SinkMessage};
use crate::spec::PipelineSpec;
use crate::state::EngineState;
use crate::summary::{DriftRecord, FeatureSummary, RunSummary};
use crate::window_features::{WindowFeatures, WindowFeaturesState};

/// Metrics and drift events are published every this many rows (and when input pauses or
/// ends): often enough for a scrape, rare enough to cost nothing per row.
const PUBLISH_EVERY_ROWS: usize = 4096;

/// How many rows ahead of the one being encoded its numeric feature values are prefetched
/// (see [`BatchEncoder::prefetch`]).
const PREFETCH_ROWS: usize = 16;

/// Column positions of the batch being processed, resolved once per batch: when events and
/// labels interleave row by row, runs are a single row long and name lookups per run would
/// dominate.
#[derive(Default)]
struct Resolved {
    batch: Option<u64>,
    key: usize,
    time: usize,
    label: usize,
    /// The feature columns (events only).
    features: Option<BatchEncoder>,
    /// `(monitor, column)` of the drift monitors of raw features (events only).
    monitors: Vec<(usize, usize)>,
}

fn position(batch: &RecordBatch, name: &str) -> Result<usize, EngineError> {
    batch.schema().index_of(name).map_err(|_| {
        EngineError::Internal(format!("validated batch lacks column `{name}` (a bug in the source)"))
    })
}

/// What the engine sends the dead-letter thread.
pub(crate) enum DeadLetterMessage {
    /// Letters to write.
    Letters(Vec<DeadLetter>),
    /// A checkpoint barrier, passed on to every dead-letter sink.
    Barrier(Sender<SinkAck>),
}

/// Where the engine's outputs go.
pub(crate) struct Outputs {
    /// Predictions sinks.
    pub(crate) predictions: Vec<Sender<SinkMessage>>,
    /// Drift sinks.
    pub(crate) drift: Vec<Sender<SinkMessage>>,
    /// The dead-letter thread.
    pub(crate) dead_letters: Sender<DeadLetterMessage>,
}

/// The engine thread: its parts and their wiring. See the module docs.
pub(crate) struct Engine<'s> {
    spec: &'s PipelineSpec,
    control: RunControl,
    counters: Counters,
    join: LabelJoin,
    models: Models<'s>,
    monitors: Monitors,
    /// Windowed aggregates joined to each event as of its time (`[features.aggregates]`).
    aggregates: Option<WindowFeatures>,
    outputs: Outputs,
    prediction_schema: SchemaRef,
    factory: MetricsFactory,
    /// The encoded row being scored (reused).
    row: Vec<Feature>,
    /// Each slot's score of the row (reused).
    scores: Vec<f32>,
    event_cols: Resolved,
    label_cols: Resolved,
}

impl<'s> Engine<'s> {
    /// The engine of `spec`, writing to `outputs`.
    ///
    /// # Errors
    /// When a part cannot be built from the spec (a drift input, the retrain slot, the
    /// registry).
    pub(crate) fn new(
        spec: &'s PipelineSpec,
        control: RunControl,
        outputs: Outputs,
        aggregates: Option<WindowFeatures>,
        factory: &MetricsFactory,
    ) -> Result<Self, EngineError> {
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
        Ok(Engine {
            spec,
            control,
            counters: Counters::new(spec.join.allowed_lateness.as_millis_i64(), factory),
            join: LabelJoin::new(&spec.join, spec.slots.len()),
            models: Models::new(spec, factory)?,
            monitors: Monitors::new(spec, factory)?,
            aggregates,
            outputs,
            prediction_schema: Arc::new(Schema::new(fields)),
            factory: factory.clone(),
            row: Vec::with_capacity(64),
            scores: vec![0.0; spec.slots.len()],
            event_cols: Resolved::default(),
            label_cols: Resolved::default(),
        })
    }

    /// Makes every model publish wait for the registry writer, so which versions exist does
    /// not depend on timing (on when checkpoints are).
    pub(crate) fn set_checkpointing(&mut self, on: bool) {
        self.models.set_checkpointing(on);
    }

    /// Events processed so far.
    pub(crate) fn events(&self) -> u64 {
        self.counters.events()
    }

    /// The windowed aggregates, for the run summary.
    pub(crate) fn aggregates(&self) -> Option<&WindowFeatures> {
        self.aggregates.as_ref()
    }

    /// Stops the registry writer and reports what it wrote.
    pub(crate) fn close_registry(&mut self) -> Option<crate::publisher::PublishReport> {
        self.models.close_registry()
    }

    /// Runs until the merger is done (every source ended, or the stop flag drained them).
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
                if c.due(self.counters.events()) && self.models.can_checkpoint() {
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
                            self.counters.record_batch_seconds(role == StreamRole::Events, seconds);
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
                        if c.due_idle(self.counters.events()) && self.models.can_checkpoint() {
                            self.checkpoint(merger, c)?;
                        }
                    }
                    self.publish()?;
                    if self.control.stop.load(Ordering::Relaxed) {
                        merger.stop_waiting();
                    }
                }
                Next::Done => {
                    self.monitors.finish_input(self.counters.events());
                    self.models.finish_input();
                    self.publish()?;
                    if let Some(c) = checkpoints {
                        // The final checkpoint: a restart after a clean stop resumes here. A
                        // retrain whose model was not installed yet cannot be captured; the
                        // previous checkpoint stands then (the restart redoes what follows).
                        if self.models.can_checkpoint() {
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

    /// Per-batch metrics and drift events.
    fn publish(&mut self) -> Result<(), EngineError> {
        self.models.maybe_publish_champion(false);
        if let Some(w) = &self.aggregates {
            w.publish();
        }
        self.counters.publish(&self.join);
        self.models.publish_metrics();
        self.monitors.publish();
        let new = self.monitors.take_unemitted();
        if !new.is_empty() {
            let batch = drift_batch(new);
            for tx in &self.outputs.drift {
                tx.send(SinkMessage::Batch(batch.clone())).map_err(|_| EngineError::SinkStopped)?;
            }
        }
        Ok(())
    }

    /// Counts the dead letters of the batches the merger took and hands them to the
    /// dead-letter thread.
    fn emit_dead_letters(&mut self, merger: &mut StreamMerger) -> Result<(), EngineError> {
        self.counters.count_blank_lines(merger.take_blank_lines());
        let letters = merger.take_dead_letters();
        if letters.is_empty() {
            return Ok(());
        }
        self.counters.count_dead_letters(&letters);
        self.outputs
            .dead_letters
            .send(DeadLetterMessage::Letters(letters))
            .map_err(|_| EngineError::SinkStopped)
    }

    /// Resolves the model's features from the first event batch and builds the models and
    /// the feature monitors.
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
        let (names, aggregate_names) = match &self.aggregates {
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
        if let Some(w) = &mut self.aggregates {
            w.bind(&mut features, aggregate_names, batch)?;
        }
        if features.is_empty() {
            return Err(EngineError::Features(format!(
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
        self.monitors.bind_features(self.spec, &numeric, &self.factory)?;
        self.models.build(features);
        Ok(())
    }

    /// Learns one joined example in every slot and feeds each slot's error monitors.
    #[inline]
    fn learn(
        models: &mut Models<'_>,
        monitors: &mut Monitors,
        row: &[Feature],
        predictions: &[f32],
        y: f32,
        event_index: u64,
        event_ts: i64,
    ) {
        models.learn(row, predictions, y, event_ts);
        for (s, &p) in predictions.iter().enumerate() {
            monitors.observe_errors(s, p, y, event_index, event_ts);
        }
    }

    fn events_run(
        &mut self,
        batch: &RecordBatch,
        id: u64,
        start: usize,
        end: usize,
    ) -> Result<(), EngineError> {
        if self.models.encoder().is_none() {
            self.init_model(batch)?;
        }
        let mut encoder = self.models.take_encoder().expect("encoder initialised above");
        if self.event_cols.batch != Some(id) {
            // Aggregate features come last. Computed on the engine thread they are encoded
            // from `aggregates`; from a source thread they are batch columns.
            let mut n = encoder.encoding().features.len();
            if let Some(w) = self.aggregates.as_ref().filter(|w| !w.on_source()) {
                n -= w.bound();
            }
            self.event_cols = Resolved {
                batch: Some(id),
                key: position(batch, &self.spec.events.key)?,
                time: position(batch, &self.spec.events.time)?,
                label: 0,
                features: Some(BatchEncoder::new(&encoder, batch, n)),
                monitors: self.monitors.feature_columns(batch),
            };
        }
        let cols = &self.event_cols;
        let keys = batch.column(cols.key).as_string::<i32>();
        let times = batch.column(cols.time).as_primitive::<Int64Type>().values();
        let aggregates_here = self.aggregates.as_ref().is_some_and(|w| !w.on_source());
        if let Some(w) = self.aggregates.as_mut().filter(|_| aggregates_here) {
            w.run(batch, id, times, start, end)?;
        }
        let emit = !self.outputs.predictions.is_empty();
        let n_slots = self.models.slots().len();
        let mut out = emit.then(|| PredictionBuilders::new((end - start) * n_slots, self.spec.task));
        let feature_monitors: Vec<(usize, &arrow_array::Float64Array)> =
            cols.monitors.iter().filter_map(|&(m, c)| numeric_column(batch, c).map(|a| (m, a))).collect();
        // Taken out like the encoder so the loop can borrow `self` mutably; put back below.
        let features = self.event_cols.features.take().expect("events columns resolved above");
        let first_index = self.counters.events();
        for r in start..end {
            features.prefetch(r + PREFETCH_ROWS);
            let ts = times[r];
            if let Some(watermark) = self.counters.observe_time(ts) {
                self.join.advance(watermark);
            }
            let key = keys.value(r);
            features.encode(&mut encoder, r, &mut self.row);
            if let Some(w) = self.aggregates.as_ref().filter(|_| aggregates_here) {
                w.encode(&mut encoder, r, &mut self.row);
            }
            self.models.predict(&self.row, &mut self.scores);
            if let Some(out) = &mut out {
                for (s, slot) in self.models.slots().iter().enumerate() {
                    out.push(key, ts, &slot.name, slot.version, self.scores[s]);
                }
            }
            let index = self.counters.next_event();
            for (m, values) in &feature_monitors {
                if values.is_valid(r) {
                    self.monitors.observe_feature(*m, values.value(r), index, ts);
                }
            }
            match self.join.insert_event(xxh3_64(key.as_bytes()), ts, index, &self.row, &self.scores) {
                EventOutcome::JoinedEarly(y) => {
                    Engine::learn(
                        &mut self.models,
                        &mut self.monitors,
                        &self.row,
                        &self.scores,
                        y,
                        index,
                        ts,
                    );
                }
                EventOutcome::Buffered | EventOutcome::Rejected => {}
            }
        }
        self.models.put_encoder(encoder);
        self.event_cols.features = Some(features);
        self.monitors.after_events(
            batch,
            times,
            start,
            end,
            first_index,
            self.counters.watermark(),
            self.counters.events(),
        );
        self.control.events.store(self.counters.events(), Ordering::Relaxed);
        if let Some(out) = out {
            let batch = out.finish(self.prediction_schema.clone());
            for tx in &self.outputs.predictions {
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
        let gate = self.models.has_gate();
        for r in start..end {
            let ts = times[r];
            if let Some(watermark) = self.counters.observe_time(ts) {
                self.join.advance(watermark);
            }
            self.counters.count_label();
            let y = ys[r] as f32;
            if let LabelOutcome::Joined(j) = self.join.take_label(xxh3_64(keys.value(r).as_bytes()), ts, y) {
                Engine::learn(
                    &mut self.models,
                    &mut self.monitors,
                    j.row,
                    j.predictions,
                    y,
                    j.event_index,
                    j.event_ts,
                );
            }
            if gate && self.models.maybe_promote(ts, self.join.counters().joined) {
                // Feature drift is measured against the data the new champion was chosen on.
                self.monitors.champion_changed();
            }
        }
        if self.models.has_retrains() {
            let manual = self.control.manual_retrain.take();
            let joined = self.join.counters().joined;
            self.models.retrain_tick(times[end - 1], joined, self.monitors.detections(), manual);
        }
        Ok(())
    }

    /// Takes a checkpoint: settles the registry, passes a barrier through every sink (each
    /// makes its output durable and reports its position), captures the engine and the
    /// merger, writes the file, then tells each source that its position is durable.
    ///
    /// # Errors
    /// When a sink or the checkpoint write fails; the run stops (a daemon that cannot
    /// checkpoint would lose its guarantees silently).
    fn checkpoint(&mut self, merger: &mut StreamMerger, c: &mut Checkpointer) -> Result<(), EngineError> {
        let started = Instant::now();
        // Aggregates computed on a source thread: the batches they have seen are taken into
        // the merger first, and their dead letters go out before the sinks' barriers.
        let aggregates = self.aggregates.as_ref().map(|w| w.capture(merger)).transpose()?;
        self.emit_dead_letters(merger)?;
        self.publish()?;
        self.models.sync_registry();
        let (ack_tx, ack_rx) = bounded::<SinkAck>(c.sinks.max(1));
        for tx in self.outputs.predictions.iter().chain(&self.outputs.drift) {
            tx.send(SinkMessage::Barrier(ack_tx.clone())).map_err(|_| EngineError::SinkStopped)?;
        }
        self.outputs
            .dead_letters
            .send(DeadLetterMessage::Barrier(ack_tx.clone()))
            .map_err(|_| EngineError::SinkStopped)?;
        drop(ack_tx);
        let mut sinks = Vec::with_capacity(c.sinks);
        for _ in 0..c.sinks {
            match ack_rx.recv() {
                Ok(Ok(position)) => sinks.push(position),
                Ok(Err(e)) => return Err(EngineError::Sink(e)),
                Err(_) => return Err(EngineError::SinkStopped),
            }
        }
        sinks.sort();
        let registry_current = match &c.registry_dir {
            Some(dir) => {
                eddy_scorer::registry::read_current(dir).map_err(|e| EngineError::registry(dir, e))?
            }
            None => None,
        };
        let mut checkpoint = Checkpoint {
            sequence: 0,
            created_unix_ms: now_ms(),
            merger: merger.snapshot()?,
            sinks,
            registry_current,
            engine: self.capture(aggregates),
        };
        let (path, bytes) = c.store.write(&mut checkpoint)?;
        let seconds = started.elapsed().as_secs_f64();
        let events = self.counters.events();
        c.done(events, bytes, seconds);
        tracing::debug!(path = %path.display(), bytes, seconds, events, "checkpoint written");
        for (name, position) in merger.positions() {
            if let Some(position) = position {
                if let Some((_, tx)) = c.commits.iter().find(|(n, _)| *n == name) {
                    // A source thread that already ended has nothing to commit.
                    let _ = tx.try_send(position);
                }
            }
        }
        Ok(())
    }

    /// The engine's state: the struct of its parts' states (with the windowed aggregates'
    /// state captured by [`WindowFeatures::capture`]). Call only when no retrain is in flight.
    fn capture(&self, aggregates: Option<WindowFeaturesState>) -> EngineState<'_> {
        EngineState {
            counters: self.counters.state(),
            join: Cow::Borrowed(&self.join),
            models: self.models.state(),
            monitors: self.monitors.state(),
            aggregates,
        }
    }

    /// Continues from `state`, captured by an engine with the same pipeline spec (the
    /// windowed aggregates are restored by the pipeline, before the source threads start).
    ///
    /// # Errors
    /// When the state does not fit this pipeline (other slots, monitors or windows).
    pub(crate) fn restore(&mut self, state: EngineState<'_>) -> Result<(), CheckpointError> {
        if let Some(specs) = state.models.features() {
            // Feature monitors watch the events' own numeric fields, not aggregate outputs.
            let outputs: &[String] = self.aggregates.as_ref().map_or(&[], |w| w.names());
            let numeric: Vec<String> = specs
                .iter()
                .filter(|f| f.kind == FeatureKind::Numeric && !outputs.contains(&f.name))
                .map(|f| f.name.clone())
                .collect();
            if let Some(w) = &mut self.aggregates {
                w.rebind(&specs);
            }
            self.monitors
                .bind_features(self.spec, &numeric, &self.factory)
                .map_err(|e| CheckpointError::Restore(e.to_string()))?;
        }
        self.models.restore(state.models)?;
        self.monitors.restore(state.monitors)?;
        self.counters.restore(state.counters);
        self.join = state.join.into_owned();
        self.control.events.store(self.counters.events(), Ordering::Relaxed);
        Ok(())
    }

    /// The run summary of everything the parts saw.
    pub(crate) fn finish(&self) -> RunSummary {
        let c = self.join.counters();
        let (retrains, retrains_skipped) = self.models.retrain_summary();
        RunSummary {
            pipeline: self.spec.name.clone(),
            events: self.counters.events(),
            labels: self.counters.labels(),
            joined: c.joined,
            expired: c.expired,
            unmatched_labels: c.unmatched_labels,
            early_labels: c.early_labels,
            duplicate_labels: c.duplicate_labels,
            duplicate_events: c.duplicate_events,
            evicted: c.evicted,
            rejected_full: c.rejected_full,
            late_records: self.counters.late(),
            skipped_blank_lines: self.counters.blank_lines(),
            pending_at_end: self.join.pending() as u64,
            waiting_labels_at_end: self.join.waiting_labels() as u64,
            metrics: self.models.slots().iter().map(|s| (s.name.clone(), s.evaluator.report())).collect(),
            drift: self.monitors.detections().to_vec(),
            promotions: self.models.promotions().to_vec(),
            retrains,
            retrains_skipped,
            dead_letters: self.counters.dead_letters().values().sum(),
            dead_letters_by_reason: self.counters.dead_letters().clone(),
            features: self
                .models
                .encoder()
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
