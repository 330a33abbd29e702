//! Helpers shared by the integration tests: run the real `eddy` binary in a temp directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (configs and fixtures are relative to it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `eddy` with `args` in `dir`.
pub fn eddy(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .current_dir(dir)
        .env_remove("EDDY_LOG")
        .output()
        .expect("eddy runs")
}

/// Runs `eddy` and asserts it succeeded.
pub fn eddy_ok(dir: &Path, args: &[&str]) -> Output {
    let out = eddy(dir, args);
    assert!(
        out.status.success(),
        "eddy {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Reads a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Reads a JSON-lines file.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// A minimal replay config over `events` and `labels` files with a predictions and a
/// dead-letter sink in `dir`.
pub fn replay_config(dir: &Path, events: &str, labels: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"[pipeline]
name = "test"

[sources.events]
kind = "jsonl"
path = "{events}"

[sources.labels]
kind = "jsonl"
path = "{labels}"

[sinks.predictions]
kind = "jsonl"
path = "predictions.jsonl"

[sinks.dead_letters]
kind = "jsonl"
path = "dead_letters.jsonl"

[model]
kind = "logistic"

[metrics]
enabled = false

[registry]
enabled = false

{extra}
"#
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Kills a spawned daemon when a test ends, even by a failed assertion, so no process outlives
/// its test.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
