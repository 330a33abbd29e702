//! Stdout sink: JSON lines on standard output, for piping into other tools.

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
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

/// Exit status of a process whose stdout reader went away: 128 + SIGPIPE, what a shell reports
/// for `yes | head`.
pub const CLOSED_PIPE_EXIT: i32 = 141;

/// Ends the process quietly when stdout's reader went away (`eddy run | head`), as the default
/// SIGPIPE action does for any Unix filter (Rust ignores SIGPIPE, so the write fails with
/// EPIPE instead): no error message, exit status 141. Nothing is drained, exactly as after a
/// SIGKILL, from which a run with `[checkpoint]` resumes byte-identically.
fn exit_if_closed(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(CLOSED_PIPE_EXIT);
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        write_json_lines(&mut self.out, batch).map_err(|e| {
            if let ArrowError::IoError(_, io) = &e {
                exit_if_closed(io);
            }
            SinkError::new(&self.name, e.to_string())
        })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| {
            exit_if_closed(&e);
            SinkError::new(&self.name, e.to_string())
        })
    }
}
