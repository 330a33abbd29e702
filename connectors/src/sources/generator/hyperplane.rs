//! Rotating hyperplane (Hulten, Spencer & Domingos, 2001), following River's
//! `synth.Hyperplane`: the decision boundary turns a little after every example, the standard
//! benchmark for gradual, never-ending drift.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ConceptError;

use super::concept::{ConceptStream, GenFieldKind, GenValue};

/// Configuration of the [`HyperplaneStream`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HyperplaneConfig {
    /// Number of features `x0..x{n-1}`.
    pub n_features: usize,
    /// How many of the features (the first ones) have drifting weights.
    pub n_drift_features: usize,
    /// How much each drifting weight moves per example; 0 gives a static concept.
    pub mag_change: f64,
    /// Probability, per example and drifting weight, of reversing its direction of change, so
    /// the boundary wobbles instead of turning steadily one way.
    pub sigma: f64,
    /// Probability of flipping each label.
    pub noise: f64,
}

impl Default for HyperplaneConfig {
    fn default() -> Self {
        Self { n_features: 10, n_drift_features: 2, mag_change: 0.001, sigma: 0.1, noise: 0.05 }
    }
}

impl HyperplaneConfig {
    /// Checks the configuration, so that a bad file fails at startup rather than mid-stream.
    pub fn validate(&self) -> Result<(), ConceptError> {
        if self.n_features == 0 {
            return Err(ConceptError("hyperplane: n_features must be at least 1".into()));
        }
        if self.n_drift_features > self.n_features {
            return Err(ConceptError(format!(
                "hyperplane: n_drift_features ({}) exceeds n_features ({})",
                self.n_drift_features, self.n_features
            )));
        }
        for (name, value) in [("mag_change", self.mag_change), ("sigma", self.sigma), ("noise", self.noise)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConceptError(format!("hyperplane: {name} must lie in [0, 1], got {value}")));
            }
        }
        Ok(())
    }
}

/// Rotating-hyperplane stream: fields `x0..x{n-1}` uniform in `[0, 1)`, label
/// `Σ wᵢ·xᵢ >= Σ wᵢ / 2`, flipped with probability `noise`.
///
/// Weights are drawn uniformly in `[0, 1)` from the stream's rng on the first example (the
/// trait hands out randomness only there). After each example, every drifting weight moves by
/// `mag_change` in its current direction (initially up), and the direction reverses with
/// probability `sigma`. As in River the weights are not clamped, so over long streams they
/// wander freely, negative included. River tests noise and sigma as `0.01 + u <= p`, which
/// under-applies them by 0.01; this stream uses the exact probability (`u < p`).
#[derive(Debug, Clone)]
pub struct HyperplaneStream {
    config: HyperplaneConfig,
    weights: Vec<f64>,
    /// +1 or -1 per drifting feature.
    directions: Vec<f64>,
}

impl HyperplaneStream {
    /// Builds the stream after validating `config`; weights are drawn on the first example.
    pub fn new(config: &HyperplaneConfig) -> Result<Self, ConceptError> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            weights: Vec::with_capacity(config.n_features),
            directions: vec![1.0; config.n_drift_features],
        })
    }

    /// Current hyperplane weights (empty before the first example), exposed so tests and
    /// reports can follow the drift.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Noise-free label of `x` under the current weights.
    pub fn concept_label(&self, x: &[f64]) -> bool {
        let dot: f64 = self.weights.iter().zip(x).map(|(w, x)| w * x).sum();
        dot >= self.weights.iter().sum::<f64>() * 0.5
    }
}

impl ConceptStream for HyperplaneStream {
    fn fields(&self) -> Vec<(String, GenFieldKind)> {
        (0..self.config.n_features).map(|i| (format!("x{i}"), GenFieldKind::Numeric)).collect()
    }

    fn next_example(
        &mut self,
        rng: &mut ChaCha8Rng,
        _position: u64,
        _total: Option<u64>,
        values: &mut Vec<GenValue>,
    ) -> bool {
        if self.weights.is_empty() {
            self.weights.extend((0..self.config.n_features).map(|_| rng.random::<f64>()));
        }
        values.clear();
        let mut dot = 0.0;
        let mut weight_sum = 0.0;
        for &w in &self.weights {
            let x = rng.random::<f64>();
            dot += w * x;
            weight_sum += w;
            values.push(GenValue::Num(x));
        }
        let mut label = dot >= weight_sum * 0.5;
        // Only draw when noise is on, so a noise-free stream spends no randomness on it.
        if self.config.noise > 0.0 && rng.random::<f64>() < self.config.noise {
            label = !label;
        }
        for (w, direction) in self.weights.iter_mut().zip(self.directions.iter_mut()) {
            *w += *direction * self.config.mag_change;
            if self.config.sigma > 0.0 && rng.random::<f64>() < self.config.sigma {
                *direction = -*direction;
            }
        }
        label
    }

    /// None: the drift is continuous, there is no single point at which the concept changes.
    fn change_points(&self, _total: Option<u64>) -> Vec<u64> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn nums(values: &[GenValue]) -> Vec<f64> {
        values
            .iter()
            .map(|v| match v {
                GenValue::Num(x) => *x,
                GenValue::Cat(c) => panic!("unexpected categorical {c}"),
            })
            .collect()
    }

    fn draw(config: &HyperplaneConfig, seed: u64, n: u64) -> Vec<(Vec<f64>, bool)> {
        let mut stream = HyperplaneStream::new(config).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = Vec::new();
        (0..n)
            .map(|p| {
                let label = stream.next_example(&mut rng, p, None, &mut values);
                (nums(&values), label)
            })
            .collect()
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let config = HyperplaneConfig::default();
        assert_eq!(draw(&config, 11, 1000), draw(&config, 11, 1000));
        assert_ne!(draw(&config, 11, 1000), draw(&config, 12, 1000));
    }

    #[test]
    fn features_in_unit_interval_and_labels_balanced() {
        let config = HyperplaneConfig::default();
        let examples = draw(&config, 2, 20_000);
        assert!(examples.iter().all(|(x, _)| x.len() == 10 && x.iter().all(|v| (0.0..1.0).contains(v))));
        let positive = examples.iter().filter(|(_, y)| *y).count() as f64 / 20_000.0;
        assert!((0.4..0.6).contains(&positive), "positive rate {positive}");
    }

    #[test]
    fn labels_follow_the_current_hyperplane_when_noise_free() {
        let config = HyperplaneConfig { noise: 0.0, ..HyperplaneConfig::default() };
        let mut stream = HyperplaneStream::new(&config).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut values = Vec::new();
        for p in 0..2000 {
            // Weights drawn on the first example, so check from the second on with the
            // weights that were current when it was drawn.
            let before = stream.clone();
            let label = stream.next_example(&mut rng, p, None, &mut values);
            if p > 0 {
                assert_eq!(label, before.concept_label(&nums(&values)), "position {p}");
            }
        }
    }

    #[test]
    fn drift_features_move_and_others_stay() {
        let config = HyperplaneConfig { noise: 0.0, ..HyperplaneConfig::default() };
        let mut stream = HyperplaneStream::new(&config).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut values = Vec::new();
        assert!(stream.weights().is_empty());
        stream.next_example(&mut rng, 0, None, &mut values);
        let after_first = stream.weights().to_vec();
        assert_eq!(after_first.len(), 10);
        for p in 1..5000 {
            stream.next_example(&mut rng, p, None, &mut values);
        }
        let later = stream.weights();
        for i in 0..2 {
            // Each step is exactly ±mag_change, so after 4999 steps the weight moved by an
            // odd multiple of it: never zero.
            let moved = (later[i] - after_first[i]) / config.mag_change;
            assert!(moved.abs() >= 0.5, "weight {i} moved {moved} steps");
            assert!((moved - moved.round()).abs() < 1e-6 && moved.round() as i64 % 2 != 0);
        }
        assert_eq!(&later[2..], &after_first[2..]);
    }

    #[test]
    fn drift_changes_labels_of_fixed_points() {
        // Steady rotation (no direction flips) of a few weights must relabel part of a fixed
        // probe set: the concept really drifts.
        let config =
            HyperplaneConfig { mag_change: 0.01, sigma: 0.0, noise: 0.0, ..HyperplaneConfig::default() };
        let mut stream = HyperplaneStream::new(&config).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut values = Vec::new();
        stream.next_example(&mut rng, 0, None, &mut values);
        let mut probe_rng = ChaCha8Rng::seed_from_u64(99);
        let probes: Vec<Vec<f64>> =
            (0..2000).map(|_| (0..10).map(|_| probe_rng.random::<f64>()).collect()).collect();
        let before: Vec<bool> = probes.iter().map(|x| stream.concept_label(x)).collect();
        for p in 1..200 {
            stream.next_example(&mut rng, p, None, &mut values);
        }
        let changed = probes.iter().zip(&before).filter(|(x, b)| stream.concept_label(x) != **b).count();
        assert!(changed > 40, "only {changed} probe labels changed");
    }

    #[test]
    fn static_when_mag_change_is_zero() {
        let config = HyperplaneConfig { mag_change: 0.0, ..HyperplaneConfig::default() };
        let mut stream = HyperplaneStream::new(&config).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut values = Vec::new();
        stream.next_example(&mut rng, 0, None, &mut values);
        let first = stream.weights().to_vec();
        for p in 1..1000 {
            stream.next_example(&mut rng, p, None, &mut values);
        }
        assert_eq!(stream.weights(), &first[..]);
        assert!(stream.change_points(Some(1000)).is_empty());
    }

    #[test]
    fn config_defaults_unknown_fields_and_validation() {
        let parsed: HyperplaneConfig = serde_json::from_str(r#"{"n_features": 4}"#).unwrap();
        assert_eq!(parsed, HyperplaneConfig { n_features: 4, ..HyperplaneConfig::default() });
        assert!(serde_json::from_str::<HyperplaneConfig>(r#"{"noise_percentage": 0.1}"#).is_err());
        let bad = [
            HyperplaneConfig { n_features: 0, n_drift_features: 0, ..HyperplaneConfig::default() },
            HyperplaneConfig { n_features: 3, n_drift_features: 4, ..HyperplaneConfig::default() },
            HyperplaneConfig { mag_change: -0.1, ..HyperplaneConfig::default() },
            HyperplaneConfig { sigma: 2.0, ..HyperplaneConfig::default() },
            HyperplaneConfig { noise: f64::NAN, ..HyperplaneConfig::default() },
        ];
        for config in bad {
            assert!(HyperplaneStream::new(&config).is_err(), "{config:?}");
        }
        let stream =
            HyperplaneStream::new(&HyperplaneConfig { n_features: 3, ..Default::default() }).unwrap();
        let names: Vec<String> = stream.fields().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["x0", "x1", "x2"]);
    }
}
