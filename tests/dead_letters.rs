//! Every kind of bad record lands in the dead-letter sink with its reason, source and offset,
//! and the run completes with the good records.

mod common;

use common::{eddy_ok, json, json_lines, replay_config};

fn reasons(dir: &std::path::Path) -> Vec<(String, String, u64)> {
    json_lines(&dir.join("dead_letters.jsonl"))
        .into_iter()
        .map(|d| {
            (
                d["source"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
                d["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn bad_json_records_are_dead_lettered_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let events = [
        r#"{"id": "a-0", "ts": 1000, "x": 0.5, "color": "red"}"#,
        r#"{"id": "a-1", "ts": 1010, "x": 0.7, "color": "blue""#, // 1: malformed JSON
        r#"{"id": "a-2", "ts": 1020, "x": "abc", "color": "red"}"#, // 2: wrong type
        r#"{"id": "a-3", "ts": 1030, "x": 1e999, "color": "red"}"#, // 3: infinite
        r#"{"ts": 1040, "x": 0.1, "color": "red"}"#,              // 4: missing key
        r#"{"id": "a-5", "x": 0.1, "color": "red"}"#,             // 5: missing time
        r#"{"id": "a-6", "ts": "yesterday", "x": 0.1}"#,          // 6: unparseable time
        "",                                                       // 7: blank, skipped
        r#"[1, 2, 3]"#,                                           // 8: not an object
        r#"{"id": "a-9", "ts": 1090, "x": 0.9, "color": "green"}"#,
    ];
    let labels = [
        r#"{"id": "a-0", "ts": 1500, "label": 1}"#,
        r#"{"id": "a-9", "ts": 1590, "label": 7}"#, // 1: not 0/1
        r#"{"id": "a-9", "ts": 1591}"#,             // 2: missing label
        r#"{"id": "a-9", "ts": 1592, "label": 0}"#,
    ];
    std::fs::write(dir.path().join("e.jsonl"), events.join("\n")).unwrap();
    std::fs::write(dir.path().join("l.jsonl"), labels.join("\n") + "\n").unwrap();
    replay_config(dir.path(), "e.jsonl", "l.jsonl", "");
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml", "--summary", "summary.json"]);

    let mut got = reasons(dir.path());
    got.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
    let want: Vec<(String, String, u64)> = [
        ("events", "malformed", 1),
        ("events", "wrong_type", 2),
        ("events", "non_finite", 3),
        ("events", "missing_key", 4),
        ("events", "missing_time", 5),
        ("events", "bad_time", 6),
        ("events", "malformed", 8),
        ("labels", "bad_label", 1),
        ("labels", "missing_label", 2),
    ]
    .into_iter()
    .map(|(s, r, o)| (s.to_string(), r.to_string(), o))
    .collect();
    assert_eq!(got, want);

    let letters = json_lines(&dir.path().join("dead_letters.jsonl"));
    let wrong = letters.iter().find(|d| d["offset"] == 2 && d["source"] == "events").unwrap();
    assert!(wrong["record"].as_str().unwrap().contains("\"abc\""), "the raw record is kept: {wrong}");
    assert!(!wrong["detail"].as_str().unwrap().is_empty());

    let s = json(&dir.path().join("summary.json"));
    assert_eq!(s["events"], 2);
    assert_eq!(s["labels"], 2);
    assert_eq!(s["joined"], 2);
    assert_eq!(s["dead_letters"], 9);
    assert_eq!(s["dead_letters_by_reason"]["malformed"], 2);
    assert_eq!(json_lines(&dir.path().join("predictions.jsonl")).len(), 2);
}

#[test]
fn bad_csv_records_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let events = "id,ts,x,color\nc-0,1000,0.5,red\nc-1,1010,NaN,red\nc-2,1020,abc,red\nc-3,,0.2,red\n,1040,0.1,blue\nc-5,1050,0.3,green,extra\nc-6,1060,0.4,blue\n";
    let labels = "id,ts,label\nc-0,1500,1\nc-6,1560,0\n";
    std::fs::write(dir.path().join("e.csv"), events).unwrap();
    std::fs::write(dir.path().join("l.csv"), labels).unwrap();
    let cfg = replay_config(dir.path(), "e.csv", "l.csv", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("kind = \"jsonl\"\npath = \"e.csv\"", "kind = \"csv\"\npath = \"e.csv\"")
        .replace("kind = \"jsonl\"\npath = \"l.csv\"", "kind = \"csv\"\npath = \"l.csv\"");
    std::fs::write(&cfg, text).unwrap();
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml", "--summary", "summary.json"]);
    let mut got = reasons(dir.path());
    got.sort_by_key(|r| r.2);
    let got: Vec<_> = got.into_iter().map(|(_, r, o)| (r, o)).collect();
    let want: Vec<(String, u64)> =
        [("non_finite", 2), ("wrong_type", 3), ("missing_time", 4), ("missing_key", 5), ("malformed", 6)]
            .into_iter()
            .map(|(r, o)| (r.to_string(), o))
            .collect();
    assert_eq!(got, want);
    let s = json(&dir.path().join("summary.json"));
    assert_eq!((s["events"].as_u64(), s["joined"].as_u64()), (Some(2), Some(2)));
}

/// A sink that cannot write (here: a full disk) stops the run with an error that names the
/// sink and the cause, instead of silently losing output.
#[test]
fn a_failing_sink_stops_the_run_with_its_own_error() {
    if !std::path::Path::new("/dev/full").exists() {
        println!("skipped: /dev/full is not available on this system");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let q = common::root().join("configs/quickstart.toml");
    let out = common::eddy(
        dir.path(),
        &[
            "run",
            "-q",
            "--config",
            q.to_str().unwrap(),
            "--set",
            "sinks.predictions.path=/dev/full",
            "--set",
            "metrics.enabled=false",
            "--set",
            "registry.enabled=false",
            "--set",
            "sources.stream.events=50000",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sink `predictions`") && err.contains("No space left"), "{err}");
}
