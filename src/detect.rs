//! `eddy detect`: the detector playground. Tune a detector on history before it watches a
//! pipeline: `eddy detect adwin --param delta=0.01 errors.txt` prints the 0-based index of
//! every value at which drift was detected.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eddy_operators::drift::{DriftDetectorConfig, DriftState};

/// `eddy detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Detector kind (the list comes from the detector registry).
    #[arg(value_name = "KIND", help = format!("Detector kind: {}", DriftDetectorConfig::KINDS.join(", ")))]
    pub kind: String,
    /// A detector parameter, e.g. --param delta=0.01 (repeatable); the value is read as in the
    /// pipeline config (a TOML value, or else a string).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The series, one number per line; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// One JSON object per detection (index, value, estimate, state) instead of bare indices.
    #[arg(long)]
    pub json: bool,
}

pub fn detect(args: DetectArgs) -> ExitCode {
    let mut params = Vec::new();
    for p in &args.params {
        match p.split_once('=') {
            Some((k, v)) => params.push((k.trim().to_string(), v.trim().to_string())),
            None => {
                eprintln!("error: --param needs NAME=VALUE, got `{p}`");
                return ExitCode::from(2);
            }
        }
    }
    let config = match DriftDetectorConfig::from_params(&args.kind, &params) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut detector = match config.try_build() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let input: Box<dyn BufRead> = match &args.file {
        Some(p) if p.as_os_str() != "-" => match std::fs::File::open(p) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("error: cannot open {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        _ => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut index = 0u64;
    for (line_no, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: read failed at line {}: {e}", line_no + 1);
                return ExitCode::FAILURE;
            }
        };
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let x: f64 = match text.parse() {
            Ok(x) if f64::is_finite(x) => x,
            _ => {
                eprintln!("error: line {}: `{text}` is not a finite number", line_no + 1);
                return ExitCode::from(2);
            }
        };
        let before = detector.estimate();
        let state = detector.update(x);
        if state == DriftState::Drift {
            let r = if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "index": index,
                        "value": x,
                        "estimate_before": before,
                        "estimate_after": detector.estimate(),
                        "window_width": detector.window_width(),
                        "detections": detector.detections(),
                    })
                )
            } else {
                writeln!(out, "{index}")
            };
            if r.is_err() {
                return ExitCode::SUCCESS; // closed pipe (e.g. `| head`)
            }
        }
        index += 1;
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
