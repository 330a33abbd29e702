//! Continuous training end to end: an ADWIN detection on a drifting generator stream triggers a
//! CPU retrain, the retrained shadow is promoted, the champion recovers faster than with online
//! updates alone, and the registry records the retrain; plus the admin endpoint's token check
//! and the single-flight/cooldown rules.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eddy_ok, json, KillOnDrop};

const DRIFTING: &str = r#"[pipeline]
name = "rt"

[sources.stream]
kind = "generator"
events = 60000
seed = 5
label_delay = "1s"
concept = { kind = "sea", drift_at = [0.5], functions = [0, 2], noise = 0.05 }

[model]
kind = "logistic"

[model.optimizer]
kind = "sgd"
learning_rate = 0.0005

[[model.shadows]]
name = "retrained"
optimizer = { kind = "sgd", learning_rate = 0.0005 }

[drift.champion_error]
input = "champion.error"
detector = { kind = "adwin" }

[retrain]
slot = "retrained"
max_examples = 3000
collect_after_trigger = 1500
install_after = 200
triggers = { on_drift = ["champion_error"] }
trainer = { device = "cpu", l2 = 0.0001 }

[promotion]
metric = "log_loss"
window = 1000
min_improvement = 0.01
significance = 0.01
check_every = 100

[registry]
dir = "models/rt"

[metrics]
enabled = false
"#;

#[test]
fn drift_triggers_a_cpu_retrain_that_is_promoted_and_speeds_up_recovery() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rt.toml"), DRIFTING).unwrap();
    eddy_ok(dir.path(), &["run", "-q", "--config", "rt.toml", "--summary", "with.json"]);
    eddy_ok(
        dir.path(),
        &[
            "run",
            "-q",
            "--config",
            "rt.toml",
            "--set",
            "retrain.triggers.on_drift=[]",
            "--set",
            "registry.enabled=false",
            "--summary",
            "without.json",
        ],
    );
    let with = json(&dir.path().join("with.json"));
    let without = json(&dir.path().join("without.json"));
    assert!(without["retrains"].as_array().unwrap().is_empty());

    let retrains = with["retrains"].as_array().unwrap();
    let after_drift = retrains
        .iter()
        .find(|r| r["started_at_label"].as_u64().unwrap() > 30000)
        .expect("the concept switch at event 30000 triggers a retrain");
    assert_eq!(after_drift["trigger"], "drift:champion_error");
    assert_eq!(after_drift["device"], "cpu");
    assert_eq!(after_drift["converged"], true);
    assert_eq!(after_drift["outcome"], "promoted", "{retrains:?}");
    assert!(after_drift["examples"].as_u64().unwrap() >= 2000);

    let promotions = with["promotions"].as_array().unwrap();
    let promoted = promotions
        .iter()
        .find(|p| p["from_slot"] == "retrained" && p["at_label"].as_u64().unwrap() > 30000)
        .expect("the retrained shadow is promoted after the drift");

    // The served (champion) accuracy is better with retrains: the recovery after the switch
    // is faster than online updates alone.
    let acc = |s: &serde_json::Value| s["metrics"]["champion"]["accuracy"].as_f64().unwrap();
    assert!(acc(&with) > acc(&without) + 0.001, "with {} vs without {}", acc(&with), acc(&without));

    // The registry shows where the promoted model came from.
    let v = promoted["new_version"].as_u64().unwrap();
    let out = eddy_ok(dir.path(), &["models", "--registry", "models/rt", "show", &v.to_string()]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["produced_by"]["kind"], "retrain");
    assert_eq!(m["produced_by"]["trigger"], "drift:champion_error");
    assert_eq!(m["device"], "cpu");
}

#[test]
fn single_flight_and_cooldown_skip_and_count_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let config = DRIFTING
        .replace(
            "triggers = { on_drift = [\"champion_error\"] }",
            "triggers = { every_labels = 100 }\ncooldown_labels = 5000",
        )
        .replace("[registry]\ndir = \"models/rt\"", "[registry]\nenabled = false");
    std::fs::write(dir.path().join("storm.toml"), config).unwrap();
    eddy_ok(dir.path(), &["run", "-q", "--config", "storm.toml", "--summary", "s.json"]);
    let s = json(&dir.path().join("s.json"));
    let retrains = s["retrains"].as_array().unwrap();
    // Every 100 labels over 60000 labels would be 600 retrains; the cooldown allows one per
    // 5000 labels and the single-flight rule none while one is collecting or running.
    assert!(retrains.len() <= 13, "{} retrains", retrains.len());
    assert!(retrains.len() >= 5);
    assert!(s["retrains_skipped"].as_u64().unwrap() >= 500);
    let starts: Vec<u64> = retrains.iter().map(|r| r["started_at_label"].as_u64().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] >= 5000), "{starts:?}");
}

fn post(addr: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "POST /retrain HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or("").to_string()
}

#[test]
fn admin_endpoint_refuses_a_missing_or_wrong_token_and_runs_a_manual_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let config = DRIFTING
        .replace("events = 60000\n", "rate = 20000.0\n")
        .replace("triggers = { on_drift = [\"champion_error\"] }", "triggers = {}")
        .replace("collect_after_trigger = 1500", "collect_after_trigger = 0")
        .replace("[registry]\ndir = \"models/rt\"", "[registry]\nenabled = false")
        + "\n[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret-s3cret-s3cret\"\n";
    std::fs::write(dir.path().join("live.toml"), config).unwrap();
    let mut guard = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", "-q", "--config", "live.toml", "--summary", "s.json", "--admin-addr-file", "admin"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(dir.path().join("admin")) {
            break a;
        }
        assert!(Instant::now() < deadline, "admin address never written");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(post(&addr, None).contains("401"));
    assert!(post(&addr, Some("wrong")).contains("401"));
    // Let some labels into the training buffer, then ask through the CLI client.
    std::thread::sleep(Duration::from_millis(1500));
    eddy_ok(dir.path(), &["retrain", "--admin", &addr, "--token", "s3cret-s3cret-s3cret"]);
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["retrain", "--admin", &addr, "--token", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::thread::sleep(Duration::from_millis(1000));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    let s = json(&dir.path().join("s.json"));
    let retrains = s["retrains"].as_array().unwrap();
    assert_eq!(retrains.len(), 1, "{retrains:?}");
    assert_eq!(retrains[0]["trigger"], "manual");
}
