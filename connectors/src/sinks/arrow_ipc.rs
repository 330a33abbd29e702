//! Arrow IPC file sink: columnar output that `arrow_ipc` sources (and pyarrow, DuckDB, polars)
//! read back without parsing.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_ipc::writer::FileWriter;
use eddy_engine::sink::{Sink, SinkBuildContext, SinkError, SinkInput, SinkResume};
use serde::{Deserialize, Serialize};

use super::jsonl::create_file;
use super::{BuildSink, SinkKind};
use crate::error::{ConnectorError, Problem};

/// An Arrow IPC file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArrowIpcSinkConfig {
    /// Path of the file; parent directories are created.
    pub path: PathBuf,
    /// Which output to write; defaults to the sink's name when that is an output's name.
    #[serde(default)]
    pub input: Option<SinkInput>,
}

impl BuildSink for ArrowIpcSinkConfig {
    /// Creates the file (the IPC writer starts with the first batch, whose schema it needs).
    ///
    /// # Errors
    /// When the file cannot be created, or the sink is asked to continue after a restart.
    fn build(&self, cx: &SinkBuildContext) -> Result<Box<dyn Sink>, ConnectorError> {
        let err = |p: Problem| ConnectorError::sink(&cx.name, SinkKind::ArrowIpc.as_str(), p);
        if cx.resume != SinkResume::Fresh {
            return Err(err(Problem::Unsupported(NO_CHECKPOINTS)).field("kind"));
        }
        let file = create_file(&self.path, false).map_err(|p| err(p).field("path"))?;
        Ok(Box::new(ArrowIpcSink { name: cx.name.clone(), file: Some(file), writer: None }))
    }
}

/// See the module docs.
pub struct ArrowIpcSink {
    name: String,
    file: Option<File>,
    writer: Option<FileWriter<BufWriter<File>>>,
}

impl Sink for ArrowIpcSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let err = |e: arrow_schema::ArrowError| SinkError::new(&self.name, e.to_string());
        if self.writer.is_none() {
            let file = self.file.take().ok_or_else(|| SinkError::new(&self.name, "sink already closed"))?;
            self.writer = Some(
                FileWriter::try_new(BufWriter::with_capacity(1 << 20, file), &batch.schema()).map_err(err)?,
            );
        }
        let w = self.writer.as_mut().expect("writer created above");
        w.write(batch).map_err(|e| SinkError::new(&self.name, e.to_string()))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(w) = &mut self.writer {
            w.finish().map_err(|e| SinkError::new(&self.name, e.to_string()))?;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<Option<u64>, SinkError> {
        Err(SinkError::new(&self.name, NO_CHECKPOINTS))
    }
}

/// Why an Arrow IPC file cannot be part of a checkpointed pipeline.
pub const NO_CHECKPOINTS: &str = "an arrow_ipc sink cannot continue after a restart (an IPC file is only valid once its footer is written); with [checkpoint], write jsonl or csv";
