//! The models' life cycle on the engine thread: publishing snapshots to the registry,
//! promoting a shadow that wins the gate, and orchestrating full retrains (triggers, start,
//! install). Everything here runs between two rows, never inside one.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::dataflow::Engine;
use crate::metrics::RetrainMetrics;
use crate::publisher::PublishJob;
use crate::retrain::{RetrainOutcome, RetrainRecord, Running, TrainingBuffer};
use crate::summary::PromotionRecord;
use eddy_operators::learner::LinearLearner;
use eddy_scorer::registry::{Manifest, Producer, TimeRange};
use eddy_scorer::snapshot::ModelSnapshot;

/// The engine's side of continuous training (see [`crate::retrain`]).
pub(crate) struct RetrainState {
    pub(crate) slot: usize,
    pub(crate) buffer: TrainingBuffer,
    pub(crate) armed: Option<(String, u64)>,
    pub(crate) running: Option<Running>,
    pub(crate) records: Vec<RetrainRecord>,
    pub(crate) cooldown_until: u64,
    pub(crate) last_every: u64,
    pub(crate) last_schedule: Option<i64>,
    pub(crate) last_wall: Instant,
    pub(crate) detections_seen: usize,
    /// The retrain record whose model each slot holds, if any.
    pub(crate) origin: Vec<Option<usize>>,
    pub(crate) started: Option<Instant>,
    pub(crate) skipped: u64,
    pub(crate) metrics: RetrainMetrics,
}

impl<'s> Engine<'s> {
    /// Sends slot `i`'s current model to the registry; returns the version it got.
    pub(crate) fn publish_model(
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
        let slot = &self.learning.slots[i];
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
        manifest.event_time =
            self.learning.learned_time[i].map(|(min_ms, max_ms)| TimeRange { min_ms, max_ms });
        manifest.metrics = metrics;
        manifest.metrics.extend(retrain_figures);
        manifest.config_hash = registry.config_hash.clone();
        if !publisher.submit(PublishJob { snapshot, manifest, promote }, must) {
            return None;
        }
        self.next_version += 1;
        self.learning.slots[i].version = version;
        if i == 0 {
            self.published_updates = self.learning.slots[0].learner.updates();
            self.published_at = Instant::now();
        }
        Some(version)
    }

    pub(crate) fn slot_metric_map(&self, i: usize) -> BTreeMap<String, f64> {
        let r = self.learning.slots[i].evaluator.rolling_figures();
        [
            ("rolling_accuracy", r.accuracy),
            ("rolling_log_loss", r.log_loss),
            ("rolling_mae", r.mae),
            ("rolling_rmse", r.rmse),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .chain(std::iter::once(("labels".to_string(), self.learning.slots[i].evaluator.labels() as f64)))
        .collect()
    }

    /// Publishes the champion when its cadence says so (or `force`, at the end of the run).
    pub(crate) fn maybe_publish_champion(&mut self, force: bool) {
        let Some(registry) = &self.spec.registry else { return };
        if self.learning.slots.is_empty() {
            return;
        }
        let updates = self.learning.slots[0].learner.updates();
        let new = updates - self.published_updates;
        let due = force && (new > 0 || self.learning.slots[0].version == 0)
            || new > 0
                && (registry.every_updates.is_some_and(|n| new >= n)
                    || registry.interval.is_some_and(|d| self.published_at.elapsed() >= d));
        if due {
            let metrics = self.slot_metric_map(0);
            // With checkpoints on, a periodic publish waits for the writer rather than being
            // dropped, so which versions exist does not depend on timing.
            self.publish_model(0, true, force || self.checkpointing, metrics, None);
        }
    }

    /// Triggers, starts and installs retrains (called after each run of labels).
    pub(crate) fn retrain_tick(&mut self, ts: i64) {
        let Some(config) = self.spec.retrain.as_ref() else { return };
        let joined = self.join.counters().joined;
        let mut fired: Vec<String> = Vec::new();
        if let Some(rt) = &mut self.retrain {
            for d in &self.learning.detections[rt.detections_seen..] {
                if config.triggers.on_drift.contains(&d.detector) {
                    fired.push(format!("drift:{}", d.detector));
                }
            }
            rt.detections_seen = self.learning.detections.len();
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
            let e = &self.learning.slots[0].evaluator;
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
                rt.metrics.triggered(&trigger);
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

    pub(crate) fn start_retrain(&mut self, trigger: String, joined: u64) {
        let config = self.spec.retrain.as_ref().expect("retrain configured");
        let init = config.trainer.warm_start.then(|| {
            (self.learning.slots[0].learner.weights().to_vec(), self.learning.slots[0].learner.bias())
        });
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

    pub(crate) fn install_retrain(&mut self, done: crate::retrain::Finished, joined: u64) {
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
        let dim = self.learning.slots[k].learner.weights().len();
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
        self.learning.slots[k].learner = Box::new(learner);
        self.learning.slots[k].version = 0;
        self.learning.learned_time[k] = None;
        if let Some(g) = &mut self.learning.gate {
            g.reset_slot(k);
        }
        tracing::info!(slot = %self.learning.slots[k].name, "retrained model installed");
    }

    /// Runs the promotion gate; on a win, swaps the shadow's model into the champion slot.
    pub(crate) fn maybe_promote(&mut self, event_time: i64) {
        let Some(gate) = &mut self.learning.gate else { return };
        if !gate.due() {
            return;
        }
        let Some((k, figures)) = gate.check() else { return };
        gate.reset();
        let old_version = self.learning.slots[0].version;
        // Record the demoted champion as it is now, then swap the models.
        let demoted_metrics = self.slot_metric_map(0);
        self.publish_model(0, false, true, demoted_metrics, None);
        let (a, b) = self.learning.slots.split_at_mut(k);
        std::mem::swap(&mut a[0].learner, &mut b[0].learner);
        std::mem::swap(&mut a[0].version, &mut b[0].version);
        self.learning.learned_time.swap(0, k);
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
        let origin = self.learning.slots[k].name.clone();
        let new_version = self.publish_model(0, true, true, metrics, Some(&origin)).unwrap_or(0);
        tracing::info!(from = %self.learning.slots[k].name, old_version, new_version, "shadow promoted to champion");
        self.promotions.push(PromotionRecord {
            event_time,
            at_label: self.join.counters().joined,
            from_slot: self.learning.slots[k].name.clone(),
            old_version,
            new_version,
            gate: figures,
        });
    }
}
