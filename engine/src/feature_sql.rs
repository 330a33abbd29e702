//! Feature SQL in the dataflow: the `[features]` config section and the stateless feature
//! query on the source threads.
//!
//! [`FeatureStage`] runs `features.sql` on every events batch *in the source thread that
//! decoded it* (it is stateless, so it overlaps with the engine thread's scoring and learning).
//! Filtered rows are counted; rows a failing expression rejects go to the dead letters with
//! reason `feature_sql`. The windowed aggregates (`[features.aggregates.NAME]`) are stateful
//! and live in `window_features.rs`.
//!
//! The operators live in `eddy_operators::sql`; this file only wires them to batches, metrics
//! and the run summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::{BooleanArray, RecordBatch, StringArray};
use arrow_schema::DataType;
use eddy_operators::sql::{AggregateQuery, EventsSchema, FeatureQuery, SqlError};
use eddy_scorer::encoding::FeatureKind;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::metrics::{MetricsFactory, FEATURE_SQL_FILTERED_TOTAL};
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
    pub fn new(
        config: &FeaturesConfig,
        events: &StreamSpec,
        factory: &MetricsFactory,
    ) -> Result<Option<Self>, EngineError> {
        let Some(sql) = &config.sql else { return Ok(None) };
        let query = FeatureQuery::plan(sql, &events_schema(events))
            .map_err(|e| EngineError::config("features.sql", e))?;
        Ok(Some(FeatureStage {
            query,
            checked: AtomicBool::new(false),
            filtered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            filtered_metric: factory.counter(&FEATURE_SQL_FILTERED_TOTAL, &[]),
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
    /// `aggregates` are the windowed aggregates' summaries, when any are configured.
    pub fn of(stage: Option<&FeatureStage>, aggregates: Option<Vec<AggregateSummary>>) -> Option<Self> {
        if stage.is_none() && aggregates.is_none() {
            return None;
        }
        Some(FeatureSqlSummary {
            filtered: stage.map_or(0, |s| s.filtered()),
            failed: stage.map_or(0, |s| s.failed()),
            aggregates: aggregates.unwrap_or_default(),
        })
    }
}
