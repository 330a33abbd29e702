//! Checkpoints: the whole pipeline's state — every operator, the rows taken from sources but
//! not yet processed, each source's resume position and each sink's output position — written
//! as one file, so that a pipeline killed at any instant restarts from the last one and ends
//! exactly where an uninterrupted run would (the pipeline is deterministic).
//!
//! A checkpoint file is written to a temporary name, fsynced, renamed into place and the
//! directory fsynced: a crash leaves either the previous checkpoint or the new one, never a
//! torn file. Its header carries a magic, a format version, the fingerprint of the pipeline
//! configuration it belongs to and a checksum of the payload, so a corrupt or foreign file is
//! refused with an error that names it instead of being half-restored.
//!
//! Layout: `EDDYCKPT` · format version (u32 LE) · config fingerprint (u64 LE) · payload length
//! (u64 LE) · payload xxh3-64 (u64 LE) · payload ([`Checkpoint`] as MessagePack with field
//! names, via `rmp-serde`). MessagePack is self-describing (the tagged enums of the state need
//! that) and stores floats as their IEEE bits, so weights come back bit for bit; field names
//! make a mismatch fail loudly rather than shift values.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

pub use crate::error::CheckpointError;
use crate::merge::MergerState;
use crate::state::EngineState;
use crate::units::ConfigDuration;

/// How many events pass between two readings of the clock for `interval`.
const CLOCK_EVERY_EVENTS: u64 = 1024;

/// The file format version; bumped whenever the payload's shape changes. 2: windowed
/// aggregates computed on the events source's thread; queued events batches carry their
/// aggregate columns, and the aggregates' state no longer carries values computed ahead.
/// 3: the engine state is the struct of its parts' states (`state.rs`), learner states are
/// tagged by model family, retrain triggers are typed.
pub const FORMAT_VERSION: u32 = 3;
const MAGIC: &[u8; 8] = b"EDDYCKPT";
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8;
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".eddy";

fn default_keep() -> usize {
    2
}

/// `[checkpoint]`: where and how often the pipeline's state is saved.
///
/// ```toml
/// [checkpoint]
/// dir = "state/fraud"
/// interval = "10s"        # and/or
/// every_events = 1000000
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Directory of the checkpoint files (created when missing).
    pub dir: PathBuf,
    /// Checkpoint at least this often (wall clock).
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
    /// Checkpoint every this many events.
    #[serde(default)]
    pub every_events: Option<u64>,
    /// Checkpoint files kept (the newest ones); at least 1.
    #[serde(default = "default_keep")]
    pub keep: usize,
}

impl CheckpointConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.interval.is_none() && self.every_events.is_none() {
            out.push((
                "interval",
                "set `interval` (e.g. \"10s\") and/or `every_events`; a checkpoint is also written at shutdown"
                    .to_string(),
            ));
        }
        if self.every_events == Some(0) {
            out.push(("every_events", "must be at least 1".to_string()));
        }
        if self.interval.is_some_and(|d| d.0.is_zero()) {
            out.push(("interval", "must be longer than zero".to_string()));
        }
        if self.keep == 0 {
            out.push(("keep", "must be at least 1".to_string()));
        }
        out
    }
}

/// One checkpoint: see the module docs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint<'a> {
    /// Sequence number (1 for the first checkpoint of a state directory).
    pub sequence: u64,
    /// When it was taken, unix milliseconds.
    pub created_unix_ms: u64,
    /// Source positions and rows taken but not yet processed.
    pub merger: MergerState,
    /// Output position of each sink (by sink name) that can be cut back to one.
    pub sinks: Vec<(String, Option<u64>)>,
    /// The registry's `CURRENT` version at the checkpoint.
    pub registry_current: Option<u64>,
    /// The engine thread's state.
    pub engine: EngineState<'a>,
}

impl Checkpoint<'_> {
    /// The resume position of source `name`.
    pub fn source_position(&self, name: &str) -> Option<crate::source::SourcePosition> {
        self.merger.inputs.iter().find(|i| i.name == name).and_then(|i| i.position.clone())
    }

    /// The recorded output position of sink `name` (`None` when the sink recorded none, or is
    /// new).
    pub fn sink_position(&self, name: &str) -> Option<Option<u64>> {
        self.sinks.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }
}

/// The checkpoint files of one pipeline. See the module docs.
#[derive(Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
    fingerprint: u64,
    keep: usize,
    next_sequence: u64,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io { action, path: path.to_path_buf(), source }
}

impl CheckpointStore {
    /// Opens (creating) the state directory for a pipeline whose configuration has
    /// `fingerprint`.
    ///
    /// # Errors
    /// When the directory cannot be created or listed.
    pub fn open(dir: &Path, fingerprint: u64, keep: usize) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(io("cannot create the directory", dir))?;
        let mut store =
            CheckpointStore { dir: dir.to_path_buf(), fingerprint, keep: keep.max(1), next_sequence: 1 };
        store.next_sequence = store.sequences()?.last().map_or(1, |s| s + 1);
        Ok(store)
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sequence numbers of the checkpoint files present, oldest first.
    fn sequences(&self) -> Result<Vec<u64>, CheckpointError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io("cannot list", &self.dir))? {
            let entry = entry.map_err(io("cannot list", &self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = name.strip_prefix(PREFIX).and_then(|r| r.strip_suffix(SUFFIX)) {
                if let Ok(s) = seq.parse::<u64>() {
                    out.push(s);
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn path_of(&self, sequence: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{sequence:010}{SUFFIX}"))
    }

    /// The newest checkpoint, if any.
    ///
    /// # Errors
    /// When the newest file is corrupt or incompatible: it is refused, never skipped in favour
    /// of an older one (that would silently lose the outputs written since), and never
    /// half-restored.
    pub fn latest(&self) -> Result<Option<(PathBuf, Checkpoint<'static>)>, CheckpointError> {
        let Some(&seq) = self.sequences()?.last() else { return Ok(None) };
        let path = self.path_of(seq);
        let bytes = std::fs::read(&path).map_err(io("cannot read", &path))?;
        Ok(Some((path.clone(), self.decode(&path, &bytes)?)))
    }

    fn decode(&self, path: &Path, bytes: &[u8]) -> Result<Checkpoint<'static>, CheckpointError> {
        let corrupt = |why: String| CheckpointError::Corrupt { path: path.to_path_buf(), why };
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return Err(corrupt("not an eddy checkpoint (bad magic or too short)".into()));
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(CheckpointError::Incompatible {
                path: path.to_path_buf(),
                why: format!("format version {version}, this eddy reads version {FORMAT_VERSION}"),
            });
        }
        let fingerprint = u64_at(12);
        if fingerprint != self.fingerprint {
            return Err(CheckpointError::Incompatible {
                path: path.to_path_buf(),
                why: format!(
                    "written by a pipeline configuration with fingerprint {fingerprint:016x}, this one is {:016x}",
                    self.fingerprint
                ),
            });
        }
        let len = u64_at(20) as usize;
        let checksum = u64_at(28);
        let payload = &bytes[HEADER_LEN..];
        if payload.len() != len {
            return Err(corrupt(format!("payload is {} bytes, the header says {len}", payload.len())));
        }
        if xxh3_64(payload) != checksum {
            return Err(corrupt("payload checksum mismatch".into()));
        }
        rmp_serde::from_slice(payload).map_err(|e| corrupt(format!("payload does not decode: {e}")))
    }

    /// Writes `checkpoint` durably (temp file, fsync, rename, directory fsync), then removes
    /// the oldest files beyond `keep`. Returns the file and its size in bytes.
    ///
    /// # Errors
    /// When encoding or any file operation fails; the previous checkpoint is then intact.
    pub fn write(&mut self, checkpoint: &mut Checkpoint<'_>) -> Result<(PathBuf, u64), CheckpointError> {
        checkpoint.sequence = self.next_sequence;
        let payload =
            rmp_serde::to_vec_named(checkpoint).map_err(|e| CheckpointError::Encode(e.to_string()))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&self.fingerprint.to_le_bytes());
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        header.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
        let path = self.path_of(checkpoint.sequence);
        let tmp = path.with_extension("eddy.tmp");
        {
            let mut f = File::create(&tmp).map_err(io("cannot create", &tmp))?;
            f.write_all(&header).map_err(io("cannot write", &tmp))?;
            f.write_all(&payload).map_err(io("cannot write", &tmp))?;
            f.sync_all().map_err(io("cannot fsync", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io("cannot rename into place", &path))?;
        sync_dir(&self.dir)?;
        self.next_sequence += 1;
        let sequences = self.sequences()?;
        if sequences.len() > self.keep {
            for old in &sequences[..sequences.len() - self.keep] {
                let p = self.path_of(*old);
                std::fs::remove_file(&p).map_err(io("cannot remove", &p))?;
            }
        }
        Ok((path, (HEADER_LEN + payload.len()) as u64))
    }

    /// Moves every checkpoint file into a new `discarded-<unix ms>` subdirectory (for
    /// `--fresh`): nothing is deleted, and the next run starts from nothing. Returns that
    /// directory when anything was moved.
    ///
    /// # Errors
    /// When a file cannot be moved.
    pub fn discard_all(&mut self) -> Result<Option<PathBuf>, CheckpointError> {
        let sequences = self.sequences()?;
        if sequences.is_empty() {
            return Ok(None);
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let aside = self.dir.join(format!("discarded-{now}"));
        std::fs::create_dir_all(&aside).map_err(io("cannot create", &aside))?;
        for s in sequences {
            let from = self.path_of(s);
            let to = aside.join(from.file_name().expect("checkpoint files have names"));
            std::fs::rename(&from, &to).map_err(io("cannot move aside", &from))?;
        }
        sync_dir(&self.dir)?;
        self.next_sequence = 1;
        Ok(Some(aside))
    }
}

fn sync_dir(dir: &Path) -> Result<(), CheckpointError> {
    OpenOptions::new()
        .read(true)
        .open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot fsync the directory", dir))
}

/// Decides when to checkpoint and keeps what a checkpoint needs besides the state: the store,
/// how many sinks must answer a barrier, and where to tell each source that its position is
/// durable.
pub struct Checkpointer {
    pub(crate) store: CheckpointStore,
    interval: Option<std::time::Duration>,
    every_events: Option<u64>,
    last_at: std::time::Instant,
    last_events: u64,
    next_clock_check: u64,
    pub(crate) sinks: usize,
    pub(crate) commits: Vec<(String, crossbeam_channel::Sender<crate::source::SourcePosition>)>,
    pub(crate) registry_dir: Option<PathBuf>,
    metrics: CheckpointMetrics,
    /// Checkpoints written in this process.
    pub written: u64,
    /// Size of the largest one, bytes.
    pub last_bytes: u64,
    /// Longest pause, seconds.
    pub max_seconds: f64,
}

struct CheckpointMetrics {
    written: metrics::Counter,
    seconds: metrics::Histogram,
    bytes: metrics::Gauge,
    last_unix: metrics::Gauge,
}

impl Checkpointer {
    /// A checkpointer writing to `store` with the cadence of `config`.
    pub fn new(
        store: CheckpointStore,
        config: &CheckpointConfig,
        factory: &crate::metrics::MetricsFactory,
    ) -> Self {
        Checkpointer {
            store,
            interval: config.interval.map(|d| d.0),
            every_events: config.every_events,
            last_at: std::time::Instant::now(),
            last_events: 0,
            next_clock_check: 0,
            sinks: 0,
            commits: Vec::new(),
            registry_dir: None,
            metrics: CheckpointMetrics {
                written: factory.counter(&crate::metrics::CHECKPOINTS_TOTAL, &[]),
                seconds: factory.histogram(&crate::metrics::CHECKPOINT_SECONDS, &[]),
                bytes: factory.gauge(&crate::metrics::CHECKPOINT_BYTES, &[]),
                last_unix: factory.gauge(&crate::metrics::CHECKPOINT_LAST_UNIXTIME_SECONDS, &[]),
            },
            written: 0,
            last_bytes: 0,
            max_seconds: 0.0,
        }
    }

    /// Starts counting from a restored state that had processed `events`.
    pub fn resume_from(&mut self, events: u64) {
        self.last_events = events;
    }

    /// Whether a checkpoint is due after `events` events. Called between runs, which can be
    /// a row long, so the clock is read only every [`CLOCK_EVERY_EVENTS`] events.
    #[inline]
    pub(crate) fn due(&mut self, events: u64) -> bool {
        if self.every_events.is_some_and(|n| events >= self.last_events + n) {
            return true;
        }
        if self.interval.is_some() && events >= self.next_clock_check {
            self.next_clock_check = events + CLOCK_EVERY_EVENTS;
            return self.interval.is_some_and(|d| self.last_at.elapsed() >= d);
        }
        false
    }

    /// Whether a checkpoint is due while the input is idle: the interval has passed and
    /// something happened since the last one (a daemon waiting on quiet topics keeps its last
    /// checkpoint current without writing the same state again and again).
    pub(crate) fn due_idle(&self, events: u64) -> bool {
        events > self.last_events && self.interval.is_some_and(|d| self.last_at.elapsed() >= d)
    }

    /// Records a written checkpoint.
    pub(crate) fn done(&mut self, events: u64, bytes: u64, seconds: f64) {
        self.last_at = std::time::Instant::now();
        self.last_events = events;
        self.written += 1;
        self.last_bytes = self.last_bytes.max(bytes);
        self.max_seconds = self.max_seconds.max(seconds);
        self.metrics.written.increment(1);
        self.metrics.seconds.record(seconds);
        self.metrics.bytes.set(bytes as f64);
        self.metrics.last_unix.set(now_ms() as f64 / 1000.0);
    }
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use crate::label_join::LabelJoin;
    use crate::metrics::MetricsFactory;
    use crate::models::Models;
    use crate::monitors::Monitors;
    use std::borrow::Cow;

    /// Writes a checkpoint of a freshly built engine's parts into `store`.
    fn write_one(store: &mut CheckpointStore, events: u64) -> PathBuf {
        let mut spec = crate::spec::tests::spec();
        spec.registry = None;
        let factory = MetricsFactory::noop("test");
        let mut counters = Counters::new(0, &factory);
        for _ in 0..events {
            counters.next_event();
        }
        let join = LabelJoin::new(&spec.join, spec.slots.len());
        let models = Models::new(&spec, &factory).unwrap();
        let monitors = Monitors::new(&spec, &factory).unwrap();
        let mut checkpoint = Checkpoint {
            sequence: 0,
            created_unix_ms: now_ms(),
            merger: MergerState { inputs: Vec::new() },
            sinks: vec![("predictions".into(), Some(42))],
            registry_current: None,
            engine: EngineState {
                counters: counters.state(),
                join: Cow::Borrowed(&join),
                models: models.state(),
                monitors: monitors.state(),
                aggregates: None,
            },
        };
        store.write(&mut checkpoint).unwrap().0
    }

    #[test]
    fn the_newest_checkpoint_reads_back_and_only_keep_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path(), 7, 2).unwrap();
        assert!(store.latest().unwrap().is_none());
        for events in [10, 20, 30] {
            write_one(&mut store, events);
        }
        let (_, cp) = store.latest().unwrap().unwrap();
        assert_eq!(cp.sequence, 3);
        assert_eq!(cp.engine.events(), 30);
        assert_eq!(cp.sink_position("predictions"), Some(Some(42)));
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "keep = 2");
    }

    #[test]
    fn a_damaged_or_foreign_checkpoint_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::open(dir.path(), 7, 2).unwrap();
        let path = write_one(&mut store, 5);
        let foreign = CheckpointStore::open(dir.path(), 8, 2).unwrap();
        let err = foreign.latest().unwrap_err();
        assert!(matches!(err, CheckpointError::Incompatible { .. }), "{err}");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let err = store.latest().unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }
}
