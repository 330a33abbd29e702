//! What flows between stages: decoded batches tagged with their stream role and source
//! offsets, and the dead letters rejected on the way.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;

/// Which stream a batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRole {
    /// Events to score (and later learn from, once labelled).
    Events,
    /// Labels that join events by key.
    Labels,
}

impl StreamRole {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamRole::Events => "events",
            StreamRole::Labels => "labels",
        }
    }
}

/// A decoded, validated batch from one source.
///
/// Sources normalise what they decode so that the engine never re-checks rows: the key column
/// is non-null `Utf8`, the time column non-null `Int64` epoch milliseconds, numeric fields
/// `Float64` and finite, categoricals `Utf8`, booleans `Boolean`, and (for labels) the label
/// column a finite `Float64`.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// The stream this batch belongs to.
    pub role: StreamRole,
    /// The rows.
    pub batch: RecordBatch,
    /// Source offset of each row (for files: the 0-based line index).
    pub offsets: Vec<u64>,
    /// Records of the same stretch of input that were rejected. They travel with the batch, not
    /// on a side channel, so that they are emitted and counted exactly when the engine takes
    /// the batch — which is what keeps dead letters consistent with checkpoints.
    pub dead_letters: Vec<DeadLetter>,
    /// Where the source resumes after this batch; `None` for sources that cannot resume
    /// (stdin).
    pub position: Option<SourcePosition>,
    /// The batch's number among those whose windowed aggregates a source thread computed
    /// (`window_features.rs`), so a checkpoint knows which batches the aggregates have seen.
    pub aggregated: Option<u64>,
    /// Blank lines of the same stretch of input, skipped; counted when the engine takes the
    /// batch, like its dead letters.
    pub blank_lines: u64,
}

impl SourceBatch {
    /// A batch of `role` rows with their offsets, no dead letters and no position.
    pub fn new(role: StreamRole, batch: RecordBatch, offsets: Vec<u64>) -> Self {
        SourceBatch {
            role,
            batch,
            offsets,
            dead_letters: Vec::new(),
            position: None,
            aggregated: None,
            blank_lines: 0,
        }
    }
}

/// A record that could not be used, kept with everything needed to find and fix it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    /// Name of the source (its key in the config).
    pub source: String,
    /// Source offset of the record (for files: the 0-based line index).
    pub offset: u64,
    /// Short machine-friendly reason class, e.g. `malformed`, `missing_key`, `non_finite`.
    pub reason: String,
    /// Human explanation.
    pub detail: String,
    /// The raw record as read (truncated to a few KiB).
    pub record: String,
}

/// Longest raw record kept in a dead letter.
pub const MAX_DEAD_LETTER_RECORD: usize = 4096;

impl DeadLetter {
    /// A dead letter with the raw record truncated to [`MAX_DEAD_LETTER_RECORD`] bytes.
    pub fn new(source: &str, offset: u64, reason: &str, detail: impl Into<String>, record: &str) -> Self {
        let mut end = record.len().min(MAX_DEAD_LETTER_RECORD);
        while !record.is_char_boundary(end) {
            end -= 1;
        }
        DeadLetter {
            source: source.to_string(),
            offset,
            reason: reason.to_string(),
            detail: detail.into(),
            record: record[..end].to_string(),
        }
    }
}

/// Where a source resumes after a restart: just past the last batch the engine took from it.
///
/// A checkpoint stores one per source, next to the state that reflects exactly the rows before
/// it (rows the engine had taken but not yet processed are checkpointed with the state), so a
/// restored pipeline reads every record once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourcePosition {
    /// Newline-delimited text: the next line's index and byte offset.
    Lines {
        /// 0-based index of the next line.
        line: u64,
        /// Byte offset of the next line.
        byte: u64,
    },
    /// Row-oriented input (Arrow IPC files, generators): rows already handed over.
    Rows {
        /// Number of rows handed over.
        rows: u64,
    },
    /// A generator: batches handed over (it regenerates and discards them to resume, which
    /// reproduces its random state exactly).
    Batches {
        /// Number of batches handed over.
        batches: u64,
    },
    /// A partitioned stream topic: the next offset to read in each partition.
    Partitions {
        /// Partition number to next offset.
        next: BTreeMap<u32, i64>,
    },
}
