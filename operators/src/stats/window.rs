//! Windowed feature statistics per optional group-by key: the [`WindowedStats`] operator.
//!
//! # Window kinds
//!
//! | kind       | windows                                   | closes when                          |
//! |------------|-------------------------------------------|--------------------------------------|
//! | `tumbling` | `[k·size, (k+1)·size)` in event time (ms) | watermark − lateness ≥ window end    |
//! | `sliding`  | `[k·hop, k·hop + size)` in event time     | watermark − lateness ≥ window end    |
//! | `count`    | records `[k·hop, k·hop + size)` of a key  | the key's `k·hop + size`-th record   |
//!
//! Windows are aligned to the Unix epoch (time) or to a key's first record (count). A window is
//! emitted once, when it is final, and only if it holds at least one value.
//!
//! # Panes
//!
//! Every kind is implemented with *panes*: non-overlapping buckets of `gcd(size, hop)` ms (or
//! records), each a [`SummaryAccumulator`]. A window is the merge of its `size / pane` panes at
//! evaluation time. Because DDSketch merges are exact, min, max and quantiles are right without
//! any retraction, and an update touches a single pane (O(1) on the hot path); the cost moves to
//! evaluation (O(panes · sketch bins) per emitted window), which happens once per hop. Count
//! windows reuse the same machinery with record ordinals in place of milliseconds, so they need
//! no ring buffer of raw values either.
//!
//! # Event time, watermark and lateness
//!
//! [`WindowedStats::advance_watermark`]`(w)` asserts that no more records older than `w` are
//! expected; windows whose end is at or before `w − allowed_lateness_ms` are then final and
//! emitted. A record is *late* — dropped and counted in [`WindowedStats::late_records`] — when
//! every window it belongs to has already been emitted (for sliding windows, a record may still
//! join the later windows that contain it while earlier ones have closed, as in Flink). Count
//! windows do not close on the watermark, but use the same rule for lateness: a record with an
//! event time before `watermark − allowed_lateness_ms` is late.
//!
//! # Memory
//!
//! Keys whose panes have all been emitted are removed. With `max_keys` or `max_state_bytes`
//! set, the least-recently-updated key is evicted (its open windows are dropped, not emitted)
//! when a cap is exceeded; evictions are counted in [`WindowedStats::evicted_keys`]. The key
//! being updated is never evicted, so a single key larger than `max_state_bytes` is kept.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::accumulator::{Accumulator, SummaryAccumulator, WindowStats};
use super::sketch::SketchConfig;
use super::{invalid, StatsError};

const COMPONENT: &str = "windowed_stats";
/// Event times and watermarks are accepted in `[-TIME_LIMIT, TIME_LIMIT]` ms (± 146 million
/// years); with sizes bounded by `SIZE_LIMIT` no window arithmetic can overflow an `i64`.
const TIME_LIMIT: i64 = 1 << 62;
const SIZE_LIMIT: u64 = 1 << 60;
/// Below every window end: nothing is closed yet.
const NOTHING_CLOSED: i64 = -TIME_LIMIT - (1 << 61);
/// Above every window end: everything is closed (used by [`WindowedStats::flush`]).
const EVERYTHING_CLOSED: i64 = TIME_LIMIT + (1 << 61);
/// A window may span at most this many panes: each pane holds a sketch (about 1–4 KiB), and a
/// tiny hop on a long window (1 ms on one day) would otherwise allocate millions of them.
const MAX_PANES_PER_WINDOW: u64 = 4096;

/// Window shape. Time sizes are milliseconds of event time; count sizes are records per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowConfig {
    /// Back-to-back windows of `size_ms`.
    Tumbling {
        /// Window length in ms.
        size_ms: u64,
    },
    /// Windows of `size_ms` starting every `hop_ms` (`hop_ms ≤ size_ms`); each record belongs
    /// to about `size_ms / hop_ms` windows.
    Sliding {
        /// Window length in ms.
        size_ms: u64,
        /// Distance between window starts in ms.
        hop_ms: u64,
    },
    /// Windows of `size` records of one key, starting every `hop` records (default: `size`,
    /// i.e. tumbling).
    Count {
        /// Records per window.
        size: u64,
        /// Records between window starts; defaults to `size`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hop: Option<u64>,
    },
}

/// Configuration of a [`WindowedStats`] operator.
///
/// ```toml
/// window = { kind = "sliding", size_ms = 60000, hop_ms = 15000 }
/// allowed_lateness_ms = 5000
/// quantiles = [0.5, 0.9, 0.99]
/// max_keys = 100000
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowedStatsConfig {
    /// Window shape.
    pub window: WindowConfig,
    /// How far behind the watermark records are still accepted, in ms. Default 0.
    #[serde(default)]
    pub allowed_lateness_ms: u64,
    /// Quantile levels in [0, 1] reported for each window. Default `[0.5, 0.9, 0.99]`.
    #[serde(default = "default_quantiles")]
    pub quantiles: Vec<f64>,
    /// Accuracy of the quantile sketch.
    #[serde(default)]
    pub sketch: SketchConfig,
    /// Maximum number of keys with open windows; unset means unbounded.
    #[serde(default)]
    pub max_keys: Option<usize>,
    /// Maximum memory of all keys' window state, as reported by
    /// [`WindowedStats::size_bytes`]; unset means unbounded.
    #[serde(default)]
    pub max_state_bytes: Option<usize>,
}

fn default_quantiles() -> Vec<f64> {
    vec![0.5, 0.9, 0.99]
}

impl WindowedStatsConfig {
    /// A configuration with the given window and every other setting at its default.
    pub fn new(window: WindowConfig) -> Self {
        WindowedStatsConfig {
            window,
            allowed_lateness_ms: 0,
            quantiles: default_quantiles(),
            sketch: SketchConfig::default(),
            max_keys: None,
            max_state_bytes: None,
        }
    }

    /// Check every setting and report all problems at once.
    ///
    /// # Errors
    ///
    /// The list of [`StatsError::InvalidConfig`], one per bad setting.
    pub fn validate(&self) -> Result<(), Vec<StatsError>> {
        let mut errors = Vec::new();
        if let Err(e) = self.geometry() {
            errors.push(e);
        }
        if self.allowed_lateness_ms > SIZE_LIMIT {
            errors.push(invalid(COMPONENT, "allowed_lateness_ms", format!("expected at most {SIZE_LIMIT}")));
        }
        if let Some(q) = self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            errors.push(invalid(COMPONENT, "quantiles", format!("expected levels in [0, 1], got {q}")));
        }
        if let Err(e) = self.sketch.validate(COMPONENT) {
            errors.push(e);
        }
        if self.max_keys == Some(0) {
            errors.push(invalid(COMPONENT, "max_keys", "expected at least 1"));
        }
        if self.max_state_bytes == Some(0) {
            errors.push(invalid(COMPONENT, "max_state_bytes", "expected at least 1"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn geometry(&self) -> Result<Geometry, StatsError> {
        let (size, hop, count, size_field, hop_field) = match self.window {
            WindowConfig::Tumbling { size_ms } => {
                (size_ms, size_ms, false, "window.size_ms", "window.size_ms")
            }
            WindowConfig::Sliding { size_ms, hop_ms } => {
                (size_ms, hop_ms, false, "window.size_ms", "window.hop_ms")
            }
            WindowConfig::Count { size, hop } => {
                (size, hop.unwrap_or(size), true, "window.size", "window.hop")
            }
        };
        if size == 0 || size > SIZE_LIMIT {
            return Err(invalid(COMPONENT, size_field, format!("expected 1 to {SIZE_LIMIT}, got {size}")));
        }
        if hop == 0 || hop > size {
            return Err(invalid(
                COMPONENT,
                hop_field,
                format!("expected 1 to the window size ({size}), got {hop}"),
            ));
        }
        let pane = gcd(size, hop);
        if size / pane > MAX_PANES_PER_WINDOW {
            return Err(invalid(
                COMPONENT,
                hop_field,
                format!(
                    "size {size} and hop {hop} split each window into {} panes of gcd(size, hop) = {pane}; \
                     at most {MAX_PANES_PER_WINDOW} are allowed: pick a hop that divides the size",
                    size / pane
                ),
            ));
        }
        Ok(Geometry { size: size as i64, hop: hop as i64, pane: pane as i64, count })
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Window geometry in units of ms (time windows) or records (count windows).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Geometry {
    size: i64,
    hop: i64,
    pane: i64,
    count: bool,
}

impl Geometry {
    /// Index of the last window containing position `a` (a pane start or an event time).
    #[inline]
    fn last_window(&self, a: i64) -> i64 {
        a.div_euclid(self.hop)
    }

    /// Index of the first window containing the pane starting at `a`.
    #[inline]
    fn first_window_of_pane(&self, a: i64) -> i64 {
        // j·hop ≥ a + pane − size  ⇔  j ≥ ceil((a + pane − size) / hop)
        -(self.size - self.pane - a).div_euclid(self.hop)
    }

    #[inline]
    fn start(&self, j: i64) -> i64 {
        j * self.hop
    }

    #[inline]
    fn end(&self, j: i64) -> i64 {
        j * self.hop + self.size
    }

    /// First window index whose end is after `c`.
    #[inline]
    fn first_open_window(&self, c: i64) -> i64 {
        (c - self.size).div_euclid(self.hop) + 1
    }
}

/// One window's statistics, emitted when it closes or read with [`WindowedStats::current`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult {
    /// Group-by key (`None` when the stream is not grouped).
    pub key: Option<u64>,
    /// Window start, inclusive: event time in ms, or the key's record ordinal for count windows.
    pub start: i64,
    /// Window end, exclusive, in the same unit as `start`.
    pub end: i64,
    /// The statistics.
    pub stats: WindowStats,
}

/// What [`WindowedStats::update`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateOutcome {
    /// Added to its window(s).
    Accepted,
    /// Every window the record belongs to was already emitted; dropped and counted.
    Late,
    /// Non-finite value or event time outside ± 2^62 ms; dropped and counted.
    Invalid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyState {
    /// Panes sorted by start (ms or record ordinal); most updates hit the last one.
    panes: Vec<(i64, SummaryAccumulator)>,
    /// Records accepted for this key (count windows: the next record's ordinal).
    records: u64,
    /// Latest event time accepted for this key.
    max_time: i64,
    /// Approximate bytes held by this key.
    bytes: usize,
    /// Value of the operator's update counter at this key's last update (LRU order).
    last_touch: u64,
}

impl KeyState {
    fn new() -> Self {
        KeyState { panes: Vec::new(), records: 0, max_time: i64::MIN, bytes: key_overhead(), last_touch: 0 }
    }

    /// Merge the panes whose start lies in `[start, end)`.
    fn window(&self, start: i64, end: i64, sketch: SketchConfig) -> Result<SummaryAccumulator, StatsError> {
        let lo = self.panes.partition_point(|(a, _)| *a < start);
        let hi = self.panes.partition_point(|(a, _)| *a < end);
        let mut acc = SummaryAccumulator::new(sketch);
        for (_, pane) in &self.panes[lo..hi] {
            acc.merge(pane)?;
        }
        Ok(acc)
    }

    /// Drop the panes before `keep_from`, returning the bytes released.
    fn drop_panes_before(&mut self, keep_from: usize) -> usize {
        let freed: usize = self.panes[..keep_from].iter().map(|(_, p)| pane_bytes(p)).sum();
        self.panes.drain(..keep_from);
        self.bytes -= freed;
        freed
    }
}

fn key_overhead() -> usize {
    std::mem::size_of::<KeyState>() + std::mem::size_of::<Option<u64>>()
}

fn pane_bytes(p: &SummaryAccumulator) -> usize {
    p.size_bytes() + std::mem::size_of::<i64>()
}

/// Per-key windowed statistics over event time (see the module docs for the semantics).
///
/// ```
/// use eddy_operators::stats::{WindowConfig, WindowedStats, WindowedStatsConfig};
///
/// let mut ws = WindowedStats::new(WindowedStatsConfig::new(WindowConfig::Tumbling { size_ms: 1000 }))
///     .expect("valid config");
/// for (t, x) in [(10, 1.0), (500, 3.0), (1200, 10.0)] {
///     ws.update(None, t, x);
/// }
/// ws.advance_watermark(1000);
/// let closed: Vec<_> = ws.drain_closed().collect();
/// assert_eq!((closed[0].start, closed[0].end, closed[0].stats.count), (0, 1000, 2));
/// assert_eq!(closed[0].stats.mean, 2.0);
/// assert_eq!(ws.current(None).map(|w| w.stats.count), Some(1));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowedStats {
    config: WindowedStatsConfig,
    geom: Geometry,
    #[serde(with = "sorted_keys")]
    keys: HashMap<Option<u64>, KeyState>,
    /// `last_touch → key`, maintained only when a cap is configured.
    lru: BTreeMap<u64, Option<u64>>,
    watermark: Option<i64>,
    /// Time windows ending at or before this are final; records older than this are late for
    /// count windows. `watermark − allowed_lateness`.
    closed_through: i64,
    touches: u64,
    late: u64,
    invalid: u64,
    evicted: u64,
    state_bytes: usize,
    closed: Vec<WindowResult>,
}

impl WindowedStats {
    /// Build the operator.
    ///
    /// # Errors
    ///
    /// Every configuration problem found by [`WindowedStatsConfig::validate`].
    pub fn new(config: WindowedStatsConfig) -> Result<Self, Vec<StatsError>> {
        config.validate()?;
        let geom = config.geometry().map_err(|e| vec![e])?;
        Ok(WindowedStats {
            config,
            geom,
            keys: HashMap::new(),
            lru: BTreeMap::new(),
            watermark: None,
            closed_through: NOTHING_CLOSED,
            touches: 0,
            late: 0,
            invalid: 0,
            evicted: 0,
            state_bytes: 0,
            closed: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WindowedStatsConfig {
        &self.config
    }

    fn capped(&self) -> bool {
        self.config.max_keys.is_some() || self.config.max_state_bytes.is_some()
    }

    /// Add one value of the feature for `key` at `event_time_ms`.
    ///
    /// Count windows that complete with this record are queued for [`Self::drain_closed`].
    pub fn update(&mut self, key: Option<u64>, event_time_ms: i64, x: f64) -> UpdateOutcome {
        if !x.is_finite() || !(-TIME_LIMIT..=TIME_LIMIT).contains(&event_time_ms) {
            self.invalid += 1;
            return UpdateOutcome::Invalid;
        }
        let g = self.geom;
        let late = if g.count {
            event_time_ms < self.closed_through
        } else {
            g.end(g.last_window(event_time_ms)) <= self.closed_through
        };
        if late {
            self.late += 1;
            return UpdateOutcome::Late;
        }
        self.touches += 1;
        let touch = self.touches;
        let capped = self.capped();
        let sketch = self.config.sketch;
        let state = match self.keys.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.state_bytes += key_overhead();
                e.insert(KeyState::new())
            }
        };
        if capped {
            self.lru.remove(&state.last_touch);
            self.lru.insert(touch, key);
        }
        state.last_touch = touch;
        let position = if g.count { state.records as i64 } else { event_time_ms };
        let pane_start = position.div_euclid(g.pane) * g.pane;
        state.records += 1;
        state.max_time = state.max_time.max(event_time_ms);

        let idx = match state.panes.last() {
            Some((a, _)) if *a == pane_start => state.panes.len() - 1,
            _ => match state.panes.binary_search_by_key(&pane_start, |(a, _)| *a) {
                Ok(i) => i,
                Err(i) => {
                    state.panes.insert(i, (pane_start, SummaryAccumulator::new(sketch)));
                    i
                }
            },
        };
        let pane = &mut state.panes[idx].1;
        let before = if pane.count() == 0 { 0 } else { pane_bytes(pane) };
        pane.update(x);
        let after = pane_bytes(pane);
        state.bytes += after - before;
        self.state_bytes += after - before;

        if g.count {
            let n = state.records as i64;
            if n >= g.size && (n - g.size) % g.hop == 0 {
                let j = (n - g.size) / g.hop;
                if let Ok(acc) = state.window(g.start(j), g.end(j), sketch) {
                    self.closed.push(WindowResult {
                        key,
                        start: g.start(j),
                        end: g.end(j),
                        stats: acc.evaluate(&self.config.quantiles),
                    });
                }
                let keep_from = state.panes.partition_point(|(a, _)| g.end(g.last_window(*a)) <= n);
                self.state_bytes -= state.drop_panes_before(keep_from);
            }
        }
        self.enforce_caps(key);
        UpdateOutcome::Accepted
    }

    fn enforce_caps(&mut self, current: Option<u64>) {
        loop {
            let over_keys = self.config.max_keys.is_some_and(|m| self.keys.len() > m);
            let over_bytes = self.config.max_state_bytes.is_some_and(|m| self.state_bytes > m);
            if !(over_keys || over_bytes) {
                return;
            }
            let Some((&touch, &victim)) = self.lru.iter().next() else { return };
            if victim == current {
                return;
            }
            self.lru.remove(&touch);
            if let Some(st) = self.keys.remove(&victim) {
                self.state_bytes -= st.bytes;
                self.evicted += 1;
            }
        }
    }

    fn remove_key(&mut self, key: Option<u64>) {
        if let Some(st) = self.keys.remove(&key) {
            self.state_bytes -= st.bytes;
            self.lru.remove(&st.last_touch);
        }
    }

    /// Move the watermark to `watermark_ms` (it never goes back: smaller values are ignored) and
    /// emit every time window that became final. Returns the number of windows emitted.
    pub fn advance_watermark(&mut self, watermark_ms: i64) -> usize {
        let w = watermark_ms.clamp(-TIME_LIMIT, TIME_LIMIT);
        if self.watermark.is_some_and(|old| w <= old) {
            return 0;
        }
        self.watermark = Some(w);
        let c = w - self.config.allowed_lateness_ms as i64;
        self.close_through(c)
    }

    /// Close every open window, including incomplete count windows (end of stream), and emit
    /// those holding data. All key state is released. Returns the number of windows emitted.
    pub fn flush(&mut self) -> usize {
        if !self.geom.count {
            return self.close_through(EVERYTHING_CLOSED);
        }
        let g = self.geom;
        let first = self.closed.len();
        let mut keys: Vec<Option<u64>> = self.keys.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            if let Some(st) = self.keys.get(&key) {
                let n = st.records as i64;
                let j_first = if n >= g.size { (n - g.size) / g.hop + 1 } else { 0 };
                let mut j = j_first;
                while g.start(j) < n {
                    if let Ok(acc) = st.window(g.start(j), g.end(j), self.config.sketch) {
                        if acc.count() > 0 {
                            let stats = acc.evaluate(&self.config.quantiles);
                            self.closed.push(WindowResult { key, start: g.start(j), end: g.end(j), stats });
                        }
                    }
                    j += 1;
                }
            }
            self.remove_key(key);
        }
        self.closed.len() - first
    }

    fn close_through(&mut self, c_new: i64) -> usize {
        let c_old = self.closed_through;
        if c_new <= c_old {
            return 0;
        }
        self.closed_through = c_new;
        if self.geom.count {
            return 0;
        }
        let g = self.geom;
        let first = self.closed.len();
        let j_min = g.first_open_window(c_old);
        let j_max = g.first_open_window(c_new) - 1;
        let mut emptied = Vec::new();
        for (&key, st) in self.keys.iter_mut() {
            let mut next_j = j_min;
            for (a, _) in &st.panes {
                let first = g.first_window_of_pane(*a);
                if first > j_max {
                    break;
                }
                let lo = first.max(next_j);
                let hi = g.last_window(*a).min(j_max);
                for j in lo..=hi {
                    if let Ok(acc) = st.window(g.start(j), g.end(j), self.config.sketch) {
                        let stats = acc.evaluate(&self.config.quantiles);
                        self.closed.push(WindowResult { key, start: g.start(j), end: g.end(j), stats });
                    }
                    next_j = j + 1;
                }
            }
            let keep_from = st.panes.partition_point(|(a, _)| g.end(g.last_window(*a)) <= c_new);
            self.state_bytes -= st.drop_panes_before(keep_from);
            if st.panes.is_empty() {
                emptied.push(key);
            }
        }
        for key in emptied {
            self.remove_key(key);
        }
        // HashMap order is arbitrary; emit in a deterministic order.
        self.closed[first..].sort_by_key(|w| (w.end, w.start, w.key));
        self.closed.len() - first
    }

    /// Take the windows emitted so far, oldest first per call that emitted them.
    pub fn drain_closed(&mut self) -> std::vec::Drain<'_, WindowResult> {
        self.closed.drain(..)
    }

    /// Statistics of `key`'s open window that contains its latest record and reaches furthest
    /// back (for tumbling windows: the current window), for gauges. `None` when the key holds
    /// no data.
    pub fn current(&self, key: Option<u64>) -> Option<WindowResult> {
        let st = self.keys.get(&key)?;
        let g = self.geom;
        let j = if g.count {
            let n = st.records as i64;
            if n >= g.size {
                (n - g.size).div_euclid(g.hop) + 1
            } else {
                0
            }
        } else {
            ((st.max_time - g.size).div_euclid(g.hop) + 1).max(g.first_open_window(self.closed_through))
        };
        let acc = st.window(g.start(j), g.end(j), self.config.sketch).ok()?;
        (acc.count() > 0).then(|| WindowResult {
            key,
            start: g.start(j),
            end: g.end(j),
            stats: acc.evaluate(&self.config.quantiles),
        })
    }

    /// The current watermark, if one was set.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Records dropped because all their windows had been emitted.
    pub fn late_records(&self) -> u64 {
        self.late
    }

    /// Records dropped for a non-finite value or an out-of-range event time.
    pub fn invalid_records(&self) -> u64 {
        self.invalid
    }

    /// Keys evicted by `max_keys` / `max_state_bytes`.
    pub fn evicted_keys(&self) -> u64 {
        self.evicted
    }

    /// Keys holding open windows, sorted.
    pub fn keys(&self) -> Vec<Option<u64>> {
        let mut keys: Vec<_> = self.keys.keys().copied().collect();
        keys.sort_unstable();
        keys
    }

    /// Approximate memory held by all keys' window state, in bytes.
    pub fn size_bytes(&self) -> usize {
        self.state_bytes
    }
}

/// Serialise the key map as a list sorted by key: JSON maps need string keys, and a sorted list
/// makes checkpoints byte-for-byte deterministic.
mod sorted_keys {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::KeyState;

    pub(super) fn serialize<S: Serializer>(
        map: &HashMap<Option<u64>, KeyState>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_unstable_by_key(|(k, _)| **k);
        entries.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<Option<u64>, KeyState>, D::Error> {
        Ok(Vec::<(Option<u64>, KeyState)>::deserialize(d)?.into_iter().collect())
    }
}
