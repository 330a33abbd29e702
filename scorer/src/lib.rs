//! `eddy-scorer` scores raw features with models that eddy trained.
//!
//! Services embed this crate to score in-process, so it depends on nothing heavy: no async
//! runtime, no query engine. The feature encoding and the linear scoring functions live here,
//! at the bottom of the dependency graph, so that the engine (which learns) and every embedded
//! scorer (which serves) run literally the same code and can never disagree on a prediction.
//!
//! - [`snapshot`]: the versioned, checksummed rkyv file format, read in place (zero copy).
//! - [`registry`]: a directory of versions with manifests (lineage) and an atomic `CURRENT`.
//! - [`Scorer`]: maps `CURRENT`, scores lock-free, hot-swaps new versions ([`Scorer::reload`],
//!   [`Scorer::watch`]).
//!
//! ```no_run
//! use eddy_scorer::{encoding::RawValue, Scorer};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scorer = Scorer::open("models/quickstart")?;
//! let _watch = scorer.watch(std::time::Duration::from_secs(1));
//! let p = scorer.score(&[("amount", RawValue::Number(12.5)), ("country", RawValue::Text("fr"))]);
//! println!("{} (model v{})", p.value, p.version);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod encoding;
pub mod model;
pub mod registry;
pub mod scorer;
pub mod snapshot;
pub mod watch;

pub use registry::{Manifest, ModelRegistry, Producer, RegistryError};
pub use scorer::{Prediction, ReloadOutcome, ScoreBuffer, Scorer};
pub use snapshot::{encode_snapshot, LoadedModel, ModelSnapshot, SnapshotError, Validation};
pub use watch::WatchHandle;
