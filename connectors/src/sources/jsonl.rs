//! JSON lines: one flat JSON object per line. Numbers are numeric features, strings
//! categorical, booleans boolean; the schema is inferred from the first chunk of the file
//! (declared fields in the config override it).

use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_json::reader::{Decoder, ReaderBuilder};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use eddy_engine::record::StreamRole;
use eddy_engine::source::{Source, SourceBuildContext};
use serde::{Deserialize, Serialize};

use super::lines::LineChunk;
use super::normalize::{decode_schema, Normalizer};
use super::text::{check_json_line, open_text, DecodeError, RowDecoder, TextSource};
use super::{BuildSource, SourceKind};
use crate::error::{ConnectorError, Problem};

/// A JSON-lines file (or `-` for stdin).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLinesSourceConfig {
    /// Path of the file; `-` reads stdin.
    pub path: PathBuf,
    /// Keep reading as the file grows (like `tail -f`) instead of ending at its end.
    #[serde(default)]
    pub follow: bool,
    /// `events` or `labels`; defaults to the source's name when that is one of them.
    #[serde(default)]
    pub role: Option<StreamRole>,
}

impl BuildSource for JsonLinesSourceConfig {
    /// Builds the source.
    ///
    /// # Errors
    /// When the file cannot be opened or the source cannot resume.
    fn build(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, ConnectorError> {
        self.open(cx).map_err(|(field, p)| {
            ConnectorError::source(&cx.name, SourceKind::Jsonl.as_str(), p).field(field)
        })
    }
}

impl JsonLinesSourceConfig {
    /// Opens the source; a failure comes with the config field to blame (the `stdin` kind
    /// reads through this too and names itself in the error).
    pub(crate) fn open(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, (&'static str, Problem)> {
        let (reader, normalizer, bounded) =
            open_text(cx, &self.path, self.follow).map_err(|p| ("path", p))?;
        let decoder = JsonDecoder::new(normalizer.clone(), cx.batch_size);
        let source = TextSource::new(&cx.name, reader, Box::new(decoder), normalizer, cx.batch_size, bounded);
        Ok(Box::new(source.resuming(cx, &self.path).map_err(|p| ("path", p))?))
    }
}

/// Arrow's JSON decoder behind the [`RowDecoder`] interface.
pub struct JsonDecoder {
    normalizer: Normalizer,
    schema: Option<SchemaRef>,
    decoder: Option<Decoder>,
    batch_size: usize,
}

impl JsonDecoder {
    /// A decoder for the stream `normalizer` checks, decoding up to `batch_size` lines at once.
    pub fn new(normalizer: Normalizer, batch_size: usize) -> Self {
        JsonDecoder { normalizer, schema: None, decoder: None, batch_size }
    }

    fn fresh(&self, rows: usize) -> Result<Decoder, DecodeError> {
        let schema = self.schema.clone().ok_or("internal error: JSON decoder used before inference")?;
        ReaderBuilder::new(schema)
            .with_batch_size(rows.max(1))
            .with_coerce_primitive(true)
            .with_strict_mode(false)
            .build_decoder()
            .map_err(|e| DecodeError(e.to_string()))
    }

    fn run(decoder: &mut Decoder, bytes: &[u8]) -> Result<RecordBatch, DecodeError> {
        let mut done = 0;
        while done < bytes.len() {
            let n = decoder.decode(&bytes[done..]).map_err(|e| clean(e.to_string()))?;
            if n == 0 {
                return Err("more records than expected in one line".into());
            }
            done += n;
        }
        decoder.flush().map_err(|e| clean(e.to_string()))?.ok_or_else(|| "no JSON object found".into())
    }
}

fn clean(s: String) -> DecodeError {
    DecodeError(s.trim_start_matches("Json error: ").to_string())
}

impl RowDecoder for JsonDecoder {
    fn screen(&self, line: &[u8]) -> Option<(&'static str, String)> {
        check_json_line(line)
    }

    fn infer(&mut self, sample: &LineChunk) -> Result<SchemaRef, DecodeError> {
        let inferred = infer_majority(sample)?;
        let schema = decode_schema(self.normalizer.spec(), &inferred);
        self.schema = Some(schema.clone());
        self.decoder = Some(self.fresh(self.batch_size + 1)?);
        Ok(schema)
    }

    fn decode_chunk(&mut self, chunk: &LineChunk) -> Result<RecordBatch, DecodeError> {
        let mut decoder = match self.decoder.take() {
            Some(d) => d,
            None => self.fresh(self.batch_size.max(chunk.len()) + 1)?,
        };
        let out = Self::run(&mut decoder, &chunk.buf);
        // A failed decoder may hold half a record: only a clean one is reused.
        if out.is_ok() {
            self.decoder = Some(decoder);
        }
        out
    }

    fn field_of_error(&self, message: &str) -> Option<String> {
        // Arrow's JSON decoder says "whilst decoding field 'x': ...".
        let rest = message.split("whilst decoding field '").nth(1)?;
        Some(rest.split('\'').next()?.to_string())
    }

    fn decode_line(&mut self, line: &[u8]) -> Result<RecordBatch, DecodeError> {
        if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err("not a JSON object: every line must be one flat {...} object".into());
        }
        let mut d = self.fresh(2)?;
        Self::run(&mut d, line)
    }
}

/// Infers field types from a sample by majority: a field that is a number in 999 lines and a
/// string in one is numeric (the odd line is a wrong-type record for the dead letters), where
/// Arrow's own inference would widen it to a string and silently turn a feature categorical.
fn infer_majority(sample: &LineChunk) -> Result<Schema, DecodeError> {
    #[derive(Default)]
    struct Counts {
        number: usize,
        text: usize,
        boolean: usize,
        nested: usize,
    }
    let mut fields: Vec<(String, Counts)> = Vec::new();
    let mut objects = 0;
    for i in 0..sample.len() {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(sample.line(i))
        else {
            continue;
        };
        objects += 1;
        for (name, value) in map {
            let pos = match fields.iter().position(|(n, _)| *n == name) {
                Some(p) => p,
                None => {
                    fields.push((name, Counts::default()));
                    fields.len() - 1
                }
            };
            let c = &mut fields[pos].1;
            match value {
                serde_json::Value::Number(_) => c.number += 1,
                serde_json::Value::String(_) => c.text += 1,
                serde_json::Value::Bool(_) => c.boolean += 1,
                serde_json::Value::Null => {}
                _ => c.nested += 1,
            }
        }
    }
    if objects == 0 {
        return Err("no line of the first chunk is a JSON object; is this a JSON-lines file?".into());
    }
    let fields: Vec<Field> = fields
        .into_iter()
        .map(|(name, c)| {
            let most = c.number.max(c.text).max(c.boolean).max(c.nested);
            let t = if most == 0 {
                DataType::Null
            } else if c.number == most {
                DataType::Float64
            } else if c.text == most {
                DataType::Utf8
            } else if c.boolean == most {
                DataType::Boolean
            } else {
                DataType::Struct(Default::default())
            };
            Field::new(name, t, true)
        })
        .collect();
    Ok(Schema::new(fields))
}
