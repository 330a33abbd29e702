//! ADWIN (ADaptive WINdowing), Bifet & Gavaldà 2007, as implemented by River 0.26.1
//! (`river/drift/adwin.py` over its Rust core `rust_src/adwin.rs`, a line port of the former
//! `adwin_c.pyx`) and, in [`AdwinMode::Moa`], by MOA's `ADWIN.java`.
//!
//! The window is summarised by an exponential histogram: row `r` holds up to `max_buckets`
//! buckets of `2^r` values each (sum and variance); when a row reaches `max_buckets + 1` its two
//! oldest buckets merge into one bucket of the next row. Every `clock` updates every boundary
//! between buckets is a candidate cut `W = W0 · W1`; if the means of `W0` (older) and `W1` differ
//! by more than `ε_cut` (computed with the variance of the *whole* window, as River and MOA do),
//! the oldest bucket is dropped and the scan restarts.
//!
//! Performance: rows are fixed-capacity rings preallocated at construction, so updates never
//! allocate. An insertion costs O(1) amortised (a merge cascade of length `r` happens every
//! `2^r`-th update). The clock-gated scan visits O(max_buckets · log width) cut points; each is
//! first screened with a division- and square-root-free bound (the inequality multiplied through
//! by its positive denominators, with a safety margin far above rounding error) and only the
//! rare cut points that the screen cannot rule out are evaluated with River's exact
//! floating-point expression — so the decisions are River's, bit for bit.

use serde::{Deserialize, Serialize};

use super::{
    check_open, out_of_range, DetectorKind, DetectorSnapshot, DriftConfigError, DriftDetector, DriftState,
};

const KIND: &str = "adwin";

/// Rows of the exponential histogram. Row `r` holds buckets of `2^r` values, so 64 rows cover any
/// window a `u64` counter can describe; a row beyond would need more than 2^64 updates.
const MAX_ROWS: usize = 64;

/// Which reference implementation [`AdwinDetector`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdwinMode {
    /// River 0.26: cut allowed when both sub-windows hold at least `min_window_length` values;
    /// the whole detector restarts empty on the update after a detection.
    #[default]
    River,
    /// MOA's `ADWIN.java`: cut allowed when both sub-windows hold more than
    /// `min_window_length + 1` values; after a detection the shrunk window is kept, so the
    /// estimate keeps tracking the new concept without a cold start.
    Moa,
}

/// Parameters of [`AdwinDetector`]; defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdwinConfig {
    /// Significance value δ of the cut test, in (0, 1).
    pub delta: f64,
    /// Check for cuts every `clock` updates (≥ 1). Larger is faster but detects later.
    pub clock: u32,
    /// Maximum number of buckets of each size before merging (≥ 1).
    pub max_buckets: u32,
    /// Minimum length of each sub-window for a cut to be considered.
    pub min_window_length: u32,
    /// No cut test until the window holds more than this many values.
    pub grace_period: u32,
    /// Reference semantics to follow.
    pub mode: AdwinMode,
}

impl Default for AdwinConfig {
    fn default() -> Self {
        Self {
            delta: 0.002,
            clock: 32,
            max_buckets: 5,
            min_window_length: 5,
            grace_period: 10,
            mode: AdwinMode::River,
        }
    }
}

impl DetectorKind for AdwinConfig {
    const KIND: &'static str = KIND;
    type Detector = AdwinDetector;

    fn build(&self) -> Result<AdwinDetector, DriftConfigError> {
        AdwinDetector::new(self.clone())
    }

    /// Check every parameter's range.
    fn validate(&self) -> Result<(), DriftConfigError> {
        check_open(KIND, "delta", self.delta, 0.0, 1.0)?;
        if self.clock == 0 {
            return Err(out_of_range(KIND, "clock", "must be at least 1"));
        }
        // A row needs room for `max_buckets + 1` buckets; 1024 keeps the preallocation sane.
        if self.max_buckets == 0 || self.max_buckets > 1024 {
            return Err(out_of_range(
                KIND,
                "max_buckets",
                format!("must be in 1..=1024, got {}", self.max_buckets),
            ));
        }
        Ok(())
    }
}

/// The ADWIN drift detector. See the [module documentation](self) for the algorithm.
///
/// [`DriftDetector::estimate`] is the mean of the current window; [`AdwinDetector::width`],
/// [`AdwinDetector::total`] and [`AdwinDetector::variance`] describe the window like River's
/// properties of the same names.
///
/// Same example as River's docstring, with the stream built from a seeded generator (eddy has no
/// `random.Random`, so the indices differ from River's 1023):
///
/// ```
/// use eddy_operators::drift::{AdwinConfig, AdwinDetector, DriftDetector};
/// use rand::{Rng, SeedableRng};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12345);
/// let mut stream: Vec<f64> = (0..1000).map(|_| rng.random_range(0..2) as f64).collect();
/// stream.extend((0..1000).map(|_| rng.random_range(4..8) as f64));
///
/// let mut adwin = AdwinDetector::new(AdwinConfig::default()).unwrap();
/// let detections: Vec<usize> = stream
///     .iter()
///     .enumerate()
///     .filter(|&(_, &x)| adwin.update(x).is_drift())
///     .map(|(i, _)| i)
///     .collect();
/// assert_eq!(detections, vec![1023]);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "AdwinState", into = "AdwinState")]
// `repr(C)` with `total` and `variance` kept apart: if they are adjacent, LLVM fuses their
// updates into one 16-byte store, and the next update's `total` then waits for this update's
// two divisions (a false dependency that halves throughput).
#[repr(C)]
pub struct AdwinDetector {
    /// Sum of the window.
    total: f64,
    tick: u64,
    /// Window length.
    width: f64,
    /// Updates left until the next clock-gated scan (`tick % clock == 0`): a countdown is much
    /// cheaper than a 64-bit modulo on every update.
    until_scan: u32,
    /// River mode: the previous update detected a drift, so this one starts from scratch.
    pending_reset: bool,
    detections: u64,
    /// Sum of squared deviations of the window (River's `variance`, not divided by width).
    variance: f64,
    /// Slots per row: `(max_buckets + 1).next_power_of_two()`, so ring indices wrap with a mask.
    cap: usize,
    /// Bucket sums, row-major: row `r`, slot `s` at `r * cap + s`.
    totals: Box<[f64]>,
    /// Bucket variances (sum of squared deviations), same layout.
    variances: Box<[f64]>,
    /// Ring start (oldest bucket) of each row.
    heads: Box<[u32]>,
    /// Number of buckets in each row.
    counts: Box<[u32]>,
    /// Rows in use (River's `len(bucket_deque)`); at least 1.
    n_rows: usize,
    /// `min_window_length` as f64 and the gate derived from it (`n >= gate`).
    min_len: f64,
    gate: f64,
    config: AdwinConfig,
    scratch: ScanScratch,
}

impl AdwinDetector {
    /// Create a detector; fails if the configuration is out of range.
    pub fn new(config: AdwinConfig) -> Result<Self, DriftConfigError> {
        config.validate()?;
        let cap = (config.max_buckets as usize + 1).next_power_of_two();
        let config_clock = config.clock;
        let min_len = f64::from(config.min_window_length);
        let gate = match config.mode {
            AdwinMode::River => min_len,
            // MOA: `n0 > mintMinWinLength + 1`, i.e. `n0 >= mintMinWinLength + 2` for integers.
            AdwinMode::Moa => min_len + 2.0,
        };
        Ok(Self {
            config,
            cap,
            totals: vec![0.0; MAX_ROWS * cap].into_boxed_slice(),
            variances: vec![0.0; MAX_ROWS * cap].into_boxed_slice(),
            heads: vec![0; MAX_ROWS].into_boxed_slice(),
            counts: vec![0; MAX_ROWS].into_boxed_slice(),
            n_rows: 1,
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            tick: 0,
            until_scan: config_clock,
            detections: 0,
            pending_reset: false,
            min_len,
            gate,
            scratch: ScanScratch::new(MAX_ROWS * cap),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AdwinConfig {
        &self.config
    }

    /// Number of values in the current window.
    pub fn width(&self) -> u64 {
        self.width as u64
    }

    /// Sum of the values in the current window.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Sample variance of the window as River reports it (`variance / width`: the population
    /// variance). 0 for an empty window.
    pub fn variance(&self) -> f64 {
        if self.width == 0.0 {
            0.0
        } else {
            self.variance / self.width
        }
    }

    /// Number of buckets currently summarising the window.
    pub fn n_buckets(&self) -> usize {
        self.counts[..self.n_rows].iter().map(|&c| c as usize).sum()
    }

    /// The buckets, oldest first, as `(size, total, variance)`; for tests and debugging.
    pub fn buckets(&self) -> Vec<(u64, f64, f64)> {
        let mut out = Vec::with_capacity(self.n_buckets());
        for r in (0..self.n_rows).rev() {
            for k in 0..self.counts[r] as usize {
                let s = self.slot(r, k);
                out.push((1u64 << r, self.totals[s], self.variances[s]));
            }
        }
        out
    }

    #[inline(always)]
    fn slot(&self, row: usize, k: usize) -> usize {
        row * self.cap + ((self.heads[row] as usize + k) & (self.cap - 1))
    }

    fn clear(&mut self) {
        // Only rows in use can hold data; stale slot contents are never read.
        for r in 0..self.n_rows {
            self.heads[r] = 0;
            self.counts[r] = 0;
        }
        self.n_rows = 1;
        self.total = 0.0;
        self.variance = 0.0;
        self.width = 0.0;
        self.tick = 0;
        self.until_scan = self.config.clock;
        self.pending_reset = false;
    }

    #[inline(always)]
    fn push(&mut self, row: usize, total: f64, variance: f64) {
        let s = self.slot(row, self.counts[row] as usize);
        self.totals[s] = total;
        self.variances[s] = variance;
        self.counts[row] += 1;
    }

    #[inline(always)]
    fn pop_oldest(&mut self, row: usize, n: u32) {
        self.heads[row] = (self.heads[row] + n) & (self.cap as u32 - 1);
        self.counts[row] -= n;
    }

    #[inline(always)]
    fn insert_element(&mut self, value: f64) {
        self.push(0, value, 0.0);
        // River's streaming variance update, in River's operation order.
        self.width += 1.0;
        let mut inc = 0.0;
        if self.width > 1.0 {
            let d = value - self.total / (self.width - 1.0);
            inc = (self.width - 1.0) * d * d / self.width;
        }
        self.variance += inc;
        self.total += value;
        if self.counts[0] > self.config.max_buckets {
            self.compress_buckets();
        }
    }

    /// Merge the two oldest buckets of every full row into the next row.
    fn compress_buckets(&mut self) {
        let full = self.config.max_buckets + 1;
        let mut idx = 0;
        while self.counts[idx] == full {
            let n1 = (1u64 << idx) as f64;
            // `t / 2^idx` is exact, so multiplying by the exact reciprocal gives the same bits
            // as River's division, without the division's latency.
            let inv_n1 = 1.0 / n1;
            let (s0, s1) = (self.slot(idx, 0), self.slot(idx, 1));
            let (t0, t1) = (self.totals[s0], self.totals[s1]);
            let (v0, v1) = (self.variances[s0], self.variances[s1]);
            let mu1 = t0 * inv_n1;
            let mu2 = t1 * inv_n1;
            let temp = match self.config.mode {
                AdwinMode::River => n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2),
                // MOA: n1 * n2 * (u1 - u2)^2 / (n1 + n2), with n1 == n2.
                AdwinMode::Moa => n1 * n1 * (mu1 - mu2) * (mu1 - mu2) / (n1 + n1),
            };
            let v12 = v0 + v1 + temp;
            if idx + 1 == MAX_ROWS {
                // Unreachable in practice (needs > 2^64 values); keep the row over-full rather
                // than index out of bounds.
                return;
            }
            if idx + 1 >= self.n_rows {
                self.heads[idx + 1] = 0;
                self.counts[idx + 1] = 0;
                self.n_rows = idx + 2;
            }
            self.push(idx + 1, t0 + t1, v12);
            self.pop_oldest(idx, 2);
            idx += 1;
        }
    }

    /// Drop the oldest bucket (River's `delete_element`).
    fn delete_element(&mut self) {
        let last = self.n_rows - 1;
        let n = (1u64 << last) as f64;
        let s = self.slot(last, 0);
        let (u, v) = (self.totals[s], self.variances[s]);
        let mu = u / n;
        self.width -= n;
        self.total -= u;
        let mu_window = self.total / self.width;
        let inc = v + n * self.width * (mu - mu_window) * (mu - mu_window) / (n + self.width);
        self.variance -= inc;
        self.pop_oldest(last, 1);
        if self.counts[last] == 0 && last > 0 {
            self.n_rows -= 1;
        }
    }

    /// River's `_evaluate_cut` on this window.
    #[cfg(test)]
    fn exact_cut(&self, n0: f64, n1: f64, u0: f64, u1: f64) -> bool {
        exact_cut(self.width, self.variance, self.config.delta, self.min_len, n0, n1, u0, u1)
    }

    /// One pass over all cut points, oldest first; `true` at the first cut River would make.
    /// One pass over all cut points, oldest first; `true` at the first cut River would make.
    #[inline(never)]
    fn find_cut(&mut self) -> bool {
        // Pass 1: River's running sums at every bucket boundary, in River's order (these exact
        // values feed the exact test). The newest bucket is never a cut point.
        let mut len = 0usize;
        {
            let mask = self.cap - 1;
            let sc = &mut self.scratch;
            let (mut n0, mut n1, mut u0, mut u1) = (0.0_f64, self.width, 0.0_f64, self.total);
            for idx in (0..self.n_rows).rev() {
                let size = (1u64 << idx) as f64;
                let count = self.counts[idx] as usize;
                let head = self.heads[idx] as usize;
                let row = &self.totals[idx * self.cap..(idx + 1) * self.cap];
                for k in 0..count {
                    n0 += size;
                    n1 -= size;
                    let t = row[(head + k) & mask];
                    u0 += t;
                    u1 -= t;
                    sc.n0[len] = n0;
                    sc.n1[len] = n1;
                    sc.u0[len] = u0;
                    sc.u1[len] = u1;
                    len += 1;
                }
            }
            len = len.saturating_sub(1);
        }

        let delta_prime = (2.0 * self.width.ln() / self.config.delta).ln();
        let vw = self.variance / self.width;
        // The screen is only valid when both terms of ε are non-negative and finite and the
        // `n - min_len + 1` denominators are ≥ 1 (guaranteed by the gate when min_len ≥ 1).
        let screen = delta_prime.is_finite()
            && delta_prime >= 0.0
            && vw.is_finite()
            && vw >= 0.0
            && self.min_len >= 1.0;
        let gate = self.gate;
        let sc = &mut self.scratch;
        if screen {
            // Pass 2 (branch-free, vectorisable): rule out cut points that cannot pass River's
            // test. |dm| > sqrt(2·m·vw·dp) + (2/3)·dp·m with dm = D/(n0·n1), D = u0·n1 − u1·n0,
            // m = (a + b)/(a·b), a = n0 − c, b = n1 − c, c = min_len − 1, a + b = width − 2c.
            // Multiplying through by n0·n1·a·b (all ≥ 1 past the gate):
            //   |D|·a·b > sqrt(2·vw·dp·(a+b)·a·b)·n0·n1 + (2/3)·dp·(a+b)·n0·n1.
            // `lin` and `quad` carry safety factors (1 − 1e-9, 1 − 3e-9) that dwarf f64
            // rounding, and `err` bounds the cancellation error of River's `u0/n0 − u1/n1`.
            // Anything not ruled out (NaN included) goes to the exact test.
            let c = self.min_len - 1.0;
            let s = self.width - 2.0 * c;
            let lin = 2.0 / 3.0 * delta_prime * (1.0 - 1e-9) * s;
            let quad = 2.0 * vw * delta_prime * (1.0 - 3e-9) * s;
            let (n0s, n1s, u0s, u1s) = (&sc.n0[..len], &sc.n1[..len], &sc.u0[..len], &sc.u1[..len]);
            for (i, flag) in sc.maybe[..len].iter_mut().enumerate() {
                let (n0, n1, u0, u1) = (n0s[i], n1s[i], u0s[i], u1s[i]);
                let ab = (n0 - c) * (n1 - c);
                let nn = n0 * n1;
                let d = (u0 * n1 - u1 * n0).abs() + 1e-14 * (u0.abs() * n1 + u1.abs() * n0);
                let r = d * ab - lin * nn;
                let ruled_out = r <= 0.0 || r * r < quad * ab * nn * nn;
                *flag = u8::from(!ruled_out);
            }
        } else {
            sc.maybe[..len].fill(1);
        }
        // Pass 3: River's exact test, in order, where the screen could not decide.
        for i in 0..len {
            if sc.maybe[i] != 0 {
                let (n0, n1) = (sc.n0[i], sc.n1[i]);
                if n1 >= gate
                    && n0 >= gate
                    && exact_cut(
                        self.width,
                        self.variance,
                        self.config.delta,
                        self.min_len,
                        n0,
                        n1,
                        sc.u0[i],
                        sc.u1[i],
                    )
                {
                    return true;
                }
            }
        }
        false
    }

    #[inline]
    fn detect_change(&mut self) -> bool {
        self.tick += 1;
        self.until_scan -= 1;
        if self.until_scan != 0 {
            return false;
        }
        self.until_scan = self.config.clock;
        let mut change = false;
        if self.width > f64::from(self.config.grace_period) {
            while self.find_cut() {
                change = true;
                if self.width > 0.0 {
                    self.delete_element();
                } else {
                    break;
                }
            }
        }
        change
    }
}

impl DriftDetector for AdwinDetector {
    #[inline]
    fn update(&mut self, x: f64) -> DriftState {
        if self.pending_reset {
            self.clear();
        }
        self.insert_element(x);
        if self.detect_change() {
            self.detections += 1;
            if self.config.mode == AdwinMode::River {
                self.pending_reset = true;
            }
            DriftState::Drift
        } else {
            DriftState::None
        }
    }

    fn reset(&mut self) {
        self.clear();
        self.detections = 0;
    }

    /// Mean of the current window (0 when empty), as River's `estimation`.
    fn estimate(&self) -> f64 {
        if self.width == 0.0 {
            0.0
        } else {
            self.total / self.width
        }
    }

    fn detections(&self) -> u64 {
        self.detections
    }

    fn name(&self) -> &'static str {
        KIND
    }

    fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot::Adwin(self.clone())
    }

    fn box_clone(&self) -> Box<dyn DriftDetector> {
        Box::new(self.clone())
    }

    fn window_width(&self) -> Option<u64> {
        Some(self.width())
    }
}

/// River's `_evaluate_cut`, verbatim arithmetic.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn exact_cut(
    width: f64,
    variance: f64,
    delta: f64,
    min_len: f64,
    n0: f64,
    n1: f64,
    u0: f64,
    u1: f64,
) -> bool {
    let delta_mean = (u0 / n0) - (u1 / n1);
    let delta_prime = (2.0 * width.ln() / delta).ln();
    let m_recip = 1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0);
    let epsilon =
        (2.0 * m_recip * (variance / width) * delta_prime).sqrt() + 2.0 / 3.0 * delta_prime * m_recip;
    delta_mean.abs() > epsilon
}

/// Per-scan working arrays (one entry per bucket), preallocated so scans do not allocate.
#[derive(Debug, Clone)]
struct ScanScratch {
    n0: Box<[f64]>,
    n1: Box<[f64]>,
    u0: Box<[f64]>,
    u1: Box<[f64]>,
    maybe: Box<[u8]>,
}

impl ScanScratch {
    fn new(buckets: usize) -> Self {
        let z = || vec![0.0; buckets].into_boxed_slice();
        Self { n0: z(), n1: z(), u0: z(), u1: z(), maybe: vec![0; buckets].into_boxed_slice() }
    }
}

/// Equality of the logical state (configuration, buckets, statistics), not of ring offsets or
/// stale slots.
impl PartialEq for AdwinDetector {
    fn eq(&self, other: &Self) -> bool {
        AdwinState::from(self.clone()) == AdwinState::from(other.clone())
    }
}

/// Serialised form of [`AdwinDetector`]: only the live buckets, oldest row last as in River.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdwinState {
    config: AdwinConfig,
    /// `rows[r]` = buckets of size `2^r`, oldest first, as `(total, variance)`.
    rows: Vec<Vec<(f64, f64)>>,
    total: f64,
    variance: f64,
    width: f64,
    tick: u64,
    detections: u64,
    pending_reset: bool,
}

impl From<AdwinDetector> for AdwinState {
    fn from(d: AdwinDetector) -> Self {
        let rows = (0..d.n_rows)
            .map(|r| {
                (0..d.counts[r] as usize)
                    .map(|k| {
                        let s = d.slot(r, k);
                        (d.totals[s], d.variances[s])
                    })
                    .collect()
            })
            .collect();
        AdwinState {
            config: d.config,
            rows,
            total: d.total,
            variance: d.variance,
            width: d.width,
            tick: d.tick,
            detections: d.detections,
            pending_reset: d.pending_reset,
        }
    }
}

/// A checkpointed ADWIN state that cannot be an ADWIN detector (corrupt or hand-edited).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdwinStateError(String);

impl TryFrom<AdwinState> for AdwinDetector {
    type Error = AdwinStateError;

    fn try_from(s: AdwinState) -> Result<Self, AdwinStateError> {
        let mut d = AdwinDetector::new(s.config).map_err(|e| AdwinStateError(e.to_string()))?;
        if s.rows.is_empty() || s.rows.len() > MAX_ROWS {
            return Err(AdwinStateError(format!("ADWIN snapshot must have 1..={MAX_ROWS} bucket rows")));
        }
        let mut width = 0.0;
        for (r, row) in s.rows.iter().enumerate() {
            if row.len() > d.config.max_buckets as usize {
                return Err(AdwinStateError(format!(
                    "ADWIN snapshot row {r} holds {} buckets, more than max_buckets",
                    row.len()
                )));
            }
            for &(t, v) in row {
                d.push(r, t, v);
                width += (1u64 << r) as f64;
            }
        }
        if width != s.width {
            return Err(AdwinStateError(format!(
                "ADWIN snapshot width {} disagrees with its buckets ({width})",
                s.width
            )));
        }
        d.n_rows = s.rows.len();
        d.total = s.total;
        d.variance = s.variance;
        d.width = s.width;
        d.tick = s.tick;
        d.until_scan = d.config.clock - (s.tick % u64::from(d.config.clock)) as u32;
        d.detections = s.detections;
        d.pending_reset = s.pending_reset;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn adwin(f: impl FnOnce(&mut AdwinConfig)) -> AdwinDetector {
        let mut c = AdwinConfig::default();
        f(&mut c);
        AdwinDetector::new(c).unwrap()
    }

    fn check_invariants(d: &AdwinDetector) {
        let mb = d.config.max_buckets;
        let mut width = 0u64;
        let mut total = 0.0;
        for r in 0..d.n_rows {
            assert!(d.counts[r] <= mb, "row {r} holds {} > max_buckets", d.counts[r]);
            width += u64::from(d.counts[r]) << r;
            for k in 0..d.counts[r] as usize {
                total += d.totals[d.slot(r, k)];
            }
        }
        if d.n_rows > 1 {
            assert!(d.counts[d.n_rows - 1] > 0, "trailing row is empty");
        }
        assert_eq!(width as f64, d.width);
        assert!((total - d.total).abs() <= 1e-9 * (1.0 + total.abs().max(d.total.abs())));
    }

    #[test]
    fn first_update_and_constant_stream() {
        let mut d = adwin(|_| {});
        assert_eq!(d.update(1.0), DriftState::None);
        assert_eq!((d.width(), d.total(), d.variance()), (1, 1.0, 0.0));
        for i in 2..=5000u64 {
            assert_eq!(d.update(1.0), DriftState::None);
            assert_eq!(d.width(), i);
        }
        assert_eq!(d.detections(), 0);
        assert_eq!(d.estimate(), 1.0);
        check_invariants(&d);
    }

    #[test]
    fn variance_of_short_sequence() {
        let mut d = adwin(|_| {});
        for v in [1.0, 2.0, 3.0, 4.0, 5.0] {
            d.update(v);
        }
        assert_eq!(d.total(), 15.0);
        assert!((d.variance() - 2.0).abs() < 1e-12);
    }

    #[test]
    fn detects_large_shift_and_resets_river_style() {
        let mut d = adwin(|c| c.delta = 0.01);
        for _ in 0..200 {
            assert_eq!(d.update(0.0), DriftState::None);
        }
        let mut at = None;
        for i in 0..200 {
            if d.update(100.0).is_drift() {
                at = Some(i);
                break;
            }
        }
        assert!(at.is_some());
        assert_eq!(d.detections(), 1);
        // the shrunk window is visible until the next update, which starts from scratch
        assert!(d.width() < 400);
        d.update(100.0);
        assert_eq!(d.width(), 1);
        assert_eq!(d.detections(), 1);
        d.reset();
        assert_eq!((d.width(), d.detections()), (0, 0));
    }

    #[test]
    fn moa_mode_keeps_the_window() {
        let mut d = adwin(|c| c.mode = AdwinMode::Moa);
        for _ in 0..500 {
            d.update(0.0);
        }
        let mut hit = false;
        for _ in 0..200 {
            hit |= d.update(10.0).is_drift();
        }
        assert!(hit);
        assert!(d.width() > 100, "MOA keeps the post-cut window, got {}", d.width());
        assert!(d.estimate() > 5.0);
        check_invariants(&d);
    }

    #[test]
    fn screen_never_changes_a_decision() {
        // Compare the screened scan with an unscreened one on noisy data near the threshold.
        let mut x = 1u64;
        let mut d = adwin(|c| c.clock = 1);
        for i in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = u + if (i / 1500) % 2 == 0 { 0.0 } else { 0.08 };
            d.insert_element(v);
            let screened = d.find_cut();
            assert_eq!(screened, unscreened_find_cut(&d));
            if screened {
                d.delete_element();
            }
            d.tick += 1;
        }
    }

    /// River's scan without the screen.
    fn unscreened_find_cut(d: &AdwinDetector) -> bool {
        let (mut n0, mut n1, mut u0, mut u1) = (0.0, d.width, 0.0, d.total);
        for idx in (0..d.n_rows).rev() {
            let size = (1u64 << idx) as f64;
            let count = d.counts[idx] as usize;
            for k in 0..count {
                n0 += size;
                n1 -= size;
                let t = d.totals[d.slot(idx, k)];
                u0 += t;
                u1 -= t;
                if idx == 0 && k == count - 1 {
                    return false;
                }
                if n1 >= d.gate && n0 >= d.gate && d.exact_cut(n0, n1, u0, u1) {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn snapshot_validation() {
        let mut d = adwin(|_| {});
        for i in 0..1000 {
            d.update(f64::from(i % 7));
        }
        let state = AdwinState::from(d.clone());
        assert_eq!(AdwinDetector::try_from(state.clone()).unwrap(), d);
        let mut bad = state.clone();
        bad.width += 1.0;
        assert!(AdwinDetector::try_from(bad).is_err());
        let mut bad = state;
        bad.rows[0] = vec![(0.0, 0.0); 9];
        assert!(AdwinDetector::try_from(bad).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn window_invariants(
            values in proptest::collection::vec(prop_oneof![Just(0.0), Just(1.0), -5.0..5.0f64], 1..3000),
            clock in 1u32..40,
            max_buckets in 1u32..8,
            moa in any::<bool>(),
        ) {
            let mut d = adwin(|c| {
                c.clock = clock;
                c.max_buckets = max_buckets;
                c.mode = if moa { AdwinMode::Moa } else { AdwinMode::River };
            });
            let mut since_reset = 0u64;
            let mut history: Vec<f64> = Vec::new();
            for &v in &values {
                if d.pending_reset {
                    since_reset = 0;
                    history.clear();
                }
                let state = d.update(v);
                since_reset += 1;
                history.push(v);
                prop_assert!(d.width() <= since_reset);
                check_invariants(&d);
                if state == DriftState::None && d.width() == since_reset {
                    // no cut since the last reset: the estimate is the mean of the whole history
                    let w = d.width() as usize;
                    let mean = history[history.len() - w..].iter().sum::<f64>() / w as f64;
                    prop_assert!((d.estimate() - mean).abs() <= 1e-9 * (1.0 + mean.abs()),
                        "estimate {} vs mean {}", d.estimate(), mean);
                }
            }
        }

        #[test]
        fn estimate_is_mean_of_last_width_values(
            values in proptest::collection::vec(prop_oneof![-100.0..100.0f64, 50.0..300.0f64], 1..2000),
            moa in any::<bool>(),
        ) {
            // Cuts only ever drop the oldest buckets, so the window is exactly the last `width`
            // values: always in MOA mode, and until the first detection in River mode.
            let mut d = adwin(|c| if moa { c.mode = AdwinMode::Moa });
            for (i, &v) in values.iter().enumerate() {
                if d.update(v).is_drift() && !moa {
                    break;
                }
                let w = d.width() as usize;
                prop_assert!(w <= i + 1);
                let mean = values[i + 1 - w..=i].iter().sum::<f64>() / w as f64;
                prop_assert!((d.estimate() - mean).abs() <= 1e-9 * (1.0 + mean.abs()));
            }
        }
    }
}
