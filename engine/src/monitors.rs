//! `Monitors`: everything that watches the stream rather than learning from it — the drift
//! monitors (on features, on each slot's error stream, on window statistics), the windowed
//! feature statistics and the reference drift — and the drift events they produced.
//!
//! A part of the engine that owns its state: built from the spec, fed per row
//! ([`Monitors::observe_feature`], [`Monitors::observe_errors`]) and per run of events
//! ([`Monitors::after_events`]), captured with [`Monitors::state`] and brought back with
//! [`Monitors::restore`]. Detections are appended in the order they happen; the engine emits
//! the ones not yet emitted once per batch ([`Monitors::take_unemitted`]).

use arrow_array::{Float64Array, RecordBatch};
use eddy_operators::drift::{DetectorSnapshot, DriftState};
use serde::{Deserialize, Serialize};

use crate::drift::{DriftInput, DriftMonitor};
use crate::error::{CheckpointError, EngineError};
use crate::feature_stats::{ClosedWindow, FeatureMonitors, FeatureMonitorsState};
use crate::metrics::MetricsFactory;
use crate::spec::PipelineSpec;
use crate::summary::DriftRecord;

/// The checkpointed part of [`Monitors`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorsState {
    /// Each drift monitor's detector and its last state, in config order.
    pub detectors: Vec<(DetectorSnapshot, DriftState)>,
    /// Every detection so far.
    pub detections: Vec<DriftRecord>,
    /// How many of them were emitted to the drift sinks.
    pub emitted: usize,
    /// Windowed statistics and reference drift (`None` before the features are known, or
    /// when none is configured).
    pub features: Option<FeatureMonitorsState>,
}

/// See the module docs.
pub struct Monitors {
    detectors: Vec<DriftMonitor>,
    /// Indices into `detectors` of the monitors of each slot's error stream.
    by_slot: Vec<Vec<usize>>,
    features: Option<FeatureMonitors>,
    detections: Vec<DriftRecord>,
    emitted: usize,
}

impl Monitors {
    /// Builds the drift monitors of `spec` (the feature monitors wait for the features:
    /// [`Monitors::bind_features`]).
    ///
    /// # Errors
    /// When a monitor's input or detector settings cannot be used.
    pub fn new(spec: &PipelineSpec, factory: &MetricsFactory) -> Result<Self, EngineError> {
        let slots = spec.slot_names();
        let windows = spec.window_names();
        let mut detectors = Vec::new();
        let mut by_slot = vec![Vec::new(); spec.slots.len()];
        for (name, config) in &spec.drift {
            let key = format!("drift.{name}");
            let input =
                config.resolve(&slots, &windows, spec.task).map_err(|e| EngineError::config(&key, e))?;
            if let DriftInput::SlotError { slot, .. } = input {
                by_slot[slot].push(detectors.len());
            }
            detectors.push(
                DriftMonitor::new(name, config, input, factory).map_err(|e| EngineError::config(&key, e))?,
            );
        }
        Ok(Monitors { detectors, by_slot, features: None, detections: Vec::new(), emitted: 0 })
    }

    /// Builds the windowed statistics and reference drift of `spec` over the model's numeric
    /// features `numeric` (the events' own fields, not aggregate outputs).
    ///
    /// # Errors
    /// When a window or reference names a feature that is not numeric.
    pub fn bind_features(
        &mut self,
        spec: &PipelineSpec,
        numeric: &[String],
        factory: &MetricsFactory,
    ) -> Result<(), EngineError> {
        let monitors = FeatureMonitors::new(&spec.windows, spec.reference_drift.as_ref(), numeric, factory)?;
        self.features = (!monitors.is_empty()).then_some(monitors);
        Ok(())
    }

    /// `(monitor, column)` for each monitor of a raw feature present in `batch`.
    pub fn feature_columns(&self, batch: &RecordBatch) -> Vec<(usize, usize)> {
        self.detectors
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match &m.input {
                DriftInput::Feature(name) => batch.schema().index_of(name).ok().map(|c| (i, c)),
                DriftInput::SlotError { .. } | DriftInput::Window { .. } => None,
            })
            .collect()
    }

    /// Feeds monitor `m` (one of [`Monitors::feature_columns`]) the value of event `index`.
    #[inline]
    pub fn observe_feature(&mut self, m: usize, x: f64, index: u64, ts: i64) {
        if let Some(d) = self.detectors[m].update(x, index, ts) {
            self.detections.push(d);
        }
    }

    /// Feeds the error monitors of slot `slot` its prediction `p` for label `y` of event
    /// `index`.
    #[inline]
    pub fn observe_errors(&mut self, slot: usize, p: f32, y: f32, index: u64, ts: i64) {
        for &m in &self.by_slot[slot] {
            let monitor = &mut self.detectors[m];
            let DriftInput::SlotError { error, .. } = monitor.input else { continue };
            if let Some(d) = monitor.update(error.of(p, y), index, ts) {
                self.detections.push(d);
            }
        }
    }

    /// After a run of events (rows `start..end` of `batch`, the first being event
    /// `first_index`): feeds the windowed statistics and reference drift, closes the windows
    /// the `watermark` passed and feeds them to the monitors that watch them; `events` is the
    /// event count now (the index window detections carry).
    #[allow(clippy::too_many_arguments)]
    pub fn after_events(
        &mut self,
        batch: &RecordBatch,
        times: &[i64],
        start: usize,
        end: usize,
        first_index: u64,
        watermark: i64,
        events: u64,
    ) {
        let Some(f) = &mut self.features else { return };
        f.update(batch, times, start, end, first_index, &mut self.detections);
        let closed = f.advance(watermark);
        if !closed.is_empty() {
            self.feed_windows(closed, events);
        }
    }

    /// At the end of the input: closes every window still open.
    pub fn finish_input(&mut self, events: u64) {
        if let Some(f) = &mut self.features {
            let closed = f.flush();
            self.feed_windows(closed, events);
        }
    }

    fn feed_windows(&mut self, closed: Vec<ClosedWindow>, events: u64) {
        for (window, feature, result) in closed {
            for m in &mut self.detectors {
                if let DriftInput::Window { window: w, feature: f, stat } = &m.input {
                    if *w == window && *f == feature {
                        if let Some(d) = m.update(stat.of(&result), events, result.end) {
                            self.detections.push(d);
                        }
                    }
                }
            }
        }
    }

    /// A new champion serves: reference drift measured against the champion's data starts
    /// over from it.
    pub fn champion_changed(&mut self) {
        if let Some(f) = &mut self.features {
            f.champion_changed();
        }
    }

    /// Every detection so far, in order.
    pub fn detections(&self) -> &[DriftRecord] {
        &self.detections
    }

    /// The detections not emitted yet (marked emitted).
    pub fn take_unemitted(&mut self) -> &[DriftRecord] {
        let from = self.emitted;
        self.emitted = self.detections.len();
        &self.detections[from..]
    }

    /// Publishes the detectors' and feature statistics' gauges (once per batch).
    pub fn publish(&mut self) {
        if let Some(f) = &mut self.features {
            f.publish();
        }
        for m in &self.detectors {
            m.publish();
        }
    }

    /// The state, for a checkpoint.
    pub fn state(&self) -> MonitorsState {
        MonitorsState {
            detectors: self.detectors.iter().map(|m| (m.detector.snapshot(), m.last_state())).collect(),
            detections: self.detections.clone(),
            emitted: self.emitted,
            features: self.features.as_ref().map(|f| f.state()),
        }
    }

    /// Continues from `state` (call [`Monitors::bind_features`] first when the checkpoint
    /// was taken after the first event).
    ///
    /// # Errors
    /// When the state has other monitors than the configuration.
    pub fn restore(&mut self, state: MonitorsState) -> Result<(), CheckpointError> {
        if state.detectors.len() != self.detectors.len() {
            return Err(CheckpointError::Restore(
                "the checkpoint's drift monitors do not match the configuration".into(),
            ));
        }
        for (m, (snapshot, last)) in self.detectors.iter_mut().zip(state.detectors) {
            m.restore(snapshot.restore(), last);
        }
        if let (Some(f), Some(s)) = (&mut self.features, state.features) {
            f.restore(s)?;
        }
        self.detections = state.detections;
        self.emitted = state.emitted;
        Ok(())
    }
}

/// The column of a monitored feature in a batch, when it is numeric.
pub fn numeric_column(batch: &RecordBatch, column: usize) -> Option<&Float64Array> {
    use arrow_array::cast::AsArray;
    batch.column(column).as_primitive_opt::<arrow_array::types::Float64Type>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::spec;

    #[test]
    fn error_monitors_fire_on_a_slot_that_turns_wrong_and_state_round_trips() {
        let spec = spec();
        let factory = MetricsFactory::noop("test");
        let mut m = Monitors::new(&spec, &factory).unwrap();
        // Right for 1,000 labels, then wrong: ADWIN on `champion.error` must notice.
        for i in 0..3000u64 {
            let p = if i < 1000 { 0.9 } else { 0.1 };
            m.observe_errors(0, p, 1.0, i, i as i64);
            // The shadow has no monitor: its errors are ignored.
            m.observe_errors(1, 0.0, 1.0, i, i as i64);
        }
        assert!(!m.detections().is_empty());
        let d = &m.detections()[0];
        assert_eq!(d.detector, "errors");
        assert!(d.event_index > 1000 && d.event_index < 1300, "{d:?}");
        let n = m.detections().len();
        assert_eq!(m.take_unemitted().len(), n);
        assert!(m.take_unemitted().is_empty());

        let state = m.state();
        let mut restored = Monitors::new(&spec, &factory).unwrap();
        restored.restore(state.clone()).unwrap();
        for i in 3000..4000u64 {
            m.observe_errors(0, 0.9, 1.0, i, i as i64);
            restored.observe_errors(0, 0.9, 1.0, i, i as i64);
        }
        assert_eq!(m.detections(), restored.detections());
        assert_eq!(
            rmp_serde::to_vec_named(&m.state()).unwrap(),
            rmp_serde::to_vec_named(&restored.state()).unwrap()
        );
    }

    #[test]
    fn a_state_from_other_monitors_is_refused() {
        let mut spec = spec();
        let factory = MetricsFactory::noop("test");
        let state = Monitors::new(&spec, &factory).unwrap().state();
        spec.drift.clear();
        let err = Monitors::new(&spec, &factory).unwrap().restore(state).unwrap_err();
        assert!(err.to_string().contains("drift monitors"), "{err}");
    }

    #[test]
    fn a_bad_input_names_the_monitor() {
        let mut spec = spec();
        spec.drift[0].1.input = "nobody.error".into();
        let err = Monitors::new(&spec, &MetricsFactory::noop("test")).err().unwrap();
        assert!(err.to_string().starts_with("drift.errors: unknown drift input"), "{err}");
    }
}
