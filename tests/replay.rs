//! Replays of the development streams (tests/fixtures/streams, from ../shared/data) through
//! `configs/replay.toml`: the champion's prequential accuracy must be at least River's
//! `LogisticRegression` on the same stream with the same label delay; and runs are
//! deterministic, whatever the input format.

mod common;

use common::{eddy_ok, json, root};

fn replay(dir: &std::path::Path, stream: &str) -> serde_json::Value {
    let fixtures = root().join("tests/fixtures/streams").join(stream);
    let config = root().join("configs/replay.toml");
    let summary = dir.join(format!("{stream}.json"));
    eddy_ok(
        dir,
        &[
            "run",
            "-q",
            "--config",
            config.to_str().unwrap(),
            "--set",
            &format!("sources.events.path={}", fixtures.join("events.jsonl").display()),
            "--set",
            &format!("sources.labels.path={}", fixtures.join("labels.jsonl").display()),
            "--set",
            &format!("sinks.predictions.path={}", dir.join(format!("{stream}-predictions.jsonl")).display()),
            "--set",
            &format!("sinks.dead_letters.path={}", dir.join("dead.jsonl").display()),
            "--set",
            "metrics.enabled=false",
            "--set",
            &format!("registry.dir={}", dir.join("models").display()),
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    json(&summary)
}

#[test]
fn champion_matches_or_beats_river_on_every_development_stream() {
    let dir = tempfile::tempdir().unwrap();
    let reference = json(&root().join("tests/fixtures/streams/reference.json"));
    let mut report = Vec::new();
    for stream in ["sea", "hyperplane", "agrawal", "stagger"] {
        let s = replay(dir.path(), stream);
        assert_eq!(s["events"], 30000);
        assert_eq!(s["joined"], 30000, "{stream}: every label joins");
        assert_eq!(s["dead_letters"], 0);
        let ours = s["metrics"]["champion"]["accuracy"].as_f64().unwrap();
        let river = reference["streams"][stream]["delayed"]["accuracy"].as_f64().unwrap();
        report.push(format!("{stream}: eddy {ours:.4} vs River {river:.4}"));
        // River's figures are rounded to 4 decimals.
        assert!(ours >= river - 0.00005, "{stream}: accuracy {ours:.4} below River's {river:.4}\n{report:?}");
    }
    println!("{}", report.join("\n"));
}

#[test]
fn the_same_inputs_give_identical_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    replay(&a, "agrawal");
    replay(&b, "agrawal");
    let pa = std::fs::read(a.join("agrawal-predictions.jsonl")).unwrap();
    let pb = std::fs::read(b.join("agrawal-predictions.jsonl")).unwrap();
    assert_eq!(pa.len(), pb.len());
    assert!(pa == pb, "predictions differ between two runs");

    // The generator too: same seed, same stream, same predictions.
    let q = root().join("configs/quickstart.toml");
    for d in [&a, &b] {
        eddy_ok(
            d,
            &[
                "run",
                "-q",
                "--config",
                q.to_str().unwrap(),
                "--set",
                "sources.stream.events=20000",
                "--summary",
                "s.json",
            ],
        );
    }
    let qa = std::fs::read(a.join("out/quickstart/predictions.jsonl")).unwrap();
    let qb = std::fs::read(b.join("out/quickstart/predictions.jsonl")).unwrap();
    assert!(!qa.is_empty() && qa == qb);
}

#[test]
fn jsonl_csv_and_arrow_ipc_inputs_learn_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut accuracies = Vec::new();
    for (format, ext, kind) in
        [("jsonl", "jsonl", "jsonl"), ("csv", "csv", "csv"), ("arrow-ipc", "arrow", "arrow_ipc")]
    {
        let out = dir.path().join(format);
        eddy_ok(
            dir.path(),
            &[
                "generate",
                "--concept",
                "{ kind = \"agrawal\" }",
                "--events",
                "5000",
                "--format",
                format,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        let summary = out.join("s.json");
        eddy_ok(
            &out,
            &[
                "run",
                "-q",
                "--config",
                root().join("configs/replay.toml").to_str().unwrap(),
                "--set",
                &format!("sources.events.kind={kind}"),
                "--set",
                &format!("sources.labels.kind={kind}"),
                "--set",
                &format!("sources.events.path=events.{ext}"),
                "--set",
                &format!("sources.labels.path=labels.{ext}"),
                "--set",
                "metrics.enabled=false",
                "--summary",
                summary.to_str().unwrap(),
            ],
        );
        let s = json(&summary);
        assert_eq!(s["events"], 5000, "{format}");
        assert_eq!(s["joined"], 5000, "{format}");
        let features: Vec<String> = s["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{}:{}", f["name"], f["kind"]))
            .collect();
        accuracies.push((format, s["metrics"]["champion"]["accuracy"].as_f64().unwrap(), features));
    }
    let (_, acc0, f0) = &accuracies[0];
    for (format, acc, f) in &accuracies[1..] {
        assert_eq!(f, f0, "{format} resolves the same features");
        assert!((acc - acc0).abs() < 1e-12, "{format}: {acc} vs jsonl {acc0}");
    }
}
