//! HDDM_W (Hoeffding-bound drift detection, weighted moving-average test), Frías-Blanco et al.
//! 2014, as River 0.26.1's `drift.binary.HDDMW` (itself a port of MOA's `HDDM_W_Test`).
//!
//! Where HDDM_A compares plain means, HDDM_W compares exponentially weighted moving averages
//! (EWMA, weight `lambda_val` on the newest value), so recent values count more. It tracks the
//! EWMA of everything since the last restart (`total`) and a cut point: the update at which
//! `total`'s EWMA plus its McDiarmid bound was lowest. `s1` is `total` as it was at the cut point,
//! `s2` the EWMA of the values after it. When `s2`'s EWMA exceeds `s1`'s by more than the
//! McDiarmid bound of both at the drift (warning) confidence, the values after the cut point come
//! from a higher-mean distribution. The bound's "independent bound condition"
//! `ibc ← λ² + (1 − λ)²·ibc` accounts for the weights. The optional two-sided test does the same
//! for decreases with the highest `total − bound`. Inputs are expected in [0, 1], typically 0/1
//! errors.

use serde::{Deserialize, Serialize};

use super::{
    check_open, out_of_range, DetectorKind, DetectorSnapshot, DriftConfigError, DriftDetector, DriftState,
};

const KIND: &str = "hddm_w";

/// Parameters of [`HddmWDetector`]; defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HddmWConfig {
    /// Confidence of the drift test, in (0, 1).
    pub drift_confidence: f64,
    /// Confidence of the warning test, in (0, 1).
    pub warning_confidence: f64,
    /// Weight of the newest value in the moving averages, in [0, 1]: larger adapts faster.
    pub lambda_val: f64,
    /// Monitor decreases of the mean as well as increases.
    pub two_sided_test: bool,
}

impl Default for HddmWConfig {
    fn default() -> Self {
        Self { drift_confidence: 0.001, warning_confidence: 0.005, lambda_val: 0.05, two_sided_test: false }
    }
}

impl DetectorKind for HddmWConfig {
    const KIND: &'static str = KIND;
    type Detector = HddmWDetector;

    fn build(&self) -> Result<HddmWDetector, DriftConfigError> {
        HddmWDetector::new(self.clone())
    }

    fn validate(&self) -> Result<(), DriftConfigError> {
        check_open(KIND, "drift_confidence", self.drift_confidence, 0.0, 1.0)?;
        check_open(KIND, "warning_confidence", self.warning_confidence, 0.0, 1.0)?;
        // River's `stats.EWMean` accepts a fading factor in [0, 1].
        if !(0.0..=1.0).contains(&self.lambda_val) {
            return Err(out_of_range(
                KIND,
                "lambda_val",
                format!("must be in [0, 1], got {}", self.lambda_val),
            ));
        }
        Ok(())
    }
}

/// River's `SampleInfo`: an EWMA and its independent bound condition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Sample {
    /// River's `stats.EWMean`: the first value, then `λ·x + (1 − λ)·ewma`.
    ewma: f64,
    ibc: f64,
    init: bool,
}

impl Default for Sample {
    fn default() -> Self {
        Self { ewma: 0.0, ibc: 1.0, init: false }
    }
}

impl Sample {
    #[inline]
    fn update(&mut self, x: f64, w: &Weights) {
        self.ewma = if self.init { w.lambda * x + w.complement * self.ewma } else { x };
        self.init = true;
        self.ibc = w.lambda_sq + w.complement_sq * self.ibc;
    }
}

/// `λ`, `1 − λ` and their squares, computed once as River does.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Weights {
    lambda: f64,
    complement: f64,
    lambda_sq: f64,
    complement_sq: f64,
}

impl Weights {
    fn new(lambda: f64) -> Self {
        let complement = 1.0 - lambda;
        Self {
            lambda,
            complement,
            lambda_sq: lambda * lambda,
            // River computes `(1 - lambd) ** 2`, i.e. C's `pow`, which is not always `x * x` to
            // the last bit; `black_box` keeps LLVM from folding the call into a multiplication.
            complement_sq: complement.powf(std::hint::black_box(2.0)),
        }
    }
}

/// The HDDM_W detector; [`DriftDetector::estimate`] is the EWMA of all values since the last
/// restart. Restarts on the update after a drift, as River does.
///
/// River's docstring example, with the stream built from a seeded generator (eddy has no
/// `random.Random`, so the indices differ from River's):
///
/// ```
/// use eddy_operators::drift::{DriftDetector, HddmWConfig, HddmWDetector};
/// use rand::{Rng, SeedableRng};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
/// // errors with probability 0.5, then 0.7
/// let stream: Vec<f64> = (0..2000)
///     .map(|i| f64::from(u8::from(rng.random_bool(if i < 1000 { 0.5 } else { 0.7 }))))
///     .collect();
///
/// let mut hddm_w = HddmWDetector::new(HddmWConfig::default()).unwrap();
/// let (mut warnings, mut drifts) = (Vec::new(), Vec::new());
/// for (i, &x) in stream.iter().enumerate() {
///     let state = hddm_w.update(x);
///     if state.is_warning() {
///         warnings.push(i);
///     }
///     if state.is_drift() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, vec![1177]);
/// // the warning zone came first
/// assert!(warnings.contains(&1176));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HddmWDetector {
    config: HddmWConfig,
    total: Sample,
    s1_incr: Sample,
    s2_incr: Sample,
    s1_decr: Sample,
    s2_decr: Sample,
    /// Lowest `total.ewma + bound` so far; `None` is River's `inf` (JSON has no infinity).
    incr_cutpoint: Option<f64>,
    /// Highest `total.ewma - bound` so far; `None` is River's `-inf`.
    decr_cutpoint: Option<f64>,
    warning: bool,
    drift: bool,
    detections: u64,
}

impl HddmWDetector {
    /// Create a detector; fails if the configuration is out of range.
    pub fn new(config: HddmWConfig) -> Result<Self, DriftConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            total: Sample::default(),
            s1_incr: Sample::default(),
            s2_incr: Sample::default(),
            s1_decr: Sample::default(),
            s2_decr: Sample::default(),
            incr_cutpoint: None,
            decr_cutpoint: None,
            warning: false,
            drift: false,
            detections: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HddmWConfig {
        &self.config
    }

    /// `true` while in the warning zone.
    pub fn warning(&self) -> bool {
        self.warning
    }

    fn restart(&mut self) {
        self.total = Sample::default();
        self.s1_incr = Sample::default();
        self.s2_incr = Sample::default();
        self.s1_decr = Sample::default();
        self.s2_decr = Sample::default();
        self.incr_cutpoint = None;
        self.decr_cutpoint = None;
        self.warning = false;
        self.drift = false;
    }

    fn mcdiarmid_bound(ibc: f64, confidence: f64) -> f64 {
        (ibc * (1.0 / confidence).ln() / 2.0).sqrt()
    }

    /// River's `_has_mean_changed`: `later`'s EWMA exceeds `earlier`'s by more than the bound.
    fn mean_changed(earlier: &Sample, later: &Sample, confidence: f64) -> bool {
        if !(earlier.init && later.init) {
            return false;
        }
        let bound = Self::mcdiarmid_bound(earlier.ibc + later.ibc, confidence);
        later.ewma - earlier.ewma > bound
    }
}

impl DriftDetector for HddmWDetector {
    fn update(&mut self, x: f64) -> DriftState {
        if self.drift {
            self.restart();
        }
        let w = Weights::new(self.config.lambda_val);
        self.total.update(x, &w);

        let eps = Self::mcdiarmid_bound(self.total.ibc, self.config.drift_confidence);
        let low = self.total.ewma + eps;
        if low < self.incr_cutpoint.unwrap_or(f64::INFINITY) {
            self.incr_cutpoint = Some(low);
            self.s1_incr = self.total;
            self.s2_incr = Sample::default();
        } else {
            self.s2_incr.update(x, &w);
        }
        if Self::mean_changed(&self.s1_incr, &self.s2_incr, self.config.drift_confidence) {
            self.warning = false;
            self.drift = true;
        } else if Self::mean_changed(&self.s1_incr, &self.s2_incr, self.config.warning_confidence) {
            self.warning = true;
            self.drift = false;
        } else {
            self.warning = false;
            self.drift = false;
        }

        // River keeps the decrease statistics up to date even for the one-sided test.
        let high = self.total.ewma - eps;
        if high > self.decr_cutpoint.unwrap_or(f64::NEG_INFINITY) {
            self.decr_cutpoint = Some(high);
            self.s1_decr = self.total;
            self.s2_decr = Sample::default();
        } else {
            self.s2_decr.update(x, &w);
        }
        if self.config.two_sided_test {
            if Self::mean_changed(&self.s2_decr, &self.s1_decr, self.config.drift_confidence) {
                self.drift = true;
            } else if Self::mean_changed(&self.s2_decr, &self.s1_decr, self.config.warning_confidence) {
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
        self.total.ewma
    }

    fn detections(&self) -> u64 {
        self.detections
    }

    fn name(&self) -> &'static str {
        KIND
    }

    fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot::HddmW(self.clone())
    }

    fn box_clone(&self) -> Box<dyn DriftDetector> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_drift(two_sided: bool, before: u32, after: u32) -> Option<u32> {
        let mut d =
            HddmWDetector::new(HddmWConfig { two_sided_test: two_sided, ..Default::default() }).unwrap();
        (0..4000u32).find(|&i| {
            let every = if i < 2000 { before } else { after };
            d.update(f64::from(u8::from(i % every == 0))).is_drift()
        })
    }

    #[test]
    fn one_and_two_sided() {
        assert!(first_drift(false, 10, 2).unwrap() > 2000);
        // a decrease is only seen by the two-sided test
        assert_eq!(first_drift(false, 2, 10), None);
        assert!(first_drift(true, 2, 10).unwrap() > 2000);
    }

    #[test]
    fn ewma_starts_at_the_first_value() {
        let mut d = HddmWDetector::new(HddmWConfig { lambda_val: 0.5, ..Default::default() }).unwrap();
        assert_eq!(d.estimate(), 0.0);
        for (x, want) in [(1.0, 1.0), (-1.0, 0.0), (1.0, 0.5)] {
            d.update(x);
            assert_eq!(d.estimate(), want);
        }
    }

    #[test]
    fn config_ranges() {
        for (lambda, ok) in [(0.0, true), (1.0, true), (-0.1, false), (1.5, false)] {
            let cfg = HddmWConfig { lambda_val: lambda, ..Default::default() };
            assert_eq!(cfg.validate().is_ok(), ok, "{lambda}");
        }
        assert!(HddmWConfig { drift_confidence: 0.0, ..Default::default() }.validate().is_err());
    }
}
