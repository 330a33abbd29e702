//! Stdin source: JSON lines or CSV piped into `eddy run`. Unbounded: the pipeline does not wait
//! for stdin when merging with other sources, and stops at SIGINT/SIGTERM (or end of input).

use std::path::PathBuf;

use eddy_engine::record::StreamRole;
use eddy_engine::source::{Source, SourceBuildContext};
use serde::{Deserialize, Serialize};

use super::csv::CsvSourceConfig;
use super::jsonl::JsonLinesSourceConfig;
use super::{BuildSource, SourceKind};
use crate::error::ConnectorError;

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

impl BuildSource for StdinSourceConfig {
    /// Builds the source.
    ///
    /// # Errors
    /// When stdin cannot be read (CSV: no header), or a checkpoint asks it to resume.
    fn build(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, ConnectorError> {
        let path = PathBuf::from("-");
        let opened = match self.format {
            StdinFormat::Jsonl => JsonLinesSourceConfig { path, follow: false, role: self.role }.open(cx),
            StdinFormat::Csv => {
                CsvSourceConfig { path, follow: false, role: self.role, delimiter: ',' }.open(cx)
            }
        };
        // The path `-` is not the user's: no field to blame.
        opened.map_err(|(_, p)| ConnectorError::source(&cx.name, SourceKind::Stdin.as_str(), p))
    }
}
