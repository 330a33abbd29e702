//! `EngineState`: what a checkpoint holds of the engine thread — the struct of its parts'
//! states. Each part ([`Counters`](crate::counters::Counters), the
//! [`LabelJoin`](crate::label_join::LabelJoin), [`Models`](crate::models::Models),
//! [`Monitors`](crate::monitors::Monitors), the windowed aggregates) captures and restores its
//! own state, so adding state to a part touches only that part.
//!
//! The two large pieces (the join buffer, the training buffer) are borrowed when a checkpoint
//! is written — encoded straight from the engine's own state, never copied first — and owned
//! when one is read back.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::counters::CountersState;
use crate::label_join::LabelJoin;
use crate::models::ModelsState;
use crate::monitors::MonitorsState;
use crate::window_features::WindowFeaturesState;

/// Everything the engine thread knows, as of the last row it processed.
#[derive(Debug, Serialize, Deserialize)]
pub struct EngineState<'a> {
    /// Events, labels, late records, the watermark, dead letters.
    pub counters: CountersState,
    /// The label join buffer.
    pub join: Cow<'a, LabelJoin>,
    /// The slots' models and their life cycle.
    pub models: ModelsState<'a>,
    /// Drift monitors, windowed statistics, reference drift and their detections.
    pub monitors: MonitorsState,
    /// Windowed aggregates (`[features.aggregates]`), one state per aggregate. Restored by the
    /// pipeline before any source thread starts (they may run on one).
    pub aggregates: Option<WindowFeaturesState>,
}

impl EngineState<'_> {
    /// Events processed when the state was captured.
    pub fn events(&self) -> u64 {
        self.counters.events
    }

    /// The registry version the engine will publish next; every version before it was
    /// published (and is durable) when the state was captured.
    pub fn next_version(&self) -> u64 {
        self.models.next_version()
    }

    /// The champion's registry version (0 when never published).
    pub fn champion_version(&self) -> u64 {
        self.models.champion_version()
    }

    /// Takes the windowed aggregates' state out, to restore them before anything runs.
    pub fn take_aggregates(&mut self) -> Option<WindowFeaturesState> {
        self.aggregates.take()
    }
}
