//! Stdout sink: JSON lines on standard output, for piping into other tools.

use std::io::Write;

use arrow_array::RecordBatch;
use eddy_engine::sink::{Sink, SinkError, SinkInput};
use serde::{Deserialize, Serialize};

use super::jsonl::write_json_lines;

/// Standard output.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    /// Which output to write; defaults to the sink's name when that is an output's name.
    #[serde(default)]
    pub input: Option<SinkInput>,
}

impl StdoutSinkConfig {
    /// Builds the sink.
    pub fn build(&self, name: &str) -> Box<dyn Sink> {
        Box::new(StdoutSink {
            name: name.to_string(),
            out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
        })
    }
}

/// See the module docs.
pub struct StdoutSink {
    name: String,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        write_json_lines(&mut self.out, batch).map_err(|e| SinkError::new(&self.name, e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| SinkError::new(&self.name, e.to_string()))
    }
}
