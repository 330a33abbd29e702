//! `eddy generate`: writes a generator's events and labels to files, so that a replay, a
//! benchmark or another tool (River, Vowpal Wabbit, DuckDB) can read the very same stream.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use eddy_connectors::sinks::arrow_ipc::ArrowIpcSinkConfig;
use eddy_connectors::sinks::csv::CsvSinkConfig;
use eddy_connectors::sinks::jsonl::JsonLinesSinkConfig;
use eddy_connectors::sinks::{BuildSink, SinkConfig};
use eddy_connectors::sources::generator::{ConceptConfig, GeneratorSourceConfig};
use eddy_connectors::sources::BuildSource;
use eddy_engine::record::StreamRole;
use eddy_engine::sink::{SinkBuildContext, SinkInput, SinkResume};
use eddy_engine::source::{LabelField, Poll, SourceBuildContext, StreamSpec};
use eddy_engine::units::ConfigDuration;

/// File format of generated data.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// JSON lines.
    Jsonl,
    /// CSV with a header.
    Csv,
    /// Arrow IPC file.
    ArrowIpc,
}

/// `eddy generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The concept stream as a TOML inline table, e.g. '{ kind = "hyperplane", n_features = 10 }'.
    #[arg(long, default_value = "{ kind = \"sea\" }")]
    pub concept: String,
    /// Number of events.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Event time between a label and its event.
    #[arg(long, default_value = "5s")]
    pub label_delay: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Output directory: events.EXT and labels.EXT are written there.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn generate(args: GenerateArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &GenerateArgs) -> Result<(), Box<dyn std::error::Error>> {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        concept: ConceptConfig,
    }
    let concept = toml::from_str::<Wrapper>(&format!("concept = {}", args.concept))
        .map_err(|e| format!("--concept: {}", e.message()))?
        .concept;
    let config = GeneratorSourceConfig {
        concept,
        events: Some(args.events),
        seed: args.seed,
        start_time: 1_700_000_000_000,
        interval: ConfigDuration::from_millis(10),
        label_delay: args.label_delay.parse().map_err(|e| format!("--label-delay: {e}"))?,
        label_probability: 1.0,
        rate: None,
    };
    if let Some((key, message)) = config.problems().into_iter().next() {
        return Err(format!("--concept {key}: {message}").into());
    }
    let spec = |label: bool| StreamSpec {
        key: "id".into(),
        time: "ts".into(),
        label: label.then(|| LabelField { name: "label".into(), binary: true }),
        declared: Vec::new(),
    };
    let cx = SourceBuildContext {
        name: "generator".into(),
        events: spec(false),
        labels: spec(true),
        role: StreamRole::Events,
        batch_size: 8192,
        resume: None,
        stop: Arc::new(AtomicBool::new(false)),
        metrics: eddy_engine::metrics::MetricsFactory::noop("generate"),
    };
    let mut source = config.build(&cx)?;
    let sink = |name: &str| -> SinkConfig {
        let ext = match args.format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::ArrowIpc => "arrow",
        };
        let path = args.out.join(format!("{name}.{ext}"));
        match args.format {
            Format::Jsonl => SinkConfig::Jsonl(JsonLinesSinkConfig { path, input: None, append: false }),
            Format::Csv => SinkConfig::Csv(CsvSinkConfig { path, input: None }),
            Format::ArrowIpc => SinkConfig::ArrowIpc(ArrowIpcSinkConfig { path, input: None }),
        }
    };
    // The files hold the streams themselves, whatever output a sink would normally receive.
    let sink_cx = |name: &str| SinkBuildContext {
        name: name.to_string(),
        input: SinkInput::Predictions,
        resume: SinkResume::Fresh,
        metrics: eddy_engine::metrics::MetricsFactory::noop("generate"),
    };
    let mut events = sink("events").build(&sink_cx("events"))?;
    let mut labels = sink("labels").build(&sink_cx("labels"))?;
    loop {
        match source.poll()? {
            Poll::Batch(b) => match b.role {
                StreamRole::Events => events.write(&b.batch)?,
                StreamRole::Labels => labels.write(&b.batch)?,
            },
            Poll::Idle => {}
            Poll::End => break,
        }
    }
    events.flush()?;
    labels.flush()?;
    eprintln!("wrote {} events and their labels to {}", args.events, args.out.display());
    Ok(())
}
