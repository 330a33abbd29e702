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
}

impl LineChunk {
    /// Empties the chunk, keeping its allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.offsets.clear();
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
    partial: Vec<u8>,
}

impl LineReader {
    /// Reads from `reader`; with `follow`, end of input means "wait for more".
    pub fn new(reader: Box<dyn BufRead + Send>, follow: bool) -> Self {
        LineReader { reader, follow, next_line: 0, partial: Vec::new() }
    }

    /// Skips `n` lines (e.g. a CSV header, or lines already processed before a restart).
    ///
    /// # Errors
    /// On I/O errors.
    pub fn skip_lines(&mut self, n: u64, out: &mut Vec<u8>) -> io::Result<()> {
        for _ in 0..n {
            out.clear();
            if self.reader.read_until(b'\n', out)? == 0 {
                break;
            }
            self.next_line += 1;
        }
        Ok(())
    }

    /// Appends up to `max_lines` complete lines to `chunk`.
    ///
    /// # Errors
    /// On I/O errors.
    pub fn read_chunk(&mut self, max_lines: usize, chunk: &mut LineChunk) -> io::Result<ReadState> {
        while chunk.lines.len() < max_lines {
            let start = chunk.buf.len();
            if !self.partial.is_empty() {
                chunk.buf.append(&mut self.partial);
            }
            let n = self.reader.read_until(b'\n', &mut chunk.buf)?;
            let complete = chunk.buf.last() == Some(&b'\n');
            if n == 0 && chunk.buf.len() == start {
                return Ok(if self.follow { ReadState::Waiting } else { ReadState::End });
            }
            if !complete && self.follow {
                // A writer is mid-line: keep the bytes and wait for the rest.
                self.partial.extend_from_slice(&chunk.buf[start..]);
                chunk.buf.truncate(start);
                return Ok(ReadState::Waiting);
            }
            let mut end = chunk.buf.len();
            while end > start && matches!(chunk.buf[end - 1], b'\n' | b'\r') {
                end -= 1;
            }
            let blank = chunk.buf[start..end].iter().all(|b| b.is_ascii_whitespace());
            if !blank {
                chunk.lines.push((start, end));
                chunk.offsets.push(self.next_line);
            }
            if !complete {
                chunk.buf.push(b'\n');
            }
            self.next_line += 1;
            if !complete {
                return Ok(ReadState::End);
            }
        }
        Ok(ReadState::More)
    }
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
        assert_eq!((c.line(0), c.line(1), c.line(2)), (&b"a"[..], &b"b"[..], &b"c"[..]));
    }

    #[test]
    fn follow_mode_holds_back_a_partial_line() {
        let mut r = LineReader::new(Box::new(std::io::Cursor::new(b"a\nb".to_vec())), true);
        let mut c = LineChunk::default();
        assert_eq!(r.read_chunk(10, &mut c).unwrap(), ReadState::Waiting);
        assert_eq!(c.len(), 1);
    }
}
