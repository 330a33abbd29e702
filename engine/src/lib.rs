//! eddy's dataflow runtime.
//!
//! Sources ([`source::Source`]) decode records into Arrow batches on their own threads; the
//! [`merge::StreamMerger`] orders events and labels by event time; the engine thread
//! ([`pipeline::Pipeline`]) scores every event with every model [`slot::Slot`], holds it in the
//! [`label_join::LabelJoin`] until its label comes, then records the earlier prediction in the
//! slot's [`evaluator::Evaluator`] and lets the slot learn. Outputs leave through
//! [`sink::Sink`]s.
#![warn(missing_docs)]

pub mod checkpoint;
mod dataflow;
pub mod drift;
pub mod encode;
pub mod error;
pub mod evaluator;
pub mod feature_sql;
pub mod feature_stats;
pub mod label_join;
pub mod merge;
pub mod metrics;
mod model_lifecycle;
mod packed;
pub mod pipeline;
pub mod promotion;
pub mod publisher;
pub mod record;
pub mod recovery;
pub mod retrain;
pub mod sink;
pub mod slot;
pub mod source;
pub mod summary;
pub mod units;
pub mod window_features;
