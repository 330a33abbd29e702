//! A card-fraud stream where per-card history matters: each card has its own typical
//! amount, and a transaction is more likely fraudulent the further its amount lies above *that
//! card's* usual amounts.
//!
//! Card `c` spends log-normally around its own level: `ln(amount) = mu_c + sigma_c * z`, with
//! `mu_c` spread between `ln(min_typical)` and `ln(max_typical)` and `sigma_c` between 0.2 and
//! 0.5 (both drawn once per card from the seed, so cards cost no memory). Most transactions
//! have `z ~ N(0, 1)`; a fraction `anomaly_rate` is shifted up by 3 to 6 standard deviations.
//! The label is fraud with probability `sigmoid(base_logit + slope * z)`. Because card levels
//! differ by two orders of magnitude, the raw amount says little on its own; the amount
//! compared with the card's recent average (a windowed aggregate) says much more. This is the
//! stream behind `configs/fraud.toml`.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::ConceptError;

use super::concept::{ConceptStream, GenFieldKind, GenValue};

/// Configuration of the [`FraudStream`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudConfig {
    /// Number of cards (chosen uniformly per transaction).
    pub cards: u64,
    /// Smallest typical amount of a card.
    pub min_typical: f64,
    /// Largest typical amount of a card.
    pub max_typical: f64,
    /// Fraction of transactions whose amount is shifted far above the card's level.
    pub anomaly_rate: f64,
    /// Fraud log-odds of a transaction at exactly the card's level.
    pub base_logit: f64,
    /// Increase of the fraud log-odds per standard deviation above the card's level.
    pub slope: f64,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            cards: 5000,
            min_typical: 5.0,
            max_typical: 500.0,
            anomaly_rate: 0.05,
            base_logit: -4.0,
            slope: 1.2,
        }
    }
}

impl FraudConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConceptError> {
        if self.cards == 0 {
            return Err(ConceptError("fraud: cards must be at least 1".into()));
        }
        if !(self.min_typical > 0.0 && self.max_typical >= self.min_typical && self.max_typical.is_finite()) {
            return Err(ConceptError(format!(
                "fraud: need 0 < min_typical <= max_typical, got {} and {}",
                self.min_typical, self.max_typical
            )));
        }
        if !(0.0..=1.0).contains(&self.anomaly_rate) {
            return Err(ConceptError(format!(
                "fraud: anomaly_rate must be in [0, 1], got {}",
                self.anomaly_rate
            )));
        }
        if !self.base_logit.is_finite() || !self.slope.is_finite() {
            return Err(ConceptError("fraud: base_logit and slope must be finite".into()));
        }
        Ok(())
    }
}

/// See the module docs.
pub struct FraudStream {
    config: FraudConfig,
}

impl FraudStream {
    /// A stream for `config`.
    ///
    /// # Errors
    /// When the configuration is invalid.
    pub fn new(config: &FraudConfig) -> Result<Self, ConceptError> {
        config.validate()?;
        Ok(FraudStream { config: config.clone() })
    }

    /// `(mu, sigma)` of card `c`'s log-amounts, fixed by the card number alone.
    fn card(&self, c: u64) -> (f64, f64) {
        let u = |seed: u64| (xxh3_64_with_seed(&c.to_le_bytes(), seed) >> 11) as f64 / (1u64 << 53) as f64;
        let (lo, hi) = (self.config.min_typical.ln(), self.config.max_typical.ln());
        (lo + (hi - lo) * u(1), 0.2 + 0.3 * u(2))
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl ConceptStream for FraudStream {
    fn fields(&self) -> Vec<(String, GenFieldKind)> {
        vec![("card_id".into(), GenFieldKind::Categorical), ("amount".into(), GenFieldKind::Numeric)]
    }

    fn next_example(
        &mut self,
        rng: &mut ChaCha8Rng,
        _position: u64,
        _total: Option<u64>,
        values: &mut Vec<GenValue>,
    ) -> bool {
        let c = rng.random_range(0..self.config.cards);
        let (mu, sigma) = self.card(c);
        let mut z = normal(rng);
        if rng.random::<f64>() < self.config.anomaly_rate {
            z += 3.0 + 3.0 * rng.random::<f64>();
        }
        let amount = ((mu + sigma * z).exp() * 100.0).round() / 100.0;
        let p = 1.0 / (1.0 + (-(self.config.base_logit + self.config.slope * z)).exp());
        // The previous row's card string is reused: no allocation per event.
        let mut card = match values.first_mut() {
            Some(GenValue::Cat(s)) => std::mem::take(s),
            _ => String::new(),
        };
        card.clear();
        card.push_str("card-");
        card.push_str(itoa::Buffer::new().format(c));
        values.clear();
        values.push(GenValue::Cat(card));
        values.push(GenValue::Num(amount.max(0.01)));
        rng.random::<f64>() < p
    }

    fn change_points(&self, _total: Option<u64>) -> Vec<u64> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn seeded_and_card_dependent() {
        let mut s = FraudStream::new(&FraudConfig::default()).unwrap();
        let draw = |s: &mut FraudStream| {
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut v = Vec::new();
            (0..2000)
                .map(|i| {
                    let y = s.next_example(&mut rng, i, None, &mut v);
                    (v.clone(), y)
                })
                .collect::<Vec<_>>()
        };
        let a = draw(&mut s);
        assert_eq!(a, draw(&mut s), "the same seed gives the same stream");
        let frauds = a.iter().filter(|(_, y)| *y).count();
        assert!((40..400).contains(&frauds), "fraud rate is a few percent: {frauds}");
        let (mu0, _) = s.card(0);
        let (mu1, _) = s.card(1);
        assert_ne!(mu0, mu1);
        assert!(FraudStream::new(&FraudConfig { cards: 0, ..FraudConfig::default() }).is_err());
    }
}
