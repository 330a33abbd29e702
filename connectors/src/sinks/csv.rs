//! CSV file sink with a header row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use eddy_engine::sink::{Sink, SinkError, SinkInput};
use serde::{Deserialize, Serialize};

use super::jsonl::create_file;

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

impl CsvSinkConfig {
    /// Creates the file.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn build(&self, name: &str) -> Result<Box<dyn Sink>, SinkError> {
        let file = create_file(name, &self.path, false)?;
        Ok(Box::new(CsvSink {
            name: name.to_string(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            wrote_header: false,
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
}
