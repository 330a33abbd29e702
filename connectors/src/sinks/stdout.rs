//! Stdout sink: JSON lines on standard output, for piping into other tools.

use std::io::Write;

use arrow_array::RecordBatch;
use eddy_engine::sink::{Sink, SinkBuildContext, SinkError, SinkInput};
use serde::{Deserialize, Serialize};

use super::jsonl::write_json_lines;
use super::BuildSink;
use crate::error::ConnectorError;

/// Standard output.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// Which output to write; defaults to the sink's name when that is an output's name.
    #[serde(default)]
    pub input: Option<SinkInput>,
}

impl BuildSink for StdoutSinkConfig {
    /// Builds the sink (which cannot fail).
    fn build(&self, cx: &SinkBuildContext) -> Result<Box<dyn Sink>, ConnectorError> {
        Ok(Box::new(StdoutSink {
            name: cx.name.clone(),
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
        }))
    }
}

/// See the module docs.
pub struct StdoutSink {
    name: String,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        write_json_lines(&mut self.out, batch).map_err(|e| SinkError::new(&self.name, e.to_string()))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| SinkError::new(&self.name, e.to_string()))
    }
}
