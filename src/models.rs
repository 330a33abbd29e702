//! `eddy models` (inspect and steer a model registry) and `eddy score` (score JSON lines with
//! the registry's current model, through the same embeddable `eddy-scorer` services use).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use eddy_scorer::encoding::RawValue;
use eddy_scorer::registry::ModelRegistry;
use eddy_scorer::scorer::Scorer;

/// `eddy models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// The registry directory (default: the one the config's pipeline publishes to).
    #[arg(long, global = true)]
    pub registry: Option<PathBuf>,
    /// A pipeline config whose `registry.dir` (or `models/<pipeline>`) to use.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// `eddy models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every version with its lineage.
    List {
        /// One JSON array of manifests instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One version's manifest (JSON).
    Show {
        /// The version.
        version: u64,
    },
    /// Serve an earlier version again (recorded in the history).
    Rollback {
        /// The version to serve.
        #[arg(long)]
        to: u64,
        /// Why (recorded).
        #[arg(long, default_value = "manual rollback with eddy models rollback")]
        reason: String,
    },
    /// Import the current model of another registry as a new version and serve it.
    Promote {
        /// The other registry directory.
        #[arg(long)]
        dir: PathBuf,
        /// Why (recorded).
        #[arg(long, default_value = "manual promotion with eddy models promote")]
        reason: String,
    },
    /// Every change of the served version.
    History,
}

fn registry_dir(args: &ModelsArgs) -> Result<PathBuf, String> {
    if let Some(d) = &args.registry {
        return Ok(d.clone());
    }
    match &args.config {
        Some(c) => crate::config::load(c, &[]).map(|c| c.registry_dir()).map_err(|e| e.to_string()),
        None => Err("say which registry: --registry DIR or --config PIPELINE.toml".into()),
    }
}

pub fn models(args: ModelsArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Appends a formatted line to a `String`.
macro_rules! outln {
    ($text:expr, $($arg:tt)*) => {{
        $text.push_str(&format!($($arg)*));
        $text.push('\n');
    }};
}

/// Whether a write failed because the reader of stdout went away (`eddy models list | head`):
/// the command then ends quietly with success, as a Unix filter does.
pub fn closed_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Writes `text` to stdout; a closed pipe is not an error (see [`closed_pipe`]).
pub fn print_quietly(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if !closed_pipe(&e) => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn run(args: &ModelsArgs) -> Result<(), String> {
    let dir = registry_dir(args)?;
    if !dir.is_dir() {
        return Err(format!("no model registry at {}", dir.display()));
    }
    let registry = ModelRegistry::open(&dir).map_err(|e| e.to_string())?;
    let current = registry.current().map_err(|e| e.to_string())?;
    let mut text = String::new();
    match &args.command {
        ModelsCommand::List { json } => {
            let list = registry.list().map_err(|e| e.to_string())?;
            if *json {
                let value = serde_json::json!({ "current": current, "versions": list });
                outln!(text, "{}", serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?);
            } else {
                outln!(
                    text,
                    "{:>8} {:>8} {:<10} {:<28} {:>10} {:<8}",
                    "version",
                    "parent",
                    "slot",
                    "produced by",
                    "examples",
                    "device"
                );
                for m in list {
                    let produced = serde_json::to_value(&m.produced_by)
                        .ok()
                        .and_then(|v| v["kind"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    let mark = if Some(m.version) == current { " *" } else { "" };
                    outln!(
                        text,
                        "{:>8} {:>8} {:<10} {:<28} {:>10} {:<8}{mark}",
                        m.version,
                        m.parent.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                        m.slot,
                        produced,
                        m.examples,
                        m.device
                    );
                }
                outln!(text, "(* = current)");
            }
        }
        ModelsCommand::Show { version } => {
            let m = registry.show(*version).map_err(|e| e.to_string())?;
            outln!(text, "{}", serde_json::to_string_pretty(&m).map_err(|e| e.to_string())?);
        }
        ModelsCommand::Rollback { to, reason } => {
            let change = registry.rollback(*to, reason).map_err(|e| e.to_string())?;
            outln!(text, "serving version {to} (was {:?})", change.from);
        }
        ModelsCommand::Promote { dir: from, reason } => {
            let v = registry.promote_from(from, reason).map_err(|e| e.to_string())?;
            outln!(text, "imported the current model of {} as version {v}, now serving it", from.display());
        }
        ModelsCommand::History => {
            for change in registry.history().map_err(|e| e.to_string())? {
                outln!(text, "{}", serde_json::to_string(&change).map_err(|e| e.to_string())?);
            }
        }
    }
    print_quietly(&text)
}

/// `eddy score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The model registry directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Poll the registry this often (ms) and swap new versions in; 0 never reloads.
    #[arg(long, default_value_t = 200)]
    pub watch_ms: u64,
}

/// Reads flat JSON objects of raw features from stdin and writes `{"prediction", "version"}`
/// per line.
pub fn score(args: ScoreArgs) -> ExitCode {
    match score_lines(&args.dir, args.watch_ms) {
        Ok(()) | Err(Stop::ClosedPipe) => ExitCode::SUCCESS,
        Err(Stop::Error(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why scoring stopped early.
enum Stop {
    /// The reader of stdout went away (`eddy score | head`): not an error.
    ClosedPipe,
    /// Anything else.
    Error(String),
}

impl From<String> for Stop {
    fn from(e: String) -> Self {
        Stop::Error(e)
    }
}

fn write_failed(e: std::io::Error) -> Stop {
    if closed_pipe(&e) {
        Stop::ClosedPipe
    } else {
        Stop::Error(e.to_string())
    }
}

fn score_lines(dir: &Path, watch_ms: u64) -> Result<(), Stop> {
    let scorer = Scorer::open(dir).map_err(|e| Stop::Error(e.to_string()))?;
    let _watch = (watch_ms > 0).then(|| scorer.watch(Duration::from_millis(watch_ms)));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| Stop::Error(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        // The same limits as every JSON-lines source: no line reaches the parser that is over
        // MAX_LINE_BYTES long or nests deeper than MAX_NESTING_DEPTH.
        if let Some((why, detail)) = eddy_connectors::sources::text::check_json_line(line.as_bytes()) {
            writeln!(out, "{}", serde_json::json!({ "error": detail, "reason": why }))
                .map_err(write_failed)?;
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                writeln!(out, "{}", serde_json::json!({ "error": e.to_string() })).map_err(write_failed)?;
                continue;
            }
        };
        let Some(map) = value.as_object() else {
            writeln!(out, "{}", serde_json::json!({ "error": "expected a JSON object" }))
                .map_err(write_failed)?;
            continue;
        };
        let features: Vec<(&str, RawValue<'_>)> = map
            .iter()
            .map(|(k, v)| {
                let raw = match v {
                    serde_json::Value::Number(n) => {
                        n.as_f64().map(RawValue::Number).unwrap_or(RawValue::Missing)
                    }
                    serde_json::Value::String(s) => RawValue::Text(s),
                    serde_json::Value::Bool(b) => RawValue::Bool(*b),
                    _ => RawValue::Missing,
                };
                (k.as_str(), raw)
            })
            .collect();
        let p = scorer.score(&features);
        writeln!(out, "{}", serde_json::json!({ "prediction": p.value, "version": p.version }))
            .map_err(write_failed)?;
        out.flush().map_err(write_failed)?;
    }
    Ok(())
}
