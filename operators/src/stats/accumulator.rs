//! Mergeable per-window state, shaped like DataFusion's `Accumulator`.
//!
//! An accumulator is fed values with [`Accumulator::update`], combined with
//! [`Accumulator::merge`] (a window assembled from panes, or partial states from several
//! threads), read with [`Accumulator::evaluate`] and measured with [`Accumulator::size_bytes`]
//! for the memory gauge. Its `serde` form is its checkpoint state.
//!
//! Retraction (removing a value that was added earlier) is a separate trait, [`Retract`],
//! because only the moments support it exactly: min, max and quantile sketches cannot forget a
//! value. Windows that need min/max/quantiles over a sliding range use panes instead (see
//! [`super::window`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::sketch::{QuantileSketch, SketchConfig};
use super::StatsError;

/// The statistics of one window (or of one accumulator).
///
/// Variance is the *population* variance (divisor `n`), so that a window with one value reports
/// 0 rather than NaN: these figures feed gauges, and a NaN gauge breaks dashboards and alerts.
/// For an empty state `count` is 0, `mean`, `variance` and `std` are 0, and `min`, `max` and the
/// quantile values are NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Number of values.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population variance (divisor `n`).
    pub variance: f64,
    /// Population standard deviation, `sqrt(variance)`.
    pub std: f64,
    /// Smallest value (exact).
    pub min: f64,
    /// Largest value (exact).
    pub max: f64,
    /// `(q, estimate)` pairs in the order requested; see [`super::sketch`] for the accuracy.
    /// Empty for accumulators without a sketch.
    pub quantiles: Vec<(f64, f64)>,
}

impl WindowStats {
    fn from_moments(m: &MomentsAccumulator) -> Self {
        let variance = m.variance();
        WindowStats {
            count: m.count,
            mean: if m.count == 0 { 0.0 } else { m.mean },
            variance,
            std: variance.sqrt(),
            min: f64::NAN,
            max: f64::NAN,
            quantiles: Vec::new(),
        }
    }
}

/// Mergeable, checkpointable statistics state.
///
/// Callers must only feed finite values; the window operators filter and count the others.
pub trait Accumulator: Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send {
    /// Add one value.
    fn update(&mut self, x: f64);

    /// Add a slice of values (the form batches arrive in).
    fn update_batch(&mut self, xs: &[f64]) {
        for &x in xs {
            self.update(x);
        }
    }

    /// Fold `other` into `self`, as if every value of `other` had been passed to
    /// [`Accumulator::update`].
    ///
    /// # Errors
    ///
    /// [`StatsError::IncompatibleMerge`] when the two states were built with different settings.
    fn merge(&mut self, other: &Self) -> Result<(), StatsError>;

    /// The statistics; `quantiles` lists the quantile levels to estimate (ignored by
    /// accumulators without a sketch).
    fn evaluate(&self, quantiles: &[f64]) -> WindowStats;

    /// Number of values held.
    fn count(&self) -> u64;

    /// Approximate memory held, in bytes, for the memory gauge and the per-key cap.
    fn size_bytes(&self) -> usize;
}

/// Accumulators that can forget a value exactly (count, sum, mean, variance).
pub trait Retract: Accumulator {
    /// Remove one value previously added with [`Accumulator::update`]. Retracting from an empty
    /// state is a caller bug and leaves the state empty.
    fn retract(&mut self, x: f64);
}

/// Count, mean and variance with Welford's update, its exact inverse for retraction, and
/// Chan et al.'s pairwise formula for merges — numerically stable where the textbook
/// `Σx² − (Σx)²/n` cancels catastrophically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MomentsAccumulator {
    count: u64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
}

impl MomentsAccumulator {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mean of the values (0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population variance (0 when fewer than two values).
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / self.count as f64).max(0.0)
        }
    }
}

impl Accumulator for MomentsAccumulator {
    #[inline]
    fn update(&mut self, x: f64) {
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
    }

    fn merge(&mut self, other: &Self) -> Result<(), StatsError> {
        if other.count == 0 {
            return Ok(());
        }
        if self.count == 0 {
            *self = *other;
            return Ok(());
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let d = other.mean - self.mean;
        self.mean += d * nb / n;
        self.m2 += other.m2 + d * d * na * nb / n;
        self.count += other.count;
        Ok(())
    }

    fn evaluate(&self, _quantiles: &[f64]) -> WindowStats {
        WindowStats::from_moments(self)
    }

    fn count(&self) -> u64 {
        self.count
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

impl Retract for MomentsAccumulator {
    #[inline]
    fn retract(&mut self, x: f64) {
        match self.count {
            0 => {}
            1 => *self = Self::default(),
            _ => {
                self.count -= 1;
                let d = x - self.mean;
                self.mean -= d / self.count as f64;
                // Exact inverse of the Welford step; clamp the rounding residue.
                self.m2 = (self.m2 - d * (x - self.mean)).max(0.0);
            }
        }
    }
}

/// Moments plus exact min/max and a quantile sketch. Not retractable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryAccumulator {
    moments: MomentsAccumulator,
    /// Tracks exact min and max itself (DDSketch keeps them alongside its bins).
    sketch: QuantileSketch,
}

impl SummaryAccumulator {
    /// An empty state whose sketch uses `sketch` (assumed valid, see [`SketchConfig::validate`]).
    pub fn new(sketch: SketchConfig) -> Self {
        SummaryAccumulator { moments: MomentsAccumulator::new(), sketch: QuantileSketch::new(sketch) }
    }

    /// The moments part of the state.
    pub fn moments(&self) -> &MomentsAccumulator {
        &self.moments
    }
}

impl Accumulator for SummaryAccumulator {
    #[inline]
    fn update(&mut self, x: f64) {
        self.moments.update(x);
        self.sketch.add(x);
    }

    fn merge(&mut self, other: &Self) -> Result<(), StatsError> {
        self.sketch.merge(&other.sketch)?;
        self.moments.merge(&other.moments)
    }

    fn evaluate(&self, quantiles: &[f64]) -> WindowStats {
        let mut stats = WindowStats::from_moments(&self.moments);
        if self.moments.count > 0 {
            stats.min = self.sketch.quantile(0.0).unwrap_or(f64::NAN);
            stats.max = self.sketch.quantile(1.0).unwrap_or(f64::NAN);
        }
        stats.quantiles =
            quantiles.iter().map(|&q| (q, self.sketch.quantile(q).unwrap_or(f64::NAN))).collect();
        stats
    }

    fn count(&self) -> u64 {
        self.moments.count
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<MomentsAccumulator>() + self.sketch.size_bytes()
    }
}
