//! Continuous training: the training buffer, the triggers, and full retrains on their own
//! thread whose result lands in a shadow slot for the promotion gate to judge.
//!
//! The lifecycle of one retrain, all counted in labels so that a replay repeats it exactly:
//! a trigger fires (a named drift detector, every N labels, a schedule in event time, a
//! rolling-metric floor, or a manual request through the admin endpoint) → after
//! `collect_after_trigger` more labels, the training buffer is copied and handed to the trainer
//! thread (ingest, scoring and online learning go on) → `install_after` labels later (waiting
//! only if the trainer is still busy; `deterministic = false` installs as soon as it is done
//! instead) the model replaces the shadow slot's, catches up on the labels that arrived
//! meanwhile, and competes with the champion through the gate. A cooldown and a single-flight
//! rule stop retrain storms; skipped triggers are counted.
//!
//! The training buffer is not part of any checkpoint: after a restart it refills from the
//! stream within `max_examples` labels, which costs a delayed first retrain, not correctness.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver};
use eddy_operators::trainer::{build_trainer, TrainError, TrainedModel, TrainerConfig, TrainingData};
use eddy_scorer::encoding::Feature;
use eddy_scorer::model::ModelKind;
use serde::{Deserialize, Serialize};

use crate::units::{ConfigDuration, ConfigSize};

fn default_max_examples() -> usize {
    20_000
}
fn default_max_bytes() -> ConfigSize {
    ConfigSize(64 << 20)
}
fn default_max_columns() -> usize {
    4096
}
fn default_install_after() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}

/// The rolling metric a performance floor watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloorMetric {
    /// Rolling accuracy (classification): triggers below the threshold.
    Accuracy,
    /// Rolling mean absolute error (regression): a ceiling, triggers above the threshold.
    Mae,
}

impl FloorMetric {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            FloorMetric::Accuracy => "accuracy",
            FloorMetric::Mae => "mae",
        }
    }

    /// The metric that fits a task.
    pub fn for_task(task: ModelKind) -> Self {
        match task {
            ModelKind::Logistic => FloorMetric::Accuracy,
            ModelKind::Linear => FloorMetric::Mae,
        }
    }

    /// Whether rolling figures `r` are past `threshold` (below for accuracy, above for MAE).
    pub fn crossed(self, r: &crate::evaluator::SlotMetrics, threshold: f64) -> bool {
        match self {
            FloorMetric::Accuracy => r.accuracy.is_some_and(|a| a < threshold),
            FloorMetric::Mae => r.mae.is_some_and(|m| m > threshold),
        }
    }
}

/// What started a retrain (recorded in the summary and in the retrained model's manifest as
/// `drift:NAME`, `every_labels`, `schedule`, `schedule_wall`, `performance_floor`, `manual`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrainTrigger {
    /// A detection of the named `[drift.NAME]` monitor.
    Drift(String),
    /// `every_labels` more labels joined.
    EveryLabels,
    /// `every` more event time passed.
    Schedule,
    /// `every_wall` more wall-clock time passed.
    ScheduleWall,
    /// The champion's rolling metric crossed `performance_floor`.
    PerformanceFloor,
    /// A request through the admin endpoint.
    Manual,
}

impl RetrainTrigger {
    /// The label value of `eddy_retrain_triggers_total{trigger}` (drift triggers share one).
    pub fn label(&self) -> &str {
        match self {
            RetrainTrigger::Drift(_) => "drift",
            RetrainTrigger::EveryLabels => "every_labels",
            RetrainTrigger::Schedule => "schedule",
            RetrainTrigger::ScheduleWall => "schedule_wall",
            RetrainTrigger::PerformanceFloor => "performance_floor",
            RetrainTrigger::Manual => "manual",
        }
    }
}

impl std::fmt::Display for RetrainTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetrainTrigger::Drift(name) => write!(f, "drift:{name}"),
            other => f.write_str(other.label()),
        }
    }
}

impl std::str::FromStr for RetrainTrigger {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "every_labels" => RetrainTrigger::EveryLabels,
            "schedule" => RetrainTrigger::Schedule,
            "schedule_wall" => RetrainTrigger::ScheduleWall,
            "performance_floor" => RetrainTrigger::PerformanceFloor,
            "manual" => RetrainTrigger::Manual,
            other => match other.strip_prefix("drift:") {
                Some(name) => RetrainTrigger::Drift(name.to_string()),
                None => return Err(format!("unknown retrain trigger `{other}`")),
            },
        })
    }
}

impl Serialize for RetrainTrigger {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RetrainTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A rolling-metric floor that triggers a retrain.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceFloor {
    /// `accuracy` (classification) or `mae` (regression, a ceiling: triggers above it).
    pub metric: FloorMetric,
    /// The threshold.
    pub threshold: f64,
}

/// `[retrain.triggers]`: any combination.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Names of `[drift.NAME]` monitors whose detections trigger a retrain.
    #[serde(default)]
    pub on_drift: Vec<String>,
    /// Retrain every this many labels.
    #[serde(default)]
    pub every_labels: Option<u64>,
    /// Retrain every this much event time.
    #[serde(default)]
    pub every: Option<ConfigDuration>,
    /// Retrain every this much wall-clock time (for live daemons; a replay that uses it is no
    /// longer deterministic).
    #[serde(default)]
    pub every_wall: Option<ConfigDuration>,
    /// Retrain when the champion's rolling metric crosses this floor.
    #[serde(default)]
    pub performance_floor: Option<PerformanceFloor>,
}

/// `[retrain]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainConfig {
    /// The shadow slot (a `[[model.shadows]]` name) that receives retrained models.
    pub slot: String,
    /// What starts a retrain.
    #[serde(default)]
    pub triggers: TriggerConfig,
    /// The trainer: device, regularisation, tolerance, warm start.
    #[serde(default)]
    pub trainer: TrainerConfig,
    /// Labelled examples kept for retraining (most recent).
    #[serde(default = "default_max_examples")]
    pub max_examples: usize,
    /// ... and only those at most this old (event time), if set.
    #[serde(default)]
    pub max_age: Option<ConfigDuration>,
    /// ... within this memory.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ConfigSize,
    /// Most distinct weight columns a retrain may use (hashed categoricals add columns).
    #[serde(default = "default_max_columns")]
    pub max_columns: usize,
    /// Labels to wait after a trigger before taking the training data (so a drift-triggered
    /// retrain sees data from the new concept).
    #[serde(default)]
    pub collect_after_trigger: u64,
    /// Labels between starting a retrain and installing its model (deterministic mode).
    #[serde(default = "default_install_after")]
    pub install_after: u64,
    /// Install at a fixed label count (waiting for the trainer if needed) so replays repeat
    /// exactly; `false` installs as soon as the trainer is done and never waits.
    #[serde(default = "default_true")]
    pub deterministic: bool,
    /// Labels after a retrain starts during which new triggers are skipped.
    #[serde(default)]
    pub cooldown_labels: u64,
}

impl RetrainConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self, task: ModelKind) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.max_examples < 10 {
            out.push(("max_examples", format!("must be at least 10, got {}", self.max_examples)));
        }
        if self.triggers.every_labels == Some(0) {
            out.push(("triggers.every_labels", "must be at least 1".into()));
        }
        if let Some(f) = &self.triggers.performance_floor {
            if f.metric != FloorMetric::for_task(task) {
                out.push((
                    "triggers.performance_floor.metric",
                    format!("`{}`: use accuracy (classification) or mae (regression)", f.metric.as_str()),
                ));
            }
        }
        if self.max_columns == 0 {
            out.push(("max_columns", "must be at least 1".into()));
        }
        out
    }
}

/// What became of a retrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrainOutcome {
    /// Running or waiting to be installed.
    Pending,
    /// Installed in the shadow slot, not (yet) promoted when the run ended.
    Rejected,
    /// Its model was promoted to champion.
    Promoted,
    /// A newer retrain replaced it before it was promoted.
    Superseded,
    /// The trainer failed (the error is logged).
    Failed,
}

impl RetrainOutcome {
    /// The snake_case name, as in the summary and the `outcome` label of
    /// `eddy_retrain_outcomes_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetrainOutcome::Pending => "pending",
            RetrainOutcome::Rejected => "rejected",
            RetrainOutcome::Promoted => "promoted",
            RetrainOutcome::Superseded => "superseded",
            RetrainOutcome::Failed => "failed",
        }
    }
}

/// One retrain, as listed in the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainRecord {
    /// What triggered it.
    pub trigger: RetrainTrigger,
    /// Device it ran on.
    pub device: String,
    /// Why that device.
    pub device_reason: String,
    /// Examples trained on.
    pub examples: usize,
    /// Columns (distinct weights) trained.
    pub columns: usize,
    /// Trainer wall time.
    pub seconds: f64,
    /// Final training objective.
    pub final_loss: f64,
    /// Whether the trainer reached its tolerance.
    pub converged: bool,
    /// Labels joined when it started.
    pub started_at_label: u64,
    /// Labels joined when its model was installed.
    pub installed_at_label: Option<u64>,
    /// Outcome.
    pub outcome: RetrainOutcome,
}

/// The bounded columnar buffer of recent labelled examples.
///
/// Checkpointed whole (rather than rebuilt after a restart): a retrain after a restore must
/// see exactly the examples it would have seen without the restart, or the retrained model —
/// and everything after it — would differ.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingBuffer {
    max_examples: usize,
    max_age: Option<i64>,
    max_bytes: u64,
    /// (start in `feats` relative to `base`, length, label, event time)
    #[serde(with = "crate::packed::deque")]
    rows: VecDeque<(u64, u32, f32, i64)>,
    #[serde(with = "crate::packed::features")]
    feats: Vec<Feature>,
    base: u64,
    /// Examples ever added (sequence number of the next one).
    added: u64,
}

/// 24-byte little-endian record of a buffered example: start, length, label bits, event time.
impl crate::packed::Record for (u64, u32, f32, i64) {
    const WIDTH: usize = 24;

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
        out.extend_from_slice(&self.1.to_le_bytes());
        out.extend_from_slice(&self.2.to_bits().to_le_bytes());
        out.extend_from_slice(&self.3.to_le_bytes());
    }

    fn get(b: &[u8]) -> Self {
        use crate::packed::{read_u32, read_u64};
        (read_u64(b, 0), read_u32(b, 8), f32::from_bits(read_u32(b, 12)), read_u64(b, 16) as i64)
    }
}

impl TrainingBuffer {
    /// An empty buffer.
    pub fn new(max_examples: usize, max_age: Option<i64>, max_bytes: u64) -> Self {
        TrainingBuffer {
            max_examples,
            max_age,
            max_bytes,
            rows: VecDeque::new(),
            feats: Vec::new(),
            base: 0,
            added: 0,
        }
    }

    /// Examples held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Examples ever added.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Memory held, in bytes.
    pub fn size_bytes(&self) -> u64 {
        (self.rows.len() * 24 + self.feats.len() * std::mem::size_of::<Feature>()) as u64
    }

    /// Adds one labelled example, dropping the oldest beyond the bounds.
    pub fn push(&mut self, row: &[Feature], y: f32, ts: i64) {
        let start = self.base + self.feats.len() as u64;
        self.feats.extend_from_slice(row);
        self.rows.push_back((start, row.len() as u32, y, ts));
        self.added += 1;
        while self.rows.len() > self.max_examples
            || self.size_bytes() > self.max_bytes
            || self.max_age.is_some_and(|a| self.rows.front().is_some_and(|r| r.3 < ts - a))
        {
            self.rows.pop_front();
        }
        let live = self.rows.front().map_or(self.base + self.feats.len() as u64, |r| r.0);
        let dead = (live - self.base) as usize;
        if dead > 4096 && dead * 2 > self.feats.len() {
            self.feats.drain(..dead);
            self.base = live;
        }
    }

    /// The last `n` examples (added after sequence number `since`), oldest first.
    pub fn since(&self, since: u64) -> impl Iterator<Item = (&[Feature], f32)> {
        let skip = (self.added.saturating_sub(since) as usize).min(self.rows.len());
        self.rows.iter().skip(self.rows.len() - skip).map(move |&(s, l, y, _)| {
            let a = (s - self.base) as usize;
            (&self.feats[a..a + l as usize], y)
        })
    }

    /// Densifies the buffer over the columns it uses: `(X, y, columns)` where `columns[j]` is
    /// the weight index of column `j`.
    ///
    /// # Errors
    /// When more than `max_columns` distinct columns are used.
    pub fn dense(&self, max_columns: usize) -> Result<DenseData, RetrainError> {
        let mut columns: Vec<u32> = self
            .rows
            .iter()
            .flat_map(|&(s, l, _, _)| {
                let a = (s - self.base) as usize;
                self.feats[a..a + l as usize].iter().map(|f| f.index)
            })
            .collect();
        columns.sort_unstable();
        columns.dedup();
        if columns.len() > max_columns {
            return Err(RetrainError::TooManyColumns { used: columns.len(), max_columns });
        }
        let mut x = ndarray::Array2::<f32>::zeros((self.rows.len(), columns.len()));
        let mut y = ndarray::Array1::<f32>::zeros(self.rows.len());
        for (i, &(s, l, label, _)) in self.rows.iter().enumerate() {
            let a = (s - self.base) as usize;
            for f in &self.feats[a..a + l as usize] {
                if let Ok(j) = columns.binary_search(&f.index) {
                    x[[i, j]] += f.value;
                }
            }
            y[i] = label;
        }
        Ok((x, y, columns))
    }
}

/// Why a retrain could not start.
#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    /// The buffer's rows use more distinct weight columns than allowed.
    #[error("the training buffer uses {used} weight columns, more than retrain.max_columns = {max_columns}")]
    TooManyColumns {
        /// Columns the rows use.
        used: usize,
        /// `retrain.max_columns`.
        max_columns: usize,
    },
    /// No trainer could be built (`retrain.trainer`).
    #[error(transparent)]
    Trainer(#[from] TrainError),
    /// The trainer thread could not be started.
    #[error("cannot start the retrain thread: {0}")]
    Spawn(std::io::Error),
}

/// A densified training set: features, labels, and the weight index of each column.
pub type DenseData = (ndarray::Array2<f32>, ndarray::Array1<f32>, Vec<u32>);

/// A retrain that has been started.
pub struct Started {
    /// Where its result arrives.
    pub rx: Receiver<Finished>,
    /// Its thread.
    pub handle: JoinHandle<()>,
    /// Device it runs on.
    pub device: String,
    /// Why that device.
    pub reason: String,
    /// Examples.
    pub examples: usize,
    /// Columns.
    pub columns: usize,
}

/// The result of a retrain thread.
pub struct Finished {
    /// The trained model over the used columns, or the error.
    pub model: Result<TrainedModel, TrainError>,
    /// Weight index of each trained column.
    pub columns: Vec<u32>,
}

/// A retrain running on its thread.
pub struct Running {
    /// Index of its record.
    pub record: usize,
    /// Buffer sequence number when its data was taken.
    pub data_seq: u64,
    /// Label count at which it must be installed (deterministic mode).
    pub install_at: u64,
    rx: Receiver<Finished>,
    handle: Option<JoinHandle<()>>,
}

impl Running {
    /// The result, if the thread is done (`wait` blocks until it is).
    pub fn poll(&mut self, wait: bool) -> Option<Finished> {
        let r = if wait { self.rx.recv().ok() } else { self.rx.try_recv().ok() };
        if r.is_some() {
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
        r
    }
}

/// Starts a retrain of a `kind` model on a copy of the buffer, on its own thread.
///
/// # Errors
/// When the buffer cannot be densified or no trainer can be built.
pub fn start(
    kind: ModelKind,
    config: &TrainerConfig,
    buffer: &TrainingBuffer,
    max_columns: usize,
    init: Option<(Vec<f32>, f32)>,
) -> Result<Started, RetrainError> {
    let (x, y, columns) = buffer.dense(max_columns)?;
    let (trainer, choice) = build_trainer(kind, config)?;
    tracing::info!(device = %choice.device, reason = %choice.reason, examples = y.len(), "retrain started");
    let init = init.map(|(w, b)| {
        (columns.iter().map(|&c| w.get(c as usize).copied().unwrap_or(0.0)).collect::<Vec<f32>>(), b)
    });
    let (tx, rx) = bounded(1);
    let (examples, ncols) = (y.len(), columns.len());
    let handle = std::thread::Builder::new()
        .name("retrain".into())
        .spawn(move || {
            let data = TrainingData::new(x.view(), y.view());
            let model = trainer.train(&data, init.as_ref().map(|(w, b)| (w.as_slice(), *b)));
            let _ = tx.send(Finished { model, columns });
        })
        .map_err(RetrainError::Spawn)?;
    Ok(Started { rx, handle, device: choice.device, reason: choice.reason, examples, columns: ncols })
}

impl Running {
    /// Wraps a started retrain.
    pub fn new(
        record: usize,
        data_seq: u64,
        install_at: u64,
        rx: Receiver<Finished>,
        handle: JoinHandle<()>,
    ) -> Self {
        Running { record, data_seq, install_at, rx, handle: Some(handle) }
    }
}

/// A manual retrain request (set by the admin endpoint, taken by the engine).
#[derive(Debug, Clone, Default)]
pub struct ManualTrigger(Arc<AtomicBool>);

impl ManualTrigger {
    /// Requests a retrain.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Takes a pending request.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(i: u32, v: f32) -> Feature {
        Feature { index: i, value: v }
    }

    #[test]
    fn buffer_keeps_the_most_recent_examples_and_densifies_used_columns() {
        let mut b = TrainingBuffer::new(3, None, 1 << 20);
        for i in 0..5u32 {
            b.push(&[f(0, i as f32), f(100 + i % 2, 1.0)], (i % 2) as f32, i as i64);
        }
        assert_eq!(b.len(), 3);
        let (x, y, cols) = b.dense(10).unwrap();
        assert_eq!(cols, vec![0, 100, 101]);
        assert_eq!(x.row(0).to_vec(), vec![2.0, 1.0, 0.0]);
        assert_eq!(y.to_vec(), vec![0.0, 1.0, 0.0]);
        assert!(b.dense(2).is_err());
        let recent: Vec<f32> = b.since(3).map(|(_, y)| y).collect();
        assert_eq!(recent, vec![1.0, 0.0]);
    }

    #[test]
    fn buffer_drops_examples_older_than_max_age() {
        let mut b = TrainingBuffer::new(100, Some(10), 1 << 20);
        for t in 0..50 {
            b.push(&[f(0, 1.0)], 1.0, t);
        }
        assert_eq!(b.len(), 11);
    }
}
