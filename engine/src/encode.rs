//! `BatchEncoder`: turns the feature columns of an event batch into encoded sparse rows.
//!
//! Columns are resolved once per batch (by name, so a source may reorder or omit fields) and
//! rows are then encoded by direct typed access, with no per-row lookups or allocation.

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use eddy_operators::encoder::FeatureEncoder;
use eddy_scorer::encoding::{format_number, Feature, FeatureKind};

/// A feature column of one batch, resolved to its Arrow type.
enum Column<'a> {
    Number(&'a Float64Array),
    Text(&'a StringArray),
    Bool(&'a BooleanArray),
    Absent,
}

/// The feature columns of one batch, ready to encode row by row.
pub struct BatchEncoder<'a> {
    columns: Vec<Column<'a>>,
}

impl<'a> BatchEncoder<'a> {
    /// Column position of each of the encoder's features in `batch` (resolve once per batch:
    /// it compares names).
    pub fn positions(encoder: &FeatureEncoder, batch: &RecordBatch) -> Vec<Option<usize>> {
        let schema = batch.schema();
        encoder.encoding().features.iter().map(|f| schema.index_of(&f.name).ok()).collect()
    }

    /// Resolves the encoder's features in `batch`. Columns of an unexpected type are treated as
    /// absent (sources normalise types, so this only happens with inconsistent inputs).
    pub fn new(encoder: &FeatureEncoder, batch: &'a RecordBatch) -> Self {
        Self::at(batch, &Self::positions(encoder, batch))
    }

    /// Views the feature columns at `positions` (from [`Self::positions`]) of `batch`.
    pub fn at(batch: &'a RecordBatch, positions: &[Option<usize>]) -> Self {
        let columns = positions
            .iter()
            .map(|p| match p.map(|i| batch.column(i)) {
                None => Column::Absent,
                Some(c) => match c.data_type() {
                    DataType::Float64 => Column::Number(c.as_primitive::<Float64Type>()),
                    DataType::Utf8 => Column::Text(c.as_string::<i32>()),
                    DataType::Boolean => Column::Bool(c.as_boolean()),
                    _ => Column::Absent,
                },
            })
            .collect();
        BatchEncoder { columns }
    }

    /// Encodes row `r` into `out` (cleared first), updating the encoder's running statistics.
    #[inline]
    pub fn encode(&self, encoder: &mut FeatureEncoder, r: usize, out: &mut Vec<Feature>) {
        out.clear();
        for (i, col) in self.columns.iter().enumerate() {
            encode_value(encoder, i, col, r, out);
        }
    }

    /// Encodes row `r` of `batch` with the feature columns at `positions`, without building a
    /// column view first: when runs are a single row long (events and labels interleaved),
    /// resolving the typed columns per run would cost more than the row itself.
    #[inline]
    pub fn encode_row(
        encoder: &mut FeatureEncoder,
        batch: &RecordBatch,
        positions: &[Option<usize>],
        r: usize,
        out: &mut Vec<Feature>,
    ) {
        out.clear();
        for (i, p) in positions.iter().enumerate() {
            let col = match p.map(|c| batch.column(c)) {
                None => Column::Absent,
                Some(c) => {
                    if let Some(a) = c.as_primitive_opt::<Float64Type>() {
                        Column::Number(a)
                    } else if let Some(a) = c.as_string_opt::<i32>() {
                        Column::Text(a)
                    } else if let Some(a) = c.as_boolean_opt() {
                        Column::Bool(a)
                    } else {
                        Column::Absent
                    }
                }
            };
            encode_value(encoder, i, &col, r, out);
        }
    }
}

/// Encodes feature `i` of row `r`.
#[inline]
fn encode_value(encoder: &mut FeatureEncoder, i: usize, col: &Column<'_>, r: usize, out: &mut Vec<Feature>) {
    let standardize = encoder.standardize();
    let kind = encoder.encoding().features[i].kind;
    match (kind, col) {
        (FeatureKind::Numeric, Column::Number(a)) if a.is_valid(r) => {
            let x = a.value(r);
            let stats = encoder.observe(i, x);
            out.push(encoder.plan().numeric(i, x, stats, standardize));
        }
        (FeatureKind::Categorical, Column::Text(a)) if a.is_valid(r) => {
            out.push(encoder.plan().categorical(i, a.value(r).as_bytes()));
        }
        (FeatureKind::Categorical, Column::Number(a)) if a.is_valid(r) => {
            out.push(encoder.plan().categorical(i, format_number(a.value(r)).as_bytes()));
        }
        (FeatureKind::Categorical, Column::Bool(a)) if a.is_valid(r) => {
            let v: &[u8] = if a.value(r) { b"true" } else { b"false" };
            out.push(encoder.plan().categorical(i, v));
        }
        (FeatureKind::Boolean, Column::Bool(a)) if a.is_valid(r) => {
            out.push(encoder.plan().boolean(i, a.value(r)));
        }
        (FeatureKind::Boolean, Column::Number(a)) if a.is_valid(r) => {
            out.push(encoder.plan().boolean(i, a.value(r) != 0.0));
        }
        _ => encoder.plan().missing(i, out),
    }
}
