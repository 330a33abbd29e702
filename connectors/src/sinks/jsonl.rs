//! JSON-lines file sink: one JSON object per output row.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_json::LineDelimitedWriter;
use eddy_engine::sink::{Sink, SinkError, SinkInput, SinkResume};
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
    pub fn build(&self, name: &str, resume: SinkResume) -> Result<Box<dyn Sink>, SinkError> {
        let file = open_output(name, &self.path, self.append, resume)?;
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

/// Opens a file sink's output for `resume`: a fresh run creates it (or appends with
/// `append`); a restored run cuts it back to the checkpointed length — dropping what was
/// written after the checkpoint, which the restored run writes again identically — or, with
/// no recorded length, appends.
///
/// # Errors
/// When the file cannot be opened, or is shorter than the checkpointed length (it was
/// replaced or truncated since: its rows would be lost).
pub fn open_output(
    name: &str,
    path: &std::path::Path,
    append: bool,
    resume: SinkResume,
) -> Result<File, SinkError> {
    match resume {
        SinkResume::Fresh => create_file(name, path, append),
        SinkResume::Append => create_file(name, path, true),
        SinkResume::Truncate(len) => {
            let err =
                |e: std::io::Error| SinkError::new(name, format!("cannot reopen {}: {e}", path.display()));
            let file = OpenOptions::new().write(true).open(path).map_err(err)?;
            let now = file.metadata().map_err(err)?.len();
            if now < len {
                return Err(SinkError::new(
                    name,
                    format!(
                        "{} has {now} bytes but the checkpoint recorded {len}: it was replaced or truncated since the checkpoint",
                        path.display()
                    ),
                ));
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

    fn checkpoint(&mut self) -> Result<Option<u64>, SinkError> {
        durable_length(&self.name, &mut self.writer).map(Some)
    }
}
