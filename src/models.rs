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

fn run(args: &ModelsArgs) -> Result<(), String> {
    let dir = registry_dir(args)?;
    if !dir.is_dir() {
        return Err(format!("no model registry at {}", dir.display()));
    }
    let registry = ModelRegistry::open(&dir).map_err(|e| e.to_string())?;
    let current = registry.current().map_err(|e| e.to_string())?;
    match &args.command {
        ModelsCommand::List { json } => {
            let list = registry.list().map_err(|e| e.to_string())?;
            if *json {
                let value = serde_json::json!({ "current": current, "versions": list });
                println!("{}", serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?);
            } else {
                println!(
                    "{:>8} {:>8} {:<10} {:<28} {:>10} {:<8}",
                    "version", "parent", "slot", "produced by", "examples", "device"
                );
                for m in list {
                    let produced = serde_json::to_value(&m.produced_by)
                        .ok()
                        .and_then(|v| v["kind"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    let mark = if Some(m.version) == current { " *" } else { "" };
                    println!(
                        "{:>8} {:>8} {:<10} {:<28} {:>10} {:<8}{mark}",
                        m.version,
                        m.parent.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                        m.slot,
                        produced,
                        m.examples,
                        m.device
                    );
                }
                println!("(* = current)");
            }
        }
        ModelsCommand::Show { version } => {
            let m = registry.show(*version).map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&m).map_err(|e| e.to_string())?);
        }
        ModelsCommand::Rollback { to, reason } => {
            let change = registry.rollback(*to, reason).map_err(|e| e.to_string())?;
            println!("serving version {to} (was {:?})", change.from);
        }
        ModelsCommand::Promote { dir: from, reason } => {
            let v = registry.promote_from(from, reason).map_err(|e| e.to_string())?;
            println!("imported the current model of {} as version {v}, now serving it", from.display());
        }
        ModelsCommand::History => {
            for change in registry.history().map_err(|e| e.to_string())? {
                println!("{}", serde_json::to_string(&change).map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(())
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn score_lines(dir: &Path, watch_ms: u64) -> Result<(), String> {
    let scorer = Scorer::open(dir).map_err(|e| e.to_string())?;
    let _watch = (watch_ms > 0).then(|| scorer.watch(Duration::from_millis(watch_ms)));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                writeln!(out, "{}", serde_json::json!({ "error": e.to_string() }))
                    .map_err(|e| e.to_string())?;
                continue;
            }
        };
        let Some(map) = value.as_object() else {
            writeln!(out, "{}", serde_json::json!({ "error": "expected a JSON object" }))
                .map_err(|e| e.to_string())?;
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
            .map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}
