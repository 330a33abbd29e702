//! EDDM (Early Drift Detection Method), Baena-García et al. 2006, as River 0.26.1's
//! `drift.binary.EDDM`.
//!
//! Instead of the error rate, EDDM tracks the distance (in updates) between consecutive errors:
//! its mean `p'` and standard deviation `s'`. While the model improves, errors get further apart
//! and `p' + 2s'` grows; EDDM remembers its maximum and signals a warning (drift) when the ratio
//! `(p' + 2s') / max` falls below `alpha` (`beta`). This reacts earlier than DDM to gradual drift.

use serde::{Deserialize, Serialize};

use super::{
    out_of_range, DetectorKind, DetectorSnapshot, DriftConfigError, DriftDetector, DriftState, RunningMean,
};

const KIND: &str = "eddm";

/// Parameters of [`EddmDetector`]; defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EddmConfig {
    /// Minimum number of updates, and of errors, before a change can be signalled.
    pub warm_start: u32,
    /// Warning threshold on the ratio, in [0, 1].
    pub alpha: f64,
    /// Drift threshold on the ratio, in [0, 1], at most `alpha`.
    pub beta: f64,
}

impl Default for EddmConfig {
    fn default() -> Self {
        Self { warm_start: 30, alpha: 0.95, beta: 0.9 }
    }
}

impl DetectorKind for EddmConfig {
    const KIND: &'static str = KIND;
    type Detector = EddmDetector;

    fn build(&self) -> Result<EddmDetector, DriftConfigError> {
        EddmDetector::new(self.clone())
    }

    /// Check every parameter's range.
    fn validate(&self) -> Result<(), DriftConfigError> {
        for (name, v) in [("alpha", self.alpha), ("beta", self.beta)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(out_of_range(KIND, name, format!("must be in [0, 1], got {v}")));
            }
        }
        if self.alpha < self.beta {
            return Err(out_of_range(
                KIND,
                "alpha",
                format!("must be >= beta ({}), got {}", self.beta, self.alpha),
            ));
        }
        Ok(())
    }
}

/// The EDDM detector; [`DriftDetector::estimate`] is the mean distance between errors.
/// Values equal to 1.0 are errors, anything else is a success. Restarts on the update after a
/// drift, as River does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EddmDetector {
    config: EddmConfig,
    /// River's `stats.Var()` of the error distances: its mean and sum of squares `S`.
    dist: RunningMean,
    dist_s: f64,
    n: u64,
    last_error: u64,
    n_errors: u64,
    p2s_prime_max: f64,
    warning: bool,
    drift: bool,
    detections: u64,
}

impl EddmDetector {
    /// Create a detector; fails if the configuration is out of range.
    pub fn new(config: EddmConfig) -> Result<Self, DriftConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            dist: RunningMean::default(),
            dist_s: 0.0,
            n: 0,
            last_error: 0,
            n_errors: 0,
            p2s_prime_max: -1.0,
            warning: false,
            drift: false,
            detections: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EddmConfig {
        &self.config
    }

    /// `true` while in the warning zone.
    pub fn warning(&self) -> bool {
        self.warning
    }

    fn restart(&mut self) {
        let (config, detections) = (self.config.clone(), self.detections);
        *self = Self::new(config).expect("validated at construction");
        self.detections = detections;
    }
}

impl DriftDetector for EddmDetector {
    fn update(&mut self, x: f64) -> DriftState {
        if self.drift {
            self.restart();
        }
        self.n += 1;
        if x == 1.0 {
            self.n_errors += 1;
            // River's Var.update (Welford), ddof = 1
            let d = (self.n - self.last_error) as f64;
            let mean_old = self.dist.mean;
            self.dist.update(d);
            self.dist_s += 1.0 * (d - mean_old) * (d - self.dist.mean);
            let warm = u64::from(self.config.warm_start);
            if self.n > warm {
                let pi_prime = self.dist.mean;
                let var = if self.dist.n > 1.0 { self.dist_s / (self.dist.n - 1.0) } else { 0.0 };
                // River writes `** 0.5`, i.e. C `pow`; keep it (it is correctly rounded like sqrt,
                // but there is no reason to depend on that).
                let si_prime = var.powf(0.5);
                let p2s_prime = pi_prime + 2.0 * si_prime;
                if p2s_prime > self.p2s_prime_max {
                    self.p2s_prime_max = p2s_prime;
                } else if self.n_errors > warm {
                    let level = p2s_prime / self.p2s_prime_max;
                    if level < self.config.beta {
                        self.drift = true;
                    } else {
                        self.warning = level < self.config.alpha;
                    }
                }
            }
            self.last_error = self.n;
        }
        DriftState::conclude(self.drift, self.warning, &mut self.detections)
    }

    fn reset(&mut self) {
        self.restart();
        self.detections = 0;
    }

    fn estimate(&self) -> f64 {
        self.dist.mean
    }

    fn detections(&self) -> u64 {
        self.detections
    }

    fn name(&self) -> &'static str {
        KIND
    }

    fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot::Eddm(self.clone())
    }

    fn box_clone(&self) -> Box<dyn DriftDetector> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_errors_getting_closer() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut d = EddmDetector::new(EddmConfig::default()).unwrap();
        let mut after = None;
        for i in 0..6000u32 {
            let p = if i < 3000 { 0.02 } else { 0.4 };
            if d.update(f64::from(u8::from(rng.random::<f64>() < p))).is_drift()
                && i >= 3000
                && after.is_none()
            {
                after = Some(i);
            }
        }
        assert!(after.is_some_and(|i| i < 3300), "{after:?}");
        assert!(EddmDetector::new(EddmConfig { alpha: 0.5, beta: 0.9, ..Default::default() }).is_err());
    }
}
