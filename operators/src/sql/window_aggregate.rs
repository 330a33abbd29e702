//! `WindowAggregate`: the incremental state of one windowed aggregate, read by every event
//! *as of its own event time*.
//!
//! # What an event sees (the as-of rule)
//!
//! Time is cut into panes of the slide width, aligned to the Unix epoch: pane `p` holds event
//! times `[p * slide, (p + 1) * slide)`. A window spans `size / slide` panes (one for
//! `TUMBLE`). For an event of key `k` at time `t` in pane `p(t)`, each output is computed over
//! the earlier events of `k` that satisfy **both**
//!
//! - their pane is one of `p(t) - size/slide + 1 ..= p(t)` (the hopping window that ends with
//!   the event's own pane; for `TUMBLE`, the event's own tumbling window), and
//! - their time is **strictly before `t`** (events at the same millisecond, ties, never see
//!   each other, whatever order they arrive in).
//!
//! The window an event sees therefore covers between `size - slide` and `size` of event time
//! before it, the same whether the stream is replayed or live. Then the event itself is added.
//! Values depend only on event times, not on arrival order, as long as each key's events arrive
//! in time order (the engine's merge delivers them so). An event older than its key's newest
//! event (*late*) sees only the panes strictly before its own pane, so it can never see its
//! own future either; it is then folded into its pane when that pane can still be seen by the
//! key's later events, and otherwise dropped and counted.
//!
//! Over an empty window `count` is 0 and the other functions null (the model encodes null as a
//! missing value); `stddev` (sample) needs two values.
//!
//! # State and its bound
//!
//! Per key: only the non-empty panes inside the key's current window, flat in one buffer
//! (index, rows, then per input column its count and whichever of sum, M2, min and max its
//! outputs read: mergeable, so nothing is ever recomputed over the window), the last of them
//! possibly holding only the events at the key's newest time (not yet visible to anyone). A
//! small hash table maps each key to a slot of a slab; the slot holds the key's buffer, inline
//! for the first [`INLINE_WORDS`] words (the few panes most keys have) and on the heap beyond.
//! Memory is estimated per key (its slot, table share and heap panes); when the
//! total passes the configured cap, the least recently seen keys are evicted (exact LRU: every
//! key carries the tick it was last seen at; once the cap is first reached a queue of touches
//! in tick order is kept, compacted as it grows) and counted. An evicted key starts again from
//! an empty window.
//!
//! # Why prefetching
//!
//! With many keys the state outgrows the CPU caches and every update waits for memory, one
//! load after the other: the key's bucket in the table, its slot (with its panes when they fit
//! inline), then its panes when they spilled to the heap. The cost is memory latency, not
//! arithmetic, which is also why panes are kept inline: one dependent load and one allocation
//! fewer for most keys. The caller knows which keys come next (the rest of the batch), so
//! [`WindowAggregate::prefetch`] starts each of those loads a few events early
//! ([`PREFETCH_AHEAD`]), one stage after the other, and they overlap with the work in between.
//! Prefetching is only a hint: results never depend on it. The huge pages the `eddy` binary's
//! allocator provides shorten what is left: a prefetch that misses the TLB waits for the walk.
//! [`WindowAggregate::state`] and [`WindowAggregate::restore`] carry all of it through a
//! checkpoint.

use std::collections::VecDeque;
use std::mem::size_of;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::aggregate_query::{AggregateFunction, AggregateOutput, AggregateQuery};
use super::error::SqlError;
use super::key_table::{prefetch, KeyTable};

/// Words of a pane before its accumulators: pane index, rows.
const HEAD: usize = 2;

/// Words of panes a key keeps inline in its slot, chosen so a slot is three cache lines: room
/// for four panes of `avg` and `count(*)`, or two of `max` and `stddev` (the window and its
/// ties), which covers most keys of a sparse stream.
pub const INLINE_WORDS: usize = 18;

/// A key's panes, flat (see the module docs).
type Panes = SmallVec<[f64; INLINE_WORDS]>;

/// Where one input column's figures sit in a pane: its count at `at`, then only the
/// figures its outputs read (a pane of `avg` and `count(*)` is 4 words instead of 7, and
/// memory traffic is what an update costs). Min and max are meaningful when count > 0.
#[derive(Debug, Clone, Copy)]
struct PaneColumn {
    at: usize,
    sum: Option<usize>,
    m2: Option<usize>,
    min: Option<usize>,
    max: Option<usize>,
}

impl PaneColumn {
    /// The accumulator at word `at` keeping what `functions` read; returns it with its width.
    fn new(at: usize, functions: impl Iterator<Item = AggregateFunction>) -> (Self, usize) {
        let (mut sum, mut m2, mut min, mut max) = (false, false, false, false);
        for f in functions {
            match f {
                AggregateFunction::Count => {}
                AggregateFunction::Sum | AggregateFunction::Avg => sum = true,
                // Welford's update needs the mean, so M2 comes with the sum.
                AggregateFunction::Stddev => (sum, m2) = (true, true),
                AggregateFunction::Min => min = true,
                AggregateFunction::Max => max = true,
            }
        }
        let mut width = 1;
        let mut place = |kept: bool| {
            kept.then(|| {
                width += 1;
                at + width - 1
            })
        };
        let acc = PaneColumn { at, sum: place(sum), m2: place(m2), min: place(min), max: place(max) };
        (acc, width)
    }

    /// Adds `x` (Welford).
    #[inline]
    fn add(&self, p: &mut [f64], x: f64) {
        let n = p[self.at];
        p[self.at] = n + 1.0;
        if n == 0.0 {
            for at in [self.sum, self.min, self.max].into_iter().flatten() {
                p[at] = x;
            }
            if let Some(m2) = self.m2 {
                p[m2] = 0.0;
            }
            return;
        }
        if let Some(sum) = self.sum {
            let old = p[sum];
            p[sum] = old + x;
            if let Some(m2) = self.m2 {
                p[m2] += (x - old / n) * (x - (old + x) / (n + 1.0));
            }
        }
        if let Some(min) = self.min {
            p[min] = p[min].min(x);
        }
        if let Some(max) = self.max {
            p[max] = p[max].max(x);
        }
    }

    /// Merges the accumulator of pane `b` into pane `a` (Chan et al.).
    #[inline]
    fn merge(&self, a: &mut [f64], b: &[f64]) {
        let n2 = b[self.at];
        if n2 == 0.0 {
            return;
        }
        let n1 = a[self.at];
        if n1 == 0.0 {
            for at in [Some(self.at), self.sum, self.m2, self.min, self.max].into_iter().flatten() {
                a[at] = b[at];
            }
            return;
        }
        a[self.at] = n1 + n2;
        if let Some(sum) = self.sum {
            if let Some(m2) = self.m2 {
                let delta = b[sum] / n2 - a[sum] / n1;
                a[m2] += b[m2] + delta * delta * n1 * n2 / (n1 + n2);
            }
            a[sum] += b[sum];
        }
        if let Some(min) = self.min {
            a[min] = a[min].min(b[min]);
        }
        if let Some(max) = self.max {
            a[max] = a[max].max(b[max]);
        }
    }

    /// `f` of the values added (`f` is one of the functions the accumulator was made for).
    #[inline]
    fn evaluate(&self, f: AggregateFunction, p: &[f64]) -> Option<f64> {
        let n = p[self.at];
        let read = |at: Option<usize>| at.map(|at| p[at]);
        match f {
            AggregateFunction::Count => Some(n),
            _ if n == 0.0 => None,
            AggregateFunction::Sum => read(self.sum),
            AggregateFunction::Avg => read(self.sum).map(|s| s / n),
            AggregateFunction::Min => read(self.min),
            AggregateFunction::Max => read(self.max),
            AggregateFunction::Stddev => {
                (n >= 2.0).then(|| read(self.m2).map(|m2| (m2.max(0.0) / (n - 1.0)).sqrt())).flatten()
            }
        }
    }
}

/// The window state of one key (part of [`AggregateState`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    /// Newest event time seen for the key.
    last_ts: i64,
    /// Whether the last pane holds only the events at `last_ts` (visible to later times only).
    tie: bool,
    /// Non-empty panes, oldest first, each `HEAD` words and then the columns' accumulators.
    data: Panes,
}

impl KeyState {
    fn new() -> Self {
        KeyState { last_ts: i64::MIN, tie: false, data: Panes::new() }
    }

    /// Bytes of panes beyond the slot (inline panes are part of the slot's size).
    fn heap_bytes(&self) -> u64 {
        if self.data.spilled() {
            (self.data.capacity() * size_of::<f64>()) as u64
        } else {
            0
        }
    }
}

/// Everything a [`WindowAggregate`] holds, for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateState {
    /// The query the state belongs to (a restore checks it).
    pub query: AggregateQuery,
    /// Keys (xxh3 hashes of the key values) with their state, least recently seen first.
    pub keys: Vec<(u64, KeyState)>,
    /// Keys evicted so far.
    pub evictions: u64,
    /// Late events so far.
    pub late: u64,
    /// Late events too old to keep.
    pub dropped_late: u64,
}

/// One slab slot: a key's state. Aligned to cache lines so it spans exactly
/// [`SLOT_LINES`] of them, all prefetched together.
#[repr(align(64))]
struct Entry {
    /// The key (hash).
    key: u64,
    /// When the key was last seen (the aggregate's own update counter); 0 for a free slot.
    tick: u64,
    state: KeyState,
}

/// A windowed aggregate's state. See the module docs.
pub struct WindowAggregate {
    query: AggregateQuery,
    columns: Vec<String>,
    /// One per input column.
    accumulators: Vec<PaneColumn>,
    /// Per output: its function and the accumulator it reads (none for `count(*)`).
    plan: Vec<(AggregateFunction, Option<usize>)>,
    /// Words per pane.
    stride: usize,
    max_bytes: u64,
    /// Key → slot in `slab`.
    keys: KeyTable,
    slab: Vec<Entry>,
    /// Free slots of `slab` (of evicted keys), reused first.
    free: Vec<u32>,
    /// `(slot, tick)` of every touch, oldest first; entries whose tick is no longer the slot's
    /// are stale and skipped. Kept only from the first time the cap is reached (`evicting`):
    /// until then the ticks alone say the order.
    touches: VecDeque<(u32, u64)>,
    evicting: bool,
    clock: u64,
    bytes: u64,
    evictions: u64,
    late: u64,
    dropped_late: u64,
    merged: Vec<f64>,
}

impl std::fmt::Debug for WindowAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowAggregate")
            .field("query", &self.query)
            .field("keys", &self.keys.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// Cache lines of one slot.
const SLOT_LINES: usize = size_of::<Entry>() / 64;
const _: () = assert!(SLOT_LINES == 3, "a slot should stay three cache lines");

/// Estimated bytes of one key besides its panes on the heap: its share of the table (2 to 4
/// buckets), its slot (inline panes included) and its share of the touch queue (at most two touches per key between compactions).
const KEY_OVERHEAD: u64 = (3 * 16 + size_of::<Entry>() + 2 * 16) as u64;

/// A stage of [`WindowAggregate::prefetch`]: each needs the previous one's line in cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// The key's bucket in the table.
    Bucket,
    /// The key's slot (reads the bucket).
    Slot,
    /// The key's panes (reads the bucket and the slot).
    Panes,
}

/// How many events before a key's update to prefetch each stage: far enough apart for memory
/// to answer (a few hundred ns at most) before the next stage reads the line, near enough
/// for the lines to still be in cache when the update comes.
pub const PREFETCH_AHEAD: [(Prefetch, usize); 3] =
    [(Prefetch::Bucket, 12), (Prefetch::Slot, 8), (Prefetch::Panes, 4)];

impl WindowAggregate {
    /// Empty state for `query`, evicting keys beyond about `max_bytes` of state.
    pub fn new(query: AggregateQuery, max_bytes: u64) -> Self {
        let columns = query.input_columns();
        let plan: Vec<(AggregateFunction, Option<usize>)> = query
            .outputs
            .iter()
            .map(|o| (o.function, o.column.as_ref().and_then(|c| columns.iter().position(|x| x == c))))
            .collect();
        let mut stride = HEAD;
        let accumulators = (0..columns.len())
            .map(|c| {
                let functions = plan.iter().filter(|(_, i)| *i == Some(c)).map(|(f, _)| *f);
                let (acc, width) = PaneColumn::new(stride, functions);
                stride += width;
                acc
            })
            .collect();
        WindowAggregate {
            query,
            columns,
            accumulators,
            plan,
            stride,
            max_bytes,
            keys: KeyTable::new(),
            slab: Vec::new(),
            free: Vec::new(),
            touches: VecDeque::new(),
            evicting: false,
            clock: 0,
            bytes: 0,
            evictions: 0,
            late: 0,
            dropped_late: 0,
            merged: vec![0.0; stride],
        }
    }

    /// The query.
    pub fn query(&self) -> &AggregateQuery {
        &self.query
    }

    /// The input columns, in the order [`Self::update`] takes their values.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The outputs, in the order [`Self::update`] writes them.
    pub fn outputs(&self) -> &[AggregateOutput] {
        &self.query.outputs
    }

    /// Keys held now.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Estimated bytes of state held now.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Keys evicted to stay under the memory cap.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Events older than their key's newest event.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Late events too old to be seen by any later event of their key, not kept.
    pub fn dropped_late(&self) -> u64 {
        self.dropped_late
    }

    fn key_bytes(s: &KeyState) -> u64 {
        KEY_OVERHEAD + s.heap_bytes()
    }

    /// Starts loading one stage of `key`'s state into the cache (see the module docs): call it
    /// with each stage of [`PREFETCH_AHEAD`] that many events before the key's update.
    #[inline]
    pub fn prefetch(&self, stage: Prefetch, key: u64) {
        if stage == Prefetch::Bucket {
            self.keys.prefetch(key);
            return;
        }
        let Some(slot) = self.keys.get(key) else { return };
        let entry = &self.slab[slot as usize];
        if stage == Prefetch::Slot {
            let first: *const Entry = entry;
            for line in 0..SLOT_LINES {
                prefetch(first.cast::<u8>().wrapping_add(line * 64));
            }
            return;
        }
        if entry.state.data.spilled() {
            // Cache lines are 64 bytes: 8 words.
            for line in entry.state.data.iter().step_by(8) {
                prefetch(line);
            }
        }
    }

    /// The slot of `key`, a new empty one for a key not held.
    #[inline]
    fn slot(&mut self, key: u64) -> usize {
        if let Some(slot) = self.keys.get(key) {
            return slot as usize;
        }
        self.bytes += KEY_OVERHEAD;
        let entry = Entry { key, tick: 0, state: KeyState::new() };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = entry;
                slot
            }
            None => {
                self.slab.push(entry);
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 keys")
            }
        };
        self.keys.insert(key, slot);
        slot as usize
    }

    /// Writes into `out` (one per output) the aggregates of key `key` as of time `ts` (see the
    /// module docs), then adds the event with `values` (one per input column, `None` for null).
    pub fn update(&mut self, key: u64, ts: i64, values: &[Option<f64>], out: &mut [Option<f64>]) {
        let stride = self.stride;
        let slide = self.query.window.slide_ms;
        let panes = self.query.window.panes();
        self.clock += 1;
        let tick = self.clock;
        let slot = self.slot(key);
        if self.evicting {
            self.touches.push_back((slot as u32, tick));
        }
        let entry = &mut self.slab[slot];
        entry.tick = tick;
        let s = &mut entry.state;
        let before = s.heap_bytes();
        let p = ts.div_euclid(slide);
        let lo = p - panes + 1;
        let merged = &mut self.merged;
        merged.iter_mut().for_each(|x| *x = 0.0);
        let index = |data: &[f64], j: usize| data[j * stride] as i64;
        if ts >= s.last_ts {
            if ts > s.last_ts {
                let n = s.data.len() / stride;
                if s.tie && n >= 2 && index(&s.data, n - 2) == index(&s.data, n - 1) {
                    // The ties become visible: fold them into their pane.
                    let (a, b) = s.data.split_at_mut((n - 1) * stride);
                    merge_pane(&self.accumulators, &mut a[(n - 2) * stride..], b);
                    s.data.truncate((n - 1) * stride);
                }
                let n = s.data.len() / stride;
                let expired = (0..n).take_while(|&j| index(&s.data, j) < lo).count();
                s.data.drain(..expired * stride);
                for pane in s.data.chunks_exact(stride) {
                    merge_pane(&self.accumulators, merged, pane);
                }
                s.data.extend(std::iter::repeat_n(0.0, stride));
                let at = s.data.len() - stride;
                s.data[at] = p as f64;
                s.tie = true;
                s.last_ts = ts;
            } else {
                let n = s.data.len() / stride;
                for pane in s.data[..(n - 1) * stride].chunks_exact(stride) {
                    if pane[0] as i64 >= lo {
                        merge_pane(&self.accumulators, merged, pane);
                    }
                }
            }
            let at = s.data.len() - stride;
            add_to_pane(&self.accumulators, &mut s.data[at..], values);
        } else {
            self.late += 1;
            for pane in s.data.chunks_exact(stride) {
                let i = pane[0] as i64;
                if i >= lo && i < p {
                    merge_pane(&self.accumulators, merged, pane);
                }
            }
            if p > s.last_ts.div_euclid(slide) - panes {
                // Into its own pane among the visible ones (never the ties' pane).
                let visible = s.data.len() / stride - usize::from(s.tie);
                let pos = (0..visible).find(|&j| index(&s.data, j) >= p).unwrap_or(visible);
                if pos == visible || index(&s.data, pos) != p {
                    let at = pos * stride;
                    s.data.insert_many(at, std::iter::repeat_n(0.0, stride));
                    s.data[at] = p as f64;
                }
                add_to_pane(&self.accumulators, &mut s.data[pos * stride..(pos + 1) * stride], values);
            } else {
                self.dropped_late += 1;
            }
        }
        let after = s.heap_bytes();
        let rows = merged[1];
        for (o, (f, c)) in out.iter_mut().zip(&self.plan) {
            *o = match c {
                Some(c) => self.accumulators[*c].evaluate(*f, merged),
                None => Some(rows),
            };
        }
        self.bytes = self.bytes + after - before;
        if self.bytes > self.max_bytes && !self.evicting {
            self.evicting = true;
            self.compact();
        }
        while self.bytes > self.max_bytes && self.keys.len() > 1 {
            self.evict_oldest(slot as u32);
        }
        if self.evicting && self.touches.len() > 2 * self.keys.len() + 1024 {
            self.compact();
        }
    }

    /// Evicts the least recently seen key (never the one in slot `current`).
    fn evict_oldest(&mut self, current: u32) {
        while let Some((slot, t)) = self.touches.pop_front() {
            if slot == current {
                continue;
            }
            let e = &mut self.slab[slot as usize];
            if e.tick == t {
                e.tick = 0;
                let state = std::mem::replace(&mut e.state, KeyState::new());
                self.keys.remove(e.key);
                self.free.push(slot);
                self.bytes -= Self::key_bytes(&state);
                self.evictions += 1;
                return;
            }
        }
    }

    /// The held keys' `(slot, tick)`, least recently seen first.
    fn by_recency(&self) -> Vec<(u32, u64)> {
        let mut live: Vec<(u32, u64)> =
            (0u32..).zip(&self.slab).filter(|(_, e)| e.tick != 0).map(|(s, e)| (s, e.tick)).collect();
        live.sort_unstable_by_key(|&(_, t)| t);
        live
    }

    /// Drops stale touches: one per key, in recency order.
    fn compact(&mut self) {
        self.touches = self.by_recency().into();
    }

    /// Everything held, for a checkpoint.
    pub fn state(&self) -> AggregateState {
        AggregateState {
            query: self.query.clone(),
            keys: self
                .by_recency()
                .into_iter()
                .map(|(s, _)| {
                    let e = &self.slab[s as usize];
                    (e.key, e.state.clone())
                })
                .collect(),
            evictions: self.evictions,
            late: self.late,
            dropped_late: self.dropped_late,
        }
    }

    /// Replaces the state with a checkpointed one.
    ///
    /// # Errors
    /// When `state` belongs to another query (the config changed since the checkpoint).
    pub fn restore(&mut self, state: AggregateState) -> Result<(), SqlError> {
        if state.query != self.query {
            return Err(SqlError::new(format!(
                "checkpointed aggregate state is for another query ({:?}, now {:?})",
                state.query, self.query
            )));
        }
        if let Some((_, bad)) =
            state.keys.iter().find(|(_, s)| s.data.len() % self.stride != 0 || (s.tie && s.data.is_empty()))
        {
            return Err(SqlError::new(format!(
                "checkpointed aggregate state is corrupt: {} words of panes",
                bad.data.len()
            )));
        }
        let mut fresh = WindowAggregate::new(self.query.clone(), self.max_bytes);
        for (hash, key) in state.keys {
            fresh.clock += 1;
            fresh.bytes += Self::key_bytes(&key);
            let slot = u32::try_from(fresh.slab.len()).expect("fewer than 2^32 keys");
            if fresh.keys.insert(hash, slot).is_some() {
                return Err(SqlError::new(format!(
                    "checkpointed aggregate state is corrupt: key {hash:#x} twice"
                )));
            }
            fresh.slab.push(Entry { key: hash, tick: fresh.clock, state: key });
        }
        fresh.evictions = state.evictions;
        fresh.late = state.late;
        fresh.dropped_late = state.dropped_late;
        *self = fresh;
        Ok(())
    }
}

#[inline]
fn merge_pane(accumulators: &[PaneColumn], into: &mut [f64], pane: &[f64]) {
    into[1] += pane[1];
    for acc in accumulators {
        acc.merge(into, pane);
    }
}

#[inline]
fn add_to_pane(accumulators: &[PaneColumn], pane: &mut [f64], values: &[Option<f64>]) {
    pane[1] += 1.0;
    for (acc, v) in accumulators.iter().zip(values) {
        if let Some(x) = v {
            acc.add(pane, *x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::aggregate_query::WindowSpec;
    use proptest::prelude::*;

    fn query(slide: i64, size: i64) -> AggregateQuery {
        let out = |name: &str, function, column: Option<&str>| AggregateOutput {
            name: name.into(),
            function,
            column: column.map(String::from),
        };
        AggregateQuery {
            key: "k".into(),
            window: WindowSpec { slide_ms: slide, size_ms: size },
            outputs: vec![
                out("n", AggregateFunction::Count, None),
                out("nx", AggregateFunction::Count, Some("x")),
                out("sum", AggregateFunction::Sum, Some("x")),
                out("avg", AggregateFunction::Avg, Some("x")),
                out("min", AggregateFunction::Min, Some("x")),
                out("max", AggregateFunction::Max, Some("x")),
                out("sd", AggregateFunction::Stddev, Some("x")),
                out("sum_y", AggregateFunction::Sum, Some("y")),
            ],
        }
    }

    /// The as-of rule, recomputed from scratch over every earlier event.
    fn naive(
        q: &AggregateQuery,
        history: &[(u64, i64, [Option<f64>; 2])],
        key: u64,
        ts: i64,
    ) -> Vec<Option<f64>> {
        let slide = q.window.slide_ms;
        let p = ts.div_euclid(slide);
        let lo = p - q.window.panes() + 1;
        let seen: Vec<&[Option<f64>; 2]> = history
            .iter()
            .filter(|(k, t, _)| *k == key && *t < ts && t.div_euclid(slide) >= lo)
            .map(|(_, _, v)| v)
            .collect();
        let xs: Vec<f64> = seen.iter().filter_map(|v| v[0]).collect();
        let ys: Vec<f64> = seen.iter().filter_map(|v| v[1]).collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        vec![
            Some(seen.len() as f64),
            Some(n),
            (!xs.is_empty()).then(|| xs.iter().sum()),
            (!xs.is_empty()).then_some(mean),
            xs.iter().copied().reduce(f64::min),
            xs.iter().copied().reduce(f64::max),
            (xs.len() >= 2).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()),
            (!ys.is_empty()).then(|| ys.iter().sum()),
        ]
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs())),
            _ => false,
        }
    }

    #[test]
    fn ties_do_not_see_each_other_and_windows_slide() {
        let mut w = WindowAggregate::new(query(10, 30), u64::MAX);
        let mut out = vec![None; 8];
        w.update(1, 5, &[Some(1.0), None], &mut out);
        assert_eq!(out[0], Some(0.0));
        assert_eq!(out[2], None);
        w.update(1, 5, &[Some(2.0), None], &mut out);
        assert_eq!(out[0], Some(0.0), "a tie does not see the other event at its time");
        w.update(1, 6, &[Some(4.0), None], &mut out);
        assert_eq!((out[0], out[2], out[4], out[5]), (Some(2.0), Some(3.0), Some(1.0), Some(2.0)));
        // Pane 3 (30..40): the window is panes 1..=3, so pane 0's events are gone.
        w.update(1, 35, &[Some(8.0), None], &mut out);
        assert_eq!(out[0], Some(0.0));
        w.update(2, 35, &[None, Some(1.0)], &mut out);
        assert_eq!(out[0], Some(0.0), "keys are separate");
        assert_eq!(w.keys(), 2);
    }

    #[test]
    fn late_events_see_only_earlier_panes() {
        let mut w = WindowAggregate::new(query(10, 30), u64::MAX);
        let mut out = vec![None; 8];
        w.update(1, 1, &[Some(1.0), None], &mut out);
        w.update(1, 12, &[Some(2.0), None], &mut out);
        w.update(1, 25, &[Some(4.0), None], &mut out);
        // Late: time 15 is in pane 1; it sees pane 0 only (not 12, which shares its pane).
        w.update(1, 15, &[Some(100.0), None], &mut out);
        assert_eq!((out[0], out[2]), (Some(1.0), Some(1.0)));
        assert_eq!(w.late(), 1);
        // The late event was folded into pane 1, which time 26 sees.
        w.update(1, 26, &[Some(0.0), None], &mut out);
        assert_eq!(out[2], Some(107.0));
        // Far too late: pane -5 can never be seen again.
        w.update(1, -50, &[Some(1.0), None], &mut out);
        assert_eq!(w.dropped_late(), 1);
    }

    #[test]
    fn memory_cap_evicts_least_recently_seen() {
        let mut w = WindowAggregate::new(query(10, 30), 0);
        let mut out = vec![None; 8];
        w.update(1, 1, &[Some(1.0), None], &mut out);
        let one_key = w.bytes();
        let mut w = WindowAggregate::new(query(10, 30), one_key * 3);
        for k in 0..10u64 {
            w.update(k, 1, &[Some(1.0), None], &mut out);
        }
        assert_eq!(w.keys(), 3);
        assert_eq!(w.evictions(), 7);
        assert!(w.bytes() <= one_key * 3);
        // Keys 9, 8, 7 remain (7 least recent). Touching 7 grows its state by a pane, which
        // evicts the least recently seen key, now 8.
        w.update(7, 2, &[Some(1.0), None], &mut out);
        assert_eq!(out[0], Some(1.0), "key 7 kept its state");
        w.update(10, 2, &[Some(1.0), None], &mut out);
        w.update(8, 3, &[Some(1.0), None], &mut out);
        assert_eq!(out[0], Some(0.0), "key 8 was evicted and starts empty");
    }

    #[test]
    fn state_round_trips_through_serde() {
        let mut w = WindowAggregate::new(query(10, 30), 10_000);
        let mut out = vec![None; 8];
        for i in 0..200i64 {
            w.update((i % 17) as u64, i, &[Some(i as f64), (i % 3 == 0).then_some(1.0)], &mut out);
        }
        let json = serde_json::to_string(&w.state()).unwrap();
        let mut restored = WindowAggregate::new(query(10, 30), 10_000);
        restored.restore(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(restored.state(), w.state());
        assert_eq!(restored.bytes(), w.bytes());
        let mut a = vec![None; 8];
        let mut b = vec![None; 8];
        for i in 200..400i64 {
            let v = [Some((i * 7 % 13) as f64), None];
            w.update((i % 23) as u64, i, &v, &mut a);
            restored.update((i % 23) as u64, i, &v, &mut b);
            assert_eq!(a, b);
        }
        assert_eq!(restored.evictions(), w.evictions());
        let mut other = WindowAggregate::new(query(10, 20), 10_000);
        assert!(other.restore(w.state()).is_err());
    }

    #[test]
    fn panes_keep_only_what_the_outputs_read() {
        let mut q = query(10, 30);
        let full = WindowAggregate::new(q.clone(), u64::MAX).stride;
        // avg(x) and count(*): index, rows, then count and sum of x.
        q.outputs = vec![q.outputs[0].clone(), q.outputs[3].clone()];
        let mut w = WindowAggregate::new(q, u64::MAX);
        assert_eq!((w.stride, full), (4, 2 + 5 + 2));
        let mut out = vec![None; 2];
        for (t, x) in [(1, 2.0), (2, 4.0), (3, 9.0)] {
            w.update(7, t, &[Some(x)], &mut out);
        }
        assert_eq!(out, [Some(2.0), Some(3.0)]);
    }

    proptest! {
        #[test]
        fn subsets_of_outputs_give_the_same_values(
            keep in prop::collection::vec(any::<bool>(), 8),
            events in prop::collection::vec((0u64..3, 0i64..10, prop::option::of(-50.0f64..50.0)), 1..200),
        ) {
            let q = query(5, 15);
            let mut sub = q.clone();
            let kept: Vec<usize> = (0..8).filter(|&i| keep[i]).collect();
            sub.outputs = kept.iter().map(|&i| q.outputs[i].clone()).collect();
            let mut all = WindowAggregate::new(q, u64::MAX);
            let mut some = WindowAggregate::new(sub.clone(), u64::MAX);
            let mut a = vec![None; 8];
            let mut b = vec![None; kept.len()];
            let mut ts = 0;
            for (key, gap, x) in events {
                ts += gap / 2;
                all.update(key, ts, &[x, Some(1.0)], &mut a);
                let inputs: Vec<Option<f64>> =
                    some.columns().iter().map(|c| if c == "x" { x } else { Some(1.0) }).collect();
                some.update(key, ts, &inputs, &mut b);
                for (j, &i) in kept.iter().enumerate() {
                    prop_assert!(close(a[i], b[j]), "output {} at t={}: {:?} vs {:?}", i, ts, a[i], b[j]);
                }
            }
        }

        #[test]
        fn as_of_values_match_a_naive_recomputation(
            slide in 1i64..20,
            panes in 1i64..6,
            events in prop::collection::vec((0u64..4, 0i64..15, prop::option::of(-100.0f64..100.0), prop::option::of(0.0f64..10.0)), 1..300),
        ) {
            let q = query(slide, slide * panes);
            let mut w = WindowAggregate::new(q.clone(), u64::MAX);
            let mut out = vec![None; 8];
            let mut history = Vec::new();
            let mut ts = -40i64;
            for (key, gap, x, y) in events {
                // Non-decreasing times with frequent ties, some negative (before the epoch).
                ts += gap / 3;
                w.update(key, ts, &[x, y], &mut out);
                let want = naive(&q, &history, key, ts);
                for (i, (got, want)) in out.iter().zip(&want).enumerate() {
                    prop_assert!(close(*got, *want), "output {} at t={}: got {:?}, want {:?}", i, ts, got, want);
                }
                history.push((key, ts, [x, y]));
            }
        }
    }
}
