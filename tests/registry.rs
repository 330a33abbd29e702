//! Models leave the engine: the champion is published to the registry, a better shadow is
//! promoted with its lineage recorded, and a separate `eddy score` process (the embeddable
//! scorer) picks up each new version, including a rollback.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eddy_ok, json, KillOnDrop};

const BASE: &str = r#"[pipeline]
name = "reg"

[sources.stream]
kind = "generator"
events = 30000
seed = 3
label_delay = "1s"
concept = { kind = "sea", drift_at = [0.5], functions = [0, 2], noise = 0.05 }

[model]
kind = "logistic"

[model.optimizer]
kind = "sgd"
learning_rate = 0.0005

[registry]
dir = "models/reg"
publish_every_updates = 10000

[metrics]
enabled = false
"#;

const SHADOW: &str = r#"
[[model.shadows]]
name = "fast"
optimizer = { kind = "adagrad", learning_rate = 0.5 }

[promotion]
metric = "log_loss"
window = 2000
min_improvement = 0.01
significance = 0.01
check_every = 500
"#;

struct ScoreProcess {
    child: KillOnDrop,
    out: BufReader<std::process::ChildStdout>,
}

impl ScoreProcess {
    fn version(&mut self) -> u64 {
        let stdin = self.child.0.stdin.as_mut().unwrap();
        writeln!(stdin, r#"{{"x0": 5.0, "x1": 4.0, "x2": 1.0}}"#).unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let p = v["prediction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{v}");
        v["version"].as_u64().unwrap()
    }

    fn wait_for(&mut self, version: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.version();
            if v == version {
                return;
            }
            assert!(Instant::now() < deadline, "scorer still serves {v}, expected {version}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn promotion_is_published_with_lineage_and_an_embedded_scorer_swaps_it_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.toml"), BASE).unwrap();
    std::fs::write(dir.path().join("shadow.toml"), format!("{BASE}{SHADOW}")).unwrap();

    // 1. A plain run publishes the champion every 10k updates and at the end.
    eddy_ok(dir.path(), &["run", "-q", "--config", "base.toml", "--summary", "a.json"]);
    let a = json(&dir.path().join("a.json"));
    let first: Vec<u64> =
        a["published_versions"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(first, vec![1, 2, 3]);

    // 2. A separate process embeds the scorer on the registry.
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["score", "--dir", "models/reg", "--watch-ms", "20"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut scorer = ScoreProcess { child: KillOnDrop(child), out };
    assert_eq!(scorer.version(), 3);

    // 3. A run with a faster-learning shadow: it wins the gate and is promoted.
    eddy_ok(dir.path(), &["run", "-q", "--config", "shadow.toml", "--summary", "b.json"]);
    let b = json(&dir.path().join("b.json"));
    let promotions = b["promotions"].as_array().unwrap();
    assert!(!promotions.is_empty(), "the fast shadow is promoted: {b}");
    let p = &promotions[0];
    assert_eq!(p["from_slot"], "fast");
    assert!(p["gate"]["shadow"].as_f64().unwrap() < p["gate"]["champion"].as_f64().unwrap());
    assert!(p["gate"]["p_value"].as_f64().unwrap() < 0.01);
    let promoted = p["new_version"].as_u64().unwrap();
    assert!(promoted > 3);

    // Lineage in the registry.
    let out = eddy_ok(dir.path(), &["models", "--registry", "models/reg", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let versions = list["versions"].as_array().unwrap();
    let m = versions.iter().find(|m| m["version"] == promoted).unwrap();
    assert_eq!(m["slot"], "fast (promoted to champion)");
    assert!(m["metrics"]["gate_log_loss_shadow"].is_number());
    assert!(m["event_time"]["max_ms"].as_i64().unwrap() >= m["event_time"]["min_ms"].as_i64().unwrap());
    let demoted = versions.iter().find(|m| m["version"] == promoted - 1).unwrap();
    assert_eq!(demoted["slot"], "champion", "the demoted champion stays in the registry");
    let latest = versions.iter().map(|m| m["version"].as_u64().unwrap()).max().unwrap();
    assert_eq!(list["current"], latest);

    // 4. The scorer process swapped the newest version in without a restart ...
    scorer.wait_for(latest);
    // ... and follows a rollback, which is itself recorded.
    eddy_ok(dir.path(), &["models", "--registry", "models/reg", "rollback", "--to", "2"]);
    scorer.wait_for(2);
    let history = eddy_ok(dir.path(), &["models", "--registry", "models/reg", "history"]);
    assert!(String::from_utf8_lossy(&history.stdout).contains("\"rollback\""));
}

/// A run in which no label ever joined its event (here: every label comes after the join's
/// TTL) must not publish its untrained champion: services would load a model that predicts a
/// constant.
#[test]
fn a_champion_that_learned_nothing_is_never_published() {
    let dir = tempfile::tempdir().unwrap();
    let config = BASE.replace("label_delay = \"1s\"", "label_delay = \"10s\"") + "\n[join]\nttl = \"1s\"\n";
    std::fs::write(dir.path().join("late.toml"), config).unwrap();
    eddy_ok(dir.path(), &["run", "-q", "--config", "late.toml", "--summary", "s.json"]);
    let s = json(&dir.path().join("s.json"));
    assert_eq!(s["joined"], 0, "{s}");
    assert_eq!(s["published_versions"].as_array().unwrap().len(), 0, "{s}");
    assert!(!dir.path().join("models/reg/CURRENT").exists());
}
