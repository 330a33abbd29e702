//! Crash recovery: `eddy run` SIGKILLed at random points and restarted from its checkpoints
//! ends exactly where an uninterrupted run ends — same predictions, dead letters and drift
//! events (file sinks are cut back to the checkpoint and re-emitted), same summary, same final
//! model bit for bit.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eddy, eddy_ok, json, root, KillOnDrop};

/// A replay with everything that holds state: two slots and a promotion gate, a drift monitor
/// on the champion's error, a tumbling window, a registry, dead letters, and checkpoints every
/// 1500 events with small batches (so kills land between and inside checkpoints).
fn setup(dir: &Path) {
    let events = std::fs::read_to_string(root().join("tests/fixtures/streams/sea/events.jsonl")).unwrap();
    let mut out = String::new();
    for (i, line) in events.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if i % 997 == 13 {
            out.push_str("{\"id\": \"bad\", \"ts\": \"never\", \"x1\": 1}\n");
        }
        if i % 2503 == 7 {
            out.push_str("not json\n");
        }
    }
    std::fs::write(dir.join("events.jsonl"), out).unwrap();
    std::fs::copy(root().join("tests/fixtures/streams/sea/labels.jsonl"), dir.join("labels.jsonl")).unwrap();
    let config = r#"[pipeline]
name = "crash"
batch_size = 256

[sources.events]
kind = "jsonl"
path = "events.jsonl"

[sources.labels]
kind = "jsonl"
path = "labels.jsonl"

[sinks.predictions]
kind = "jsonl"
path = "out/predictions.jsonl"

[sinks.dead_letters]
kind = "jsonl"
path = "out/dead_letters.jsonl"

[sinks.drift]
kind = "csv"
path = "out/drift.csv"

[model]
kind = "logistic"

[[model.shadows]]
name = "fast"
optimizer = { kind = "adagrad", learning_rate = 0.1 }

[promotion]
window = 500
check_every = 250

[drift.error]
input = "champion.error"
detector = { kind = "adwin", delta = 0.002 }

[windows.w]
stats = { window = { kind = "tumbling", size_ms = 60000 } }

[metrics]
enabled = false

[registry]
dir = "models"
publish_every_updates = 3000

[checkpoint]
dir = "state"
every_events = 1500
"#;
    std::fs::write(dir.join("pipeline.toml"), config).unwrap();
}

fn run_args() -> Vec<&'static str> {
    vec!["run", "--config", "pipeline.toml", "--summary", "summary.json", "--quiet"]
}

/// Highest checkpoint sequence in `state/`.
fn latest_checkpoint(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("state"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.strip_prefix("checkpoint-")?.strip_suffix(".eddy")?.parse::<u64>().ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The summary without what belongs to one process (timing, what this process wrote).
fn stable_summary(dir: &Path) -> serde_json::Value {
    let mut s = json(&dir.join("summary.json"));
    let o = s.as_object_mut().unwrap();
    for k in [
        "elapsed_seconds",
        "events_per_second",
        "published_versions",
        "checkpoints",
        "checkpoint_max_seconds",
        "checkpoint_bytes",
    ] {
        o.remove(k);
    }
    s
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"))
}

/// Runs `eddy run` in `dir` again and again, SIGKILLing it a pseudo-random 0–150 ms after
/// each new checkpoint appears (so kills land while rows are processed, between checkpoints
/// and while one is written), until a run finishes. Returns the number of kills.
fn run_with_kills(dir: &Path, mut seed: u64) -> usize {
    let mut kills = 0;
    for _ in 0..60 {
        let child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(run_args())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let start = latest_checkpoint(dir);
        let deadline = Instant::now() + Duration::from_secs(120);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let extra = Duration::from_millis((seed >> 33) % 150);
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(status) = child.0.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            if latest_checkpoint(dir) > start {
                std::thread::sleep(extra);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if exited.is_none() {
            exited = child.0.try_wait().unwrap();
        }
        match exited {
            Some(status) => {
                let mut err = String::new();
                std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert!(status.success(), "restarted run failed: {err}");
                return kills;
            }
            None => {
                child.0.kill().unwrap();
                child.0.wait().unwrap();
                kills += 1;
            }
        }
    }
    panic!("the run never finished after {kills} kills");
}

#[test]
fn sigkill_at_random_points_ends_identical_to_an_uninterrupted_run() {
    let reference = tempfile::tempdir().unwrap();
    setup(reference.path());
    eddy_ok(reference.path(), &run_args());

    let crashed = tempfile::tempdir().unwrap();
    setup(crashed.path());
    let kills = run_with_kills(crashed.path(), 0x9e37_79b9_7f4a_7c15);
    assert!(kills >= 3, "only {kills} kills landed mid-run; the test did not exercise recovery");

    for file in ["out/predictions.jsonl", "out/dead_letters.jsonl", "out/drift.csv", "models/CURRENT"] {
        assert!(
            read(reference.path(), file) == read(crashed.path(), file),
            "{file} differs after {kills} kills"
        );
    }
    let current = String::from_utf8(read(reference.path(), "models/CURRENT")).unwrap();
    let snapshot = format!("models/{}", current.trim());
    assert_eq!(read(reference.path(), &snapshot), read(crashed.path(), &snapshot), "final model differs");
    assert_eq!(stable_summary(reference.path()), stable_summary(crashed.path()));
    let s = stable_summary(crashed.path());
    assert_eq!(s["events"], 30_000);
    assert!(s["dead_letters"].as_u64().unwrap() > 0);
}

/// A generator source (resumed by regenerating its batches), feature SQL on the source
/// threads and per-card windowed aggregates on the engine thread: all of it survives kills.
fn setup_fraud(dir: &Path) {
    let config = r#"[pipeline]
name = "crash-fraud"
batch_size = 256

[sources.stream]
kind = "generator"
events = 30000
seed = 11
interval = "1s"
label_delay = "10m"
concept = { kind = "fraud", cards = 500 }

[sinks.predictions]
kind = "jsonl"
path = "out/predictions.jsonl"

[events]
fields = { card_id = "categorical" }
exclude = ["card_id"]

[join]
ttl = "1h"

[model]
kind = "logistic"

[model.optimizer]
kind = "adagrad"
learning_rate = 0.05

[features]
sql = "SELECT card_id, ln(amount) AS log_amount FROM events WHERE amount > 0"

[features.aggregates.card_24h]
sql = """
SELECT card_id, avg(log_amount) AS card_avg, count(*) AS card_n
FROM events
GROUP BY card_id, HOP(ts, INTERVAL '1 hour', INTERVAL '24 hours')
"""

[metrics]
enabled = false

[registry]
enabled = false

[checkpoint]
dir = "state"
every_events = 1500
"#;
    std::fs::write(dir.join("pipeline.toml"), config).unwrap();
}

#[test]
fn sigkill_with_feature_sql_and_windowed_aggregates_on_a_generator() {
    let reference = tempfile::tempdir().unwrap();
    setup_fraud(reference.path());
    eddy_ok(reference.path(), &run_args());

    let crashed = tempfile::tempdir().unwrap();
    setup_fraud(crashed.path());
    let kills = run_with_kills(crashed.path(), 7);
    assert!(kills >= 3, "only {kills} kills landed mid-run");
    assert!(
        read(reference.path(), "out/predictions.jsonl") == read(crashed.path(), "out/predictions.jsonl"),
        "predictions differ after {kills} kills"
    );
    let (mut a, mut b) = (stable_summary(reference.path()), stable_summary(crashed.path()));
    // Rows filtered by feature SQL are counted by the process that read them (source threads
    // run ahead of checkpoints), so that one figure is per process.
    for s in [&mut a, &mut b] {
        s.as_object_mut().unwrap().remove("feature_sql");
    }
    assert_eq!(a, b);
    assert!(a["features"].to_string().contains("card_avg"), "{}", a["features"]);
}

/// Drift-triggered full retrains into a shadow slot: the training buffer and the retrain
/// records are checkpointed, so retrains after a restart see the same examples and install
/// at the same label.
fn setup_retrain(dir: &Path) {
    setup(dir);
    let text = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap().replace(
        "[promotion]\nwindow = 500\ncheck_every = 250",
        "[promotion]\nwindow = 500\ncheck_every = 250\n\n[retrain]\nslot = \"fast\"\nmax_examples = 3000\ncollect_after_trigger = 1500\ninstall_after = 200\ncooldown_labels = 2000\ntriggers = { on_drift = [\"error\"] }\ntrainer = { device = \"cpu\", l2 = 0.0001, tolerance = 1e-5 }",
    );
    assert!(text.contains("[retrain]"));
    std::fs::write(dir.join("pipeline.toml"), text).unwrap();
}

#[test]
fn sigkill_with_full_retrains_ends_identical() {
    let reference = tempfile::tempdir().unwrap();
    setup_retrain(reference.path());
    eddy_ok(reference.path(), &run_args());
    let crashed = tempfile::tempdir().unwrap();
    setup_retrain(crashed.path());
    let kills = run_with_kills(crashed.path(), 11);
    assert!(kills >= 3, "only {kills} kills landed mid-run");
    for file in ["out/predictions.jsonl", "out/drift.csv", "models/CURRENT"] {
        assert!(
            read(reference.path(), file) == read(crashed.path(), file),
            "{file} differs after {kills} kills"
        );
    }
    let (mut a, mut b) = (stable_summary(reference.path()), stable_summary(crashed.path()));
    assert!(!a["retrains"].as_array().unwrap().is_empty(), "no retrain happened: {}", a["retrains"]);
    // A retrain's duration is wall-clock time.
    for s in [&mut a, &mut b] {
        for r in s["retrains"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("seconds");
        }
    }
    assert_eq!(a, b);
}

#[test]
fn a_corrupt_checkpoint_is_refused_and_fresh_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    eddy_ok(dir.path(), &run_args());
    let seq = latest_checkpoint(dir.path());
    let path = dir.path().join(format!("state/checkpoint-{seq:010}.eddy"));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let out = eddy(dir.path(), &run_args());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is corrupt") && err.contains("checksum") && err.contains("--fresh"), "{err}");

    let mut args = run_args();
    args.push("--fresh");
    let out = eddy_ok(dir.path(), &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("moved to"), "{err}");
    assert_eq!(stable_summary(dir.path())["events"], 30_000);
    let discarded = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("discarded-"));
    assert!(discarded, "the old checkpoints were not kept aside");
}

#[test]
fn a_checkpoint_from_another_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    eddy_ok(dir.path(), &run_args());
    let mut args = run_args();
    args.extend(["--set", "model.optimizer.learning_rate=0.5"]);
    let out = eddy(dir.path(), &args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is incompatible") && err.contains("configuration"), "{err}");
}

#[test]
fn checkpoints_refuse_sinks_and_sources_that_cannot_resume() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let text = std::fs::read_to_string(dir.path().join("pipeline.toml")).unwrap().replace(
        "[sinks.drift]\nkind = \"csv\"\npath = \"out/drift.csv\"",
        "[sinks.drift]\nkind = \"arrow_ipc\"\npath = \"out/drift.arrow\"",
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    let out = eddy(dir.path(), &["validate", "--config", "pipeline.toml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sinks.drift.kind") && err.contains("arrow_ipc sink cannot continue"), "{err}");
}
