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

use crate::error::CheckpointError;
use crate::record::{DeadLetter, SourceBatch, StreamRole};
use crate::source::{SourceError, SourcePosition};

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
    /// Where the source resumes after the last batch the merger took from it.
    position: Option<SourcePosition>,
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
    /// Dead letters of the batches taken so far, waiting for the engine to emit them.
    dead_letters: Vec<DeadLetter>,
    /// Blank lines of the batches taken, not yet counted by the engine.
    blank_lines: u64,
    /// The highest `SourceBatch::aggregated` of the batches taken so far.
    aggregated: u64,
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
                .map(|input| InputState {
                    input,
                    lanes: [VecDeque::new(), VecDeque::new()],
                    finished: false,
                    position: None,
                })
                .collect(),
            dead_letters: Vec::new(),
            blank_lines: 0,
            aggregated: 0,
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

    /// Dead letters of the batches taken since the last call, in the order taken.
    pub fn take_dead_letters(&mut self) -> Vec<DeadLetter> {
        std::mem::take(&mut self.dead_letters)
    }

    /// The blank lines skipped in the batches taken since the last call.
    pub fn take_blank_lines(&mut self) -> u64 {
        std::mem::take(&mut self.blank_lines)
    }

    /// The rows taken from the sources but not yet processed, and each source's resume
    /// position: with the engine's state, a complete picture of the run at this instant.
    ///
    /// # Errors
    /// When a batch cannot be encoded (which would be a bug).
    pub fn snapshot(&self) -> Result<MergerState, CheckpointError> {
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for s in &self.inputs {
            let mut queued = Vec::new();
            for lane in &s.lanes {
                for h in lane {
                    let rows = h.batch.batch.num_rows() - h.cursor;
                    let batch = h.batch.batch.slice(h.cursor, rows);
                    queued.push(QueuedBatch {
                        role: h.batch.role,
                        ipc: encode_ipc(&batch)?,
                        offsets: h.batch.offsets[h.cursor..].to_vec(),
                    });
                }
            }
            inputs.push(InputSnapshot {
                name: s.input.name.clone(),
                position: s.position.clone(),
                finished: s.finished && s.input.bounded,
                queued,
            });
        }
        Ok(MergerState { inputs })
    }

    /// Puts back the rows of a snapshot (before the first [`StreamMerger::next_run`]).
    ///
    /// # Errors
    /// When the snapshot's sources are not this merger's, or a batch cannot be decoded.
    pub fn restore(&mut self, state: MergerState) -> Result<(), CheckpointError> {
        let names: Vec<&str> = self.inputs.iter().map(|s| s.input.name.as_str()).collect();
        let saved: Vec<&str> = state.inputs.iter().map(|s| s.name.as_str()).collect();
        if names != saved {
            return Err(CheckpointError::Restore(format!(
                "the checkpoint has sources {saved:?} but the pipeline has {names:?}"
            )));
        }
        for (s, snap) in self.inputs.iter_mut().zip(state.inputs) {
            s.position = snap.position;
            for q in snap.queued {
                let batch = decode_ipc(&q.ipc)?;
                let col = &self.time_column[(q.role == StreamRole::Labels) as usize];
                let times = batch
                    .column_by_name(col)
                    .and_then(|c| c.as_primitive_opt::<Int64Type>())
                    .map(|a| a.values().clone())
                    .ok_or_else(|| {
                        CheckpointError::Restore(format!(
                            "checkpointed batch of `{}` lacks its time column `{col}`",
                            snap.name
                        ))
                    })?;
                let id = self.next_id;
                self.next_id += 1;
                let batch = SourceBatch::new(q.role, batch, q.offsets);
                s.lanes[lane(q.role)].push_back(Head { batch, times, cursor: 0, id });
            }
        }
        Ok(())
    }

    /// Each source's resume position, by source name.
    pub fn positions(&self) -> Vec<(String, Option<SourcePosition>)> {
        self.inputs.iter().map(|s| (s.input.name.clone(), s.position.clone())).collect()
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

    /// Takes batches from input `i` while one of its lanes is empty (and the queue has room).
    fn fill(&mut self, i: usize) -> Result<(), SourceError> {
        loop {
            let state = &self.inputs[i];
            if state.finished || !state.starving() || state.queued() >= MAX_QUEUED {
                return Ok(());
            }
            let msg = if state.input.bounded {
                state.input.rx.recv().unwrap_or(SourceMessage::End)
            } else {
                match state.input.rx.recv_timeout(self.idle_timeout) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => return Ok(()),
                    Err(RecvTimeoutError::Disconnected) => SourceMessage::End,
                }
            };
            self.take(i, msg)?;
        }
    }

    /// Takes batches from the source whose thread computes the windowed aggregates until the
    /// batch numbered `through` (`SourceBatch::aggregated`) is among them, however full the
    /// queue: a checkpoint needs every batch the aggregates' state has seen.
    ///
    /// # Errors
    /// When the source failed, or ended without sending that batch (a bug).
    pub fn take_aggregated(&mut self, through: u64) -> Result<(), SourceError> {
        while self.aggregated < through {
            let Some(i) =
                self.inputs.iter().position(|s| s.input.roles.contains(&StreamRole::Events) && !s.finished)
            else {
                return Err(SourceError::new(
                    "merger",
                    format!(
                        "internal error: the events source ended before sending aggregated batch {through}"
                    ),
                ));
            };
            // The source thread computed the batch and is about to send it (or is waiting
            // for room in the channel, which this makes).
            let msg = self.inputs[i].input.rx.recv().unwrap_or(SourceMessage::End);
            self.take(i, msg)?;
        }
        Ok(())
    }

    /// Queues what input `i` sent.
    fn take(&mut self, i: usize, mut msg: SourceMessage) -> Result<(), SourceError> {
        let state = &mut self.inputs[i];
        if let SourceMessage::Batch(b) = &mut msg {
            // Taking a batch is what moves the source's resume position and releases its
            // dead letters, so both stay consistent with checkpoints.
            self.dead_letters.append(&mut b.dead_letters);
            self.blank_lines += std::mem::take(&mut b.blank_lines);
            if b.position.is_some() {
                state.position = b.position.take();
            }
            if let Some(n) = b.aggregated {
                self.aggregated = self.aggregated.max(n);
            }
        }
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
        Ok(())
    }
}

/// A checkpointed merger: per source, its resume position and the rows taken but not processed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergerState {
    /// One per source, in pipeline order.
    pub inputs: Vec<InputSnapshot>,
}

/// One source in a [`MergerState`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputSnapshot {
    /// Config name.
    pub name: String,
    /// Where the source resumes.
    pub position: Option<SourcePosition>,
    /// Whether the (bounded) source had ended.
    pub finished: bool,
    /// Rows taken but not processed, per batch.
    pub queued: Vec<QueuedBatch>,
}

/// Rows of one batch in a [`MergerState`], as an Arrow IPC stream (keeps every type exact).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueuedBatch {
    /// Stream role.
    pub role: StreamRole,
    /// The rows, as an Arrow IPC stream.
    pub ipc: Vec<u8>,
    /// Source offsets of the rows.
    pub offsets: Vec<u64>,
}

fn encode_ipc(batch: &arrow_array::RecordBatch) -> Result<Vec<u8>, CheckpointError> {
    let encode = |e: arrow_schema::ArrowError| CheckpointError::Encode(format!("queued batch: {e}"));
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).map_err(encode)?;
    w.write(batch).map_err(encode)?;
    w.finish().map_err(encode)?;
    drop(w);
    Ok(out)
}

fn decode_ipc(bytes: &[u8]) -> Result<arrow_array::RecordBatch, CheckpointError> {
    let bad = |e: arrow_schema::ArrowError| CheckpointError::Restore(format!("checkpointed batch: {e}"));
    let mut r = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(bad)?;
    r.next().ok_or_else(|| CheckpointError::Restore("checkpointed batch: empty stream".into()))?.map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch};
    use std::sync::Arc;

    fn batch(role: StreamRole, times: &[i64]) -> SourceMessage {
        let b =
            RecordBatch::try_from_iter([("ts", Arc::new(Int64Array::from(times.to_vec())) as _)]).unwrap();
        SourceMessage::Batch(SourceBatch::new(role, b, (0..times.len() as u64).collect()))
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

    /// Rows taken but not processed survive a snapshot: a merger restored from it hands out
    /// exactly the rows the first one still had, in the same order, then reads on.
    #[test]
    fn snapshot_restores_unprocessed_rows_and_positions() {
        let make = |msgs: Vec<SourceMessage>, end: bool| {
            let (tx, rx) = crossbeam_channel::unbounded();
            for m in msgs {
                tx.send(m).unwrap();
            }
            if end {
                tx.send(SourceMessage::End).unwrap();
            }
            MergeInput { name: "s".into(), rx, bounded: true, roles: vec![StreamRole::Events] }
        };
        let mut first = batch(StreamRole::Events, &[1, 2, 3, 4]);
        if let SourceMessage::Batch(b) = &mut first {
            b.position = Some(SourcePosition::Lines { line: 4, byte: 40 });
            b.dead_letters.push(DeadLetter::new("s", 2, "malformed", "x", "{"));
        }
        let mut m = StreamMerger::new(vec![make(vec![first], false)], "ts", "ts", Duration::from_millis(10));
        let Next::Run { input, .. } = m.next_run().unwrap() else { panic!("expected a run") };
        m.consume(input, 2);
        assert_eq!(m.take_dead_letters().len(), 1);
        let state = m.snapshot().unwrap();
        assert_eq!(state.inputs[0].position, Some(SourcePosition::Lines { line: 4, byte: 40 }));

        let mut restored = StreamMerger::new(
            vec![make(vec![batch(StreamRole::Events, &[5])], true)],
            "ts",
            "ts",
            Duration::from_millis(10),
        );
        restored.restore(state.clone()).unwrap();
        let mut seen = Vec::new();
        while let Next::Run { input, start, end } = restored.next_run().unwrap() {
            seen.extend_from_slice(&restored.head_times(input)[start..end]);
            restored.consume(input, end);
        }
        assert_eq!(seen, vec![3, 4, 5]);
        assert_eq!(restored.positions()[0].1, Some(SourcePosition::Lines { line: 4, byte: 40 }));
        let other = StreamMerger::new(
            vec![MergeInput { name: "t".into(), ..make(vec![], true) }],
            "ts",
            "ts",
            Duration::from_millis(10),
        );
        let mut other = other;
        assert!(other.restore(state).unwrap_err().to_string().contains("sources"));
    }

    /// A checkpoint with the aggregates on a source thread takes every batch they computed,
    /// past the queue's usual bound, and no more.
    #[test]
    fn take_aggregated_takes_through_the_numbered_batch() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let n = MAX_QUEUED as u64 + 4;
        for i in 1..=n + 2 {
            let SourceMessage::Batch(mut b) = batch(StreamRole::Events, &[i as i64]) else { unreachable!() };
            b.aggregated = Some(i);
            b.position = Some(SourcePosition::Lines { line: i, byte: 10 * i });
            tx.send(SourceMessage::Batch(b)).unwrap();
        }
        let input = MergeInput { name: "s".into(), rx, bounded: true, roles: vec![StreamRole::Events] };
        let mut m = StreamMerger::new(vec![input], "ts", "ts", Duration::from_millis(10));
        m.take_aggregated(n).unwrap();
        let state = m.snapshot().unwrap();
        assert_eq!(state.inputs[0].queued.len(), n as usize);
        assert_eq!(state.inputs[0].position, Some(SourcePosition::Lines { line: n, byte: 10 * n }));
        m.take_aggregated(3).unwrap();
        assert_eq!(m.snapshot().unwrap().inputs[0].queued.len(), n as usize, "already taken");
        drop(tx);
        assert!(m.take_aggregated(n + 5).unwrap_err().to_string().contains("ended before"));
    }
}
