//! Stdin source: JSON lines or CSV piped into `eddy run`. Unbounded: the pipeline does not wait
//! for stdin when merging with other sources, and stops at SIGINT/SIGTERM (or end of input).

use std::path::PathBuf;

use eddy_engine::record::StreamRole;
use eddy_engine::source::{Source, SourceContext, SourceError};
use serde::{Deserialize, Serialize};

use super::csv::CsvSourceConfig;
use super::jsonl::JsonLinesSourceConfig;

/// Text format read from stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StdinFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// CSV with a header row.
    Csv,
}

/// Standard input.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    /// Format of the lines.
    #[serde(default)]
    pub format: StdinFormat,
    /// `events` or `labels`; defaults to the source's name when that is one of them.
    #[serde(default)]
    pub role: Option<StreamRole>,
}

impl StdinSourceConfig {
    /// Builds the source.
    ///
    /// # Errors
    /// When stdin cannot be read (CSV: no header).
    pub fn build(&self, cx: &SourceContext) -> Result<Box<dyn Source>, SourceError> {
        let path = PathBuf::from("-");
        match self.format {
            StdinFormat::Jsonl => JsonLinesSourceConfig { path, follow: false, role: self.role }.build(cx),
            StdinFormat::Csv => {
                CsvSourceConfig { path, follow: false, role: self.role, delimiter: ',' }.build(cx)
            }
        }
    }
}
