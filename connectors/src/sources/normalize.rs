//! `Normalizer`: the one place where decoded rows are checked and brought to the engine's
//! types, whatever format they came from.
//!
//! Every source decodes into Arrow and then hands the batch here. Rows that cannot be used —
//! a missing key or time, an unparseable time, a NaN or infinite number, a missing or invalid
//! label — become dead letters with their reason and source offset, and are filtered out; the
//! rest of the batch goes on. Column types are normalised (integers to `Float64`, times to
//! `Int64` epoch milliseconds, keys to `Utf8`) so the engine never re-checks a row.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use eddy_engine::record::{DeadLetter, SourceBatch, StreamRole};
use eddy_engine::source::StreamSpec;
use eddy_scorer::encoding::FeatureKind;

/// Dead-letter reason classes (the `reason` field), stable for alerting.
pub mod reason {
    /// Not parseable in the source format (bad JSON, bad CSV row).
    pub const MALFORMED: &str = "malformed";
    /// A field has a value of the wrong type (e.g. text where a number is expected).
    pub const WRONG_TYPE: &str = "wrong_type";
    /// The key field is missing, null or empty.
    pub const MISSING_KEY: &str = "missing_key";
    /// The time field is missing or null.
    pub const MISSING_TIME: &str = "missing_time";
    /// The time field cannot be read as epoch milliseconds or an RFC 3339 timestamp.
    pub const BAD_TIME: &str = "bad_time";
    /// A number is NaN or infinite.
    pub const NON_FINITE: &str = "non_finite";
    /// The label field is missing or null.
    pub const MISSING_LABEL: &str = "missing_label";
    /// The label is not valid for the task (e.g. not 0/1 for classification).
    pub const BAD_LABEL: &str = "bad_label";
    /// The record nests arrays/objects deeper than
    /// [`MAX_NESTING_DEPTH`](crate::sources::text::MAX_NESTING_DEPTH); refused before any
    /// parser sees it.
    pub const TOO_DEEP: &str = "too_deep";
    /// The record is longer than [`MAX_LINE_BYTES`](crate::sources::text::MAX_LINE_BYTES);
    /// refused before any parser sees it.
    pub const TOO_LONG: &str = "too_long";
}

/// Checks and normalises the batches of one source. See the module docs.
#[derive(Debug, Clone)]
pub struct Normalizer {
    source: String,
    role: StreamRole,
    spec: StreamSpec,
    /// Rejected records not yet attached to a batch.
    rejected: Vec<DeadLetter>,
}

/// The type a column of the decoded schema should be read as, before validation.
pub fn decode_type(spec: &StreamSpec, name: &str, inferred: &DataType) -> Option<DataType> {
    if name == spec.key {
        return Some(DataType::Utf8);
    }
    if name == spec.time {
        return Some(match inferred {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Date64 => DataType::Utf8,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
            _ => DataType::Int64,
        });
    }
    if spec.label.as_ref().is_some_and(|l| l.name == name) {
        return Some(match inferred {
            DataType::Boolean => DataType::Boolean,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
            _ => DataType::Float64,
        });
    }
    if let Some((_, kind)) = spec.declared.iter().find(|(n, _)| n == name) {
        return Some(match kind {
            FeatureKind::Numeric => DataType::Float64,
            FeatureKind::Categorical => DataType::Utf8,
            FeatureKind::Boolean => DataType::Boolean,
        });
    }
    match inferred {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _) => Some(DataType::Float64),
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Null
        | DataType::Timestamp(_, _)
        | DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_) => Some(DataType::Utf8),
        DataType::Boolean => Some(DataType::Boolean),
        // Nested or exotic fields are not model inputs; they are left out of the decode.
        _ => None,
    }
}

/// The schema to decode a text format with, from an inferred one: known columns forced to the
/// types the engine uses, unusable ones dropped, declared fields added when absent.
pub fn decode_schema(spec: &StreamSpec, inferred: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = inferred
        .fields()
        .iter()
        .filter_map(|f| decode_type(spec, f.name(), f.data_type()).map(|t| Field::new(f.name(), t, true)))
        .collect();
    let mut required: Vec<(String, DataType)> =
        vec![(spec.key.clone(), DataType::Utf8), (spec.time.clone(), DataType::Int64)];
    if let Some(l) = &spec.label {
        required.push((l.name.clone(), DataType::Float64));
    }
    for (name, kind) in &spec.declared {
        let t = match kind {
            FeatureKind::Numeric => DataType::Float64,
            FeatureKind::Categorical => DataType::Utf8,
            FeatureKind::Boolean => DataType::Boolean,
        };
        required.push((name.clone(), t));
    }
    for (name, t) in required {
        if !fields.iter().any(|f| f.name() == &name) {
            fields.push(Field::new(name, t, true));
        }
    }
    Arc::new(Schema::new(fields))
}

impl Normalizer {
    /// A normaliser for source `source` playing `role` with `spec`.
    pub fn new(source: &str, role: StreamRole, spec: StreamSpec) -> Self {
        Normalizer { source: source.to_string(), role, spec, rejected: Vec::new() }
    }

    /// The stream role.
    pub fn role(&self) -> StreamRole {
        self.role
    }

    /// The decoding spec.
    pub fn spec(&self) -> &StreamSpec {
        &self.spec
    }

    /// Records one dead letter; it leaves with the next batch this normaliser produces (see
    /// [`SourceBatch::dead_letters`]).
    pub fn reject(&mut self, offset: u64, reason: &str, detail: impl Into<String>, record: &str) {
        self.rejected.push(DeadLetter::new(&self.source, offset, reason, detail, record));
    }

    /// Whether rejected records wait for a batch.
    pub fn has_rejects(&self) -> bool {
        !self.rejected.is_empty()
    }

    /// A batch with no rows that carries the pending dead letters (a stretch of input where
    /// every record was bad still has to report them, and its position).
    pub fn rejects_only(&mut self) -> SourceBatch {
        let mut b =
            SourceBatch::new(self.role, RecordBatch::new_empty(Arc::new(Schema::empty())), Vec::new());
        b.dead_letters = std::mem::take(&mut self.rejected);
        b
    }

    /// Validates and normalises `batch`, whose row `i` came from source offset `offsets[i]`.
    /// `raw(i)` renders row `i` as it was read, for dead letters.
    pub fn normalize(
        &mut self,
        batch: RecordBatch,
        offsets: Vec<u64>,
        raw: &dyn Fn(usize) -> String,
    ) -> SourceBatch {
        let n = batch.num_rows();
        let mut bad: Vec<Option<(&'static str, String)>> = vec![None; n];
        let mut mark = |i: usize, reason: &'static str, detail: String| {
            if bad[i].is_none() {
                bad[i] = Some((reason, detail));
            }
        };
        let schema = batch.schema();
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());

        for (field, col) in schema.fields().iter().zip(batch.columns()) {
            let name = field.name().as_str();
            let (col, kind_ok) = if name == self.spec.key {
                let keys = to_utf8(col);
                for i in 0..n {
                    if keys.is_null(i) || keys.as_string::<i32>().value(i).is_empty() {
                        mark(i, reason::MISSING_KEY, format!("key field `{name}` is missing or empty"));
                    }
                }
                (keys, true)
            } else if name == self.spec.time {
                (self.times(col, name, &mut mark), true)
            } else if let Some(l) = self.spec.label.as_ref().filter(|l| l.name == name) {
                (labels(col, name, l.binary, &mut mark), true)
            } else {
                let declared = self.spec.declared.iter().find(|(d, _)| d == name).map(|(_, k)| *k);
                feature_column(col, name, declared, &mut mark)
            };
            if kind_ok {
                fields.push(Field::new(name, col.data_type().clone(), true));
                columns.push(col);
            }
        }
        for (name, what, reason) in self.required() {
            if schema.field_with_name(&name).is_err() {
                for i in 0..n {
                    mark(i, reason, format!("{what} field `{name}` is missing"));
                }
            }
        }

        let rejected = bad.iter().filter(|b| b.is_some()).count();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .expect("normalised columns keep their row count");
        if rejected == 0 {
            let mut out = SourceBatch::new(self.role, batch, offsets);
            out.dead_letters = std::mem::take(&mut self.rejected);
            return out;
        }
        for (i, b) in bad.iter().enumerate() {
            if let Some((reason, detail)) = b {
                self.reject(offsets[i], reason, detail.clone(), &raw(i));
            }
        }
        let keep = BooleanArray::from(bad.iter().map(|b| b.is_none()).collect::<Vec<_>>());
        let batch =
            arrow_select::filter::filter_record_batch(&batch, &keep).expect("filter keeps the schema");
        let offsets = offsets.into_iter().zip(&bad).filter(|(_, b)| b.is_none()).map(|(o, _)| o).collect();
        let mut out = SourceBatch::new(self.role, batch, offsets);
        out.dead_letters = std::mem::take(&mut self.rejected);
        out.dead_letters.sort_by_key(|d| d.offset);
        out
    }

    fn required(&self) -> Vec<(String, &'static str, &'static str)> {
        let mut r = vec![
            (self.spec.key.clone(), "key", reason::MISSING_KEY),
            (self.spec.time.clone(), "time", reason::MISSING_TIME),
        ];
        if let Some(l) = &self.spec.label {
            r.push((l.name.clone(), "label", reason::MISSING_LABEL));
        }
        r
    }

    fn times(
        &self,
        col: &ArrayRef,
        name: &str,
        mark: &mut dyn FnMut(usize, &'static str, String),
    ) -> ArrayRef {
        let n = col.len();
        let mut out: Vec<Option<i64>> = Vec::with_capacity(n);
        let missing = |i: usize, mark: &mut dyn FnMut(usize, &'static str, String)| {
            mark(i, reason::MISSING_TIME, format!("time field `{name}` is missing"));
            None
        };
        match col.data_type() {
            DataType::Int64 => {
                return Arc::new(Int64Array::from_iter((0..n).map(|i| {
                    if col.is_null(i) {
                        missing(i, mark)
                    } else {
                        Some(col.as_primitive::<Int64Type>().value(i))
                    }
                })))
            }
            DataType::Float64 => {
                let a = col.as_primitive::<Float64Type>();
                for i in 0..n {
                    out.push(if a.is_null(i) {
                        missing(i, mark)
                    } else if !a.value(i).is_finite() || a.value(i).abs() > 9.0e15 {
                        mark(
                            i,
                            reason::BAD_TIME,
                            format!("time field `{name}` = {} is not a valid epoch time", a.value(i)),
                        );
                        None
                    } else {
                        Some(a.value(i) as i64)
                    });
                }
            }
            DataType::Utf8 => {
                let a = col.as_string::<i32>();
                for i in 0..n {
                    out.push(if a.is_null(i) {
                        missing(i, mark)
                    } else {
                        match parse_time(a.value(i)) {
                            Some(t) => Some(t),
                            None => {
                                mark(
                                    i,
                                    reason::BAD_TIME,
                                    format!(
                                        "time field `{name}` = \"{}\" is neither epoch milliseconds nor an RFC 3339 timestamp",
                                        a.value(i)
                                    ),
                                );
                                None
                            }
                        }
                    });
                }
            }
            DataType::Timestamp(unit, _) => {
                let cast = arrow_cast::cast(col, &DataType::Int64).expect("timestamps cast to Int64");
                let a = cast.as_primitive::<Int64Type>();
                let div = match unit {
                    TimeUnit::Second => -1000,
                    TimeUnit::Millisecond => 1,
                    TimeUnit::Microsecond => 1000,
                    TimeUnit::Nanosecond => 1_000_000,
                };
                for i in 0..n {
                    out.push(if a.is_null(i) {
                        missing(i, mark)
                    } else if div < 0 {
                        Some(a.value(i).saturating_mul(-div))
                    } else {
                        Some(a.value(i) / div)
                    });
                }
            }
            other => match arrow_cast::cast(col, &DataType::Int64) {
                Ok(c) => return self.times(&c, name, mark),
                Err(_) => {
                    for i in 0..n {
                        mark(
                            i,
                            reason::BAD_TIME,
                            format!("time field `{name}` has unsupported type {other}"),
                        );
                        out.push(None);
                    }
                }
            },
        }
        Arc::new(Int64Array::from(out))
    }
}

/// Parses epoch milliseconds written as text, or an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

fn to_utf8(col: &ArrayRef) -> ArrayRef {
    if col.data_type() == &DataType::Utf8 {
        col.clone()
    } else {
        arrow_cast::cast(col, &DataType::Utf8)
            .unwrap_or_else(|_| arrow_array::new_null_array(&DataType::Utf8, col.len()))
    }
}

fn labels(
    col: &ArrayRef,
    name: &str,
    binary: bool,
    mark: &mut dyn FnMut(usize, &'static str, String),
) -> ArrayRef {
    let n = col.len();
    let values: Vec<Option<f64>> = match col.data_type() {
        DataType::Boolean => {
            let a = col.as_boolean();
            (0..n).map(|i| a.is_valid(i).then(|| a.value(i) as u8 as f64)).collect()
        }
        DataType::Float64 => {
            let a = col.as_primitive::<Float64Type>();
            (0..n).map(|i| a.is_valid(i).then(|| a.value(i))).collect()
        }
        _ => {
            let s = to_utf8(col);
            let a = s.as_string::<i32>();
            (0..n)
                .map(|i| {
                    a.is_valid(i).then(|| match a.value(i).trim() {
                        "true" => 1.0,
                        "false" => 0.0,
                        v => v.parse::<f64>().unwrap_or(f64::NAN),
                    })
                })
                .collect()
        }
    };
    let out: Float64Array = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            None => {
                mark(i, reason::MISSING_LABEL, format!("label field `{name}` is missing"));
                None
            }
            Some(y) if !y.is_finite() => {
                mark(i, reason::BAD_LABEL, format!("label field `{name}` is not a finite number"));
                None
            }
            Some(y) if binary && y != 0.0 && y != 1.0 => {
                mark(
                    i,
                    reason::BAD_LABEL,
                    format!(
                        "label field `{name}` = {y}: classification labels must be 0 or 1 (or false/true)"
                    ),
                );
                None
            }
            Some(y) => Some(y),
        })
        .collect();
    Arc::new(out)
}

/// Normalises one feature column; returns the column and whether to keep it.
fn feature_column(
    col: &ArrayRef,
    name: &str,
    declared: Option<FeatureKind>,
    mark: &mut dyn FnMut(usize, &'static str, String),
) -> (ArrayRef, bool) {
    let n = col.len();
    let target = match declared {
        Some(FeatureKind::Numeric) => DataType::Float64,
        Some(FeatureKind::Categorical) => DataType::Utf8,
        Some(FeatureKind::Boolean) => DataType::Boolean,
        None => match decode_type(&StreamSpec::empty(), name, col.data_type()) {
            Some(t) => t,
            None => return (col.clone(), false),
        },
    };
    let cast = if col.data_type() == &target {
        col.clone()
    } else {
        match arrow_cast::cast(col, &target) {
            Ok(c) => {
                // A value the cast could not convert came out null: that is a wrong type, not
                // a missing value.
                for i in 0..n {
                    if c.is_null(i) && col.is_valid(i) {
                        mark(
                            i,
                            reason::WRONG_TYPE,
                            format!("field `{name}` is not a valid {}", kind_name(&target)),
                        );
                    }
                }
                c
            }
            Err(_) => {
                for i in 0..n {
                    if col.is_valid(i) {
                        mark(
                            i,
                            reason::WRONG_TYPE,
                            format!("field `{name}` is not a valid {}", kind_name(&target)),
                        );
                    }
                }
                arrow_array::new_null_array(&target, n)
            }
        }
    };
    if let Some(a) = cast.as_primitive_opt::<Float64Type>() {
        if a.null_count() < n {
            for i in 0..n {
                if a.is_valid(i) && !a.value(i).is_finite() {
                    mark(
                        i,
                        reason::NON_FINITE,
                        format!("field `{name}` = {} is not a finite number", a.value(i)),
                    );
                }
            }
        }
    }
    (cast, true)
}

fn kind_name(t: &DataType) -> &'static str {
    match t {
        DataType::Float64 => "number",
        DataType::Boolean => "boolean",
        _ => "string",
    }
}

/// Convenience for tests and sources: a spec that names nothing.
trait EmptySpec {
    fn empty() -> Self;
}

impl EmptySpec for StreamSpec {
    fn empty() -> Self {
        StreamSpec { key: String::new(), time: String::new(), label: None, declared: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use eddy_engine::source::LabelField;

    fn spec(label: bool) -> StreamSpec {
        StreamSpec {
            key: "id".into(),
            time: "ts".into(),
            label: label.then(|| LabelField { name: "label".into(), binary: true }),
            declared: vec![],
        }
    }

    #[test]
    fn bad_rows_become_dead_letters_and_good_rows_go_on() {
        let mut norm = Normalizer::new("events", StreamRole::Events, spec(false));
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c"), Some("d"), Some("e")]))
                    as ArrayRef,
            ),
            (
                "ts",
                Arc::new(StringArray::from(vec![
                    Some("1000"),
                    Some("1"),
                    Some("2023-11-14T22:13:20Z"),
                    Some("soon"),
                    Some("5"),
                ])) as _,
            ),
            (
                "x",
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(2.0),
                    Some(3.0),
                    Some(4.0),
                    Some(f64::INFINITY),
                ])) as _,
            ),
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])) as _),
        ])
        .unwrap();
        let out = norm.normalize(batch, vec![10, 11, 12, 13, 14], &|i| format!("row{i}"));
        assert_eq!(out.offsets, vec![10, 12]);
        assert_eq!(
            out.batch.column_by_name("ts").unwrap().as_primitive::<Int64Type>().values(),
            &[1000, 1700000000000]
        );
        assert_eq!(out.batch.column_by_name("n").unwrap().data_type(), &DataType::Float64);
        let dead: Vec<_> = out.dead_letters.into_iter().map(|d| (d.offset, d.reason, d.record)).collect();
        assert_eq!(
            dead,
            vec![
                (11, "missing_key".to_string(), "row1".to_string()),
                (13, "bad_time".into(), "row3".into()),
                (14, "non_finite".into(), "row4".into())
            ]
        );
    }

    #[test]
    fn labels_must_be_binary_for_classification() {
        let mut norm = Normalizer::new("labels", StreamRole::Labels, spec(true));
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef),
            ("ts", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
            ("label", Arc::new(Float64Array::from(vec![Some(1.0), Some(2.0), None])) as _),
        ])
        .unwrap();
        let out = norm.normalize(batch, vec![0, 1, 2], &|_| String::new());
        assert_eq!(out.batch.num_rows(), 1);
        let reasons: Vec<_> = out.dead_letters.into_iter().map(|d| d.reason).collect();
        assert_eq!(reasons, vec!["bad_label", "missing_label"]);
    }
}
