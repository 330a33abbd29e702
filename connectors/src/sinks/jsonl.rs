//! JSON-lines file sink: one JSON object per output row.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_json::LineDelimitedWriter;
use eddy_engine::sink::{Sink, SinkError, SinkInput};
use serde::{Deserialize, Serialize};

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

impl JsonLinesSinkConfig {
    /// Opens the file.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        let file = create_file(name, &self.path, self.append)?;
        Ok(Box::new(JsonLinesSink {
            name: name.to_string(),
            writer: BufWriter::with_capacity(1 << 20, file),
        }))
    }
}

/// Opens `path` for writing (appending or replacing), creating parent directories.
///
/// # Errors
/// When a directory or the file cannot be created.
pub fn create_file(name: &str, path: &std::path::Path, append: bool) -> Result<File, SinkError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| SinkError::new(name, format!("cannot create {}: {e}", dir.display())))?;
    }
    OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| SinkError::new(name, format!("cannot open {}: {e}", path.display())))
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
pub fn write_json_lines(out: &mut dyn Write, batch: &RecordBatch) -> Result<(), String> {
    let mut w = LineDelimitedWriter::new(out);
    w.write(batch).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())
}

impl Sink for JsonLinesSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        write_json_lines(&mut self.writer, batch).map_err(|e| SinkError::new(&self.name, e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.writer.flush().map_err(|e| SinkError::new(&self.name, e.to_string()))?;
        self.writer.get_ref().sync_data().map_err(|e| SinkError::new(&self.name, e.to_string()))
    }
}
