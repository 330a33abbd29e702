//! The `Source` trait: how records enter a pipeline.
//!
//! Sources run on their own threads (file reading and decoding are blocking and CPU-heavy;
//! keeping them off the engine thread lets decoding overlap with learning) and hand validated
//! Arrow batches to the engine over a bounded channel, which is what gives backpressure.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use eddy_scorer::encoding::FeatureKind;

pub use crate::record::SourcePosition;
use crate::record::{SourceBatch, StreamRole};

/// Result of one poll of a source.
#[derive(Debug)]
pub enum Poll {
    /// A batch of validated rows.
    Batch(SourceBatch),
    /// Nothing available right now (an unbounded source waiting for data).
    Idle,
    /// The source is exhausted.
    End,
}

/// An error that stops a source (I/O failure, unreadable file). Bad *records* are not errors:
/// they go to the dead-letter channel and the source goes on.
#[derive(Debug, thiserror::Error)]
#[error("source `{source_name}`: {message}")]
pub struct SourceError {
    /// Config name of the source.
    pub source_name: String,
    /// What went wrong.
    pub message: String,
}

impl SourceError {
    /// An error of source `name`.
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        SourceError { source_name: name.to_string(), message: message.into() }
    }
}

/// A source of events and/or labels.
pub trait Source: Send {
    /// Reads and decodes the next batch.
    ///
    /// # Errors
    /// Only for failures that make the source unusable; bad records go to the dead letters.
    fn poll(&mut self) -> Result<Poll, SourceError>;

    /// Whether the source ends by itself (a file without `follow`); unbounded sources run until
    /// the pipeline is stopped.
    fn is_bounded(&self) -> bool;

    /// The streams this source carries (one role for files, both for a generator). The merger
    /// waits for a batch of each before ordering rows, so this must not over-promise.
    fn roles(&self) -> Vec<StreamRole>;

    /// Told, on the source's thread, that a checkpoint covering everything up to `durable` is
    /// on disk: a source with an external cursor (a stream consumer's committed offset)
    /// commits it now, never earlier, which is what makes delivery at-least-once and, with the
    /// restored state, the effect exactly-once. Files have nothing to commit.
    ///
    /// # Errors
    /// When the commit fails; the pipeline logs it and commits again after the next checkpoint.
    fn commit(&mut self, durable: &SourcePosition) -> Result<(), SourceError> {
        let _ = durable;
        Ok(())
    }
}

/// How the fields of a stream are decoded and validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamSpec {
    /// Name of the key field.
    pub key: String,
    /// Name of the event-time field (epoch milliseconds, or an RFC 3339 string).
    pub time: String,
    /// For labels: the label field and whether labels must be 0/1.
    pub label: Option<LabelField>,
    /// Fields whose kind the config declares; others are inferred from the data.
    pub declared: Vec<(String, FeatureKind)>,
}

/// The label field of a label stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabelField {
    /// Field name.
    pub name: String,
    /// Classification labels must be 0/1 (or booleans); regression labels any finite number.
    pub binary: bool,
}

/// Everything a source needs from the pipeline when it is built (what a source config's
/// `build` receives).
#[derive(Debug, Clone)]
pub struct SourceBuildContext {
    /// Config name of the source.
    pub name: String,
    /// Decoding spec of the events stream.
    pub events: StreamSpec,
    /// Decoding spec of the labels stream.
    pub labels: StreamSpec,
    /// The role this source plays, for single-role sources.
    pub role: StreamRole,
    /// Rows per batch.
    pub batch_size: usize,
    /// Where to resume, when restoring from a checkpoint; `None` starts from the beginning (or
    /// from the source's configured start position).
    pub resume: Option<SourcePosition>,
    /// Set when the pipeline is asked to stop; unbounded sources must notice it.
    pub stop: Arc<AtomicBool>,
    /// Where the source registers its own metrics (connection state, lag).
    pub metrics: crate::metrics::MetricsFactory,
}

/// The former name of [`SourceBuildContext`].
pub type SourceContext = SourceBuildContext;

impl SourceBuildContext {
    /// The decoding spec of this source's role.
    pub fn spec(&self) -> &StreamSpec {
        match self.role {
            StreamRole::Events => &self.events,
            StreamRole::Labels => &self.labels,
        }
    }
}
