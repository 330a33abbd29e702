//! The embedded [`Scorer`]: scores with whatever model a registry's `CURRENT` names, and swaps
//! in new versions without ever blocking a reader.
//!
//! The loaded model sits behind an [`ArcSwap`]: a score call takes a lock-free snapshot of the
//! pointer (no mutex, no allocation), scores, and reports the version of *that* model, so a
//! prediction and its version always belong together even while a reload swaps models
//! underneath. Reloads are serialised among themselves (so two concurrent reloads can never
//! store an older model over a newer one), but that lock is never taken on the scoring path.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::encoding::{Feature, RawValue};
use crate::registry::{read_current, snapshot_file_name, RegistryError};
use crate::snapshot::{LoadedModel, Validation};

/// A prediction and the version of the model that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// P(label = 1) for a logistic model, the score for a linear one.
    pub value: f32,
    /// Version of the model that computed `value`.
    pub version: u64,
}

/// What a [`Scorer::reload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// `CURRENT` still names the version being served.
    Unchanged {
        /// The version served.
        version: u64,
    },
    /// A new version was validated and swapped in.
    Swapped {
        /// Version served before.
        from: u64,
        /// Version served now.
        to: u64,
    },
    /// `CURRENT` still names the snapshot that was rejected last time (same file, same size):
    /// it is not re-validated, and the old model keeps serving.
    StillRejected {
        /// The rejected version.
        rejected: u64,
        /// The version served.
        serving: u64,
    },
}

/// Reusable scratch space for scoring named features without allocating: the encoded row and
/// the per-feature values. One per thread ([`Scorer::score`] keeps one in a thread-local), or
/// owned by the caller ([`Scorer::score_with`]).
#[derive(Debug, Default)]
pub struct ScoreBuffer {
    features: Vec<Feature>,
    // Always empty between calls; only its allocation is reused (see `with_values`).
    values: Vec<RawValue<'static>>,
}

impl ScoreBuffer {
    /// An empty buffer; it grows to the model's size on first use and then stays.
    pub fn new() -> Self {
        Self::default()
    }

    /// The row encoded by the last call (useful for debugging a prediction).
    pub fn encoded(&self) -> &[Feature] {
        &self.features
    }
}

/// Runs `f` with `buf`'s allocation viewed as an empty `Vec<RawValue<'a>>`.
fn with_values<'a, R>(buf: &mut Vec<RawValue<'static>>, f: impl FnOnce(&mut Vec<RawValue<'a>>) -> R) -> R {
    buf.clear();
    // SAFETY: `RawValue<'static>` and `RawValue<'a>` differ only in a lifetime, so they have
    // the same layout. The vector is empty on entry, and it is cleared before it is given back
    // below; `RawValue` is `Copy` (no drop glue), so even if `f` panics the stale values left
    // behind are never read: every use starts with `clear()`.
    let view: &mut Vec<RawValue<'a>> =
        unsafe { &mut *(buf as *mut Vec<RawValue<'static>>).cast::<Vec<RawValue<'a>>>() };
    let r = f(view);
    view.clear();
    r
}

thread_local! {
    static BUFFER: RefCell<ScoreBuffer> = RefCell::new(ScoreBuffer::new());
}

#[derive(Debug, Default)]
struct ReloadState {
    /// The last rejected target: (version, file length), so the same bad file is not
    /// re-validated (and re-counted) on every poll.
    rejected: Option<(u64, u64)>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    validation: Validation,
    model: ArcSwap<LoadedModel>,
    reload_lock: Mutex<ReloadState>,
    rejected_loads: AtomicU64,
    swaps: AtomicU64,
    last_error: ArcSwapOption<RegistryError>,
}

/// An embedded, hot-swappable scorer over a model registry directory.
///
/// Cheap to clone (one `Arc`), `Send + Sync`: hand a clone to every worker thread.
#[derive(Debug, Clone)]
pub struct Scorer {
    inner: Arc<Inner>,
}

impl Scorer {
    /// Opens the registry in `dir`, maps the snapshot `CURRENT` names and validates it fully
    /// (header, checksum, archive structure, encoding, finite weights).
    ///
    /// # Errors
    ///
    /// [`RegistryError::NoCurrent`] when nothing was promoted yet, [`RegistryError::BadPointer`],
    /// [`RegistryError::Io`], or [`RegistryError::Snapshot`] when the snapshot is rejected.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, RegistryError> {
        Self::open_with(dir, Validation::Full)
    }

    /// Like [`Scorer::open`] with an explicit validation level, used for this load and every
    /// reload. See [`Validation::Structural`] for what skipping the full pass gives up.
    ///
    /// # Errors
    ///
    /// As [`Scorer::open`].
    pub fn open_with(dir: impl AsRef<Path>, validation: Validation) -> Result<Self, RegistryError> {
        let dir = dir.as_ref().to_path_buf();
        let version = read_current(&dir)?.ok_or_else(|| RegistryError::NoCurrent { dir: dir.clone() })?;
        let model = load_version(&dir, version, validation)?;
        Ok(Scorer {
            inner: Arc::new(Inner {
                dir,
                validation,
                model: ArcSwap::from_pointee(model),
                reload_lock: Mutex::new(ReloadState::default()),
                rejected_loads: AtomicU64::new(0),
                swaps: AtomicU64::new(0),
                last_error: ArcSwapOption::empty(),
            }),
        })
    }

    /// The registry directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Version currently served.
    #[inline]
    pub fn version(&self) -> u64 {
        self.inner.model.load().version()
    }

    /// A handle on the model served now. It stays valid (and keeps its file mapped) for as
    /// long as it is held, even after a swap: use it to score a batch with one consistent
    /// version, or to resolve feature positions against the exact encoding that will score.
    pub fn model(&self) -> Arc<LoadedModel> {
        self.inner.model.load_full()
    }

    /// Scores named raw features. Names are resolved against the served model's encoding:
    /// unknown names are ignored and features not given are encoded as missing (a later
    /// duplicate name wins). Uses a thread-local buffer, so it allocates only the first time a
    /// thread scores (and for numeric values of categorical features, which are formatted).
    pub fn score(&self, features: &[(&str, RawValue<'_>)]) -> Prediction {
        BUFFER.with(|b| match b.try_borrow_mut() {
            Ok(mut buf) => self.score_with(features, &mut buf),
            // Only reachable if scoring re-enters itself on this thread; stay correct anyway.
            Err(_) => self.score_with(features, &mut ScoreBuffer::new()),
        })
    }

    /// Like [`Scorer::score`] with a caller-provided buffer.
    pub fn score_with(&self, features: &[(&str, RawValue<'_>)], buf: &mut ScoreBuffer) -> Prediction {
        let model = self.inner.model.load();
        let n = model.encoding().features.len();
        let ScoreBuffer { features: row, values } = buf;
        row.clear();
        with_values(values, |vals| {
            vals.resize(n, RawValue::Missing);
            for (name, value) in features {
                if let Some(i) = model.position(name) {
                    vals[i] = *value;
                }
            }
            model.encode_ordered(vals, row);
        });
        Prediction { value: model.score_sparse(row), version: model.version() }
    }

    /// Scores raw values given in the model's feature order (`values[i]` belongs to feature
    /// `i` of [`LoadedModel::encoding`]), skipping name resolution. `row` is caller scratch
    /// space; it is cleared first.
    pub fn score_ordered(&self, values: &[RawValue<'_>], row: &mut Vec<Feature>) -> Prediction {
        let model = self.inner.model.load();
        row.clear();
        model.encode_ordered(values, row);
        Prediction { value: model.score_sparse(row), version: model.version() }
    }

    /// Scores a dense vector: `x[i]` multiplies weight `i` (for an all-numeric/boolean
    /// encoding, feature `i`). No allocation, no lock.
    #[inline]
    pub fn score_dense(&self, x: &[f32]) -> Prediction {
        let model = self.inner.model.load();
        Prediction { value: model.score_dense(x), version: model.version() }
    }

    /// Scores an already-encoded sparse row (indices from [`LoadedModel::encode_ordered`] or an
    /// equivalent encoder; out-of-range indices contribute nothing). No allocation, no lock.
    #[inline]
    pub fn score_sparse(&self, row: &[Feature]) -> Prediction {
        let model = self.inner.model.load();
        Prediction { value: model.score_sparse(row), version: model.version() }
    }

    /// Re-reads `CURRENT` and, if it names another version, loads and validates that snapshot
    /// and swaps it in with one atomic store. On rejection the old model keeps serving,
    /// [`Scorer::rejected_loads`] grows and [`Scorer::last_error`] says why.
    ///
    /// # Errors
    ///
    /// The rejection: any error of reading `CURRENT` or loading the snapshot it names.
    pub fn reload(&self) -> Result<ReloadOutcome, Arc<RegistryError>> {
        let mut state = self.inner.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let serving = self.inner.model.load().version();
        let result = (|| {
            let dir = &self.inner.dir;
            let target = read_current(dir)?.ok_or_else(|| RegistryError::NoCurrent { dir: dir.clone() })?;
            if target == serving {
                return Ok(ReloadOutcome::Unchanged { version: serving });
            }
            let path = dir.join(snapshot_file_name(target));
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(u64::MAX);
            if state.rejected == Some((target, len)) {
                return Ok(ReloadOutcome::StillRejected { rejected: target, serving });
            }
            match load_version(dir, target, self.inner.validation) {
                Ok(model) => {
                    self.inner.model.store(Arc::new(model));
                    self.inner.swaps.fetch_add(1, Ordering::Relaxed);
                    state.rejected = None;
                    Ok(ReloadOutcome::Swapped { from: serving, to: target })
                }
                Err(e) => {
                    state.rejected = Some((target, len));
                    Err(e)
                }
            }
        })();
        result.map_err(|e| {
            let e = Arc::new(e);
            self.inner.rejected_loads.fetch_add(1, Ordering::Relaxed);
            self.inner.last_error.store(Some(Arc::clone(&e)));
            e
        })
    }

    /// How many reloads were rejected since the scorer was opened.
    pub fn rejected_loads(&self) -> u64 {
        self.inner.rejected_loads.load(Ordering::Relaxed)
    }

    /// How many times a new version was swapped in.
    pub fn swaps(&self) -> u64 {
        self.inner.swaps.load(Ordering::Relaxed)
    }

    /// The error of the last rejected reload, if any (kept after later successful reloads, so
    /// an operator can still see what went wrong).
    pub fn last_error(&self) -> Option<Arc<RegistryError>> {
        self.inner.last_error.load_full()
    }
}

fn load_version(dir: &Path, version: u64, validation: Validation) -> Result<LoadedModel, RegistryError> {
    let path = dir.join(snapshot_file_name(version));
    let model = LoadedModel::open(&path, validation)
        .map_err(|source| RegistryError::Snapshot { path: path.clone(), source })?;
    if model.version() != version {
        return Err(RegistryError::Snapshot {
            path,
            source: crate::snapshot::SnapshotError::Invalid(format!(
                "the file is named for version {version} but holds version {}",
                model.version()
            )),
        });
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn scorer_is_send_sync() {
        assert_send_sync::<Scorer>();
        assert_send_sync::<LoadedModel>();
    }
}
