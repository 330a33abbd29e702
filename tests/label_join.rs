//! The label join seen from outside: early, duplicate and unknown labels, expired events, and a
//! full buffer, each counted in the summary and never silently dropped.

mod common;

use common::{eddy_ok, json, json_lines, replay_config};

#[test]
fn every_join_outcome_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    // Events every second; TTL 10 s.
    let events: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"id": "e{i}", "ts": {}, "x": {}}}"#, 1_000_000 + i * 1000, i as f64 / 10.0))
        .chain(std::iter::once(r#"{"id": "late", "ts": 1100000, "x": 1.0}"#.to_string()))
        .collect();
    let labels = [
        r#"{"id": "e5", "ts": 1004000, "label": 1}"#, // early: before its event (ts 1005000)
        r#"{"id": "e0", "ts": 1002000, "label": 0}"#, // joined
        r#"{"id": "e0", "ts": 1003000, "label": 0}"#, // duplicate
        r#"{"id": "nope", "ts": 1003500, "label": 1}"#, // unknown id: unmatched once expired
        r#"{"id": "e2", "ts": 1008000, "label": 1}"#, // joined
                                                      // e1, e3, e4 never get a label: expired when the late event moves time past their TTL
    ];
    std::fs::write(dir.path().join("e.jsonl"), events.join("\n")).unwrap();
    std::fs::write(dir.path().join("l.jsonl"), labels.join("\n")).unwrap();
    replay_config(dir.path(), "e.jsonl", "l.jsonl", "[join]\nttl = \"10s\"\n");
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml", "--summary", "s.json"]);
    let s = json(&dir.path().join("s.json"));
    assert_eq!(s["events"], 7);
    assert_eq!(s["labels"], 5);
    assert_eq!(s["joined"], 3, "{s}");
    assert_eq!(s["early_labels"], 2, "e5 and the unknown id waited for their event: {s}");
    assert_eq!(s["duplicate_labels"], 1);
    assert_eq!(s["unmatched_labels"], 1);
    assert_eq!(s["expired"], 3);
    assert_eq!(s["pending_at_end"], 1, "the last event is still within its TTL");
    assert_eq!(s["metrics"]["champion"]["labels"], 3);
    // Every event is scored before anything is learned from it.
    assert_eq!(json_lines(&dir.path().join("predictions.jsonl")).len(), 7);
}

#[test]
fn a_full_buffer_evicts_the_oldest_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<String> =
        (0..100).map(|i| format!(r#"{{"id": "e{i}", "ts": {}, "x": 1.0}}"#, 1000 + i)).collect();
    let labels: Vec<String> =
        (0..100).map(|i| format!(r#"{{"id": "e{i}", "ts": {}, "label": 1}}"#, 2000 + i)).collect();
    std::fs::write(dir.path().join("e.jsonl"), events.join("\n")).unwrap();
    std::fs::write(dir.path().join("l.jsonl"), labels.join("\n")).unwrap();
    replay_config(dir.path(), "e.jsonl", "l.jsonl", "[join]\nttl = \"1h\"\nmax_pending = 10\n");
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml", "--summary", "s.json"]);
    let s = json(&dir.path().join("s.json"));
    assert_eq!(s["evicted"], 90);
    assert_eq!(s["joined"], 10);
    // Labels of evicted events look like early labels: they wait up to the buffer bound and the
    // rest are counted unmatched at once. Every label is accounted for.
    assert_eq!(s["waiting_labels_at_end"], 10);
    assert_eq!(s["unmatched_labels"], 80);
    let accounted = ["joined", "unmatched_labels", "waiting_labels_at_end", "duplicate_labels"]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(accounted, s["labels"].as_u64().unwrap());
}
