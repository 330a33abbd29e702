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
}
