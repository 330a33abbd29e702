//! Page-Hinkley test (Page 1954), as River 0.26.1's `drift.PageHinkley`.
//!
//! Cumulative sums of the deviations from the running mean (faded by `alpha`, offset by the
//! tolerated magnitude `delta`) are compared with their running extremum; when the gap exceeds
//! `threshold` (λ) the mean has moved. `mode` selects increases, decreases or both.

use serde::{Deserialize, Serialize};

use super::{
    out_of_range, DetectorKind, DetectorSnapshot, DriftConfigError, DriftDetector, DriftState, RunningMean,
};

const KIND: &str = "page_hinkley";

/// Which direction of change [`PageHinkleyDetector`] monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageHinkleyMode {
    /// Increases of the mean only.
    Up,
    /// Decreases of the mean only.
    Down,
    /// Both directions.
    #[default]
    Both,
}

/// Parameters of [`PageHinkleyDetector`]; defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageHinkleyConfig {
    /// Minimum number of values before a change can be signalled.
    pub min_instances: u32,
    /// Magnitude of changes that are tolerated.
    pub delta: f64,
    /// Detection threshold λ.
    pub threshold: f64,
    /// Fading factor of the cumulative sums, in (0, 1].
    pub alpha: f64,
    /// Direction(s) of change to detect.
    pub mode: PageHinkleyMode,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        Self {
            min_instances: 30,
            delta: 0.005,
            threshold: 50.0,
            alpha: 1.0 - 0.0001,
            mode: PageHinkleyMode::Both,
        }
    }
}

impl DetectorKind for PageHinkleyConfig {
    const KIND: &'static str = KIND;
    type Detector = PageHinkleyDetector;

    fn build(&self) -> Result<PageHinkleyDetector, DriftConfigError> {
        PageHinkleyDetector::new(self.clone())
    }

    /// Check every parameter's range.
    fn validate(&self) -> Result<(), DriftConfigError> {
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(out_of_range(KIND, "alpha", format!("must be in (0, 1], got {}", self.alpha)));
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(out_of_range(KIND, "threshold", "must be a non-negative number"));
        }
        if !self.delta.is_finite() {
            return Err(out_of_range(KIND, "delta", "must be finite"));
        }
        Ok(())
    }
}

/// The Page-Hinkley detector; [`DriftDetector::estimate`] is the running mean. Restarts on the
/// update after a drift, as River does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageHinkleyDetector {
    config: PageHinkleyConfig,
    mean: RunningMean,
    sum_increase: f64,
    sum_decrease: f64,
    min_increase: f64,
    max_decrease: f64,
    drift: bool,
    detections: u64,
}

impl PageHinkleyDetector {
    /// Create a detector; fails if the configuration is out of range.
    pub fn new(config: PageHinkleyConfig) -> Result<Self, DriftConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            mean: RunningMean::default(),
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: f64::INFINITY,
            max_decrease: -1.0,
            drift: false,
            detections: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PageHinkleyConfig {
        &self.config
    }

    /// Current test statistics `(increase, decrease)`: the gaps compared with `threshold`.
    pub fn statistics(&self) -> (f64, f64) {
        (self.sum_increase - self.min_increase, self.max_decrease - self.sum_decrease)
    }

    fn restart(&mut self) {
        self.mean = RunningMean::default();
        self.sum_increase = 0.0;
        self.sum_decrease = 0.0;
        self.min_increase = f64::INFINITY;
        self.max_decrease = -1.0;
        self.drift = false;
    }
}

impl DriftDetector for PageHinkleyDetector {
    fn update(&mut self, x: f64) -> DriftState {
        if self.drift {
            self.restart();
        }
        self.mean.update(x);
        let dev = x - self.mean.mean;
        let c = &self.config;
        self.sum_increase = c.alpha * self.sum_increase + dev - c.delta;
        self.sum_decrease = c.alpha * self.sum_decrease + dev + c.delta;
        if self.sum_increase < self.min_increase {
            self.min_increase = self.sum_increase;
        }
        if self.sum_decrease > self.max_decrease {
            self.max_decrease = self.sum_decrease;
        }
        if self.mean.n >= f64::from(c.min_instances) {
            let (inc, dec) = self.statistics();
            self.drift = match c.mode {
                PageHinkleyMode::Up => inc > c.threshold,
                PageHinkleyMode::Down => dec > c.threshold,
                PageHinkleyMode::Both => inc > c.threshold || dec > c.threshold,
            };
        }
        if self.drift {
            self.detections += 1;
            DriftState::Drift
        } else {
            DriftState::None
        }
    }

    fn reset(&mut self) {
        self.restart();
        self.detections = 0;
    }

    fn estimate(&self) -> f64 {
        self.mean.mean
    }

    fn detections(&self) -> u64 {
        self.detections
    }

    fn name(&self) -> &'static str {
        KIND
    }

    fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot::PageHinkley(self.clone())
    }

    fn box_clone(&self) -> Box<dyn DriftDetector> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_drift(mode: PageHinkleyMode, after: f64) -> Option<usize> {
        let mut d = PageHinkleyDetector::new(PageHinkleyConfig { mode, ..Default::default() }).unwrap();
        (0..3000).find(|&i| d.update(if i < 1000 { 0.0 } else { after }).is_drift())
    }

    #[test]
    fn directions() {
        assert!(first_drift(PageHinkleyMode::Up, 5.0).unwrap() > 1000);
        assert_eq!(first_drift(PageHinkleyMode::Up, -5.0), None);
        assert!(first_drift(PageHinkleyMode::Down, -5.0).unwrap() > 1000);
        assert!(first_drift(PageHinkleyMode::Both, -5.0).unwrap() > 1000);
    }
}
