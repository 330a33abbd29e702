//! Feature drift seen from outside: a feature whose distribution shifts mid-stream is caught by
//! the reference PSI/KS check and by a detector watching a windowed statistic; the stationary
//! feature next to it is not.

mod common;

use common::{eddy_ok, json, json_lines, replay_config};

#[test]
fn a_shifted_feature_raises_drift_events_and_a_stationary_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = Vec::new();
    let mut labels = Vec::new();
    // Deterministic pseudo-random values in [0, 1).
    let mut state = 12345u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..6000u64 {
        let shift = if i >= 3000 { 3.0 } else { 0.0 };
        let x = next() + shift;
        let z = next();
        let ts = 1_700_000_000_000u64 + i * 100;
        events.push(format!(r#"{{"id": "e{i}", "ts": {ts}, "x": {x}, "z": {z}}}"#));
        labels.push(format!(r#"{{"id": "e{i}", "ts": {}, "label": {}}}"#, ts + 1000, (z > 0.5) as u8));
    }
    std::fs::write(dir.path().join("e.jsonl"), events.join("\n")).unwrap();
    std::fs::write(dir.path().join("l.jsonl"), labels.join("\n")).unwrap();
    let extra = r#"
[sinks.drift]
kind = "jsonl"
path = "drift.jsonl"

[windows.ten_seconds]
stats = { window = { kind = "tumbling", size_ms = 10000 } }

[reference_drift]
settings = { reference_size = 500, current_size = 500, check_every = 50 }

[drift.x_window_mean]
input = "window.ten_seconds.x.mean"
detector = { kind = "page_hinkley", threshold = 1.0, min_instances = 5 }

[drift.z_window_mean]
input = "window.ten_seconds.z.mean"
detector = { kind = "page_hinkley", threshold = 1.0, min_instances = 5 }
"#;
    replay_config(dir.path(), "e.jsonl", "l.jsonl", extra);
    eddy_ok(dir.path(), &["validate", "--config", "pipeline.toml"]);
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml", "--summary", "s.json"]);
    let s = json(&dir.path().join("s.json"));
    let drift = s["drift"].as_array().unwrap();
    let first = |detector: &str, input: &str| {
        drift
            .iter()
            .find(|d| d["detector"] == detector && d["input"] == input)
            .map(|d| d["event_index"].as_u64().unwrap())
    };
    let psi = first("reference_drift.psi", "feature.x").expect("PSI catches the shift of x");
    assert!((3000..3600).contains(&psi), "PSI fired at {psi}");
    let window = first("x_window_mean", "window.ten_seconds.x.mean").expect("the window-mean detector fires");
    assert!((3000..3700).contains(&window), "window detector fired at event {window}");
    assert!(
        first("reference_drift.psi", "feature.z").is_none()
            && first("reference_drift.ks", "feature.z").is_none()
    );
    assert!(first("z_window_mean", "window.ten_seconds.z.mean").is_none());
    let sink = json_lines(&dir.path().join("drift.jsonl"));
    assert_eq!(sink.len(), drift.len(), "the drift sink gets every detection");
}
