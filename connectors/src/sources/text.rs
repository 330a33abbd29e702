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

/// Longest record a line decoder accepts, in bytes (newline excluded): 1 MiB. A longer line
/// is a `too_long` dead letter, refused before any parser sees it (the line is still read into
/// memory once, to find where it ends).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Deepest nesting of JSON arrays and objects a record may have: 64. A flat event is depth 1;
/// a deeper record is a `too_deep` dead letter, refused before any (recursive) parser sees it,
/// so no input can overflow a source thread's stack.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Why `line` must not reach a parser: it is longer than [`MAX_LINE_BYTES`].
pub fn check_line_length(line: &[u8]) -> Option<(&'static str, String)> {
    (line.len() > MAX_LINE_BYTES).then(|| {
        (
            reason::TOO_LONG,
            format!("record of {} bytes exceeds the limit of {MAX_LINE_BYTES} bytes", line.len()),
        )
    })
}

/// Why a JSON `line` must not reach a parser: it is longer than [`MAX_LINE_BYTES`] or nests
/// deeper than [`MAX_NESTING_DEPTH`]. One linear scan without recursion; brackets inside
/// strings do not count. Malformed JSON passes (the parser reports it).
pub fn check_json_line(line: &[u8]) -> Option<(&'static str, String)> {
    if let Some(bad) = check_line_length(line) {
        return Some(bad);
    }
    // Fast path: a line with at most MAX_NESTING_DEPTH opening brackets cannot nest deeper,
    // whatever its strings hold. Counting them is a SIMD search (flat records have one `{`),
    // so the common case costs a fraction of the byte-by-byte walk below, which runs only for
    // lines with many brackets. This scan sits on the events source's thread, the critical
    // path of a replay.
    // (`?`: no (MAX_NESTING_DEPTH + 1)-th opening bracket means nothing to refuse.)
    memchr::memchr2_iter(b'{', b'[', line).nth(MAX_NESTING_DEPTH)?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in line {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING_DEPTH {
                    return Some((
                        reason::TOO_DEEP,
                        format!("record nests arrays/objects deeper than the limit of {MAX_NESTING_DEPTH}"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The text of a refused record for its dead letter: at most 1 KiB of it (a `too_long` record
/// is not copied whole into the dead letters).
fn refused_text(line: &[u8]) -> String {
    const KEEP: usize = 1024;
    if line.len() <= KEEP {
        return String::from_utf8_lossy(line).into_owned();
    }
    format!("{}… ({} bytes)", String::from_utf8_lossy(&line[..KEEP]), line.len())
}

/// Removes from `chunk` every line `decoder` refuses to parse ([`RowDecoder::screen`]),
/// recording each as a dead letter in `normalizer`. Runs before schema inference and decoding,
/// so no parser ever sees a refused line.
pub fn screen_chunk(decoder: &dyn RowDecoder, normalizer: &mut Normalizer, chunk: &mut LineChunk) {
    let refused: Vec<(usize, &'static str, String)> =
        (0..chunk.len()).filter_map(|i| decoder.screen(chunk.line(i)).map(|(r, d)| (i, r, d))).collect();
    if refused.is_empty() {
        return;
    }
    let old = std::mem::take(chunk);
    chunk.blank = old.blank;
    let mut refused = refused.into_iter().peekable();
    for i in 0..old.len() {
        let line = old.line(i);
        if let Some((_, why, detail)) = refused.next_if(|(j, _, _)| *j == i) {
            normalizer.reject(old.offsets[i], why, detail, &refused_text(line));
            continue;
        }
        let start = chunk.buf.len();
        chunk.buf.extend_from_slice(line);
        chunk.lines.push((start, chunk.buf.len()));
        chunk.buf.push(b'\n');
        chunk.offsets.push(old.offsets[i]);
    }
}

/// A format's decoder: lines in, Arrow rows out.
pub trait RowDecoder: Send {
    /// Why `line` must not be handed to this decoder's parser at all (the dead letter's reason
    /// and detail): by default when it is longer than [`MAX_LINE_BYTES`].
    fn screen(&self, line: &[u8]) -> Option<(&'static str, String)> {
        check_line_length(line)
    }

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
    /// Blank lines skipped and not yet reported in a batch.
    blank_lines: u64,
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
            blank_lines: 0,
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
        // Refused lines of the sample are not inferred from (their dead letters were written
        // by the run that wrote the checkpoint).
        screen_chunk(self.decoder.as_ref(), &mut self.normalizer.clone(), &mut sample);
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
            self.blank_lines += chunk.blank;
            // Over-long or too deeply nested lines never reach a parser (inference included).
            screen_chunk(self.decoder.as_ref(), &mut self.normalizer, &mut chunk);
            if !self.inferred && !chunk.is_empty() {
                // The schema comes from the first chunk of data (bad lines ignored).
                self.decoder.infer(&chunk).map_err(|e| SourceError::new(&self.name, e.to_string()))?;
                self.inferred = true;
            }
            let out = self.decode(&chunk);
            self.chunk = chunk;
            let out = match out {
                Some(b) => Some(b),
                // A chunk of only bad lines still reports them (and how far it got), and the
                // end of the input reports the blank lines not reported yet.
                None if self.normalizer.has_rejects() || (self.ended && self.blank_lines > 0) => {
                    Some(self.normalizer.rejects_only())
                }
                None => None,
            };
            match out {
                Some(mut b) => {
                    b.blank_lines = std::mem::take(&mut self.blank_lines);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::jsonl::JsonDecoder;
    use eddy_engine::record::StreamRole;
    use eddy_engine::source::StreamSpec;
    use proptest::prelude::*;

    fn spec() -> StreamSpec {
        StreamSpec { key: "id".into(), time: "ts".into(), label: None, declared: Vec::new() }
    }

    /// Reads `text` to its end through a JSON-lines `TextSource`: (rows, dead letters, reasons,
    /// blank lines), or `None` when it fails (no JSON object in the first chunk).
    fn read_all(text: Vec<u8>) -> Option<(usize, usize, Vec<String>, u64)> {
        let normalizer = Normalizer::new("events", StreamRole::Events, spec());
        let reader = LineReader::new(Box::new(std::io::Cursor::new(text)), false);
        let decoder = JsonDecoder::new(normalizer.clone(), 8);
        let mut source = TextSource::new("events", reader, Box::new(decoder), normalizer, 8, true);
        let (mut rows, mut dead, mut reasons, mut blank) = (0, 0, Vec::new(), 0);
        loop {
            match source.poll() {
                Ok(Poll::Batch(b)) => {
                    rows += b.batch.num_rows();
                    dead += b.dead_letters.len();
                    reasons.extend(b.dead_letters.iter().map(|d| d.reason.clone()));
                    blank += b.blank_lines;
                }
                Ok(Poll::End) => return Some((rows, dead, reasons, blank)),
                Ok(Poll::Idle) => {}
                // A chunk where nothing could be inferred is a source error, not a panic.
                Err(_) => return None,
            }
        }
    }

    #[test]
    fn nesting_and_length_limits() {
        assert_eq!(check_json_line(br#"{"id":"a","x":[1,{"y":2}]}"#), None);
        let deep = format!("{}{}", "[".repeat(MAX_NESTING_DEPTH), "]".repeat(MAX_NESTING_DEPTH));
        assert_eq!(check_json_line(deep.as_bytes()), None);
        let deeper = format!("[{deep}]");
        assert_eq!(check_json_line(deeper.as_bytes()).unwrap().0, reason::TOO_DEEP);
        // Brackets inside strings (escaped quotes included) do not count.
        let quoted = format!(r#"{{"id":"\"{}"}}"#, "[".repeat(1000));
        assert_eq!(check_json_line(quoted.as_bytes()), None);
        let long = vec![b' '; MAX_LINE_BYTES + 1];
        assert_eq!(check_json_line(&long).unwrap().0, reason::TOO_LONG);
    }

    #[test]
    fn deeply_nested_and_huge_lines_are_dead_letters_not_crashes() {
        let n = 30_000;
        let mut text = br#"{"id":"a","ts":1,"x":1}"#.to_vec();
        text.push(b'\n');
        text.extend(format!("{}{}\n", "[".repeat(n), "]".repeat(n)).bytes());
        text.extend(format!("{}1{}\n", r#"{"a":"#.repeat(n), "}".repeat(n)).bytes());
        text.extend(format!("{{\"id\":\"{}\",\"ts\":2}}\n", "b".repeat(MAX_LINE_BYTES)).bytes());
        text.extend(br#"{"id":"c","ts":3,"x":2}"#);
        let (rows, dead, reasons, blank) = read_all(text).unwrap();
        assert_eq!((rows, dead, blank), (2, 3, 0));
        assert_eq!(reasons, ["too_deep", "too_deep", "too_long"]);
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            // Valid-looking events.
            (0u32..100, 0i64..10_000, any::<f64>())
                .prop_map(|(k, t, x)| format!(r#"{{"id":"k{k}","ts":{t},"x":{x}}}"#)),
            // Deep nesting of arrays and objects, at and around the limit.
            (0usize..200, any::<bool>()).prop_map(|(d, obj)| if obj {
                format!("{}1{}", r#"{"a":"#.repeat(d), "}".repeat(d))
            } else {
                format!("{}{}", "[".repeat(d), "]".repeat(d))
            }),
            // JSON-ish garbage.
            proptest::collection::vec(
                prop_oneof![
                    Just("{"),
                    Just("}"),
                    Just("["),
                    Just("]"),
                    Just("\""),
                    Just("\\"),
                    Just(":"),
                    Just(","),
                    Just("1e999"),
                    Just("null"),
                    Just("\"id\""),
                    Just("\"ts\""),
                    Just("x"),
                ],
                0..40
            )
            .prop_map(|parts| parts.concat()),
            // Blank lines.
            Just(String::new()),
            Just(" \t\r".to_string()),
            // Arbitrary text without newlines.
            "[^\n]{0,60}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_line_decoder_never_panics_and_accounts_for_every_line(
            lines in proptest::collection::vec(line(), 1..30)
        ) {
            let text = (lines.join("\n") + "\n").into_bytes();
            // Every line is a row, a dead letter or a counted blank line, unless the first
            // chunk held no JSON object at all (then the source fails to infer a schema, and
            // says so).
            if let Some((rows, dead, _, blank)) = read_all(text) {
                let total = rows + dead + blank as usize;
                prop_assert_eq!(total, lines.len(), "{} rows + {} dead + {} blank", rows, dead, blank);
            }
        }
    }
}
