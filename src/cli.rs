//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// eddy: a streaming online-learning engine.
#[derive(Debug, Parser)]
#[command(name = "eddy", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); EDDY_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline: to the end of finite sources, or until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Check a config without running it; reports every error at once.
    Validate(ConfigArgs),
    /// Write a synthetic drifting stream (events and labels) to files.
    Generate(crate::generate::GenerateArgs),
    /// Run one drift detector over a recorded series (one number per line) and print the
    /// 0-based index of every value at which it detected drift.
    Detect(crate::detect::DetectArgs),
    /// Inspect a model registry, roll back, or import a model from another registry.
    Models(crate::models::ModelsArgs),
    /// Score JSON lines from stdin with a registry's current model (hot-swapping new versions).
    Score(crate::models::ScoreArgs),
    /// Ask a running daemon for a manual retrain through its admin endpoint.
    Retrain(crate::admin::RetrainArgs),
}

/// Which config, with overrides.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Pipeline config file (TOML).
    #[arg(short, long)]
    pub config: PathBuf,
    /// Override a config key by its dotted path, e.g. --set sources.events.path=e.jsonl
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// `eddy run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Write the run summary as one JSON object to this file.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// No progress bar and no summary table.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the address the metrics endpoint bound to into this file (useful with port 0).
    #[arg(long, value_name = "FILE")]
    pub metrics_addr_file: Option<PathBuf>,
    /// Write the address the admin endpoint bound to into this file.
    #[arg(long, value_name = "FILE")]
    pub admin_addr_file: Option<PathBuf>,
    /// With `[checkpoint]`: do not restore the latest checkpoint; move the state directory's
    /// checkpoints into a `discarded-<time>` subdirectory and start from the beginning.
    #[arg(long)]
    pub fresh: bool,
}
