//! Windowed aggregates in the dataflow: [`WindowFeatures`], what the engine knows of them, and
//! [`AggregateStage`], the same aggregates computed on the events source's thread.
//!
//! Each `[features.aggregates.NAME]` query keeps per-key state
//! (`eddy_operators::sql::WindowAggregate`). Every event first reads its aggregates *as of its
//! own time*, then adds itself; the values become numeric model features after the event's own
//! columns. The aggregates must see the events in the engine's order, so where they run depends
//! on how many sources carry events:
//!
//! - **One events source** (the usual case): on that source's thread, right after
//!   `features.sql` ([`AggregateStage`]). Each events batch leaves the thread with one `Float64`
//!   column per output appended (null where the value is missing), and the engine encodes them
//!   like any other column. With a single events lane the engine's order *is* the batches' own
//!   order, whatever labels the merger interleaves, so the values are the ones the engine
//!   thread would compute. Running them there balances the two threads: with many keys the
//!   aggregates wait on memory for as long as the engine spends scoring and learning, and on
//!   the engine thread they made it the bottleneck.
//! - **Several events sources**: only the engine thread knows the merged order, so the
//!   aggregates run there, run by run ([`WindowFeatures::run`], [`WindowFeatures::encode`]).
//!
//! # Checkpoints
//!
//! On the engine thread the state is simply part of the engine's. On a source thread it runs
//! ahead of the engine by the batches in flight. A checkpoint therefore locks the state (waiting
//! at most for the batch being computed), takes every batch the state has seen into the merger
//! (they are checkpointed as rows taken but not processed, their aggregate columns with them),
//! and captures the state under the same lock ([`WindowFeatures::capture`]): state, queued rows
//! and the source's resume position then describe the same instant. A restore puts the state
//! back before any source thread starts.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use eddy_operators::encoder::FeatureEncoder;
use eddy_operators::sql::{AggregateQuery, AggregateState, WindowAggregate, PREFETCH_AHEAD};
use eddy_scorer::encoding::{Feature, FeatureKind, FeatureSpec};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{CheckpointError, EngineError};
use crate::feature_sql::AggregateSummary;
use crate::feature_sql::FeaturesConfig;
use crate::merge::StreamMerger;
use crate::metrics::{
    MetricsFactory, FEATURE_AGGREGATE_EVICTIONS_TOTAL, FEATURE_AGGREGATE_KEYS, FEATURE_AGGREGATE_LATE_TOTAL,
    FEATURE_AGGREGATE_STATE_BYTES, FEATURE_AGGREGATE_VALUE,
};
use crate::record::{SourceBatch, StreamRole};
use crate::source::SourceError;

/// The aggregate keys of every row of a batch, hashed once per batch and key column (several
/// aggregates often share a key), `None` for a null key.
#[derive(Default)]
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
    /// Its key's entry in [`AggregateSet`]'s `keys`.
    key: usize,
    /// Its input columns in the current batch.
    inputs: Vec<Option<Float64Array>>,
    /// First output's position among all aggregate outputs.
    first: usize,
    last_values: Vec<Option<f64>>,
}

/// Every aggregate's state and the per-row computation, owned by whichever thread runs them.
#[derive(Default)]
struct AggregateSet {
    aggregates: Vec<Aggregate>,
    keys: Vec<KeyHashes>,
    /// Outputs of all aggregates.
    width: usize,
    inputs: Vec<Option<f64>>,
    /// Events batches computed on a source thread so far: each carries its number
    /// (`SourceBatch::aggregated`), so a checkpoint knows which batches the state has seen.
    batches: u64,
}

impl AggregateSet {
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

    /// Reads and then updates every aggregate for rows `from..to` of the resolved batch,
    /// writing their values to `values` (`rows x width`, row-major).
    fn compute(&mut self, times: &[i64], from: usize, to: usize, values: &mut Vec<Option<f64>>) {
        let width = self.width;
        values.clear();
        values.resize((to - from) * width, None);
        for a in &mut self.aggregates {
            let outputs = a.state.outputs().len();
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
                let at = (r - from) * width + a.first;
                a.state.update(h, ts, &self.inputs, &mut values[at..at + outputs]);
                last = Some(at);
            }
            if let (true, Some(at)) = (a.export, last) {
                a.last_values.copy_from_slice(&values[at..at + outputs]);
            }
        }
    }

    fn publish(&self) {
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

    fn summaries(&self) -> Vec<AggregateSummary> {
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

    fn state(&self) -> WindowFeaturesState {
        WindowFeaturesState { aggregates: self.aggregates.iter().map(|a| a.state.state()).collect() }
    }

    fn restore(&mut self, state: WindowFeaturesState) -> Result<(), CheckpointError> {
        if state.aggregates.len() != self.aggregates.len() {
            return Err(CheckpointError::Restore(
                "the checkpoint's windowed aggregates do not match the configuration".into(),
            ));
        }
        for (a, s) in self.aggregates.iter_mut().zip(state.aggregates) {
            a.state
                .restore(s)
                .map_err(|e| CheckpointError::Restore(format!("aggregate `{}`: {e}", a.name)))?;
        }
        Ok(())
    }
}

/// Where the aggregates run (see the module docs).
enum Placement {
    Engine(AggregateSet),
    Source(Arc<Mutex<AggregateSet>>),
}

/// A panicked source thread leaves the state as it was between two updates: still usable.
fn lock(set: &Mutex<AggregateSet>) -> MutexGuard<'_, AggregateSet> {
    set.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The windowed aggregates as the engine sees them: their output names and feature positions,
/// and, when they run on the engine thread, their state and the values of the current run.
/// See the module docs.
pub struct WindowFeatures {
    placement: Placement,
    /// Batch id the key hashes and input columns were resolved for (engine placement).
    batch: Option<u64>,
    /// First row of the last run: `values` holds rows `from..` of it (engine placement).
    from: usize,
    /// Output names, all aggregates in order.
    names: Vec<String>,
    /// For each output, its feature index in the encoder (when the model uses it).
    feature_index: Vec<Option<usize>>,
    /// Values of the last run's rows: `rows x outputs`, row-major (engine placement).
    values: Vec<Option<f64>>,
}

/// [`WindowFeatures`] in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowFeaturesState {
    /// One per aggregate.
    pub aggregates: Vec<AggregateState>,
}

impl WindowFeatures {
    /// Parses the configured aggregates (`None` when there are none). They run on the engine
    /// thread until [`Self::move_to_source`].
    ///
    /// # Errors
    /// When a query does not parse (what `eddy validate` reports).
    pub fn new(
        config: &FeaturesConfig,
        time_field: &str,
        factory: &MetricsFactory,
    ) -> Result<Option<Self>, EngineError> {
        if config.aggregates.is_empty() {
            return Ok(None);
        }
        let mut aggregates = Vec::new();
        let mut keys: Vec<KeyHashes> = Vec::new();
        let mut names = Vec::new();
        for (name, config) in &config.aggregates {
            let query = AggregateQuery::parse(&config.sql, time_field)
                .map_err(|e| EngineError::config(format!("features.aggregates.{name}.sql"), e))?;
            let labels = [("aggregate", name.as_str())];
            let outputs: Vec<String> = query.outputs.iter().map(|o| o.name.clone()).collect();
            let key = keys.iter().position(|k| k.column == query.key).unwrap_or_else(|| {
                keys.push(KeyHashes { column: query.key.clone(), hashes: Vec::new() });
                keys.len() - 1
            });
            let values = if config.export_metrics {
                outputs
                    .iter()
                    .map(|o| factory.gauge(&FEATURE_AGGREGATE_VALUE, &[("aggregate", name), ("output", o)]))
                    .collect()
            } else {
                Vec::new()
            };
            aggregates.push(Aggregate {
                name: name.clone(),
                export: config.export_metrics,
                keys_gauge: factory.gauge(&FEATURE_AGGREGATE_KEYS, &labels),
                bytes_gauge: factory.gauge(&FEATURE_AGGREGATE_STATE_BYTES, &labels),
                evictions: factory.counter(&FEATURE_AGGREGATE_EVICTIONS_TOTAL, &labels),
                late: factory.counter(&FEATURE_AGGREGATE_LATE_TOTAL, &labels),
                values,
                key,
                inputs: Vec::new(),
                first: names.len(),
                last_values: vec![None; outputs.len()],
                state: WindowAggregate::new(query, config.max_state.0),
            });
            names.extend(outputs);
        }
        let width = names.len();
        Ok(Some(WindowFeatures {
            placement: Placement::Engine(AggregateSet {
                aggregates,
                keys,
                width,
                inputs: Vec::new(),
                batches: 0,
            }),
            batch: None,
            from: 0,
            feature_index: vec![None; width],
            names,
            values: Vec::new(),
        }))
    }

    /// Moves the computation to the thread of the only source that carries events: the
    /// returned stage computes every events batch there and appends the values as columns.
    /// Call it before any batch is computed.
    pub(crate) fn move_to_source(&mut self, time_column: &str) -> AggregateStage {
        let set = match &mut self.placement {
            Placement::Engine(set) => Arc::new(Mutex::new(std::mem::take(set))),
            Placement::Source(set) => set.clone(),
        };
        self.placement = Placement::Source(set.clone());
        AggregateStage {
            set,
            time: time_column.to_string(),
            names: self.names.clone(),
            values: Vec::new(),
            schema: None,
        }
    }

    /// Whether the aggregates run on a source thread (their values then arrive as columns of
    /// the events batches).
    pub fn on_source(&self) -> bool {
        matches!(self.placement, Placement::Source(_))
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
        // On a source thread the outputs are columns of the batch by now; the stage checked
        // them against the events' own columns.
        if !self.on_source() {
            check_output_names(&self.names, &batch.schema())?;
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

    /// Every aggregate's state, for a checkpoint. With the aggregates on a source thread, first
    /// takes into `merger` every batch they have computed, under the lock that keeps them from
    /// computing more, so the state, the merger's queued rows and the source's position agree.
    ///
    /// # Errors
    /// When the source failed or ended before sending a batch it computed (a bug).
    pub(crate) fn capture(&self, merger: &mut StreamMerger) -> Result<WindowFeaturesState, EngineError> {
        match &self.placement {
            Placement::Engine(set) => Ok(set.state()),
            Placement::Source(set) => {
                let set = lock(set);
                merger.take_aggregated(set.batches)?;
                Ok(set.state())
            }
        }
    }

    /// Continues from a checkpoint. Call it before any source thread starts.
    ///
    /// # Errors
    /// When it belongs to other queries.
    pub(crate) fn restore(&mut self, state: WindowFeaturesState) -> Result<(), CheckpointError> {
        self.batch = None;
        match &mut self.placement {
            Placement::Engine(set) => set.restore(state),
            Placement::Source(set) => lock(set).restore(state),
        }
    }

    /// How many outputs the model uses (the last features of the encoder).
    pub fn bound(&self) -> usize {
        self.feature_index.iter().flatten().count()
    }

    /// Output names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// On the engine thread: reads (as of each event's time) and then updates every aggregate
    /// for rows `start..end` of `batch` (batch `id`), keeping the values for [`Self::encode`].
    /// Does nothing when the aggregates run on a source thread.
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
        let Placement::Engine(set) = &mut self.placement else { return Ok(()) };
        if self.batch != Some(id) {
            set.resolve(batch)?;
            self.batch = Some(id);
        }
        set.compute(times, start, end, &mut self.values);
        self.from = start;
        Ok(())
    }

    /// Appends the aggregate features of row `r` of the last run to `out`, updating the
    /// encoder's running statistics (engine placement only).
    #[inline]
    pub fn encode(&self, encoder: &mut FeatureEncoder, r: usize, out: &mut Vec<Feature>) {
        let n_out = self.names.len();
        let row = &self.values[(r - self.from) * n_out..(r - self.from + 1) * n_out];
        for (f, value) in self.feature_index.iter().zip(row) {
            let Some(f) = *f else { continue };
            match *value {
                Some(x) if x.is_finite() => out.push(encoder.encode_numeric(f, x)),
                _ => encoder.plan().missing(f, out),
            }
        }
    }

    /// Publishes key counts, state sizes, evictions and (when asked) the latest values. A
    /// source thread publishes its own after every batch.
    pub fn publish(&self) {
        if let Placement::Engine(set) = &self.placement {
            set.publish();
        }
    }

    /// Per-aggregate figures for the run summary.
    pub fn summaries(&self) -> Vec<AggregateSummary> {
        match &self.placement {
            Placement::Engine(set) => set.summaries(),
            Placement::Source(set) => lock(set).summaries(),
        }
    }
}

/// The windowed aggregates on the thread of the only source that carries events, after
/// `features.sql`. See the module docs.
pub struct AggregateStage {
    set: Arc<Mutex<AggregateSet>>,
    /// The events' time column.
    time: String,
    /// Output names, all aggregates in order: the columns appended.
    names: Vec<String>,
    values: Vec<Option<f64>>,
    /// The output schema for the last input schema seen.
    schema: Option<(SchemaRef, SchemaRef)>,
}

impl AggregateStage {
    /// Computes the aggregates of an events batch (other batches pass untouched) and appends
    /// one `Float64` column per output; a missing or non-finite value is null.
    ///
    /// # Errors
    /// When the batch lacks a column an aggregate reads, a value column is not numeric, or an
    /// output has the name of an events column.
    pub fn apply(&mut self, mut b: SourceBatch, source: &str) -> Result<SourceBatch, SourceError> {
        if b.role != StreamRole::Events {
            return Ok(b);
        }
        let schema =
            self.output_schema(&b.batch.schema()).map_err(|e| SourceError::new(source, e.to_string()))?;
        let times =
            b.batch.column_by_name(&self.time).and_then(|c| c.as_primitive_opt::<Int64Type>()).ok_or_else(
                || {
                    SourceError::new(
                        source,
                        format!("internal error: events batch without an Int64 time column `{}`", self.time),
                    )
                },
            )?;
        let rows = b.batch.num_rows();
        {
            let mut set = lock(&self.set);
            set.resolve(&b.batch).map_err(|e| SourceError::new(source, e.to_string()))?;
            set.compute(times.values(), 0, rows, &mut self.values);
            set.batches += 1;
            b.aggregated = Some(set.batches);
            set.publish();
        }
        let width = self.names.len();
        let mut columns = b.batch.columns().to_vec();
        for j in 0..width {
            let column: Float64Array =
                (0..rows).map(|r| self.values[r * width + j].filter(|x| x.is_finite())).collect();
            columns.push(std::sync::Arc::new(column) as ArrayRef);
        }
        b.batch = RecordBatch::try_new(schema, columns)
            .map_err(|e| SourceError::new(source, format!("internal error: aggregate columns: {e}")))?;
        Ok(b)
    }

    /// `input` with the output columns appended (cached: sources keep their schema).
    fn output_schema(&mut self, input: &SchemaRef) -> Result<SchemaRef, EngineError> {
        if let Some((i, o)) = &self.schema {
            if i == input {
                return Ok(o.clone());
            }
        }
        check_output_names(&self.names, input)?;
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        for name in &self.names {
            fields.push(Field::new(name, DataType::Float64, true));
        }
        let output = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        self.schema = Some((input.clone(), output.clone()));
        Ok(output)
    }
}

/// Fails when an aggregate output has the name of one of the events' columns: the model could
/// not tell them apart.
fn check_output_names(names: &[String], events: &Schema) -> Result<(), EngineError> {
    match names.iter().find(|n| events.index_of(n).is_ok()) {
        Some(name) => Err(EngineError::config(
            "features.aggregates",
            format!("aggregate output `{name}` has the name of an events column; rename it with AS"),
        )),
        None => Ok(()),
    }
}

/// Checks `a`'s key column in `batch` and resolves its input columns.
fn resolve(a: &mut Aggregate, batch: &RecordBatch) -> Result<(), EngineError> {
    let schema = batch.schema();
    let fields = || schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    let aggregate = a.name.clone();
    let column = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| {
            EngineError::config(
                format!("features.aggregates.{aggregate}"),
                format!("the events have no column `{name}` (columns: {})", fields()),
            )
        })
    };
    let key_name = a.state.query().key.clone();
    let key = column(&key_name)?;
    if !matches!(key.data_type(), DataType::Utf8 | DataType::Float64 | DataType::Boolean) {
        return Err(EngineError::config(
            format!("features.aggregates.{}", a.name),
            format!("key column `{key_name}` has type {}; use a string, number or boolean", key.data_type()),
        ));
    }
    let mut inputs = Vec::new();
    for c in a.state.columns().to_vec() {
        let col = column(&c)?;
        inputs.push(match col.data_type() {
            DataType::Float64 => Some(col.as_primitive::<Float64Type>().clone()),
            DataType::Null => None,
            t => {
                return Err(EngineError::config(
                    format!("features.aggregates.{}", a.name),
                    format!("column `{c}` has type {t}; aggregates read numbers"),
                ))
            }
        });
    }
    a.inputs = inputs;
    Ok(())
}
