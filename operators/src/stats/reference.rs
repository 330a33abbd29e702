//! Feature drift against a reference sample: PSI and the two-sample Kolmogorov–Smirnov test.
//!
//! A [`ReferenceDrift`] watches one feature. Its *reference* is either the first
//! `reference_size` finite values of the stream, or a sample handed over with
//! [`ReferenceDrift::reset_reference`] (typically the training data of the current champion, so
//! that "drift" means "the model now sees data unlike what it learned from"). Its *current
//! window* is the last `current_size` values, in a ring buffer.
//!
//! # Population Stability Index
//!
//! The reference is cut into `bins` quantile bins: interior edges `e_i = ref_sorted[⌊i·N/B⌋]`
//! for `i = 1..B` (duplicates from tied values removed), and a value `x` falls in the bin whose
//! index is the number of edges `≤ x`. With `r_i` and `c_i` the fractions of the reference and
//! of the current window in bin `i`, each floored at `epsilon` so that an empty bin does not
//! make the logarithm infinite,
//!
//! ```text
//! PSI = Σ_i (c_i − r_i) · ln(c_i / r_i)
//! ```
//!
//! Rule of thumb: < 0.1 stable, 0.1–0.2 moderate shift, > 0.2 significant shift (the default
//! threshold). Current-window bin counts are maintained on every update, so PSI costs O(bins).
//!
//! # Kolmogorov–Smirnov
//!
//! `D = sup_x |F_ref(x) − F_cur(x)|`, computed exactly by walking the sorted reference and a
//! sorted copy of the current window together (ties handled as in `scipy.stats.ks_2samp`).
//! Sorting the window costs O(M log M) per check, which is why checks run every `check_every`
//! updates rather than on every one. The optional p-value is the asymptotic Kolmogorov
//! distribution `Q(√(n·m/(n+m)) · D)` (`scipy.stats.kstwobign.sf`), accurate for windows of a
//! few hundred values and more.

use serde::{Deserialize, Serialize};

use super::accumulator::{Accumulator, MomentsAccumulator, Retract};
use super::{invalid, StatsError};

const COMPONENT: &str = "reference_drift";

/// Configuration of a [`ReferenceDrift`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReferenceDriftConfig {
    /// Number of first values taken as the reference when none is provided. Default 1000.
    pub reference_size: usize,
    /// Length M of the current window. Checks start once it is full. Default 1000.
    pub current_size: usize,
    /// Number of quantile bins for PSI. Default 10.
    pub bins: usize,
    /// Floor applied to bin fractions in PSI. Default 1e-4.
    pub epsilon: f64,
    /// PSI above this raises a drift event. Default 0.2.
    pub psi_threshold: f64,
    /// KS statistic D above this raises a drift event (ignored when `ks_p_value` is set).
    /// Default 0.1.
    pub ks_threshold: f64,
    /// When set, KS raises a drift event when its asymptotic p-value is below this level
    /// instead of comparing D with `ks_threshold`. Default unset.
    pub ks_p_value: Option<f64>,
    /// Run a check every this many values added to the current window. Default 100.
    pub check_every: u64,
}

impl Default for ReferenceDriftConfig {
    fn default() -> Self {
        ReferenceDriftConfig {
            reference_size: 1000,
            current_size: 1000,
            bins: 10,
            epsilon: 1e-4,
            psi_threshold: 0.2,
            ks_threshold: 0.1,
            ks_p_value: None,
            check_every: 100,
        }
    }
}

impl ReferenceDriftConfig {
    /// Check every setting and report all problems at once.
    ///
    /// # Errors
    ///
    /// The list of [`StatsError::InvalidConfig`], one per bad setting.
    pub fn validate(&self) -> Result<(), Vec<StatsError>> {
        let mut errors = Vec::new();
        if self.reference_size == 0 {
            errors.push(invalid(COMPONENT, "reference_size", "expected at least 1"));
        }
        if self.current_size == 0 {
            errors.push(invalid(COMPONENT, "current_size", "expected at least 1"));
        }
        if !(2..=1000).contains(&self.bins) {
            errors.push(invalid(COMPONENT, "bins", format!("expected 2 to 1000, got {}", self.bins)));
        }
        if !(self.epsilon > 0.0 && self.epsilon < 0.1) {
            errors.push(invalid(COMPONENT, "epsilon", format!("expected (0, 0.1), got {}", self.epsilon)));
        }
        if !(self.psi_threshold.is_finite() && self.psi_threshold > 0.0) {
            errors.push(invalid(
                COMPONENT,
                "psi_threshold",
                format!("expected a positive number, got {}", self.psi_threshold),
            ));
        }
        if !(self.ks_threshold > 0.0 && self.ks_threshold <= 1.0) {
            errors.push(invalid(
                COMPONENT,
                "ks_threshold",
                format!("expected (0, 1], got {}", self.ks_threshold),
            ));
        }
        if let Some(p) = self.ks_p_value {
            if !(p > 0.0 && p < 1.0) {
                errors.push(invalid(COMPONENT, "ks_p_value", format!("expected (0, 1), got {p}")));
            }
        }
        if self.check_every == 0 {
            errors.push(invalid(COMPONENT, "check_every", "expected at least 1"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Where the reference sample came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    /// The first `reference_size` values of the stream.
    FirstValues,
    /// A sample given to [`ReferenceDrift::reset_reference`] (e.g. the champion's training data).
    Provided,
}

/// A check whose PSI or KS crossed its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceDriftEvent {
    /// Population Stability Index.
    pub psi: f64,
    /// Two-sample KS statistic D.
    pub ks: f64,
    /// Asymptotic p-value of D.
    pub ks_p_value: f64,
    /// PSI exceeded `psi_threshold`.
    pub psi_drift: bool,
    /// KS exceeded `ks_threshold` (or its p-value fell below `ks_p_value`).
    pub ks_drift: bool,
    /// Number of finite values seen when the check ran (1-based index of the last one).
    pub at_update: u64,
    /// Where the reference came from.
    pub source: ReferenceSource,
    /// Reference sample size.
    pub reference_size: usize,
    /// Mean of the reference, for the alert text.
    pub reference_mean: f64,
    /// Mean of the current window, for the alert text.
    pub current_mean: f64,
}

/// PSI and KS drift of one feature against a reference (see the module docs).
///
/// ```
/// use eddy_operators::stats::{ReferenceDrift, ReferenceDriftConfig};
///
/// let config = ReferenceDriftConfig { reference_size: 500, current_size: 500, ..Default::default() };
/// let mut drift = ReferenceDrift::new(config).expect("valid config");
/// let mut first = None;
/// for i in 0..3000u64 {
///     // A deterministic "uniform" stream whose level jumps by 0.5 at update 2000.
///     let x = (i * 7919 % 1000) as f64 / 1000.0 + if i >= 2000 { 0.5 } else { 0.0 };
///     if let Some(event) = drift.update(x) {
///         first.get_or_insert(event.at_update);
///     }
/// }
/// assert_eq!(first, Some(2100)); // the first check after the jump
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceDrift {
    config: ReferenceDriftConfig,
    source: ReferenceSource,
    /// The reference; sorted once complete.
    reference: Vec<f64>,
    reference_ready: bool,
    reference_moments: MomentsAccumulator,
    /// Deduplicated interior bin edges.
    edges: Vec<f64>,
    reference_counts: Vec<u64>,
    /// Current window ring buffer (`ring_next` is the slot to overwrite once full).
    ring: Vec<f64>,
    ring_next: usize,
    current_counts: Vec<u64>,
    current_moments: MomentsAccumulator,
    pushes: u64,
    updates: u64,
    invalid: u64,
    events: u64,
}

impl ReferenceDrift {
    /// A detector that takes the first `reference_size` values as its reference.
    ///
    /// # Errors
    ///
    /// Every problem found by [`ReferenceDriftConfig::validate`].
    pub fn new(config: ReferenceDriftConfig) -> Result<Self, Vec<StatsError>> {
        config.validate()?;
        Ok(ReferenceDrift {
            source: ReferenceSource::FirstValues,
            reference: Vec::with_capacity(config.reference_size),
            reference_ready: false,
            reference_moments: MomentsAccumulator::new(),
            edges: Vec::new(),
            reference_counts: Vec::new(),
            ring: Vec::with_capacity(config.current_size),
            ring_next: 0,
            current_counts: Vec::new(),
            current_moments: MomentsAccumulator::new(),
            pushes: 0,
            updates: 0,
            invalid: 0,
            events: 0,
            config,
        })
    }

    /// A detector whose reference is `reference` (non-finite values are skipped).
    ///
    /// # Errors
    ///
    /// Configuration problems, or an [`StatsError::InvalidConfig`] when `reference` holds no
    /// finite value.
    pub fn with_reference(config: ReferenceDriftConfig, reference: &[f64]) -> Result<Self, Vec<StatsError>> {
        let mut drift = Self::new(config)?;
        drift.reset_reference(reference).map_err(|e| vec![e])?;
        Ok(drift)
    }

    /// Replace the reference (for example when a new champion is promoted, with its training
    /// data). The current window is kept and re-binned against the new reference.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidConfig`] when `values` holds no finite value; the old reference is
    /// then kept.
    pub fn reset_reference(&mut self, values: &[f64]) -> Result<(), StatsError> {
        let reference: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if reference.is_empty() {
            return Err(invalid(COMPONENT, "reference", "the reference sample holds no finite value"));
        }
        self.reference = reference;
        self.source = ReferenceSource::Provided;
        self.finish_reference();
        Ok(())
    }

    /// Sort the reference, derive the bin edges and bin both samples.
    fn finish_reference(&mut self) {
        self.reference.sort_unstable_by(f64::total_cmp);
        let n = self.reference.len();
        let bins = self.config.bins;
        self.edges = (1..bins).map(|i| self.reference[i * n / bins]).collect();
        self.edges.dedup();
        self.reference_counts = vec![0; self.edges.len() + 1];
        self.reference_moments = MomentsAccumulator::new();
        for &x in &self.reference {
            self.reference_counts[bin_of(&self.edges, x)] += 1;
            self.reference_moments.update(x);
        }
        self.current_counts = vec![0; self.edges.len() + 1];
        for &x in &self.ring {
            self.current_counts[bin_of(&self.edges, x)] += 1;
        }
        self.reference_ready = true;
    }

    /// Add one value; every `check_every` values added to the current window, run
    /// [`Self::check`] and return its event, if any. Non-finite values are counted and skipped.
    pub fn update(&mut self, x: f64) -> Option<ReferenceDriftEvent> {
        if !x.is_finite() {
            self.invalid += 1;
            return None;
        }
        self.updates += 1;
        if !self.reference_ready {
            self.reference.push(x);
            if self.reference.len() >= self.config.reference_size {
                self.finish_reference();
            }
            return None;
        }
        let bin = bin_of(&self.edges, x);
        if self.ring.len() < self.config.current_size {
            self.ring.push(x);
        } else {
            let old = std::mem::replace(&mut self.ring[self.ring_next], x);
            self.ring_next = (self.ring_next + 1) % self.ring.len();
            self.current_counts[bin_of(&self.edges, old)] -= 1;
            self.current_moments.retract(old);
        }
        self.current_counts[bin] += 1;
        self.current_moments.update(x);
        self.pushes += 1;
        if self.pushes.is_multiple_of(self.config.check_every) {
            self.check()
        } else {
            None
        }
    }

    fn ready(&self) -> bool {
        self.reference_ready && self.ring.len() == self.config.current_size
    }

    /// Population Stability Index of the current window against the reference; `None` until
    /// the reference is complete and the current window full.
    pub fn psi(&self) -> Option<f64> {
        if !self.ready() {
            return None;
        }
        let (n, m, eps) = (self.reference.len() as f64, self.ring.len() as f64, self.config.epsilon);
        let psi = self
            .reference_counts
            .iter()
            .zip(&self.current_counts)
            .map(|(&r, &c)| {
                let r = (r as f64 / n).max(eps);
                let c = (c as f64 / m).max(eps);
                (c - r) * (c / r).ln()
            })
            .sum();
        Some(psi)
    }

    /// Two-sample KS statistic D between the reference and the current window; `None` until
    /// both are complete. Sorts a copy of the window (O(M log M)).
    pub fn ks(&self) -> Option<f64> {
        if !self.ready() {
            return None;
        }
        let mut current = self.ring.clone();
        current.sort_unstable_by(f64::total_cmp);
        Some(ks_statistic_sorted(&self.reference, &current))
    }

    /// Evaluate PSI and KS now and return an event when either crosses its threshold; `None`
    /// when below both or not ready. A persisting drift raises an event at every check.
    pub fn check(&mut self) -> Option<ReferenceDriftEvent> {
        let psi = self.psi()?;
        let ks = self.ks()?;
        let p = ks_p_value(ks, self.reference.len(), self.ring.len());
        let psi_drift = psi > self.config.psi_threshold;
        let ks_drift = match self.config.ks_p_value {
            Some(alpha) => p < alpha,
            None => ks > self.config.ks_threshold,
        };
        if !(psi_drift || ks_drift) {
            return None;
        }
        self.events += 1;
        Some(ReferenceDriftEvent {
            psi,
            ks,
            ks_p_value: p,
            psi_drift,
            ks_drift,
            at_update: self.updates,
            source: self.source,
            reference_size: self.reference.len(),
            reference_mean: self.reference_moments.mean(),
            current_mean: self.current_moments.mean(),
        })
    }

    /// Where the reference came from.
    pub fn source(&self) -> ReferenceSource {
        self.source
    }

    /// The interior PSI bin edges (empty until the reference is complete).
    pub fn bin_edges(&self) -> &[f64] {
        &self.edges
    }

    /// Drift events raised so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Non-finite values skipped.
    pub fn invalid_values(&self) -> u64 {
        self.invalid
    }

    /// Approximate memory held, in bytes.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + 8 * (self.reference.capacity()
                + self.ring.capacity()
                + self.edges.capacity()
                + self.reference_counts.capacity()
                + self.current_counts.capacity())
    }
}

/// Index of the bin holding `x`: the number of edges `≤ x`.
#[inline]
fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e <= x)
}

/// Exact two-sample KS statistic of two ascending samples (non-empty; returns 0 if either is
/// empty).
pub fn ks_statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    // Once one sample is exhausted its CDF is 1; the other only climbs towards 1 from here, so
    // the gap only shrinks: no further supremum candidates.
    d
}

/// Asymptotic p-value `Q(√(n·m/(n+m)) · d)` of the two-sample KS statistic, where
/// `Q(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}` is the Kolmogorov survival function.
pub fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let en = (n as f64 * m as f64) / (n as f64 + m as f64);
    kolmogorov_sf(en.sqrt() * d)
}

/// Survival function of the Kolmogorov distribution (`scipy.stats.kstwobign.sf`).
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda.is_nan() || lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.0 {
        // The alternating series converges slowly for small λ; use the theta-function form
        // Q = 1 − √(2π)/λ · Σ_{k≥1} exp(−(2k−1)²π²/(8λ²)).
        let t = -std::f64::consts::PI * std::f64::consts::PI / (8.0 * lambda * lambda);
        let s: f64 = (1..=8).map(|k| ((2 * k - 1) as f64).powi(2) * t).map(f64::exp).sum();
        return (1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * s).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        sum += if k % 2 == 1 { term } else { -term };
        if term < 1e-17 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}
