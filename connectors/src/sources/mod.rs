//! Sources: one file per kind, and [`SourceConfig`], the one place where a config's
//! `kind = "..."` maps to a builder.

pub mod arrow_ipc;
pub mod csv;
pub mod fluvio;
pub mod generator;
pub mod jsonl;
pub mod lines;
pub mod normalize;
pub mod stdin;
pub mod text;

use eddy_engine::record::StreamRole;
use eddy_engine::source::{Source, SourceContext, SourceError};
use serde::{Deserialize, Serialize};

/// Configuration of any source, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceConfig {
    /// JSON lines from a file (or stdin with path `-`).
    Jsonl(jsonl::JsonLinesSourceConfig),
    /// CSV with a header from a file.
    Csv(csv::CsvSourceConfig),
    /// An Arrow IPC file or stream.
    ArrowIpc(arrow_ipc::ArrowIpcSourceConfig),
    /// Standard input.
    Stdin(stdin::StdinSourceConfig),
    /// Synthetic concept-drift streams with labels.
    Generator(generator::GeneratorSourceConfig),
    /// A Fluvio topic.
    Fluvio(fluvio::FluvioSourceConfig),
}

/// Every source kind, for error messages and the registry test.
pub const SOURCE_KINDS: [&str; 6] = ["jsonl", "csv", "arrow_ipc", "stdin", "generator", "fluvio"];

impl SourceConfig {
    /// The `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Jsonl(_) => "jsonl",
            SourceConfig::Csv(_) => "csv",
            SourceConfig::ArrowIpc(_) => "arrow_ipc",
            SourceConfig::Stdin(_) => "stdin",
            SourceConfig::Generator(_) => "generator",
            SourceConfig::Fluvio(_) => "fluvio",
        }
    }

    /// The roles the source plays: a generator plays both; others the one configured or
    /// implied by the source's name (`events`, `labels`). `None` when it cannot be told.
    pub fn roles(&self, name: &str) -> Option<Vec<StreamRole>> {
        let explicit = match self {
            SourceConfig::Generator(_) => return Some(vec![StreamRole::Events, StreamRole::Labels]),
            SourceConfig::Jsonl(c) => c.role,
            SourceConfig::Csv(c) => c.role,
            SourceConfig::ArrowIpc(c) => c.role,
            SourceConfig::Stdin(c) => c.role,
            SourceConfig::Fluvio(c) => c.role,
        };
        let role = explicit.or(match name {
            "events" => Some(StreamRole::Events),
            "labels" => Some(StreamRole::Labels),
            _ => None,
        })?;
        Some(vec![role])
    }

    /// File the source reads, if any (checked by `eddy validate`).
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            SourceConfig::Jsonl(c) => Some(c.path.as_path()),
            SourceConfig::Csv(c) => Some(c.path.as_path()),
            SourceConfig::ArrowIpc(c) => Some(c.path.as_path()),
            _ => None,
        }
        .filter(|p| p.as_os_str() != "-")
    }

    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        match self {
            SourceConfig::Generator(g) => g.problems(),
            SourceConfig::Fluvio(f) => f.problems(),
            _ => Vec::new(),
        }
    }

    /// Builds the source.
    ///
    /// # Errors
    /// When the source cannot be opened.
    pub fn build(&self, cx: &SourceContext) -> Result<Box<dyn Source>, SourceError> {
        match self {
            SourceConfig::Jsonl(c) => c.build(cx),
            SourceConfig::Csv(c) => c.build(cx),
            SourceConfig::ArrowIpc(c) => c.build(cx),
            SourceConfig::Stdin(c) => c.build(cx),
            SourceConfig::Generator(c) => c.build(cx),
            SourceConfig::Fluvio(c) => c.build(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_has_no_duplicate_kinds() {
        let mut kinds = SOURCE_KINDS.to_vec();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), SOURCE_KINDS.len());
    }
}
