//! `LabelJoin`: events wait here, encoded and scored, until their label arrives or their
//! time-to-live (in event time) passes.
//!
//! Layout, chosen for a per-row hot path with no allocation per event: pending entries sit in
//! a FIFO in arrival order (which is event-time order for well-behaved streams, so expiry pops
//! from the front), their encoded rows and per-slot predictions in two append-only arenas that
//! are compacted once their consumed prefix is large, and a hash index maps key hashes to
//! entries. Keys are stored as 64-bit hashes: the buffer never needs the key text back.
//!
//! Nothing leaves silently: every way a record can fail to join is counted in
//! [`JoinCounters`].

use std::collections::VecDeque;

use std::hash::{BuildHasherDefault, Hasher};

use eddy_scorer::encoding::Feature;

/// Keys are already 64-bit xxh3 hashes of the key text, uniformly spread: hashing them again
/// would only cost time on the per-row path.
#[derive(Default)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashMap<K, V> = hashbrown::HashMap<K, V, BuildHasherDefault<PrehashedKey>>;
use serde::{Deserialize, Serialize};

use crate::units::{ConfigDuration, ConfigSize};

/// What the join does when its memory bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Evict the oldest waiting event (counted as `evicted`): recent events are more likely to
    /// get their label in time.
    #[default]
    EvictOldest,
    /// Keep the waiting events and do not buffer the new one (counted as `rejected_full`); it
    /// is still scored but never learned.
    RejectNew,
}

/// Configuration of the label join.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JoinConfig {
    /// How long (event time) an event waits for its label; an early label waits as long for
    /// its event.
    pub ttl: ConfigDuration,
    /// Most events waiting at once.
    pub max_pending: usize,
    /// Memory bound of the buffer (entries, encoded rows, predictions and indexes).
    pub max_bytes: ConfigSize,
    /// What to do when a bound is reached.
    pub when_full: WhenFull,
    /// How far behind the newest event time a record may be before it counts as late.
    pub allowed_lateness: ConfigDuration,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            ttl: ConfigDuration::from_millis(10 * 60 * 1000),
            max_pending: 1_000_000,
            max_bytes: ConfigSize(256 << 20),
            when_full: WhenFull::EvictOldest,
            allowed_lateness: ConfigDuration::from_millis(0),
        }
    }
}

impl JoinConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.ttl.0.is_zero() {
            out.push(("ttl", "must be longer than 0, e.g. \"10m\"".to_string()));
        }
        if self.max_pending == 0 {
            out.push(("max_pending", "must be at least 1".to_string()));
        }
        if self.max_bytes.0 < 4096 {
            out.push(("max_bytes", format!("must be at least 4KiB, got {}", self.max_bytes)));
        }
        out
    }
}

/// Counts of everything that happened in the join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCounters {
    /// Labels that met their event.
    pub joined: u64,
    /// Events whose label did not come within the TTL.
    pub expired: u64,
    /// Events evicted because the buffer was full.
    pub evicted: u64,
    /// Events not buffered because the buffer was full (`when_full = "reject_new"`).
    pub rejected_full: u64,
    /// Events whose key was already waiting; the newer event replaces the older one.
    pub duplicate_events: u64,
    /// Labels that arrived before their event (joined later if the event came).
    pub early_labels: u64,
    /// Labels for an event that was already joined.
    pub duplicate_labels: u64,
    /// Labels whose event never arrived within the TTL (unknown ids), or that could not be
    /// kept because the buffer was full.
    pub unmatched_labels: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u64,
    ts: i64,
    event_index: u64,
    feat_start: u64,
    feat_len: u32,
    pending: bool,
}

/// 37-byte little-endian record: key, ts, event_index, feat_start, feat_len, pending.
impl crate::packed::Record for Entry {
    const WIDTH: usize = 37;

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_le_bytes());
        out.extend_from_slice(&self.ts.to_le_bytes());
        out.extend_from_slice(&self.event_index.to_le_bytes());
        out.extend_from_slice(&self.feat_start.to_le_bytes());
        out.extend_from_slice(&self.feat_len.to_le_bytes());
        out.push(self.pending as u8);
    }

    fn get(b: &[u8]) -> Self {
        use crate::packed::{read_u32, read_u64};
        Entry {
            key: read_u64(b, 0),
            ts: read_u64(b, 8) as i64,
            event_index: read_u64(b, 16),
            feat_start: read_u64(b, 24),
            feat_len: read_u32(b, 32),
            pending: b[36] != 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct EarlyLabel {
    ts: i64,
    y: f32,
}

/// A joined event handed back to the engine to learn from.
#[derive(Debug)]
pub struct Joined<'a> {
    /// Event time of the event.
    pub event_ts: i64,
    /// 0-based index of the event in the run.
    pub event_index: u64,
    /// The encoded row the event was scored with.
    pub row: &'a [Feature],
    /// The prediction of each slot at scoring time.
    pub predictions: &'a [f32],
}

/// What became of a label.
#[derive(Debug)]
pub enum LabelOutcome<'a> {
    /// It met its event.
    Joined(Joined<'a>),
    /// Its event has not arrived yet; the label waits.
    Early,
    /// Its event was already joined.
    Duplicate,
    /// It could not be kept (buffer full).
    Unmatched,
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventOutcome {
    /// It waits for its label.
    Buffered,
    /// Its label had arrived first: learn from it now with this label.
    JoinedEarly(f32),
    /// The buffer was full and the event was not kept.
    Rejected,
}

/// The label join buffer. See the module docs.
///
/// Serialisable whole: it is checkpointed as it is (configuration included; a checkpoint is
/// only restored into the same configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelJoin {
    ttl: i64,
    max_pending: usize,
    max_bytes: u64,
    when_full: WhenFull,
    n_slots: usize,
    #[serde(with = "crate::packed::deque")]
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`.
    base_seq: u64,
    index: HashMap<u64, u64>,
    #[serde(with = "crate::packed::features")]
    feats: Vec<Feature>,
    /// Global position of `feats[0]`.
    feats_base: u64,
    #[serde(with = "crate::packed::floats")]
    preds: Vec<f32>,
    /// Sequence number whose predictions start `preds`.
    preds_base: u64,
    pending: usize,
    early: HashMap<u64, EarlyLabel>,
    early_order: VecDeque<(u64, i64)>,
    /// Keys joined within the TTL, oldest first; their `index` value is [`JOINED`], which is how
    /// a second label for the same event is told apart from an early one.
    joined_order: VecDeque<(u64, i64)>,
    counters: JoinCounters,
}

/// `index` value of a key that was joined (within the TTL) rather than waiting.
const JOINED: u64 = u64::MAX;

/// Compact an arena once this many leading items are dead.
const COMPACT_MIN: usize = 1 << 14;

impl LabelJoin {
    /// An empty join for a pipeline with `n_slots` model slots.
    pub fn new(config: &JoinConfig, n_slots: usize) -> Self {
        LabelJoin {
            ttl: config.ttl.as_millis_i64(),
            max_pending: config.max_pending,
            max_bytes: config.max_bytes.0,
            when_full: config.when_full,
            n_slots,
            entries: VecDeque::new(),
            base_seq: 0,
            index: HashMap::default(),
            feats: Vec::new(),
            feats_base: 0,
            preds: Vec::new(),
            preds_base: 0,
            pending: 0,
            early: HashMap::default(),
            early_order: VecDeque::new(),
            joined_order: VecDeque::new(),
            counters: JoinCounters::default(),
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> JoinCounters {
        self.counters
    }

    /// Events waiting for their label.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Labels waiting for their event.
    pub fn waiting_labels(&self) -> usize {
        self.early.len()
    }

    /// Approximate memory held, in bytes (what `max_bytes` bounds).
    pub fn size_bytes(&self) -> u64 {
        let entry = std::mem::size_of::<Entry>() + 2 * std::mem::size_of::<(u64, u64)>();
        (self.entries.len() * entry
            + self.feats.len() * std::mem::size_of::<Feature>()
            + self.preds.len() * 4
            + self.early.len() * 40
            + self.joined_order.len() * 32) as u64
    }

    fn full(&self) -> bool {
        self.pending >= self.max_pending || self.size_bytes() >= self.max_bytes
    }

    /// Adds a scored event. `row` is its encoded row, `predictions` one value per slot.
    pub fn insert_event(
        &mut self,
        key: u64,
        ts: i64,
        event_index: u64,
        row: &[Feature],
        predictions: &[f32],
    ) -> EventOutcome {
        debug_assert_eq!(predictions.len(), self.n_slots);
        if let Some(label) = self.early.remove(&key) {
            self.counters.joined += 1;
            self.remember_joined(key, ts, true);
            return EventOutcome::JoinedEarly(label.y);
        }
        if let Some(&seq) = self.index.get(&key).filter(|&&v| v != JOINED) {
            // A second event with a waiting key replaces the first.
            self.counters.duplicate_events += 1;
            self.retire(seq);
        }
        while self.full() {
            match self.when_full {
                WhenFull::RejectNew => {
                    self.counters.rejected_full += 1;
                    return EventOutcome::Rejected;
                }
                WhenFull::EvictOldest => {
                    if !self.evict_front() {
                        break;
                    }
                }
            }
        }
        let seq = self.base_seq + self.entries.len() as u64;
        self.entries.push_back(Entry {
            key,
            ts,
            event_index,
            feat_start: self.feats_base + self.feats.len() as u64,
            feat_len: row.len() as u32,
            pending: true,
        });
        self.feats.extend_from_slice(row);
        self.preds.extend_from_slice(predictions);
        self.index.insert(key, seq);
        self.pending += 1;
        EventOutcome::Buffered
    }

    /// Looks up the event of a label.
    pub fn take_label(&mut self, key: u64, ts: i64, y: f32) -> LabelOutcome<'_> {
        let slot = self.index.get_mut(&key);
        if let Some(v) = slot {
            if *v == JOINED {
                self.counters.duplicate_labels += 1;
                return LabelOutcome::Duplicate;
            }
            let seq = std::mem::replace(v, JOINED);
            let i = (seq - self.base_seq) as usize;
            let e = &mut self.entries[i];
            e.pending = false;
            let e = *e;
            self.pending -= 1;
            self.counters.joined += 1;
            self.remember_joined(key, e.ts, false);
            let fs = (e.feat_start - self.feats_base) as usize;
            let ps = (seq - self.preds_base) as usize * self.n_slots;
            return LabelOutcome::Joined(Joined {
                event_ts: e.ts,
                event_index: e.event_index,
                row: &self.feats[fs..fs + e.feat_len as usize],
                predictions: &self.preds[ps..ps + self.n_slots],
            });
        }
        if self.early.len() >= self.max_pending || self.size_bytes() >= self.max_bytes {
            self.counters.unmatched_labels += 1;
            return LabelOutcome::Unmatched;
        }
        self.counters.early_labels += 1;
        if self.early.insert(key, EarlyLabel { ts, y }).is_some() {
            // Two labels for one unseen event: the newer wins, the older is a duplicate.
            self.counters.duplicate_labels += 1;
        }
        self.early_order.push_back((key, ts));
        LabelOutcome::Early
    }

    /// Expires everything whose TTL has passed at `watermark` (event time, ms).
    pub fn advance(&mut self, watermark: i64) {
        let horizon = watermark.saturating_sub(self.ttl);
        let mut popped = false;
        while let Some(front) = self.entries.front() {
            if front.pending && front.ts >= horizon {
                break;
            }
            if front.pending {
                self.counters.expired += 1;
                self.pending -= 1;
                self.index.remove(&front.key);
            }
            self.pop_front();
            popped = true;
        }
        while let Some(&(key, ts)) = self.early_order.front() {
            if ts >= horizon {
                break;
            }
            self.early_order.pop_front();
            if self.early.get(&key).is_some_and(|l| l.ts == ts) {
                self.early.remove(&key);
                self.counters.unmatched_labels += 1;
            }
        }
        while let Some(&(key, ts)) = self.joined_order.front() {
            if ts >= horizon {
                break;
            }
            self.joined_order.pop_front();
            self.forget_joined(key);
        }
        if popped {
            self.compact();
        }
    }

    /// Remembers that `key` was joined (`insert`: it is not in the index yet, as for an event
    /// joined with an early label).
    fn remember_joined(&mut self, key: u64, ts: i64, insert: bool) {
        if self.joined_order.len() >= self.max_pending {
            if let Some((k, _)) = self.joined_order.pop_front() {
                self.forget_joined(k);
            }
        }
        if insert {
            self.index.insert(key, JOINED);
        }
        self.joined_order.push_back((key, ts));
    }

    fn forget_joined(&mut self, key: u64) {
        if self.index.get(&key) == Some(&JOINED) {
            self.index.remove(&key);
        }
    }

    /// Marks entry `seq` as no longer waiting, without counting a join.
    fn retire(&mut self, seq: u64) {
        let i = (seq - self.base_seq) as usize;
        if self.entries[i].pending {
            self.entries[i].pending = false;
            self.pending -= 1;
        }
    }

    fn evict_front(&mut self) -> bool {
        let Some(front) = self.entries.front().copied() else { return false };
        if front.pending {
            self.counters.evicted += 1;
            self.pending -= 1;
            self.index.remove(&front.key);
        }
        self.pop_front();
        self.compact();
        true
    }

    fn pop_front(&mut self) {
        self.entries.pop_front();
        self.base_seq += 1;
    }

    /// Drops the arena prefix no live entry refers to, once it is large enough that the copy
    /// is amortised.
    fn compact(&mut self) {
        let (feat_live, seq_live) = match self.entries.front() {
            Some(e) => (e.feat_start, self.base_seq),
            None => (self.feats_base + self.feats.len() as u64, self.base_seq),
        };
        let dead_feats = (feat_live - self.feats_base) as usize;
        if dead_feats >= COMPACT_MIN && dead_feats * 2 >= self.feats.len() {
            self.feats.drain(..dead_feats);
            self.feats_base = feat_live;
        }
        let dead_seqs = (seq_live - self.preds_base) as usize;
        if dead_seqs * self.n_slots >= COMPACT_MIN && dead_seqs * self.n_slots * 2 >= self.preds.len() {
            self.preds.drain(..dead_seqs * self.n_slots);
            self.preds_base = seq_live;
        }
        if self.entries.is_empty() {
            self.feats.clear();
            self.feats_base = feat_live;
            self.preds.clear();
            self.preds_base = seq_live;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(ttl_ms: u64, max_pending: usize, when_full: WhenFull) -> LabelJoin {
        let cfg = JoinConfig {
            ttl: ConfigDuration::from_millis(ttl_ms),
            max_pending,
            when_full,
            ..JoinConfig::default()
        };
        LabelJoin::new(&cfg, 2)
    }

    fn row(v: f32) -> Vec<Feature> {
        vec![Feature { index: 0, value: v }, Feature { index: 3, value: 1.0 }]
    }

    #[test]
    fn label_finds_its_event_with_row_and_predictions() {
        let mut j = join(1000, 10, WhenFull::EvictOldest);
        assert_eq!(j.insert_event(1, 100, 0, &row(0.5), &[0.1, 0.2]), EventOutcome::Buffered);
        assert_eq!(j.insert_event(2, 110, 1, &row(0.7), &[0.3, 0.4]), EventOutcome::Buffered);
        match j.take_label(2, 600, 1.0) {
            LabelOutcome::Joined(x) => {
                assert_eq!(x.event_index, 1);
                assert_eq!(x.row, &row(0.7)[..]);
                assert_eq!(x.predictions, &[0.3, 0.4]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(j.pending(), 1);
        assert!(matches!(j.take_label(2, 610, 1.0), LabelOutcome::Duplicate));
        assert_eq!(j.counters().duplicate_labels, 1);
    }

    #[test]
    fn events_expire_after_ttl_in_event_time() {
        let mut j = join(1000, 10, WhenFull::EvictOldest);
        j.insert_event(1, 100, 0, &row(1.0), &[0.5, 0.5]);
        j.advance(1100);
        assert_eq!(j.counters().expired, 0, "exactly at the TTL the event still waits");
        j.advance(1101);
        assert_eq!(j.counters().expired, 1);
        assert!(matches!(j.take_label(1, 1101, 0.0), LabelOutcome::Early));
    }

    #[test]
    fn early_labels_wait_for_their_event_then_expire_as_unmatched() {
        let mut j = join(1000, 10, WhenFull::EvictOldest);
        assert!(matches!(j.take_label(7, 50, 1.0), LabelOutcome::Early));
        assert_eq!(j.insert_event(7, 60, 0, &row(1.0), &[0.5, 0.5]), EventOutcome::JoinedEarly(1.0));
        assert_eq!(j.counters().joined, 1);
        assert!(matches!(j.take_label(8, 70, 0.0), LabelOutcome::Early));
        j.advance(2000);
        let c = j.counters();
        assert_eq!((c.early_labels, c.unmatched_labels), (2, 1));
    }

    #[test]
    fn full_buffer_evicts_oldest_or_rejects_new() {
        let mut j = join(1_000_000, 2, WhenFull::EvictOldest);
        for k in 0..3 {
            j.insert_event(k, k as i64, k, &row(1.0), &[0.0, 0.0]);
        }
        assert_eq!(j.counters().evicted, 1);
        assert!(matches!(j.take_label(0, 5, 1.0), LabelOutcome::Early));
        assert!(matches!(j.take_label(2, 5, 1.0), LabelOutcome::Joined(_)));

        let mut j = join(1_000_000, 2, WhenFull::RejectNew);
        for k in 0..3 {
            j.insert_event(k, k as i64, k, &row(1.0), &[0.0, 0.0]);
        }
        assert_eq!(j.counters().rejected_full, 1);
        assert!(matches!(j.take_label(0, 5, 1.0), LabelOutcome::Joined(_)));
    }

    #[test]
    fn duplicate_event_key_replaces_the_older_event() {
        let mut j = join(1000, 10, WhenFull::EvictOldest);
        j.insert_event(1, 100, 0, &row(1.0), &[0.1, 0.1]);
        j.insert_event(1, 200, 1, &row(2.0), &[0.9, 0.9]);
        assert_eq!(j.counters().duplicate_events, 1);
        assert_eq!(j.pending(), 1);
        match j.take_label(1, 300, 1.0) {
            LabelOutcome::Joined(x) => assert_eq!(x.event_index, 1),
            other => panic!("{other:?}"),
        }
        j.advance(10_000);
        assert_eq!(j.counters().expired, 0, "the replaced event is not counted as expired");
    }

    #[test]
    fn arenas_stay_bounded_over_a_long_stream() {
        let mut j = join(100, 1_000_000, WhenFull::EvictOldest);
        for i in 0..200_000u64 {
            let ts = i as i64;
            j.insert_event(i, ts, i, &row(1.0), &[0.5, 0.5]);
            if i >= 50 {
                let _ = j.take_label(i - 50, ts, 1.0);
            }
            j.advance(ts);
        }
        assert!(j.pending() <= 51);
        assert!(j.size_bytes() < 4 << 20, "{}", j.size_bytes());
        assert_eq!(j.counters().joined, 200_000 - 50);
    }
}
