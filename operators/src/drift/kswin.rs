//! KSWIN (Kolmogorov-Smirnov WINdowing), Raab et al. 2020, as River 0.26.1's `drift.KSWIN`.
//!
//! A sliding window of `window_size` values is kept; its newest `stat_size` values `R` are
//! compared with `stat_size` values `W` drawn uniformly without replacement from the older part
//! of the window, with a two-sample Kolmogorov-Smirnov test. A drift is signalled when the test's
//! p-value is at most `alpha` and the KS statistic exceeds 0.1.
//!
//! For exact parity with River, the sampling reproduces CPython's `random.Random(seed)`
//! (MT19937 seeded with `init_by_array`, `getrandbits`-based `_randbelow` and the two strategies
//! of `random.sample`), and the p-value reproduces SciPy's `ks_2samp(method="auto")` for equal
//! sample sizes (the exact `_compute_prob_outside_square` recursion). Where SciPy falls back to
//! its asymptotic distribution (samples over 10 000 values, or an exact result rounding above 1,
//! which only happens for p ≈ 1) this port uses the Kolmogorov limit distribution instead, so
//! p-values there can differ slightly from SciPy's; decisions at usual `alpha` do not.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{
    check_open, out_of_range, DetectorKind, DetectorSnapshot, DriftConfigError, DriftDetector, DriftState,
};

const KIND: &str = "kswin";

/// Parameters of [`KswinDetector`]; defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KswinConfig {
    /// Significance level of the KS test, in (0, 1).
    pub alpha: f64,
    /// Size of the sliding window.
    pub window_size: u32,
    /// Size of the statistic windows (`2 * stat_size <= window_size`).
    pub stat_size: u32,
    /// Seed of the sampler. `None` (River's default) seeds from the system clock, so runs are not
    /// reproducible; set it for reproducible detections. Written as an integer, or `"none"`
    /// (so that `eddy detect kswin --param seed=none` states the default explicitly).
    #[serde(deserialize_with = "seed_or_none")]
    pub seed: Option<u64>,
}

/// Deserialises [`KswinConfig::seed`]: an integer, nothing/null, or the string `"none"`.
fn seed_or_none<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct SeedVisitor;
    impl<'de> serde::de::Visitor<'de> for SeedVisitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer seed or \"none\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v).map(Some).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() || v.trim().eq_ignore_ascii_case("none") {
                Ok(None)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    deserializer.deserialize_option(SeedVisitor)
}

impl Default for KswinConfig {
    fn default() -> Self {
        Self { alpha: 0.005, window_size: 100, stat_size: 30, seed: None }
    }
}

impl DetectorKind for KswinConfig {
    const KIND: &'static str = KIND;
    type Detector = KswinDetector;

    fn build(&self) -> Result<KswinDetector, DriftConfigError> {
        KswinDetector::new(self.clone())
    }

    /// Check every parameter's range.
    fn validate(&self) -> Result<(), DriftConfigError> {
        check_open(KIND, "alpha", self.alpha, 0.0, 1.0)?;
        if self.stat_size == 0 {
            return Err(out_of_range(KIND, "stat_size", "must be at least 1"));
        }
        // River only requires stat_size <= window_size, but then `random.sample` fails at the
        // first test whenever window_size - stat_size < stat_size; reject that up front.
        if u64::from(self.window_size) < 2 * u64::from(self.stat_size) {
            return Err(out_of_range(
                KIND,
                "window_size",
                format!(
                    "must be at least 2 * stat_size ({}), got {}",
                    2 * u64::from(self.stat_size),
                    self.window_size
                ),
            ));
        }
        if self.window_size > 10_000_000 {
            return Err(out_of_range(KIND, "window_size", "must be at most 10000000"));
        }
        Ok(())
    }
}

/// The KSWIN detector. [`DriftDetector::estimate`] is the KS statistic of the last test (0 before
/// the window first fills); [`KswinDetector::p_value`] its p-value. Restarts (empty window,
/// sampler reseeded) on the update after a drift, as River does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KswinDetector {
    config: KswinConfig,
    /// Seed in use: `config.seed`, or the one drawn for `seed: None`.
    seed: u64,
    window: VecDeque<f64>,
    rng: Mt19937,
    p_value: f64,
    statistic: f64,
    n: u64,
    drift: bool,
    detections: u64,
    #[serde(skip)]
    scratch: Scratch,
}

/// Reused buffers so that updates do not allocate.
#[derive(Debug, Clone, Default)]
struct Scratch {
    pool: Vec<u32>,
    selected: Vec<bool>,
    sample: Vec<f64>,
    recent: Vec<f64>,
}

impl PartialEq for Scratch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl KswinDetector {
    /// Create a detector; fails if the configuration is out of range.
    pub fn new(config: KswinConfig) -> Result<Self, DriftConfigError> {
        config.validate()?;
        let seed = config.seed.unwrap_or_else(clock_seed);
        let window = VecDeque::with_capacity(config.window_size as usize);
        let mut d = Self {
            rng: Mt19937::from_python_seed(seed),
            seed,
            window,
            config,
            p_value: 0.0,
            statistic: 0.0,
            n: 0,
            drift: false,
            detections: 0,
            scratch: Scratch::default(),
        };
        d.ensure_scratch();
        Ok(d)
    }

    /// The configuration.
    pub fn config(&self) -> &KswinConfig {
        &self.config
    }

    /// p-value of the last KS test (0 before the first one, as River).
    pub fn p_value(&self) -> f64 {
        self.p_value
    }

    /// Number of values currently in the window.
    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    fn ensure_scratch(&mut self) {
        let older = (self.config.window_size - self.config.stat_size) as usize;
        let r = self.config.stat_size as usize;
        let s = &mut self.scratch;
        if s.pool.len() != older {
            s.pool = vec![0; older];
            s.selected = vec![false; older];
            s.sample = Vec::with_capacity(r);
            s.recent = Vec::with_capacity(r);
        }
    }

    fn restart(&mut self) {
        if self.config.seed.is_none() {
            self.seed = clock_seed();
        }
        self.rng = Mt19937::from_python_seed(self.seed);
        self.window.clear();
        self.p_value = 0.0;
        self.statistic = 0.0;
        self.n = 0;
        self.drift = false;
    }

    /// `random.sample(range(older), r)` into `scratch.sample` (as window values).
    fn draw_sample(&mut self) {
        let n = (self.config.window_size - self.config.stat_size) as usize;
        let k = self.config.stat_size as usize;
        let s = &mut self.scratch;
        s.sample.clear();
        let mut setsize = 21usize;
        if k > 5 {
            let e = ((k * 3) as f64).ln() / 4f64.ln();
            setsize += 4usize.saturating_pow(e.ceil() as u32);
        }
        if n <= setsize {
            for (i, p) in s.pool.iter_mut().enumerate() {
                *p = i as u32;
            }
            for i in 0..k {
                let j = self.rng.randbelow((n - i) as u32) as usize;
                s.sample.push(self.window[s.pool[j] as usize]);
                s.pool[j] = s.pool[n - i - 1];
            }
        } else {
            s.selected.fill(false);
            for _ in 0..k {
                let mut j = self.rng.randbelow(n as u32) as usize;
                while s.selected[j] {
                    j = self.rng.randbelow(n as u32) as usize;
                }
                s.selected[j] = true;
                s.sample.push(self.window[j]);
            }
        }
    }
}

impl DriftDetector for KswinDetector {
    fn update(&mut self, x: f64) -> DriftState {
        if self.drift {
            self.restart();
        }
        self.ensure_scratch();
        self.n += 1;
        let ws = self.config.window_size as usize;
        if self.window.len() == ws {
            self.window.pop_front();
        }
        self.window.push_back(x);
        if self.window.len() < ws {
            self.drift = false;
            return DriftState::None;
        }
        self.draw_sample();
        let r = self.config.stat_size as usize;
        let s = &mut self.scratch;
        s.recent.clear();
        s.recent.extend(self.window.range(ws - r..));
        let (st, p) = ks_2samp_equal(&mut s.sample, &mut s.recent);
        self.statistic = st;
        self.p_value = p;
        if p <= self.config.alpha && st > 0.1 {
            self.drift = true;
            // River keeps only the recent values; the restart on the next update empties it anyway.
            self.window.drain(..ws - r);
            self.detections += 1;
            DriftState::Drift
        } else {
            self.drift = false;
            DriftState::None
        }
    }

    fn reset(&mut self) {
        self.restart();
        self.detections = 0;
    }

    fn estimate(&self) -> f64 {
        self.statistic
    }

    fn detections(&self) -> u64 {
        self.detections
    }

    fn name(&self) -> &'static str {
        KIND
    }

    fn snapshot(&self) -> DetectorSnapshot {
        DetectorSnapshot::Kswin(self.clone())
    }

    fn box_clone(&self) -> Box<dyn DriftDetector> {
        Box::new(self.clone())
    }

    fn window_width(&self) -> Option<u64> {
        Some(self.window_len() as u64)
    }
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64 finaliser, so close clock readings give unrelated seeds
    let mut z = nanos.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SciPy's two-sided `ks_2samp(a, b, method="auto")` for `a.len() == b.len()`:
/// `(statistic, p-value)`. Sorts its inputs in place.
pub(crate) fn ks_2samp_equal(a: &mut [f64], b: &mut [f64]) -> (f64, f64) {
    debug_assert_eq!(a.len(), b.len());
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    let (n1, n2) = (a.len(), b.len());
    let (f1, f2) = (n1 as f64, n2 as f64);
    // cdf differences at every data point (searchsorted side='right'), as SciPy evaluates them
    let (mut i, mut j) = (0usize, 0usize);
    let (mut max_d, mut min_d) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < n1 || j < n2 {
        let v = if j >= n2 || (i < n1 && a[i] <= b[j]) { a[i] } else { b[j] };
        while i < n1 && a[i] <= v {
            i += 1;
        }
        while j < n2 && b[j] <= v {
            j += 1;
        }
        let diff = i as f64 / f1 - j as f64 / f2;
        max_d = max_d.max(diff);
        min_d = min_d.min(diff);
    }
    let min_s = (-min_d).clamp(0.0, 1.0);
    let d = if min_s > max_d { min_s } else { max_d };
    let n = n1 as u64; // gcd = n, lcm = n
    if n <= 10_000 {
        let h = (d * n as f64).round_ties_even() as u64;
        let st = h as f64 * 1.0 / n as f64;
        if h == 0 {
            return (st, 1.0);
        }
        let p = prob_outside_square(n, h);
        if (0.0..=1.0).contains(&p) {
            return (st, p);
        }
        return (st, kolmogorov_sf(st, (n as f64 / 2.0).round_ties_even()));
    }
    (d, kolmogorov_sf(d, (f1 * f2 / (f1 + f2)).round_ties_even()))
}

/// SciPy's `_compute_prob_outside_square(n, h)`: P(D_{n,n} >= h/n), Horner-like evaluation.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0_f64;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0_f64;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Asymptotic fallback: Kolmogorov's limit distribution with Stephens' small-sample correction,
/// `Q((sqrt(en) + 0.12 + 0.11/sqrt(en)) d)`. SciPy uses the exact one-sample `kstwo` here.
fn kolmogorov_sf(d: f64, en: f64) -> f64 {
    let s = en.sqrt();
    let lambda = (s + 0.12 + 0.11 / s) * d;
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let kf = f64::from(k);
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        sum += sign * term;
        if term < 1e-16 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// CPython's Mersenne Twister (`_randommodule.c`), enough of it to replay `random.Random(seed)`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct Mt19937 {
    mt: Vec<u32>,
    index: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937").field("index", &self.index).finish_non_exhaustive()
    }
}

const MT_N: usize = 624;
const MT_M: usize = 397;

impl Mt19937 {
    /// `random.Random(seed)` for a non-negative integer seed: `init_by_array` over the seed's
    /// 32-bit words, least significant first.
    fn from_python_seed(seed: u64) -> Self {
        let lo = seed as u32;
        let hi = (seed >> 32) as u32;
        if hi == 0 {
            Self::init_by_array(&[lo])
        } else {
            Self::init_by_array(&[lo, hi])
        }
    }

    fn init_genrand(s: u32) -> Self {
        let mut mt = vec![0u32; MT_N];
        mt[0] = s;
        for i in 1..MT_N {
            mt[i] = 1_812_433_253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        Self { mt, index: MT_N }
    }

    fn init_by_array(key: &[u32]) -> Self {
        let mut g = Self::init_genrand(19_650_218);
        let mt = &mut g.mt;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..MT_N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= MT_N {
                mt[0] = mt[MT_N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..MT_N - 1 {
            mt[i] =
                (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= MT_N {
                mt[0] = mt[MT_N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        g
    }

    fn next_u32(&mut self) -> u32 {
        const MAG01: [u32; 2] = [0, 0x9908_b0df];
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        if self.index >= MT_N {
            let mt = &mut self.mt;
            for kk in 0..MT_N {
                let y = (mt[kk] & UPPER) | (mt[(kk + 1) % MT_N] & LOWER);
                mt[kk] = mt[(kk + MT_M) % MT_N] ^ (y >> 1) ^ MAG01[(y & 1) as usize];
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `Random._randbelow_with_getrandbits(n)` for `0 < n < 2^32`.
    fn randbelow(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        let k = 32 - n.leading_zeros(); // n.bit_length()
        loop {
            let r = self.next_u32() >> (32 - k);
            if r < n {
                return r;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt_matches_cpython() {
        // python3 -c "import random; r=random.Random(42); print([r.getrandbits(32) for _ in range(3)])"
        let mut r = Mt19937::from_python_seed(42);
        assert_eq!([r.next_u32(), r.next_u32(), r.next_u32()], [2746317213, 478163327, 107420369]);
        // python3 -c "import random; r=random.Random(2**40+5); print(r.getrandbits(32))"
        let mut r = Mt19937::from_python_seed((1 << 40) + 5);
        assert_eq!(r.next_u32(), PY_SEED_2_40_PLUS_5);
    }

    const PY_SEED_2_40_PLUS_5: u32 = 2166296868;

    #[test]
    fn ks_matches_scipy() {
        // scipy.stats.ks_2samp([1..=5], [3..=7]) -> statistic 0.4, pvalue 0.873015873015873
        let mut a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut b = [7.0, 6.0, 5.0, 4.0, 3.0];
        let (st, p) = ks_2samp_equal(&mut a, &mut b);
        assert_eq!(st, 0.4);
        assert!((p - 0.873015873015873).abs() < 1e-15, "{p}");
    }

    #[test]
    fn detects_shift_and_is_quiet_on_stationary_data() {
        use rand::{Rng, SeedableRng};
        let (mut false_alarms, mut prompt_runs) = (0, 0);
        for seed in 0..20u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut d = KswinDetector::new(KswinConfig { seed: Some(seed), ..Default::default() }).unwrap();
            let mut before = 0;
            let mut prompt = false;
            for i in 0..1100 {
                let x: f64 = rng.random::<f64>() + if i >= 1000 { 1.0 } else { 0.0 };
                if d.update(x).is_drift() {
                    if i < 1000 {
                        before += 1;
                    } else {
                        prompt = true;
                    }
                }
            }
            false_alarms += before;
            prompt_runs += usize::from(prompt);
        }
        // a false alarm just before the shift can hide it (the window restarts empty), hence 18
        assert!(prompt_runs >= 18, "only {prompt_runs} of 20 runs saw the shift within 100 values");
        // River's defaults test at every update with alpha = 0.005, so a few false alarms per
        // thousand stationary values are expected (River's own fixtures show 3-4 per 3000).
        assert!(false_alarms <= 40, "{false_alarms} false alarms in 20 x 1000 stationary values");
    }
}
