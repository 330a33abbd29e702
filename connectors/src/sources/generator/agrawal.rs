//! Agrawal loan-applicant stream (Agrawal, Imielinski & Swami, 1993), following River's
//! `synth.Agrawal`: nine mixed numeric/categorical attributes and ten labelling functions,
//! switched abruptly or gradually at configured points of the stream.
//!
//! It complements SEA and the hyperplane with categorical fields and with concepts that use
//! different attributes, so a drift can make a previously irrelevant feature decisive.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ConceptError;

use super::concept::{ConceptStream, GenFieldKind, GenValue};

/// Number of Agrawal classification functions (0-based `0..=9`).
pub const AGRAWAL_FUNCTIONS: u8 = 10;

/// Configuration of the [`AgrawalStream`].
///
/// The stream is split at `drift_at` into `drift_at.len() + 1` segments, and segment `i` is
/// labelled by function `functions[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgrawalConfig {
    /// Agrawal classification functions (`0..=9`) used in turn; one more entry than
    /// `drift_at`.
    pub functions: Vec<u8>,
    /// Fractions of the stream, strictly increasing in `(0, 1)`, at which the concept moves to
    /// the next entry of `functions` (the centre of the switch when it is gradual).
    pub drift_at: Vec<f64>,
    /// Fraction of the stream over which each switch is spread; 0 makes it abrupt. The window
    /// is centred on the drift point and the chance of drawing from the new function rises
    /// linearly across it. Windows must not overlap.
    pub width: f64,
    /// Feature noise in `[0, 1]`: numeric attributes are shifted by up to this fraction of
    /// their range after the label is computed, as in River.
    pub perturbation: f64,
    /// Alternate the classes (1, 0, 1, ...) by rejection sampling, as in River.
    pub balance_classes: bool,
    /// Length, in examples, that `drift_at` and `width` fractions refer to when the stream is
    /// unbounded. The schedule then repeats every `period` examples (the concept jumps back
    /// to `functions[0]` at each multiple), so an endless stream keeps drifting. Ignored when
    /// the stream length is known.
    pub period: u64,
}

impl Default for AgrawalConfig {
    fn default() -> Self {
        Self {
            functions: vec![0, 2, 4],
            drift_at: vec![0.33, 0.66],
            width: 0.0,
            perturbation: 0.0,
            balance_classes: false,
            period: 100_000,
        }
    }
}

impl AgrawalConfig {
    /// Checks the configuration, so that a bad file fails at startup rather than mid-stream.
    pub fn validate(&self) -> Result<(), ConceptError> {
        if let Some(f) = self.drift_at.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
            return Err(ConceptError(format!(
                "agrawal: drift_at fractions must lie strictly between 0 and 1, got {f}"
            )));
        }
        if self.drift_at.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConceptError(format!(
                "agrawal: drift_at must be strictly increasing, got {:?}",
                self.drift_at
            )));
        }
        if self.functions.len() != self.drift_at.len() + 1 {
            return Err(ConceptError(format!(
                "agrawal: {} drift point(s) need {} functions (one per segment), got {}",
                self.drift_at.len(),
                self.drift_at.len() + 1,
                self.functions.len()
            )));
        }
        if let Some(f) = self.functions.iter().find(|&&f| f >= AGRAWAL_FUNCTIONS) {
            return Err(ConceptError(format!("agrawal: unknown function {f}; Agrawal functions are 0 to 9")));
        }
        if !(0.0..=1.0).contains(&self.width) {
            return Err(ConceptError(format!("agrawal: width must lie in [0, 1], got {}", self.width)));
        }
        if self.drift_at.windows(2).any(|w| w[1] - w[0] < self.width) {
            return Err(ConceptError(format!(
                "agrawal: gradual windows of width {} overlap for drift_at {:?}; space the drifts at \
                 least one width apart",
                self.width, self.drift_at
            )));
        }
        if !(0.0..=1.0).contains(&self.perturbation) {
            return Err(ConceptError(format!(
                "agrawal: perturbation must lie in [0, 1], got {}",
                self.perturbation
            )));
        }
        if self.period == 0 {
            return Err(ConceptError("agrawal: period must be at least 1".into()));
        }
        Ok(())
    }
}

/// One applicant's attributes, before they are turned into field values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgrawalRecord {
    /// Uniform in `[20 000, 150 000)`.
    pub salary: f64,
    /// 0 when salary >= 75 000, else uniform in `[10 000, 85 000)`.
    pub commission: f64,
    /// Integer in `20..=80`.
    pub age: i64,
    /// Education level, integer in `0..=4`.
    pub elevel: i64,
    /// Car make, integer in `1..=20` (emitted as `"car{N}"`).
    pub car: i64,
    /// Zip code, integer in `0..=8` (emitted as `"zip{N}"`).
    pub zipcode: i64,
    /// House value, `(8 - zipcode) · 100 000 · U[0.5, 1.5)`; River's formula, so zip 8 owns no
    /// house (the paper and MOA use `9 - zipcode`).
    pub hvalue: f64,
    /// Years the house has been owned, integer in `1..=30`.
    pub hyears: i64,
    /// Uniform in `[0, 500 000)`.
    pub loan: f64,
}

impl AgrawalRecord {
    /// Draws an applicant in River's order of draws.
    fn draw(rng: &mut ChaCha8Rng) -> Self {
        let salary = 20_000.0 + 130_000.0 * rng.random::<f64>();
        let commission = if salary >= 75_000.0 { 0.0 } else { 10_000.0 + 75_000.0 * rng.random::<f64>() };
        let age = rng.random_range(20..=80);
        let elevel = rng.random_range(0..=4);
        let car = rng.random_range(1..=20);
        let zipcode = rng.random_range(0..=8);
        let hvalue = (8 - zipcode) as f64 * 100_000.0 * (0.5 + rng.random::<f64>());
        let hyears = rng.random_range(1..=30);
        let loan = rng.random::<f64>() * 500_000.0;
        Self { salary, commission, age, elevel, car, zipcode, hvalue, hyears, loan }
    }

    /// Label of classification function `function` (`0..=9`), transcribed from River.
    ///
    /// Function 4 keeps River's comparisons verbatim, including three that test `salary`
    /// against 200 000..500 000 where the paper tests `loan`; those branches never fire (salary
    /// stays under 150 000), so under function 4 applicants aged 40–59 are always class 0.
    /// Matching River keeps class balances comparable with River-generated data.
    ///
    /// # Panics
    /// When `function` is not in `0..=9`; configs are validated before streaming.
    pub fn label(&self, function: u8) -> bool {
        let Self { salary, commission, age, elevel, hvalue, hyears, loan, .. } = *self;
        let within = |v: f64, lo: f64, hi: f64| lo <= v && v <= hi;
        match function {
            0 => !(40..60).contains(&age),
            1 => {
                if age < 40 {
                    within(salary, 50_000.0, 100_000.0)
                } else if age < 60 {
                    within(salary, 75_000.0, 125_000.0)
                } else {
                    within(salary, 25_000.0, 75_000.0)
                }
            }
            2 => {
                if age < 40 {
                    (0..=1).contains(&elevel)
                } else if age < 60 {
                    (1..=3).contains(&elevel)
                } else {
                    (2..=4).contains(&elevel)
                }
            }
            3 => {
                if age < 40 {
                    if (0..=1).contains(&elevel) {
                        within(salary, 25_000.0, 75_000.0)
                    } else {
                        within(salary, 50_000.0, 100_000.0)
                    }
                } else if age < 60 {
                    if (1..=3).contains(&elevel) {
                        within(salary, 50_000.0, 100_000.0)
                    } else {
                        within(salary, 75_000.0, 125_000.0)
                    }
                } else if (2..=4).contains(&elevel) {
                    within(salary, 50_000.0, 100_000.0)
                } else {
                    within(salary, 25_000.0, 75_000.0)
                }
            }
            4 => {
                if age < 40 {
                    if within(salary, 50_000.0, 100_000.0) {
                        within(loan, 100_000.0, 300_000.0)
                    } else {
                        within(salary, 200_000.0, 400_000.0)
                    }
                } else if age < 60 {
                    if within(salary, 75_000.0, 125_000.0) {
                        200_000.0 <= salary && loan <= 400_000.0
                    } else {
                        within(salary, 300_000.0, 500_000.0)
                    }
                } else if within(salary, 25_000.0, 75_000.0) {
                    within(loan, 300_000.0, 500_000.0)
                } else {
                    within(loan, 75_000.0, 300_000.0)
                }
            }
            5 => {
                let total = salary + commission;
                if age < 40 {
                    within(total, 50_000.0, 100_000.0)
                } else if age < 60 {
                    within(total, 75_000.0, 125_000.0)
                } else {
                    within(total, 25_000.0, 75_000.0)
                }
            }
            // River: class 0 when the disposable income exceeds 1 (never NaN here).
            6 => 2.0 * (salary + commission) / 3.0 - loan / 5.0 - 20_000.0 <= 1.0,
            7 => 2.0 * (salary + commission) / 3.0 - 5_000.0 * elevel as f64 - 20_000.0 <= 1.0,
            8 => 2.0 * (salary + commission) / 3.0 - 5_000.0 * elevel as f64 - loan / 5.0 - 10_000.0 <= 1.0,
            9 => {
                let equity = if hyears >= 20 { hvalue * (hyears - 20) as f64 / 10.0 } else { 0.0 };
                2.0 * (salary + commission) / 3.0 - 5_000.0 * elevel as f64 + equity / 5.0 - 10_000.0 <= 1.0
            }
            _ => panic!("agrawal: unknown classification function {function}"),
        }
    }

    /// Applies River's feature perturbation: each numeric attribute moves by a uniform share,
    /// up to `fraction`, of its range, clamped back into that range, and integers are
    /// rounded. River passes house-value bounds that clamp nearly every value to 0 or
    /// `(9 - zipcode) · 100 000`; here the house value uses its own generation range,
    /// `(8 - zipcode) · [50 000, 150 000]`, like the other attributes.
    fn perturb(&mut self, rng: &mut ChaCha8Rng, fraction: f64) {
        let mut shift = |value: f64, lo: f64, hi: f64| {
            (value + (hi - lo) * (2.0 * (rng.random::<f64>() - 0.5)) * fraction).clamp(lo, hi)
        };
        self.salary = shift(self.salary, 20_000.0, 150_000.0);
        if self.commission > 0.0 {
            self.commission = shift(self.commission, 10_000.0, 75_000.0);
        }
        self.age = shift(self.age as f64, 20.0, 80.0).round() as i64;
        let house_scale = (8 - self.zipcode) as f64 * 100_000.0;
        self.hvalue = shift(self.hvalue, 0.5 * house_scale, 1.5 * house_scale);
        self.hyears = shift(self.hyears as f64, 1.0, 30.0).round() as i64;
        self.loan = shift(self.loan, 0.0, 500_000.0);
    }

    /// Writes the nine field values in [`AgrawalStream::fields`] order.
    fn write(&self, values: &mut Vec<GenValue>) {
        values.clear();
        values.extend([
            GenValue::Num(self.salary),
            GenValue::Num(self.commission),
            GenValue::Num(self.age as f64),
            GenValue::Num(self.elevel as f64),
            GenValue::Cat(format!("car{}", self.car)),
            GenValue::Cat(format!("zip{}", self.zipcode)),
            GenValue::Num(self.hvalue),
            GenValue::Num(self.hyears as f64),
            GenValue::Num(self.loan),
        ]);
    }
}

/// Agrawal stream: fields `salary`, `commission`, `age`, `elevel`, `car` (`"car1"`..
/// `"car20"`), `zipcode` (`"zip0"`..`"zip8"`), `hvalue`, `hyears`, `loan`, as in River and the
/// shared dev data.
#[derive(Debug, Clone)]
pub struct AgrawalStream {
    config: AgrawalConfig,
    /// Class the balancer wants next; River starts by wanting class 1.
    next_class_should_be_zero: bool,
}

impl AgrawalStream {
    /// Builds the stream after validating `config`.
    pub fn new(config: &AgrawalConfig) -> Result<Self, ConceptError> {
        config.validate()?;
        Ok(Self { config: config.clone(), next_class_should_be_zero: false })
    }

    /// Where example `position` falls in the schedule: the segment whose function labels it by
    /// default, and the probability that the next segment's function labels it instead (0
    /// outside gradual windows, rising linearly from 0 to 1 across one).
    fn schedule_at(&self, position: u64, total: Option<u64>) -> (usize, f64) {
        let (local, len) = match total {
            Some(t) => (position as f64, t as f64),
            None => ((position % self.config.period) as f64, self.config.period as f64),
        };
        let half_width = 0.5 * self.config.width * len;
        // The last drift whose switch has begun, if any.
        let started = self.config.drift_at.iter().rposition(|&f| {
            let centre = drift_position(f, len) as f64;
            if half_width < 0.5 {
                local >= centre
            } else {
                local >= centre - half_width
            }
        });
        match started {
            None => (0, 0.0),
            Some(i) if half_width < 0.5 => (i + 1, 0.0),
            Some(i) => {
                let start = drift_position(self.config.drift_at[i], len) as f64 - half_width;
                let p = (local - start) / (2.0 * half_width);
                if p >= 1.0 {
                    (i + 1, 0.0)
                } else {
                    (i, p)
                }
            }
        }
    }

    /// The function that labels example `position` when it does not fall inside a gradual
    /// window, or the old one of the pair when it does; exposed so tests and reports can check
    /// which concept was active.
    pub fn function_at(&self, position: u64, total: Option<u64>) -> u8 {
        self.config.functions[self.schedule_at(position, total).0]
    }

    /// Probability that example `position` is drawn from the incoming concept (0 outside a
    /// gradual window).
    pub fn drift_probability_at(&self, position: u64, total: Option<u64>) -> f64 {
        self.schedule_at(position, total).1
    }
}

/// Example index of a drift placed at fraction `fraction` of a `len`-long stream.
fn drift_position(fraction: f64, len: f64) -> u64 {
    (fraction * len).round() as u64
}

impl ConceptStream for AgrawalStream {
    fn fields(&self) -> Vec<(String, GenFieldKind)> {
        let numeric = |name: &str| (name.to_string(), GenFieldKind::Numeric);
        vec![
            numeric("salary"),
            numeric("commission"),
            numeric("age"),
            numeric("elevel"),
            ("car".to_string(), GenFieldKind::Categorical),
            ("zipcode".to_string(), GenFieldKind::Categorical),
            numeric("hvalue"),
            numeric("hyears"),
            numeric("loan"),
        ]
    }

    fn next_example(
        &mut self,
        rng: &mut ChaCha8Rng,
        position: u64,
        total: Option<u64>,
        values: &mut Vec<GenValue>,
    ) -> bool {
        let (segment, p_next) = self.schedule_at(position, total);
        // Only draw inside a gradual window, so abrupt streams spend no randomness on it.
        let segment = if p_next > 0.0 && rng.random::<f64>() < p_next { segment + 1 } else { segment };
        let function = self.config.functions[segment];
        let (mut record, label) = loop {
            let record = AgrawalRecord::draw(rng);
            let label = record.label(function);
            if !self.config.balance_classes {
                break (record, label);
            }
            if label != self.next_class_should_be_zero {
                self.next_class_should_be_zero = !self.next_class_should_be_zero;
                break (record, label);
            }
        };
        if self.config.perturbation > 0.0 {
            record.perturb(rng, self.config.perturbation);
        }
        record.write(values);
        label
    }

    /// Drift points (centres of gradual switches) where the function actually changes; a
    /// repeated function is no drift. For an unbounded stream this lists one period, ending
    /// with the jump back to `functions[0]` at `period` when that is a change; the pattern
    /// repeats every `period`.
    fn change_points(&self, total: Option<u64>) -> Vec<u64> {
        let functions = &self.config.functions;
        let len = total.unwrap_or(self.config.period);
        let mut points: Vec<u64> = self
            .config
            .drift_at
            .iter()
            .enumerate()
            .filter(|(i, _)| functions[*i] != functions[i + 1])
            .map(|(_, &f)| drift_position(f, len as f64))
            .collect();
        if total.is_none() && functions.first() != functions.last() {
            points.push(self.config.period);
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn draw(config: &AgrawalConfig, seed: u64, n: u64, total: Option<u64>) -> Vec<(Vec<GenValue>, bool)> {
        let mut stream = AgrawalStream::new(config).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = Vec::new();
        (0..n)
            .map(|p| {
                let label = stream.next_example(&mut rng, p, total, &mut values);
                (values.clone(), label)
            })
            .collect()
    }

    /// Rebuilds the record from emitted values, to recompute labels independently.
    fn record(values: &[GenValue]) -> AgrawalRecord {
        let num = |i: usize| match &values[i] {
            GenValue::Num(x) => *x,
            GenValue::Cat(c) => panic!("field {i} is categorical {c}"),
        };
        let cat = |i: usize, prefix: &str| match &values[i] {
            GenValue::Cat(c) => c.strip_prefix(prefix).unwrap().parse::<i64>().unwrap(),
            GenValue::Num(x) => panic!("field {i} is numeric {x}"),
        };
        AgrawalRecord {
            salary: num(0),
            commission: num(1),
            age: num(2) as i64,
            elevel: num(3) as i64,
            car: cat(4, "car"),
            zipcode: cat(5, "zip"),
            hvalue: num(6),
            hyears: num(7) as i64,
            loan: num(8),
        }
    }

    fn single(function: u8) -> AgrawalConfig {
        AgrawalConfig { functions: vec![function], drift_at: vec![], ..AgrawalConfig::default() }
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let config = AgrawalConfig { width: 0.1, perturbation: 0.05, ..AgrawalConfig::default() };
        let a = draw(&config, 1, 1000, Some(1000));
        assert_eq!(a, draw(&config, 1, 1000, Some(1000)));
        assert_ne!(a, draw(&config, 2, 1000, Some(1000)));
    }

    #[test]
    fn attributes_stay_in_rivers_ranges() {
        let examples = draw(&AgrawalConfig::default(), 3, 20_000, Some(20_000));
        let (mut cars, mut zips) = ([false; 21], [false; 9]);
        for (values, _) in &examples {
            assert_eq!(values.len(), 9);
            let r = record(values);
            assert!((20_000.0..150_000.0).contains(&r.salary));
            if r.salary >= 75_000.0 {
                assert_eq!(r.commission, 0.0);
            } else {
                assert!((10_000.0..85_000.0).contains(&r.commission));
            }
            assert!(
                (20..=80).contains(&r.age) && (0..=4).contains(&r.elevel) && (1..=30).contains(&r.hyears)
            );
            let scale = (8 - r.zipcode) as f64 * 100_000.0;
            assert!(r.hvalue >= 0.5 * scale && (r.hvalue < 1.5 * scale || scale == 0.0));
            assert!((0.0..500_000.0).contains(&r.loan));
            cars[r.car as usize] = true;
            zips[r.zipcode as usize] = true;
        }
        assert!(cars[1..].iter().all(|&seen| seen) && !cars[0]);
        assert!(zips.iter().all(|&seen| seen));
    }

    #[test]
    fn class_balance_of_each_function_matches_river() {
        // Positive rates of River 0.26.1's `Agrawal(classification_function=f)` over 200 000
        // examples: checks the transcription of the functions and value ranges.
        let river = [0.6708, 0.3836, 0.5328, 0.3836, 0.1979, 0.3820, 0.4999, 0.0172, 0.4999, 0.0019];
        for (function, expected) in (0..AGRAWAL_FUNCTIONS).zip(river) {
            let examples = draw(&single(function), 17, 40_000, Some(40_000));
            let rate = examples.iter().filter(|(_, y)| *y).count() as f64 / 40_000.0;
            assert!((rate - expected).abs() < 0.012, "function {function}: {rate} vs River {expected}");
        }
    }

    #[test]
    fn balanced_classes_alternate_starting_with_one() {
        let config = AgrawalConfig { balance_classes: true, ..AgrawalConfig::default() };
        let stream = AgrawalStream::new(&config).unwrap();
        let examples = draw(&config, 4, 3000, Some(3000));
        for (p, (values, label)) in examples.iter().enumerate() {
            assert_eq!(*label, p % 2 == 0, "position {p}");
            assert_eq!(*label, record(values).label(stream.function_at(p as u64, Some(3000))));
        }
    }

    #[test]
    fn abrupt_switches_happen_exactly_at_the_configured_positions() {
        let config = AgrawalConfig::default();
        let total = 3000;
        let examples = draw(&config, 5, total, Some(total));
        let bounds = [0, 990, 1980, total];
        for (segment, window) in bounds.windows(2).enumerate() {
            let mut disagree_with_previous = 0;
            for p in window[0]..window[1] {
                let (values, label) = &examples[p as usize];
                let r = record(values);
                assert_eq!(*label, r.label(config.functions[segment]), "position {p}");
                if segment > 0 {
                    disagree_with_previous += usize::from(*label != r.label(config.functions[segment - 1]));
                }
            }
            assert!(segment == 0 || disagree_with_previous > 100, "segment {segment}");
        }
        let stream = AgrawalStream::new(&config).unwrap();
        assert_eq!(stream.change_points(Some(total)), vec![990, 1980]);
        assert_eq!(stream.change_points(None), vec![33_000, 66_000, 100_000]);
    }

    #[test]
    fn gradual_switch_mixes_concepts_inside_the_window_only() {
        let config = AgrawalConfig {
            functions: vec![0, 2],
            drift_at: vec![0.5],
            width: 0.2,
            ..AgrawalConfig::default()
        };
        let total = 40_000;
        let examples = draw(&config, 6, total, Some(total));
        // Share of examples, among those the two concepts disagree on, labelled by the new one.
        let new_share = |range: std::ops::Range<usize>| {
            let (mut new, mut informative) = (0, 0);
            for (values, label) in &examples[range] {
                let r = record(values);
                let (old_label, new_label) = (r.label(0), r.label(2));
                assert!(*label == old_label || *label == new_label);
                if old_label != new_label {
                    informative += 1;
                    new += usize::from(*label == new_label);
                }
            }
            new as f64 / informative as f64
        };
        assert_eq!(new_share(0..16_000), 0.0);
        assert_eq!(new_share(24_000..40_000), 1.0);
        let quarters = [16_000, 18_000, 20_000, 22_000, 24_000].windows(2).map(|w| new_share(w[0]..w[1]));
        let quarters: Vec<f64> = quarters.collect();
        for (q, expected) in quarters.iter().zip([0.125, 0.375, 0.625, 0.875]) {
            assert!((q - expected).abs() < 0.06, "quarters {quarters:?}");
        }
        let stream = AgrawalStream::new(&config).unwrap();
        assert_eq!(stream.change_points(Some(total)), vec![20_000]);
        assert_eq!(stream.drift_probability_at(20_000, Some(total)), 0.5);
        assert_eq!(stream.function_at(15_999, Some(total)), 0);
        assert_eq!(stream.function_at(24_000, Some(total)), 2);
    }

    #[test]
    fn unbounded_streams_repeat_the_schedule_every_period() {
        let config = AgrawalConfig { period: 1000, ..AgrawalConfig::default() };
        let stream = AgrawalStream::new(&config).unwrap();
        for (position, function) in [(0, 0), (329, 0), (330, 2), (660, 4), (999, 4), (1000, 0), (2330, 2)] {
            assert_eq!(stream.function_at(position, None), function, "position {position}");
        }
    }

    #[test]
    fn perturbation_keeps_values_in_range_and_integers_whole() {
        let config = AgrawalConfig { perturbation: 0.5, ..single(9) };
        for (values, _) in draw(&config, 8, 5000, None) {
            let r = record(&values);
            assert!((20_000.0..=150_000.0).contains(&r.salary));
            assert!(r.commission == 0.0 || (10_000.0..=75_000.0).contains(&r.commission));
            assert!((20..=80).contains(&r.age) && (1..=30).contains(&r.hyears));
            for i in [2, 7] {
                assert!(matches!(values[i], GenValue::Num(x) if x.fract() == 0.0));
            }
            let scale = (8 - r.zipcode) as f64 * 100_000.0;
            assert!(r.hvalue >= 0.5 * scale && r.hvalue <= 1.5 * scale);
            assert!((0.0..=500_000.0).contains(&r.loan));
        }
    }

    #[test]
    fn config_defaults_unknown_fields_and_validation() {
        let parsed: AgrawalConfig = serde_json::from_str(r#"{"width": 0.05}"#).unwrap();
        assert_eq!(parsed, AgrawalConfig { width: 0.05, ..AgrawalConfig::default() });
        assert!(serde_json::from_str::<AgrawalConfig>(r#"{"classification_function": 1}"#).is_err());
        let bad = [
            AgrawalConfig { functions: vec![0, 2], ..AgrawalConfig::default() },
            AgrawalConfig { functions: vec![0, 2, 10], ..AgrawalConfig::default() },
            AgrawalConfig { drift_at: vec![0.66, 0.33], ..AgrawalConfig::default() },
            AgrawalConfig { drift_at: vec![0.0, 0.66], ..AgrawalConfig::default() },
            AgrawalConfig { width: 0.5, ..AgrawalConfig::default() },
            AgrawalConfig { width: -0.1, ..AgrawalConfig::default() },
            AgrawalConfig { perturbation: 1.5, ..AgrawalConfig::default() },
            AgrawalConfig { period: 0, ..AgrawalConfig::default() },
        ];
        for config in bad {
            assert!(AgrawalStream::new(&config).is_err(), "{config:?}");
        }
        let fields = AgrawalStream::new(&AgrawalConfig::default()).unwrap().fields();
        let kinds: Vec<(&str, GenFieldKind)> = fields.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        assert_eq!(kinds[4], ("car", GenFieldKind::Categorical));
        assert_eq!(kinds[5], ("zipcode", GenFieldKind::Categorical));
        assert_eq!(kinds.len(), 9);
    }
}
