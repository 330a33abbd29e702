//! JSON-lines file sink: one JSON object per output row.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_json::LineDelimitedWriter;
use arrow_schema::ArrowError;
use eddy_engine::sink::{Sink, SinkBuildContext, SinkError, SinkInput, SinkResume};
use serde::{Deserialize, Serialize};

use super::{BuildSink, SinkKind};
use crate::error::{ConnectorError, Problem};

/// A JSON-lines file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLinesSinkConfig {
    /// Path of the file; parent directories are created.
    pub path: PathBuf,
    /// Which output to write; defaults to the sink's name when that is an output's name.
    #[serde(default)]
    pub input: Option<SinkInput>,
    /// Append to an existing file instead of replacing it.
    #[serde(default)]
    pub append: bool,
}

impl BuildSink for JsonLinesSinkConfig {
    /// Opens the file.
    ///
    /// # Errors
    /// When the file cannot be created (or, resuming, reopened).
    fn build(&self, cx: &SinkBuildContext) -> Result<Box<dyn Sink>, ConnectorError> {
        let file = open_output(&self.path, self.append, cx.resume)
            .map_err(|p| ConnectorError::sink(&cx.name, SinkKind::Jsonl.as_str(), p).field("path"))?;
        Ok(Box::new(JsonLinesSink { name: cx.name.clone(), writer: BufWriter::with_capacity(1 << 20, file) }))
    }
}

/// Opens `path` for writing (appending or replacing), creating parent directories.
///
/// # Errors
/// When a directory or the file cannot be created.
pub fn create_file(path: &std::path::Path, append: bool) -> Result<File, Problem> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Problem::Create { path: dir.to_path_buf(), source })?;
    }
    OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|source| Problem::Open { path: path.to_path_buf(), source })
}

/// Opens a file sink's output for `resume`: a fresh run creates it (or appends with
/// `append`); a restored run cuts it back to the checkpointed length — dropping what was
/// written after the checkpoint, which the restored run writes again identically — or, with
/// no recorded length, appends.
///
/// # Errors
/// When the file cannot be opened, or is shorter than the checkpointed length (it was
/// replaced or truncated since: its rows would be lost).
pub fn open_output(path: &std::path::Path, append: bool, resume: SinkResume) -> Result<File, Problem> {
    match resume {
        SinkResume::Fresh => create_file(path, append),
        SinkResume::Append => create_file(path, true),
        SinkResume::Truncate(len) => {
            let err = |source: std::io::Error| Problem::Reopen { path: path.to_path_buf(), source };
            let file = OpenOptions::new().write(true).open(path).map_err(err)?;
            let now = file.metadata().map_err(err)?.len();
            if now < len {
                return Err(Problem::OutputShrunk { path: path.to_path_buf(), len: now, recorded: len });
            }
            file.set_len(len).map_err(err)?;
            let mut file = file;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(err)?;
            Ok(file)
        }
    }
}

/// Flushes `writer`, fsyncs its file and returns the file's length: the position a
/// checkpoint records for a file sink.
///
/// # Errors
/// When flushing or syncing fails.
pub fn durable_length(name: &str, writer: &mut BufWriter<File>) -> Result<u64, SinkError> {
    writer.flush().map_err(|e| SinkError::new(name, e.to_string()))?;
    let file = writer.get_ref();
    file.sync_data().map_err(|e| SinkError::new(name, e.to_string()))?;
    file.metadata().map(|m| m.len()).map_err(|e| SinkError::new(name, e.to_string()))
}

/// See the module docs.
pub struct JsonLinesSink {
    name: String,
    writer: BufWriter<File>,
}

/// Writes `batch` as JSON lines to `out`.
///
/// # Errors
/// When encoding or writing fails.
pub fn write_json_lines(out: &mut dyn Write, batch: &RecordBatch) -> Result<(), ArrowError> {
    let mut w = LineDelimitedWriter::new(out);
    w.write(batch)?;
    w.finish()
}

impl Sink for JsonLinesSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        write_json_lines(&mut self.writer, batch).map_err(|e| SinkError::new(&self.name, e.to_string()))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.writer.flush().map_err(|e| SinkError::new(&self.name, e.to_string()))?;
        self.writer.get_ref().sync_data().map_err(|e| SinkError::new(&self.name, e.to_string()))
    }

    fn checkpoint(&mut self) -> Result<Option<u64>, SinkError> {
        durable_length(&self.name, &mut self.writer).map(Some)
    }
}
