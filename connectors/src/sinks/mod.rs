//! Sinks: one file per kind, and [`SinkConfig`], the one place where a config's
//! `kind = "..."` maps to a builder.

pub mod arrow_ipc;
pub mod csv;
pub mod fluvio;
pub mod jsonl;
pub mod stdout;

use eddy_engine::metrics::MetricsFactory;
use eddy_engine::sink::{Sink, SinkError, SinkInput, SinkResume};
use serde::{Deserialize, Serialize};

/// Configuration of any sink, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkConfig {
    /// A JSON-lines file.
    Jsonl(jsonl::JsonLinesSinkConfig),
    /// Standard output.
    Stdout(stdout::StdoutSinkConfig),
    /// A CSV file with a header.
    Csv(csv::CsvSinkConfig),
    /// An Arrow IPC file.
    ArrowIpc(arrow_ipc::ArrowIpcSinkConfig),
    /// A Fluvio topic.
    Fluvio(fluvio::FluvioSinkConfig),
}

/// Every sink kind, for error messages and the registry test.
pub const SINK_KINDS: [&str; 5] = ["jsonl", "stdout", "csv", "arrow_ipc", "fluvio"];

impl SinkConfig {
    /// The `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Jsonl(_) => "jsonl",
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::Csv(_) => "csv",
            SinkConfig::ArrowIpc(_) => "arrow_ipc",
            SinkConfig::Fluvio(_) => "fluvio",
        }
    }

    /// The output the sink receives: configured, or implied by the sink's name.
    pub fn input(&self, name: &str) -> Option<SinkInput> {
        let explicit = match self {
            SinkConfig::Jsonl(c) => c.input,
            SinkConfig::Stdout(c) => c.input,
            SinkConfig::Csv(c) => c.input,
            SinkConfig::ArrowIpc(c) => c.input,
            SinkConfig::Fluvio(c) => c.input,
        };
        explicit.or_else(|| SinkInput::ALL.into_iter().find(|i| i.as_str() == name))
    }

    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        match self {
            SinkConfig::Fluvio(c) => c.problems(),
            _ => Vec::new(),
        }
    }

    /// Builds the sink; it registers its own metrics (if any) with `metrics`.
    ///
    /// # Errors
    /// When the destination cannot be opened.
    pub fn build(
        &self,
        name: &str,
        resume: SinkResume,
        metrics: &MetricsFactory,
    ) -> Result<Box<dyn Sink>, SinkError> {
        match self {
            SinkConfig::Jsonl(c) => c.build(name, resume),
            SinkConfig::Stdout(c) => Ok(c.build(name)),
            SinkConfig::Csv(c) => c.build(name, resume),
            SinkConfig::ArrowIpc(c) => c.build(name, resume),
            // A topic cannot be cut back: every resume appends (see `sinks::fluvio`).
            SinkConfig::Fluvio(c) => c.build(name, metrics),
        }
    }

    /// Why this sink cannot be used with checkpoints, if it cannot.
    pub fn checkpoint_problem(&self) -> Option<&'static str> {
        match self {
            SinkConfig::ArrowIpc(_) => Some(arrow_ipc::NO_CHECKPOINTS),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_has_no_duplicate_kinds() {
        let mut kinds = SINK_KINDS.to_vec();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), SINK_KINDS.len());
    }
}
