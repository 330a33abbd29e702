//! `FeatureEncoder`: the learning-side owner of an [`Encoding`], with online standardisation.
//!
//! Standardisation statistics are updated from every event (unsupervised, so no label leaks)
//! before the event is encoded; the engine keeps the encoded row with the pending event and
//! learns from exactly the row it scored. [`FeatureEncoder::frozen`] freezes the statistics
//! into the `Encoding` a snapshot carries, which the scorer then applies unchanged.

use eddy_scorer::encoding::{
    Encoding, EncodingPlan, Feature, FeatureKind, FeatureSpec, NumericStats, MIN_STD,
};
use serde::{Deserialize, Serialize};

/// How events become model inputs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncodingConfig {
    /// Standardise numeric features with running mean and standard deviation.
    pub standardize: bool,
    /// Bits of the hashed block for categorical values (2^bits weights).
    pub hash_bits: u32,
}

impl Default for EncodingConfig {
    fn default() -> Self {
        EncodingConfig { standardize: true, hash_bits: 18 }
    }
}

impl EncodingConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        if self.hash_bits > 28 {
            vec![("hash_bits", format!("must be between 0 and 28 (2^28 weights), got {}", self.hash_bits))]
        } else {
            Vec::new()
        }
    }
}

/// Welford's running mean and variance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningStats {
    /// Count of values seen.
    pub n: u64,
    /// Running mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl RunningStats {
    /// Adds one value.
    #[inline]
    pub fn update(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Population variance (0 for fewer than two values).
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / self.n as f64
        }
    }

    /// The statistics to scale with: until two values are seen the scale is 1, so early rows
    /// are centred but not blown up.
    #[inline]
    pub fn frozen(&self) -> NumericStats {
        let std = if self.n < 2 { 1.0 } else { self.variance().sqrt().max(MIN_STD) };
        NumericStats { mean: self.mean, std }
    }
}

/// The engine's encoder: an [`Encoding`] plus running statistics.
#[derive(Debug, Clone)]
pub struct FeatureEncoder {
    encoding: Encoding,
    plan: EncodingPlan,
    stats: Vec<RunningStats>,
}

impl FeatureEncoder {
    /// An encoder for `features` with fresh statistics.
    pub fn new(features: Vec<FeatureSpec>, config: &EncodingConfig, seed: u64) -> Self {
        let encoding = Encoding::new(features, config.standardize, config.hash_bits, seed);
        let plan = encoding.plan();
        let stats = vec![RunningStats::default(); encoding.features.len()];
        FeatureEncoder { encoding, plan, stats }
    }

    /// The encoding layout (statistics inside are not kept current; use [`Self::frozen`]).
    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }

    /// The per-row plan.
    pub fn plan(&self) -> &EncodingPlan {
        &self.plan
    }

    /// Number of weights a model over this encoding needs.
    pub fn dim(&self) -> usize {
        self.encoding.dim()
    }

    /// Updates the statistics of numeric feature `i` with `x` and returns the statistics to
    /// encode `x` with.
    #[inline]
    pub fn observe(&mut self, i: usize, x: f64) -> NumericStats {
        let s = &mut self.stats[i];
        s.update(x);
        s.frozen()
    }

    /// Observes `x` for numeric feature `i` and encodes it with the statistics that include it:
    /// what the engine does for every numeric value of an event.
    #[inline]
    pub fn encode_numeric(&mut self, i: usize, x: f64) -> Feature {
        let stats = self.observe(i, x);
        self.plan.numeric(i, x, stats, self.encoding.standardize)
    }

    /// Current statistics of feature `i` without updating them.
    #[inline]
    pub fn current(&self, i: usize) -> NumericStats {
        self.stats[i].frozen()
    }

    /// The encoding with today's statistics frozen in, as a snapshot carries it.
    pub fn frozen(&self) -> Encoding {
        let mut e = self.encoding.clone();
        e.stats = self
            .encoding
            .features
            .iter()
            .zip(&self.stats)
            .map(|(f, s)| if f.kind == FeatureKind::Numeric { s.frozen() } else { NumericStats::IDENTITY })
            .collect();
        e
    }

    /// Running statistics, for checkpoints.
    pub fn running_stats(&self) -> &[RunningStats] {
        &self.stats
    }

    /// Restores running statistics saved by [`Self::running_stats`].
    ///
    /// # Errors
    /// When the number of statistics does not match the number of features.
    pub fn restore_stats(&mut self, stats: Vec<RunningStats>) -> Result<(), StatsMismatch> {
        if stats.len() != self.stats.len() {
            return Err(StatsMismatch { saved: stats.len(), features: self.stats.len() });
        }
        self.stats = stats;
        Ok(())
    }
}

/// Saved running statistics that do not fit the encoder's features.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint has {saved} feature statistics, model has {features}")]
pub struct StatsMismatch {
    /// Statistics saved.
    pub saved: usize,
    /// Numeric features of the encoder.
    pub features: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_scorer::encoding::RawValue;

    #[test]
    fn running_stats_match_batch_formulas() {
        let xs = [1.0, 4.0, 2.5, -3.0, 10.0];
        let mut s = RunningStats::default();
        xs.iter().for_each(|&x| s.update(x));
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0;
        assert!((s.mean - mean).abs() < 1e-12);
        assert!((s.variance() - var).abs() < 1e-12);
    }

    /// The frozen encoding, applied by the scorer's code, reproduces the engine's encoding of
    /// the same value under the same statistics.
    #[test]
    fn frozen_encoding_agrees_with_online_encoding() {
        let specs = vec![FeatureSpec { name: "x".into(), kind: FeatureKind::Numeric }];
        let mut enc = FeatureEncoder::new(specs, &EncodingConfig::default(), 3);
        for x in [1.0, 2.0, 3.0, 10.0] {
            enc.observe(0, x);
        }
        let online = enc.plan().numeric(0, 4.0, enc.current(0), true);
        let frozen = enc.frozen();
        let mut out = Vec::new();
        frozen.encode_into(&frozen.plan(), &[RawValue::Number(4.0)], &mut out);
        assert_eq!(out[0].value.to_bits(), online.value.to_bits());
    }
}
