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
//! Per key: only the non-empty panes inside the key's current window (a sorted deque), plus the
//! events at the key's newest time that later events will see. Memory is estimated per key and
//! pane; when the total passes the configured cap, the least recently seen keys are evicted
//! (an O(1) LRU list) and counted. An evicted key starts again from an empty window.
//! [`WindowAggregate::state`] and [`WindowAggregate::restore`] carry all of it through a
//! checkpoint.

use std::collections::VecDeque;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use super::aggregate_query::{AggregateFunction, AggregateOutput, AggregateQuery};

const NIL: u32 = u32::MAX;

/// Running statistics of one column in one pane (Chan et al.'s mergeable form).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct ColAcc {
    n: u64,
    sum: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl ColAcc {
    // min and max are meaningful only when n > 0 (finite, so the state serialises to JSON too).
    const EMPTY: ColAcc = ColAcc { n: 0, sum: 0.0, m2: 0.0, min: 0.0, max: 0.0 };

    #[inline]
    fn add(&mut self, x: f64) {
        if self.n == 0 {
            *self = ColAcc { n: 1, sum: x, m2: 0.0, min: x, max: x };
            return;
        }
        let old_mean = self.sum / self.n as f64;
        self.n += 1;
        self.sum += x;
        let new_mean = self.sum / self.n as f64;
        self.m2 += (x - old_mean) * (x - new_mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    #[inline]
    fn merge(&mut self, o: &ColAcc) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let (n1, n2) = (self.n as f64, o.n as f64);
        let delta = o.sum / n2 - self.sum / n1;
        self.m2 += o.m2 + delta * delta * n1 * n2 / (n1 + n2);
        self.n += o.n;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// One pane of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pane {
    index: i64,
    rows: u64,
    cols: Vec<ColAcc>,
}

impl Pane {
    fn new(index: i64, ncols: usize) -> Self {
        Pane { index, rows: 0, cols: vec![ColAcc::EMPTY; ncols] }
    }

    #[inline]
    fn add(&mut self, values: &[Option<f64>]) {
        self.rows += 1;
        for (acc, v) in self.cols.iter_mut().zip(values) {
            if let Some(x) = v {
                acc.add(*x);
            }
        }
    }

    #[inline]
    fn merge(&mut self, o: &Pane) {
        self.rows += o.rows;
        for (a, b) in self.cols.iter_mut().zip(&o.cols) {
            a.merge(b);
        }
    }

    fn clear(&mut self, index: i64) {
        self.index = index;
        self.rows = 0;
        self.cols.iter_mut().for_each(|c| *c = ColAcc::EMPTY);
    }
}

/// The window state of one key (part of [`AggregateState`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    /// Newest event time seen for the key.
    last_ts: i64,
    /// Events at `last_ts`, not yet visible to anyone (ties do not see each other).
    tie: Pane,
    /// Non-empty panes before the ties, oldest first.
    panes: VecDeque<Pane>,
}

impl KeyState {
    fn new(ncols: usize) -> Self {
        KeyState { last_ts: i64::MIN, tie: Pane::new(i64::MIN, ncols), panes: VecDeque::new() }
    }

    /// The pane at `index`, inserted in order when absent.
    fn pane_mut(&mut self, index: i64, ncols: usize) -> &mut Pane {
        let pos = match self.panes.back() {
            Some(b) if b.index == index => self.panes.len() - 1,
            Some(b) if b.index < index => {
                self.panes.push_back(Pane::new(index, ncols));
                self.panes.len() - 1
            }
            None => {
                self.panes.push_back(Pane::new(index, ncols));
                0
            }
            Some(_) => match self.panes.binary_search_by_key(&index, |p| p.index) {
                Ok(i) => i,
                Err(i) => {
                    self.panes.insert(i, Pane::new(index, ncols));
                    i
                }
            },
        };
        &mut self.panes[pos]
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

struct Node {
    hash: u64,
    prev: u32,
    next: u32,
    state: KeyState,
}

/// A windowed aggregate's state. See the module docs.
pub struct WindowAggregate {
    query: AggregateQuery,
    columns: Vec<String>,
    plan: Vec<(AggregateFunction, Option<usize>)>,
    max_bytes: u64,
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: HashMap<u64, u32>,
    /// Most recently seen key.
    head: u32,
    /// Least recently seen key.
    tail: u32,
    bytes: u64,
    evictions: u64,
    late: u64,
    dropped_late: u64,
    merged: Pane,
}

impl std::fmt::Debug for WindowAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowAggregate")
            .field("query", &self.query)
            .field("keys", &self.index.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl WindowAggregate {
    /// Empty state for `query`, evicting keys beyond about `max_bytes` of state.
    pub fn new(query: AggregateQuery, max_bytes: u64) -> Self {
        let columns = query.input_columns();
        let plan = query
            .outputs
            .iter()
            .map(|o| (o.function, o.column.as_ref().and_then(|c| columns.iter().position(|x| x == c))))
            .collect();
        let ncols = columns.len();
        WindowAggregate {
            query,
            columns,
            plan,
            max_bytes,
            nodes: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            evictions: 0,
            late: 0,
            dropped_late: 0,
            merged: Pane::new(0, ncols),
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
        self.index.len()
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

    fn pane_bytes(&self) -> u64 {
        (std::mem::size_of::<Pane>() + self.columns.len() * std::mem::size_of::<ColAcc>()) as u64
    }

    fn key_bytes(&self, s: &KeyState) -> u64 {
        // The node, its index entry, the tie pane and the deque's panes.
        (std::mem::size_of::<Node>() + 16) as u64 + (s.panes.len() as u64 + 1) * self.pane_bytes()
    }

    /// Writes into `out` (one per output) the aggregates of key `key` as of time `ts` (see the
    /// module docs), then adds the event with `values` (one per input column, `None` for null).
    pub fn update(&mut self, key: u64, ts: i64, values: &[Option<f64>], out: &mut [Option<f64>]) {
        let ncols = self.columns.len();
        let slide = self.query.window.slide_ms;
        let panes = self.query.window.panes();
        let node = match self.index.get(&key) {
            Some(&i) => {
                self.unlink(i);
                i
            }
            None => {
                let state = KeyState::new(ncols);
                self.bytes += self.key_bytes(&state);
                let node = Node { hash: key, prev: NIL, next: NIL, state };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.nodes[i as usize] = node;
                        i
                    }
                    None => {
                        self.nodes.push(node);
                        (self.nodes.len() - 1) as u32
                    }
                };
                self.index.insert(key, i);
                i
            }
        };
        self.push_front(node);
        let before = self.key_bytes(&self.nodes[node as usize].state);
        let p = ts.div_euclid(slide);
        let lo = p - panes + 1;
        let mut merged = std::mem::replace(&mut self.merged, Pane::new(0, 0));
        merged.clear(0);
        let s = &mut self.nodes[node as usize].state;
        if ts >= s.last_ts {
            if ts > s.last_ts {
                if s.tie.rows > 0 {
                    let tie = std::mem::replace(&mut s.tie, Pane::new(p, ncols));
                    s.pane_mut(tie.index, ncols).merge(&tie);
                } else {
                    s.tie.clear(p);
                }
                while s.panes.front().is_some_and(|f| f.index < lo) {
                    s.panes.pop_front();
                }
                s.last_ts = ts;
            }
            for pane in s.panes.iter().filter(|x| x.index >= lo) {
                merged.merge(pane);
            }
            s.tie.add(values);
        } else {
            self.late += 1;
            for pane in s.panes.iter().filter(|x| x.index >= lo && x.index < p) {
                merged.merge(pane);
            }
            if p > s.last_ts.div_euclid(slide) - panes {
                s.pane_mut(p, ncols).add(values);
            } else {
                self.dropped_late += 1;
            }
        }
        for (o, (f, c)) in out.iter_mut().zip(&self.plan) {
            *o = evaluate(*f, c.map(|c| &merged.cols[c]), merged.rows);
        }
        self.merged = merged;
        let after = self.key_bytes(&self.nodes[node as usize].state);
        self.bytes = self.bytes + after - before;
        while self.bytes > self.max_bytes && self.index.len() > 1 {
            self.evict_tail();
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn push_front(&mut self, i: u32) {
        let n = &mut self.nodes[i as usize];
        n.prev = NIL;
        n.next = self.head;
        if self.head != NIL {
            self.nodes[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn evict_tail(&mut self) {
        let i = self.tail;
        if i == NIL {
            return;
        }
        self.unlink(i);
        let state = std::mem::replace(&mut self.nodes[i as usize].state, KeyState::new(0));
        self.bytes -= self.key_bytes(&state);
        self.index.remove(&self.nodes[i as usize].hash);
        self.free.push(i);
        self.evictions += 1;
    }

    /// Everything held, for a checkpoint.
    pub fn state(&self) -> AggregateState {
        let mut keys = Vec::with_capacity(self.index.len());
        let mut i = self.tail;
        while i != NIL {
            let n = &self.nodes[i as usize];
            keys.push((n.hash, n.state.clone()));
            i = n.prev;
        }
        AggregateState {
            query: self.query.clone(),
            keys,
            evictions: self.evictions,
            late: self.late,
            dropped_late: self.dropped_late,
        }
    }

    /// Replaces the state with a checkpointed one.
    ///
    /// # Errors
    /// When `state` belongs to another query (the config changed since the checkpoint).
    pub fn restore(&mut self, state: AggregateState) -> Result<(), String> {
        if state.query != self.query {
            return Err(format!(
                "checkpointed aggregate state is for another query ({:?}, now {:?})",
                state.query, self.query
            ));
        }
        let mut fresh = WindowAggregate::new(self.query.clone(), self.max_bytes);
        for (hash, key) in state.keys {
            let i = fresh.nodes.len() as u32;
            fresh.bytes += fresh.key_bytes(&key);
            fresh.nodes.push(Node { hash, prev: NIL, next: NIL, state: key });
            fresh.index.insert(hash, i);
            fresh.push_front(i);
        }
        fresh.evictions = state.evictions;
        fresh.late = state.late;
        fresh.dropped_late = state.dropped_late;
        *self = fresh;
        Ok(())
    }
}

#[inline]
fn evaluate(f: AggregateFunction, acc: Option<&ColAcc>, rows: u64) -> Option<f64> {
    let Some(a) = acc else {
        return Some(rows as f64);
    };
    match f {
        AggregateFunction::Count => Some(a.n as f64),
        _ if a.n == 0 => None,
        AggregateFunction::Sum => Some(a.sum),
        AggregateFunction::Avg => Some(a.sum / a.n as f64),
        AggregateFunction::Min => Some(a.min),
        AggregateFunction::Max => Some(a.max),
        AggregateFunction::Stddev => (a.n >= 2).then(|| (a.m2.max(0.0) / (a.n - 1) as f64).sqrt()),
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

    proptest! {
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
