//! The engine's error types: why a pipeline could not be built, restored or run.
//!
//! Bad records are never errors (they are dead letters); these are the conditions that stop
//! a run, each naming the component and, for configuration, the setting to change.

use std::path::PathBuf;

use crate::sink::SinkError;
use crate::source::SourceError;

/// Why a pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A source failed (not a bad record: those are dead letters).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A sink thread ended early; its own error (reported instead when known) says why.
    #[error("a sink stopped accepting output")]
    SinkStopped,
    /// A checkpoint could not be written or restored.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A configuration setting cannot be used; `key` is its path in the config
    /// (`drift.NAME`, `retrain.slot`, `features.sql`, ...).
    #[error("{key}: {message}")]
    Config {
        /// The setting, as a config path.
        key: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The events cannot feed a model (no usable feature).
    #[error("{0}")]
    Features(String),
    /// The model registry could not be opened or read.
    #[error("model registry {dir}: {source}")]
    Registry {
        /// The registry directory.
        dir: PathBuf,
        /// What failed.
        source: eddy_scorer::registry::RegistryError,
    },
    /// A bug in eddy.
    #[error("internal error (a bug in eddy, please report it): {0}")]
    Internal(String),
}

impl EngineError {
    /// A configuration error for the setting `key`.
    pub fn config(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        EngineError::Config { key: key.into(), message: message.to_string() }
    }

    /// A registry error for the registry in `dir`.
    pub fn registry(dir: &std::path::Path, source: eddy_scorer::registry::RegistryError) -> Self {
        EngineError::Registry { dir: dir.to_path_buf(), source }
    }
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file system operation failed.
    #[error("checkpoint {path}: {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is damaged.
    #[error("checkpoint {path} is corrupt ({why}); restore an intact checkpoint, or start fresh with `--fresh` (which moves the state directory's checkpoints aside)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The file was written by another format version or another pipeline configuration.
    #[error("checkpoint {path} is incompatible: {why}; run with the configuration that wrote it, or start fresh with `--fresh` (which moves the state directory's checkpoints aside)")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// What differs.
        why: String,
    },
    /// The state could not be encoded (a bug).
    #[error("cannot encode the checkpoint: {0}")]
    Encode(String),
    /// The checkpoint was written by this configuration but its state does not fit the
    /// pipeline built from it (a bug, or a file edited by hand).
    #[error("cannot restore the checkpoint: {0}")]
    Restore(String),
}
