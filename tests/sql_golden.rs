//! Golden tests of feature SQL: every directory under `tests/sql/` is one case.
//!
//! A case has an `input.jsonl` event stream (`id` key, `ts` epoch-ms time; other strings are
//! declared categorical, booleans boolean, numbers numeric), a `features.sql` and/or an
//! `aggregate.sql`, and either an `expected.jsonl` (one object per output row: the feature
//! query's columns, then the aggregate outputs as of that event) or a first line
//! `-- fail: <error>` in the SQL file that must fail, with the error as `eddy validate` words
//! it (the header is an SQL comment, so positions count it as line 1). Regenerate the expectations with `EDDY_BLESS=1 cargo test --test sql_golden`.
//!
//! The same harness drives the point-in-time test at the end: every joined aggregate equals a
//! naive recomputation over the events strictly before it within its window.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use eddy_operators::sql::{AggregateQuery, EventsSchema, FeatureQuery, WindowAggregate};
use serde_json::{Map, Value};

const FAIL: &str = "-- fail: ";

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/sql exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn bless() -> bool {
    std::env::var_os("EDDY_BLESS").is_some_and(|v| v != "0")
}

/// Events from JSON lines, typed the way eddy's sources normalise them.
fn read_events(path: &Path) -> (RecordBatch, EventsSchema) {
    let rows: Vec<Map<String, Value>> = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("input line is a JSON object"))
        .collect();
    let mut names: Vec<String> = vec!["id".into(), "ts".into()];
    for r in &rows {
        for k in r.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut declared = Vec::new();
    for name in &names {
        let values: Vec<Option<&Value>> = rows.iter().map(|r| r.get(name).filter(|v| !v.is_null())).collect();
        let (t, col): (DataType, ArrayRef) = if name == "id" {
            (
                DataType::Utf8,
                Arc::new(StringArray::from_iter(values.iter().map(|v| v.and_then(|v| v.as_str())))),
            )
        } else if name == "ts" {
            (
                DataType::Int64,
                Arc::new(Int64Array::from_iter(values.iter().map(|v| v.and_then(|v| v.as_i64())))),
            )
        } else if values.iter().flatten().all(|v| v.is_number()) {
            (
                DataType::Float64,
                Arc::new(Float64Array::from_iter(values.iter().map(|v| v.and_then(|v| v.as_f64())))),
            )
        } else if values.iter().flatten().all(|v| v.is_boolean()) {
            declared.push((name.clone(), DataType::Boolean));
            (
                DataType::Boolean,
                Arc::new(BooleanArray::from_iter(values.iter().map(|v| v.and_then(|v| v.as_bool())))),
            )
        } else {
            declared.push((name.clone(), DataType::Utf8));
            (
                DataType::Utf8,
                Arc::new(StringArray::from_iter(values.iter().map(|v| v.and_then(|v| v.as_str())))),
            )
        };
        fields.push(Field::new(name, t, true));
        columns.push(col);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("columns match");
    (batch, EventsSchema { key: "id".into(), time: "ts".into(), declared })
}

/// A float as its 12 significant digits, so expectations do not depend on the last ulp of a
/// libm function.
fn number(x: f64) -> Value {
    let rounded: f64 = format!("{x:.11e}").parse().expect("a formatted float parses");
    serde_json::Number::from_f64(rounded).map(Value::Number).unwrap_or(Value::Null)
}

fn cell(col: &ArrayRef, r: usize) -> Value {
    if col.is_null(r) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Utf8 => Value::String(col.as_string::<i32>().value(r).to_string()),
        DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(r)),
        DataType::Float64 => number(col.as_primitive::<Float64Type>().value(r)),
        DataType::Boolean => Value::Bool(col.as_boolean().value(r)),
        t => panic!("unexpected output type {t}"),
    }
}

fn sql_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Runs a case: output rows, or the error (prefixed with the file it came from).
fn run(dir: &Path) -> Result<Vec<Value>, String> {
    let (mut batch, schema) = read_events(&dir.join("input.jsonl"));
    if let Some(sql) = sql_text(&dir.join("features.sql")) {
        let q = FeatureQuery::plan(&sql, &schema).map_err(|e| e.to_string())?;
        batch = q.evaluate(&batch).map_err(|e| e.to_string())?.batch;
    }
    let mut rows: Vec<Map<String, Value>> = (0..batch.num_rows())
        .map(|r| {
            batch
                .schema()
                .fields()
                .iter()
                .enumerate()
                .map(|(c, f)| (f.name().clone(), cell(batch.column(c), r)))
                .collect()
        })
        .collect();
    if let Some(sql) = sql_text(&dir.join("aggregate.sql")) {
        let q = AggregateQuery::parse(&sql, "ts").map_err(|e| e.to_string())?;
        for (name, values) in aggregate(&q, &batch)? {
            for (row, v) in rows.iter_mut().zip(values) {
                row.insert(name.clone(), v.map(number).unwrap_or(Value::Null));
            }
        }
    }
    Ok(rows.into_iter().map(Value::Object).collect())
}

/// Output name and its value for every row.
type OutputColumns = Vec<(String, Vec<Option<f64>>)>;

/// Each output of `q` for every row of `batch`, as the engine computes them.
fn aggregate(q: &AggregateQuery, batch: &RecordBatch) -> Result<OutputColumns, String> {
    let mut w = WindowAggregate::new(q.clone(), u64::MAX);
    let col = |n: &str| batch.column_by_name(n).ok_or_else(|| format!("no column `{n}`"));
    let keys = col(&q.key)?.clone();
    let times = col("ts")?.as_primitive::<Int64Type>().clone();
    let inputs: Vec<Float64Array> = w
        .columns()
        .iter()
        .map(|c| col(c).map(|a| a.as_primitive::<Float64Type>().clone()))
        .collect::<Result<_, _>>()?;
    let mut out = vec![None; q.outputs.len()];
    let mut columns = vec![Vec::new(); q.outputs.len()];
    for r in 0..batch.num_rows() {
        let key = match cell(&keys, r) {
            Value::Null => None,
            v => Some(xxhash_rust::xxh3::xxh3_64(v.to_string().as_bytes())),
        };
        let values: Vec<Option<f64>> = inputs.iter().map(|a| a.is_valid(r).then(|| a.value(r))).collect();
        match key {
            Some(k) => w.update(k, times.value(r), &values, &mut out),
            None => out.iter_mut().for_each(|o| *o = None),
        }
        for (c, v) in columns.iter_mut().zip(&out) {
            c.push(*v);
        }
    }
    Ok(q.outputs.iter().map(|o| o.name.clone()).zip(columns).collect())
}

fn expected_failure(dir: &Path) -> Option<(PathBuf, String)> {
    ["features.sql", "aggregate.sql"].iter().find_map(|f| {
        let path = dir.join(f);
        let text = sql_text(&path)?;
        let first = text.lines().next()?;
        first.strip_prefix(FAIL).map(|m| (path, m.to_string()))
    })
}

#[test]
fn golden_cases() {
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 10, "the golden cases are in tests/sql/");
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let got = run(&dir);
        match (expected_failure(&dir), got) {
            (Some((path, want)), Err(e)) => {
                if bless() && e != want {
                    let text = sql_text(&path).unwrap();
                    let rest: Vec<&str> = text.lines().skip(1).collect();
                    std::fs::write(&path, format!("{FAIL}{e}\n{}\n", rest.join("\n"))).unwrap();
                } else if e != want {
                    failures.push(format!("{name}: error\n  want: {want}\n  got:  {e}"));
                }
            }
            (Some(_), Ok(_)) => failures.push(format!("{name}: expected an error, but the case ran")),
            (None, Err(e)) => failures.push(format!("{name}: unexpected error: {e}")),
            (None, Ok(rows)) => {
                let path = dir.join("expected.jsonl");
                let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
                if bless() {
                    std::fs::write(&path, &text).unwrap();
                    continue;
                }
                let want = std::fs::read_to_string(&path).unwrap_or_default();
                let want: Vec<Value> = want
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                if want != rows {
                    failures.push(format!(
                        "{name}: output differs (EDDY_BLESS=1 regenerates)\n  want: {}\n  got:  {}",
                        want.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n        "),
                        rows.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n        ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A deterministic stream with heavy ties, gaps across window boundaries and nulls.
fn stream(n: usize) -> RecordBatch {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ids = Vec::new();
    let mut ts = Vec::new();
    let mut cards = Vec::new();
    let mut amounts = Vec::new();
    let mut t = 1_700_000_000_000i64;
    for i in 0..n {
        t += [0, 0, 1, 250, 999, 60_000][(next() % 6) as usize];
        ids.push(format!("e{i}"));
        ts.push(t);
        cards.push(format!("c{}", next() % 7));
        amounts.push((next() % 10 != 0).then(|| (next() % 10_000) as f64 / 100.0));
    }
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("card", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Int64Array::from(ts)),
            Arc::new(StringArray::from(cards)),
            Arc::new(Float64Array::from(amounts)),
        ],
    )
    .unwrap()
}

#[test]
fn point_in_time_aggregates_equal_a_naive_recomputation() {
    let batch = stream(3000);
    for sql in [
        "SELECT card, count(*) AS n, count(amount) AS na, sum(amount) AS s, avg(amount) AS a, min(amount) AS lo, max(amount) AS hi, stddev(amount) AS sd FROM events GROUP BY card, HOP(ts, INTERVAL '1 minute', INTERVAL '5 minutes')",
        "SELECT card, count(*) AS n, count(amount) AS na, sum(amount) AS s, avg(amount) AS a, min(amount) AS lo, max(amount) AS hi, stddev(amount) AS sd FROM events GROUP BY card, TUMBLE(ts, INTERVAL '2 minutes')",
    ] {
        let q = AggregateQuery::parse(sql, "ts").unwrap();
        let got = aggregate(&q, &batch).unwrap();
        let times = batch.column(1).as_primitive::<Int64Type>();
        let cards = batch.column(2).as_string::<i32>();
        let amounts = batch.column(3).as_primitive::<Float64Type>();
        let slide = q.window.slide_ms;
        let mut checked = 0;
        for r in 0..batch.num_rows() {
            let t = times.value(r);
            let first_pane = t.div_euclid(slide) - q.window.panes() + 1;
            // Strictly before the event, same key, in a pane of its window.
            let before: Vec<Option<f64>> = (0..batch.num_rows())
                .filter(|&e| {
                    cards.value(e) == cards.value(r)
                        && times.value(e) < t
                        && times.value(e).div_euclid(slide) >= first_pane
                })
                .map(|e| amounts.is_valid(e).then(|| amounts.value(e)))
                .collect();
            let xs: Vec<f64> = before.iter().flatten().copied().collect();
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let want = [
                Some(before.len() as f64),
                Some(n),
                (n > 0.0).then(|| xs.iter().sum()),
                (n > 0.0).then_some(mean),
                xs.iter().copied().reduce(f64::min),
                xs.iter().copied().reduce(f64::max),
                (n > 1.0).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()),
            ];
            for ((name, values), want) in got.iter().zip(want) {
                let ok = match (values[r], want) {
                    (None, None) => true,
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    _ => false,
                };
                assert!(ok, "{sql}\nrow {r} (t={t}) {name}: got {:?}, want {want:?}", values[r]);
                checked += 1;
            }
        }
        assert_eq!(checked, 7 * batch.num_rows());
    }
}
