//! The engine's side of checkpoints: capturing everything the engine thread holds as one
//! serialisable [`EngineState`], and continuing from one.
//!
//! Capture happens between two runs of rows, never inside one, and never while a retrain is in
//! flight (its result would be lost with the process, and redoing it from a different buffer
//! would change every model after it); the caller defers the checkpoint instead. Metric
//! handles, channels and threads are not state: they are rebuilt. Prometheus counters restart
//! at the restored totals, so they never go backwards across a restart.

use std::borrow::Cow;
use std::collections::BTreeMap;

use eddy_operators::drift::{DetectorSnapshot, DriftState};
use eddy_operators::encoder::RunningStats;
use eddy_operators::learner::{LearnerState, LinearLearner};
use eddy_scorer::encoding::{FeatureKind, FeatureSpec};
use serde::{Deserialize, Serialize};

use std::time::Instant;

use crossbeam_channel::bounded;

use crate::checkpoint::{now_ms, Checkpoint, Checkpointer};
use crate::dataflow::{DeadLetterMessage, Engine};
use crate::error::EngineError;
use crate::evaluator::Evaluator;
use crate::feature_stats::FeatureMonitorsState;
use crate::label_join::LabelJoin;
use crate::merge::StreamMerger;
use crate::promotion::PromotionGate;
use crate::retrain::{RetrainRecord, TrainingBuffer};
use crate::sink::{SinkAck, SinkMessage};
use crate::summary::{DriftRecord, PromotionRecord};

/// Everything the engine thread knows, as of the last row it processed.
///
/// The two large parts (the join buffer, the training buffer) are borrowed when a checkpoint
/// is written — encoded straight from the engine's own state, never copied first — and owned
/// when one is read back.
#[derive(Debug, Serialize, Deserialize)]
pub struct EngineState<'a> {
    events: u64,
    labels: u64,
    late: u64,
    max_ts: i64,
    /// The model's resolved features (`None` before the first event).
    features: Option<Vec<(String, FeatureKind)>>,
    running_stats: Vec<RunningStats>,
    slots: Vec<SlotState>,
    gate: Option<PromotionGate>,
    learned_time: Vec<Option<(i64, i64)>>,
    monitors: Vec<(DetectorSnapshot, DriftState)>,
    detections: Vec<DriftRecord>,
    drift_published: usize,
    join: Cow<'a, LabelJoin>,
    feature_monitors: Option<FeatureMonitorsState>,
    next_version: u64,
    published_updates: u64,
    promotions: Vec<PromotionRecord>,
    retrain: Option<RetrainSnapshot<'a>>,
    /// Dead letters emitted so far, by reason.
    pub(crate) dead_letters: BTreeMap<String, u64>,
    /// Windowed aggregates (`[features.aggregates]`), one state per aggregate.
    aggregates: Option<crate::window_features::WindowFeaturesState>,
}

impl EngineState<'_> {
    /// Takes the windowed aggregates' state out, to restore them before anything runs.
    pub(crate) fn take_aggregates(&mut self) -> Option<crate::window_features::WindowFeaturesState> {
        self.aggregates.take()
    }

    /// Events processed when the state was captured.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The registry version the engine will publish next; every version before it was
    /// published (and is durable) when the state was captured.
    pub fn next_version(&self) -> u64 {
        self.next_version
    }

    /// The champion's registry version (0 when never published).
    pub fn champion_version(&self) -> u64 {
        self.slots.first().map_or(0, |s| s.version)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SlotState {
    name: String,
    learner: LearnerState,
    evaluator: Evaluator,
    version: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct RetrainSnapshot<'a> {
    buffer: Cow<'a, TrainingBuffer>,
    armed: Option<(String, u64)>,
    records: Vec<RetrainRecord>,
    cooldown_until: u64,
    last_every: u64,
    last_schedule: Option<i64>,
    detections_seen: usize,
    origin: Vec<Option<usize>>,
    skipped: u64,
}

impl Engine<'_> {
    /// Whether a checkpoint can be taken now (no retrain in flight).
    pub(crate) fn can_checkpoint(&self) -> bool {
        self.retrain.as_ref().is_none_or(|rt| rt.running.is_none())
    }

    /// Captures the engine's state, with the windowed aggregates' state captured by
    /// [`crate::window_features::WindowFeatures::capture`]. Call only when
    /// [`Engine::can_checkpoint`] holds.
    pub(crate) fn capture(
        &self,
        aggregates: Option<crate::window_features::WindowFeaturesState>,
    ) -> EngineState<'_> {
        EngineState {
            events: self.events,
            labels: self.labels,
            late: self.late,
            max_ts: self.max_ts,
            features: self
                .encoder
                .as_ref()
                .map(|e| e.encoding().features.iter().map(|f| (f.name.clone(), f.kind)).collect()),
            running_stats: self.encoder.as_ref().map(|e| e.running_stats().to_vec()).unwrap_or_default(),
            slots: self
                .learning
                .slots
                .iter()
                .map(|s| SlotState {
                    name: s.name.clone(),
                    learner: s.learner.state(),
                    evaluator: s.evaluator.clone(),
                    version: s.version,
                })
                .collect(),
            gate: self.learning.gate.clone(),
            learned_time: self.learning.learned_time.clone(),
            monitors: self
                .learning
                .monitors
                .iter()
                .map(|m| (m.detector.snapshot(), m.last_state()))
                .collect(),
            detections: self.learning.detections.clone(),
            drift_published: self.drift_published,
            join: Cow::Borrowed(&self.join),
            feature_monitors: self.features.as_ref().map(|f| f.state()),
            next_version: self.next_version,
            published_updates: self.published_updates,
            promotions: self.promotions.clone(),
            retrain: self.retrain.as_ref().map(|rt| RetrainSnapshot {
                buffer: Cow::Borrowed(&rt.buffer),
                armed: rt.armed.clone(),
                records: rt.records.clone(),
                cooldown_until: rt.cooldown_until,
                last_every: rt.last_every,
                last_schedule: rt.last_schedule,
                detections_seen: rt.detections_seen,
                origin: rt.origin.clone(),
                skipped: rt.skipped,
            }),
            dead_letters: self.dead_letter_counts.clone(),
            aggregates,
        }
    }

    /// Takes a checkpoint: settles the registry, passes a barrier through every sink (each
    /// makes its output durable and reports its position), captures the engine and the
    /// merger, writes the file, then tells each source that its position is durable.
    ///
    /// # Errors
    /// When a sink or the checkpoint write fails; the run stops (a daemon that cannot
    /// checkpoint would lose its guarantees silently).
    pub(crate) fn checkpoint(
        &mut self,
        merger: &mut StreamMerger,
        c: &mut Checkpointer,
    ) -> Result<(), EngineError> {
        let started = Instant::now();
        // Aggregates computed on a source thread: the batches they have seen are taken into
        // the merger first, and their dead letters go out before the sinks' barriers.
        let aggregates = self.windows.as_ref().map(|w| w.capture(merger)).transpose()?;
        self.emit_dead_letters(merger)?;
        self.publish()?;
        if let Some(p) = &self.publisher {
            p.sync();
        }
        let (ack_tx, ack_rx) = bounded::<SinkAck>(c.sinks.max(1));
        for tx in self.predictions.iter().chain(&self.drift_outputs) {
            tx.send(SinkMessage::Barrier(ack_tx.clone())).map_err(|_| EngineError::SinkStopped)?;
        }
        self.dead_letters
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
            Some(dir) => eddy_scorer::registry::read_current(dir)
                .map_err(|e| EngineError::Input(format!("model registry {}: {e}", dir.display())))?,
            None => None,
        };
        let mut checkpoint = Checkpoint {
            sequence: 0,
            created_unix_ms: now_ms(),
            merger: merger.snapshot().map_err(EngineError::Internal)?,
            sinks,
            registry_current,
            engine: self.capture(aggregates),
        };
        let (path, bytes) = c.store.write(&mut checkpoint)?;
        let seconds = started.elapsed().as_secs_f64();
        c.done(self.events, bytes, seconds);
        tracing::debug!(path = %path.display(), bytes, seconds, events = self.events, "checkpoint written");
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

    /// Continues from `state`, captured by an engine with the same pipeline spec.
    ///
    /// # Errors
    /// When the state does not fit this pipeline (other slots, monitors or windows).
    pub(crate) fn restore(&mut self, state: EngineState<'_>) -> Result<(), String> {
        let names: Vec<&str> = self.spec.slots.iter().map(|s| s.name.as_str()).collect();
        if let Some(features) = state.features {
            let names_saved: Vec<&str> = state.slots.iter().map(|s| s.name.as_str()).collect();
            if names_saved != names {
                return Err(format!("the checkpoint has slots {names_saved:?}, the pipeline {names:?}"));
            }
            let specs: Vec<FeatureSpec> =
                features.into_iter().map(|(name, kind)| FeatureSpec { name, kind }).collect();
            // Feature monitors watch the events' own numeric fields, not aggregate outputs.
            let outputs: &[String] = self.windows.as_ref().map_or(&[], |w| w.names());
            let numeric = specs
                .iter()
                .filter(|f| f.kind == FeatureKind::Numeric && !outputs.contains(&f.name))
                .map(|f| f.name.clone())
                .collect();
            if let Some(w) = &mut self.windows {
                w.rebind(&specs);
            }
            self.build_model(specs, numeric)?;
            let encoder = self.encoder.as_mut().expect("build_model sets the encoder");
            encoder.restore_stats(state.running_stats)?;
            for (slot, saved) in self.learning.slots.iter_mut().zip(state.slots) {
                slot.learner = Box::new(LinearLearner::from_state(saved.learner)?);
                slot.evaluator = saved.evaluator;
                slot.version = saved.version;
            }
            if let (Some(f), Some(s)) = (&mut self.features, state.feature_monitors) {
                f.restore(s)?;
            }
        }
        if state.monitors.len() != self.learning.monitors.len() {
            return Err("the checkpoint's drift monitors do not match the configuration".into());
        }
        for (m, (snapshot, last)) in self.learning.monitors.iter_mut().zip(state.monitors) {
            m.restore(snapshot.restore(), last);
        }
        self.events = state.events;
        self.labels = state.labels;
        self.late = state.late;
        self.max_ts = state.max_ts;
        self.learning.gate = state.gate;
        self.learning.learned_time = state.learned_time;
        self.learning.detections = state.detections;
        self.drift_published = state.drift_published;
        self.join = state.join.into_owned();
        self.next_version = state.next_version;
        self.published_updates = state.published_updates;
        self.promotions = state.promotions;
        self.dead_letter_counts = state.dead_letters;
        // The windowed aggregates are restored by the pipeline, before the source threads
        // start (they may run on one): see `take_aggregates`.
        match (&mut self.retrain, state.retrain) {
            (Some(rt), Some(s)) => {
                rt.buffer = s.buffer.into_owned();
                rt.armed = s.armed;
                rt.records = s.records;
                rt.cooldown_until = s.cooldown_until;
                rt.last_every = s.last_every;
                rt.last_schedule = s.last_schedule;
                rt.detections_seen = s.detections_seen;
                rt.origin = s.origin;
                rt.skipped = s.skipped;
            }
            (None, None) => {}
            _ => return Err("the checkpoint's retrain settings do not match the configuration".into()),
        }
        self.control.events.store(self.events, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
