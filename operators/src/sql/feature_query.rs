//! `FeatureQuery`: the pipeline's stateless feature transform, `features.sql`.
//!
//! The query is a `SELECT <expressions> FROM events [WHERE <predicate>]` in DataFusion's SQL
//! dialect: any scalar expression DataFusion knows (arithmetic, `ln`, `CASE`, string functions,
//! date/time functions on the event time, casts). It is parsed, planned and type-checked
//! **once**, at start-up; what is kept are DataFusion *physical* expressions, which are then
//! evaluated on every events batch (filter first, then the projection) with no re-planning and
//! nothing async on that path.
//!
//! # The schema the query sees
//!
//! Sources decode each batch with types inferred from the data, so the real schema is only
//! known when data arrives. The query is planned against a schema made of the key (`Utf8`), the
//! event time (`Int64` epoch milliseconds), the fields the config declares
//! (`[events.fields]`), and every other column the query names, taken as `Float64` (sources
//! normalise every number to `Float64`). String and boolean fields a query uses must therefore
//! be declared. Each batch is brought to that schema before evaluation: columns are picked by
//! name, cast when a batch carries another type, and absent ones are all-null. `*` expands to
//! that schema. Unquoted identifiers are folded to lower case (standard SQL); quote mixed-case
//! field names (`"cardId"`).
//!
//! # The schema it produces
//!
//! The key and time columns always pass through unchanged, first, whether or not the query
//! selects them (selecting them under their own names is allowed; computing another column
//! under their names is an error): the engine needs them to order, join and window events.
//! Then come the query's outputs in order: numeric results become `Float64` (non-finite values,
//! e.g. `ln(0)`, become null, which the model encodes as missing), strings `Utf8`
//! (categorical), booleans `Boolean`, timestamps and dates their text form (categorical). These
//! columns, not the raw event fields, are what the model sees.
//!
//! Rows the `WHERE` clause rejects (false or null) are dropped and counted in
//! [`Evaluated::filtered`].

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{new_null_array, Array, ArrayRef, BooleanArray, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::compute::{cast, filter_record_batch, prep_null_mask_filter};
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, SchemaError};
use datafusion::datasource::empty::EmptyTable;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::error::SqlError;

/// The table name feature queries read from.
pub const EVENTS_TABLE: &str = "events";

/// Most columns the planner may discover by name in one query (a guard against loops).
const MAX_DISCOVERED: usize = 256;

/// What a query is planned against: see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsSchema {
    /// Key field (`Utf8`).
    pub key: String,
    /// Event-time field (`Int64` epoch milliseconds).
    pub time: String,
    /// Declared fields and their types (`Float64`, `Utf8` or `Boolean`).
    pub declared: Vec<(String, DataType)>,
}

/// How an output column is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    Number,
    Text,
    Bool,
}

#[derive(Debug)]
struct Output {
    expr: Arc<dyn PhysicalExpr>,
    kind: OutputKind,
}

/// A planned feature query. See the module docs.
#[derive(Debug)]
pub struct FeatureQuery {
    sql: String,
    input_schema: SchemaRef,
    discovered: Vec<String>,
    key: usize,
    time: usize,
    filter: Option<Arc<dyn PhysicalExpr>>,
    outputs: Vec<Output>,
    output_schema: SchemaRef,
}

/// The result of a query on one batch.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// Key, time, then the query's outputs; only the rows that passed the filter.
    pub batch: RecordBatch,
    /// Which input rows were kept (`None`: all of them).
    pub kept: Option<BooleanArray>,
    /// Rows the filter rejected.
    pub filtered: usize,
}

impl FeatureQuery {
    /// Parses and plans `sql` against `events` (see the module docs).
    ///
    /// # Errors
    /// A [`SqlError`] with the line and column in `sql` when DataFusion reports one: syntax
    /// errors, unknown functions, type errors, a query that is not a plain projection and
    /// filter of `events`, or an output that cannot be a model input.
    pub fn plan(sql: &str, events: &EventsSchema) -> Result<Self, SqlError> {
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.collect_spans = true;
        let ctx = SessionContext::new_with_config(config);
        let mut discovered: Vec<String> = Vec::new();
        let (plan, table_schema) = loop {
            let schema = planning_schema(events, &discovered);
            let table: Arc<dyn TableProvider> = Arc::new(EmptyTable::new(schema.clone()));
            ctx.deregister_table(EVENTS_TABLE).map_err(|e| SqlError::from_datafusion(&e))?;
            ctx.register_table(EVENTS_TABLE, table).map_err(|e| SqlError::from_datafusion(&e))?;
            let state = ctx.state();
            match block_on(state.create_logical_plan(sql)) {
                Ok(plan) => break (plan, schema),
                Err(e) => match unknown_column(&e) {
                    Some(name)
                        if discovered.len() < MAX_DISCOVERED
                            && !discovered.contains(&name)
                            && schema.index_of(&name).is_err() =>
                    {
                        discovered.push(name)
                    }
                    _ => return Err(SqlError::from_datafusion(&e)),
                },
            }
        };
        let LogicalPlan::Projection(projection) = &plan else {
            return Err(SqlError::new(not_a_projection(&plan)));
        };
        let mut input = projection.input.as_ref();
        let mut predicate = None;
        if let LogicalPlan::Filter(f) = input {
            predicate = Some(f.predicate.clone());
            input = f.input.as_ref();
        }
        while let LogicalPlan::SubqueryAlias(a) = input {
            input = a.input.as_ref();
        }
        if !matches!(input, LogicalPlan::TableScan(_)) {
            return Err(SqlError::new(not_a_projection(input)));
        }
        let df_schema: &DFSchema = projection.input.schema();
        let state = ctx.state();
        let physical =
            |e: Expr| state.create_physical_expr(e, df_schema).map_err(|e| SqlError::from_datafusion(&e));
        let filter = match predicate {
            Some(p) => {
                let p = physical(p)?;
                let t = p.data_type(&table_schema).map_err(|e| SqlError::from_datafusion(&e))?;
                if t != DataType::Boolean && t != DataType::Null {
                    return Err(SqlError::new(format!(
                        "the WHERE clause must be a boolean condition, not {t}"
                    )));
                }
                Some(p)
            }
            None => None,
        };
        let mut fields = vec![
            Field::new(&events.key, DataType::Utf8, false),
            Field::new(&events.time, DataType::Int64, false),
        ];
        let mut outputs = Vec::new();
        for (i, expr) in projection.expr.iter().enumerate() {
            let name = projection.schema.field(i).name().clone();
            if name == events.key || name == events.time {
                let plain = matches!(expr.clone().unalias(), Expr::Column(c) if c.name == name);
                if !plain {
                    return Err(SqlError::new(format!(
                        "output `{name}` would replace the {} column, which always passes through unchanged; give the expression another name",
                        if name == events.key { "key" } else { "time" }
                    )));
                }
                continue;
            }
            if fields.iter().any(|f| f.name() == &name) {
                return Err(SqlError::new(format!(
                    "output `{name}` appears twice; give each output its own name with AS"
                )));
            }
            let p = physical(expr.clone())?;
            let t = p.data_type(&table_schema).map_err(|e| SqlError::from_datafusion(&e))?;
            let kind = output_kind(&t).ok_or_else(|| {
                SqlError::new(format!(
                    "output `{name}` has type {t}, which cannot be a model input (use a number, string, boolean, or cast it)"
                ))
            })?;
            let out_type = match kind {
                OutputKind::Number => DataType::Float64,
                OutputKind::Text => DataType::Utf8,
                OutputKind::Bool => DataType::Boolean,
            };
            fields.push(Field::new(name, out_type, true));
            outputs.push(Output { expr: p, kind });
        }
        if outputs.is_empty() {
            return Err(SqlError::new(
                "the query selects no feature besides the key and time; select at least one expression",
            ));
        }
        let key = table_schema.index_of(&events.key).map_err(|e| SqlError::new(e.to_string()))?;
        let time = table_schema.index_of(&events.time).map_err(|e| SqlError::new(e.to_string()))?;
        Ok(FeatureQuery {
            sql: sql.to_string(),
            input_schema: table_schema,
            discovered,
            key,
            time,
            filter,
            outputs,
            output_schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The schema the query was planned against.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    /// The output schema: key, time, then the query's outputs.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Columns the query names that the config does not declare (planned as `Float64`).
    pub fn discovered_columns(&self) -> &[String] {
        &self.discovered
    }

    /// Columns the query names that `schema` lacks: empty when every column it reads is
    /// there. The engine checks its first events batch with this, so a misspelt field is an
    /// error rather than a column of nulls.
    pub fn missing_columns(&self, schema: &Schema) -> Vec<String> {
        self.input_schema
            .fields()
            .iter()
            .map(|f| f.name())
            .filter(|n| self.discovered.contains(n) && schema.index_of(n).is_err())
            .cloned()
            .collect()
    }

    /// Evaluates the query on `batch`: filter, then project.
    ///
    /// # Errors
    /// When a column cannot be cast to the planned type or an expression fails at run time
    /// (e.g. an overflowing cast); the batch is then not usable as a whole.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Evaluated, SqlError> {
        let n = batch.num_rows();
        let mut columns = Vec::with_capacity(self.input_schema.fields().len());
        for field in self.input_schema.fields() {
            columns.push(match batch.column_by_name(field.name()) {
                Some(c) if c.data_type() == field.data_type() => c.clone(),
                Some(c) => cast(c, field.data_type()).map_err(|e| {
                    SqlError::new(format!(
                        "column `{}` cannot be read as {}: {e}",
                        field.name(),
                        field.data_type()
                    ))
                })?,
                None => new_null_array(field.data_type(), n),
            });
        }
        let mut input = RecordBatch::try_new(self.input_schema.clone(), columns)
            .map_err(|e| SqlError::new(format!("events batch does not fit the planned schema: {e}")))?;
        let mut kept = None;
        let mut filtered = 0;
        if let Some(p) = &self.filter {
            let mask = p
                .evaluate(&input)
                .and_then(|v| v.into_array(n))
                .map_err(|e| SqlError::from_datafusion(&e))?;
            let mask = match mask.as_boolean_opt() {
                Some(m) if m.null_count() > 0 => prep_null_mask_filter(m),
                Some(m) => m.clone(),
                None => BooleanArray::from(vec![false; n]),
            };
            let pass = mask.true_count();
            if pass < n {
                filtered = n - pass;
                input = filter_record_batch(&input, &mask).map_err(|e| SqlError::new(e.to_string()))?;
                kept = Some(mask);
            }
        }
        let rows = input.num_rows();
        let mut out: Vec<ArrayRef> = Vec::with_capacity(self.outputs.len() + 2);
        out.push(input.column(self.key).clone());
        out.push(input.column(self.time).clone());
        for o in &self.outputs {
            let a = o
                .expr
                .evaluate(&input)
                .and_then(|v| v.into_array(rows))
                .map_err(|e| SqlError::from_datafusion(&e))?;
            out.push(normalise(a, o.kind)?);
        }
        let batch = RecordBatch::try_new(self.output_schema.clone(), out)
            .map_err(|e| SqlError::new(format!("feature outputs do not fit their schema (a bug): {e}")))?;
        Ok(Evaluated { batch, kept, filtered })
    }
}

/// Brings an output array to the engine's types (see the module docs).
fn normalise(a: ArrayRef, kind: OutputKind) -> Result<ArrayRef, SqlError> {
    let target = match kind {
        OutputKind::Number => DataType::Float64,
        OutputKind::Text => DataType::Utf8,
        OutputKind::Bool => DataType::Boolean,
    };
    let a = if a.data_type() == &target {
        a
    } else {
        cast(&a, &target)
            .map_err(|e| SqlError::new(format!("cannot convert {} to {target}: {e}", a.data_type())))?
    };
    if kind == OutputKind::Number {
        let f = a.as_primitive::<Float64Type>();
        if !f.values().iter().all(|x| x.is_finite()) {
            let clean: Float64Array = f.iter().map(|v| v.filter(|x| x.is_finite())).collect();
            return Ok(Arc::new(clean));
        }
    }
    Ok(a)
}

fn output_kind(t: &DataType) -> Option<OutputKind> {
    Some(match t {
        DataType::Null
        | DataType::Int8
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
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => OutputKind::Number,
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Timestamp(_, _)
        | DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_) => OutputKind::Text,
        DataType::Boolean => OutputKind::Bool,
        _ => return None,
    })
}

fn planning_schema(events: &EventsSchema, discovered: &[String]) -> SchemaRef {
    let mut fields = vec![
        Field::new(&events.key, DataType::Utf8, false),
        Field::new(&events.time, DataType::Int64, false),
    ];
    for (name, t) in &events.declared {
        if name != &events.key && name != &events.time {
            fields.push(Field::new(name, t.clone(), true));
        }
    }
    for name in discovered {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    Arc::new(Schema::new(fields))
}

/// The column a "no field named" planning error is about, when that is the error.
fn unknown_column(e: &DataFusionError) -> Option<String> {
    match e {
        DataFusionError::SchemaError(s, _) => match s.as_ref() {
            SchemaError::FieldNotFound { field, .. }
                if field.relation.as_ref().is_none_or(|r| r.table() == EVENTS_TABLE) =>
            {
                Some(field.name.clone())
            }
            _ => None,
        },
        DataFusionError::Diagnostic(_, inner) | DataFusionError::Context(_, inner) => unknown_column(inner),
        DataFusionError::Collection(errors) => errors.iter().find_map(unknown_column),
        _ => None,
    }
}

fn not_a_projection(plan: &LogicalPlan) -> String {
    let what = match plan {
        LogicalPlan::Aggregate(_) => "an aggregate (GROUP BY or an aggregate function)",
        LogicalPlan::Window(_) => "a window function (OVER)",
        LogicalPlan::Sort(_) => "ORDER BY",
        LogicalPlan::Limit(_) => "LIMIT",
        LogicalPlan::Join(_) => "a join",
        LogicalPlan::Distinct(_) => "DISTINCT",
        LogicalPlan::Union(_) => "UNION",
        _ => "a statement that is not a SELECT",
    };
    format!(
        "feature SQL must be `SELECT <expressions> FROM events [WHERE <condition>]`, evaluated row by row; this query uses {what}. Windowed aggregates go in [features.aggregates.NAME]"
    )
}

/// Runs a planning future to completion on this thread. DataFusion's SQL planner is `async`
/// only to look tables up; with the one in-memory `events` table it never waits, so polling
/// with a no-op waker is enough (and keeps tokio out of this crate).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array, StringArray};

    fn events() -> EventsSchema {
        EventsSchema {
            key: "id".into(),
            time: "ts".into(),
            declared: vec![("merchant".into(), DataType::Utf8)],
        }
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("ts", DataType::Int64, false),
            Field::new("amount", DataType::Float64, true),
            Field::new("merchant", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Int64Array::from(vec![1_700_000_000_000, 1_700_003_600_000, 1_700_007_200_000])),
                Arc::new(Float64Array::from(vec![Some(10.0), Some(0.0), None])),
                Arc::new(StringArray::from(vec![Some("Shop"), None, Some("cafe")])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn projects_and_filters_with_key_and_time_first() {
        let q = FeatureQuery::plan(
            "SELECT ln(amount) AS log_amount, upper(merchant) AS m, amount > 5 AS big FROM events WHERE amount IS NOT NULL",
            &events(),
        )
        .unwrap();
        let names: Vec<_> = q.output_schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["id", "ts", "log_amount", "m", "big"]);
        let out = q.evaluate(&batch()).unwrap();
        assert_eq!(out.filtered, 1);
        assert_eq!(out.batch.num_rows(), 2);
        let log = out.batch.column(2).as_primitive::<Float64Type>();
        assert!((log.value(0) - 10f64.ln()).abs() < 1e-12);
        assert!(log.is_null(1), "ln(0) is -inf, which becomes missing");
        assert_eq!(out.batch.column(3).as_string::<i32>().value(0), "SHOP");
        assert!(out.batch.column(4).as_boolean().value(0));
        assert_eq!(out.kept.unwrap().true_count(), 2);
    }

    #[test]
    fn time_functions_on_the_event_time() {
        let q = FeatureQuery::plan(
            "SELECT CAST(date_part('hour', to_timestamp_millis(ts)) AS INT) AS hour, CASE WHEN amount > 1 THEN 'high' ELSE 'low' END AS band FROM events",
            &events(),
        )
        .unwrap();
        let out = q.evaluate(&batch()).unwrap();
        let hour = out.batch.column(2).as_primitive::<Float64Type>();
        assert_eq!(hour.values().to_vec(), vec![22.0, 23.0, 0.0]);
        assert_eq!(out.batch.column(3).as_string::<i32>().value(1), "low");
    }

    #[test]
    fn undeclared_columns_are_numeric_and_checked_on_data() {
        let q =
            FeatureQuery::plan("SELECT amount * 2 AS double, amout AS typo FROM events", &events()).unwrap();
        assert_eq!(q.discovered_columns(), ["amount", "amout"]);
        assert_eq!(q.missing_columns(&batch().schema()), ["amout"]);
    }

    #[test]
    fn errors_carry_positions() {
        let e = FeatureQuery::plan("SELECT amount\nFROM events WHERE ) x", &events()).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = FeatureQuery::plan("SELECT nosuchfn(amount) AS x FROM events", &events()).unwrap_err();
        assert!(e.message.contains("nosuchfn"), "{e}");
        let e = FeatureQuery::plan("SELECT count(*) AS n FROM events", &events()).unwrap_err();
        assert!(e.message.contains("aggregate"), "{e}");
        let e = FeatureQuery::plan("SELECT upper(merchant) AS id FROM events", &events()).unwrap_err();
        assert!(e.message.contains("key"), "{e}");
        let e = FeatureQuery::plan("SELECT amount FROM other", &events()).unwrap_err();
        assert!(e.message.contains("other"), "{e}");
    }

    #[test]
    fn selecting_key_and_time_is_allowed_and_star_expands() {
        let q = FeatureQuery::plan("SELECT id, ts, amount FROM events", &events()).unwrap();
        assert_eq!(q.output_schema().fields().len(), 3);
        let q = FeatureQuery::plan("SELECT * FROM events", &events()).unwrap();
        let names: Vec<_> = q.output_schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, ["id", "ts", "merchant"]);
    }
}
