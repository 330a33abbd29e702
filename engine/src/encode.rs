//! `BatchEncoder`: turns the feature columns of an event batch into encoded sparse rows.
//!
//! Columns are resolved once per batch (by name, so a source may reorder or omit fields) into
//! typed views paired with how each feature encodes them; rows are then encoded by direct
//! typed access, with no per-row lookups, downcasts or allocation. With events and labels
//! interleaved row by row an engine run is a single row long, so anything resolved per run
//! instead of per batch costs as much as the row itself.

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use eddy_operators::encoder::FeatureEncoder;
use eddy_operators::sql::prefetch;
use eddy_scorer::encoding::{format_number, Feature, FeatureKind};

/// One feature's column in one batch, already matched to the feature's kind. The arrays are
/// cheap clones (reference-counted buffers) so the view outlives the borrow of the batch.
enum Column {
    Numeric(Float64Array),
    CategoricalText(StringArray),
    CategoricalNumber(Float64Array),
    CategoricalBool(BooleanArray),
    BooleanBool(BooleanArray),
    BooleanNumber(Float64Array),
    /// Absent from the batch or of a type the feature cannot read (sources normalise types,
    /// so the latter only happens with inconsistent inputs): encoded as missing.
    Missing,
}

/// The feature columns of one batch, ready to encode row by row.
pub struct BatchEncoder {
    columns: Vec<Column>,
}

impl BatchEncoder {
    /// Resolves the first `n` of the encoder's features in `batch` (the rest, e.g. aggregates
    /// the engine computes itself, are appended by their owner).
    pub fn new(encoder: &FeatureEncoder, batch: &RecordBatch, n: usize) -> Self {
        let schema = batch.schema();
        let columns = encoder.encoding().features[..n]
            .iter()
            .map(|f| {
                let Ok(c) = schema.index_of(&f.name) else { return Column::Missing };
                let c = batch.column(c);
                match (f.kind, c.data_type()) {
                    (FeatureKind::Numeric, DataType::Float64) => Column::Numeric(c.as_primitive().clone()),
                    (FeatureKind::Categorical, DataType::Utf8) => {
                        Column::CategoricalText(c.as_string().clone())
                    }
                    (FeatureKind::Categorical, DataType::Float64) => {
                        Column::CategoricalNumber(c.as_primitive().clone())
                    }
                    (FeatureKind::Categorical, DataType::Boolean) => {
                        Column::CategoricalBool(c.as_boolean().clone())
                    }
                    (FeatureKind::Boolean, DataType::Boolean) => Column::BooleanBool(c.as_boolean().clone()),
                    (FeatureKind::Boolean, DataType::Float64) => {
                        Column::BooleanNumber(c.as_primitive().clone())
                    }
                    _ => Column::Missing,
                }
            })
            .collect();
        BatchEncoder { columns }
    }

    /// Prefetches the numeric values of row `r`: the columns were written by a source thread
    /// on the other core, and with events and labels interleaved row by row the hardware
    /// prefetcher loses track of them.
    #[inline]
    pub fn prefetch(&self, r: usize) {
        for col in &self.columns {
            if let Column::Numeric(a) = col {
                if let Some(x) = a.values().get(r) {
                    prefetch(x);
                }
            }
        }
    }

    /// Encodes row `r` into `out` (cleared first), updating the encoder's running statistics.
    #[inline]
    pub fn encode(&self, encoder: &mut FeatureEncoder, r: usize, out: &mut Vec<Feature>) {
        out.clear();
        for (i, col) in self.columns.iter().enumerate() {
            match col {
                Column::Numeric(a) if a.is_valid(r) => out.push(encoder.encode_numeric(i, a.value(r))),
                Column::CategoricalText(a) if a.is_valid(r) => {
                    out.push(encoder.plan().categorical(i, a.value(r).as_bytes()));
                }
                Column::CategoricalNumber(a) if a.is_valid(r) => {
                    out.push(encoder.plan().categorical(i, format_number(a.value(r)).as_bytes()));
                }
                Column::CategoricalBool(a) if a.is_valid(r) => {
                    let v: &[u8] = if a.value(r) { b"true" } else { b"false" };
                    out.push(encoder.plan().categorical(i, v));
                }
                Column::BooleanBool(a) if a.is_valid(r) => out.push(encoder.plan().boolean(i, a.value(r))),
                Column::BooleanNumber(a) if a.is_valid(r) => {
                    out.push(encoder.plan().boolean(i, a.value(r) != 0.0));
                }
                _ => encoder.plan().missing(i, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array};
    use arrow_schema::{Field, Schema};
    use eddy_operators::encoder::EncodingConfig;
    use eddy_scorer::encoding::{FeatureSpec, NumericStats};

    use super::*;

    /// Each kind reads the column types it can, in feature order; absent columns, columns of
    /// another type and nulls are encoded as missing, and features past `n` are left out.
    #[test]
    fn encodes_each_kind_and_treats_absent_mistyped_and_null_values_as_missing() {
        let spec = |name: &str, kind| FeatureSpec { name: name.into(), kind };
        let specs = vec![
            spec("amount", FeatureKind::Numeric),
            spec("band", FeatureKind::Categorical),
            spec("night", FeatureKind::Boolean),
            spec("hour", FeatureKind::Categorical),
            spec("absent", FeatureKind::Numeric),
            spec("count", FeatureKind::Numeric),
            spec("appended_by_the_engine", FeatureKind::Numeric),
        ];
        let config = EncodingConfig { standardize: false, hash_bits: 8 };
        let mut encoder = FeatureEncoder::new(specs, &config, 1);
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("amount", Arc::new(Float64Array::from(vec![Some(2.5), None]))),
            ("band", Arc::new(StringArray::from(vec![Some("high"), Some("low")]))),
            ("night", Arc::new(BooleanArray::from(vec![Some(true), None]))),
            ("hour", Arc::new(Float64Array::from(vec![3.0, 23.0]))),
            ("count", Arc::new(Int64Array::from(vec![1, 2]))),
        ];
        let schema = Schema::new(
            columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect())
            .expect("valid batch");
        let features = BatchEncoder::new(&encoder, &batch, 6);
        let plan = encoder.plan().clone();
        let missing = |i: usize| {
            let mut out = Vec::new();
            plan.missing(i, &mut out);
            out
        };
        let mut row = Vec::new();

        features.encode(&mut encoder, 0, &mut row);
        let mut expected = vec![
            plan.numeric(0, 2.5, NumericStats::IDENTITY, false),
            plan.categorical(1, b"high"),
            plan.boolean(2, true),
            plan.categorical(3, format_number(3.0).as_bytes()),
        ];
        expected.extend(missing(4));
        expected.extend(missing(5));
        assert_eq!(row, expected);

        features.encode(&mut encoder, 1, &mut row);
        let mut expected = missing(0);
        expected.push(plan.categorical(1, b"low"));
        expected.extend(missing(2));
        expected.push(plan.categorical(3, format_number(23.0).as_bytes()));
        expected.extend(missing(4));
        expected.extend(missing(5));
        assert_eq!(row, expected);
    }
}
