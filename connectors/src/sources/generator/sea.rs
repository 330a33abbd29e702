//! SEA concepts (Street & Kim, 2001): three uniform features, of which only the first two
//! decide the label, and a threshold that switches abruptly at configured points.
//!
//! SEA is the classic abrupt-drift benchmark: the input distribution never changes, only the
//! decision boundary `x0 + x1 = threshold` jumps, so a detector that fires here reacts to a
//! real concept change and not to covariate shift.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ConceptError;

use super::concept::{ConceptStream, GenFieldKind, GenValue};

/// Thresholds of the SEA functions, indexed by function number, as in River's `synth.SEA`.
pub const SEA_THRESHOLDS: [f64; 4] = [8.0, 9.0, 7.0, 9.5];

/// Configuration of the [`SeaStream`].
///
/// The stream is split at `drift_at` into `drift_at.len() + 1` segments, and segment `i` is
/// labelled by SEA function `functions[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeaConfig {
    /// Fractions of the stream, strictly increasing in `(0, 1)`, at which the concept switches
    /// abruptly to the next entry of `functions`.
    pub drift_at: Vec<f64>,
    /// The SEA functions (0..=3, thresholds 8, 9, 7 and 9.5) used in turn; one more entry than
    /// `drift_at`.
    pub functions: Vec<u8>,
    /// Probability of flipping each label, so that learners see an imperfect concept.
    pub noise: f64,
    /// Length, in examples, that `drift_at` fractions refer to when the stream is unbounded.
    /// The schedule then repeats every `period` examples (the concept jumps back to
    /// `functions[0]` at each multiple), so an endless stream keeps drifting. Ignored when the
    /// stream length is known.
    pub period: u64,
}

impl Default for SeaConfig {
    fn default() -> Self {
        Self { drift_at: vec![0.25, 0.5, 0.75], functions: vec![0, 1, 2, 3], noise: 0.1, period: 100_000 }
    }
}

impl SeaConfig {
    /// Checks the configuration, so that a bad file fails at startup rather than mid-stream.
    pub fn validate(&self) -> Result<(), ConceptError> {
        validate_schedule(&self.drift_at, self.functions.len(), self.period)?;
        if let Some(f) = self.functions.iter().find(|&&f| usize::from(f) >= SEA_THRESHOLDS.len()) {
            return Err(ConceptError(format!("sea: unknown function {f}; SEA functions are 0, 1, 2 and 3")));
        }
        if !(0.0..=1.0).contains(&self.noise) {
            return Err(ConceptError(format!(
                "sea: noise must be a probability in [0, 1], got {}",
                self.noise
            )));
        }
        Ok(())
    }
}

/// Checks a drift schedule shared by the fraction-placed abrupt streams: `drift_at` strictly
/// increasing inside `(0, 1)`, one more function than drift points and a non-zero period.
fn validate_schedule(drift_at: &[f64], n_functions: usize, period: u64) -> Result<(), ConceptError> {
    if let Some(f) = drift_at.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
        return Err(ConceptError(format!(
            "sea: drift_at fractions must lie strictly between 0 and 1, got {f}"
        )));
    }
    if drift_at.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ConceptError(format!("sea: drift_at must be strictly increasing, got {drift_at:?}")));
    }
    if n_functions != drift_at.len() + 1 {
        return Err(ConceptError(format!(
            "sea: {} drift point(s) need {} functions (one per segment), got {}",
            drift_at.len(),
            drift_at.len() + 1,
            n_functions
        )));
    }
    if period == 0 {
        return Err(ConceptError("sea: period must be at least 1".into()));
    }
    Ok(())
}

/// SEA stream: fields `x0`, `x1`, `x2` uniform in `[0, 10)`, label `x0 + x1 > threshold`
/// (as River labels it; the original paper calls the complement class 1, which only swaps the
/// classes), flipped with probability `noise`.
#[derive(Debug, Clone)]
pub struct SeaStream {
    config: SeaConfig,
}

impl SeaStream {
    /// Builds the stream after validating `config`.
    pub fn new(config: &SeaConfig) -> Result<Self, ConceptError> {
        config.validate()?;
        Ok(Self { config: config.clone() })
    }

    /// Noise-free label of SEA function `function` (0..=3) for features `x0`, `x1`.
    pub fn concept_label(function: u8, x0: f64, x1: f64) -> bool {
        x0 + x1 > SEA_THRESHOLDS[usize::from(function)]
    }

    /// The SEA function that labels example `position`; exposed so tests and reports can check
    /// which concept was active.
    pub fn function_at(&self, position: u64, total: Option<u64>) -> u8 {
        let (local, len) = match total {
            Some(t) => (position, t),
            None => (position % self.config.period, self.config.period),
        };
        let segment = self.config.drift_at.iter().take_while(|&&f| drift_position(f, len) <= local).count();
        self.config.functions[segment]
    }
}

/// Example index at which a drift placed at fraction `fraction` of a `len`-long stream starts.
fn drift_position(fraction: f64, len: u64) -> u64 {
    (fraction * len as f64).round() as u64
}

impl ConceptStream for SeaStream {
    fn fields(&self) -> Vec<(String, GenFieldKind)> {
        (0..3).map(|i| (format!("x{i}"), GenFieldKind::Numeric)).collect()
    }

    fn next_example(
        &mut self,
        rng: &mut ChaCha8Rng,
        position: u64,
        total: Option<u64>,
        values: &mut Vec<GenValue>,
    ) -> bool {
        let x0 = rng.random::<f64>() * 10.0;
        let x1 = rng.random::<f64>() * 10.0;
        let x2 = rng.random::<f64>() * 10.0;
        values.clear();
        values.extend([GenValue::Num(x0), GenValue::Num(x1), GenValue::Num(x2)]);
        let label = Self::concept_label(self.function_at(position, total), x0, x1);
        // Only draw when noise is on, so a noise-free stream spends no randomness on it.
        if self.config.noise > 0.0 && rng.random::<f64>() < self.config.noise {
            !label
        } else {
            label
        }
    }

    /// Drift points where the function actually changes (a repeated function is no drift).
    /// For an unbounded stream this lists one period, ending with the jump back to
    /// `functions[0]` at `period` when that is a change; the pattern repeats every `period`.
    fn change_points(&self, total: Option<u64>) -> Vec<u64> {
        let functions = &self.config.functions;
        let len = total.unwrap_or(self.config.period);
        let mut points: Vec<u64> = self
            .config
            .drift_at
            .iter()
            .enumerate()
            .filter(|(i, _)| functions[*i] != functions[i + 1])
            .map(|(_, &f)| drift_position(f, len))
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

    fn draw(stream: &mut SeaStream, seed: u64, n: u64, total: Option<u64>) -> Vec<(Vec<GenValue>, bool)> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = Vec::new();
        (0..n)
            .map(|p| {
                let label = stream.next_example(&mut rng, p, total, &mut values);
                (values.clone(), label)
            })
            .collect()
    }

    fn nums(values: &[GenValue]) -> Vec<f64> {
        values
            .iter()
            .map(|v| match v {
                GenValue::Num(x) => *x,
                GenValue::Cat(c) => panic!("unexpected categorical {c}"),
            })
            .collect()
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let config = SeaConfig::default();
        let a = draw(&mut SeaStream::new(&config).unwrap(), 7, 1000, Some(1000));
        let b = draw(&mut SeaStream::new(&config).unwrap(), 7, 1000, Some(1000));
        let c = draw(&mut SeaStream::new(&config).unwrap(), 8, 1000, Some(1000));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn features_are_uniform_in_range_and_labels_reasonably_balanced() {
        let mut stream = SeaStream::new(&SeaConfig::default()).unwrap();
        let examples = draw(&mut stream, 1, 20_000, Some(20_000));
        let mut sum = [0.0; 3];
        for (values, _) in &examples {
            for (s, x) in sum.iter_mut().zip(nums(values)) {
                assert!((0.0..10.0).contains(&x));
                *s += x;
            }
        }
        for s in sum {
            assert!((s / 20_000.0 - 5.0).abs() < 0.1, "feature mean {}", s / 20_000.0);
        }
        // Noise-free positive rates (x0 + x1 > threshold) are 0.68, 0.595, 0.755 and 0.55;
        // 10% flips pull them towards 0.5, giving about 0.62 overall.
        let positive = examples.iter().filter(|(_, y)| *y).count() as f64 / 20_000.0;
        assert!((0.57..0.66).contains(&positive), "positive rate {positive}");
    }

    #[test]
    fn abrupt_switches_happen_exactly_at_the_configured_positions() {
        let config = SeaConfig { noise: 0.0, ..SeaConfig::default() };
        let mut stream = SeaStream::new(&config).unwrap();
        let total = 10_000;
        let examples = draw(&mut stream, 3, total, Some(total));
        let bounds = [0, 2500, 5000, 7500, total];
        for (segment, window) in bounds.windows(2).enumerate() {
            let function = config.functions[segment];
            let mut disagree_with_previous = 0;
            for p in window[0]..window[1] {
                let (values, label) = &examples[p as usize];
                let x = nums(values);
                assert_eq!(*label, SeaStream::concept_label(function, x[0], x[1]), "position {p}");
                if segment > 0 {
                    let previous = config.functions[segment - 1];
                    disagree_with_previous +=
                        usize::from(*label != SeaStream::concept_label(previous, x[0], x[1]));
                }
            }
            // The change is visible: some examples right after the switch contradict the old
            // concept.
            assert!(segment == 0 || disagree_with_previous > 50, "segment {segment}");
        }
        assert_eq!(stream.change_points(Some(total)), vec![2500, 5000, 7500]);
    }

    #[test]
    fn noise_flips_about_the_configured_share_of_labels() {
        let config = SeaConfig { noise: 0.2, drift_at: vec![], functions: vec![1], ..SeaConfig::default() };
        let examples = draw(&mut SeaStream::new(&config).unwrap(), 5, 20_000, Some(20_000));
        let flipped = examples
            .iter()
            .filter(|(values, y)| {
                let x = nums(values);
                *y != SeaStream::concept_label(1, x[0], x[1])
            })
            .count() as f64
            / 20_000.0;
        assert!((flipped - 0.2).abs() < 0.015, "flipped {flipped}");
    }

    #[test]
    fn unbounded_streams_repeat_the_schedule_every_period() {
        let config = SeaConfig { period: 1000, ..SeaConfig::default() };
        let stream = SeaStream::new(&config).unwrap();
        let expected = [(0, 0), (249, 0), (250, 1), (500, 2), (999, 3), (1000, 0), (1250, 1), (12_780, 3)];
        for (position, function) in expected {
            assert_eq!(stream.function_at(position, None), function, "position {position}");
        }
        assert_eq!(stream.change_points(None), vec![250, 500, 750, 1000]);
        // With a known length the period is ignored.
        assert_eq!(stream.function_at(1000, Some(4000)), 1);
    }

    #[test]
    fn repeated_functions_are_not_reported_as_change_points() {
        let config = SeaConfig { functions: vec![0, 0, 2, 0], ..SeaConfig::default() };
        let stream = SeaStream::new(&config).unwrap();
        assert_eq!(stream.change_points(Some(100)), vec![50, 75]);
        assert_eq!(stream.change_points(None), vec![50_000, 75_000]);
    }

    #[test]
    fn config_defaults_unknown_fields_and_validation() {
        let parsed: SeaConfig = serde_json::from_str(r#"{"noise": 0.0}"#).unwrap();
        assert_eq!(parsed, SeaConfig { noise: 0.0, ..SeaConfig::default() });
        assert!(serde_json::from_str::<SeaConfig>(r#"{"variant": 1}"#).is_err());

        let bad = [
            SeaConfig { functions: vec![0, 1, 2], ..SeaConfig::default() },
            SeaConfig { functions: vec![0, 1, 2, 4], ..SeaConfig::default() },
            SeaConfig { drift_at: vec![0.5, 0.25, 0.75], ..SeaConfig::default() },
            SeaConfig { drift_at: vec![0.0, 0.5, 0.75], ..SeaConfig::default() },
            SeaConfig { drift_at: vec![0.25, 0.5, 1.0], ..SeaConfig::default() },
            SeaConfig { noise: 1.5, ..SeaConfig::default() },
            SeaConfig { noise: f64::NAN, ..SeaConfig::default() },
            SeaConfig { period: 0, ..SeaConfig::default() },
        ];
        for config in bad {
            assert!(SeaStream::new(&config).is_err(), "{config:?}");
        }
        let fields = SeaStream::new(&SeaConfig::default()).unwrap().fields();
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x0", "x1", "x2"]);
    }
}
