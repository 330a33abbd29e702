//! Sources: one file per kind, and [`SourceConfig`], the registry where a config's
//! `kind = "..."` maps to its builder.
//!
//! # Adding a source kind
//!
//! 1. Write `sources/NAME.rs` with
//!    - `NameSourceConfig`: `#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]`,
//!      `#[serde(deny_unknown_fields)]`, and a `role: Option<StreamRole>` field for a
//!      single-stream source;
//!    - `impl BuildSource for NameSourceConfig`: open the input from the
//!      [`SourceBuildContext`] (name, role and decoding spec, batch size, resume position, stop
//!      flag, metrics factory) and report failures as [`ConnectorError`]s naming the source,
//!      its kind and the field to blame;
//!    - the `Source` it returns (bad records become dead letters, not errors; batches carry a
//!      `SourcePosition` if the source can resume).
//! 2. Add `pub mod NAME;` below and one line to the `kinds { ... }` of the registry:
//!    `Name(NAME::NameSourceConfig) = "NAME",`. The kind enum [`SourceKind`], `kind()`, the
//!    list of kinds in "expected one of" errors and the `build` dispatch follow from it.
//! 3. If the kind has a role, a file path or values to check, add its arm to
//!    [`SourceConfig::roles`], [`SourceConfig::path`] or [`SourceConfig::problems`] (the
//!    compiler points at `roles`, whose `match` is exhaustive).
//! 4. Add its minimal TOML to `minimal_toml` in the tests below (an exhaustive `match`: the
//!    registry test does not compile until it is there).

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
use eddy_engine::source::Source;
pub use eddy_engine::source::SourceBuildContext;

use crate::error::ConnectorError;

/// How a source is built from its config: the one method every source kind's config
/// implements, and [`SourceConfig`] dispatches to.
pub trait BuildSource {
    /// Opens the source.
    ///
    /// # Errors
    /// When the source cannot be opened or cannot resume from `cx.resume`.
    fn build(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, ConnectorError>;
}

crate::registry::registry! {
    /// Configuration of any source, tagged by `kind`.
    config SourceConfig;
    /// The kind of a source: one per variant of [`SourceConfig`].
    kind SourceKind;
    build BuildSource(SourceBuildContext) -> Box<dyn Source>;
    kinds {
        /// JSON lines from a file (or stdin with path `-`).
        Jsonl(jsonl::JsonLinesSourceConfig) = "jsonl",
        /// CSV with a header from a file.
        Csv(csv::CsvSourceConfig) = "csv",
        /// An Arrow IPC file or stream.
        ArrowIpc(arrow_ipc::ArrowIpcSourceConfig) = "arrow_ipc",
        /// Standard input.
        Stdin(stdin::StdinSourceConfig) = "stdin",
        /// Synthetic concept-drift streams with labels.
        Generator(generator::GeneratorSourceConfig) = "generator",
        /// A Fluvio topic.
        Fluvio(fluvio::FluvioSourceConfig) = "fluvio",
    }
}

impl SourceConfig {
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

    /// Whether the source reads standard input (which cannot be re-read, so cannot resume
    /// from a checkpoint): a `stdin` source, or a text file source with path `-`.
    pub fn reads_stdin(&self) -> bool {
        match self {
            SourceConfig::Stdin(_) => true,
            SourceConfig::Jsonl(c) => c.path.as_os_str() == "-",
            SourceConfig::Csv(c) => c.path.as_os_str() == "-",
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest config of each kind (an exhaustive `match`: a new kind must add one).
    fn minimal_toml(kind: SourceKind) -> &'static str {
        match kind {
            SourceKind::Jsonl => "kind = \"jsonl\"\npath = \"events.jsonl\"",
            SourceKind::Csv => "kind = \"csv\"\npath = \"events.csv\"",
            SourceKind::ArrowIpc => "kind = \"arrow_ipc\"\npath = \"events.arrow\"",
            SourceKind::Stdin => "kind = \"stdin\"",
            SourceKind::Generator => "kind = \"generator\"\nconcept = { kind = \"sea\" }",
            SourceKind::Fluvio => "kind = \"fluvio\"\ntopic = \"events\"",
        }
    }

    #[test]
    fn every_kind_parses_from_a_minimal_config() {
        for &kind in SourceKind::ALL {
            let config: SourceConfig = toml::from_str(minimal_toml(kind))
                .unwrap_or_else(|e| panic!("{kind}: {e}\n{}", minimal_toml(kind)));
            assert_eq!(config.kind(), kind);
            assert_eq!(config.kind().as_str(), kind.to_string());
        }
    }

    #[test]
    fn kinds_are_unique_and_an_unknown_kind_lists_them_all() {
        let mut names = SourceKind::names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SourceKind::ALL.len());
        let e = toml::from_str::<SourceConfig>("kind = \"jsonlines\"\npath = \"x\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant `jsonlines`"), "{e}");
        for name in SourceKind::names() {
            assert!(e.contains(&format!("`{name}`")), "`{name}` missing from: {e}");
        }
    }

    fn context(name: &str) -> SourceBuildContext {
        let spec = eddy_engine::source::StreamSpec {
            key: "id".into(),
            time: "ts".into(),
            label: None,
            declared: Vec::new(),
        };
        SourceBuildContext {
            name: name.into(),
            events: spec.clone(),
            labels: spec,
            role: StreamRole::Events,
            batch_size: 16,
            resume: None,
            stop: Default::default(),
            metrics: eddy_engine::metrics::MetricsFactory::noop("t"),
        }
    }

    #[test]
    fn build_errors_name_the_source_its_kind_and_the_field() {
        let build = |t: &str| {
            let config: SourceConfig = toml::from_str(t).unwrap();
            config.build(&context("events")).err().expect("the build fails").to_string()
        };
        let e = build("kind = \"csv\"\npath = \"/nonexistent/x.csv\"");
        assert!(
            e.starts_with("source `events` (csv), field `path`: cannot open /nonexistent/x.csv: "),
            "{e}"
        );
        let e = build("kind = \"csv\"\npath = \"/nonexistent/x.csv\"\ndelimiter = \"é\"");
        assert_eq!(e, "source `events` (csv), field `delimiter`: must be one ASCII character");
        let e = build("kind = \"generator\"\nconcept = { kind = \"sea\", noise = 2.0 }");
        assert!(e.starts_with("source `events` (generator), field `concept`: sea: noise"), "{e}");
    }

    #[test]
    fn stdin_is_recognised_by_kind_and_by_path() {
        let parse = |t: &str| toml::from_str::<SourceConfig>(t).unwrap();
        assert!(parse(minimal_toml(SourceKind::Stdin)).reads_stdin());
        assert!(parse("kind = \"jsonl\"\npath = \"-\"").reads_stdin());
        assert!(!parse(minimal_toml(SourceKind::Jsonl)).reads_stdin());
        assert!(!parse(minimal_toml(SourceKind::Generator)).reads_stdin());
    }
}
