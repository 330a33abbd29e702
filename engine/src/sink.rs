//! The `Sink` trait: where predictions, dead letters (and later drift events) leave a pipeline.
//!
//! Every sink takes Arrow batches, whatever stream it is attached to, so any sink kind (a
//! JSON-lines file, stdout, a stream topic) can carry any output.

use arrow_array::RecordBatch;

/// Which output stream a sink is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkInput {
    /// One row per scored event and slot: `id, ts, slot, model_version, prediction` (and
    /// `predicted_label` for classification).
    Predictions,
    /// Every rejected record: `source, offset, reason, detail, record`.
    DeadLetters,
    /// Drift detections.
    Drift,
}

impl SinkInput {
    /// Every input, for error messages.
    pub const ALL: [SinkInput; 3] = [SinkInput::Predictions, SinkInput::DeadLetters, SinkInput::Drift];

    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkInput::Predictions => "predictions",
            SinkInput::DeadLetters => "dead_letters",
            SinkInput::Drift => "drift",
        }
    }
}

/// An error that stops a sink.
#[derive(Debug, thiserror::Error)]
#[error("sink `{sink_name}`: {message}")]
pub struct SinkError {
    /// Config name of the sink.
    pub sink_name: String,
    /// What went wrong.
    pub message: String,
}

impl SinkError {
    /// An error of sink `name`.
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        SinkError { sink_name: name.to_string(), message: message.into() }
    }
}

/// A destination for output batches. Sinks run on their own thread.
pub trait Sink: Send {
    /// Writes one batch.
    ///
    /// # Errors
    /// When the destination fails; the pipeline stops with the error.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError>;

    /// Makes everything written so far durable or visible.
    ///
    /// # Errors
    /// When the destination fails.
    fn flush(&mut self) -> Result<(), SinkError>;

    /// Makes everything written so far durable and says how far that is, for a checkpoint.
    ///
    /// Sinks that can cut their output back to a position (files: a byte length) return it;
    /// when the pipeline restarts from that checkpoint the sink is rebuilt with
    /// [`SinkResume::Truncate`], so records written after the checkpoint and re-emitted after
    /// the restart appear once. Sinks that cannot (stdout, stream topics) return `None` and
    /// document how a consumer recognises re-emitted records.
    ///
    /// # Errors
    /// When the destination fails.
    fn checkpoint(&mut self) -> Result<Option<u64>, SinkError> {
        self.flush()?;
        Ok(None)
    }
}

/// What a sink thread receives.
#[derive(Debug)]
pub enum SinkMessage {
    /// Rows to write.
    Batch(RecordBatch),
    /// A checkpoint barrier: every batch sent before it is written; make it durable with
    /// [`Sink::checkpoint`] and answer with the sink's name and position.
    Barrier(crossbeam_channel::Sender<SinkAck>),
}

/// A sink's answer to a barrier.
pub type SinkAck = Result<(String, Option<u64>), SinkError>;

/// How a sink starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkResume {
    /// A fresh run: create (or replace) the output.
    #[default]
    Fresh,
    /// Restoring a checkpoint whose sink position was this: keep the output up to it and
    /// continue after it.
    Truncate(u64),
    /// Restoring a checkpoint that recorded no position for this sink: append.
    Append,
}

/// Everything a sink needs from the pipeline when it is built (what a sink config's `build`
/// receives).
#[derive(Debug, Clone)]
pub struct SinkBuildContext {
    /// Config name of the sink.
    pub name: String,
    /// The output the sink receives.
    pub input: SinkInput,
    /// How it starts: fresh, or continuing after a checkpoint.
    pub resume: SinkResume,
    /// Where the sink registers its own metrics (connection state).
    pub metrics: crate::metrics::MetricsFactory,
}
