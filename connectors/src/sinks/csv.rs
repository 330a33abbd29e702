//! CSV file sink with a header row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use eddy_engine::sink::{Sink, SinkBuildContext, SinkError, SinkInput, SinkResume};
use serde::{Deserialize, Serialize};

use super::jsonl::{durable_length, open_output};
use super::{BuildSink, SinkKind};
use crate::error::ConnectorError;

/// A CSV file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSinkConfig {
    /// Path of the file; parent directories are created.
    pub path: PathBuf,
    /// Which output to write; defaults to the sink's name when that is an output's name.
    #[serde(default)]
    pub input: Option<SinkInput>,
}

impl BuildSink for CsvSinkConfig {
    /// Creates the file.
    ///
    /// # Errors
    /// When the file cannot be created (or, resuming, reopened).
    fn build(&self, cx: &SinkBuildContext) -> Result<Box<dyn Sink>, ConnectorError> {
        let resume = cx.resume;
        let file = open_output(&self.path, false, resume)
            .map_err(|p| ConnectorError::sink(&cx.name, SinkKind::Csv.as_str(), p).field("path"))?;
        // A restored file keeps its header; an appended-to empty file still needs one.
        let has_content = file.metadata().map(|m| m.len() > 0).unwrap_or(false);
        Ok(Box::new(CsvSink {
            name: cx.name.clone(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            wrote_header: resume != SinkResume::Fresh && has_content,
        }))
    }
}

/// See the module docs.
pub struct CsvSink {
    name: String,
    out: Option<BufWriter<File>>,
    wrote_header: bool,
}

impl Sink for CsvSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let out = self.out.as_mut().ok_or_else(|| SinkError::new(&self.name, "sink already closed"))?;
        let mut w = arrow_csv::WriterBuilder::new().with_header(!self.wrote_header).build(out);
        w.write(batch).map_err(|e| SinkError::new(&self.name, e.to_string()))?;
        self.wrote_header = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(out) = &mut self.out {
            out.flush().map_err(|e| SinkError::new(&self.name, e.to_string()))?;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<Option<u64>, SinkError> {
        let out = self.out.as_mut().ok_or_else(|| SinkError::new(&self.name, "sink already closed"))?;
        durable_length(&self.name, out).map(Some)
    }
}
