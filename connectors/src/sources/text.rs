//! `TextSource`: the source behind every newline-delimited text format (JSON lines, CSV), from
//! a file or stdin.
//!
//! The fast path decodes a whole chunk of lines with Arrow's vectorised decoder. When that
//! fails (one bad line spoils the chunk), the chunk is decoded again line by line so that only
//! the bad lines become dead letters — the slow path costs only where the data is bad.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use eddy_engine::source::{Poll, Source, SourceBuildContext, SourceError, SourcePosition};

use super::lines::{LineChunk, LineReader, ReadState};
use super::normalize::{reason, Normalizer};
pub use crate::error::DecodeError;
use crate::error::Problem;

/// A format's decoder: lines in, Arrow rows out.
pub trait RowDecoder: Send {
    /// Infers the schema to decode with from sample lines (bad lines are ignored).
    ///
    /// # Errors
    /// When no line of the sample can be understood.
    fn infer(&mut self, sample: &LineChunk) -> Result<SchemaRef, DecodeError>;

    /// Decodes all lines of `chunk`, one row per line.
    ///
    /// # Errors
    /// When any line is bad; the caller then falls back to [`RowDecoder::decode_line`].
    fn decode_chunk(&mut self, chunk: &LineChunk) -> Result<RecordBatch, DecodeError>;

    /// Decodes one line into one row.
    ///
    /// # Errors
    /// With a description of what is wrong with the line (the dead letter's detail).
    fn decode_line(&mut self, line: &[u8]) -> Result<RecordBatch, DecodeError>;

    /// The field a [`RowDecoder::decode_line`] error message is about, if it names one.
    fn field_of_error(&self, message: &str) -> Option<String>;
}

/// See the module docs.
pub struct TextSource {
    name: String,
    reader: LineReader,
    decoder: Box<dyn RowDecoder>,
    normalizer: Normalizer,
    batch_size: usize,
    bounded: bool,
    inferred: bool,
    chunk: LineChunk,
    ended: bool,
    /// Whether positions mean something (a file, not stdin).
    seekable: bool,
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
            decoder,
            normalizer,
            batch_size,
            bounded,
            inferred: false,
            chunk: LineChunk::default(),
            ended: false,
            seekable: true,
        }
    }

    /// Marks the input as not seekable (stdin): its batches carry no position and it cannot
    /// resume from a checkpoint.
    pub fn unseekable(mut self) -> Self {
        self.seekable = false;
        self
    }

    /// Applies `cx.resume` when the pipeline restores a checkpoint: the schema is inferred from
    /// the first lines of `path`, exactly as in the run that wrote the checkpoint (inferring
    /// from the lines after the position could pick other types and change the model), and
    /// reading then continues at the checkpointed line.
    ///
    /// # Errors
    /// When the position is not a text position, the input is stdin, or the file is shorter
    /// than the position (it was replaced or truncated since).
    pub fn resuming(mut self, cx: &SourceBuildContext, path: &std::path::Path) -> Result<Self, Problem> {
        if path.as_os_str() == "-" {
            self = self.unseekable();
        }
        let Some(position) = &cx.resume else {
            return Ok(self);
        };
        let SourcePosition::Lines { line, byte } = *position else {
            return Err(Problem::WrongPosition { position: position.clone(), expected: "a line position" });
        };
        if !self.seekable {
            return Err(Problem::StdinResume);
        }
        let mut sample = LineChunk::default();
        self.reader.read_chunk(self.batch_size, &mut sample).map_err(Problem::Read)?;
        if !sample.is_empty() {
            self.decoder.infer(&sample)?;
            self.inferred = true;
        }
        let open = || -> std::io::Result<(std::fs::File, u64)> {
            let mut f = std::fs::File::open(path)?;
            let len = f.metadata()?.len();
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(byte.min(len)))?;
            Ok((f, len))
        };
        let (file, len) = open().map_err(Problem::Read)?;
        if len < byte {
            return Err(Problem::InputShrunk { path: path.to_path_buf(), len, byte });
        }
        let follow = !self.bounded;
        self.reader = LineReader::resume_at(
            Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
            follow,
            line,
            byte,
        );
        Ok(self)
    }

    fn position(&self) -> Option<SourcePosition> {
        self.seekable.then(|| {
            let (line, byte) = self.reader.position();
            SourcePosition::Lines { line, byte }
        })
    }

    fn io_error(&self, e: std::io::Error) -> SourceError {
        SourceError::new(&self.name, format!("read failed: {e}"))
    }

    fn decode(&mut self, chunk: &LineChunk) -> Option<eddy_engine::record::SourceBatch> {
        decode_lines(self.decoder.as_mut(), &mut self.normalizer, chunk)
    }
}

/// Decodes a chunk of lines into one normalised batch: the whole chunk at once with the
/// format's vectorised decoder, or, when that fails (one bad line spoils the chunk), line by
/// line so that only the bad lines become dead letters (recorded in `normalizer`). `None` when
/// no line is usable.
pub fn decode_lines(
    decoder: &mut dyn RowDecoder,
    normalizer: &mut Normalizer,
    chunk: &LineChunk,
) -> Option<eddy_engine::record::SourceBatch> {
    if chunk.is_empty() {
        return None;
    }
    let raw = |i: usize| chunk.line_text(i);
    if let Ok(batch) = decoder.decode_chunk(chunk) {
        if batch.num_rows() == chunk.len() {
            return Some(normalizer.normalize(batch, chunk.offsets.clone(), &raw));
        }
    }
    // Slow path: find the bad lines.
    let mut good = Vec::new();
    let mut offsets = Vec::new();
    let mut texts = Vec::new();
    for i in 0..chunk.len() {
        match decoder.decode_line(chunk.line(i)) {
            Ok(b) if b.num_rows() == 1 => {
                good.push(b);
                offsets.push(chunk.offsets[i]);
                texts.push(i);
            }
            Ok(b) => normalizer.reject(
                chunk.offsets[i],
                reason::MALFORMED,
                format!("expected one record per line, found {}", b.num_rows()),
                &chunk.line_text(i),
            ),
            Err(DecodeError(e)) => {
                let why = classify(decoder, normalizer, &e);
                normalizer.reject(chunk.offsets[i], why, e, &chunk.line_text(i))
            }
        }
    }
    if good.is_empty() {
        return None;
    }
    let schema = good[0].schema();
    let batch = arrow_select::concat::concat_batches(&schema, &good).ok()?;
    let raw = |i: usize| chunk.line_text(texts[i]);
    Some(normalizer.normalize(batch, offsets, &raw))
}

/// Dead-letter reason of a decode error: a value that does not fit its field's type is
/// `wrong_type` (`bad_time` for the time field); anything else is `malformed`.
fn classify(decoder: &dyn RowDecoder, normalizer: &Normalizer, message: &str) -> &'static str {
    match decoder.field_of_error(message) {
        Some(f) if f == normalizer.spec().time => reason::BAD_TIME,
        Some(_) => reason::WRONG_TYPE,
        None => reason::MALFORMED,
    }
}

impl Source for TextSource {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        loop {
            if self.ended {
                return Ok(Poll::End);
            }
            let mut chunk = std::mem::take(&mut self.chunk);
            chunk.clear();
            let state = self.reader.read_chunk(self.batch_size, &mut chunk).map_err(|e| self.io_error(e))?;
            self.ended = state == ReadState::End;
            if !self.inferred && !chunk.is_empty() {
                // The schema comes from the first chunk of data (bad lines ignored).
                self.decoder.infer(&chunk).map_err(|e| SourceError::new(&self.name, e.to_string()))?;
                self.inferred = true;
            }
            let out = self.decode(&chunk);
            self.chunk = chunk;
            let out = match out {
                Some(b) => Some(b),
                // A chunk of only bad lines still reports them (and how far it got).
                None if self.normalizer.has_rejects() => Some(self.normalizer.rejects_only()),
                None => None,
            };
            match out {
                Some(mut b) => {
                    b.position = self.position();
                    return Ok(Poll::Batch(b));
                }
                None if state == ReadState::Waiting => return Ok(Poll::Idle),
                // Only blank lines: read on.
                None => {}
            }
        }
    }

    fn roles(&self) -> Vec<eddy_engine::record::StreamRole> {
        vec![self.normalizer.role()]
    }

    fn is_bounded(&self) -> bool {
        self.bounded
    }
}

/// What every text source starts from: a line reader over `path` (stdin for `-`), the
/// normaliser of the source's stream, and whether the source ends by itself (a file that is not
/// followed).
///
/// # Errors
/// When the file cannot be opened.
pub fn open_text(
    cx: &SourceBuildContext,
    path: &std::path::Path,
    follow: bool,
) -> Result<(LineReader, Normalizer, bool), Problem> {
    let input = open_input(path).map_err(|source| Problem::Open { path: path.to_path_buf(), source })?;
    let bounded = !follow && path.as_os_str() != "-";
    let normalizer = Normalizer::new(&cx.name, cx.role, cx.spec().clone());
    Ok((LineReader::new(input, follow), normalizer, bounded))
}

/// Reads a text file, or stdin for the path `-`.
fn open_input(path: &std::path::Path) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())));
    }
    let f = std::fs::File::open(path)?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
}
