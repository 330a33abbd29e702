//! HDDM_A (Hoeffding-bound drift detection, moving-average test), Frías-Blanco et al. 2014, as
//! River 0.26.1's `drift.binary.HDDM_A` (itself a port of MOA's `HDDM_A_Test`).
//!
//! HDDM_A compares the mean of all values seen (`z`) with the mean up to a cut point (`x_min`,
//! the prefix whose Hoeffding upper bound was lowest). If the overall mean exceeds the prefix
//! mean by more than a Hoeffding bound at the drift (warning) confidence, the values after the
//! cut point come from a higher-mean distribution. The optional two-sided test does the same for
//! decreases with `x_max`. Inputs are expected in [0, 1] (Hoeffding's range), typically 0/1 errors.

use serde::{Deserialize, Serialize};

use super::{
    check_open, DetectorKind, DetectorSnapshot, DriftConfigError, DriftDetector, DriftState, RunningMean,
};

const KIND: &str = "hddm_a";

/// Parameters of [`HddmADetector`]; defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HddmAConfig {
    /// Confidence of the drift test, in (0, 1).
    pub drift_confidence: f64,
    /// Confidence of the warning test, in (0, 1).
    pub warning_confidence: f64,
    /// Monitor decreases of the mean as well as increases.
    pub two_sided_test: bool,
}

impl Default for HddmAConfig {
    fn default() -> Self {
        Self { drift_confidence: 0.001, warning_confidence: 0.005, two_sided_test: false }
    }
}

impl DetectorKind for HddmAConfig {
    const KIND: &'static str = KIND;
    type Detector = HddmADetector;

    fn build(&self) -> Result<HddmADetector, DriftConfigError> {
        HddmADetector::new(self.clone())
    }

    /// Check every parameter's range.
    fn validate(&self) -> Result<(), DriftConfigError> {
        check_open(KIND, "drift_confidence", self.drift_confidence, 0.0, 1.0)?;
        check_open(KIND, "warning_confidence", self.warning_confidence, 0.0, 1.0)
    }
}

/// The HDDM_A detector; [`DriftDetector::estimate`] is the mean of all values since the last
/// restart. Restarts on the update after a drift, as River does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HddmADetector {
    config: HddmAConfig,
    x_min: RunningMean,
    x_max: RunningMean,
    z: RunningMean,
    warning: bool,
    drift: bool,
    detections: u64,
}

impl HddmADetector {
    /// Create a detector; fails if the configuration is out of range.
    pub fn new(config: HddmAConfig) -> Result<Self, DriftConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            x_min: RunningMean::default(),
            x_max: RunningMean::default(),
            z: RunningMean::default(),
            warning: false,
            drift: false,
            detections: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HddmAConfig {
        &self.config
    }

    /// `true` while in the warning zone.
    pub fn warning(&self) -> bool {
        self.warning
    }

    fn restart(&mut self) {
        self.x_min = RunningMean::default();
        self.x_max = RunningMean::default();
        self.z = RunningMean::default();
        self.warning = false;
        self.drift = false;
    }

    fn hoeffding_bound(&self, n: f64) -> f64 {
        (1.0 / (2.0 * n) * (1.0 / self.config.drift_confidence).ln()).sqrt()
    }

    fn mean_incr(&self, confidence: f64) -> bool {
        if self.x_min.n == self.z.n {
            return false;
        }
        let m = (self.z.n - self.x_min.n) / self.x_min.n * (1.0 / self.z.n);
        let eps = (m / 2.0 * (2.0 / confidence).ln()).sqrt();
        self.z.mean - self.x_min.mean >= eps
    }

    fn mean_decr(&self, confidence: f64) -> bool {
        if self.x_max.n == self.z.n {
            return false;
        }
        let m = (self.z.n - self.x_max.n) / self.x_max.n * (1.0 / self.z.n);
        let eps = (m / 2.0 * (2.0 / confidence).ln()).sqrt();
        self.x_max.mean - self.z.mean >= eps
    }
}

impl DriftDetector for HddmADetector {
    fn update(&mut self, x: f64) -> DriftState {
        if self.drift {
            self.restart();
        }
        self.z.update(x);
        if self.x_min.n == 0.0 {
            self.x_min = self.z;
        }
        if self.x_max.n == 0.0 {
            self.x_max = self.z;
        }
        let eps_z = self.hoeffding_bound(self.z.n);
        let eps_x = self.hoeffding_bound(self.x_min.n);
        if self.x_min.mean + eps_x >= self.z.mean + eps_z {
            self.x_min = self.z;
        }
        let eps_x = self.hoeffding_bound(self.x_max.n);
        if self.x_max.mean - eps_x <= self.z.mean - eps_z {
            self.x_max = self.z;
        }
        if self.mean_incr(self.config.drift_confidence) {
            self.warning = false;
            self.drift = true;
        } else if self.mean_incr(self.config.warning_confidence) {
            self.warning = true;
            self.drift = false;
        } else {
            self.warning = false;
            self.drift = false;
        }
        if self.config.two_sided_test {
            if self.mean_decr(self.config.drift_confidence) {
                self.drift = true;
            } else if self.mean_decr(self.config.warning_confidence) {
                self.warning = true;
            }
        }
        DriftState::conclude(self.drift, self.warning, &mut self.detections)
    }

    fn reset(&mut self) {
        self.restart();
        self.detections = 0;
    }

    fn estimate(&self) -> f64 {
        self.z.mean
    }

    fn detections(&self) -> u64 {
        self.detections
    }

    fn name(&self) -> &'static str {
        KIND
    }

    fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot::HddmA(self.clone())
    }

    fn box_clone(&self) -> Box<dyn DriftDetector> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(two_sided: bool, before: u32, after: u32) -> Option<u32> {
        let mut d =
            HddmADetector::new(HddmAConfig { two_sided_test: two_sided, ..Default::default() }).unwrap();
        (0..4000u32).find(|&i| {
            let every = if i < 2000 { before } else { after };
            d.update(f64::from(u8::from(i % every == 0))).is_drift()
        })
    }

    #[test]
    fn one_and_two_sided() {
        assert!(run(false, 10, 2).unwrap() > 2000);
        // a decrease is only seen by the two-sided test
        assert_eq!(run(false, 2, 10), None);
        assert!(run(true, 2, 10).unwrap() > 2000);
    }
}
