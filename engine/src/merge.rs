//! `StreamMerger`: merges the batches of every source into one event-time order.
//!
//! The engine must see events and labels in a deterministic order for runs to be reproducible
//! (same inputs, same model, bit for bit) and for prequential evaluation to mean what it says.
//! The merger therefore waits until every *bounded* source has a batch (or has ended) before it
//! hands out rows, and always picks the smallest `(event time, role, source index)` next —
//! events before labels at equal times, so a label stamped with its event's time still joins.
//! Unbounded sources (tailed files, stdin, stream topics) cannot be waited for forever: an
//! unbounded source with nothing to read for `idle_timeout` is skipped until it has data, which
//! is the only source of non-determinism and only in live mode.
//!
//! A source that carries both streams (a generator) has one *lane* per stream, each with its
//! own queue, so its events and labels are interleaved row by row too. A lane waits for data
//! only while its source has fewer than [`MAX_QUEUED`] batches queued, which bounds memory even
//! when a source sends one stream only for a long while.
//!
//! Rows are handed out in runs (contiguous rows of one batch that come before every other
//! lane's next row), so the per-row cost of merging is one comparison.

use std::collections::VecDeque;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_buffer::ScalarBuffer;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::record::{SourceBatch, StreamRole};
use crate::source::SourceError;

/// What a source thread sends to the engine.
#[derive(Debug)]
pub enum SourceMessage {
    /// A validated batch.
    Batch(SourceBatch),
    /// The source has ended (or was stopped).
    End,
    /// The source failed.
    Failed(SourceError),
}

/// One source as the merger sees it.
pub struct MergeInput {
    /// Config name, for errors.
    pub name: String,
    /// Batches from the source thread.
    pub rx: Receiver<SourceMessage>,
    /// Whether the source ends by itself.
    pub bounded: bool,
    /// The streams it carries.
    pub roles: Vec<StreamRole>,
}

/// Most batches queued per source while a lane waits for data.
pub const MAX_QUEUED: usize = 16;

struct Head {
    batch: SourceBatch,
    times: ScalarBuffer<i64>,
    cursor: usize,
    /// Sequence number of the batch, unique within the run.
    id: u64,
}

struct InputState {
    input: MergeInput,
    /// Queued batches per role (index 0 events, 1 labels).
    lanes: [VecDeque<Head>; 2],
    finished: bool,
}

impl InputState {
    fn queued(&self) -> usize {
        self.lanes[0].len() + self.lanes[1].len()
    }

    /// Whether a lane this source carries is empty.
    fn starving(&self) -> bool {
        self.input.roles.iter().any(|r| self.lanes[lane(*r)].is_empty())
    }
}

fn lane(role: StreamRole) -> usize {
    (role == StreamRole::Labels) as usize
}

/// The next thing the engine should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Process rows `start..end` of the head batch of input `input`.
    Run {
        /// Index of the input.
        input: usize,
        /// First row.
        start: usize,
        /// One past the last row.
        end: usize,
    },
    /// Only idle unbounded sources remain; poll again (after checking for a stop request).
    Idle,
    /// Every source has ended.
    Done,
}

/// See the module docs.
pub struct StreamMerger {
    inputs: Vec<InputState>,
    next_id: u64,
    time_column: [String; 2],
    idle_timeout: Duration,
}

impl StreamMerger {
    /// A merger over `inputs`; `event_time` and `label_time` name the time columns of the two
    /// roles.
    pub fn new(inputs: Vec<MergeInput>, event_time: &str, label_time: &str, idle_timeout: Duration) -> Self {
        StreamMerger {
            inputs: inputs
                .into_iter()
                .map(|input| InputState { input, lanes: [VecDeque::new(), VecDeque::new()], finished: false })
                .collect(),
            next_id: 0,
            time_column: [event_time.to_string(), label_time.to_string()],
            idle_timeout,
        }
    }

    /// The batch at the head of input `i`.
    ///
    /// # Panics
    /// When input `i` has no head batch, which only happens if called outside a [`Next::Run`].
    pub fn head(&self, i: usize) -> &SourceBatch {
        &self.inputs[i / 2].lanes[i % 2].front().expect("merger head requested outside a run").batch
    }

    /// A number identifying the head batch of lane `i` (unique within the run), so callers can
    /// cache what they derive from a batch across its runs.
    pub fn head_id(&self, i: usize) -> u64 {
        self.inputs[i / 2].lanes[i % 2].front().map_or(u64::MAX, |h| h.id)
    }

    /// Event times of the head batch of lane `i`.
    pub fn head_times(&self, i: usize) -> &[i64] {
        self.inputs[i / 2].lanes[i % 2].front().map(|h| &h.times[..]).unwrap_or(&[])
    }

    /// Marks rows of lane `i` up to `end` as processed; returns whether that finished the
    /// lane's head batch.
    pub fn consume(&mut self, i: usize, end: usize) -> bool {
        let lane = &mut self.inputs[i / 2].lanes[i % 2];
        if let Some(h) = lane.front_mut() {
            h.cursor = end;
            if h.cursor >= h.batch.batch.num_rows() {
                lane.pop_front();
                return true;
            }
        }
        false
    }

    /// Stops waiting for unbounded sources (after a stop request): what they already sent is
    /// still processed, nothing more is read.
    pub fn stop_waiting(&mut self) {
        for s in &mut self.inputs {
            if !s.input.bounded {
                s.finished = true;
            }
        }
    }

    /// Waits for what is needed and returns the next run.
    ///
    /// # Errors
    /// When a source failed, or sent a batch without its time column.
    pub fn next_run(&mut self) -> Result<Next, SourceError> {
        for i in 0..self.inputs.len() {
            self.fill(i)?;
        }
        let mut best: Option<(i64, StreamRole, usize)> = None;
        let mut second: Option<(i64, StreamRole, usize)> = None;
        let heads = self.inputs.iter().enumerate().flat_map(|(i, s)| {
            s.lanes
                .iter()
                .enumerate()
                .filter_map(move |(l, q)| q.front().map(|h| (h.times[h.cursor], h.batch.role, 2 * i + l)))
        });
        for k in heads {
            {
                if best.is_none_or(|b| k < b) {
                    second = best;
                    best = Some(k);
                } else if second.is_none_or(|b| k < b) {
                    second = Some(k);
                }
            }
        }
        let Some((_, role, input)) = best else {
            return Ok(if self.inputs.iter().all(|s| s.finished) { Next::Done } else { Next::Idle });
        };
        let head = self.inputs[input / 2].lanes[input % 2].front().expect("best lane has a head");
        let start = head.cursor;
        let len = head.times.len();
        let end = match second {
            None => len,
            Some(bound) => {
                let mut end = start + 1;
                while end < len && (head.times[end], role, input) < bound {
                    end += 1;
                }
                end
            }
        };
        Ok(Next::Run { input, start, end })
    }

    fn fill(&mut self, i: usize) -> Result<(), SourceError> {
        let state = &mut self.inputs[i];
        while !state.finished && state.starving() && state.queued() < MAX_QUEUED {
            let msg = if state.input.bounded {
                match state.input.rx.recv() {
                    Ok(m) => m,
                    Err(_) => SourceMessage::End,
                }
            } else {
                match state.input.rx.recv_timeout(self.idle_timeout) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => return Ok(()),
                    Err(RecvTimeoutError::Disconnected) => SourceMessage::End,
                }
            };
            match msg {
                SourceMessage::Batch(b) if b.batch.num_rows() == 0 => {}
                SourceMessage::Batch(b) => {
                    let col = &self.time_column[(b.role == StreamRole::Labels) as usize];
                    let times = b
                        .batch
                        .column_by_name(col)
                        .and_then(|c| c.as_primitive_opt::<Int64Type>())
                        .map(|a| a.values().clone())
                        .ok_or_else(|| {
                            SourceError::new(
                                &state.input.name,
                                format!("internal error: batch without an Int64 time column `{col}` (a bug in the source)"),
                            )
                        })?;
                    let id = self.next_id;
                    self.next_id += 1;
                    state.lanes[lane(b.role)].push_back(Head { batch: b, times, cursor: 0, id });
                }
                SourceMessage::End => state.finished = true,
                SourceMessage::Failed(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch};
    use std::sync::Arc;

    fn batch(role: StreamRole, times: &[i64]) -> SourceMessage {
        let b =
            RecordBatch::try_from_iter([("ts", Arc::new(Int64Array::from(times.to_vec())) as _)]).unwrap();
        SourceMessage::Batch(SourceBatch { role, batch: b, offsets: (0..times.len() as u64).collect() })
    }

    fn order(inputs: Vec<Vec<SourceMessage>>) -> Vec<(usize, i64)> {
        let mut ins = Vec::new();
        for (i, msgs) in inputs.into_iter().enumerate() {
            let (tx, rx) = crossbeam_channel::unbounded();
            for m in msgs {
                tx.send(m).unwrap();
            }
            tx.send(SourceMessage::End).unwrap();
            let roles = vec![if i == 0 { StreamRole::Events } else { StreamRole::Labels }];
            ins.push(MergeInput { name: format!("s{i}"), rx, bounded: true, roles });
        }
        let mut m = StreamMerger::new(ins, "ts", "ts", Duration::from_millis(10));
        let mut out = Vec::new();
        while let Next::Run { input, start, end } = m.next_run().unwrap() {
            for r in start..end {
                out.push((input / 2, m.head_times(input)[r]));
            }
            m.consume(input, end);
        }
        out
    }

    #[test]
    fn merges_by_time_with_events_before_labels_on_ties() {
        let got = order(vec![
            vec![batch(StreamRole::Events, &[1, 3, 5]), batch(StreamRole::Events, &[7])],
            vec![batch(StreamRole::Labels, &[3, 4]), batch(StreamRole::Labels, &[8])],
        ]);
        assert_eq!(got, vec![(0, 1), (0, 3), (1, 3), (1, 4), (0, 5), (0, 7), (1, 8)]);
    }

    /// The merger compares heads only: once 5 is the head of input 0, label 3 goes first and
    /// the rest of input 0 keeps its own (unsorted) order.
    #[test]
    fn unsorted_input_keeps_its_own_order() {
        let got =
            order(vec![vec![batch(StreamRole::Events, &[5, 1, 2])], vec![batch(StreamRole::Labels, &[3])]]);
        assert_eq!(got, vec![(1, 3), (0, 5), (0, 1), (0, 2)]);
    }
}
