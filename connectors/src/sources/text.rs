//! `TextSource`: the source behind every newline-delimited text format (JSON lines, CSV), from
//! a file or stdin.
//!
//! The fast path decodes a whole chunk of lines with Arrow's vectorised decoder. When that
//! fails (one bad line spoils the chunk), the chunk is decoded again line by line so that only
//! the bad lines become dead letters — the slow path costs only where the data is bad.
//!
//! A file (bounded) source decodes two chunks at a time, one on a helper thread: Arrow's JSON
//! decoder is the critical path of a file replay, and this lets it use both cores while the
//! engine catches up. Batches still come out in file order; only the order in which dead
//! letters of two neighbouring chunks are written can vary.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use crossbeam_channel::{bounded, Receiver, Sender};
use eddy_engine::record::SourceBatch;
use eddy_engine::source::{Poll, Source, SourceError};

use super::lines::{LineChunk, LineReader, ReadState};
use super::normalize::{reason, Normalizer};

/// A format's decoder: lines in, Arrow rows out.
pub trait RowDecoder: Send {
    /// Infers the schema to decode with from sample lines (bad lines are ignored).
    ///
    /// # Errors
    /// When no line of the sample can be understood.
    fn infer(&mut self, sample: &LineChunk) -> Result<SchemaRef, String>;

    /// Decodes all lines of `chunk`, one row per line.
    ///
    /// # Errors
    /// When any line is bad; the caller then falls back to [`RowDecoder::decode_line`].
    fn decode_chunk(&mut self, chunk: &LineChunk) -> Result<RecordBatch, String>;

    /// Decodes one line into one row.
    ///
    /// # Errors
    /// With a description of what is wrong with the line.
    fn decode_line(&mut self, line: &[u8]) -> Result<RecordBatch, String>;

    /// The field a [`RowDecoder::decode_line`] error message is about, if it names one.
    fn field_of_error(&self, message: &str) -> Option<String>;

    /// An independent decoder with the same (inferred) schema, for a helper thread.
    fn fork(&self) -> Box<dyn RowDecoder>;
}

/// A decoder with the validation that follows it: one chunk of lines in, one batch out.
struct ChunkDecoder {
    decoder: Box<dyn RowDecoder>,
    normalizer: Normalizer,
}

/// The helper thread that decodes every other chunk.
struct Helper {
    tx: Option<Sender<LineChunk>>,
    rx: Receiver<(Option<SourceBatch>, LineChunk)>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// See the module docs.
pub struct TextSource {
    name: String,
    reader: LineReader,
    local: ChunkDecoder,
    batch_size: usize,
    bounded: bool,
    inferred: bool,
    chunk: LineChunk,
    spare: LineChunk,
    ended: bool,
    helper: Option<Helper>,
    ready: VecDeque<SourceBatch>,
}

impl TextSource {
    /// A source reading `reader` with `decoder`.
    pub fn new(
        name: &str,
        reader: LineReader,
        decoder: Box<dyn RowDecoder>,
        normalizer: Normalizer,
        batch_size: usize,
        bounded: bool,
    ) -> Self {
        TextSource {
            name: name.to_string(),
            reader,
            local: ChunkDecoder { decoder, normalizer },
            batch_size,
            bounded,
            inferred: false,
            chunk: LineChunk::default(),
            spare: LineChunk::default(),
            ended: false,
            helper: None,
            ready: VecDeque::new(),
        }
    }

    /// Starts the helper thread (bounded sources, after the schema is inferred).
    fn start_helper(&mut self) {
        let mut worker =
            ChunkDecoder { decoder: self.local.decoder.fork(), normalizer: self.local.normalizer.clone() };
        let (tx, jobs) = bounded::<LineChunk>(1);
        let (done, rx) = bounded::<(Option<SourceBatch>, LineChunk)>(1);
        let handle = std::thread::Builder::new().name(format!("decode-{}", self.name)).spawn(move || {
            for chunk in jobs {
                let out = worker.decode(&chunk);
                if done.send((out, chunk)).is_err() {
                    return;
                }
            }
        });
        if let Ok(handle) = handle {
            self.helper = Some(Helper { tx: Some(tx), rx, handle: Some(handle) });
        }
    }

    fn read(&mut self, chunk: &mut LineChunk) -> Result<ReadState, SourceError> {
        chunk.clear();
        let state = self.reader.read_chunk(self.batch_size, chunk).map_err(|e| self.io_error(e))?;
        if state == ReadState::End {
            self.ended = true;
        }
        Ok(state)
    }

    fn io_error(&self, e: std::io::Error) -> SourceError {
        SourceError::new(&self.name, format!("read failed: {e}"))
    }
}

impl ChunkDecoder {
    /// Dead-letter reason of a decode error: a value that does not fit its field's type is
    /// `wrong_type` (`bad_time` for the time field); anything else is `malformed`.
    fn classify(&self, message: &str) -> &'static str {
        match self.decoder.field_of_error(message) {
            Some(f) if f == self.normalizer.spec().time => reason::BAD_TIME,
            Some(_) => reason::WRONG_TYPE,
            None => reason::MALFORMED,
        }
    }

    fn decode(&mut self, chunk: &LineChunk) -> Option<SourceBatch> {
        if chunk.is_empty() {
            return None;
        }
        let raw = |i: usize| chunk.line_text(i);
        if let Ok(batch) = self.decoder.decode_chunk(chunk) {
            if batch.num_rows() == chunk.len() {
                return Some(self.normalizer.normalize(batch, chunk.offsets.clone(), &raw));
            }
        }
        // Slow path: find the bad lines.
        let mut good = Vec::new();
        let mut offsets = Vec::new();
        let mut texts = Vec::new();
        for i in 0..chunk.len() {
            match self.decoder.decode_line(chunk.line(i)) {
                Ok(b) if b.num_rows() == 1 => {
                    good.push(b);
                    offsets.push(chunk.offsets[i]);
                    texts.push(i);
                }
                Ok(b) => self.normalizer.reject(
                    chunk.offsets[i],
                    reason::MALFORMED,
                    format!("expected one record per line, found {}", b.num_rows()),
                    &chunk.line_text(i),
                ),
                Err(e) => {
                    let why = self.classify(&e);
                    self.normalizer.reject(chunk.offsets[i], why, e, &chunk.line_text(i))
                }
            }
        }
        if good.is_empty() {
            return None;
        }
        let schema = good[0].schema();
        let batch = arrow_select::concat::concat_batches(&schema, &good).ok()?;
        let raw = |i: usize| chunk.line_text(texts[i]);
        Some(self.normalizer.normalize(batch, offsets, &raw))
    }
}

impl Source for TextSource {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Ok(Poll::Batch(b));
            }
            if self.ended {
                return Ok(Poll::End);
            }
            let mut chunk = std::mem::take(&mut self.chunk);
            let state = self.read(&mut chunk)?;
            if !self.inferred && !chunk.is_empty() {
                // The schema comes from the first chunk of data (bad lines ignored).
                self.local.decoder.infer(&chunk).map_err(|e| SourceError::new(&self.name, e))?;
                self.inferred = true;
                if self.bounded {
                    self.start_helper();
                }
            }
            if state == ReadState::More && self.helper.is_some() {
                // Two chunks at once: this one on the helper, the next one here.
                let helper = self.helper.as_ref().expect("checked above");
                let sent = helper.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
                if !sent {
                    return Err(SourceError::new(&self.name, "internal error: decode helper stopped"));
                }
                let mut next = std::mem::take(&mut self.spare);
                self.read(&mut next)?;
                let second = self.local.decode(&next);
                let helper = self.helper.as_ref().expect("checked above");
                let (first, returned) = helper
                    .rx
                    .recv()
                    .map_err(|_| SourceError::new(&self.name, "internal error: decode helper stopped"))?;
                self.ready.extend(first);
                self.ready.extend(second);
                self.chunk = returned;
                self.spare = next;
                continue;
            }
            let out = self.local.decode(&chunk);
            self.chunk = chunk;
            match out {
                Some(b) => return Ok(Poll::Batch(b)),
                None if state == ReadState::Waiting => return Ok(Poll::Idle),
                // A chunk of only bad lines: read on.
                None => {}
            }
        }
    }

    fn roles(&self) -> Vec<eddy_engine::record::StreamRole> {
        vec![self.local.normalizer.role()]
    }

    fn is_bounded(&self) -> bool {
        self.bounded
    }
}

/// Reads a text file, or stdin for the path `-`.
///
/// # Errors
/// When the file cannot be opened.
pub fn open_input(path: &std::path::Path) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())));
    }
    let f = std::fs::File::open(path)?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
}
