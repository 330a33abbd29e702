//! Windowed feature statistics and drift against a reference sample.
//!
//! - [`accumulator`]: mergeable per-window state shaped like DataFusion's `Accumulator`
//!   ([`MomentsAccumulator`] for count/mean/variance with retraction, [`SummaryAccumulator`]
//!   adding min, max and quantiles from a DDSketch).
//! - [`window`]: the [`WindowedStats`] operator — tumbling, sliding (hop) and count windows per
//!   optional group-by key, on event time with a watermark and allowed lateness.
//! - [`sketch`]: the thin wrapper around the `sketches-ddsketch` crate, so the rest of the module
//!   never depends on the crate's API directly.
//! - [`reference`](mod@reference): [`ReferenceDrift`], Population Stability Index and the two-sample
//!   Kolmogorov–Smirnov statistic between a reference sample and the latest values.
//!
//! Everything here is plain state driven one value at a time; the engine owns threads, batches
//! and metrics. Every stateful type is `serde`-serialisable so it can go into a checkpoint.

pub mod accumulator;
pub mod reference;
pub mod sketch;
pub mod window;

pub use accumulator::{Accumulator, MomentsAccumulator, Retract, SummaryAccumulator, WindowStats};
pub use reference::{
    kolmogorov_sf, ks_p_value, ks_statistic_sorted, ReferenceDrift, ReferenceDriftConfig,
    ReferenceDriftEvent, ReferenceSource,
};
pub use sketch::{QuantileSketch, SketchConfig};
pub use window::{UpdateOutcome, WindowConfig, WindowResult, WindowedStats, WindowedStatsConfig};

/// Errors raised by the statistics operators.
///
/// Configuration errors name the component and the field so that the config layer can point a
/// person at the key to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// A configuration value is out of range or inconsistent with another one.
    #[error("invalid `{component}` setting `{field}`: {message}")]
    InvalidConfig {
        /// The component being configured (`windowed_stats`, `reference_drift`).
        component: &'static str,
        /// The offending field.
        field: &'static str,
        /// What was expected.
        message: String,
    },
    /// Two states built with different settings (sketch accuracy, bin limit) cannot be merged.
    #[error("cannot merge statistics states built with different settings: {0}")]
    IncompatibleMerge(String),
    /// A broken invariant inside eddy: this is a bug, please report it.
    #[error("internal error in window statistics (this is a bug in eddy): {0}")]
    Internal(String),
}

pub(crate) fn invalid(
    component: &'static str,
    field: &'static str,
    message: impl Into<String>,
) -> StatsError {
    StatsError::InvalidConfig { component, field, message: message.into() }
}
