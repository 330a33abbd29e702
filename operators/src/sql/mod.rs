//! Feature SQL: the pipeline's feature transforms and windowed aggregates, written in SQL.
//!
//! - [`feature_query::FeatureQuery`]: a stateless `SELECT ... FROM events [WHERE ...]`, planned
//!   once with DataFusion and evaluated on every events batch as physical expressions.
//! - [`aggregate_query::AggregateQuery`]: the parsed form of a windowed aggregate
//!   (`GROUP BY key, TUMBLE(..)` or `HOP(..)`), checked against the events' columns.
//! - [`window_aggregate::WindowAggregate`]: its incremental state, per key in panes of the
//!   slide width, read *as of* each event's own time before the event is added; its keys are
//!   found through a `key_table::KeyTable` it can prefetch.
//!
//! Planning may use DataFusion's (async) planner at start-up; nothing on the per-batch path is
//! async or re-planned.

pub mod aggregate_query;
pub mod error;
pub mod feature_query;
mod key_table;
pub mod window_aggregate;

pub use aggregate_query::{AggregateFunction, AggregateQuery, WindowSpec};
pub use error::SqlError;
pub use feature_query::{Evaluated, EventsSchema, FeatureQuery};
pub use key_table::prefetch;
pub use window_aggregate::{AggregateState, Prefetch, WindowAggregate, PREFETCH_AHEAD};
