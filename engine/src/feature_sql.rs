//! Feature SQL in the dataflow: the `[features]` config section, the stateless feature query
//! on the source threads, and the windowed aggregates on the engine thread.
//!
//! - [`FeatureStage`] runs `features.sql` on every events batch *in the source thread that
//!   decoded it* (it is stateless, so it overlaps with the engine thread's scoring and
//!   learning). Filtered rows are counted; rows a failing expression rejects go to the dead
//!   letters with reason `feature_sql`.
//! - [`WindowFeatures`] keeps every `[features.aggregates.NAME]` query's state on the engine
//!   thread, where events arrive merged in event-time order. Each event first reads its
//!   aggregates *as of its own time* (see `eddy_operators::sql::window_aggregate`), then adds
//!   itself; the values become numeric model features after the event's own columns.
//!
//! The operators live in `eddy_operators::sql`; this file only wires them to batches, the
//! encoder, metrics and the run summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use eddy_operators::encoder::FeatureEncoder;
use eddy_operators::sql::{
    AggregateQuery, AggregateState, EventsSchema, FeatureQuery, SqlError, WindowAggregate, PREFETCH_AHEAD,
};
use eddy_scorer::encoding::{Feature, FeatureKind, FeatureSpec};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::EngineError;
use crate::metrics::MetricsFactory;
use crate::pipeline::PipelineSpec;
use crate::record::{DeadLetter, SourceBatch, StreamRole};
use crate::source::{SourceError, StreamSpec};
use crate::units::ConfigSize;

/// Dead-letter reason of rows a feature expression failed on.
pub const DEAD_LETTER_REASON: &str = "feature_sql";

fn default_max_state() -> ConfigSize {
    ConfigSize(256 << 20)
}

/// `[features]`: feature SQL and windowed aggregates.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// `SELECT <expressions> FROM events [WHERE ...]`, run on every events batch.
    #[serde(default)]
    pub sql: Option<String>,
    /// Windowed aggregates by name, joined to each event as of its own time.
    #[serde(default)]
    pub aggregates: BTreeMap<String, AggregateConfig>,
}

/// `[features.aggregates.NAME]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// `SELECT key, agg(col) AS name, ... FROM events GROUP BY key, TUMBLE(..) | HOP(..)`.
    pub sql: String,
    /// Memory cap of the per-key state (e.g. `"64 MiB"`); least recently seen keys are
    /// evicted beyond it.
    #[serde(default = "default_max_state")]
    pub max_state: ConfigSize,
    /// Export, per output, the value the latest event saw as the gauge
    /// `eddy_feature_aggregate_value{aggregate,output}` (one series per output, never per key;
    /// the latest event the aggregate has seen, which may be up to a batch ahead of scoring).
    #[serde(default)]
    pub export_metrics: bool,
}

impl FeaturesConfig {
    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        self.sql.is_none() && self.aggregates.is_empty()
    }

    /// Plans every query against `events` and returns each problem as `(key, error)` with the
    /// config key (`sql`, `aggregates.NAME.sql`, ...) it belongs to.
    pub fn problems(&self, events: &StreamSpec) -> Vec<(String, SqlError)> {
        let mut out = Vec::new();
        let mut columns: Option<Vec<String>> = None;
        if let Some(sql) = &self.sql {
            match FeatureQuery::plan(sql, &events_schema(events)) {
                Ok(q) => {
                    columns = Some(q.output_schema().fields().iter().map(|f| f.name().clone()).collect());
                }
                Err(e) => out.push(("sql".to_string(), e)),
            }
        }
        let mut outputs: Vec<String> = Vec::new();
        for (name, a) in &self.aggregates {
            if a.max_state.0 == 0 {
                out.push((
                    format!("aggregates.{name}.max_state"),
                    SqlError::new("must be more than 0 bytes"),
                ));
            }
            match AggregateQuery::parse(&a.sql, &events.time) {
                Err(e) => out.push((format!("aggregates.{name}.sql"), e)),
                Ok(q) => {
                    let mut read = vec![q.key.clone()];
                    read.extend(q.input_columns());
                    if let Some(cols) = &columns {
                        for c in read.iter().filter(|c| !cols.contains(c)) {
                            out.push((
                                format!("aggregates.{name}.sql"),
                                SqlError::new(format!(
                                    "column `{c}` is not an output of features.sql (outputs: {})",
                                    cols.join(", ")
                                )),
                            ));
                        }
                    }
                    for o in &q.outputs {
                        if outputs.contains(&o.name) || columns.as_ref().is_some_and(|c| c.contains(&o.name))
                        {
                            out.push((
                                format!("aggregates.{name}.sql"),
                                SqlError::new(format!(
                                    "output `{}` is already a feature name; name it differently with AS",
                                    o.name
                                )),
                            ));
                        }
                        outputs.push(o.name.clone());
                    }
                }
            }
        }
        out
    }
}

/// The schema a feature query is planned against: the stream's key, time and declared fields.
pub fn events_schema(events: &StreamSpec) -> EventsSchema {
    EventsSchema {
        key: events.key.clone(),
        time: events.time.clone(),
        declared: events
            .declared
            .iter()
            .map(|(n, k)| {
                let t = match k {
                    FeatureKind::Numeric => DataType::Float64,
                    FeatureKind::Categorical => DataType::Utf8,
                    FeatureKind::Boolean => DataType::Boolean,
                };
                (n.clone(), t)
            })
            .collect(),
    }
}

/// `features.sql` on the source threads. See the module docs.
pub struct FeatureStage {
    query: FeatureQuery,
    checked: AtomicBool,
    filtered: AtomicU64,
    failed: AtomicU64,
    filtered_metric: metrics::Counter,
}

impl FeatureStage {
    /// Plans `features.sql`, when configured.
    ///
    /// # Errors
    /// When the query does not plan (what `eddy validate` reports).
    pub fn new(spec: &PipelineSpec, factory: &MetricsFactory) -> Result<Option<Self>, EngineError> {
        let Some(sql) = &spec.feature_sql.sql else { return Ok(None) };
        let query = FeatureQuery::plan(sql, &events_schema(&spec.events))
            .map_err(|e| EngineError::Input(format!("features.sql: {e}")))?;
        Ok(Some(FeatureStage {
            query,
            checked: AtomicBool::new(false),
            filtered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            filtered_metric: factory.counter("eddy_feature_sql_filtered_total", &[]),
        }))
    }

    /// Rows the `WHERE` clause dropped so far.
    pub fn filtered(&self) -> u64 {
        self.filtered.load(Ordering::Relaxed)
    }

    /// Rows sent to the dead letters because an expression failed on them.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Runs the query on an events batch (other batches pass untouched). `None` when no row
    /// is left.
    ///
    /// # Errors
    /// When the first events batch lacks a column the query reads (a misspelt field).
    pub fn apply(&self, mut b: SourceBatch, source: &str) -> Result<SourceBatch, SourceError> {
        if b.role != StreamRole::Events {
            return Ok(b);
        }
        if !self.checked.swap(true, Ordering::Relaxed) {
            let missing = self.query.missing_columns(&b.batch.schema());
            if !missing.is_empty() {
                let have: Vec<String> = b.batch.schema().fields().iter().map(|f| f.name().clone()).collect();
                return Err(SourceError::new(
                    source,
                    format!(
                        "features.sql reads {} that the events do not have (fields: {})",
                        missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
                        have.join(", ")
                    ),
                ));
            }
        }
        let evaluated = match self.query.evaluate(&b.batch) {
            Ok(e) => e,
            Err(_) => return Ok(self.row_by_row(b, source)),
        };
        if evaluated.filtered > 0 {
            self.filtered.fetch_add(evaluated.filtered as u64, Ordering::Relaxed);
            self.filtered_metric.increment(evaluated.filtered as u64);
        }
        if let Some(kept) = &evaluated.kept {
            b.offsets = keep(&b.offsets, kept);
        }
        b.batch = evaluated.batch;
        // Even with no row left the batch goes on: it carries the source's position and its
        // dead letters, which must reach the engine for checkpoints to stay consistent.
        Ok(b)
    }

    /// A batch an expression failed on, evaluated one row at a time: the rows it fails on go
    /// to the dead letters, the rest go on.
    fn row_by_row(&self, mut b: SourceBatch, source: &str) -> SourceBatch {
        let mut parts = Vec::new();
        let mut offsets = Vec::new();
        let key = b.batch.column(0).as_string_opt::<i32>().cloned();
        for r in 0..b.batch.num_rows() {
            match self.query.evaluate(&b.batch.slice(r, 1)) {
                Ok(e) => {
                    if e.filtered > 0 {
                        self.filtered.fetch_add(1, Ordering::Relaxed);
                        self.filtered_metric.increment(1);
                    } else {
                        parts.push(e.batch);
                        offsets.push(b.offsets[r]);
                    }
                }
                Err(e) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    let record =
                        key.as_ref().map(|k: &StringArray| k.value(r).to_string()).unwrap_or_default();
                    b.dead_letters.push(DeadLetter::new(
                        source,
                        b.offsets[r],
                        DEAD_LETTER_REASON,
                        e.to_string(),
                        &format!("{{\"key\":{record:?}}}"),
                    ));
                }
            }
        }
        b.dead_letters.sort_by_key(|d| d.offset);
        b.batch = arrow_select::concat::concat_batches(self.query.output_schema(), &parts)
            .unwrap_or_else(|_| RecordBatch::new_empty(self.query.output_schema().clone()));
        b.offsets = offsets;
        b
    }
}

fn keep(offsets: &[u64], mask: &BooleanArray) -> Vec<u64> {
    offsets.iter().enumerate().filter(|(i, _)| mask.value(*i)).map(|(_, o)| *o).collect()
}

/// The aggregate keys of every row of a batch, hashed once per batch and key column (several
/// aggregates often share a key), `None` for a null key.
struct KeyHashes {
    column: String,
    hashes: Vec<Option<u64>>,
}

impl KeyHashes {
    fn of(column: &dyn Array) -> Option<Vec<Option<u64>>> {
        fn each<A: Array>(a: &A, hash: impl Fn(usize) -> u64) -> Vec<Option<u64>> {
            (0..a.len()).map(|r| a.is_valid(r).then(|| hash(r))).collect()
        }
        Some(match column.data_type() {
            DataType::Utf8 => {
                let a = column.as_string::<i32>();
                each(a, |r| xxh3_64(a.value(r).as_bytes()))
            }
            DataType::Float64 => {
                let a = column.as_primitive::<Float64Type>();
                each(a, |r| xxh3_64(&a.value(r).to_bits().to_le_bytes()))
            }
            DataType::Boolean => {
                let a = column.as_boolean();
                each(a, |r| a.value(r) as u64)
            }
            _ => return None,
        })
    }
}

struct Aggregate {
    name: String,
    state: WindowAggregate,
    export: bool,
    keys_gauge: metrics::Gauge,
    bytes_gauge: metrics::Gauge,
    evictions: metrics::Counter,
    late: metrics::Counter,
    values: Vec<metrics::Gauge>,
    /// Its key's entry in [`WindowFeatures`]' `keys`.
    key: usize,
    /// Its input columns in the current batch.
    inputs: Vec<Option<Float64Array>>,
    /// First output's position among all aggregate outputs.
    first: usize,
    last_values: Vec<Option<f64>>,
}

/// One aggregate's figures in the run summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateSummary {
    /// Config name.
    pub name: String,
    /// Keys held at the end.
    pub keys: u64,
    /// Keys evicted to stay under `max_state`.
    pub evictions: u64,
    /// Events older than their key's newest event.
    pub late: u64,
    /// Late events too old to keep.
    pub dropped_late: u64,
    /// Estimated state bytes at the end.
    pub state_bytes: u64,
}

/// Feature SQL figures in the run summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureSqlSummary {
    /// Events the `features.sql` WHERE clause dropped.
    pub filtered: u64,
    /// Events an expression failed on (sent to the dead letters).
    pub failed: u64,
    /// Windowed aggregates.
    pub aggregates: Vec<AggregateSummary>,
}

impl FeatureSqlSummary {
    /// The summary of a run's feature SQL (`None` when none was configured).
    pub fn of(stage: Option<&FeatureStage>, windows: Option<&WindowFeatures>) -> Option<Self> {
        if stage.is_none() && windows.is_none() {
            return None;
        }
        Some(FeatureSqlSummary {
            filtered: stage.map_or(0, |s| s.filtered()),
            failed: stage.map_or(0, |s| s.failed()),
            aggregates: windows.map(|w| w.summaries()).unwrap_or_default(),
        })
    }
}

/// The windowed aggregates on the engine thread. See the module docs.
pub struct WindowFeatures {
    aggregates: Vec<Aggregate>,
    /// Whether a batch's rows are all computed at its first run (see [`Self::run_ahead`]).
    run_ahead: bool,
    /// Batch id the key hashes and input columns were resolved for.
    batch: Option<u64>,
    keys: Vec<KeyHashes>,
    /// Rows of `batch` whose values are in `values` (computed, so already in the state).
    from: usize,
    to: usize,
    /// End of the last run of `batch` the engine asked for: rows `served..to` are computed
    /// but not yet processed by the engine.
    served: usize,
    /// Values of a checkpoint's computed but unprocessed rows: the rows of the first events
    /// batch after a restore.
    restored: Option<Vec<Option<f64>>>,
    /// Output names, all aggregates in order.
    names: Vec<String>,
    /// For each output, its feature index in the encoder (when the model uses it).
    feature_index: Vec<Option<usize>>,
    /// Values of rows `from..to`: `rows x outputs`, row-major.
    values: Vec<Option<f64>>,
    inputs: Vec<Option<f64>>,
}

/// [`WindowFeatures`] in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowFeaturesState {
    /// One per aggregate.
    pub aggregates: Vec<AggregateState>,
    /// Values of the rows already added to the aggregates but not yet processed by the
    /// engine (run ahead): the first rows of the checkpoint's queued events, `rows x outputs`.
    pub ahead: Vec<Option<f64>>,
}

impl WindowFeatures {
    /// Parses the configured aggregates (`None` when there are none).
    ///
    /// # Errors
    /// When a query does not parse (what `eddy validate` reports).
    pub fn new(spec: &PipelineSpec, factory: &MetricsFactory) -> Result<Option<Self>, EngineError> {
        if spec.feature_sql.aggregates.is_empty() {
            return Ok(None);
        }
        let mut aggregates = Vec::new();
        let mut keys: Vec<KeyHashes> = Vec::new();
        let mut names = Vec::new();
        for (name, config) in &spec.feature_sql.aggregates {
            let query = AggregateQuery::parse(&config.sql, &spec.events.time)
                .map_err(|e| EngineError::Input(format!("features.aggregates.{name}.sql: {e}")))?;
            let labels = [("aggregate", name.as_str())];
            let outputs: Vec<String> = query.outputs.iter().map(|o| o.name.clone()).collect();
            let key = keys.iter().position(|k| k.column == query.key).unwrap_or_else(|| {
                keys.push(KeyHashes { column: query.key.clone(), hashes: Vec::new() });
                keys.len() - 1
            });
            let values = if config.export_metrics {
                outputs
                    .iter()
                    .map(|o| {
                        factory.gauge("eddy_feature_aggregate_value", &[("aggregate", name), ("output", o)])
                    })
                    .collect()
            } else {
                Vec::new()
            };
            aggregates.push(Aggregate {
                name: name.clone(),
                export: config.export_metrics,
                keys_gauge: factory.gauge("eddy_feature_aggregate_keys", &labels),
                bytes_gauge: factory.gauge("eddy_feature_aggregate_state_bytes", &labels),
                evictions: factory.counter("eddy_feature_aggregate_evictions_total", &labels),
                late: factory.counter("eddy_feature_aggregate_late_total", &labels),
                values,
                key,
                inputs: Vec::new(),
                first: names.len(),
                last_values: vec![None; outputs.len()],
                state: WindowAggregate::new(query, config.max_state.0),
            });
            names.extend(outputs);
        }
        let n = names.len();
        Ok(Some(WindowFeatures {
            aggregates,
            run_ahead: false,
            batch: None,
            keys,
            from: 0,
            to: 0,
            served: 0,
            restored: None,
            feature_index: vec![None; n],
            names,
            values: Vec::new(),
            inputs: Vec::new(),
        }))
    }

    /// Splits the model's feature names into event columns and aggregate outputs (which the
    /// model sees after the event's own columns). With no explicit feature list (`listed`
    /// false), every aggregate output is a feature.
    pub fn split_names(&self, names: Vec<String>, listed: bool) -> (Vec<String>, Vec<String>) {
        let (outputs, columns): (Vec<String>, Vec<String>) =
            names.into_iter().partition(|n| self.names.contains(n));
        if listed {
            (columns, self.names.iter().filter(|n| outputs.contains(n)).cloned().collect())
        } else {
            (columns, self.names.clone())
        }
    }

    /// Adds the aggregate outputs the model uses to `features` (numeric, after the event
    /// columns) and remembers their positions.
    ///
    /// # Errors
    /// When an aggregate output has the name of an event column.
    pub fn bind(
        &mut self,
        features: &mut Vec<FeatureSpec>,
        outputs: Vec<String>,
        batch: &RecordBatch,
    ) -> Result<(), EngineError> {
        for name in &self.names {
            if batch.schema().index_of(name).is_ok() {
                return Err(EngineError::Input(format!(
                    "aggregate output `{name}` has the name of an events column; rename it with AS"
                )));
            }
        }
        for name in outputs {
            let j = self.names.iter().position(|n| n == &name).expect("split_names returns known outputs");
            self.feature_index[j] = Some(features.len());
            features.push(FeatureSpec { name, kind: FeatureKind::Numeric });
        }
        Ok(())
    }

    /// Binds outputs to the features of a restored model (whose feature list already has them,
    /// as [`Self::bind`] appended them).
    pub(crate) fn rebind(&mut self, features: &[FeatureSpec]) {
        for (j, name) in self.names.iter().enumerate() {
            self.feature_index[j] = features.iter().position(|f| &f.name == name);
        }
    }

    /// Computes all the rows of an events batch at its first run instead of run by run.
    ///
    /// Only valid when one source carries events: the aggregates must see the events in the
    /// engine's order, and with a single events lane that is the batch's own order, whatever
    /// labels the merger interleaves. It is several times faster with many keys: the loop
    /// over a batch keeps the aggregates' code and prefetches busy, where run by run every
    /// event comes between two labels (whose join and learning push the state out of cache).
    pub(crate) fn run_ahead(&mut self, on: bool) {
        self.run_ahead = on;
    }

    /// Every aggregate's state and the values computed ahead, for a checkpoint.
    pub(crate) fn state(&self) -> WindowFeaturesState {
        let n_out = self.names.len();
        let ahead = match self.batch {
            Some(_) => self.values[(self.served - self.from) * n_out..].to_vec(),
            None => self.restored.clone().unwrap_or_default(),
        };
        WindowFeaturesState { aggregates: self.aggregates.iter().map(|a| a.state.state()).collect(), ahead }
    }

    /// Continues from a checkpoint.
    ///
    /// # Errors
    /// When it belongs to other queries.
    pub(crate) fn restore(&mut self, state: WindowFeaturesState) -> Result<(), String> {
        if state.aggregates.len() != self.aggregates.len()
            || !state.ahead.len().is_multiple_of(self.names.len())
        {
            return Err("the checkpoint's windowed aggregates do not match the configuration".into());
        }
        for (a, s) in self.aggregates.iter_mut().zip(state.aggregates) {
            a.state.restore(s)?;
        }
        self.batch = None;
        self.restored = (!state.ahead.is_empty()).then_some(state.ahead);
        Ok(())
    }

    /// How many outputs the model uses (the last features of the encoder).
    pub fn bound(&self) -> usize {
        self.feature_index.iter().flatten().count()
    }

    /// Output names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads (as of each event's time) and then updates every aggregate for rows
    /// `start..end` of `batch` (batch `id`), keeping the values for [`Self::encode`]. With
    /// [`Self::run_ahead`], the first run of a batch computes all its rows.
    ///
    /// # Errors
    /// When the batch lacks a column an aggregate reads, or a value column is not numeric.
    pub fn run(
        &mut self,
        batch: &RecordBatch,
        id: u64,
        times: &[i64],
        start: usize,
        end: usize,
    ) -> Result<(), EngineError> {
        if self.batch == Some(id) && self.from <= start && end <= self.to {
            self.served = end;
            return Ok(());
        }
        if self.batch != Some(id) {
            self.resolve(batch)?;
            self.batch = Some(id);
            if let Some(values) = self.restored.take() {
                // The first events batch after a restore: its rows were added to the state
                // before the checkpoint.
                let rows = values.len() / self.names.len();
                if start != 0 || rows != batch.num_rows() {
                    return Err(EngineError::Internal(format!(
                        "the checkpoint computed aggregates for {rows} queued events, the queue has {}",
                        batch.num_rows() - start
                    )));
                }
                (self.values, self.from, self.to, self.served) = (values, 0, rows, end);
                return Ok(());
            }
        }
        let to = if self.run_ahead { batch.num_rows() } else { end };
        self.compute(times, start, to);
        (self.from, self.to, self.served) = (start, to, end);
        Ok(())
    }

    /// Hashes the keys of a new batch and finds every aggregate's input columns in it.
    fn resolve(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        for a in &mut self.aggregates {
            resolve(a, batch)?;
        }
        for k in &mut self.keys {
            let column = batch.column_by_name(&k.column).expect("resolve checked every key column");
            k.hashes = KeyHashes::of(column.as_ref()).expect("resolve checked the key types");
        }
        Ok(())
    }

    /// Computes rows `from..to` of the resolved batch into `values`.
    fn compute(&mut self, times: &[i64], from: usize, to: usize) {
        let n_out = self.names.len();
        self.values.clear();
        self.values.resize((to - from) * n_out, None);
        for a in &mut self.aggregates {
            let width = a.state.outputs().len();
            let hashes = &self.keys[a.key].hashes;
            self.inputs.resize(a.inputs.len(), None);
            let mut last = None;
            for (r, &ts) in times.iter().enumerate().take(to).skip(from) {
                // Rows ahead are this batch's next events, whatever labels come in between.
                for (stage, ahead) in PREFETCH_AHEAD {
                    if let Some(Some(h)) = hashes.get(r + ahead) {
                        a.state.prefetch(stage, *h);
                    }
                }
                let Some(h) = hashes[r] else {
                    // No key, no group: the outputs stay missing and the state is untouched.
                    continue;
                };
                for (v, c) in self.inputs.iter_mut().zip(&a.inputs) {
                    *v = c.as_ref().and_then(|c| c.is_valid(r).then(|| c.value(r)));
                }
                let at = (r - from) * n_out + a.first;
                a.state.update(h, ts, &self.inputs, &mut self.values[at..at + width]);
                last = Some(at);
            }
            if let (true, Some(at)) = (a.export, last) {
                a.last_values.copy_from_slice(&self.values[at..at + width]);
            }
        }
    }

    /// Appends the aggregate features of row `r` of the last run's batch to `out`, updating
    /// the encoder's running statistics.
    #[inline]
    pub fn encode(&self, encoder: &mut FeatureEncoder, r: usize, out: &mut Vec<Feature>) {
        let n_out = self.names.len();
        let row = &self.values[(r - self.from) * n_out..(r - self.from + 1) * n_out];
        let standardize = encoder.standardize();
        for (f, value) in self.feature_index.iter().zip(row) {
            let Some(f) = *f else { continue };
            match *value {
                Some(x) if x.is_finite() => {
                    let stats = encoder.observe(f, x);
                    out.push(encoder.plan().numeric(f, x, stats, standardize));
                }
                _ => encoder.plan().missing(f, out),
            }
        }
    }

    /// Publishes key counts, state sizes, evictions and (when asked) the latest values.
    pub fn publish(&self) {
        for a in &self.aggregates {
            a.keys_gauge.set(a.state.keys() as f64);
            a.bytes_gauge.set(a.state.bytes() as f64);
            a.evictions.absolute(a.state.evictions());
            a.late.absolute(a.state.late());
            for (g, v) in a.values.iter().zip(&a.last_values) {
                if let Some(v) = v {
                    g.set(*v);
                }
            }
        }
    }

    /// Per-aggregate figures for the run summary.
    pub fn summaries(&self) -> Vec<AggregateSummary> {
        self.aggregates
            .iter()
            .map(|a| AggregateSummary {
                name: a.name.clone(),
                keys: a.state.keys() as u64,
                evictions: a.state.evictions(),
                late: a.state.late(),
                dropped_late: a.state.dropped_late(),
                state_bytes: a.state.bytes(),
            })
            .collect()
    }
}

/// Checks `a`'s key column in `batch` and resolves its input columns.
fn resolve(a: &mut Aggregate, batch: &RecordBatch) -> Result<(), EngineError> {
    let schema = batch.schema();
    let fields = || schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    let aggregate = a.name.clone();
    let column = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| {
            EngineError::Input(format!(
                "features.aggregates.{aggregate}: the events have no column `{name}` (columns: {})",
                fields()
            ))
        })
    };
    let key_name = a.state.query().key.clone();
    let key = column(&key_name)?;
    if !matches!(key.data_type(), DataType::Utf8 | DataType::Float64 | DataType::Boolean) {
        return Err(EngineError::Input(format!(
            "features.aggregates.{}: key column `{key_name}` has type {}; use a string, number or boolean",
            a.name,
            key.data_type()
        )));
    }
    let mut inputs = Vec::new();
    for c in a.state.columns().to_vec() {
        let col = column(&c)?;
        inputs.push(match col.data_type() {
            DataType::Float64 => Some(col.as_primitive::<Float64Type>().clone()),
            DataType::Null => None,
            t => {
                return Err(EngineError::Input(format!(
                    "features.aggregates.{}: column `{c}` has type {t}; aggregates read numbers",
                    a.name
                )))
            }
        });
    }
    a.inputs = inputs;
    Ok(())
}
