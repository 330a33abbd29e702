//! The Prometheus endpoint on a live daemon: `/metrics` passes `promtool check metrics`, shows
//! the pipeline's counters and drift detectors while it runs, and SIGTERM drains and exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{json, KillOnDrop};

fn get(addr: &str, path: &str) -> String {
    let mut last = None;
    for _ in 0..20 {
        match try_get(addr, path) {
            Ok(body) => return body,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("GET {path} from {addr} failed: {last:?}");
}

fn try_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
}

fn value(body: &str, series_prefix: &str) -> Option<f64> {
    body.lines().find(|l| l.starts_with(series_prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn live_scrape_is_valid_prometheus_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"[pipeline]
name = "live"

[sources.stream]
kind = "generator"
rate = 20000.0
label_delay = "1s"
concept = { kind = "sea", drift_at = [0.5], functions = [0, 2], period = 40000, noise = 0.05 }

[model]
kind = "logistic"

[drift.champion_error]
input = "champion.error"
detector = { kind = "adwin" }

[metrics]
listen = "127.0.0.1:0"
"#;
    std::fs::write(dir.path().join("live.toml"), config).unwrap();
    let mut guard = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args([
                "run",
                "-q",
                "--config",
                "live.toml",
                "--summary",
                "s.json",
                "--metrics-addr-file",
                "addr",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(dir.path().join("addr")) {
            if !a.is_empty() {
                break a;
            }
        }
        assert!(Instant::now() < deadline, "metrics address never written");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(get(&addr, "/healthz"), "ok\n");

    // Wait until labels have been joined, then scrape.
    let mut body = String::new();
    while Instant::now() < deadline {
        body = get(&addr, "/metrics");
        if value(&body, "eddy_joined_total{").unwrap_or(0.0) > 1000.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for series in [
        "eddy_events_total{pipeline=\"live\"}",
        "eddy_labels_total{pipeline=\"live\"}",
        "eddy_joined_total{pipeline=\"live\"}",
        "eddy_join_buffer_events{pipeline=\"live\"}",
        "eddy_slot_rolling_accuracy{pipeline=\"live\",slot=\"champion\"}",
        "eddy_drift_estimate{pipeline=\"live\",detector=\"champion_error\",input=\"champion.error\"}",
        "eddy_batch_duration_seconds_bucket{pipeline=\"live\",stage=\"score\"",
        "# HELP eddy_drift_detections_total",
    ] {
        assert!(body.contains(series), "missing {series} in scrape:\n{body}");
    }
    assert!(value(&body, "eddy_joined_total{").unwrap() > 1000.0);

    match Command::new("promtool")
        .arg("check")
        .arg("metrics")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut p) => {
            p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => println!("skipped promtool check: promtool not installed (apt-get install prometheus)"),
    }

    // SIGTERM: drain and exit 0 with a summary.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(10), "eddy did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    let s = json(&dir.path().join("s.json"));
    assert!(s["events"].as_u64().unwrap() > 1000);
    assert!(s["joined"].as_u64().unwrap() > 0);
}
