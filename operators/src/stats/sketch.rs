//! Quantile sketch: a thin wrapper around the `sketches-ddsketch` crate.
//!
//! DDSketch (Masson, Rim and Lee, VLDB 2019) was chosen over a t-digest because its error bound
//! is a documented, data-independent *relative* guarantee, and because merging two sketches with
//! the same settings is exact (bin counts add up): a window assembled from panes answers exactly
//! what one sketch fed the same values would. The crate is the one `metrics-util` uses, and its
//! state is `serde`-serialisable (feature `use_serde`) for checkpoints.
//!
//! # Accuracy
//!
//! For a sketch holding `n` values, [`QuantileSketch::quantile`]`(q)` estimates the *lower*
//! quantile: the value of rank `floor(q · (n − 1))` (0-based) in the sorted values. For values
//! whose magnitude is above [`SketchConfig::MIN_VALUE`] the estimate `v̂` of the true value `v`
//! satisfies `|v̂ − v| ≤ relative_error · |v|`; values of smaller magnitude are counted as zero
//! (absolute error at most `MIN_VALUE`). `q = 0` and `q = 1` return the exact min and max. The
//! bound holds as long as the values fit in `max_bins` logarithmic bins per sign, i.e. span a
//! ratio of about `((1 + α)/(1 − α))^max_bins` (about 10^17 for the defaults); beyond that the
//! smallest bins collapse and low quantiles lose accuracy.

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

use super::{invalid, StatsError};

/// Accuracy and size settings of a quantile sketch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SketchConfig {
    /// Relative accuracy α of every quantile estimate, in (0, 0.5]. Default 0.01 (1 %). Memory
    /// grows like `ln(max/min) / (2α)` bins of 8 bytes.
    pub relative_error: f64,
    /// Maximum number of bins per sign (positive and negative values each). Default 2048.
    pub max_bins: u32,
}

impl Default for SketchConfig {
    fn default() -> Self {
        SketchConfig { relative_error: 0.01, max_bins: 2048 }
    }
}

impl SketchConfig {
    /// Values with a magnitude at or below this are counted as zero by the sketch.
    pub const MIN_VALUE: f64 = 1.0e-9;

    /// Check the settings.
    ///
    /// # Errors
    ///
    /// [`StatsError::InvalidConfig`] when `relative_error` is not in (0, 0.5] or `max_bins` < 16.
    pub fn validate(&self, component: &'static str) -> Result<(), StatsError> {
        if !(self.relative_error > 0.0 && self.relative_error <= 0.5) {
            return Err(invalid(
                component,
                "sketch.relative_error",
                format!("expected a number in (0, 0.5], got {}", self.relative_error),
            ));
        }
        if self.max_bins < 16 {
            return Err(invalid(
                component,
                "sketch.max_bins",
                format!("expected at least 16, got {}", self.max_bins),
            ));
        }
        Ok(())
    }

    fn ddsketch_config(&self) -> Config {
        Config::new(self.relative_error, self.max_bins, Self::MIN_VALUE)
    }
}

/// A mergeable quantile sketch with a relative-error guarantee (see the module docs).
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "SketchState", into = "SketchState")]
pub struct QuantileSketch {
    config: SketchConfig,
    inner: DDSketch,
}

/// Checkpoint form. An empty DDSketch holds `min = +inf` and `max = -inf`, which JSON writes as
/// `null` and cannot read back; so an empty sketch is stored as its settings alone.
#[derive(Clone, Serialize, Deserialize)]
struct SketchState {
    config: SketchConfig,
    sketch: Option<DDSketch>,
}

impl From<QuantileSketch> for SketchState {
    fn from(s: QuantileSketch) -> Self {
        SketchState { config: s.config, sketch: (s.inner.count() > 0).then_some(s.inner) }
    }
}

impl From<SketchState> for QuantileSketch {
    fn from(s: SketchState) -> Self {
        let inner = s.sketch.unwrap_or_else(|| DDSketch::new(s.config.ddsketch_config()));
        QuantileSketch { config: s.config, inner }
    }
}

impl std::fmt::Debug for QuantileSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantileSketch")
            .field("count", &self.inner.count())
            .field("bins", &self.inner.length())
            .finish()
    }
}

impl QuantileSketch {
    /// An empty sketch. The settings are assumed valid (see [`SketchConfig::validate`]).
    pub fn new(config: SketchConfig) -> Self {
        QuantileSketch { config, inner: DDSketch::new(config.ddsketch_config()) }
    }

    /// Add one value. Non-finite values must be filtered out by the caller: they would poison
    /// the sketch's min and max.
    #[inline]
    pub fn add(&mut self, x: f64) {
        self.inner.add(x);
    }

    /// Number of values added (including through merges).
    pub fn count(&self) -> u64 {
        self.inner.count() as u64
    }

    /// Estimated lower quantile `q` in [0, 1]; `None` when the sketch is empty or `q` is outside
    /// [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.inner.quantile(q).ok().flatten()
    }

    /// Add every value of `other` to `self`.
    ///
    /// # Errors
    ///
    /// [`StatsError::IncompatibleMerge`] when the two sketches were built with different
    /// [`SketchConfig`]s.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), StatsError> {
        self.inner.merge(&other.inner).map_err(|e| StatsError::IncompatibleMerge(e.to_string()))
    }

    /// Approximate heap plus inline size in bytes (8 bytes per allocated bin).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<DDSketch>() + self.inner.length() * std::mem::size_of::<u64>()
    }
}
