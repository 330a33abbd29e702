//! Sinks: one file per kind, and [`SinkConfig`], the registry where a config's
//! `kind = "..."` maps to its builder.
//!
//! # Adding a sink kind
//!
//! 1. Write `sinks/NAME.rs` with
//!    - `NameSinkConfig`: `#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]`,
//!      `#[serde(deny_unknown_fields)]`, and an `input: Option<SinkInput>` field;
//!    - `impl BuildSink for NameSinkConfig`: open the destination from the
//!      [`SinkBuildContext`] (name, input, resume, metrics factory) and report failures as
//!      [`ConnectorError`]s naming the sink, its kind and the field to blame;
//!    - the `Sink` it returns (with `checkpoint` returning a position if the output can be cut
//!      back to it on resume).
//! 2. Add `pub mod NAME;` below and one line to the `kinds { ... }` of the registry:
//!    `Name(NAME::NameSinkConfig) = "NAME",`. The kind enum [`SinkKind`], `kind()`, the list
//!    of kinds in "expected one of" errors and the `build` dispatch follow from it.
//! 3. Add its arm to [`SinkConfig::input`] (an exhaustive `match`: the compiler points at it),
//!    and to [`SinkConfig::problems`] or [`SinkConfig::checkpoint_problem`] if it has values
//!    to check or cannot resume.
//! 4. Add its minimal TOML to `minimal_toml` in the tests below (an exhaustive `match`: the
//!    registry test does not compile until it is there).

pub mod arrow_ipc;
pub mod csv;
pub mod fluvio;
pub mod jsonl;
pub mod stdout;

pub use eddy_engine::sink::SinkBuildContext;
use eddy_engine::sink::{Sink, SinkInput};

use crate::error::ConnectorError;

/// How a sink is built from its config: the one method every sink kind's config implements,
/// and [`SinkConfig`] dispatches to.
pub trait BuildSink {
    /// Opens the sink; it registers its own metrics (if any) with `cx.metrics`.
    ///
    /// # Errors
    /// When the destination cannot be opened, or cannot continue as `cx.resume` asks.
    fn build(&self, cx: &SinkBuildContext) -> Result<Box<dyn Sink>, ConnectorError>;
}

crate::registry::registry! {
    /// Configuration of any sink, tagged by `kind`.
    config SinkConfig;
    /// The kind of a sink: one per variant of [`SinkConfig`].
    kind SinkKind;
    build BuildSink(SinkBuildContext) -> Box<dyn Sink>;
    kinds {
        /// A JSON-lines file.
        Jsonl(jsonl::JsonLinesSinkConfig) = "jsonl",
        /// Standard output.
        Stdout(stdout::StdoutSinkConfig) = "stdout",
        /// A CSV file with a header.
        Csv(csv::CsvSinkConfig) = "csv",
        /// An Arrow IPC file.
        ArrowIpc(arrow_ipc::ArrowIpcSinkConfig) = "arrow_ipc",
        /// A Fluvio topic.
        Fluvio(fluvio::FluvioSinkConfig) = "fluvio",
    }
}

impl SinkConfig {
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

    /// The smallest config of each kind (an exhaustive `match`: a new kind must add one).
    fn minimal_toml(kind: SinkKind) -> &'static str {
        match kind {
            SinkKind::Jsonl => "kind = \"jsonl\"\npath = \"out.jsonl\"",
            SinkKind::Stdout => "kind = \"stdout\"",
            SinkKind::Csv => "kind = \"csv\"\npath = \"out.csv\"",
            SinkKind::ArrowIpc => "kind = \"arrow_ipc\"\npath = \"out.arrow\"",
            SinkKind::Fluvio => "kind = \"fluvio\"\ntopic = \"predictions\"",
        }
    }

    #[test]
    fn every_kind_parses_from_a_minimal_config() {
        for &kind in SinkKind::ALL {
            let config: SinkConfig = toml::from_str(minimal_toml(kind))
                .unwrap_or_else(|e| panic!("{kind}: {e}\n{}", minimal_toml(kind)));
            assert_eq!(config.kind(), kind);
            assert_eq!(config.kind().as_str(), kind.to_string());
        }
    }

    #[test]
    fn build_errors_name_the_sink_its_kind_and_the_field() {
        let cx = |resume| SinkBuildContext {
            name: "predictions".into(),
            input: SinkInput::Predictions,
            resume,
            metrics: eddy_engine::metrics::MetricsFactory::noop("t"),
        };
        let build = |t: &str, resume| {
            let config: SinkConfig = toml::from_str(t).unwrap();
            config.build(&cx(resume)).err().expect("the build fails").to_string()
        };
        let e = build("kind = \"arrow_ipc\"\npath = \"out.arrow\"", eddy_engine::sink::SinkResume::Append);
        assert!(
            e.starts_with("sink `predictions` (arrow_ipc), field `kind`: an arrow_ipc sink cannot continue"),
            "{e}"
        );
        let e =
            build("kind = \"jsonl\"\npath = \"/dev/null/x/out.jsonl\"", eddy_engine::sink::SinkResume::Fresh);
        assert!(
            e.starts_with("sink `predictions` (jsonl), field `path`: cannot create /dev/null/x: "),
            "{e}"
        );
    }

    #[test]
    fn kinds_are_unique_and_an_unknown_kind_lists_them_all() {
        let mut names = SinkKind::names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SinkKind::ALL.len());
        let e = toml::from_str::<SinkConfig>("kind = \"parquet\"\npath = \"x\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant `parquet`"), "{e}");
        for name in SinkKind::names() {
            assert!(e.contains(&format!("`{name}`")), "`{name}` missing from: {e}");
        }
    }
}
