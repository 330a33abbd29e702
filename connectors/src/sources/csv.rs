//! CSV with a header row: one record per line (quoted fields must not contain newlines).
//! Column types are inferred from the first chunk, as for JSON lines.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_csv::reader::{Decoder, Format, ReaderBuilder};
use arrow_schema::{Schema, SchemaRef};
use eddy_engine::record::StreamRole;
use eddy_engine::source::{Source, SourceBuildContext};
use serde::{Deserialize, Serialize};

use super::lines::LineChunk;
use super::normalize::{decode_schema, Normalizer};
use super::text::{open_text, DecodeError, RowDecoder, TextSource};
use super::{BuildSource, SourceKind};
use crate::error::{ConnectorError, Problem};

/// A CSV file with a header (or `-` for stdin).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSourceConfig {
    /// Path of the file; `-` reads stdin.
    pub path: PathBuf,
    /// Keep reading as the file grows instead of ending at its end.
    #[serde(default)]
    pub follow: bool,
    /// `events` or `labels`; defaults to the source's name when that is one of them.
    #[serde(default)]
    pub role: Option<StreamRole>,
    /// Field delimiter (one ASCII character).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
}

fn default_delimiter() -> char {
    ','
}

impl BuildSource for CsvSourceConfig {
    /// Builds the source.
    ///
    /// # Errors
    /// When the delimiter is not ASCII, the file cannot be opened, its header cannot be read,
    /// or the source cannot resume.
    fn build(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, ConnectorError> {
        self.open(cx)
            .map_err(|(field, p)| ConnectorError::source(&cx.name, SourceKind::Csv.as_str(), p).field(field))
    }
}

impl CsvSourceConfig {
    /// Opens the source; a failure comes with the config field to blame (the `stdin` kind
    /// reads through this too and names itself in the error).
    pub(crate) fn open(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, (&'static str, Problem)> {
        if !self.delimiter.is_ascii() {
            return Err(("delimiter", Problem::Invalid("must be one ASCII character".into())));
        }
        let (mut reader, normalizer, bounded) =
            open_text(cx, &self.path, self.follow).map_err(|p| ("path", p))?;
        let mut header = Vec::new();
        reader
            .skip_lines(1, &mut header)
            .map_err(|source| ("path", Problem::ReadHeader { path: self.path.clone(), source }))?;
        while header.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            header.pop();
        }
        if header.is_empty() {
            return Err(("path", Problem::NoHeader { path: self.path.clone() }));
        }
        if let Some(column) = duplicate_column(&header, self.delimiter as u8) {
            return Err(("path", Problem::DuplicateColumn { path: self.path.clone(), column }));
        }
        let decoder = CsvDecoder {
            normalizer: normalizer.clone(),
            header,
            delimiter: self.delimiter as u8,
            schema: None,
            batch_size: cx.batch_size,
        };
        let source = TextSource::new(&cx.name, reader, Box::new(decoder), normalizer, cx.batch_size, bounded);
        Ok(Box::new(source.resuming(cx, &self.path).map_err(|p| ("path", p))?))
    }
}

/// The first column name a CSV header line repeats, if any: such a file is unusable (every
/// row would carry two values for one feature), so it is refused when the source opens.
fn duplicate_column(header: &[u8], delimiter: u8) -> Option<String> {
    // Split on the delimiter outside double quotes; `""` inside quotes is a quote.
    let mut names = Vec::new();
    let mut name = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < header.len() {
        let b = header[i];
        if quoted {
            if b == b'"' && header.get(i + 1) == Some(&b'"') {
                name.push(b'"');
                i += 1;
            } else if b == b'"' {
                quoted = false;
            } else {
                name.push(b);
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == delimiter {
            names.push(std::mem::take(&mut name));
        } else {
            name.push(b);
        }
        i += 1;
    }
    names.push(name);
    let mut seen = std::collections::HashSet::new();
    names.into_iter().find(|n| !seen.insert(n.clone())).map(|n| String::from_utf8_lossy(&n).into_owned())
}

/// Arrow's CSV decoder behind the [`RowDecoder`] interface.
pub struct CsvDecoder {
    normalizer: Normalizer,
    header: Vec<u8>,
    delimiter: u8,
    schema: Option<SchemaRef>,
    batch_size: usize,
}

impl CsvDecoder {
    fn fresh(&self, rows: usize) -> Result<Decoder, DecodeError> {
        let schema = self.schema.clone().ok_or("internal error: CSV decoder used before inference")?;
        Ok(ReaderBuilder::new(schema)
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_batch_size(rows.max(1))
            .build_decoder())
    }

    fn run(decoder: &mut Decoder, bytes: &[u8]) -> Result<RecordBatch, DecodeError> {
        let mut done = 0;
        while done < bytes.len() {
            let n = decoder.decode(&bytes[done..]).map_err(|e| clean(e.to_string()))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        decoder.decode(&[]).map_err(|e| clean(e.to_string()))?;
        decoder.flush().map_err(|e| clean(e.to_string()))?.ok_or_else(|| "empty CSV row".into())
    }
}

fn clean(s: String) -> DecodeError {
    DecodeError(s.trim_start_matches("Csv error: ").trim_start_matches("Parser error: ").to_string())
}

impl RowDecoder for CsvDecoder {
    fn infer(&mut self, sample: &LineChunk) -> Result<SchemaRef, DecodeError> {
        let format = Format::default().with_header(true).with_delimiter(self.delimiter);
        let mut text = self.header.clone();
        text.push(b'\n');
        text.extend_from_slice(&sample.buf);
        let inferred = match format.infer_schema(Cursor::new(&text), Some(sample.len())) {
            Ok((s, _)) => s,
            // A malformed row spoils inference: infer from each row alone and merge.
            Err(_) => {
                let mut merged: Option<Schema> = None;
                for i in 0..sample.len() {
                    let mut one = self.header.clone();
                    one.push(b'\n');
                    one.extend_from_slice(sample.line(i));
                    if let Ok((s, _)) = format.infer_schema(Cursor::new(&one), Some(1)) {
                        merged = Some(match merged {
                            None => s,
                            Some(m) => Schema::try_merge([m, s.clone()]).unwrap_or(s),
                        });
                    }
                }
                merged.ok_or("no row of the CSV sample could be read")?
            }
        };
        let schema = decode_schema(self.normalizer.spec(), &inferred);
        // Column order must stay the file's: decode_schema keeps inferred fields in order and
        // only appends declared fields the file lacks, which the CSV decoder would misread.
        let schema = Arc::new(Schema::new(
            schema.fields()[..inferred.fields().len().min(schema.fields().len())].to_vec(),
        ));
        self.schema = Some(schema.clone());
        Ok(schema)
    }

    fn decode_chunk(&mut self, chunk: &LineChunk) -> Result<RecordBatch, DecodeError> {
        let mut d = self.fresh(self.batch_size.max(chunk.len()) + 1)?;
        Self::run(&mut d, &chunk.buf)
    }

    fn field_of_error(&self, message: &str) -> Option<String> {
        // Arrow's CSV decoder says "Error while parsing value 'v' as type 'T' for column N".
        let n: usize =
            message.split("for column ").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
        Some(self.schema.as_ref()?.fields().get(n)?.name().clone())
    }

    fn decode_line(&mut self, line: &[u8]) -> Result<RecordBatch, DecodeError> {
        let mut d = self.fresh(2)?;
        let mut buf = line.to_vec();
        buf.push(b'\n');
        Self::run(&mut d, &buf)
    }
}

#[cfg(test)]
mod tests {
    use super::duplicate_column;

    #[test]
    fn duplicate_header_columns_are_found() {
        assert_eq!(duplicate_column(b"id,ts,x0,x1", b','), None);
        assert_eq!(duplicate_column(b"id,ts,x0,x0", b','), Some("x0".into()));
        assert_eq!(duplicate_column(b"id;\"x;0\";\"x;0\"", b';'), Some("x;0".into()));
        assert_eq!(duplicate_column(b"\"a,b\",a,b", b','), None);
    }
}
