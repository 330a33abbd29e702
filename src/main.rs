//! The `eddy` binary: command line, config loading, wiring of sources, pipeline and sinks,
//! signals and progress.

mod admin;
mod cli;
mod config;
mod detect;
mod exporter;
mod generate;
mod http;
mod models;
mod run;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator (DataFusion's own CLI makes the same choice): Arrow
/// buffers are built on source threads and freed on the engine thread, and the windowed
/// aggregates keep a small buffer per key; mimalloc's per-thread free lists serve both with
/// less work than glibc's arenas. It also backs its arenas with transparent huge pages, which
/// shortens the page walks of random reads over tens of MB of per-key state, at the cost of a
/// larger resident set; `MIMALLOC_ALLOW_THP=0` keeps small pages. Figures: benches/README.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        })
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Validate(args) => run::validate(args),
        cli::Command::Generate(args) => generate::generate(args),
        cli::Command::Detect(args) => detect::detect(args),
        cli::Command::Models(args) => models::models(args),
        cli::Command::Score(args) => models::score(args),
        cli::Command::Retrain(args) => admin::retrain(args),
    }
}
