//! `RunControl`: the handles through which the outside (signal handlers, the admin endpoint,
//! progress reporting) talks to a running pipeline.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use crate::retrain::ManualTrigger;

/// Shared run controls: a stop flag (set by signal handlers) and live counters for progress
/// reporting.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Set to ask the pipeline to stop reading, drain and finish.
    pub stop: Arc<AtomicBool>,
    /// Events processed so far.
    pub events: Arc<AtomicU64>,
    /// Manual retrain requests (from the admin endpoint).
    pub manual_retrain: ManualTrigger,
}
