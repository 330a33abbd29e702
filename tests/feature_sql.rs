//! Feature SQL through the real binary: `eddy validate` locating SQL errors, feature queries
//! and windowed aggregates in a run (filtered rows, features, aggregate keys and evictions in
//! the summary, dead letters for rows an expression fails on), and the fraud example beating
//! the same pipeline without its aggregate features.

mod common;

use std::fmt::Write;
use std::path::Path;

use common::{eddy, eddy_ok, json, json_lines, replay_config, root};

/// The events section of the runs with per-card aggregates: the card is a grouping key only.
const CARD_EVENTS: &str = r#"
[events]
exclude = ["card"]
fields = { card = "categorical", merchant = "categorical" }
"#;

/// Average and count of `log_amount` per card over 10 minutes hopping by 1.
const CARD_10M: &str = r#"
[features.aggregates.card_10m]
sql = """
SELECT card, avg(log_amount) AS card_avg, count(*) AS card_n
FROM events
GROUP BY card, HOP(ts, INTERVAL '1 minute', INTERVAL '10 minutes')
"""
"#;

/// Events of 40 cards over two hours, labels 1 s later; every 10th amount is 0 and every 7th
/// merchant is not a number.
fn write_streams(dir: &Path) {
    let mut events = String::new();
    let mut labels = String::new();
    let t0 = 1_700_000_000_000i64;
    for i in 0..2000i64 {
        let ts = t0 + i * 3_600;
        let amount = if i % 10 == 0 { 0.0 } else { (i % 97) as f64 + 1.5 };
        let code = if i % 7 == 0 { "x".to_string() } else { (i % 5).to_string() };
        writeln!(
            events,
            r#"{{"id":"e{i}","ts":{ts},"card":"c{}","amount":{amount},"merchant":"m{}","code":"{code}"}}"#,
            i % 40,
            i % 3
        )
        .unwrap();
        writeln!(labels, r#"{{"id":"e{i}","ts":{},"label":{}}}"#, ts + 1_000, (amount > 50.0) as u8).unwrap();
    }
    std::fs::write(dir.join("events.jsonl"), events).unwrap();
    std::fs::write(dir.join("labels.jsonl"), labels).unwrap();
}

#[test]
fn validate_reports_sql_errors_with_key_and_position() {
    let dir = tempfile::tempdir().unwrap();
    write_streams(dir.path());
    let extra = r#"
[events.fields]
card = "categorical"

[features]
sql = """
SELECT card,
       ln(amount AS log_amount
FROM events
"""

[features.aggregates.card_1h]
sql = """
SELECT card, median(amount) AS m
FROM events
GROUP BY card, HOP(ts, INTERVAL '1 minute', INTERVAL '1 hour')
"""

[features.aggregates.bad_window]
sql = "SELECT card, avg(amount) AS a FROM events GROUP BY card, TUMBLE(ts, INTERVAL '1 fortnight')"
"#;
    let config = replay_config(dir.path(), "events.jsonl", "labels.jsonl", extra);
    let out = eddy(dir.path(), &["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "`features.sql`: SQL 2:18: Expected: ), found: AS",
        "`features.aggregates.card_1h.sql`: SQL 1:14: unknown aggregate `median`",
        "`features.aggregates.bad_window.sql`: SQL 1:", // the interval literal's position
        "unknown unit `fortnight`",
        "3 error(s)",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    // Each error is located at its key in the file too.
    assert!(err.contains("pipeline.toml:"), "{err}");
}

#[test]
fn feature_sql_and_aggregates_in_a_run() {
    let dir = tempfile::tempdir().unwrap();
    write_streams(dir.path());
    let features = r#"
[features]
sql = """
SELECT card,
       ln(amount) AS log_amount,
       upper(merchant) AS merchant_uc,
       CASE WHEN amount > 50 THEN 1 ELSE 0 END AS big
FROM events
WHERE amount > 0
"""
"#;
    let extra = [CARD_EVENTS, features, CARD_10M, "max_state = \"2 KiB\"\n"].concat();
    let extra = extra.as_str();
    replay_config(dir.path(), "events.jsonl", "labels.jsonl", extra);
    eddy_ok(dir.path(), &["validate", "--config", "pipeline.toml"]);
    eddy_ok(dir.path(), &["run", "--config", "pipeline.toml", "--summary", "summary.json", "--quiet"]);
    let s = json(&dir.path().join("summary.json"));
    let f = &s["feature_sql"];
    assert_eq!(f["filtered"], 200, "every 10th amount is 0: {s}");
    assert_eq!(s["events"], 1800);
    let names: Vec<&str> =
        s["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["log_amount", "merchant_uc", "big", "card_avg", "card_n"]);
    let kinds: Vec<&str> =
        s["features"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["numeric", "categorical", "numeric", "numeric", "numeric"]);
    let agg = &f["aggregates"][0];
    assert_eq!(agg["name"], "card_10m");
    // 40 cards do not fit in 2 KiB: least recently seen ones are evicted, and counted.
    assert!(agg["keys"].as_u64().unwrap() < 40, "{agg}");
    assert!(agg["evictions"].as_u64().unwrap() > 0, "{agg}");
    assert!(agg["state_bytes"].as_u64().unwrap() <= 2048, "{agg}");
    // Filtered events never reach the model: their labels find no event.
    assert_eq!(
        s["unmatched_labels"].as_u64().unwrap() + s["waiting_labels_at_end"].as_u64().unwrap(),
        200,
        "{s}"
    );
    let predictions = json_lines(&dir.path().join("predictions.jsonl"));
    assert_eq!(predictions.len(), 1800);
}

#[test]
fn rows_an_expression_fails_on_become_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    write_streams(dir.path());
    let extra = r#"
[events]
fields = { code = "categorical" }

[features]
sql = "SELECT CAST(code AS INT) AS code_number, amount FROM events"
"#;
    let config = replay_config(dir.path(), "events.jsonl", "labels.jsonl", extra);
    eddy_ok(
        dir.path(),
        &["run", "--config", config.to_str().unwrap(), "--summary", "summary.json", "--quiet"],
    );
    let s = json(&dir.path().join("summary.json"));
    // Every 7th code is "x": 286 of 2000 rows.
    assert_eq!(s["feature_sql"]["failed"], 286, "{s}");
    assert_eq!(s["dead_letters_by_reason"]["feature_sql"], 286, "{s}");
    assert_eq!(s["events"], 2000 - 286);
    let dead = json_lines(&dir.path().join("dead_letters.jsonl"));
    assert_eq!(dead[0]["reason"], "feature_sql");
    assert_eq!(dead[0]["offset"], 0);
    assert!(dead[0]["detail"].as_str().unwrap().contains("Cannot cast"), "{}", dead[0]);
}

#[test]
fn a_misspelt_field_stops_the_run_with_the_fields_it_has() {
    let dir = tempfile::tempdir().unwrap();
    write_streams(dir.path());
    let extra = r#"
[features]
sql = "SELECT ln(amout) AS log_amount FROM events"
"#;
    let config = replay_config(dir.path(), "events.jsonl", "labels.jsonl", extra);
    let out = eddy(dir.path(), &["run", "--config", config.to_str().unwrap(), "--quiet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("features.sql reads `amout`"), "{err}");
    assert!(err.contains("amount"), "{err}");
}

#[test]
fn fraud_aggregates_beat_the_same_pipeline_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(root().join("configs/fraud.toml")).unwrap();
    let start = config.find("[features.aggregates.card_24h]").expect("the fraud config has its aggregate");
    // The comment block right above the aggregate goes too; everything else is identical.
    let cut = config[..start].rfind("\n\n").unwrap();
    std::fs::write(dir.path().join("with.toml"), &config).unwrap();
    std::fs::write(dir.path().join("without.toml"), &config[..cut]).unwrap();
    for name in ["with", "without"] {
        eddy_ok(
            dir.path(),
            &["run", "--config", &format!("{name}.toml"), "--summary", &format!("{name}.json"), "--quiet"],
        );
    }
    let with = json(&dir.path().join("with.json"));
    let without = json(&dir.path().join("without.json"));
    let loss = |s: &serde_json::Value| s["metrics"]["champion"]["log_loss"].as_f64().unwrap();
    let auc = |s: &serde_json::Value| s["metrics"]["champion"]["roc_auc"].as_f64().unwrap();
    assert_eq!(with["labels"], without["labels"]);
    assert!(
        loss(&with) < loss(&without) * 0.9,
        "per-card aggregates should cut the prequential log loss by over 10%: {} vs {}",
        loss(&with),
        loss(&without)
    );
    assert!(auc(&with) > auc(&without) + 0.05, "{} vs {}", auc(&with), auc(&without));
    assert_eq!(with["feature_sql"]["aggregates"][0]["keys"], 5000);
    assert!(with["features"].as_array().unwrap().iter().any(|f| f["name"] == "card_avg_log_amount"));
    assert!(!without["features"].as_array().unwrap().iter().any(|f| f["name"] == "card_avg_log_amount"));
}

/// With one events source the aggregates run on its thread and reach the engine as columns;
/// with several they run on the engine thread in the merged order. Splitting the same events
/// (distinct times) into two sources must not change a single prediction or figure.
#[test]
fn aggregates_on_the_source_thread_match_the_engine_thread() {
    let dir = tempfile::tempdir().unwrap();
    write_streams(dir.path());
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let (mut a, mut b) = (String::new(), String::new());
    for (i, line) in events.lines().enumerate() {
        let half = if i % 3 == 0 { &mut a } else { &mut b };
        half.push_str(line);
        half.push('\n');
    }
    std::fs::write(dir.path().join("events_a.jsonl"), a).unwrap();
    std::fs::write(dir.path().join("events_b.jsonl"), b).unwrap();
    let more = r#"
[features]
sql = """
SELECT card, ln(amount) AS log_amount, merchant
FROM events
WHERE amount > 0
"""

[features.aggregates.card_1h]
sql = """
SELECT card, max(log_amount) AS card_max, stddev(log_amount) AS card_sd
FROM events
GROUP BY card, TUMBLE(ts, INTERVAL '1 hour')
"""
"#;
    let extra = [CARD_EVENTS, CARD_10M, more].concat();
    let one = replay_config(dir.path(), "events.jsonl", "labels.jsonl", &extra);
    let one = std::fs::read_to_string(one).unwrap();
    std::fs::write(dir.path().join("one.toml"), &one).unwrap();
    let two = one.replace(
        "[sources.events]\nkind = \"jsonl\"\npath = \"events.jsonl\"",
        "[sources.events_a]\nkind = \"jsonl\"\npath = \"events_a.jsonl\"\nrole = \"events\"\n\n\
         [sources.events_b]\nkind = \"jsonl\"\npath = \"events_b.jsonl\"\nrole = \"events\"",
    );
    assert_ne!(one, two);
    std::fs::write(dir.path().join("two.toml"), two.replace("predictions.jsonl", "predictions_two.jsonl"))
        .unwrap();
    for name in ["one", "two"] {
        eddy_ok(
            dir.path(),
            &[
                "run",
                "--config",
                &format!("{name}.toml"),
                "--summary",
                &format!("{name}.json"),
                "--quiet",
                "--set",
                "pipeline.batch_size=64",
            ],
        );
    }
    let (one, two) = (json(&dir.path().join("one.json")), json(&dir.path().join("two.json")));
    assert_eq!(one["events"], 1800);
    for figure in ["events", "labels", "joined", "features", "metrics"] {
        assert_eq!(one[figure], two[figure], "{figure}");
    }
    assert_eq!(one["feature_sql"]["aggregates"], two["feature_sql"]["aggregates"]);
    let predictions = std::fs::read(dir.path().join("predictions.jsonl")).unwrap();
    assert!(!predictions.is_empty());
    assert!(predictions == std::fs::read(dir.path().join("predictions_two.jsonl")).unwrap());
}
