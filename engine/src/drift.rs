//! `DriftMonitor`: a drift detector attached to one input of the pipeline — a slot's error
//! stream or a feature's raw values — turning its detections into drift events.

use eddy_operators::drift::{DriftDetector, DriftDetectorConfig, DriftState};
use eddy_scorer::model::ModelKind;
use serde::{Deserialize, Serialize};

use crate::feature_stats::WindowStat;
use crate::metrics::{DetectorMetrics, MetricsFactory};
use crate::summary::DriftRecord;

/// Why a drift input cannot be resolved (reported as `drift.NAME.input: …`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct DriftInputError(String);

/// `[drift.NAME]`: what a detector watches and how.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DriftMonitorConfig {
    /// `SLOT.error` (0/1 misclassification, or absolute error for regression),
    /// `SLOT.absolute_error`, `SLOT.squared_error`, `feature.NAME` (a numeric feature), or
    /// `window.WINDOW.FEATURE.STAT` (a statistic of a `[windows.WINDOW]` section).
    pub input: String,
    /// The detector and its parameters, e.g. `{ kind = "adwin", delta = 0.002 }`.
    pub detector: DriftDetectorConfig,
}

/// What a monitor reads.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftInput {
    /// Error of slot `slot` on each joined label.
    SlotError {
        /// Index of the slot.
        slot: usize,
        /// Which error.
        error: ErrorKind,
    },
    /// Raw values of a numeric feature, one per event.
    Feature(String),
    /// A statistic of a feature's closed windows, one per window.
    Window {
        /// Name of the `[windows.NAME]` section.
        window: String,
        /// The feature.
        feature: String,
        /// The statistic.
        stat: WindowStat,
    },
}

/// Error measures a monitor can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 1 when the 0.5-thresholded prediction is wrong, else 0.
    Misclassification,
    /// |prediction − label|.
    Absolute,
    /// (prediction − label)².
    Squared,
}

impl ErrorKind {
    /// The error of prediction `p` for label `y`.
    #[inline]
    pub fn of(self, p: f32, y: f32) -> f64 {
        match self {
            ErrorKind::Misclassification => ((p >= 0.5) != (y >= 0.5)) as u8 as f64,
            ErrorKind::Absolute => (p - y).abs() as f64,
            ErrorKind::Squared => ((p - y) as f64).powi(2),
        }
    }
}

impl DriftMonitorConfig {
    /// Resolves the input against the pipeline's slots.
    ///
    /// # Errors
    /// With a message listing the valid inputs.
    pub fn resolve(
        &self,
        slots: &[String],
        windows: &[String],
        task: ModelKind,
    ) -> Result<DriftInput, DriftInputError> {
        let err = |m: String| Err(DriftInputError(m));
        if let Some(rest) = self.input.strip_prefix("window.") {
            let parts: Vec<&str> = rest.splitn(2, '.').collect();
            let (window, rest) = match parts.as_slice() {
                [w, r] => (*w, *r),
                _ => return err(WINDOW_FORM.into()),
            };
            if !windows.iter().any(|w| w == window) {
                return err(format!("no [windows.{window}] section; windows: {}", windows.join(", ")));
            }
            let Some((feature, name)) = rest.rsplit_once('.') else {
                return err(WINDOW_FORM.into());
            };
            let Some(stat) = WindowStat::parse(name) else {
                let allowed: Vec<&str> = WindowStat::ALL.iter().map(|s| s.as_str()).collect();
                return err(format!("unknown window statistic `{name}`; allowed: {}", allowed.join(", ")));
            };
            return Ok(DriftInput::Window { window: window.into(), feature: feature.into(), stat });
        }
        if let Some(feature) = self.input.strip_prefix("feature.") {
            if feature.is_empty() {
                return err("`feature.` needs a feature name, e.g. `feature.x0`".into());
            }
            return Ok(DriftInput::Feature(feature.to_string()));
        }
        if let Some((slot, what)) = self.input.rsplit_once('.') {
            if let Some(i) = slots.iter().position(|s| s == slot) {
                let error = match what {
                    "error" if task == ModelKind::Logistic => ErrorKind::Misclassification,
                    "error" | "absolute_error" => ErrorKind::Absolute,
                    "squared_error" => ErrorKind::Squared,
                    other => {
                        return err(format!(
                            "unknown input `{other}` of slot `{slot}`; allowed: error, absolute_error, squared_error"
                        ))
                    }
                };
                return Ok(DriftInput::SlotError { slot: i, error });
            }
        }
        err(format!(
            "unknown drift input `{}`; allowed: {}, feature.NAME or window.WINDOW.FEATURE.STAT",
            self.input,
            slots.iter().map(|s| format!("{s}.error")).collect::<Vec<_>>().join(", ")
        ))
    }
}

const WINDOW_FORM: &str = "a window input is `window.WINDOW.FEATURE.STAT`, e.g. `window.minute.x0.mean`";

/// A live monitor.
pub struct DriftMonitor {
    /// Monitor name from the config.
    pub name: String,
    /// The input as written in the config.
    pub input_name: String,
    /// What it reads.
    pub input: DriftInput,
    /// The detector.
    pub detector: Box<dyn DriftDetector>,
    metrics: DetectorMetrics,
    last_state: DriftState,
}

impl DriftMonitor {
    /// Builds a monitor.
    ///
    /// # Errors
    /// When the detector parameters are invalid.
    pub fn new(
        name: &str,
        config: &DriftMonitorConfig,
        input: DriftInput,
        metrics: &MetricsFactory,
    ) -> Result<Self, eddy_operators::drift::DriftConfigError> {
        let detector = config.detector.try_build()?;
        Ok(DriftMonitor {
            name: name.to_string(),
            input_name: config.input.clone(),
            input,
            detector,
            metrics: DetectorMetrics::new(metrics, name, &config.input),
            last_state: DriftState::None,
        })
    }

    /// Feeds one value; returns a drift record when the detector fires.
    #[inline]
    pub fn update(&mut self, x: f64, event_index: u64, event_time: i64) -> Option<DriftRecord> {
        let before = self.detector.estimate();
        let state = self.detector.update(x);
        self.last_state = state;
        state.is_drift().then(|| {
            self.metrics.detections.increment(1);
            DriftRecord {
                detector: self.name.clone(),
                input: self.input_name.clone(),
                event_index,
                event_time,
                estimate_before: before,
                estimate_after: self.detector.estimate(),
            }
        })
    }

    /// The detector's state after its last update.
    pub fn last_state(&self) -> DriftState {
        self.last_state
    }

    /// Continues with a restored detector whose last update returned `last`.
    pub fn restore(&mut self, detector: Box<dyn DriftDetector>, last: DriftState) {
        self.detector = detector;
        self.last_state = last;
    }

    /// Publishes the detector's gauges (once per batch).
    pub fn publish(&self) {
        self.metrics.estimate.set(self.detector.estimate());
        if let Some(w) = self.detector.window_width() {
            self.metrics.width.set(w as f64);
        }
        self.metrics.state.set(match self.last_state {
            DriftState::None => 0.0,
            DriftState::Warning => 1.0,
            DriftState::Drift => 2.0,
        });
    }
}
