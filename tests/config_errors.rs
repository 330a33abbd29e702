//! `eddy validate` and `eddy run` on bad configs: every error at once, located, with what is
//! allowed and a near-match suggestion.

mod common;

use common::{eddy, eddy_ok, root};

#[test]
fn reports_every_error_at_once_with_lines_and_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.jsonl"), "").unwrap();
    std::fs::write(dir.path().join("l.jsonl"), "").unwrap();
    let config = r#"[pipeline]
name = "bad"

[sources.events]
kind = "jsnl"
path = "e.jsonl"

[sources.labels]
kind = "jsonl"
path = "l.jsonl"
folow = true

[lables]
key = "id"

[join]
ttl = "30 parsecs"

[model]
kind = "logistic"

[model.optimizer]
kind = "sgd"
learing_rate = 0.1
"#;
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let out = eddy(dir.path(), &["validate", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expect = [
        "bad.toml:5:1: `sources.events.kind`: unknown value `jsnl`; did you mean `jsonl`? (allowed: jsonl, csv, arrow_ipc, stdin, generator, fluvio)",
        "bad.toml:11:1: `sources.labels.folow`: unknown key `folow`; did you mean `follow`?",
        "bad.toml:13:2: `lables`: unknown key `lables`; did you mean `labels`?",
        "bad.toml:17:1: `join.ttl`: invalid duration \"30 parsecs\"",
        "bad.toml:24:1: `model.optimizer.learing_rate`: unknown key `learing_rate`; did you mean `learning_rate`?",
        "5 error(s) in bad.toml",
    ];
    for e in expect {
        assert!(err.contains(e), "missing `{e}` in:\n{err}");
    }
}

#[test]
fn semantic_errors_name_the_key_and_the_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"[pipeline]
name = "bad name!"
batch_size = 0

[sources.stream]
kind = "jsonl"
path = "missing.jsonl"

[join]
ttl = "0s"
max_pending = 0

[model]
kind = "logistic"

[model.optimizer]
learning_rate = -1.0
"#;
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let out = eddy(dir.path(), &["run", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2), "config errors exit 2 before anything runs");
    let err = String::from_utf8_lossy(&out.stderr);
    for e in [
        "bad.toml:2:1: `pipeline.name`",
        "bad.toml:3:1: `pipeline.batch_size`: must be between 1 and 1048576, got 0",
        "bad.toml:5:10: `sources.stream`: cannot tell whether this source carries events or labels",
        "bad.toml:7:1: `sources.stream.path`: file `missing.jsonl` does not exist",
        "no source carries events",
        "no source carries labels",
        "bad.toml:10:1: `join.ttl`: must be longer than 0",
        "bad.toml:11:1: `join.max_pending`: must be at least 1",
        "bad.toml:17:1: `model.optimizer.learning_rate`: must be a positive number, got -1",
    ] {
        assert!(err.contains(e), "missing `{e}` in:\n{err}");
    }
}

#[test]
fn invalid_toml_points_at_the_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[pipeline]\nname = \"x\nbatch_size = 3\n").unwrap();
    let out = eddy(dir.path(), &["validate", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:") && err.contains("invalid TOML"), "{err}");
}

#[test]
fn set_overrides_any_key_and_its_errors_name_the_override() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = root().join("configs/quickstart.toml");
    let cfg = cfg.to_str().unwrap();
    eddy_ok(
        dir.path(),
        &["validate", "--config", cfg, "--set", "join.ttl=2m", "--set", "model.optimizer.kind=ftrl"],
    );
    let out = eddy(dir.path(), &["validate", "--config", cfg, "--set", "join.ttl=forever"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`join.ttl`") && err.contains("--set join.ttl"), "{err}");
    let out = eddy(dir.path(), &["validate", "--config", cfg, "--set", "model.optimiser.kind=sgd"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `optimizer`?"), "{err}");
}

#[test]
fn shipped_configs_validate() {
    let dir = root();
    for entry in std::fs::read_dir(dir.join("configs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            eddy_ok(&dir, &["validate", "--config", path.to_str().unwrap()]);
        }
    }
}
