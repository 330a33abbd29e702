//! `Counters`: what the engine has seen — events, labels, late records, the event-time
//! watermark and dead letters by reason — and their Prometheus counters.
//!
//! A part of the engine that owns its state: built from nothing, updated per row
//! ([`Counters::observe_time`]) and per batch ([`Counters::publish`]), captured with
//! [`Counters::state`] and brought back with [`Counters::restore`]. Prometheus counters are
//! advanced by the difference since the last publish, so after a restore they continue from
//! the restored totals and never go backwards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::label_join::{JoinCounters, LabelJoin};
use crate::metrics::{EngineMetrics, MetricsFactory};
use crate::record::DeadLetter;

/// The checkpointed part of [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CountersState {
    /// Events processed.
    pub events: u64,
    /// Labels processed.
    pub labels: u64,
    /// Records older than the watermark minus the allowed lateness.
    pub late: u64,
    /// The newest event time seen (`i64::MIN` before the first record).
    pub max_ts: i64,
    /// Dead letters emitted so far, by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Blank lines of text inputs skipped so far (a trailing field: older checkpoints read
    /// as 0).
    #[serde(default)]
    pub blank_lines: u64,
}

/// The values of the counters at the last [`Counters::publish`].
#[derive(Debug, Clone, Copy, Default)]
struct Published {
    events: u64,
    labels: u64,
    late: u64,
    blank_lines: u64,
    join: JoinCounters,
}

/// See the module docs.
pub struct Counters {
    state: CountersState,
    /// Allowed lateness in milliseconds: a record older than `max_ts - lateness` is late.
    lateness_ms: i64,
    published: Published,
    metrics: EngineMetrics,
}

impl Counters {
    /// Counters at zero, for a pipeline whose allowed lateness is `lateness_ms`.
    pub fn new(lateness_ms: i64, factory: &MetricsFactory) -> Self {
        Counters {
            state: CountersState { max_ts: i64::MIN, ..CountersState::default() },
            lateness_ms,
            published: Published::default(),
            metrics: EngineMetrics::new(factory),
        }
    }

    /// Events processed so far.
    #[inline]
    pub fn events(&self) -> u64 {
        self.state.events
    }

    /// Labels processed so far.
    pub fn labels(&self) -> u64 {
        self.state.labels
    }

    /// Late records so far.
    pub fn late(&self) -> u64 {
        self.state.late
    }

    /// Dead letters so far, by reason.
    pub fn dead_letters(&self) -> &BTreeMap<String, u64> {
        &self.state.dead_letters
    }

    /// The watermark: the newest event time minus the allowed lateness.
    pub fn watermark(&self) -> i64 {
        self.state.max_ts.saturating_sub(self.lateness_ms)
    }

    /// Takes one record's event time into account. Returns the new watermark when it moved
    /// (the join then expires what is older); counts the record as late when it is older than
    /// the watermark.
    #[inline]
    pub fn observe_time(&mut self, ts: i64) -> Option<i64> {
        if ts > self.state.max_ts {
            self.state.max_ts = ts;
            Some(ts.saturating_sub(self.lateness_ms))
        } else {
            if ts < self.state.max_ts.saturating_sub(self.lateness_ms) {
                self.state.late += 1;
            }
            None
        }
    }

    /// Counts one event; returns its index in the stream (0 for the first).
    #[inline]
    pub fn next_event(&mut self) -> u64 {
        let index = self.state.events;
        self.state.events += 1;
        index
    }

    /// Counts one label.
    #[inline]
    pub fn count_label(&mut self) {
        self.state.labels += 1;
    }

    /// Counts dead letters by reason.
    pub fn count_dead_letters(&mut self, letters: &[DeadLetter]) {
        for d in letters {
            *self.state.dead_letters.entry(d.reason.clone()).or_insert(0) += 1;
        }
    }

    /// Counts skipped blank lines.
    pub fn count_blank_lines(&mut self, n: u64) {
        self.state.blank_lines += n;
    }

    /// Blank lines skipped so far.
    pub fn blank_lines(&self) -> u64 {
        self.state.blank_lines
    }

    /// Records how long the engine spent on one batch of events (`score`) or labels (`learn`).
    pub fn record_batch_seconds(&self, events: bool, seconds: f64) {
        if events {
            self.metrics.score_seconds.record(seconds);
        } else {
            self.metrics.learn_seconds.record(seconds);
        }
    }

    /// Advances the Prometheus series by what happened since the last call (once per batch).
    pub fn publish(&mut self, join: &LabelJoin) {
        let c = join.counters();
        let p = self.published;
        let s = &self.state;
        let m = &self.metrics;
        m.events.increment(s.events - p.events);
        m.labels.increment(s.labels - p.labels);
        m.late.increment(s.late - p.late);
        m.blank_lines.increment(s.blank_lines - p.blank_lines);
        m.joined.increment(c.joined - p.join.joined);
        m.expired.increment(c.expired - p.join.expired);
        m.unmatched.increment(c.unmatched_labels - p.join.unmatched_labels);
        m.early.increment(c.early_labels - p.join.early_labels);
        m.duplicate_labels.increment(c.duplicate_labels - p.join.duplicate_labels);
        m.evicted.increment((c.evicted + c.rejected_full) - (p.join.evicted + p.join.rejected_full));
        m.buffer_events.set(join.pending() as f64);
        m.buffer_bytes.set(join.size_bytes() as f64);
        if s.max_ts > i64::MIN {
            m.watermark.set(s.max_ts as f64 / 1000.0);
        }
        self.published = Published {
            events: s.events,
            labels: s.labels,
            late: s.late,
            blank_lines: s.blank_lines,
            join: c,
        };
    }

    /// The state, for a checkpoint.
    pub fn state(&self) -> CountersState {
        self.state.clone()
    }

    /// Continues from `state`. The Prometheus series start over from zero in a new process:
    /// the first publish adds the restored totals.
    pub fn restore(&mut self, state: CountersState) {
        self.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> Counters {
        Counters::new(100, &MetricsFactory::noop("test"))
    }

    #[test]
    fn the_watermark_moves_with_the_newest_time_and_older_records_are_late() {
        let mut c = counters();
        assert_eq!(c.observe_time(1_000), Some(900));
        assert_eq!(c.observe_time(950), None, "within the allowed lateness");
        assert_eq!(c.late(), 0);
        assert_eq!(c.observe_time(899), None);
        assert_eq!(c.late(), 1);
        assert_eq!(c.observe_time(2_000), Some(1_900));
        assert_eq!(c.watermark(), 1_900);
    }

    #[test]
    fn events_are_numbered_and_dead_letters_counted_by_reason() {
        let mut c = counters();
        assert_eq!(c.next_event(), 0);
        assert_eq!(c.next_event(), 1);
        c.count_label();
        let letter = |reason: &str| DeadLetter {
            source: "events".into(),
            offset: 0,
            reason: reason.into(),
            detail: String::new(),
            record: String::new(),
        };
        c.count_dead_letters(&[letter("bad_time"), letter("bad_time"), letter("missing_key")]);
        assert_eq!(c.events(), 2);
        assert_eq!(c.labels(), 1);
        assert_eq!(c.dead_letters().get("bad_time"), Some(&2));
        assert_eq!(c.dead_letters().get("missing_key"), Some(&1));
    }

    #[test]
    fn state_round_trips() {
        let mut c = counters();
        c.observe_time(5_000);
        c.observe_time(10);
        c.next_event();
        let state = c.state();
        let mut d = counters();
        d.restore(state.clone());
        assert_eq!(d.state(), state);
        assert_eq!(d.observe_time(4_000), None);
        assert_eq!(d.late(), 2);
    }
}
