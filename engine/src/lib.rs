//! eddy's dataflow runtime.
//!
//! Sources ([`source::Source`]) decode records into Arrow batches on their own threads; the
//! [`merge::StreamMerger`] orders events and labels by event time; the engine thread
//! (`engine.rs`, started by [`pipeline::Pipeline`]) scores every event with every model
//! [`slot::Slot`], holds it in the [`label_join::LabelJoin`] until its label comes, then
//! records the earlier prediction in the slot's [`evaluator::Evaluator`] and lets the slot
//! learn. Outputs leave through [`sink::Sink`]s.
//!
//! The engine's state lives in parts that each own, capture and restore their own:
//! [`counters::Counters`], [`label_join::LabelJoin`], [`models::Models`],
//! [`monitors::Monitors`] and [`window_features::WindowFeatures`]; a checkpoint's
//! [`state::EngineState`] is the struct of their states. [`spec::PipelineSpec`] is the plain
//! configuration data every part is built from. `docs/architecture.md` has the map.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod control;
pub mod counters;
pub mod drift;
pub mod encode;
mod engine;
pub mod error;
pub mod evaluator;
pub mod feature_sql;
pub mod feature_stats;
pub mod label_join;
pub mod merge;
pub mod metrics;
pub mod models;
pub mod monitors;
mod packed;
pub mod pipeline;
pub mod promotion;
pub mod publisher;
pub mod record;
pub mod retrain;
pub mod sink;
pub mod slot;
pub mod source;
pub mod spec;
pub mod state;
pub mod summary;
pub mod units;
pub mod window_features;
