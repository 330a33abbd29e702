//! `Models`: the model slots and their life cycle — the feature encoder they share, the
//! champion and its shadows, the promotion gate, publishing to the registry (versions,
//! cadence), promotions, and full retrains (triggers, the training buffer, the trainer thread,
//! installing the result in a shadow slot).
//!
//! A part of the engine that owns its state: built from the spec ([`Models::new`], then
//! [`Models::build`] once the first events batch says what the features are), used per row
//! ([`Models::predict`], [`Models::learn`]) and per label or run of labels
//! ([`Models::maybe_promote`], [`Models::retrain_tick`]), captured with [`Models::state`] and
//! brought back with [`Models::restore`]. It never names a concrete learner: slots hold
//! `Box<dyn OnlineLearner>`s built, restored and retrained through the learner registry
//! ([`LearnerConfig`](eddy_operators::learner::LearnerConfig)).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use eddy_operators::encoder::{FeatureEncoder, RunningStats};
use eddy_operators::learner::LearnerState;
use eddy_scorer::encoding::{Feature, FeatureKind, FeatureSpec};
use eddy_scorer::model::ModelKind;
use eddy_scorer::registry::{Manifest, Producer, TimeRange};
use serde::{Deserialize, Serialize};

use crate::error::{CheckpointError, EngineError};
use crate::evaluator::Evaluator;
use crate::metrics::{MetricsFactory, RetrainMetrics, SlotMetricsHandles};
use crate::promotion::PromotionGate;
use crate::publisher::{ModelPublisher, PublishJob};
use crate::retrain::{RetrainOutcome, RetrainRecord, RetrainTrigger, Running, TrainingBuffer};
use crate::slot::Slot;
use crate::spec::PipelineSpec;
use crate::summary::{DriftRecord, PromotionRecord};

/// Whether a published model becomes the one services load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// Flip the registry's `CURRENT` to it (the champion).
    Current,
    /// Only record it in the history (a demoted champion).
    HistoryOnly,
}

/// What a publish does when the writer thread is still busy with the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenBusy {
    /// Wait for the writer (promotions, the final publish, and every publish while
    /// checkpoints are on, so which versions exist does not depend on timing).
    Wait,
    /// Skip this publish (counted); the next one carries newer weights anyway.
    Skip,
}

/// The checkpointed state of one slot.
#[derive(Debug, Serialize, Deserialize)]
pub struct SlotState {
    name: String,
    learner: LearnerState,
    evaluator: Evaluator,
    version: u64,
}

/// The checkpointed state of the retrain machinery. The training buffer, the largest part,
/// is borrowed when a checkpoint is written and owned when one is read back.
#[derive(Debug, Serialize, Deserialize)]
pub struct RetrainsState<'a> {
    buffer: Cow<'a, TrainingBuffer>,
    armed: Option<(RetrainTrigger, u64)>,
    records: Vec<RetrainRecord>,
    cooldown_until: u64,
    last_every: u64,
    last_schedule: Option<i64>,
    detections_seen: usize,
    origin: Vec<Option<usize>>,
    skipped: u64,
}

/// The checkpointed part of [`Models`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelsState<'a> {
    /// The model's resolved features (`None` before the first event).
    features: Option<Vec<(String, FeatureKind)>>,
    running_stats: Vec<RunningStats>,
    slots: Vec<SlotState>,
    gate: Option<PromotionGate>,
    learned_time: Vec<Option<(i64, i64)>>,
    next_version: u64,
    published_updates: u64,
    promotions: Vec<PromotionRecord>,
    retrains: Option<RetrainsState<'a>>,
}

impl ModelsState<'_> {
    /// The features the state's models were built for (`None` when captured before the first
    /// event).
    pub fn features(&self) -> Option<Vec<FeatureSpec>> {
        self.features
            .as_ref()
            .map(|f| f.iter().map(|(name, kind)| FeatureSpec { name: name.clone(), kind: *kind }).collect())
    }

    /// The registry version that would be published next.
    pub fn next_version(&self) -> u64 {
        self.next_version
    }

    /// The champion's registry version (0 when never published).
    pub fn champion_version(&self) -> u64 {
        self.slots.first().map_or(0, |s| s.version)
    }
}

/// The engine's side of continuous training (see [`crate::retrain`]).
struct Retrains {
    /// The shadow slot retrained models land in.
    slot: usize,
    buffer: TrainingBuffer,
    /// A fired trigger waiting for `collect_after_trigger` more labels: (trigger, at label).
    armed: Option<(RetrainTrigger, u64)>,
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

/// Publishing to the registry.
struct Publishing {
    publisher: ModelPublisher,
    /// When the champion was last published (for `publish_interval`).
    published_at: Instant,
}

/// See the module docs.
pub struct Models<'s> {
    spec: &'s PipelineSpec,
    encoder: Option<FeatureEncoder>,
    slots: Vec<Slot>,
    gate: Option<PromotionGate>,
    /// Event-time range each slot has learned from.
    learned_time: Vec<Option<(i64, i64)>>,
    handles: Vec<SlotMetricsHandles>,
    publishing: Option<Publishing>,
    /// The version the next publish gets.
    next_version: u64,
    /// Champion updates at its last publish.
    published_updates: u64,
    promotions: Vec<PromotionRecord>,
    retrains: Option<Retrains>,
    /// Whether checkpoints are on (every publish then waits for the writer).
    checkpointing: bool,
}

impl<'s> Models<'s> {
    /// The slots, gate, publisher and retrain machinery of `spec`, without models yet.
    ///
    /// # Errors
    /// When the retrain slot is unknown or the registry cannot be opened.
    pub fn new(spec: &'s PipelineSpec, factory: &MetricsFactory) -> Result<Self, EngineError> {
        let n = spec.slots.len();
        let retrains = match &spec.retrain {
            None => None,
            Some(r) => {
                let slot = spec.slots.iter().position(|s| s.name == r.slot).ok_or_else(|| {
                    EngineError::config("retrain.slot", format!("no shadow slot named `{}`", r.slot))
                })?;
                Some(Retrains {
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
                    origin: vec![None; n],
                    started: None,
                    skipped: 0,
                    metrics: RetrainMetrics::new(factory),
                })
            }
        };
        let (publishing, next_version) = match &spec.registry {
            Some(r) => {
                let (publisher, next_version) =
                    ModelPublisher::start(r.dir.clone()).map_err(|e| EngineError::registry(&r.dir, e))?;
                (Some(Publishing { publisher, published_at: Instant::now() }), next_version)
            }
            None => (None, 1),
        };
        Ok(Models {
            spec,
            encoder: None,
            slots: Vec::new(),
            gate: spec.promotion.clone().map(|c| PromotionGate::new(c, n)),
            learned_time: vec![None; n],
            handles: spec.slots.iter().map(|s| SlotMetricsHandles::new(factory, &s.name)).collect(),
            next_version,
            publishing,
            published_updates: 0,
            promotions: Vec::new(),
            retrains,
            checkpointing: false,
        })
    }

    /// Makes every publish wait for the registry writer (see [`WhenBusy::Wait`]).
    pub fn set_checkpointing(&mut self, on: bool) {
        self.checkpointing = on;
    }

    /// Builds the encoder and a fresh model in every slot for `features`.
    pub fn build(&mut self, features: Vec<FeatureSpec>) {
        let encoder = FeatureEncoder::new(features, &self.spec.encoding, self.spec.seed);
        self.slots = self
            .spec
            .slots
            .iter()
            .map(|s| Slot::new(s, self.spec.task, encoder.dim(), &self.spec.evaluation))
            .collect();
        self.encoder = Some(encoder);
    }

    /// The encoder, once [`Models::build`] ran.
    pub fn encoder(&self) -> Option<&FeatureEncoder> {
        self.encoder.as_ref()
    }

    /// Takes the encoder out for a run of rows (it is used while the slots are borrowed);
    /// give it back with [`Models::put_encoder`].
    pub fn take_encoder(&mut self) -> Option<FeatureEncoder> {
        self.encoder.take()
    }

    /// Gives back the encoder taken with [`Models::take_encoder`].
    pub fn put_encoder(&mut self, encoder: FeatureEncoder) {
        self.encoder = Some(encoder);
    }

    /// The slots, champion first.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Whether a gate decides promotions.
    pub fn has_gate(&self) -> bool {
        self.gate.is_some()
    }

    /// Whether full retrains are configured.
    pub fn has_retrains(&self) -> bool {
        self.retrains.is_some()
    }

    /// Scores an encoded row with every slot into `scores`.
    #[inline]
    pub fn predict(&self, row: &[Feature], scores: &mut [f32]) {
        for (s, slot) in self.slots.iter().enumerate() {
            scores[s] = slot.learner.predict(row);
        }
    }

    /// Learns one joined example: each slot's earlier prediction is evaluated (prequential)
    /// and judged by the gate, then the slot learns the row; the example also enters the
    /// training buffer when retrains are on. Publishes the champion when its cadence says so.
    #[inline]
    pub fn learn(&mut self, row: &[Feature], predictions: &[f32], y: f32, event_ts: i64) {
        if let Some(rt) = &mut self.retrains {
            rt.buffer.push(row, y, event_ts);
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
        }
        self.publish_when_due();
    }

    /// Publishes the champion the moment it has learned `publish_every_updates` more labels:
    /// checked per label (one comparison), so the version every prediction carries depends on
    /// the data only — not on batch boundaries, which differ after a restart.
    #[inline]
    fn publish_when_due(&mut self) {
        if let Some(n) = self.spec.registry.as_ref().and_then(|r| r.every_updates) {
            if self.slots[0].learner.updates() - self.published_updates >= n {
                self.maybe_publish_champion(false);
            }
        }
    }

    /// Sends slot `i`'s current model to the registry; returns the version it got (`None`
    /// without a registry or models, or when a [`WhenBusy::Skip`] publish was skipped).
    fn publish_model(
        &mut self,
        i: usize,
        serve: Serve,
        when_busy: WhenBusy,
        metrics: BTreeMap<String, f64>,
        origin: Option<&str>,
    ) -> Option<u64> {
        let encoder = self.encoder.as_ref()?;
        let publishing = self.publishing.as_mut()?;
        let registry = self.spec.registry.as_ref()?;
        let slot = &self.slots[i];
        let version = self.next_version;
        let snapshot = slot.learner.snapshot(version, encoder.frozen());
        let since = (slot.version > 0).then_some(slot.version);
        let retrained = self.retrains.as_ref().and_then(|rt| rt.origin[i].map(|r| &rt.records[r]));
        let producer = match retrained {
            Some(r) if since.is_none() => Producer::Retrain { trigger: r.trigger.to_string() },
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
        let job = PublishJob { snapshot, manifest, promote: serve == Serve::Current };
        if !publishing.publisher.submit(job, when_busy == WhenBusy::Wait) {
            return None;
        }
        self.next_version += 1;
        self.slots[i].version = version;
        if i == 0 {
            self.published_updates = self.slots[0].learner.updates();
            publishing.published_at = Instant::now();
        }
        Some(version)
    }

    /// Slot `i`'s rolling figures, as recorded in a manifest.
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

    /// Publishes the champion when its cadence says so (or `at_end`, at the end of the run).
    pub fn maybe_publish_champion(&mut self, at_end: bool) {
        let Some(registry) = &self.spec.registry else { return };
        if self.slots.is_empty() {
            return;
        }
        let updates = self.slots[0].learner.updates();
        let new = updates - self.published_updates;
        let interval_passed = || {
            registry
                .interval
                .is_some_and(|d| self.publishing.as_ref().is_some_and(|p| p.published_at.elapsed() >= d))
        };
        if at_end && updates == 0 && self.slots[0].version == 0 {
            // A model that has learned nothing must never become what services load.
            tracing::warn!("the champion learned from no label (none joined its event): no model published");
            return;
        }
        let due = at_end && (new > 0 || self.slots[0].version == 0)
            || new > 0 && (registry.every_updates.is_some_and(|n| new >= n) || interval_passed());
        if due {
            let metrics = self.slot_metric_map(0);
            let when_busy = if at_end || self.checkpointing { WhenBusy::Wait } else { WhenBusy::Skip };
            self.publish_model(0, Serve::Current, when_busy, metrics, None);
        }
    }

    /// Runs the promotion gate after a label at `event_time` (`joined` labels so far); on a
    /// win, swaps the shadow's model into the champion slot and publishes both. Returns
    /// whether the champion changed.
    pub fn maybe_promote(&mut self, event_time: i64, joined: u64) -> bool {
        let Some(gate) = &mut self.gate else { return false };
        if !gate.due() {
            return false;
        }
        let Some((k, figures)) = gate.check() else { return false };
        gate.reset();
        let old_version = self.slots[0].version;
        // Record the demoted champion as it is now, then swap the models.
        let demoted_metrics = self.slot_metric_map(0);
        self.publish_model(0, Serve::HistoryOnly, WhenBusy::Wait, demoted_metrics, None);
        let (a, b) = self.slots.split_at_mut(k);
        std::mem::swap(&mut a[0].learner, &mut b[0].learner);
        std::mem::swap(&mut a[0].version, &mut b[0].version);
        self.learned_time.swap(0, k);
        if let Some(rt) = &mut self.retrains {
            if let Some(r) = rt.origin[k] {
                rt.records[r].outcome = RetrainOutcome::Promoted;
                rt.metrics.count(RetrainOutcome::Promoted);
            }
            rt.origin.swap(0, k);
        }
        // The champion slot now holds another model: its publish cadence starts over.
        self.published_updates = 0;
        let mut metrics = self.slot_metric_map(k);
        metrics.insert(format!("gate_{}_champion", figures.metric), figures.champion);
        metrics.insert(format!("gate_{}_shadow", figures.metric), figures.shadow);
        if let Some(p) = figures.p_value {
            metrics.insert("gate_p_value".into(), p);
        }
        let origin = self.slots[k].name.clone();
        let new_version =
            self.publish_model(0, Serve::Current, WhenBusy::Wait, metrics, Some(&origin)).unwrap_or(0);
        tracing::info!(from = %self.slots[k].name, old_version, new_version, "shadow promoted to champion");
        self.promotions.push(PromotionRecord {
            event_time,
            at_label: joined,
            from_slot: self.slots[k].name.clone(),
            old_version,
            new_version,
            gate: figures,
        });
        true
    }

    /// Triggers, starts and installs retrains (after each run of labels): `ts` is the newest
    /// label's event time, `joined` the labels joined so far, `detections` every drift
    /// detection so far, `manual` whether a manual retrain was requested.
    pub fn retrain_tick(&mut self, ts: i64, joined: u64, detections: &[DriftRecord], manual: bool) {
        let Some(config) = self.spec.retrain.as_ref() else { return };
        let mut fired: Vec<RetrainTrigger> = Vec::new();
        if let Some(rt) = &mut self.retrains {
            for d in &detections[rt.detections_seen..] {
                if config.triggers.on_drift.contains(&d.detector) {
                    fired.push(RetrainTrigger::Drift(d.detector.clone()));
                }
            }
            rt.detections_seen = detections.len();
            if let Some(n) = config.triggers.every_labels {
                if joined >= rt.last_every + n {
                    rt.last_every = joined;
                    fired.push(RetrainTrigger::EveryLabels);
                }
            }
            if let Some(every) = config.triggers.every_wall {
                if rt.last_wall.elapsed() >= every.0 {
                    rt.last_wall = Instant::now();
                    fired.push(RetrainTrigger::ScheduleWall);
                }
            }
            if let Some(every) = config.triggers.every {
                match rt.last_schedule {
                    None => rt.last_schedule = Some(ts),
                    Some(last) if ts - last >= every.as_millis_i64() => {
                        rt.last_schedule = Some(ts);
                        fired.push(RetrainTrigger::Schedule);
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(floor) = &config.triggers.performance_floor {
            let e = &self.slots[0].evaluator;
            if e.labels() >= self.spec.evaluation.rolling_window as u64
                && floor.metric.crossed(&e.rolling_figures(), floor.threshold)
            {
                fired.push(RetrainTrigger::PerformanceFloor);
            }
        }
        if manual {
            fired.push(RetrainTrigger::Manual);
        }
        let Some(rt) = &mut self.retrains else { return };
        for trigger in fired {
            if rt.armed.is_some() || rt.running.is_some() {
                rt.metrics.skipped_busy.increment(1);
                rt.skipped += 1;
            } else if joined < rt.cooldown_until {
                rt.metrics.skipped_cooldown.increment(1);
                rt.skipped += 1;
            } else {
                rt.metrics.triggered(&trigger.to_string());
                rt.armed = Some((trigger, joined + config.collect_after_trigger));
            }
        }
        if rt.armed.as_ref().is_some_and(|(_, at)| joined >= *at) {
            let (trigger, _) = rt.armed.take().expect("armed checked above");
            self.start_retrain(trigger, joined);
        }
        let Some(rt) = &mut self.retrains else { return };
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

    fn start_retrain(&mut self, trigger: RetrainTrigger, joined: u64) {
        let Some(config) = self.spec.retrain.as_ref() else { return };
        let champion_state = config.trainer.warm_start.then(|| self.slots[0].learner.state());
        let init = champion_state.as_ref().and_then(|s| s.warm_start()).map(|(w, b)| (w.to_vec(), b));
        let Some(rt) = self.retrains.as_mut() else { return };
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
                record.device_reason = e.to_string();
                rt.metrics.count(RetrainOutcome::Failed);
                rt.records.push(record);
            }
        }
    }

    fn install_retrain(&mut self, done: crate::retrain::Finished, joined: u64) {
        let Some(rt) = &mut self.retrains else { return };
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
                record.device_reason = e.to_string();
                return;
            }
        };
        record.seconds = model.seconds;
        record.final_loss = model.final_loss;
        record.converged = model.converged;
        record.installed_at_label = Some(joined);
        let k = rt.slot;
        let dim = self.encoder.as_ref().map_or(0, |e| e.dim());
        let built = self.spec.slots[k].learner.from_trained(
            self.spec.task,
            dim,
            &done.columns,
            &model.weights,
            model.bias,
        );
        let mut learner = match built {
            Ok(l) => l,
            Err(e) => {
                record.outcome = RetrainOutcome::Failed;
                record.device_reason = e.to_string();
                rt.metrics.count(RetrainOutcome::Failed);
                return;
            }
        };
        // Catch up on the labels that arrived while the trainer ran.
        for (row, y) in rt.buffer.since(run.data_seq) {
            learner.learn(row, y);
        }
        if let Some(previous) = rt.origin[k] {
            if rt.records[previous].outcome == RetrainOutcome::Pending {
                rt.records[previous].outcome = RetrainOutcome::Superseded;
                rt.metrics.count(RetrainOutcome::Superseded);
            }
        }
        rt.origin[k] = Some(run.record);
        self.slots[k].learner = learner;
        self.slots[k].version = 0;
        self.learned_time[k] = None;
        if let Some(g) = &mut self.gate {
            g.reset_slot(k);
        }
        tracing::info!(slot = %self.slots[k].name, "retrained model installed");
    }

    /// Whether the state can be captured now: not while a retrain is in flight (its result
    /// would be lost with the process, and redoing it from another buffer would change every
    /// model after it).
    pub fn can_checkpoint(&self) -> bool {
        self.retrains.as_ref().is_none_or(|rt| rt.running.is_none())
    }

    /// At the end of the input: waits for a retrain still running (so no thread outlives the
    /// run; its model is not installed) and publishes the champion one last time.
    pub fn finish_input(&mut self) {
        if let Some(run) = self.retrains.as_mut().and_then(|rt| rt.running.as_mut()) {
            let _ = run.poll(true);
        }
        self.maybe_publish_champion(true);
    }

    /// Makes everything published so far durable (before a checkpoint).
    pub fn sync_registry(&self) {
        if let Some(p) = &self.publishing {
            p.publisher.sync();
        }
    }

    /// Stops the registry writer and reports what it wrote.
    pub fn close_registry(&mut self) -> Option<crate::publisher::PublishReport> {
        self.publishing.take().map(|p| p.publisher.finish())
    }

    /// Publishes each slot's gauges (once per batch).
    pub fn publish_metrics(&self) {
        for (slot, h) in self.slots.iter().zip(&self.handles) {
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
    }

    /// Promotions so far.
    pub fn promotions(&self) -> &[PromotionRecord] {
        &self.promotions
    }

    /// Retrains so far, as the summary lists them (a retrain still pending at the end was
    /// not promoted: `rejected`), and the triggers skipped.
    pub fn retrain_summary(&self) -> (Vec<RetrainRecord>, u64) {
        let Some(rt) = &self.retrains else { return (Vec::new(), 0) };
        let records = rt
            .records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.outcome == RetrainOutcome::Pending {
                    r.outcome = RetrainOutcome::Rejected;
                }
                r
            })
            .collect();
        (records, rt.skipped)
    }

    /// The state, for a checkpoint. Call only when [`Models::can_checkpoint`] holds.
    pub fn state(&self) -> ModelsState<'_> {
        ModelsState {
            features: self
                .encoder
                .as_ref()
                .map(|e| e.encoding().features.iter().map(|f| (f.name.clone(), f.kind)).collect()),
            running_stats: self.encoder.as_ref().map(|e| e.running_stats().to_vec()).unwrap_or_default(),
            slots: self
                .slots
                .iter()
                .map(|s| SlotState {
                    name: s.name.clone(),
                    learner: s.learner.state(),
                    evaluator: s.evaluator.clone(),
                    version: s.version,
                })
                .collect(),
            gate: self.gate.clone(),
            learned_time: self.learned_time.clone(),
            next_version: self.next_version,
            published_updates: self.published_updates,
            promotions: self.promotions.clone(),
            retrains: self.retrains.as_ref().map(|rt| RetrainsState {
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
        }
    }

    /// Continues from `state`, captured by the same pipeline spec: rebuilds the encoder and
    /// the slots for the state's features and restores every learner.
    ///
    /// # Errors
    /// When the state does not fit this pipeline (other slots or retrain settings).
    pub fn restore(&mut self, state: ModelsState<'_>) -> Result<(), CheckpointError> {
        if let Some(features) = state.features() {
            let names: Vec<&str> = self.spec.slots.iter().map(|s| s.name.as_str()).collect();
            let saved: Vec<&str> = state.slots.iter().map(|s| s.name.as_str()).collect();
            if saved != names {
                return Err(CheckpointError::Restore(format!(
                    "the checkpoint has slots {saved:?}, the pipeline {names:?}"
                )));
            }
            self.build(features);
            let encoder = self.encoder.as_mut().expect("build sets the encoder");
            encoder
                .restore_stats(state.running_stats)
                .map_err(|e| CheckpointError::Restore(e.to_string()))?;
            for ((slot, spec), saved) in self.slots.iter_mut().zip(&self.spec.slots).zip(state.slots) {
                slot.learner = spec
                    .learner
                    .restore(saved.learner)
                    .map_err(|e| CheckpointError::Restore(e.to_string()))?;
                slot.evaluator = saved.evaluator;
                slot.version = saved.version;
            }
        }
        self.gate = state.gate;
        self.learned_time = state.learned_time;
        self.next_version = state.next_version;
        self.published_updates = state.published_updates;
        self.promotions = state.promotions;
        match (&mut self.retrains, state.retrains) {
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
            _ => {
                return Err(CheckpointError::Restore(
                    "the checkpoint's retrain settings do not match the configuration".into(),
                ))
            }
        }
        Ok(())
    }

    /// The task the models learn.
    pub fn task(&self) -> ModelKind {
        self.spec.task
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::spec;

    fn features() -> Vec<FeatureSpec> {
        vec![FeatureSpec { name: "x".into(), kind: FeatureKind::Numeric }]
    }

    fn row(x: f32) -> Vec<Feature> {
        vec![Feature { index: 0, value: x }]
    }

    fn no_registry() -> PipelineSpec {
        let mut s = spec();
        s.registry = None;
        s
    }

    #[test]
    fn every_slot_scores_and_learns_and_state_round_trips_bit_for_bit() {
        let spec = no_registry();
        let factory = MetricsFactory::noop("test");
        let mut a = Models::new(&spec, &factory).unwrap();
        a.build(features());
        let mut scores = vec![0.0; 2];
        for i in 0..500 {
            let x = (i % 10) as f32 / 5.0 - 1.0;
            a.predict(&row(x), &mut scores);
            a.learn(&row(x), &scores.clone(), (x > 0.0) as u8 as f32, i);
        }
        assert_eq!(a.slots()[0].evaluator.labels(), 500);
        a.predict(&row(0.9), &mut scores);
        assert!(scores[0] > 0.5 && scores[1] > 0.5, "{scores:?}");

        let bytes = rmp_serde::to_vec_named(&a.state()).unwrap();
        let state: ModelsState<'static> = rmp_serde::from_slice(&bytes).unwrap();
        let mut b = Models::new(&spec, &factory).unwrap();
        b.restore(state).unwrap();
        let (mut sa, mut sb) = (vec![0.0; 2], vec![0.0; 2]);
        for i in 0..100 {
            let x = (i % 7) as f32 / 3.5 - 1.0;
            a.predict(&row(x), &mut sa);
            b.predict(&row(x), &mut sb);
            assert_eq!(sa, sb);
            a.learn(&row(x), &sa.clone(), (x > 0.0) as u8 as f32, 500 + i);
            b.learn(&row(x), &sb.clone(), (x > 0.0) as u8 as f32, 500 + i);
        }
        assert_eq!(
            rmp_serde::to_vec_named(&a.state()).unwrap(),
            rmp_serde::to_vec_named(&b.state()).unwrap()
        );
    }

    #[test]
    fn a_state_with_other_slots_is_refused() {
        let spec = no_registry();
        let factory = MetricsFactory::noop("test");
        let mut a = Models::new(&spec, &factory).unwrap();
        a.build(features());
        let bytes = rmp_serde::to_vec_named(&a.state()).unwrap();
        let mut other = no_registry();
        other.slots.pop();
        let mut b = Models::new(&other, &factory).unwrap();
        let err = b.restore(rmp_serde::from_slice(&bytes).unwrap()).unwrap_err();
        assert!(err.to_string().contains("slots"), "{err}");
    }

    #[test]
    fn an_unknown_retrain_slot_names_the_setting() {
        let mut spec = no_registry();
        spec.retrain = Some(serde_json::from_str(r#"{"slot":"nobody"}"#).unwrap());
        let err = Models::new(&spec, &MetricsFactory::noop("test")).err().unwrap();
        assert_eq!(err.to_string(), "retrain.slot: no shadow slot named `nobody`");
    }
}
