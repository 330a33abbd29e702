//! Standard streams: events piped into `eddy run` on stdin, predictions written to stdout, and a
//! tailed (`follow = true`) labels file that keeps growing while the daemon runs.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{json, KillOnDrop};

fn events(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"id\": \"e{i}\", \"ts\": {}, \"x\": {}}}\n", 1000 + i * 10, (i % 7) as f64))
        .collect()
}

#[test]
fn events_from_stdin_predictions_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let labels: String = (0..100)
        .map(|i| format!("{{\"id\": \"e{i}\", \"ts\": {}, \"label\": {}}}\n", 1500 + i * 10, i % 2))
        .collect();
    std::fs::write(dir.path().join("l.jsonl"), labels).unwrap();
    let config = r#"[pipeline]
name = "stdio"
[sources.events]
kind = "stdin"
format = "jsonl"
[sources.labels]
kind = "jsonl"
path = "l.jsonl"
[sinks.predictions]
kind = "stdout"
[model]
kind = "logistic"
[metrics]
enabled = false
[registry]
enabled = false
"#;
    std::fs::write(dir.path().join("p.toml"), config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["run", "--config", "p.toml", "--summary", "s.json"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(events(100).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let predictions: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(predictions.len(), 100, "one prediction per event on stdout, nothing else");
    assert_eq!(predictions[0]["id"], "e0");
    // With stdout carrying predictions, the human summary goes to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("pipeline stdio"));
    let s = json(&dir.path().join("s.json"));
    assert_eq!((s["events"].as_u64(), s["joined"].as_u64()), (Some(100), Some(100)));
}

#[test]
fn follow_tails_a_growing_file_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.jsonl"), events(50)).unwrap();
    std::fs::write(dir.path().join("l.jsonl"), "").unwrap();
    let config = r#"[pipeline]
name = "follow"
[sources.events]
kind = "jsonl"
path = "e.jsonl"
follow = true
[sources.labels]
kind = "jsonl"
path = "l.jsonl"
follow = true
[model]
kind = "logistic"
[metrics]
enabled = false
[registry]
enabled = false
"#;
    std::fs::write(dir.path().join("p.toml"), config).unwrap();
    let mut guard = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", "-q", "--config", "p.toml", "--summary", "s.json"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    // Labels appear later, the last one written in two parts (a writer mid-line).
    let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join("l.jsonl")).unwrap();
    for i in 0..49 {
        writeln!(f, "{{\"id\": \"e{i}\", \"ts\": {}, \"label\": 1}}", 1500 + i * 10).unwrap();
    }
    write!(f, "{{\"id\": \"e49\", \"ts\": 1990,").unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    writeln!(f, " \"label\": 0}}").unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    Command::new("kill").args(["-TERM", &guard.0.id().to_string()]).status().unwrap();
    assert!(guard.0.wait().unwrap().success());
    let s = json(&dir.path().join("s.json"));
    assert_eq!(s["events"], 50);
    assert_eq!(s["labels"], 50);
    assert_eq!(s["joined"], 50);
    assert_eq!(s["dead_letters"], 0, "the line written in two parts is read whole");
}
