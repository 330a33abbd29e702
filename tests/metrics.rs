//! The Prometheus endpoint on a live daemon: `/metrics` passes `promtool check metrics` (for a
//! pipeline that emits every metric family, and for `configs/quickstart.toml`), shows every
//! metric declared in `engine/src/metrics.rs` with its declared type, and SIGTERM drains and
//! exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{json, root, KillOnDrop};
use eddy_engine::metrics::{MetricKind, FLUVIO_METRICS, METRICS};

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

/// Starts `eddy run` in `dir` with `args` and a metrics endpoint on a free port; returns the
/// daemon and the endpoint's address. Its stderr goes to `dir/stderr.log`.
fn start(dir: &Path, args: &[&str]) -> (KillOnDrop, String) {
    let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut guard = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["run", "-q", "--metrics-addr-file", "addr", "--set", "metrics.listen=\"127.0.0.1:0\""])
            .args(args)
            .current_dir(dir)
            .env_remove("EDDY_LOG")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(dir.join("addr")) {
            if !a.is_empty() {
                break a;
            }
        }
        if let Some(status) = guard.0.try_wait().unwrap() {
            panic!("eddy exited ({status}) before serving metrics:\n{}", stderr_of(dir));
        }
        assert!(Instant::now() < deadline, "metrics address never written:\n{}", stderr_of(dir));
        std::thread::sleep(Duration::from_millis(50));
    };
    (guard, addr)
}

fn stderr_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
}

/// Scrapes `/metrics` until `ready` holds for the body (or `within` passes); returns the last
/// body and whether it was ready.
fn scrape_until(addr: &str, within: Duration, ready: impl Fn(&str) -> bool) -> (String, bool) {
    let deadline = Instant::now() + within;
    loop {
        let body = get(addr, "/metrics");
        if ready(&body) {
            return (body, true);
        }
        if Instant::now() >= deadline {
            return (body, false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `promtool check metrics` on `body`; prints one line and returns when promtool is not
/// installed.
fn promtool_check(body: &str, what: &str) {
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
                "promtool check metrics failed on {what}:\n{}{}\nscrape:\n{body}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => println!("skipped promtool check: promtool not installed (apt-get install prometheus)"),
    }
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
    let (mut guard, addr) = start(dir.path(), &["--config", "live.toml", "--summary", "s.json"]);
    let child = &mut guard.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    assert_eq!(get(&addr, "/healthz"), "ok\n");

    // Wait until labels have been joined, then scrape.
    let (body, _) = scrape_until(&addr, Duration::from_secs(20), |b| {
        value(b, "eddy_joined_total{").unwrap_or(0.0) > 1000.0
    });
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
    promtool_check(&body, "a generator pipeline");

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

/// `tests/fixtures/full_metrics/pipeline.toml` emits every metric eddy has except the Fluvio
/// connectors' (`FLUVIO_METRICS`: they need a cluster, and `tests/fluvio.rs` checks them when
/// one is configured): each appears with its declared type, and promtool accepts the scrape.
#[test]
fn every_metric_appears_with_its_type_and_the_scrape_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let config = root().join("tests/fixtures/full_metrics/pipeline.toml");
    let junk = root().join("tests/fixtures/full_metrics/junk_labels.jsonl");
    let (_guard, addr) = start(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--set",
            &format!("sources.junk.path={:?}", junk.to_str().unwrap()),
        ],
    );
    let counted = |b: &str, prefix: &str| value(b, prefix).unwrap_or(0.0) >= 1.0;
    let (body, ready) = scrape_until(&addr, Duration::from_secs(90), |b| {
        // A retrain ran to its install, a checkpoint was written, the junk was dead-lettered,
        // a trigger was counted and the per-card windows closed at least once.
        counted(b, "eddy_retrain_duration_seconds_count{")
            && counted(b, "eddy_checkpoints_total{")
            && counted(b, "eddy_dead_letters_total{")
            && counted(b, "eddy_retrain_triggers_total{")
            && b.contains("eddy_feature_window_quantile{pipeline=\"full\",window=\"per_card\",feature=\"log_amount\",key=")
    });
    assert!(ready, "the pipeline never got there:\n{body}\nstderr:\n{}", stderr_of(dir.path()));

    let mut missing = Vec::new();
    for m in METRICS.iter().filter(|m| !FLUVIO_METRICS.contains(m)) {
        let kind = m.kind.as_str();
        let series = match m.kind {
            MetricKind::Histogram => format!("{}_bucket{{pipeline=\"full\"", m.name),
            _ => format!("{}{{pipeline=\"full\"", m.name),
        };
        if !body.contains(&format!("# TYPE {} {kind}\n", m.name)) || !body.contains(&series) {
            missing.push(m.name);
        }
    }
    assert!(missing.is_empty(), "not in the scrape (or with another type): {missing:?}\n{body}");
    for series in [
        "eddy_feature_window_quantile{pipeline=\"full\",window=\"ten_seconds\",feature=\"log_amount\",q=\"0.9\"}",
        "eddy_retrain_outcomes_total{pipeline=\"full\",outcome=\"promoted\"}",
        "eddy_retrain_skipped_total{pipeline=\"full\",reason=\"in_flight\"}",
        "eddy_dead_letters_total{pipeline=\"full\",source=\"junk\",reason=\"malformed\"}",
        "eddy_batch_duration_seconds_bucket{pipeline=\"full\",stage=\"learn\"",
        "eddy_slot_rolling_log_loss{pipeline=\"full\",slot=\"retrained\"}",
        "eddy_drift_state{pipeline=\"full\",detector=\"window_mean\",input=\"window.ten_seconds.log_amount.mean\"}",
    ] {
        assert!(body.contains(series), "missing {series} in scrape:\n{body}");
    }
    assert!(!body.contains("quantile=\""), "a gauge carries a quantile label:\n{body}");
    promtool_check(&body, "tests/fixtures/full_metrics/pipeline.toml");
}

/// The quickstart (windows with quantiles, reference drift, drift on a feature) scrapes clean.
#[test]
fn quickstart_scrape_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let config = root().join("configs/quickstart.toml");
    // Paced, so that the run lasts while it is scraped.
    let (_guard, addr) =
        start(dir.path(), &["--config", config.to_str().unwrap(), "--set", "sources.stream.rate=20000.0"]);
    let (body, ready) = scrape_until(&addr, Duration::from_secs(30), |b| {
        b.contains("eddy_feature_window_quantile{pipeline=\"quickstart\"")
            && value(b, "eddy_joined_total{").unwrap_or(0.0) > 1000.0
    });
    assert!(ready, "no closed window in the scrape:\n{body}\nstderr:\n{}", stderr_of(dir.path()));
    for series in
        ["eddy_feature_window_values{", "eddy_feature_psi{", "eddy_feature_ks{", "eddy_drift_state{"]
    {
        assert!(body.contains(series), "missing {series} in scrape:\n{body}");
    }
    promtool_check(&body, "configs/quickstart.toml");
}
