//! Hostile input and hostile surroundings (issue 19): no input line crashes a run, and the CLI
//! ends quietly when its reader goes away.

mod common;

use common::{eddy_ok, json, json_lines, replay_config};

/// A JSON-lines event or label nested 30,000 levels deep used to overflow the source thread's
/// stack and abort the process (exit 134). Now it is a `too_deep` dead letter with its offset,
/// an over-long line is `too_long`, and the run goes on and exits 0.
#[test]
fn deeply_nested_and_huge_lines_are_dead_letters_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let n = 30_000;
    let events = [
        r#"{"id": "a-0", "ts": 1000, "x": 0.5}"#.to_string(),
        format!("{}{}", "[".repeat(n), "]".repeat(n)),
        format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n)),
        format!(r#"{{"id": "a-3", "ts": 1030, "x": 0.1, "pad": "{}"}}"#, "p".repeat(2 << 20)),
        r#"{"id": "a-4", "ts": 1040, "x": 0.9}"#.to_string(),
    ];
    let labels = [
        r#"{"id": "a-0", "ts": 1500, "label": 1}"#.to_string(),
        format!("{}1{}", r#"{"label":"#.repeat(n), "}".repeat(n)),
        r#"{"id": "a-4", "ts": 1590, "label": 0}"#.to_string(),
    ];
    std::fs::write(dir.path().join("e.jsonl"), events.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("l.jsonl"), labels.join("\n") + "\n").unwrap();
    replay_config(dir.path(), "e.jsonl", "l.jsonl", "");
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml", "--summary", "summary.json"]);

    let mut got: Vec<(String, String, u64)> = json_lines(&dir.path().join("dead_letters.jsonl"))
        .into_iter()
        .map(|d| {
            let record = d["record"].as_str().unwrap();
            assert!(record.len() < 4096, "a refused record is not copied whole: {} bytes", record.len());
            (
                d["source"].as_str().unwrap().into(),
                d["reason"].as_str().unwrap().into(),
                d["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String, u64)> = [
        ("events", "too_deep", 1),
        ("events", "too_deep", 2),
        ("events", "too_long", 3),
        ("labels", "too_deep", 1),
    ]
    .into_iter()
    .map(|(s, r, o)| (s.to_string(), r.to_string(), o))
    .collect();
    assert_eq!(got, want);
    let s = json(&dir.path().join("summary.json"));
    assert_eq!(s["events"], 2);
    assert_eq!(s["labels"], 2);
    assert_eq!(s["dead_letters_by_reason"]["too_deep"], 3);
    assert_eq!(s["dead_letters_by_reason"]["too_long"], 1);
}

/// A directory holding a registry (`models`) with one published version.
fn with_registry() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let events = r#"{"id": "a-0", "ts": 1000, "x": 0.5}"#;
    let labels = r#"{"id": "a-0", "ts": 1500, "label": 1}"#;
    std::fs::write(dir.path().join("e.jsonl"), format!("{events}\n")).unwrap();
    std::fs::write(dir.path().join("l.jsonl"), format!("{labels}\n")).unwrap();
    let config = replay_config(dir.path(), "e.jsonl", "l.jsonl", "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[registry]\nenabled = false", "[registry]\nenabled = true\ndir = \"models\"");
    std::fs::write(&config, text).unwrap();
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml"]);
    dir
}

/// `eddy score` refuses the same lines with an error line instead of parsing them.
#[test]
fn the_scorer_refuses_too_deep_input_lines() {
    use std::io::Write;
    let dir = with_registry();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["score", "--dir", "models", "--watch-ms", "0"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let n = 30_000;
    let input = format!("{}{}\n{{\"x\": 0.5}}\n", "[".repeat(n), "]".repeat(n));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["reason"], "too_deep");
    assert!(lines[1]["prediction"].is_number(), "{lines:?}");
}

/// Whether a command whose stdout reader went away ended quietly: success or SIGPIPE (141), no
/// panic (101), nothing on stderr.
fn ended_quietly(out: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    (out.status.success() || out.status.signal() == Some(13)) && out.stderr.is_empty()
}

/// `eddy models list | head -1` used to panic on the broken pipe (exit 101).
#[test]
fn models_list_into_a_closed_pipe_ends_quietly() {
    let dir = with_registry();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["models", "--registry", "models", "list"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before eddy writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(ended_quietly(&out), "{}: {}", out.status, String::from_utf8_lossy(&out.stderr));
}

/// `eddy score | head` used to fail with "error: Broken pipe".
#[test]
fn score_into_a_closed_pipe_ends_quietly() {
    use std::io::Write;
    let dir = with_registry();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["score", "--dir", "models", "--watch-ms", "0"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    // eddy may stop reading once its output is gone: a failed write here is fine.
    for _ in 0..1000 {
        if stdin.write_all(b"{\"x\": 0.5}\n").is_err() {
            break;
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(ended_quietly(&out), "{}: {}", out.status, String::from_utf8_lossy(&out.stderr));
}

/// A one-character admin token used to be accepted; validation now refuses tokens shorter than
/// 16 bytes and names the key.
#[test]
fn a_short_admin_token_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.jsonl"), "{\"id\": \"a\", \"ts\": 1, \"x\": 1}\n").unwrap();
    std::fs::write(dir.path().join("l.jsonl"), "{\"id\": \"a\", \"ts\": 2, \"label\": 1}\n").unwrap();
    let admin =
        |token: &str| format!("[admin]\nenabled = true\nlisten = \"127.0.0.1:0\"\ntoken = \"{token}\"\n");
    replay_config(dir.path(), "e.jsonl", "l.jsonl", &admin("x"));
    let out = common::eddy(dir.path(), &["validate", "--config", "pipeline.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a 1-byte token passed validation");
    assert!(stderr.contains("admin.token") && stderr.contains("at least 16"), "{stderr}");
    replay_config(dir.path(), "e.jsonl", "l.jsonl", &admin("0123456789abcdef"));
    eddy_ok(dir.path(), &["validate", "--config", "pipeline.toml"]);
}

/// A CSV header naming a column twice used to be accepted, and then every publish failed
/// (`feature "x0" is declared twice`) with exit 0; the source now refuses the file, naming it
/// and the column.
#[test]
fn a_csv_header_with_a_duplicate_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.csv"), "id,ts,x0,x0\na,1,0.5,0.7\n").unwrap();
    std::fs::write(dir.path().join("l.jsonl"), "{\"id\": \"a\", \"ts\": 2, \"label\": 1}\n").unwrap();
    let config = replay_config(dir.path(), "e.csv", "l.jsonl", "");
    let text = std::fs::read_to_string(&config).unwrap().replacen("kind = \"jsonl\"", "kind = \"csv\"", 1);
    std::fs::write(&config, text).unwrap();
    let out = common::eddy(dir.path(), &["run", "-q", "--config", "pipeline.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a duplicate CSV column was accepted: {stderr}");
    assert!(stderr.contains("e.csv") && stderr.contains("`x0` more than once"), "{stderr}");
}

/// Blank lines used to be skipped without being counted (lines read != events + dead
/// letters); they are now `skipped_blank_lines` in the summary.
#[test]
fn blank_lines_are_counted_so_every_line_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let events = [
        r#"{"id": "a-0", "ts": 1000, "x": 0.5}"#,
        "",
        "   ",
        r#"{"id": "a-3", "ts": 1030, "x": "bad"}"#,
        "",
        r#"{"id": "a-5", "ts": 1050, "x": 0.9}"#,
        "",
    ];
    let labels = ["", r#"{"id": "a-0", "ts": 1500, "label": 1}"#, r#"{"id": "a-5", "ts": 1590, "label": 0}"#];
    std::fs::write(dir.path().join("e.jsonl"), events.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("l.jsonl"), labels.join("\n") + "\n").unwrap();
    replay_config(dir.path(), "e.jsonl", "l.jsonl", "");
    eddy_ok(dir.path(), &["run", "-q", "--config", "pipeline.toml", "--summary", "summary.json"]);
    let s = json(&dir.path().join("summary.json"));
    assert_eq!(s["skipped_blank_lines"], 5, "{s}");
    let read = (events.len() + labels.len()) as u64;
    let counted = ["events", "labels", "dead_letters", "skipped_blank_lines"].map(|k| s[k].as_u64().unwrap());
    assert_eq!(counted.iter().sum::<u64>(), read, "{s}");
}

/// `eddy run` with a stdout sink into `| head -1` used to fail with
/// `error: sink `predictions`: Io error: Broken pipe`.
#[test]
fn a_stdout_sink_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let events: String =
        (0..20_000).map(|i| format!("{{\"id\": \"a-{i}\", \"ts\": {i}, \"x\": {}}}\n", i % 7)).collect();
    std::fs::write(dir.path().join("e.jsonl"), events).unwrap();
    std::fs::write(dir.path().join("l.jsonl"), "{\"id\": \"a-0\", \"ts\": 5, \"label\": 1}\n").unwrap();
    let config = replay_config(dir.path(), "e.jsonl", "l.jsonl", "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[sinks.predictions]\nkind = \"jsonl\"\npath = \"predictions.jsonl\"",
        "[sinks.predictions]\nkind = \"stdout\"",
    );
    std::fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["run", "-q", "--config", "pipeline.toml"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let quiet = matches!(out.status.code(), Some(0 | 141)) || out.status.signal() == Some(13);
    assert!(quiet && out.stderr.is_empty(), "{}: {}", out.status, String::from_utf8_lossy(&out.stderr));
}
