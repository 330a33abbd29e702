//! The engine's error type.

use crate::sink::SinkError;
use crate::source::SourceError;

/// Why a pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A source failed (not a bad record: those are dead letters).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A sink thread ended early; its own error (reported instead when known) says why.
    #[error("a sink stopped accepting output")]
    SinkStopped,
    /// A checkpoint could not be written or restored.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The inputs do not fit the pipeline (e.g. no feature left after removing key and time).
    #[error("{0}")]
    Input(String),
    /// A bug in eddy.
    #[error("internal error (a bug in eddy, please report it): {0}")]
    Internal(String),
}
