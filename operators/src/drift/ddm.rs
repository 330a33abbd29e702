//! DDM (Drift Detection Method), Gama et al. 2004, as River 0.26.1's `drift.binary.DDM`.
//!
//! The input is a 0/1 error stream. DDM tracks the running error rate `p` and its binomial
//! standard deviation `s = sqrt(p(1-p)/n)`, remembers the point where `p + s` was smallest, and
//! signals a warning (drift) when `p + s` exceeds `p_min + warning_threshold·s_min`
//! (`p_min + drift_threshold·s_min`). Under a stationary error rate, `p + s` only shrinks as `n`
//! grows (PAC premise), so a significant rise means the concept changed.

use serde::{Deserialize, Serialize};

use super::{
    out_of_range, DetectorKind, DetectorSnapshot, DriftConfigError, DriftDetector, DriftState, RunningMean,
};

const KIND: &str = "ddm";

/// Parameters of [`DdmDetector`]; defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdmConfig {
    /// Minimum number of values before a change can be signalled.
    pub warm_start: u32,
    /// Multiple of `s_min` above `p_min` that enters the warning zone (2.0 ≈ 95 %).
    pub warning_threshold: f64,
    /// Multiple of `s_min` above `p_min` that signals drift (3.0 ≈ 99 %).
    pub drift_threshold: f64,
}

impl Default for DdmConfig {
    fn default() -> Self {
        Self { warm_start: 30, warning_threshold: 2.0, drift_threshold: 3.0 }
    }
}

impl DetectorKind for DdmConfig {
    const KIND: &'static str = KIND;
    type Detector = DdmDetector;

    fn build(&self) -> Result<DdmDetector, DriftConfigError> {
        DdmDetector::new(self.clone())
    }

    /// Check every parameter's range.
    fn validate(&self) -> Result<(), DriftConfigError> {
        if !(self.warning_threshold.is_finite() && self.warning_threshold >= 0.0) {
            return Err(out_of_range(KIND, "warning_threshold", "must be a non-negative number"));
        }
        if !(self.drift_threshold.is_finite() && self.drift_threshold >= 0.0) {
            return Err(out_of_range(KIND, "drift_threshold", "must be a non-negative number"));
        }
        Ok(())
    }
}

/// The DDM detector; [`DriftDetector::estimate`] is the running error rate. Restarts on the
/// update after a drift, as River does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DdmDetector {
    config: DdmConfig,
    p: RunningMean,
    p_min: Option<f64>,
    s_min: Option<f64>,
    ps_min: f64,
    warning: bool,
    drift: bool,
    detections: u64,
}

impl DdmDetector {
    /// Create a detector; fails if the configuration is out of range.
    pub fn new(config: DdmConfig) -> Result<Self, DriftConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            p: RunningMean::default(),
            p_min: None,
            s_min: None,
            ps_min: f64::INFINITY,
            warning: false,
            drift: false,
            detections: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DdmConfig {
        &self.config
    }

    /// `true` while in the warning zone.
    pub fn warning(&self) -> bool {
        self.warning
    }

    fn restart(&mut self) {
        self.p = RunningMean::default();
        self.p_min = None;
        self.s_min = None;
        self.ps_min = f64::INFINITY;
        self.warning = false;
        self.drift = false;
    }
}

impl DriftDetector for DdmDetector {
    fn update(&mut self, x: f64) -> DriftState {
        if self.drift {
            self.restart();
        }
        self.p.update(x);
        let p_i = self.p.mean;
        let n = self.p.n;
        let s_i = (p_i * (1.0 - p_i) / n).sqrt();
        if n > f64::from(self.config.warm_start) {
            if p_i + s_i <= self.ps_min {
                self.p_min = Some(p_i);
                self.s_min = Some(s_i);
                self.ps_min = p_i + s_i;
            }
            // River would raise on `None + ...` (only reachable with NaN input); treat as no change.
            if let (Some(p_min), Some(s_min)) = (self.p_min, self.s_min) {
                self.warning = p_i + s_i > p_min + self.config.warning_threshold * s_min;
                if p_i + s_i > p_min + self.config.drift_threshold * s_min {
                    self.drift = true;
                    self.warning = false;
                }
            }
        }
        DriftState::conclude(self.drift, self.warning, &mut self.detections)
    }

    fn reset(&mut self) {
        self.restart();
        self.detections = 0;
    }

    fn estimate(&self) -> f64 {
        self.p.mean
    }

    fn detections(&self) -> u64 {
        self.detections
    }

    fn name(&self) -> &'static str {
        KIND
    }

    fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot::Ddm(self.clone())
    }

    fn box_clone(&self) -> Box<dyn DriftDetector> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_error_rate_increase_with_warning_first() {
        let mut d = DdmDetector::new(DdmConfig::default()).unwrap();
        let mut states = Vec::new();
        for i in 0..4000u32 {
            // 10 % errors, then 50 %
            let err = if i < 2000 { i % 10 == 0 } else { i % 2 == 0 };
            states.push(d.update(f64::from(u8::from(err))));
        }
        let first_drift = states.iter().position(|s| s.is_drift()).expect("drift");
        let first_warning = states.iter().position(|s| s.is_warning()).expect("warning");
        assert!(first_drift > 2000 && first_warning > 2000 && first_warning < first_drift);
        assert!(states[..2000].iter().all(|s| *s == DriftState::None));
        assert!(d.detections() >= 1);
    }
}
