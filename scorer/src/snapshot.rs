//! The snapshot file format: how a trained model leaves the engine and reaches a scorer.
//!
//! A snapshot holds everything needed to score *raw* features — the model kind, the weights,
//! the bias and the complete feature [`Encoding`] (names, kinds, standardisation statistics,
//! hashing bits and seed) — so a service never needs the engine's config to use it.
//!
//! # Layout
//!
//! ```text
//! offset  size  field (all integers little-endian)
//!      0     8  magic            b"EDDYSNAP"
//!      8     4  format version   1
//!     12     4  header length    64
//!     16     8  model version
//!     24     8  payload length   (bytes after the header; the file ends exactly there)
//!     32     8  payload checksum xxh3-64 of the payload
//!     40    16  reserved         zero
//!     56     8  header checksum  xxh3-64 of bytes 0..56
//!     64     …  payload          rkyv 0.8 archive of [`SnapshotV1`]
//! ```
//!
//! The fixed header is checked first, so a file from a newer eddy is reported as
//! [`SnapshotError::UnsupportedVersion`] and a damaged one as
//! [`SnapshotError::ChecksumMismatch`] before a single byte of the payload is interpreted.
//! Then rkyv's `bytecheck` validation proves the archive is structurally sound (every relative
//! pointer in bounds and aligned, every enum tag and `bool` valid, every string UTF-8), and
//! finally the semantic checks make sure the encoding and the weights agree (the weight count
//! is the encoding's `dim()`, statistics are finite, …).
//!
//! # Zero copy
//!
//! The payload starts 64 bytes into the file, and a memory map starts on a page boundary, so
//! the archive is 64-byte aligned in memory; rkyv lays the weights out as a contiguous,
//! 4-byte-aligned array of little-endian `f32`. On a little-endian target (x86-64, aarch64)
//! that array *is* a `&[f32]`, and the scorer reads it in place: opening a 2^20-weight model
//! does not copy 4 MiB. On a big-endian target the weights are converted once at load time
//! (correct, just not zero copy).
//!
//! The archive uses rkyv's default format (little-endian, aligned, 32-bit relative pointers);
//! the compile-time assertions below break the build if another crate in the graph turns on
//! rkyv's `big_endian`, `unaligned` or `pointer_width_*` features, which would silently change
//! the format.

use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::encoding::{Encoding, EncodingPlan, Feature, FeatureKind, FeatureSpec, NumericStats, RawValue};
use crate::model::{dense_score, linear_score, ModelKind};

/// First eight bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"EDDYSNAP";
/// The format version this build writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the fixed header; the payload starts here.
pub const HEADER_LEN: usize = 64;
/// Largest `hash_bits` a snapshot may use: 2^28 weights are 1 GiB, and rkyv's 32-bit relative
/// pointers cannot address an archive past 2 GiB.
pub const MAX_HASH_BITS: u32 = 28;

// The zero-copy weight view relies on rkyv's default archived `f32` being a plain 4-byte,
// 4-aligned value. `unaligned` would change the alignment; `pointer_width_64` would change the
// `Vec` layout. (Endianness is checked by the golden-bytes test and at load time.)
const _: () = {
    assert!(std::mem::size_of::<rkyv::Archived<f32>>() == 4);
    assert!(std::mem::align_of::<rkyv::Archived<f32>>() == 4);
    assert!(std::mem::size_of::<rkyv::Archived<u64>>() == 8);
    assert!(std::mem::align_of::<rkyv::Archived<u64>>() == 8);
    assert!(std::mem::size_of::<rkyv::vec::ArchivedVec<u8>>() == 8);
};

/// Why a snapshot was rejected. Every message says what is wrong and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file does not start with the snapshot magic: it is not a snapshot at all.
    #[error("not an eddy snapshot: the first bytes are {found:02x?}, expected {MAGIC:02x?} (\"EDDYSNAP\"); check that the path points at a v*.eddy file")]
    BadMagic {
        /// The first bytes found (up to eight).
        found: Vec<u8>,
    },
    /// The file was written in a format this build does not read.
    #[error("snapshot format version {found} is not supported (this eddy-scorer reads version {supported}); upgrade the scorer, or re-export the model with a matching eddy")]
    UnsupportedVersion {
        /// Format version in the file.
        found: u32,
        /// Format version this build reads.
        supported: u32,
    },
    /// The file is shorter than its header says: an interrupted copy or write.
    #[error("snapshot is truncated: {needed} bytes expected, {found} present; the file was cut short while being copied or written, publish it again")]
    Truncated {
        /// Bytes the header (or the fixed header itself) requires.
        needed: u64,
        /// Bytes present.
        found: u64,
    },
    /// The content does not match its checksum: the file was damaged after it was written.
    #[error("snapshot {what} checksum mismatch: stored {stored:016x}, computed {computed:016x}; the file is corrupted, restore it or roll back to another version")]
    ChecksumMismatch {
        /// Which checksum failed (`header` or `payload`).
        what: &'static str,
        /// Checksum stored in the header.
        stored: u64,
        /// Checksum of the bytes present.
        computed: u64,
    },
    /// The bytes are intact but do not describe a usable model (or the owned model handed to
    /// the encoder is inconsistent).
    #[error("invalid snapshot: {0}")]
    Invalid(String),
    /// The file could not be read.
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// A model as plain owned data: what the engine builds and hands to [`encode_snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSnapshot {
    /// Model version (assigned by the registry when publishing; any value otherwise).
    pub version: u64,
    /// What the linear score means.
    pub kind: ModelKind,
    /// How raw fields become the sparse vector.
    pub encoding: Encoding,
    /// One weight per index, `encoding.dim()` of them.
    pub weights: Vec<f32>,
    /// Intercept.
    pub bias: f32,
}

impl ModelSnapshot {
    /// Checks that the parts agree with each other, so that a model that could never be
    /// loaded is refused when it is written rather than when a service restarts.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Invalid`] naming the first inconsistency: hash bits above
    /// [`MAX_HASH_BITS`], a weight count other than `encoding.dim()`, a statistics count other
    /// than the feature count, duplicate feature names, non-finite or non-positive statistics
    /// of a numeric feature, or a non-finite weight or bias.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        let e = &self.encoding;
        check_hash_bits(e.hash_bits)?;
        if e.stats.len() != e.features.len() {
            return Err(invalid(format!(
                "{} statistics for {} features; give one NumericStats per feature (IDENTITY for non-numeric)",
                e.stats.len(),
                e.features.len()
            )));
        }
        let mut names: Vec<&str> = e.features.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("feature {:?} is declared twice", w[0])));
        }
        for (f, s) in e.features.iter().zip(&e.stats) {
            check_stats(&f.name, f.kind, s.mean, s.std)?;
        }
        check_dim(e.n_dense() as usize, e.hash_bits, self.weights.len())?;
        check_weights(&self.weights, self.bias)
    }
}

/// Archived model kind (own type, so the file format never changes when `ModelKind` grows).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum ModelKindV1 {
    /// [`ModelKind::Logistic`].
    Logistic = 0,
    /// [`ModelKind::Linear`].
    Linear = 1,
}

/// Archived feature kind.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum FeatureKindV1 {
    /// [`FeatureKind::Numeric`].
    Numeric = 0,
    /// [`FeatureKind::Categorical`].
    Categorical = 1,
    /// [`FeatureKind::Boolean`].
    Boolean = 2,
}

/// One input field with its frozen statistics.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FeatureV1 {
    /// Field name.
    pub name: String,
    /// Encoding kind.
    pub kind: FeatureKindV1,
    /// Standardisation mean.
    pub mean: f64,
    /// Standardisation standard deviation.
    pub std: f64,
}

/// The payload of format version 1.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SnapshotV1 {
    /// Model version (repeated from the header so the payload stands on its own).
    pub version: u64,
    /// What the score means.
    pub kind: ModelKindV1,
    /// Whether numeric features are standardised.
    pub standardize: bool,
    /// Bits of the hashed block.
    pub hash_bits: u32,
    /// Hash seed.
    pub hash_seed: u64,
    /// Intercept.
    pub bias: f32,
    /// Input fields in declaration order.
    pub features: Vec<FeatureV1>,
    /// Weights, `n_dense + 2^hash_bits` of them.
    pub weights: Vec<f32>,
}

impl From<ModelKind> for ModelKindV1 {
    fn from(k: ModelKind) -> Self {
        match k {
            ModelKind::Logistic => ModelKindV1::Logistic,
            ModelKind::Linear => ModelKindV1::Linear,
        }
    }
}

impl From<ModelKindV1> for ModelKind {
    fn from(k: ModelKindV1) -> Self {
        match k {
            ModelKindV1::Logistic => ModelKind::Logistic,
            ModelKindV1::Linear => ModelKind::Linear,
        }
    }
}

impl From<FeatureKind> for FeatureKindV1 {
    fn from(k: FeatureKind) -> Self {
        match k {
            FeatureKind::Numeric => FeatureKindV1::Numeric,
            FeatureKind::Categorical => FeatureKindV1::Categorical,
            FeatureKind::Boolean => FeatureKindV1::Boolean,
        }
    }
}

impl From<FeatureKindV1> for FeatureKind {
    fn from(k: FeatureKindV1) -> Self {
        match k {
            FeatureKindV1::Numeric => FeatureKind::Numeric,
            FeatureKindV1::Categorical => FeatureKind::Categorical,
            FeatureKindV1::Boolean => FeatureKind::Boolean,
        }
    }
}

impl ArchivedModelKindV1 {
    fn native(&self) -> ModelKind {
        match self {
            ArchivedModelKindV1::Logistic => ModelKind::Logistic,
            ArchivedModelKindV1::Linear => ModelKind::Linear,
        }
    }
}

impl ArchivedFeatureKindV1 {
    fn native(&self) -> FeatureKind {
        match self {
            ArchivedFeatureKindV1::Numeric => FeatureKind::Numeric,
            ArchivedFeatureKindV1::Categorical => FeatureKind::Categorical,
            ArchivedFeatureKindV1::Boolean => FeatureKind::Boolean,
        }
    }
}

impl SnapshotV1 {
    /// Builds the payload for `snap` under `version`.
    pub fn from_model(snap: &ModelSnapshot, version: u64) -> Self {
        let e = &snap.encoding;
        SnapshotV1 {
            version,
            kind: snap.kind.into(),
            standardize: e.standardize,
            hash_bits: e.hash_bits,
            hash_seed: e.hash_seed,
            bias: snap.bias,
            features: e
                .features
                .iter()
                .zip(&e.stats)
                .map(|(f, s)| FeatureV1 {
                    name: f.name.clone(),
                    kind: f.kind.into(),
                    mean: s.mean,
                    std: s.std,
                })
                .collect(),
            weights: snap.weights.clone(),
        }
    }

    /// Converts back to the owned model.
    pub fn into_model(self) -> ModelSnapshot {
        let stats = self.features.iter().map(|f| NumericStats { mean: f.mean, std: f.std }).collect();
        let features =
            self.features.into_iter().map(|f| FeatureSpec { name: f.name, kind: f.kind.into() }).collect();
        ModelSnapshot {
            version: self.version,
            kind: self.kind.into(),
            encoding: Encoding {
                features,
                standardize: self.standardize,
                hash_bits: self.hash_bits,
                hash_seed: self.hash_seed,
                stats,
            },
            weights: self.weights,
            bias: self.bias,
        }
    }
}

/// Serialises `snap` into a complete snapshot file (header + payload), under its own
/// `snap.version`.
///
/// # Errors
///
/// [`SnapshotError::Invalid`] when the model is inconsistent (see [`ModelSnapshot::validate`])
/// or too large for the format.
pub fn encode_snapshot(snap: &ModelSnapshot) -> Result<Vec<u8>, SnapshotError> {
    encode_snapshot_as(snap, snap.version)
}

/// Like [`encode_snapshot`] but stamps `version` instead of `snap.version`, so the registry can
/// assign versions without cloning the weights.
///
/// # Errors
///
/// As [`encode_snapshot`].
pub fn encode_snapshot_as(snap: &ModelSnapshot, version: u64) -> Result<Vec<u8>, SnapshotError> {
    snap.validate()?;
    let payload = rkyv::to_bytes::<rancor::Error>(&SnapshotV1::from_model(snap, version))
        .map_err(|e| invalid(format!("cannot serialise the model: {e}")))?;
    Ok(frame_payload(version, &payload))
}

/// Prepends a valid header to an arbitrary payload. Public so that tests and the fuzz target
/// can get past the checksums and exercise the archive validation itself.
#[doc(hidden)]
pub fn frame_payload(version: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxh3_64(payload).to_le_bytes());
    out.extend_from_slice(&[0u8; 16]);
    let header_sum = xxh3_64(&out[..56]);
    out.extend_from_slice(&header_sum.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub format_version: u32,
    /// Model version.
    pub model_version: u64,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// xxh3-64 of the payload.
    pub payload_checksum: u64,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Reads and checks the fixed header: magic, then format version, then length and header
/// checksum, then that the file holds exactly the payload the header announces. Does not
/// look at the payload bytes.
///
/// # Errors
///
/// [`SnapshotError::BadMagic`], [`SnapshotError::UnsupportedVersion`],
/// [`SnapshotError::Truncated`], [`SnapshotError::ChecksumMismatch`] (of the header) or
/// [`SnapshotError::Invalid`] (trailing bytes, unknown header length).
pub fn read_header(bytes: &[u8]) -> Result<Header, SnapshotError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            return Err(SnapshotError::Truncated { needed: HEADER_LEN as u64, found: bytes.len() as u64 });
        }
        return Err(SnapshotError::BadMagic { found: bytes[..bytes.len().min(8)].to_vec() });
    }
    if bytes.len() < 12 {
        return Err(SnapshotError::Truncated { needed: HEADER_LEN as u64, found: bytes.len() as u64 });
    }
    let format_version = le_u32(bytes, 8);
    if format_version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: format_version, supported: FORMAT_VERSION });
    }
    if bytes.len() < HEADER_LEN {
        return Err(SnapshotError::Truncated { needed: HEADER_LEN as u64, found: bytes.len() as u64 });
    }
    let stored = le_u64(bytes, 56);
    let computed = xxh3_64(&bytes[..56]);
    if stored != computed {
        return Err(SnapshotError::ChecksumMismatch { what: "header", stored, computed });
    }
    let header_len = le_u32(bytes, 12);
    if header_len as usize != HEADER_LEN {
        return Err(invalid(format!("header length {header_len}, expected {HEADER_LEN}")));
    }
    let header = Header {
        format_version,
        model_version: le_u64(bytes, 16),
        payload_len: le_u64(bytes, 24),
        payload_checksum: le_u64(bytes, 32),
    };
    let needed = (HEADER_LEN as u64).saturating_add(header.payload_len);
    let found = bytes.len() as u64;
    if found < needed {
        return Err(SnapshotError::Truncated { needed, found });
    }
    if found > needed {
        return Err(invalid(format!(
            "{} unexpected bytes after the payload; the file was appended to or overwritten in place",
            found - needed
        )));
    }
    Ok(header)
}

/// How much of a snapshot is checked when it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    /// Header, payload checksum, rkyv structure, encoding consistency and finite weights.
    /// Touches every byte once; the default, and what the registry uses before promoting.
    #[default]
    Full,
    /// Header, rkyv structure and encoding consistency, but neither the payload checksum nor
    /// the weight scan: opening costs the same for any model size. Still memory safe (rkyv's
    /// structural check is never skipped), but a flipped bit *inside the weights* goes
    /// unnoticed, so use it only for files that were fully validated before (e.g. by the
    /// registry at publish time) and are on trusted storage.
    Structural,
}

/// Where the bytes of a loaded model live.
enum Backing {
    /// A read-only memory map of the file.
    Mapped(#[allow(dead_code)] Mmap),
    /// A 16-byte-aligned heap copy (models loaded from a byte slice).
    Owned(#[allow(dead_code)] AlignedVec),
}

/// A validated snapshot, ready to score. The weights are read in place from the mapped file.
///
/// The small parts (encoding, plan, name index) are decoded into owned values once at load
/// time, so encoding a row runs exactly the engine's [`Encoding::encode_into`]; the weights —
/// the only part whose size grows with the model — stay in the map.
///
/// # Safety contract of the map
///
/// A memory map reflects later writes to the file. eddy's registry never modifies a published
/// file (it writes a temporary file and renames it into place), so the mapped bytes cannot
/// change under a reader. Do not edit or truncate a published `v*.eddy` file in place.
pub struct LoadedModel {
    version: u64,
    kind: ModelKind,
    bias: f32,
    encoding: Encoding,
    plan: EncodingPlan,
    names: std::collections::HashMap<Box<str>, u32>,
    weights_ptr: *const f32,
    weights_len: usize,
    payload_checksum: u64,
    file_len: u64,
    // Converted weights on big-endian targets; the pointer above then points into this.
    #[allow(dead_code)]
    native_weights: Option<Vec<f32>>,
    // Keeps the bytes `weights_ptr` points into alive; never read directly.
    #[allow(dead_code)]
    backing: Backing,
}

// SAFETY: `weights_ptr` points into `backing` (a read-only map or a heap buffer owned by this
// value, neither of which moves when the struct moves) or into `native_weights`; the memory is
// never written after construction, so sharing `&LoadedModel` across threads is sound.
unsafe impl Send for LoadedModel {}
// SAFETY: see `Send`: immutable after construction.
unsafe impl Sync for LoadedModel {}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("features", &self.encoding.features.len())
            .field("dim", &self.weights_len)
            .finish_non_exhaustive()
    }
}

impl LoadedModel {
    /// Maps and validates the snapshot file at `path`.
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Io`] when the file cannot be opened or mapped, otherwise any rejection
    /// of [`read_header`] or of the payload checks.
    pub fn open(path: &Path, validation: Validation) -> Result<Self, SnapshotError> {
        let io = |source| SnapshotError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER_LEN as u64 {
            // Mapping an empty file fails on some platforms; read the few bytes instead so the
            // error is about the content, not the map.
            let bytes = std::fs::read(path).map_err(io)?;
            read_header(&bytes)?;
            return Err(SnapshotError::Truncated { needed: HEADER_LEN as u64, found: bytes.len() as u64 });
        }
        // SAFETY: see the type's "safety contract of the map": published files are immutable.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::build(Backing::Mapped(map), validation)
    }

    /// Validates a snapshot held in memory (copied once into an aligned buffer).
    ///
    /// # Errors
    ///
    /// Any rejection of [`read_header`] or of the payload checks.
    pub fn from_bytes(bytes: &[u8], validation: Validation) -> Result<Self, SnapshotError> {
        let mut buf = AlignedVec::<16>::with_capacity(bytes.len());
        buf.extend_from_slice(bytes);
        Self::build(Backing::Owned(buf), validation)
    }

    fn build(backing: Backing, validation: Validation) -> Result<Self, SnapshotError> {
        let bytes: &[u8] = match &backing {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        };
        let header = read_header(bytes)?;
        let payload = &bytes[HEADER_LEN..];
        if validation == Validation::Full {
            let computed = xxh3_64(payload);
            if computed != header.payload_checksum {
                return Err(SnapshotError::ChecksumMismatch {
                    what: "payload",
                    stored: header.payload_checksum,
                    computed,
                });
            }
        }
        let archived = rkyv::access::<ArchivedSnapshotV1, rancor::Error>(payload)
            .map_err(|e| invalid(format!("the payload is not a valid archive: {e}")))?;
        let version = archived.version.to_native();
        if version != header.model_version {
            return Err(invalid(format!(
                "header says model version {} but the payload says {version}",
                header.model_version
            )));
        }
        check_hash_bits(archived.hash_bits.to_native())?;
        let mut features = Vec::with_capacity(archived.features.len());
        let mut stats = Vec::with_capacity(archived.features.len());
        let mut names = std::collections::HashMap::with_capacity(archived.features.len());
        for (i, f) in archived.features.iter().enumerate() {
            let kind = f.kind.native();
            let (mean, std) = (f.mean.to_native(), f.std.to_native());
            check_stats(f.name.as_str(), kind, mean, std)?;
            if names.insert(Box::<str>::from(f.name.as_str()), i as u32).is_some() {
                return Err(invalid(format!("feature {:?} is declared twice", f.name.as_str())));
            }
            features.push(FeatureSpec { name: f.name.as_str().to_owned(), kind });
            stats.push(NumericStats { mean, std });
        }
        let encoding = Encoding {
            features,
            standardize: archived.standardize,
            hash_bits: archived.hash_bits.to_native(),
            hash_seed: archived.hash_seed.to_native(),
            stats,
        };
        let archived_weights = archived.weights.as_slice();
        check_dim(encoding.n_dense() as usize, encoding.hash_bits, archived_weights.len())?;
        let bias = archived.bias.to_native();
        let kind = archived.kind.native();
        let weights_len = archived_weights.len();

        #[cfg(target_endian = "little")]
        let (weights_ptr, native_weights) = {
            // SAFETY (of the later slice reconstruction): on a little-endian target an archived
            // `f32` (`f32_le`) has the size, alignment (asserted at compile time) and bit
            // layout of `f32`, and every bit pattern is a valid `f32`.
            (archived_weights.as_ptr().cast::<f32>(), None::<Vec<f32>>)
        };
        #[cfg(not(target_endian = "little"))]
        let (weights_ptr, native_weights) = {
            let v: Vec<f32> = archived_weights.iter().map(|w| w.to_native()).collect();
            (v.as_ptr(), Some(v))
        };

        let plan = encoding.plan();
        let model = LoadedModel {
            version,
            kind,
            bias,
            encoding,
            plan,
            names,
            weights_ptr,
            weights_len,
            payload_checksum: header.payload_checksum,
            file_len: bytes.len() as u64,
            native_weights,
            backing,
        };
        if validation == Validation::Full {
            check_weights(model.weights(), bias)?;
        }
        Ok(model)
    }

    /// The weights, read in place from the snapshot.
    #[inline]
    pub fn weights(&self) -> &[f32] {
        // SAFETY: `weights_ptr`/`weights_len` were taken from a validated archived slice (or the
        // converted copy) that `self` keeps alive and never mutates; see `build`.
        unsafe { std::slice::from_raw_parts(self.weights_ptr, self.weights_len) }
    }

    /// Model version.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Model kind.
    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    /// Intercept.
    pub fn bias(&self) -> f32 {
        self.bias
    }

    /// The feature encoding (decoded once at load time).
    pub fn encoding(&self) -> &Encoding {
        &self.encoding
    }

    /// The precomputed encoding plan.
    pub fn plan(&self) -> &EncodingPlan {
        &self.plan
    }

    /// xxh3-64 of the payload, as stored in the header.
    pub fn payload_checksum(&self) -> u64 {
        self.payload_checksum
    }

    /// Size of the snapshot file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Position of a feature by name (a hash lookup, unlike [`Encoding::position`]).
    #[inline]
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.get(name).map(|&i| i as usize)
    }

    /// Prediction for an encoded sparse row: `link(linear_score(weights, bias, row))`, the
    /// engine's own arithmetic, so it is bit-identical to the live model.
    #[inline]
    pub fn score_sparse(&self, row: &[Feature]) -> f32 {
        self.kind.link(linear_score(self.weights(), self.bias, row))
    }

    /// Prediction for a dense row: `x[i]` multiplies weight `i`, and for an encoding whose
    /// fields are all numeric or boolean index `i` is field `i` (missing indicators, which are
    /// hashed, are then not set).
    #[inline]
    pub fn score_dense(&self, x: &[f32]) -> f32 {
        self.kind.link(dense_score(self.weights(), self.bias, x))
    }

    /// Encodes `values` given in feature order (as [`Encoding::encode_into`]), appending to
    /// `out`.
    #[inline]
    pub fn encode_ordered(&self, values: &[RawValue<'_>], out: &mut Vec<Feature>) {
        self.encoding.encode_into(&self.plan, values, out);
    }

    /// Converts the model back into an owned [`ModelSnapshot`] (copies the weights).
    pub fn to_model_snapshot(&self) -> ModelSnapshot {
        ModelSnapshot {
            version: self.version,
            kind: self.kind,
            encoding: self.encoding.clone(),
            weights: self.weights().to_vec(),
            bias: self.bias,
        }
    }
}

/// Fully validates and decodes snapshot bytes into an owned model.
///
/// # Errors
///
/// As [`LoadedModel::from_bytes`] with [`Validation::Full`].
pub fn decode_snapshot(bytes: &[u8]) -> Result<ModelSnapshot, SnapshotError> {
    Ok(LoadedModel::from_bytes(bytes, Validation::Full)?.to_model_snapshot())
}

fn invalid(msg: String) -> SnapshotError {
    SnapshotError::Invalid(msg)
}

fn check_hash_bits(bits: u32) -> Result<(), SnapshotError> {
    if bits > MAX_HASH_BITS {
        return Err(invalid(format!("hash_bits is {bits}; at most {MAX_HASH_BITS} is supported")));
    }
    Ok(())
}

fn check_dim(n_dense: usize, hash_bits: u32, n_weights: usize) -> Result<(), SnapshotError> {
    let dim = n_dense + (1usize << hash_bits);
    if dim > u32::MAX as usize {
        return Err(invalid(format!("{dim} weights do not fit 32-bit feature indices")));
    }
    if n_weights != dim {
        return Err(invalid(format!(
            "{n_weights} weights, but the encoding ({n_dense} dense + 2^{hash_bits} hashed) needs {dim}"
        )));
    }
    Ok(())
}

fn check_stats(name: &str, kind: FeatureKind, mean: f64, std: f64) -> Result<(), SnapshotError> {
    if kind == FeatureKind::Numeric && !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(invalid(format!(
            "numeric feature {name:?} has statistics mean={mean} std={std}; both must be finite and std > 0"
        )));
    }
    Ok(())
}

fn check_weights(weights: &[f32], bias: f32) -> Result<(), SnapshotError> {
    if !bias.is_finite() {
        return Err(invalid(format!("bias is {bias}; the model diverged, do not serve it")));
    }
    // Branch-free sum of "is not finite" so the scan vectorises; the position is only looked
    // up when something is wrong.
    let bad = weights.iter().fold(0u32, |n, w| n + u32::from(!w.is_finite()));
    if bad > 0 {
        let i = weights.iter().position(|w| !w.is_finite()).unwrap_or(0);
        return Err(invalid(format!(
            "{bad} non-finite weights (first at index {i}: {}); the model diverged, do not serve it",
            weights[i]
        )));
    }
    Ok(())
}
