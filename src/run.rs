//! `eddy run` and `eddy validate`: from a config file to a running pipeline.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use eddy_connectors::sinks::{BuildSink, SinkKind};
use eddy_connectors::sources::BuildSource;
use eddy_engine::checkpoint::{CheckpointStore, FORMAT_VERSION};
use eddy_engine::pipeline::{Pipeline, RunControl, SinkBinding};
use eddy_engine::record::StreamRole;
use eddy_engine::sink::{SinkBuildContext, SinkInput};
use eddy_engine::source::Source;

use crate::cli::{ConfigArgs, RunArgs};
use crate::config::{self, PipelineConfig};

/// Exit code for an invalid config or command line.
const EXIT_CONFIG: u8 = 2;

fn load(args: &ConfigArgs) -> Result<PipelineConfig, ExitCode> {
    config::load(&args.config, &args.sets).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!("{} error(s) in {}", errors.0.len(), args.config.display());
        ExitCode::from(EXIT_CONFIG)
    })
}

/// `eddy validate`.
pub fn validate(args: ConfigArgs) -> ExitCode {
    match load(&args) {
        Ok(c) => {
            // A closed pipe is not an error, and must not panic as `println!` would.
            let _ = crate::models::print_quietly(&format!(
                "{}: ok (pipeline `{}`, {} source(s), {} sink(s), {} model slot(s))\n",
                args.config.display(),
                c.pipeline.name,
                c.sources.len(),
                c.sinks.len(),
                1 + c.model.shadows.len()
            ));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `eddy run`.
pub fn run(args: RunArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match execute(&config, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(config: &PipelineConfig, args: &RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let control = RunControl::default();
    install_signal_handlers(&control)?;
    let mut pipeline = Pipeline::new(config.to_spec(), control.clone());
    if config.metrics.enabled {
        let (recorder, handle) = crate::exporter::recorder();
        let addr = crate::exporter::serve(config.metrics.listen, handle).map_err(|e| {
            format!(
                "cannot serve metrics on {}: {e} (set metrics.listen to a free address, port 0 for any, or metrics.enabled = false)",
                config.metrics.listen
            )
        })?;
        if !args.quiet {
            eprintln!("metrics on http://{addr}/metrics");
        } else {
            tracing::info!("metrics on http://{addr}/metrics");
        }
        if let Some(path) = &args.metrics_addr_file {
            // Written whole or not at all, so a watcher never reads half an address.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, addr.to_string())?;
            std::fs::rename(&tmp, path)?;
        }
        pipeline = pipeline.with_metrics(recorder);
    }

    if config.admin.enabled {
        let token = config.admin.token().ok_or("admin endpoint enabled without a token")?;
        let addr = crate::admin::serve(config.admin.listen, token, control.manual_retrain.clone())
            .map_err(|e| format!("cannot serve the admin endpoint on {}: {e}", config.admin.listen))?;
        tracing::info!("admin endpoint on http://{addr}/retrain");
        if let Some(path) = &args.admin_addr_file {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, addr.to_string())?;
            std::fs::rename(&tmp, path)?;
        }
    }

    if let Some(cp) = &config.checkpoint {
        let spec = pipeline.spec();
        let mut store = CheckpointStore::open(&cp.dir, spec.fingerprint(FORMAT_VERSION), cp.keep)?;
        if args.fresh {
            if let Some(aside) = store.discard_all()? {
                eprintln!("--fresh: previous checkpoints moved to {}", aside.display());
            }
        }
        let restore = store.latest()?;
        if let Some((path, c)) = &restore {
            if !args.quiet {
                eprintln!("restoring {} ({} events processed)", path.display(), c.engine.events());
            }
        }
        pipeline = pipeline.with_checkpoints(store, cp, restore.map(|(_, c)| c))?;
    }

    let mut sources: Vec<(String, Box<dyn Source>)> = Vec::new();
    for (name, source) in &config.sources {
        let role = source.roles(name).and_then(|r| r.first().copied()).unwrap_or(StreamRole::Events);
        sources.push((name.clone(), source.build(&pipeline.source_context(name, role))?));
    }
    let bounded = sources.iter().all(|(_, s)| s.is_bounded());
    let mut sinks = Vec::new();
    for (name, sink) in &config.sinks {
        let input = sink.input(name).unwrap_or(SinkInput::Predictions);
        let cx = SinkBuildContext {
            name: name.clone(),
            input,
            resume: pipeline.sink_resume(name),
            metrics: pipeline.metrics().clone(),
        };
        sinks.push(SinkBinding { name: name.clone(), input, sink: sink.build(&cx)? });
    }
    let stdout_used = config.sinks.values().any(|s| s.kind() == SinkKind::Stdout);

    let progress =
        (!args.quiet && bounded && std::io::stderr().is_terminal()).then(|| progress_bar(&control));
    let result = pipeline.run(sources, sinks);
    if let Some((bar, handle)) = progress {
        control.stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
        bar.finish_and_clear();
    }
    let summary = result?;

    if let Some(path) = &args.summary {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .map_err(|e| format!("cannot write the summary to {}: {e}", path.display()))?;
    }
    if !args.quiet {
        if stdout_used {
            eprint!("{}", summary.to_table());
        } else {
            // A closed pipe (`eddy run | head`) is not an error.
            crate::models::print_quietly(&summary.to_table())?;
        }
    }
    Ok(())
}

/// SIGINT/SIGTERM ask the pipeline to stop reading, drain and finish; a second signal exits
/// at once.
fn install_signal_handlers(control: &RunControl) -> Result<(), Box<dyn std::error::Error>> {
    let stop = control.stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        runtime.block_on(async move {
            #[cfg(unix)]
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
            for n in 0.. {
                #[cfg(unix)]
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
                if n > 0 {
                    eprintln!("second signal: exiting without draining");
                    std::process::exit(130);
                }
                eprintln!("stopping: draining the pipeline (send the signal again to exit at once)");
                stop.store(true, Ordering::SeqCst);
            }
        });
    })?;
    Ok(())
}

fn progress_bar(control: &RunControl) -> (indicatif::ProgressBar, std::thread::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} events  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let events = control.events.clone();
    let stop = control.stop.clone();
    let b = bar.clone();
    let handle = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let n = events.load(Ordering::Relaxed);
            b.set_position(n);
            let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!("{rate:.0} events/s"));
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (bar, handle)
}
