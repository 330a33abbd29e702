//! `LineReader`: reads newline-delimited records in chunks, remembering each record's line
//! index (its source offset) and, when tailing a growing file, holding back a trailing partial
//! line until its newline arrives.

use std::io::{self, BufRead};

/// A chunk of complete lines, stored back to back (each with its newline).
#[derive(Debug, Default)]
pub struct LineChunk {
    /// The bytes of the lines.
    pub buf: Vec<u8>,
    /// Byte range of each non-blank line in `buf` (without the newline).
    pub lines: Vec<(usize, usize)>,
    /// 0-based line index of each non-blank line.
    pub offsets: Vec<u64>,
    /// Blank (empty or whitespace-only) lines read into this chunk and skipped.
    pub blank: u64,
}

impl LineChunk {
    /// Empties the chunk, keeping its allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.offsets.clear();
        self.blank = 0;
    }

    /// Line `i` without its newline.
    pub fn line(&self, i: usize) -> &[u8] {
        let (a, b) = self.lines[i];
        &self.buf[a..b]
    }

    /// Line `i` as text (lossy), for dead letters.
    pub fn line_text(&self, i: usize) -> String {
        String::from_utf8_lossy(self.line(i)).into_owned()
    }

    /// Number of non-blank lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the chunk holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// What a read found besides lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadState {
    /// More may follow immediately.
    More,
    /// At the end of what is available now (a tailed file); try again later.
    Waiting,
    /// At the end of the input.
    End,
}

/// See the module docs.
pub struct LineReader {
    reader: Box<dyn BufRead + Send>,
    follow: bool,
    next_line: u64,
    /// Bytes taken from `reader` so far (including any skipped before it was handed over).
    consumed: u64,
    partial: Vec<u8>,
}

impl LineReader {
    /// Reads from `reader`; with `follow`, end of input means "wait for more".
    pub fn new(reader: Box<dyn BufRead + Send>, follow: bool) -> Self {
        LineReader { reader, follow, next_line: 0, consumed: 0, partial: Vec::new() }
    }

    /// Reads from `reader`, which is already positioned at byte `byte` of its input, where line
    /// `line` starts (a resume from a checkpointed position).
    pub fn resume_at(reader: Box<dyn BufRead + Send>, follow: bool, line: u64, byte: u64) -> Self {
        LineReader { reader, follow, next_line: line, consumed: byte, partial: Vec::new() }
    }

    /// The index and byte offset of the next line not yet returned in a chunk.
    pub fn position(&self) -> (u64, u64) {
        (self.next_line, self.consumed - self.partial.len() as u64)
    }

    /// Skips `n` lines (e.g. a CSV header, or lines already processed before a restart).
    ///
    /// # Errors
    /// On I/O errors.
    pub fn skip_lines(&mut self, n: u64, out: &mut Vec<u8>) -> io::Result<()> {
        for _ in 0..n {
            out.clear();
            let n = self.reader.read_until(b'\n', out)?;
            if n == 0 {
                break;
            }
            self.consumed += n as u64;
            self.next_line += 1;
        }
        Ok(())
    }

    /// Appends up to `max_lines` complete lines to `chunk`.
    ///
    /// Copies whole spans of the reader's buffer at once and finds line ends with `memchr`, so
    /// the per-line cost is one newline search, not a read call.
    ///
    /// # Errors
    /// On I/O errors.
    pub fn read_chunk(&mut self, max_lines: usize, chunk: &mut LineChunk) -> io::Result<ReadState> {
        // Where the line being assembled starts in `chunk.buf`.
        let mut line_start = chunk.buf.len();
        if !self.partial.is_empty() {
            chunk.buf.append(&mut self.partial);
        }
        loop {
            if chunk.lines.len() >= max_lines {
                self.partial.extend_from_slice(&chunk.buf[line_start..]);
                chunk.buf.truncate(line_start);
                return Ok(ReadState::More);
            }
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                if chunk.buf.len() > line_start {
                    if self.follow {
                        // A writer is mid-line: keep the bytes and wait for the rest.
                        self.partial.extend_from_slice(&chunk.buf[line_start..]);
                        chunk.buf.truncate(line_start);
                        return Ok(ReadState::Waiting);
                    }
                    // The last line of a file without a final newline is still a line.
                    let end = chunk.buf.len();
                    let LineChunk { buf, lines, offsets, blank } = chunk;
                    push_line(&mut self.next_line, buf, lines, offsets, blank, line_start, end);
                    chunk.buf.push(b'\n');
                }
                return Ok(if self.follow { ReadState::Waiting } else { ReadState::End });
            }
            let need = max_lines - chunk.lines.len();
            let base = chunk.buf.len();
            let mut take = available.len();
            let mut ends = 0;
            let mut last_end = None;
            for pos in memchr::memchr_iter(b'\n', available) {
                ends += 1;
                last_end = Some(pos);
                if ends == need {
                    take = pos + 1;
                    break;
                }
            }
            chunk.buf.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            self.consumed += take as u64;
            if last_end.is_some() {
                let LineChunk { buf, lines, offsets, blank } = chunk;
                let mut start = line_start;
                for pos in memchr::memchr_iter(b'\n', &buf[base..]) {
                    let end = base + pos;
                    push_line(&mut self.next_line, buf, lines, offsets, blank, start, end);
                    start = end + 1;
                }
                line_start = start;
            }
        }
    }
}

/// Registers the line `buf[start..end]` (its newline excluded) unless it is blank (then it is
/// counted in `blank`); every line, blank or not, advances the line index.
fn push_line(
    next_line: &mut u64,
    buf: &[u8],
    lines: &mut Vec<(usize, usize)>,
    offsets: &mut Vec<u64>,
    blank: &mut u64,
    start: usize,
    end: usize,
) {
    let mut e = end;
    while e > start && buf[e - 1] == b'\r' {
        e -= 1;
    }
    if !buf[start..e].iter().all(|b| b.is_ascii_whitespace()) {
        lines.push((start, e));
        offsets.push(*next_line);
    } else {
        *blank += 1;
    }
    *next_line += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_with_offsets_skipping_blanks() {
        let data = b"a\n\nb\r\nc".to_vec();
        let mut r = LineReader::new(Box::new(std::io::Cursor::new(data)), false);
        let mut c = LineChunk::default();
        assert_eq!(r.read_chunk(10, &mut c).unwrap(), ReadState::End);
        assert_eq!(c.offsets, vec![0, 2, 3]);
        assert_eq!(c.blank, 1);
        assert_eq!((c.line(0), c.line(1), c.line(2)), (&b"a"[..], &b"b"[..], &b"c"[..]));
    }

    #[test]
    fn chunks_split_at_max_lines_and_resume() {
        let data: Vec<u8> = (0..10).flat_map(|i| format!("line{i}\n").into_bytes()).collect();
        let mut r = LineReader::new(
            Box::new(std::io::BufReader::with_capacity(7, std::io::Cursor::new(data))),
            false,
        );
        let mut seen = Vec::new();
        loop {
            let mut c = LineChunk::default();
            let state = r.read_chunk(3, &mut c).unwrap();
            for i in 0..c.len() {
                seen.push((c.offsets[i], String::from_utf8(c.line(i).to_vec()).unwrap()));
            }
            if state == ReadState::End {
                break;
            }
        }
        let want: Vec<(u64, String)> = (0..10).map(|i| (i, format!("line{i}"))).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn positions_resume_exactly_where_a_chunk_ended() {
        let data: Vec<u8> = b"a\n\nbb\r\nccc\nd\ne".to_vec();
        for max in 1..5 {
            let mut r = LineReader::new(
                Box::new(std::io::BufReader::with_capacity(3, std::io::Cursor::new(data.clone()))),
                false,
            );
            let mut c = LineChunk::default();
            r.read_chunk(max, &mut c).unwrap();
            let first: Vec<u64> = c.offsets.clone();
            let (line, byte) = r.position();
            let mut rest = std::io::Cursor::new(data.clone());
            rest.set_position(byte);
            let mut resumed = LineReader::resume_at(Box::new(rest), false, line, byte);
            let mut all = first;
            loop {
                let mut c = LineChunk::default();
                let state = resumed.read_chunk(max, &mut c).unwrap();
                all.extend(&c.offsets);
                if state == ReadState::End {
                    break;
                }
            }
            assert_eq!(all, vec![0, 2, 3, 4, 5], "max_lines {max}");
            assert_eq!(resumed.position(), (6, data.len() as u64));
        }
    }

    #[test]
    fn follow_mode_holds_back_a_partial_line() {
        let mut r = LineReader::new(Box::new(std::io::Cursor::new(b"a\nb".to_vec())), true);
        let mut c = LineChunk::default();
        assert_eq!(r.read_chunk(10, &mut c).unwrap(), ReadState::Waiting);
        assert_eq!(c.len(), 1);
    }
}
