//! Arrow IPC files (the file format, or the streaming format), the fastest way to replay data:
//! batches arrive already columnar and typed, so decoding costs nothing.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_ipc::reader::{FileReader, StreamReader};
use arrow_schema::ArrowError;
use eddy_engine::record::StreamRole;
use eddy_engine::source::{Poll, Source, SourceBuildContext, SourceError, SourcePosition};
use serde::{Deserialize, Serialize};

use super::normalize::Normalizer;
use super::{BuildSource, SourceKind};
use crate::error::{ConnectorError, Problem};

/// An Arrow IPC file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArrowIpcSourceConfig {
    /// Path of the file (IPC file format or streaming format; detected from the magic).
    pub path: PathBuf,
    /// `events` or `labels`; defaults to the source's name when that is one of them.
    #[serde(default)]
    pub role: Option<StreamRole>,
}

enum Reader {
    File(FileReader<BufReader<File>>),
    Stream(StreamReader<BufReader<File>>),
}

/// See the module docs.
pub struct ArrowIpcSource {
    name: String,
    reader: Reader,
    normalizer: Normalizer,
    next_row: u64,
    pending: Option<(RecordBatch, usize)>,
    batch_size: usize,
}

impl BuildSource for ArrowIpcSourceConfig {
    /// Opens the file.
    ///
    /// # Errors
    /// When the file cannot be opened, is not Arrow IPC, or is shorter than the checkpoint's
    /// position.
    fn build(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, ConnectorError> {
        let err =
            |p: Problem| ConnectorError::source(&cx.name, SourceKind::ArrowIpc.as_str(), p).field("path");
        let path = || self.path.clone();
        let mut f = File::open(&self.path).map_err(|source| err(Problem::Open { path: path(), source }))?;
        let mut magic = [0u8; 6];
        let is_file = f.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
        f.seek(SeekFrom::Start(0)).map_err(|e| err(Problem::Read(e)))?;
        let buf = BufReader::with_capacity(1 << 20, f);
        let reader = if is_file {
            Reader::File(
                FileReader::try_new(buf, None)
                    .map_err(|source| err(Problem::InvalidIpcFile { path: path(), source }))?,
            )
        } else {
            Reader::Stream(
                StreamReader::try_new(buf, None)
                    .map_err(|source| err(Problem::InvalidIpcStream { path: path(), source }))?,
            )
        };
        let mut source = ArrowIpcSource {
            name: cx.name.clone(),
            reader,
            normalizer: Normalizer::new(&cx.name, cx.role, cx.spec().clone()),
            next_row: 0,
            pending: None,
            batch_size: cx.batch_size,
        };
        match &cx.resume {
            None => {}
            Some(SourcePosition::Rows { rows }) => source.skip(*rows).map_err(err)?,
            Some(other) => {
                return Err(err(Problem::WrongPosition {
                    position: other.clone(),
                    expected: "a row position",
                }))
            }
        }
        Ok(Box::new(source))
    }
}

impl ArrowIpcSource {
    /// The next stretch of rows to hand out: the rest of a batch cut earlier, or a new batch.
    fn next_batch(&mut self) -> Result<Option<(RecordBatch, usize)>, ArrowError> {
        if let Some(p) = self.pending.take() {
            return Ok(Some(p));
        }
        let next = match &mut self.reader {
            Reader::File(r) => r.next(),
            Reader::Stream(r) => r.next(),
        };
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(e),
            Some(Ok(b)) => Ok(Some((b, 0))),
        }
    }

    /// Skips the first `rows` rows (resuming from a checkpoint).
    fn skip(&mut self, rows: u64) -> Result<(), Problem> {
        while self.next_row < rows {
            let Some((batch, start)) = self.next_batch().map_err(Problem::ReadBatch)? else {
                return Err(Problem::RowsEnd { rows, has: self.next_row });
            };
            let take = ((batch.num_rows() - start) as u64).min(rows - self.next_row) as usize;
            if start + take < batch.num_rows() {
                self.pending = Some((batch, start + take));
            }
            self.next_row += take as u64;
        }
        Ok(())
    }
}

impl Source for ArrowIpcSource {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        let Some((batch, start)) =
            self.next_batch().map_err(|e| SourceError::new(&self.name, Problem::ReadBatch(e).to_string()))?
        else {
            return Ok(Poll::End);
        };
        // Large IPC batches are cut to the pipeline's batch size to keep latency and memory
        // per message bounded.
        let len = (batch.num_rows() - start).min(self.batch_size);
        let slice = batch.slice(start, len);
        if start + len < batch.num_rows() {
            self.pending = Some((batch, start + len));
        }
        let offsets: Vec<u64> = (self.next_row..self.next_row + len as u64).collect();
        self.next_row += len as u64;
        let raw = |i: usize| render_row(&slice, i);
        let mut out = self.normalizer.normalize(slice.clone(), offsets, &raw);
        out.position = Some(SourcePosition::Rows { rows: self.next_row });
        Ok(Poll::Batch(out))
    }

    fn roles(&self) -> Vec<eddy_engine::record::StreamRole> {
        vec![self.normalizer.role()]
    }

    fn is_bounded(&self) -> bool {
        true
    }
}

/// Renders one row as a JSON object for a dead letter.
fn render_row(batch: &RecordBatch, i: usize) -> String {
    let mut out = Vec::new();
    {
        let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
        if w.write(&batch.slice(i, 1)).is_err() || w.finish().is_err() {
            return format!("<row {i}>");
        }
    }
    String::from_utf8_lossy(&out).trim_end().to_string()
}
