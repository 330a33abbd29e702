//! `Pipeline`: the dataflow runtime that ties sources, the label join, the model slots, the
//! evaluator and the sinks together.
//!
//! Threads: one per source (read + decode + validate), one per sink, one for dead letters, and
//! the engine thread that runs the hot loop (`engine.rs`, whose state lives in its parts:
//! `counters.rs`, `label_join.rs`, `models.rs`, `monitors.rs`, `window_features.rs`). This
//! file wires them up. They talk over bounded crossbeam channels,
//! so a slow sink slows the engine and a slow engine slows the sources — backpressure, never
//! unbounded queues. The hot loop is synchronous and allocation-free per row.
//!
//! Per event: update the watermark and expire the join, encode, score with every slot, emit
//! the predictions, buffer the encoded row. Per label: find the event, record each slot's
//! *earlier* prediction in its evaluator (prequential), then let each slot learn.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use crossbeam_channel::{bounded, Receiver, Sender};
use eddy_scorer::registry::ModelRegistry;

use crate::checkpoint::{Checkpoint, CheckpointConfig, CheckpointStore, Checkpointer};
pub use crate::control::RunControl;
use crate::engine::{DeadLetterMessage, Engine, Outputs};
use crate::error::{CheckpointError, EngineError};
use crate::merge::{MergeInput, SourceMessage, StreamMerger};
use crate::metrics::{MetricsFactory, SharedRecorder};
use crate::record::{DeadLetter, StreamRole};
use crate::sink::{Sink, SinkError, SinkInput, SinkMessage, SinkResume};
use crate::source::{Poll, Source, SourceContext, SourcePosition};
pub use crate::spec::{PipelineSpec, RegistrySpec};
use crate::summary::RunSummary;
use crate::window_features::WindowFeatures;

/// Batches in flight per channel.
const CHANNEL_DEPTH: usize = 8;

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
    checkpoints: Option<Checkpointer>,
    restored: Option<Checkpoint<'static>>,
}

impl Pipeline {
    /// A pipeline for `spec`.
    pub fn new(spec: PipelineSpec, control: RunControl) -> Self {
        let metrics = MetricsFactory::noop(&spec.name);
        Pipeline { spec, control, metrics, checkpoints: None, restored: None }
    }

    /// Turns checkpoints on: state is written to `store` with the cadence of `config`, and,
    /// when `restore` is set, the run continues from that checkpoint (build the sources with
    /// [`Pipeline::source_context`] and the sinks with [`Pipeline::sink_resume`] afterwards,
    /// so that they resume at its positions).
    ///
    /// # Errors
    /// When the checkpoint's registry state cannot be put back.
    pub fn with_checkpoints(
        mut self,
        store: CheckpointStore,
        config: &CheckpointConfig,
        restore: Option<Checkpoint<'static>>,
    ) -> Result<Self, EngineError> {
        let mut checkpointer = Checkpointer::new(store, config, &self.metrics);
        checkpointer.registry_dir = self.spec.registry.as_ref().map(|r| r.dir.clone());
        if let Some(cp) = &restore {
            checkpointer.resume_from(cp.engine.events());
            if let Some(r) = &self.spec.registry {
                let registry = ModelRegistry::open(&r.dir).map_err(|e| EngineError::registry(&r.dir, e))?;
                let withdrawn = registry
                    .rewind(cp.engine.next_version() - 1, cp.registry_current, "restored from a checkpoint")
                    .map_err(|e| EngineError::registry(&r.dir, e))?;
                if !withdrawn.is_empty() {
                    tracing::info!(?withdrawn, "versions published after the checkpoint were withdrawn; they are published again as the run catches up");
                }
            }
        }
        self.checkpoints = Some(checkpointer);
        self.restored = restore;
        Ok(self)
    }

    /// How the sink named `name` must start: fresh, or cut back to the restored checkpoint's
    /// position.
    pub fn sink_resume(&self, name: &str) -> SinkResume {
        match &self.restored {
            None => SinkResume::Fresh,
            Some(cp) => match cp.sink_position(name) {
                Some(Some(p)) => SinkResume::Truncate(p),
                Some(None) | None => SinkResume::Append,
            },
        }
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

    /// What a source named `name` playing `role` needs to be built (including where to resume
    /// when a checkpoint is restored).
    pub fn source_context(&self, name: &str, role: StreamRole) -> SourceContext {
        SourceContext {
            name: name.to_string(),
            events: self.spec.events.clone(),
            labels: self.spec.labels.clone(),
            role,
            batch_size: self.spec.batch_size,
            resume: self.restored.as_ref().and_then(|cp| cp.source_position(name)),
            stop: self.control.stop.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Where sinks and sources register their own metrics.
    pub fn metrics(&self) -> &MetricsFactory {
        &self.metrics
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
        let Pipeline { spec, control, metrics, mut checkpoints, mut restored } = self;
        let (dead_letter_tx, dead_letter_rx) = bounded::<DeadLetterMessage>(64);
        let sink_count = sinks.len();
        // Feature SQL is planned before any thread starts; it runs on the source threads.
        let feature_stage =
            crate::feature_sql::FeatureStage::new(&spec.feature_sql, &spec.events, &metrics)?.map(Arc::new);
        // The windowed aggregates run on the thread of the events source when there is only
        // one (see `window_features.rs`), so their state is restored before it starts.
        let mut windows = WindowFeatures::new(&spec.feature_sql, &spec.events.time, &metrics)?;
        match (&mut windows, restored.as_mut().map(|cp| cp.engine.take_aggregates())) {
            (_, None) | (None, Some(None)) => {}
            (Some(w), Some(Some(state))) => w.restore(state)?,
            _ => {
                return Err(CheckpointError::Restore(
                    "its windowed aggregates do not match the configuration".into(),
                )
                .into())
            }
        }
        let event_sources = sources.iter().filter(|(_, s)| s.roles().contains(&StreamRole::Events)).count();
        let mut aggregate_stage =
            windows.as_mut().filter(|_| event_sources == 1).map(|w| w.move_to_source(&spec.events.time));

        // Sinks, each on its own thread.
        let mut outputs: BTreeMap<SinkInput, Vec<Sender<SinkMessage>>> = BTreeMap::new();
        let mut sink_threads: Vec<(String, JoinHandle<Result<(), SinkError>>)> = Vec::new();
        for binding in sinks {
            let (tx, rx) = bounded::<SinkMessage>(CHANNEL_DEPTH);
            outputs.entry(binding.input).or_default().push(tx);
            let mut sink = binding.sink;
            let name = binding.name.clone();
            let handle = std::thread::Builder::new()
                .name(format!("sink-{name}"))
                .spawn(move || {
                    for message in rx {
                        match message {
                            SinkMessage::Batch(batch) => sink.write(&batch)?,
                            SinkMessage::Barrier(ack) => {
                                let answer = sink.checkpoint().map(|p| (name.clone(), p));
                                let failed = answer.is_err();
                                let _ = ack.send(answer);
                                if failed {
                                    return Ok(());
                                }
                            }
                        }
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
            .spawn(move || write_dead_letters(dead_letter_rx, dead_letter_outputs, &dead_letter_metrics))
            .map_err(|e| EngineError::Internal(format!("cannot spawn dead-letter thread: {e}")))?;

        // Sources, each on its own thread.
        let mut inputs = Vec::new();
        let mut source_threads = Vec::new();
        let mut commits = Vec::new();
        for (name, mut source) in sources {
            let (tx, rx) = bounded::<SourceMessage>(CHANNEL_DEPTH);
            // Durable positions, newest wins: a source that commits late skips older ones.
            let (commit_tx, commit_rx) = bounded::<SourcePosition>(4);
            commits.push((name.clone(), commit_tx));
            let bounded_source = source.is_bounded();
            let roles = source.roles();
            let stop = control.stop.clone();
            let thread_name = name.clone();
            let stage = feature_stage.clone();
            let mut aggregates =
                if roles.contains(&StreamRole::Events) { aggregate_stage.take() } else { None };
            let handle = std::thread::Builder::new()
                .name(format!("source-{name}"))
                .spawn(move || {
                    loop {
                        if let Some(durable) = commit_rx.try_iter().last() {
                            if let Err(e) = source.commit(&durable) {
                                tracing::warn!(source = %thread_name, "committing the durable position failed (retried after the next checkpoint): {e}");
                            }
                        }
                        if stop.load(Ordering::Relaxed) {
                            let _ = tx.send(SourceMessage::End);
                            return;
                        }
                        match source.poll() {
                            Ok(Poll::Batch(b)) => {
                                let applied = match &stage {
                                    None => Ok(b),
                                    Some(stage) => stage.apply(b, &thread_name),
                                };
                                let applied = match &mut aggregates {
                                    None => applied,
                                    Some(a) => applied.and_then(|b| a.apply(b, &thread_name)),
                                };
                                let b = match applied {
                                    Ok(b) => b,
                                    Err(e) => {
                                        let _ = tx.send(SourceMessage::Failed(e));
                                        return;
                                    }
                                };
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

        let mut merger = StreamMerger::new(inputs, &spec.events.time, &spec.labels.time, spec.idle_timeout);
        let predictions = outputs.remove(&SinkInput::Predictions).unwrap_or_default();
        let drift_outputs = outputs.remove(&SinkInput::Drift).unwrap_or_default();
        let engine_outputs = Outputs { predictions, drift: drift_outputs, dead_letters: dead_letter_tx };
        let prepared =
            Engine::new(&spec, control.clone(), engine_outputs, windows, &metrics).and_then(|mut engine| {
                engine.set_checkpointing(checkpoints.is_some());
                if let Some(cp) = restored {
                    merger.restore(cp.merger)?;
                    engine.restore(cp.engine)?;
                    tracing::info!(
                        sequence = cp.sequence,
                        events = engine.events(),
                        "restored from a checkpoint"
                    );
                }
                Ok(engine)
            });
        let mut engine = match prepared {
            Ok(e) => e,
            Err(e) => {
                // Sources see the stop flag, sinks their closed channels: every thread ends.
                control.stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
        };
        if let Some(c) = &mut checkpoints {
            c.sinks = sink_count;
            c.commits = commits;
        }
        let result = engine.run(&mut merger, checkpoints.as_mut());
        drop(merger);
        let mut summary = engine.finish();
        if let Some(c) = &checkpoints {
            summary.checkpoints = c.written;
            summary.checkpoint_max_seconds = c.max_seconds;
            summary.checkpoint_bytes = c.last_bytes;
        }
        summary.feature_sql = crate::feature_sql::FeatureSqlSummary::of(
            feature_stage.as_deref(),
            engine.aggregates().map(|w| w.summaries()),
        );
        if let Some(report) = engine.close_registry() {
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
        if let Err(e) = dead {
            first_error.get_or_insert(EngineError::Sink(e));
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

/// Writes dead letters to their sinks in batches and counts them in metrics (the engine
/// counts them for the summary, as state). Barriers are passed on to every dead-letter sink.
fn write_dead_letters(
    rx: Receiver<DeadLetterMessage>,
    outputs: Vec<Sender<SinkMessage>>,
    metrics: &MetricsFactory,
) -> Result<(), SinkError> {
    let mut counters: BTreeMap<(String, String), metrics::Counter> = BTreeMap::new();
    let mut warned = 0;
    let stopped = || SinkError::new("dead_letters", "sink stopped");
    for message in rx {
        let pending = match message {
            DeadLetterMessage::Letters(letters) => letters,
            DeadLetterMessage::Barrier(ack) => {
                for tx in &outputs {
                    tx.send(SinkMessage::Barrier(ack.clone())).map_err(|_| stopped())?;
                }
                continue;
            }
        };
        for d in &pending {
            counters
                .entry((d.source.clone(), d.reason.clone()))
                .or_insert_with(|| {
                    metrics.counter(
                        &crate::metrics::DEAD_LETTERS_TOTAL,
                        &[("source", &d.source), ("reason", &d.reason)],
                    )
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
                tx.send(SinkMessage::Batch(batch.clone())).map_err(|_| stopped())?;
            }
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SourceBatch;
    use crate::source::SourceError;
    use arrow_array::{Float64Array, Int64Array};
    use std::sync::Mutex;

    /// A bounded in-memory source: its batches, then the end.
    struct Batches(std::collections::VecDeque<SourceBatch>, StreamRole);

    impl Source for Batches {
        fn poll(&mut self) -> Result<Poll, SourceError> {
            Ok(self.0.pop_front().map_or(Poll::End, Poll::Batch))
        }
        fn is_bounded(&self) -> bool {
            true
        }
        fn roles(&self) -> Vec<StreamRole> {
            vec![self.1]
        }
    }

    /// A sink that keeps what it is given.
    struct Collect(Arc<Mutex<Vec<RecordBatch>>>);

    impl Sink for Collect {
        fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
            self.0.lock().unwrap().push(batch.clone());
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    /// `n` events of one feature `x` (label: x > 0), one event per 10 ms, and their labels
    /// 50 ms later.
    fn stream(n: usize) -> (SourceBatch, SourceBatch) {
        let ids: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
        let ts: Vec<i64> = (0..n as i64).map(|i| 1_000 + 10 * i).collect();
        let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 100) as f64 / 50.0 - 1.0).collect();
        let events = RecordBatch::try_from_iter([
            ("id", Arc::new(StringArray::from(ids.clone())) as ArrayRef),
            ("ts", Arc::new(Int64Array::from(ts.clone())) as ArrayRef),
            ("x", Arc::new(Float64Array::from(x.clone())) as ArrayRef),
        ])
        .unwrap();
        let labels = RecordBatch::try_from_iter([
            ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
            ("ts", Arc::new(Int64Array::from(ts.iter().map(|t| t + 50).collect::<Vec<_>>())) as ArrayRef),
            (
                "label",
                Arc::new(Float64Array::from(x.iter().map(|&v| (v > 0.0) as u8 as f64).collect::<Vec<_>>()))
                    as ArrayRef,
            ),
        ])
        .unwrap();
        let offsets: Vec<u64> = (0..n as u64).collect();
        (
            SourceBatch::new(StreamRole::Events, events, offsets.clone()),
            SourceBatch::new(StreamRole::Labels, labels, offsets),
        )
    }

    /// The whole dataflow without the binary: every event is scored by both slots, every
    /// label joins, the champion learns the concept, and the summary adds up.
    #[test]
    fn a_pipeline_scores_every_event_joins_every_label_and_learns() {
        let mut spec = crate::spec::tests::spec();
        spec.registry = None;
        let n = 2000;
        let (events, labels) = stream(n);
        let predictions = Arc::new(Mutex::new(Vec::new()));
        let sources: Vec<(String, Box<dyn Source>)> = vec![
            ("events".into(), Box::new(Batches([events].into(), StreamRole::Events))),
            ("labels".into(), Box::new(Batches([labels].into(), StreamRole::Labels))),
        ];
        let sinks = vec![SinkBinding {
            name: "predictions".into(),
            input: SinkInput::Predictions,
            sink: Box::new(Collect(predictions.clone())),
        }];
        let summary = Pipeline::new(spec, RunControl::default()).run(sources, sinks).unwrap();
        assert_eq!((summary.events, summary.labels, summary.joined), (n as u64, n as u64, n as u64));
        assert_eq!(summary.late_records, 0);
        let rows: usize = predictions.lock().unwrap().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 2 * n, "one prediction per event and slot");
        let champion = &summary.metrics["champion"];
        assert!(champion.accuracy.unwrap() > 0.9, "{champion:?}");
        assert_eq!(summary.features.len(), 1);
    }
}
