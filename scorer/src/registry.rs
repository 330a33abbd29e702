//! The model registry: a directory of immutable, versioned snapshots with their lineage.
//!
//! ```text
//! models/quickstart/
//!   v00000001.eddy     snapshot (see `snapshot`), never modified after it is written
//!   v00000001.json     its manifest: lineage, data range, metrics, device, …
//!   v00000002.eddy
//!   v00000002.json
//!   CURRENT            "v00000002.eddy\n": the version scorers serve
//!   history.jsonl      one JSON line per change of CURRENT, with the reason
//! ```
//!
//! Every file is written to a temporary name, fsynced, renamed into place, and the directory
//! is fsynced, so a crash leaves either the old or the new file, never a torn one. A version's
//! snapshot and manifest are durable *before* `CURRENT` names it, so a scorer that follows
//! `CURRENT` never finds a missing file. Changing `CURRENT` is a single `rename`, which is
//! atomic on POSIX file systems: a reader sees the old pointer or the new one.
//!
//! One process writes a registry (the engine, or the `eddy models` CLI while the engine is
//! stopped); any number of scorers read it. Within a process, writes are serialised.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::snapshot::{encode_snapshot_as, LoadedModel, ModelSnapshot, SnapshotError, Validation};

/// Name of the pointer file.
pub const CURRENT_FILE: &str = "CURRENT";
/// Name of the pointer-change log.
pub const HISTORY_FILE: &str = "history.jsonl";

/// File name of a version's snapshot: `v00000042.eddy` (sorts by version up to 10^8).
pub fn snapshot_file_name(version: u64) -> String {
    format!("v{version:08}.eddy")
}

/// File name of a version's manifest: `v00000042.json`.
pub fn manifest_file_name(version: u64) -> String {
    format!("v{version:08}.json")
}

/// Parses a snapshot file name back into its version; `None` for anything else, which also
/// keeps a hand-edited `CURRENT` from pointing outside the directory.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('v')?.strip_suffix(".eddy")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What went wrong with a registry directory.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A file of the registry could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot rename", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot was rejected.
    #[error("snapshot {path}: {source}")]
    Snapshot {
        /// The snapshot file (or `<memory>`).
        path: PathBuf,
        /// Why it was rejected.
        #[source]
        source: SnapshotError,
    },
    /// A manifest or history line is not valid JSON of the expected shape.
    #[error("manifest {path} is not valid: {source}; restore it from a backup or re-publish the version")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The directory has no `CURRENT` pointer yet.
    #[error(
        "{dir} has no {CURRENT_FILE} file: no model was promoted there yet (publish one, or check --dir)"
    )]
    NoCurrent {
        /// The registry directory.
        dir: PathBuf,
    },
    /// `CURRENT` does not name a snapshot file.
    #[error("{path} contains {content:?}, not a snapshot file name like \"v00000001.eddy\"; fix or rewrite it with `eddy models rollback --to V`")]
    BadPointer {
        /// The pointer file.
        path: PathBuf,
        /// What it contains.
        content: String,
    },
    /// The requested version does not exist.
    #[error("version {version} does not exist in {dir}; `eddy models list` shows the versions there")]
    UnknownVersion {
        /// The version asked for.
        version: u64,
        /// The registry directory.
        dir: PathBuf,
    },
    /// A version to publish is not newer than what the registry holds.
    #[error("cannot publish version {version} in {dir}: version {latest} already exists and versions only grow (publish with version 0 to get the next one)")]
    VersionNotNewer {
        /// The version asked for.
        version: u64,
        /// The highest version present.
        latest: u64,
        /// The registry directory.
        dir: PathBuf,
    },
}

/// A range of source offsets, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetRange {
    /// First offset learned from.
    pub first: u64,
    /// Last offset learned from.
    pub last: u64,
}

/// A range of event times in unix milliseconds, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Earliest event time learned from.
    pub min_ms: i64,
    /// Latest event time learned from.
    pub max_ms: i64,
}

/// What produced a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Producer {
    /// The champion's online learner, `updates` label updates after version `since`.
    Online {
        /// The version the updates started from (`None` for a model learned from scratch).
        since: Option<u64>,
        /// Number of online updates applied since then.
        updates: u64,
    },
    /// A full retrain.
    Retrain {
        /// What triggered it: `drift`, `schedule`, `label_count`, `manual`, …
        trigger: String,
    },
    /// Imported from another registry by [`ModelRegistry::promote_from`].
    Imported {
        /// The source registry directory.
        from_dir: String,
        /// The version there.
        from_version: u64,
        /// What produced it there.
        original: Box<Producer>,
    },
}

/// The lineage and provenance of one version: what `eddy models show` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The version (set by the registry when publishing).
    pub version: u64,
    /// The version this one was derived from, if any.
    pub parent: Option<u64>,
    /// The slot that produced it (`champion`, `shadow`, …).
    pub slot: String,
    /// How it was produced.
    pub produced_by: Producer,
    /// Source offsets learned from, per source/partition (e.g. `events/0`).
    #[serde(default)]
    pub source_offsets: BTreeMap<String, OffsetRange>,
    /// Event times learned from.
    pub event_time: Option<TimeRange>,
    /// Number of labelled examples learned from.
    pub examples: u64,
    /// Evaluation metrics at promotion (name → value). Non-finite values are stored as `null`
    /// and read back as NaN, since JSON has no NaN.
    #[serde(default, with = "finite_map")]
    pub metrics: BTreeMap<String, f64>,
    /// Device that trained it (`cpu`, `cuda:0`, …).
    pub device: String,
    /// Version of eddy that wrote it.
    pub eddy_version: String,
    /// Hash of the pipeline config that produced it.
    pub config_hash: String,
    /// Creation time, unix milliseconds (set by the registry if 0).
    pub created_unix_ms: u64,
    /// Snapshot file name (set by the registry).
    #[serde(default)]
    pub file: String,
    /// Snapshot size in bytes (set by the registry).
    #[serde(default)]
    pub file_bytes: u64,
    /// xxh3-64 of the snapshot payload, hex (set by the registry).
    #[serde(default)]
    pub payload_xxh3: String,
}

impl Manifest {
    /// A manifest with the provenance fields a caller must choose and everything else empty.
    pub fn new(slot: impl Into<String>, produced_by: Producer) -> Self {
        Manifest {
            version: 0,
            parent: None,
            slot: slot.into(),
            produced_by,
            source_offsets: BTreeMap::new(),
            event_time: None,
            examples: 0,
            metrics: BTreeMap::new(),
            device: "cpu".into(),
            eddy_version: env!("CARGO_PKG_VERSION").into(),
            config_hash: String::new(),
            created_unix_ms: 0,
            file: String::new(),
            file_bytes: 0,
            payload_xxh3: String::new(),
        }
    }
}

mod finite_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let v: BTreeMap<&String, Option<f64>> =
            m.iter().map(|(k, v)| (k, if v.is_finite() { Some(*v) } else { None })).collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let v = BTreeMap::<String, Option<f64>>::deserialize(d)?;
        Ok(v.into_iter().map(|(k, v)| (k, v.unwrap_or(f64::NAN))).collect())
    }
}

/// Why `CURRENT` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointerAction {
    /// A newly published version was promoted.
    Publish,
    /// An existing version was promoted (e.g. a shadow that passed the gate).
    Promote,
    /// CURRENT was moved back to an older version.
    Rollback,
    /// The producing pipeline restored a checkpoint: versions it published after that
    /// checkpoint were withdrawn (it publishes them again, identically) and CURRENT went back
    /// to what it was at the checkpoint.
    Restore,
    /// A model imported from another registry was promoted.
    Import,
}

/// One line of `history.jsonl`: a change of `CURRENT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointerChange {
    /// When, unix milliseconds.
    pub at_unix_ms: u64,
    /// What kind of change.
    pub action: PointerAction,
    /// The version served before (`None` for the first).
    pub from: Option<u64>,
    /// The version served after.
    pub to: u64,
    /// Why, in words.
    pub reason: String,
}

/// Durability of writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryOptions {
    /// fsync files and the directory. Turning it off keeps atomicity (temp + rename) but not
    /// durability across a power loss; meant for tests and benchmarks only.
    pub fsync: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions { fsync: true }
    }
}

/// A registry directory opened for reading and writing.
#[derive(Debug)]
pub struct ModelRegistry {
    dir: PathBuf,
    options: RegistryOptions,
    /// Serialises writes; holds the highest version known to exist once it was looked up, so
    /// publishing does not rescan the directory (which grows with every version).
    write_lock: Mutex<Option<u64>>,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RegistryError + 'a {
    move |source| RegistryError::Io { action, path: path.to_path_buf(), source }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Reads `CURRENT` in `dir`: the version it names, `None` when there is no pointer yet.
///
/// # Errors
///
/// [`RegistryError::Io`] when it cannot be read, [`RegistryError::BadPointer`] when it does
/// not name a snapshot file.
pub fn read_current(dir: &Path) -> Result<Option<u64>, RegistryError> {
    let path = dir.join(CURRENT_FILE);
    let content = match fs::read_to_string(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("cannot read", &path)(e)),
    };
    match parse_snapshot_file_name(content.trim()) {
        Some(v) => Ok(Some(v)),
        None => Err(RegistryError::BadPointer { path, content }),
    }
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename,
/// fsync of the directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], fsync: bool) -> Result<(), RegistryError> {
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let path = dir.join(name);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err("cannot create", &tmp))?;
        f.write_all(bytes).map_err(io_err("cannot write", &tmp))?;
        if fsync {
            f.sync_all().map_err(io_err("cannot fsync", &tmp))?;
        }
        drop(f);
        fs::rename(&tmp, &path).map_err(io_err("cannot rename into place", &path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), RegistryError> {
    // Directories can be opened and fsynced on Unix; elsewhere this is a no-op.
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("cannot fsync directory", dir))?;
    Ok(())
}

impl ModelRegistry {
    /// Opens (creating it if needed) the registry in `dir`, with fsync on.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] when the directory cannot be created.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, RegistryError> {
        Self::open_with(dir, RegistryOptions::default())
    }

    /// Opens the registry in `dir` with explicit options.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] when the directory cannot be created.
    pub fn open_with(dir: impl AsRef<Path>, options: RegistryOptions) -> Result<Self, RegistryError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err("cannot create registry directory", &dir))?;
        Ok(ModelRegistry { dir, options, write_lock: Mutex::new(None) })
    }

    /// The registry directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a version's snapshot file.
    pub fn snapshot_path(&self, version: u64) -> PathBuf {
        self.dir.join(snapshot_file_name(version))
    }

    /// Path of a version's manifest.
    pub fn manifest_path(&self, version: u64) -> PathBuf {
        self.dir.join(manifest_file_name(version))
    }

    /// All versions that have a snapshot file, ascending.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] when the directory cannot be listed.
    pub fn versions(&self) -> Result<Vec<u64>, RegistryError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("cannot list", &self.dir))? {
            let entry = entry.map_err(io_err("cannot list", &self.dir))?;
            if let Some(v) = entry.file_name().to_str().and_then(parse_snapshot_file_name) {
                out.push(v);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The highest version present, if any.
    ///
    /// # Errors
    ///
    /// As [`ModelRegistry::versions`].
    pub fn latest(&self) -> Result<Option<u64>, RegistryError> {
        Ok(self.versions()?.last().copied())
    }

    /// The version `CURRENT` names, if any.
    ///
    /// # Errors
    ///
    /// As [`read_current`].
    pub fn current(&self) -> Result<Option<u64>, RegistryError> {
        read_current(&self.dir)
    }

    /// Manifests of all versions, ascending by version.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] or [`RegistryError::Manifest`] for the first unreadable one.
    pub fn list(&self) -> Result<Vec<Manifest>, RegistryError> {
        self.versions()?.into_iter().map(|v| self.show(v)).collect()
    }

    /// The manifest of `version`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownVersion`] if it does not exist, [`RegistryError::Io`] or
    /// [`RegistryError::Manifest`] if its manifest cannot be read.
    pub fn show(&self, version: u64) -> Result<Manifest, RegistryError> {
        let path = self.manifest_path(version);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RegistryError::UnknownVersion { version, dir: self.dir.clone() })
            }
            Err(e) => return Err(io_err("cannot read", &path)(e)),
        };
        serde_json::from_slice(&text).map_err(|source| RegistryError::Manifest { path, source })
    }

    /// Loads and fully validates the snapshot of `version`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownVersion`] or [`RegistryError::Snapshot`].
    pub fn load(&self, version: u64) -> Result<LoadedModel, RegistryError> {
        let path = self.snapshot_path(version);
        if !path.exists() {
            return Err(RegistryError::UnknownVersion { version, dir: self.dir.clone() });
        }
        LoadedModel::open(&path, Validation::Full).map_err(|source| RegistryError::Snapshot { path, source })
    }

    /// The log of `CURRENT` changes, oldest first.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] or [`RegistryError::Manifest`] (for a malformed line).
    pub fn history(&self) -> Result<Vec<PointerChange>, RegistryError> {
        let path = self.dir.join(HISTORY_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot read", &path)(e)),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|source| RegistryError::Manifest { path: path.clone(), source })
            })
            .collect()
    }

    /// Writes `snapshot` and `manifest` durably as a new version and makes it `CURRENT`.
    /// Returns the version.
    ///
    /// The version is `snapshot.version` if that is non-zero (it must then be above every
    /// existing version), else the next one. The manifest's `version`, `file`, `file_bytes`,
    /// `payload_xxh3` (and `created_unix_ms` if 0) are filled in here.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Snapshot`] for an inconsistent model, [`RegistryError::VersionNotNewer`],
    /// or [`RegistryError::Io`] from writing; `CURRENT` is unchanged on any error.
    pub fn publish(&self, snapshot: &ModelSnapshot, manifest: Manifest) -> Result<u64, RegistryError> {
        self.publish_inner(snapshot, manifest, Some((PointerAction::Publish, "published")))
    }

    /// Like [`ModelRegistry::publish`] but leaves `CURRENT` alone: for shadow models and
    /// candidates that did not pass the promotion gate. [`ModelRegistry::promote`] can make it
    /// current later.
    ///
    /// # Errors
    ///
    /// As [`ModelRegistry::publish`].
    pub fn publish_without_promote(
        &self,
        snapshot: &ModelSnapshot,
        manifest: Manifest,
    ) -> Result<u64, RegistryError> {
        self.publish_inner(snapshot, manifest, None)
    }

    fn publish_inner(
        &self,
        snapshot: &ModelSnapshot,
        mut manifest: Manifest,
        promote: Option<(PointerAction, &str)>,
    ) -> Result<u64, RegistryError> {
        let mut known_latest = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let latest = match *known_latest {
            // Trust the cache only while the next slot is still free (another writer would
            // break that; a rescan then sees its versions).
            Some(l) if !self.snapshot_path(l + 1).exists() => l,
            _ => self.latest()?.unwrap_or(0),
        };
        let version = match snapshot.version {
            0 => latest + 1,
            v if v > latest => v,
            v => return Err(RegistryError::VersionNotNewer { version: v, latest, dir: self.dir.clone() }),
        };
        let bytes = encode_snapshot_as(snapshot, version).map_err(|source| RegistryError::Snapshot {
            path: PathBuf::from("<model to publish>"),
            source,
        })?;
        let header = crate::snapshot::read_header(&bytes).map_err(|source| RegistryError::Snapshot {
            path: PathBuf::from("<model to publish>"),
            source,
        })?;
        manifest.version = version;
        manifest.file = snapshot_file_name(version);
        manifest.file_bytes = bytes.len() as u64;
        manifest.payload_xxh3 = format!("{:016x}", header.payload_checksum);
        if manifest.created_unix_ms == 0 {
            manifest.created_unix_ms = now_ms();
        }
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|source| RegistryError::Manifest { path: self.manifest_path(version), source })?;
        // Manifest first, then the snapshot: `versions()` lists snapshot files, so a version
        // becomes visible only once both exist.
        write_atomic(&self.dir, &manifest_file_name(version), &json, self.options.fsync)?;
        write_atomic(&self.dir, &snapshot_file_name(version), &bytes, self.options.fsync)?;
        *known_latest = Some(version);
        if let Some((action, reason)) = promote {
            self.set_current_locked(version, action, reason)?;
        }
        Ok(version)
    }

    /// Makes an existing version `CURRENT` (e.g. a shadow model that passed the gate) after
    /// validating its snapshot, and records the change.
    ///
    /// # Errors
    ///
    /// [`RegistryError::UnknownVersion`], [`RegistryError::Snapshot`] if the file no longer
    /// validates, or [`RegistryError::Io`].
    pub fn promote(&self, version: u64, reason: &str) -> Result<PointerChange, RegistryError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.load(version)?;
        self.set_current_locked(version, PointerAction::Promote, reason)
    }

    /// Points `CURRENT` back at version `to` (after validating its snapshot) and records the
    /// rollback with `reason` in `history.jsonl`. No new version is created: the history log is
    /// what shows that the served model went back.
    ///
    /// # Errors
    ///
    /// As [`ModelRegistry::promote`].
    pub fn rollback(&self, to: u64, reason: &str) -> Result<PointerChange, RegistryError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.load(to)?;
        self.set_current_locked(to, PointerAction::Rollback, reason)
    }

    /// Withdraws every version after `keep_through` and points `CURRENT` at `current` (when it
    /// is not already there), for a pipeline that restores a checkpoint taken when
    /// `keep_through` was its last published version: it will publish the same versions again,
    /// bit for bit, so the registry must look as it did then. Returns the withdrawn versions.
    ///
    /// A scorer that already mapped a withdrawn version keeps serving it until the same
    /// version is published again (removing a mapped file does not invalidate the mapping).
    ///
    /// # Errors
    ///
    /// [`RegistryError::Io`] when a file cannot be removed or the pointer written.
    pub fn rewind(
        &self,
        keep_through: u64,
        current: Option<u64>,
        reason: &str,
    ) -> Result<Vec<u64>, RegistryError> {
        let mut known_latest = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let withdrawn: Vec<u64> = self.versions()?.into_iter().filter(|v| *v > keep_through).collect();
        for v in &withdrawn {
            for path in [self.snapshot_path(*v), self.manifest_path(*v)] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("cannot remove", &path)(e)),
                }
            }
        }
        *known_latest = None;
        let now = self.current().ok().flatten();
        if let Some(c) = current {
            if now != Some(c) {
                self.set_current_locked(c, PointerAction::Restore, reason)?;
            }
        }
        Ok(withdrawn)
    }

    /// Imports the current model of the registry in `other` as a new version here and makes it
    /// `CURRENT`. The manifest keeps the source's provenance (metrics, data range, device, …),
    /// with `parent` set to the version served here before and `produced_by` wrapped in
    /// [`Producer::Imported`]. Returns the new version.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NoCurrent`] if `other` serves nothing, any error of loading its
    /// snapshot or manifest, or of publishing here.
    pub fn promote_from(&self, other: impl AsRef<Path>, reason: &str) -> Result<u64, RegistryError> {
        let other = ModelRegistry {
            dir: other.as_ref().to_path_buf(),
            options: self.options,
            write_lock: Mutex::new(None),
        };
        let from_version =
            other.current()?.ok_or_else(|| RegistryError::NoCurrent { dir: other.dir.clone() })?;
        let model = other.load(from_version)?.to_model_snapshot();
        let source = other.show(from_version)?;
        let mut manifest = source.clone();
        manifest.parent = self.current()?;
        manifest.produced_by = Producer::Imported {
            from_dir: other.dir.display().to_string(),
            from_version,
            original: Box::new(source.produced_by),
        };
        manifest.created_unix_ms = 0;
        let snapshot = ModelSnapshot { version: 0, ..model };
        let reason = format!("imported v{from_version} from {}: {reason}", other.dir.display());
        self.publish_inner(&snapshot, manifest, Some((PointerAction::Import, &reason)))
    }

    fn set_current_locked(
        &self,
        version: u64,
        action: PointerAction,
        reason: &str,
    ) -> Result<PointerChange, RegistryError> {
        // A broken pointer must not block the write that repairs it.
        let from = self.current().ok().flatten();
        let pointer = format!("{}\n", snapshot_file_name(version));
        write_atomic(&self.dir, CURRENT_FILE, pointer.as_bytes(), self.options.fsync)?;
        let change =
            PointerChange { at_unix_ms: now_ms(), action, from, to: version, reason: reason.to_owned() };
        self.append_history(&change)?;
        Ok(change)
    }

    fn append_history(&self, change: &PointerChange) -> Result<(), RegistryError> {
        let path = self.dir.join(HISTORY_FILE);
        let mut line = serde_json::to_vec(change)
            .map_err(|source| RegistryError::Manifest { path: path.clone(), source })?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("cannot open for appending", &path))?;
        // One write call per line: with O_APPEND the line lands whole.
        f.write_all(&line).map_err(io_err("cannot append to", &path))?;
        if self.options.fsync {
            f.sync_all().map_err(io_err("cannot fsync", &path))?;
        }
        Ok(())
    }
}
