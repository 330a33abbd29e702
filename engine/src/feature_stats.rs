//! `FeatureMonitors`: windowed statistics of the features and their drift against a reference,
//! fed from every event and published as metrics, drift events and detector inputs.
//!
//! Windows run on event time with the pipeline's watermark, so a replay and a live run close
//! the same windows with the same values. Closed windows feed gauges (per feature and window,
//! per key only when `key_metrics` asks for it, to bound cardinality) and any drift monitor
//! whose input is `window.NAME.FEATURE.STAT`.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, Float64Array, RecordBatch, StringArray};
use eddy_operators::stats::{
    ReferenceDrift, ReferenceDriftConfig, WindowResult, WindowedStats, WindowedStatsConfig,
};
use metrics::Gauge;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{CheckpointError, EngineError};
use crate::metrics::{
    MetricsFactory, FEATURE_KS, FEATURE_PSI, FEATURE_WINDOW_MAX, FEATURE_WINDOW_MEAN, FEATURE_WINDOW_MIN,
    FEATURE_WINDOW_QUANTILE, FEATURE_WINDOW_STD, FEATURE_WINDOW_VALUES, WINDOW_KEYS,
    WINDOW_LATE_RECORDS_TOTAL, WINDOW_STATE_BYTES,
};
use crate::summary::DriftRecord;

/// `[windows.NAME]`: windowed statistics of some numeric features.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureWindowConfig {
    /// Features to watch; absent means every numeric feature.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Event field to group by (one set of windows per value); absent means one global set.
    #[serde(default)]
    pub group_by: Option<String>,
    /// Export per-key gauges too (one series per key: keep the key space small).
    #[serde(default)]
    pub key_metrics: bool,
    /// Window shape, lateness, quantiles and memory caps.
    pub stats: WindowedStatsConfig,
}

/// Where the reference of a PSI/KS check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceFrom {
    /// The first `reference_size` values of each feature.
    #[default]
    FirstValues,
    /// The data the current champion was chosen on: the reference is replaced at every
    /// promotion by the most recent `reference_size` values, so drift is measured against
    /// what the serving model has seen.
    Champion,
}

/// `[reference_drift]`: PSI and KS of each feature between a reference and the recent values.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceDriftSection {
    /// Features to watch; absent means every numeric feature.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// `first_values` (default) or `champion`.
    #[serde(default)]
    pub reference: ReferenceFrom,
    /// Reference and window sizes, bins and thresholds. The reference is the first
    /// `reference_size` values of each feature.
    #[serde(default)]
    pub settings: ReferenceDriftConfig,
}

/// A statistic of a feature's closed window that a drift monitor can watch
/// (`window.WINDOW.FEATURE.STAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowStat {
    /// Mean of the window's values.
    Mean,
    /// Standard deviation.
    Std,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Number of values.
    Count,
}

impl WindowStat {
    /// Every statistic, in the order error messages list them.
    pub const ALL: [WindowStat; 5] =
        [WindowStat::Mean, WindowStat::Std, WindowStat::Min, WindowStat::Max, WindowStat::Count];

    /// The name used in drift inputs.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowStat::Mean => "mean",
            WindowStat::Std => "std",
            WindowStat::Min => "min",
            WindowStat::Max => "max",
            WindowStat::Count => "count",
        }
    }

    /// The statistic named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Its value for a closed window.
    pub fn of(self, r: &WindowResult) -> f64 {
        let s = &r.stats;
        match self {
            WindowStat::Mean => s.mean,
            WindowStat::Std => s.std,
            WindowStat::Min => s.min,
            WindowStat::Max => s.max,
            WindowStat::Count => s.count as f64,
        }
    }
}

struct WindowGauges {
    count: Gauge,
    mean: Gauge,
    std: Gauge,
    min: Gauge,
    max: Gauge,
    quantiles: Vec<Gauge>,
}

impl WindowGauges {
    fn new(f: &MetricsFactory, window: &str, feature: &str, key: Option<&str>, quantiles: &[f64]) -> Self {
        let mut labels: Vec<(&'static str, &str)> = vec![("window", window), ("feature", feature)];
        if let Some(k) = key {
            labels.push(("key", k));
        }
        let q: Vec<String> = quantiles.iter().map(|q| q.to_string()).collect();
        WindowGauges {
            count: f.gauge(&FEATURE_WINDOW_VALUES, &labels),
            mean: f.gauge(&FEATURE_WINDOW_MEAN, &labels),
            std: f.gauge(&FEATURE_WINDOW_STD, &labels),
            min: f.gauge(&FEATURE_WINDOW_MIN, &labels),
            max: f.gauge(&FEATURE_WINDOW_MAX, &labels),
            quantiles: q
                .iter()
                .map(|q| {
                    let mut l = labels.clone();
                    l.push(("q", q));
                    f.gauge(&FEATURE_WINDOW_QUANTILE, &l)
                })
                .collect(),
        }
    }

    fn set(&self, r: &WindowResult) {
        let s = &r.stats;
        self.count.set(s.count as f64);
        self.mean.set(s.mean);
        self.std.set(s.std);
        self.min.set(s.min);
        self.max.set(s.max);
        for (g, (_, v)) in self.quantiles.iter().zip(&s.quantiles) {
            g.set(*v);
        }
    }
}

struct FeatureWindow {
    window: String,
    feature: String,
    group_by: Option<String>,
    stats: WindowedStats,
    gauges: WindowGauges,
    key_gauges: Option<HashMap<u64, WindowGauges>>,
    key_names: HashMap<u64, String>,
    quantiles: Vec<f64>,
    late_published: u64,
    late: metrics::Counter,
    bytes: Gauge,
    keys: Gauge,
}

struct FeatureReference {
    feature: String,
    drift: ReferenceDrift,
    /// The most recent values, kept only with `reference = "champion"`.
    recent: Option<std::collections::VecDeque<f64>>,
    recent_cap: usize,
    psi: Gauge,
    ks: Gauge,
}

/// Checkpointed state of [`FeatureMonitors`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureMonitorsState {
    windows: Vec<WindowState>,
    references: Vec<(ReferenceDrift, Option<std::collections::VecDeque<f64>>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WindowState {
    stats: WindowedStats,
    /// Sorted by key hash, so the same state always encodes to the same bytes.
    key_names: std::collections::BTreeMap<u64, String>,
    late_published: u64,
}

/// A closed window handed to drift monitors: `(window name, feature, result)`.
pub type ClosedWindow = (String, String, WindowResult);

/// See the module docs.
pub struct FeatureMonitors {
    windows: Vec<FeatureWindow>,
    references: Vec<FeatureReference>,
    factory: MetricsFactory,
}

impl FeatureMonitors {
    /// Builds the monitors for the model's numeric features.
    ///
    /// # Errors
    /// When a window or reference configuration is invalid, or names an unknown feature.
    pub fn new(
        windows: &[(String, FeatureWindowConfig)],
        reference: Option<&ReferenceDriftSection>,
        numeric: &[String],
        factory: &MetricsFactory,
    ) -> Result<Self, EngineError> {
        let pick = |listed: &Option<Vec<String>>, what: &str| -> Result<Vec<String>, EngineError> {
            match listed {
                None => Ok(numeric.to_vec()),
                Some(l) => {
                    for f in l {
                        if !numeric.contains(f) {
                            return Err(EngineError::config(
                                what,
                                format!(
                                    "`{f}` is not a numeric feature of the model (numeric features: {})",
                                    numeric.join(", ")
                                ),
                            ));
                        }
                    }
                    Ok(l.clone())
                }
            }
        };
        let mut out = Vec::new();
        for (name, config) in windows {
            for feature in pick(&config.features, &format!("windows.{name}.features"))? {
                let stats = WindowedStats::new(config.stats.clone()).map_err(|errors| {
                    EngineError::config(
                        format!("windows.{name}.stats"),
                        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
                    )
                })?;
                let labels: [(&'static str, &str); 2] = [("window", name), ("feature", &feature)];
                out.push(FeatureWindow {
                    window: name.clone(),
                    gauges: WindowGauges::new(factory, name, &feature, None, &config.stats.quantiles),
                    key_gauges: config.key_metrics.then(HashMap::new),
                    key_names: HashMap::new(),
                    quantiles: config.stats.quantiles.clone(),
                    late_published: 0,
                    late: factory.counter(&WINDOW_LATE_RECORDS_TOTAL, &labels),
                    bytes: factory.gauge(&WINDOW_STATE_BYTES, &labels),
                    keys: factory.gauge(&WINDOW_KEYS, &labels),
                    feature,
                    group_by: config.group_by.clone(),
                    stats,
                });
            }
        }
        let mut references = Vec::new();
        if let Some(r) = reference {
            for feature in pick(&r.features, "reference_drift.features")? {
                let drift = ReferenceDrift::new(r.settings.clone()).map_err(|errors| {
                    EngineError::config(
                        "reference_drift.settings",
                        errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
                    )
                })?;
                let l: [(&'static str, &str); 1] = [("feature", &feature)];
                references.push(FeatureReference {
                    recent: (r.reference == ReferenceFrom::Champion)
                        .then(|| std::collections::VecDeque::with_capacity(r.settings.reference_size)),
                    recent_cap: r.settings.reference_size,
                    psi: factory.gauge(&FEATURE_PSI, &l),
                    ks: factory.gauge(&FEATURE_KS, &l),
                    feature,
                    drift,
                });
            }
        }
        Ok(FeatureMonitors { windows: out, references, factory: factory.clone() })
    }

    /// The monitors' state, for a checkpoint (metric handles are rebuilt, not stored).
    pub fn state(&self) -> FeatureMonitorsState {
        FeatureMonitorsState {
            windows: self
                .windows
                .iter()
                .map(|w| WindowState {
                    stats: w.stats.clone(),
                    key_names: w.key_names.iter().map(|(k, v)| (*k, v.clone())).collect(),
                    late_published: w.late_published,
                })
                .collect(),
            references: self.references.iter().map(|r| (r.drift.clone(), r.recent.clone())).collect(),
        }
    }

    /// Continues from `state`, taken from monitors built with the same configuration.
    ///
    /// # Errors
    /// When the state has another number of windows or references.
    pub fn restore(&mut self, state: FeatureMonitorsState) -> Result<(), CheckpointError> {
        if state.windows.len() != self.windows.len() || state.references.len() != self.references.len() {
            return Err(CheckpointError::Restore(
                "the checkpoint's feature windows do not match the configuration".into(),
            ));
        }
        for (w, s) in self.windows.iter_mut().zip(state.windows) {
            w.stats = s.stats;
            w.key_names = s.key_names.into_iter().collect();
            w.late_published = s.late_published;
        }
        for (r, (drift, recent)) in self.references.iter_mut().zip(state.references) {
            r.drift = drift;
            r.recent = recent;
        }
        Ok(())
    }

    /// Whether anything is watched (so the engine can skip the per-row work).
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.references.is_empty()
    }

    /// Feeds rows `start..end` of an event batch; reference drift events are appended to
    /// `detections` with `event_index0` the index of row `start`.
    pub fn update(
        &mut self,
        batch: &RecordBatch,
        times: &[i64],
        start: usize,
        end: usize,
        event_index0: u64,
        detections: &mut Vec<DriftRecord>,
    ) {
        let column = |name: &str| -> Option<&Float64Array> {
            batch.column_by_name(name).and_then(|c| c.as_primitive_opt::<Float64Type>())
        };
        for w in &mut self.windows {
            let Some(values) = column(&w.feature) else { continue };
            let keys: Option<KeyColumn<'_>> = w.group_by.as_deref().and_then(|g| KeyColumn::new(batch, g));
            for (r, &t) in times.iter().enumerate().take(end).skip(start) {
                if values.is_null(r) {
                    continue;
                }
                let key = match &keys {
                    None if w.group_by.is_some() => continue,
                    None => None,
                    Some(k) => {
                        let Some((h, text)) = k.key(r) else { continue };
                        if w.key_gauges.is_some() {
                            w.key_names.entry(h).or_insert_with(|| text.to_string());
                        }
                        Some(h)
                    }
                };
                w.stats.update(key, t, values.value(r));
            }
        }
        for f in &mut self.references {
            let Some(values) = column(&f.feature) else { continue };
            for (r, &t) in times.iter().enumerate().take(end).skip(start) {
                if values.is_null(r) {
                    continue;
                }
                if let Some(recent) = &mut f.recent {
                    if recent.len() == f.recent_cap {
                        recent.pop_front();
                    }
                    recent.push_back(values.value(r));
                }
                if let Some(e) = f.drift.update(values.value(r)) {
                    let detector = if e.psi_drift { "reference_drift.psi" } else { "reference_drift.ks" };
                    detections.push(DriftRecord {
                        detector: detector.to_string(),
                        input: format!("feature.{}", f.feature),
                        event_index: event_index0 + (r - start) as u64,
                        event_time: t,
                        estimate_before: e.reference_mean,
                        estimate_after: e.current_mean,
                    });
                }
            }
        }
    }

    /// Advances the watermark and returns the windows that closed (their gauges are set).
    /// Cheap when nothing closes, so the engine calls it after every run of events.
    pub fn advance(&mut self, watermark: i64) -> Vec<ClosedWindow> {
        let mut closed = Vec::new();
        for w in &mut self.windows {
            w.stats.advance_watermark(watermark);
            for r in w.stats.drain_closed() {
                match (r.key, &mut w.key_gauges) {
                    (None, _) => {
                        w.gauges.set(&r);
                        closed.push((w.window.clone(), w.feature.clone(), r));
                    }
                    (Some(k), Some(gauges)) => {
                        let name = w.key_names.get(&k).cloned().unwrap_or_else(|| format!("{k:016x}"));
                        gauges
                            .entry(k)
                            .or_insert_with(|| {
                                WindowGauges::new(
                                    &self.factory,
                                    &w.window,
                                    &w.feature,
                                    Some(&name),
                                    &w.quantiles,
                                )
                            })
                            .set(&r);
                    }
                    (Some(_), None) => {}
                }
            }
        }
        closed
    }

    /// Publishes the state gauges (once per batch).
    pub fn publish(&mut self) {
        for w in &mut self.windows {
            let late = w.stats.late_records();
            w.late.increment(late - w.late_published);
            w.late_published = late;
            w.bytes.set(w.stats.size_bytes() as f64);
            w.keys.set(w.stats.keys().len() as f64);
        }
        for f in &self.references {
            if let Some(p) = f.drift.psi() {
                f.psi.set(p);
            }
            if let Some(k) = f.drift.ks() {
                f.ks.set(k);
            }
        }
    }

    /// A new champion serves: with `reference = "champion"`, its recent data becomes the
    /// reference of every feature.
    pub fn champion_changed(&mut self) {
        for f in &mut self.references {
            if let Some(recent) = &f.recent {
                let values: Vec<f64> = recent.iter().copied().collect();
                if let Err(e) = f.drift.reset_reference(&values) {
                    tracing::warn!(feature = %f.feature, "reference not replaced: {e}");
                }
            }
        }
    }

    /// Emits the windows still open at the end of the input.
    pub fn flush(&mut self) -> Vec<ClosedWindow> {
        for w in &mut self.windows {
            w.stats.flush();
        }
        self.advance(i64::MAX)
    }
}

enum KeyColumn<'a> {
    Text(&'a StringArray),
    Number(&'a Float64Array),
}

impl<'a> KeyColumn<'a> {
    fn new(batch: &'a RecordBatch, name: &str) -> Option<Self> {
        let c = batch.column_by_name(name)?;
        if let Some(s) = c.as_string_opt::<i32>() {
            return Some(KeyColumn::Text(s));
        }
        c.as_primitive_opt::<Float64Type>().map(KeyColumn::Number)
    }

    fn key(&self, r: usize) -> Option<(u64, std::borrow::Cow<'a, str>)> {
        match self {
            KeyColumn::Text(a) if a.is_valid(r) => {
                let v = a.value(r);
                Some((xxh3_64(v.as_bytes()), std::borrow::Cow::Borrowed(v)))
            }
            KeyColumn::Number(a) if a.is_valid(r) => {
                let v = eddy_scorer::encoding::format_number(a.value(r));
                Some((xxh3_64(v.as_bytes()), std::borrow::Cow::Owned(v)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, RecordBatch};

    use super::*;

    fn batch(values: &[f64]) -> RecordBatch {
        RecordBatch::try_from_iter([("x", Arc::new(Float64Array::from(values.to_vec())) as ArrayRef)])
            .unwrap()
    }

    /// With `reference = "champion"`, a promotion makes the recent data the reference, so a
    /// shift that the new champion was chosen on stops counting as drift.
    #[test]
    fn champion_reference_follows_promotions() {
        let settings = ReferenceDriftConfig {
            reference_size: 200,
            current_size: 200,
            check_every: 50,
            ..Default::default()
        };
        let section = ReferenceDriftSection { features: None, reference: ReferenceFrom::Champion, settings };
        let factory = MetricsFactory::noop("t");
        let mut m = FeatureMonitors::new(&[], Some(&section), &["x".to_string()], &factory).unwrap();
        let mut detections = Vec::new();
        let feed = |m: &mut FeatureMonitors, shift: f64, from: u64, detections: &mut Vec<DriftRecord>| {
            let values: Vec<f64> = (0..400).map(|i| ((i * 37) % 100) as f64 / 100.0 + shift).collect();
            let times: Vec<i64> = (0..400).map(|i| from as i64 + i).collect();
            m.update(&batch(&values), &times, 0, 400, from, detections);
        };
        feed(&mut m, 0.0, 0, &mut detections);
        assert!(detections.is_empty());
        feed(&mut m, 5.0, 400, &mut detections);
        let before = detections.len();
        assert!(before > 0, "the shift is drift against the first values");
        m.champion_changed();
        feed(&mut m, 5.0, 800, &mut detections);
        assert_eq!(detections.len(), before, "after the promotion the shifted data is the reference");
    }
}
