//! Why a source or sink could not be built: [`ConnectorError`], which names the component
//! (source or sink, its config name and kind) and the config field where one is to blame, and
//! [`Problem`], what went wrong.
//!
//! Bad *records* are not errors: they become dead letters with a reason and the sources go on.
//! Failures after a connector is built (a read or a write that fails) are the engine's
//! [`SourceError`](eddy_engine::source::SourceError) and
//! [`SinkError`](eddy_engine::sink::SinkError), which name the component too.
//!
//! A leaf module: it knows kinds only by their names, so the registries in `sources` and
//! `sinks` import it and it imports neither (the decoders', generators' and Fluvio client's
//! error types live here for the same reason and are re-exported where they are used).

use std::fmt;
use std::path::PathBuf;

use eddy_engine::source::SourcePosition;

/// Which connector an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Component {
    /// A source: its config name and kind.
    Source {
        /// Config name (`[sources.NAME]`).
        name: String,
        /// Its `kind`.
        kind: &'static str,
    },
    /// A sink: its config name and kind.
    Sink {
        /// Config name (`[sinks.NAME]`).
        name: String,
        /// Its `kind`.
        kind: &'static str,
    },
}

impl Component {
    /// Source `name` of kind `kind`.
    pub fn source(name: &str, kind: &'static str) -> Self {
        Component::Source { name: name.to_string(), kind }
    }

    /// Sink `name` of kind `kind`.
    pub fn sink(name: &str, kind: &'static str) -> Self {
        Component::Sink { name: name.to_string(), kind }
    }

    /// The config name.
    pub fn name(&self) -> &str {
        match self {
            Component::Source { name, .. } | Component::Sink { name, .. } => name,
        }
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Component::Source { kind, .. } | Component::Sink { kind, .. } => kind,
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Source { name, kind } => write!(f, "source `{name}` ({kind})"),
            Component::Sink { name, kind } => write!(f, "sink `{name}` ({kind})"),
        }
    }
}

/// A source or sink that cannot be built. Displays as, e.g.,
/// ``source `events` (csv), field `delimiter`: must be one ASCII character``.
#[derive(Debug, thiserror::Error)]
#[error("{component}{}: {problem}", .field.map(|f| format!(", field `{f}`")).unwrap_or_default())]
pub struct ConnectorError {
    /// The source or sink.
    pub component: Component,
    /// The config field to blame, if one is.
    pub field: Option<&'static str>,
    /// What went wrong (boxed: the error travels in `Result`s and stays small).
    #[source]
    pub problem: Box<Problem>,
}

impl ConnectorError {
    /// `problem` of `component`.
    pub fn new(component: Component, problem: impl Into<Problem>) -> Self {
        ConnectorError { component, field: None, problem: Box::new(problem.into()) }
    }

    /// `problem` of source `name` of kind `kind`.
    pub fn source(name: &str, kind: &'static str, problem: impl Into<Problem>) -> Self {
        Self::new(Component::source(name, kind), problem)
    }

    /// `problem` of sink `name` of kind `kind`.
    pub fn sink(name: &str, kind: &'static str, problem: impl Into<Problem>) -> Self {
        Self::new(Component::sink(name, kind), problem)
    }

    /// The same error, blamed on config field `field`.
    #[must_use]
    pub fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

/// What went wrong when building a connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// An input cannot be opened.
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output (or its directory) cannot be created.
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output cannot be reopened to continue after a checkpoint.
    #[error("cannot reopen {}: {source}", .path.display())]
    Reopen {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading an input failed.
    #[error("read failed: {0}")]
    Read(#[source] std::io::Error),
    /// A CSV input's header cannot be read.
    #[error("cannot read the header of {}: {source}", .path.display())]
    ReadHeader {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A CSV input has no header row.
    #[error("{} has no header row", .path.display())]
    NoHeader {
        /// The file.
        path: PathBuf,
    },
    /// A CSV header names a column twice (its rows could not be told apart by name).
    #[error("{}: the header names column `{column}` more than once", .path.display())]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated column name.
        column: String,
    },
    /// An input is shorter than the checkpoint's position in it.
    #[error("{} has {len} bytes but the checkpoint resumes at byte {byte}: the file was replaced or truncated since the checkpoint", .path.display())]
    InputShrunk {
        /// The file.
        path: PathBuf,
        /// Its length now.
        len: u64,
        /// The checkpointed position.
        byte: u64,
    },
    /// An output is shorter than the length the checkpoint recorded.
    #[error("{} has {len} bytes but the checkpoint recorded {recorded}: it was replaced or truncated since the checkpoint", .path.display())]
    OutputShrunk {
        /// The file.
        path: PathBuf,
        /// Its length now.
        len: u64,
        /// The checkpointed length.
        recorded: u64,
    },
    /// The checkpoint holds another kind of source's position.
    #[error("the checkpoint's position {position:?} is not {expected}; was the source's kind changed?")]
    WrongPosition {
        /// The checkpointed position.
        position: SourcePosition,
        /// What this kind resumes from, e.g. `a line position`.
        expected: &'static str,
    },
    /// An input that starts like an Arrow IPC file is not a valid one.
    #[error("{} is not a valid Arrow IPC file: {source}", .path.display())]
    InvalidIpcFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: arrow_schema::ArrowError,
    },
    /// An input is neither an Arrow IPC file nor an IPC stream.
    #[error("{} is neither an Arrow IPC file nor an IPC stream: {source}", .path.display())]
    InvalidIpcStream {
        /// The file.
        path: PathBuf,
        /// Why.
        source: arrow_schema::ArrowError,
    },
    /// A batch of a columnar input cannot be read.
    #[error("cannot read batch: {0}")]
    ReadBatch(#[source] arrow_schema::ArrowError),
    /// A row input ends before the checkpoint's position.
    #[error("the checkpoint resumes at row {rows} but the file has only {has} rows")]
    RowsEnd {
        /// The checkpointed row.
        rows: u64,
        /// Rows the file has.
        has: u64,
    },
    /// Stdin was asked to resume from a checkpoint.
    #[error("stdin cannot resume from a checkpoint")]
    StdinResume,
    /// A generator ends before the checkpoint's position.
    #[error("the checkpoint resumes after batch {batches} but the generator ends after {ends}")]
    GeneratorEnds {
        /// The checkpointed number of batches.
        batches: u64,
        /// Batches the generator has.
        ends: u64,
    },
    /// A config value that cannot be used (blame the field with [`ConnectorError::field`]).
    #[error("{0}")]
    Invalid(String),
    /// This kind cannot do what was asked (e.g. continue after a restart).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The first data cannot be understood (no record of the sample decodes).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A generator's concept parameters are invalid.
    #[error(transparent)]
    Concept(#[from] ConceptError),
    /// No Fluvio cluster is configured.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The Fluvio client's runtime cannot start.
    #[error("cannot start the Fluvio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Why lines (or records) cannot be decoded. For one record this is data, not a failure: its
/// text is the dead letter's `detail`. Only when no record of a source's first data decodes
/// does it stop the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl From<&str> for DecodeError {
    fn from(s: &str) -> Self {
        DecodeError(s.to_string())
    }
}

impl From<String> for DecodeError {
    fn from(s: String) -> Self {
        DecodeError(s)
    }
}

/// Invalid parameters of a generator's concept stream (`sources.NAME.concept`); the message
/// starts with the concept's name, e.g. `sea: noise must be a probability in [0, 1], got 2`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConceptError(pub String);

/// No Fluvio cluster is named by the connector's `endpoint`, `EDDY_FLUVIO_ENDPOINT` or a
/// current Fluvio profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no Fluvio cluster given: set `endpoint = \"HOST:PORT\"`, or {env}, or a current Fluvio profile ({profile})")]
pub struct ClusterError {
    /// The environment variable that was looked at.
    pub env: &'static str,
    /// Why the Fluvio profile gave no cluster.
    pub profile: String,
}
