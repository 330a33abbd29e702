//! Fluvio end to end: events and labels produced to topics, the real `eddy run` daemon reading
//! them with the Fluvio source and writing predictions with the Fluvio sink; the daemon killed
//! (SIGKILL) and restarted from its checkpoint mid-stream; the cluster stopped and restarted
//! mid-stream.
//!
//! Runs when `EDDY_FLUVIO_ENDPOINT` names a cluster (e.g. one from `fluvio cluster start
//! --local`). With `EDDY_FLUVIO_RUN` set to a `fluvio-run` binary the test starts a private
//! cluster of its own (SC + SPU in a temp dir) — needed for the cluster restart, and enough
//! when no endpoint is given. With neither it prints one `skipped: ...` line and passes.

mod common;
#[path = "common/fluvio.rs"]
mod fluvio_cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::KillOnDrop;
use fluvio_cluster::{committed, connect, create_topic, produce, read_all, runtime, LocalCluster};

/// Events (and labels) in the test stream.
const EVENTS: usize = 2000;
/// Consumer name the sources commit under.
const CONSUMER: &str = "eddy-test";

/// Writes a line the test harness does not capture, so a skip is visible in `cargo test`.
fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[test]
fn fluvio_end_to_end() {
    let endpoint = std::env::var("EDDY_FLUVIO_ENDPOINT").ok().filter(|e| !e.trim().is_empty());
    let run = std::env::var_os("EDDY_FLUVIO_RUN").map(PathBuf::from);
    if endpoint.is_none() && run.is_none() {
        say("skipped: EDDY_FLUVIO_ENDPOINT is not set (point it at a Fluvio cluster's SC, e.g. 127.0.0.1:9003, or set EDDY_FLUVIO_RUN to a fluvio-run binary; see the README's Fluvio section)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut private = None;
    let endpoint = match endpoint {
        Some(e) => e,
        None => {
            let run = run.as_ref().expect("checked above");
            let cluster = LocalCluster::start(run, &mkdir(dir.path(), "cluster-a"));
            let e = cluster.endpoint();
            private = Some(cluster);
            e
        }
    };
    daemon_reads_writes_and_survives_a_kill(&endpoint, &mkdir(dir.path(), "kill"));
    drop(private);
    match &run {
        Some(run) => daemon_rides_out_a_cluster_restart(run, &mkdir(dir.path(), "restart")),
        None => say("skipped the cluster restart: it needs EDDY_FLUVIO_RUN (a fluvio-run binary) to stop and start a private cluster"),
    }
}

fn mkdir(base: &Path, name: &str) -> PathBuf {
    let d = base.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Topic names unique to this run, so a shared cluster can be reused.
fn topics(tag: &str) -> [String; 3] {
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
        % 1_000_000_000;
    let base = format!("eddy-{tag}-{}-{nonce}", std::process::id());
    [format!("{base}-events"), format!("{base}-labels"), format!("{base}-predictions")]
}

/// `(key, value)` records to produce.
type Records = Vec<(String, String)>;

/// Event and label records `range` of a deterministic stream: label = x0 + x1 > 1.
fn stream(range: std::ops::Range<usize>) -> (Records, Records) {
    let mut events = Vec::new();
    let mut labels = Vec::new();
    for i in range {
        let id = format!("e-{i}");
        let ts = 1_700_000_000_000u64 + i as u64 * 100;
        let x0 = ((i * 37) % 100) as f64 / 100.0;
        let x1 = ((i * 11) % 50) as f64 / 25.0;
        events.push((id.clone(), format!(r#"{{"id":"{id}","ts":{ts},"x0":{x0},"x1":{x1}}}"#)));
        let label = u8::from(x0 + x1 > 1.0);
        labels.push((id.clone(), format!(r#"{{"id":"{id}","ts":{},"label":{label}}}"#, ts + 50)));
    }
    (events, labels)
}

fn config(
    dir: &Path,
    endpoint: &str,
    [events, labels, predictions]: &[String; 3],
    checkpoint: bool,
) -> PathBuf {
    let checkpoint =
        if checkpoint { "[checkpoint]\ndir = \"checkpoints\"\ninterval = \"300ms\"\n" } else { "" };
    let text = format!(
        r#"[pipeline]
name = "fluvio"
batch_size = 256

[sources.events]
kind = "fluvio"
endpoint = "{endpoint}"
topic = "{events}"
consumer = "{CONSUMER}"
max_in_flight = 500
max_backoff = "1s"

[sources.labels]
kind = "fluvio"
endpoint = "{endpoint}"
topic = "{labels}"
consumer = "{CONSUMER}"
max_backoff = "1s"

[sinks.predictions]
kind = "fluvio"
endpoint = "{endpoint}"
topic = "{predictions}"
max_in_flight = 1000
max_backoff = "1s"

[sinks.dead_letters]
kind = "jsonl"
path = "dead_letters.jsonl"

[model]
kind = "logistic"

[registry]
enabled = false

[metrics]
listen = "127.0.0.1:0"

{checkpoint}"#
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `eddy run` in `dir`; its stderr goes to `eddy-N.log`.
fn start_daemon(dir: &Path, config: &Path, n: usize) -> KillOnDrop {
    let _ = std::fs::remove_file(dir.join("metrics.addr"));
    let log = std::fs::File::create(dir.join(format!("eddy-{n}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["run", "--config"])
        .arg(config)
        .args(["-q", "--summary", "summary.json", "--metrics-addr-file", "metrics.addr"])
        .current_dir(dir)
        .env("EDDY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("eddy starts");
    KillOnDrop(child)
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for n in 0..3 {
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("eddy-{n}.log"))) {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out += &format!(
                "--- eddy-{n}.log (last lines)\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
    out
}

/// Champion prediction keys (`ID/champion`) found in the predictions topic, with how often
/// each was written.
fn predicted(endpoint: &str, topic: &str) -> BTreeMap<String, usize> {
    runtime().block_on(async {
        let f = connect(endpoint, Duration::from_secs(30)).await;
        let mut seen = BTreeMap::new();
        for (key, value) in read_all(&f, topic).await {
            let v: serde_json::Value =
                serde_json::from_str(&value).expect("each prediction is one JSON object");
            let p = v["prediction"].as_f64().expect("a prediction");
            assert!((0.0..=1.0).contains(&p), "{value}");
            assert_eq!(
                key,
                format!("{}/{}", v["id"].as_str().unwrap(), v["slot"].as_str().unwrap()),
                "record key"
            );
            if key.ends_with("/champion") {
                *seen.entry(key).or_insert(0) += 1;
            }
        }
        seen
    })
}

fn wait_for_predictions(
    dir: &Path,
    endpoint: &str,
    topic: &str,
    at_least: usize,
    within: Duration,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let seen = predicted(endpoint, topic);
        if seen.len() >= at_least {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {at_least} events predicted after {within:?}\n{}",
            seen.len(),
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn sigterm_and_wait(dir: &Path, daemon: &mut KillOnDrop) {
    let status = Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "eddy did not stop after SIGTERM\n{}", logs(dir));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "eddy exited with {exit}\n{}", logs(dir));
}

fn metrics_body(dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(dir.join("metrics.addr")) {
            break a;
        }
        assert!(Instant::now() < deadline, "no metrics address\n{}", logs(dir));
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut s = TcpStream::connect(addr.trim()).expect("metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Sum of the series of `name` whose labels contain `label`.
fn metric(body: &str, name: &str, label: &str) -> Option<f64> {
    let values: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn daemon_reads_writes_and_survives_a_kill(endpoint: &str, dir: &Path) {
    let names = topics("kill");
    let (events, labels) = stream(0..EVENTS);
    let half = EVENTS / 2;
    // Two bad event records: not JSON, and no time.
    let bad = [
        ("bad-1".to_string(), "this is not JSON".to_string()),
        ("bad-2".to_string(), r#"{"id":"bad-2","x0":1}"#.to_string()),
    ];
    runtime().block_on(async {
        let f = connect(endpoint, Duration::from_secs(30)).await;
        create_topic(&f, &names[0], 2).await;
        create_topic(&f, &names[1], 1).await;
        create_topic(&f, &names[2], 1).await;
        produce(&f, &names[0], &events[..half]).await;
        produce(&f, &names[0], &bad).await;
        produce(&f, &names[1], &labels[..half]).await;
    });
    // A topic that does not exist is a clear error, not an endless retry.
    let missing = [format!("{}-missing", names[0]), names[1].clone(), names[2].clone()];
    let missing_config = config(dir, endpoint, &missing, false);
    let mut daemon = start_daemon(dir, &missing_config, 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "eddy kept running on a missing topic\n{}", logs(dir));
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.join("eddy-2.log")).unwrap();
    assert!(!exit.success() && log.contains(&format!("topic `{}` does not exist", missing[0])), "{log}");

    let config = config(dir, endpoint, &names, true);

    // First run: reads the first half, then dies without warning.
    let mut daemon = start_daemon(dir, &config, 0);
    wait_for_predictions(dir, endpoint, &names[2], half / 2, Duration::from_secs(120));
    let body = metrics_body(dir);
    assert_eq!(metric(&body, "eddy_fluvio_connected", "connector=\"events\""), Some(1.0), "{body}");
    assert!(metric(&body, "eddy_source_lag_records", "source=\"events\"").is_some(), "{body}");
    // Wait for a checkpoint's commit, so the restart resumes mid-stream, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = runtime().block_on(async {
            let f = connect(endpoint, Duration::from_secs(30)).await;
            committed(&f, CONSUMER, &names[0]).await
        });
        if !c.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no consumer offset committed after a minute\n{}", logs(dir));
        std::thread::sleep(Duration::from_millis(300));
    }
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();

    // The rest arrives while the daemon is down; the restarted daemon resumes from its
    // checkpoint and predicts every event (some twice: those after the checkpoint).
    runtime().block_on(async {
        let f = connect(endpoint, Duration::from_secs(30)).await;
        produce(&f, &names[0], &events[half..]).await;
        produce(&f, &names[1], &labels[half..]).await;
    });
    let mut daemon = start_daemon(dir, &config, 1);
    let seen = wait_for_predictions(dir, endpoint, &names[2], EVENTS, Duration::from_secs(180));
    let expected: BTreeSet<String> = (0..EVENTS).map(|i| format!("e-{i}/champion")).collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected, "every event predicted");
    // The restart resumed from the checkpoint, not from the beginning: only the rows after the
    // last checkpoint of the first run were written twice.
    let twice = seen.values().filter(|n| **n > 1).count();
    assert!(twice < half, "{twice} events predicted twice: the restart did not resume from its checkpoint");
    sigterm_and_wait(dir, &mut daemon);

    // Offsets are committed after durable checkpoints: by the end, both partitions of the
    // events topic and the labels topic are committed.
    let (events_committed, labels_committed) = runtime().block_on(async {
        let f = connect(endpoint, Duration::from_secs(30)).await;
        (committed(&f, CONSUMER, &names[0]).await, committed(&f, CONSUMER, &names[1]).await)
    });
    assert_eq!(events_committed.len(), 2, "{events_committed:?}");
    assert!(labels_committed.get(&0).is_some_and(|o| *o > 0), "{labels_committed:?}");

    // The bad records are dead letters with their reasons and offsets.
    let dead = common::json_lines(&dir.join("dead_letters.jsonl"));
    let reasons: BTreeSet<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert!(reasons.contains("malformed") && reasons.contains("missing_time"), "{dead:?}");
    assert!(dead
        .iter()
        .all(|d| d["source"] == "events" && d["detail"].as_str().unwrap().starts_with("partition ")));
}

fn daemon_rides_out_a_cluster_restart(run: &Path, dir: &Path) {
    let mut cluster = LocalCluster::start(run, &mkdir(dir, "cluster"));
    let endpoint = cluster.endpoint();
    let names = topics("restart");
    let (events, labels) = stream(0..EVENTS);
    let half = EVENTS / 2;
    runtime().block_on(async {
        let f = connect(&endpoint, Duration::from_secs(30)).await;
        for t in &names {
            create_topic(&f, t, 1).await;
        }
        produce(&f, &names[0], &events[..half]).await;
        produce(&f, &names[1], &labels[..half]).await;
    });
    let config = config(dir, &endpoint, &names, false);
    let mut daemon = start_daemon(dir, &config, 0);
    wait_for_predictions(dir, &endpoint, &names[2], half / 2, Duration::from_secs(120));

    // The cluster goes away: the daemon keeps running, says so in its metrics, and retries.
    cluster.stop();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = metrics_body(dir);
        let down = metric(&body, "eddy_fluvio_connected", "connector=\"events\"") == Some(0.0);
        let retries = metric(&body, "eddy_fluvio_reconnects_total", "connector=\"events\"").unwrap_or(0.0);
        if down && retries >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reconnect attempts seen in the metrics:\n{body}\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(daemon.0.try_wait().unwrap().is_none(), "eddy exited while the cluster was down\n{}", logs(dir));

    // Back up: the daemon reconnects on its own and reads what comes next.
    cluster.restart();
    runtime().block_on(async {
        let f = connect(&endpoint, Duration::from_secs(60)).await;
        produce(&f, &names[0], &events[half..]).await;
        produce(&f, &names[1], &labels[half..]).await;
    });
    let seen = wait_for_predictions(dir, &endpoint, &names[2], EVENTS, Duration::from_secs(180));
    assert_eq!(seen.len(), EVENTS);
    let body = metrics_body(dir);
    assert_eq!(metric(&body, "eddy_fluvio_connected", "connector=\"events\""), Some(1.0), "{body}");
    assert_eq!(metric(&body, "eddy_fluvio_connected", "connector=\"predictions\""), Some(1.0), "{body}");
    sigterm_and_wait(dir, &mut daemon);
    let summary = common::json(&dir.join("summary.json"));
    assert_eq!(summary["events"], EVENTS as u64, "{summary}");
    assert_eq!(summary["labels"], EVENTS as u64, "{summary}");
}

/// The example config is valid, and bad Fluvio values are reported with their keys and lines
/// (no cluster needed: `eddy validate` does not connect).
#[test]
fn fluvio_configs_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let example = common::root().join("configs/fluvio.toml");
    common::eddy_ok(dir.path(), &["validate", "--config", example.to_str().unwrap()]);

    let config = r#"[pipeline]
name = "bad"

[sources.events]
kind = "fluvio"
topic = "Events_1"
partitions = [0, 0]
max_in_flight = 0

[sources.labels]
kind = "fluvio"
topic = "labels"
endpoint = "localhost"
start = "middle"

[sinks.predictions]
kind = "fluvio"
topic = "predictions"
max_backoff = "1ms"

[model]
kind = "logistic"
"#;
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let out = common::eddy(dir.path(), &["validate", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // Inside a tagged source the error is located at the source's table.
    let e = "bad.toml:10:1: unknown value `middle` (allowed: beginning, end, offset)";
    assert!(err.contains(e), "missing `{e}` in:\n{err}");

    // Once it deserialises, every semantic problem is reported at once.
    let config = config.replace("start = \"middle\"", "start = { offset = 5 }");
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let out = common::eddy(dir.path(), &["validate", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for e in [
        "`sources.events.topic`: `Events_1` is not a Fluvio topic name",
        "`sources.events.partitions`: lists a partition twice: [0, 0]",
        "`sources.events.max_in_flight`: must be between 1 and",
        "`sources.labels.endpoint`: `localhost` must be HOST:PORT",
        "`sinks.predictions.max_backoff`: must be at least 100ms",
        "5 error(s) in bad.toml",
    ] {
        assert!(err.contains(e), "missing `{e}` in:\n{err}");
    }
}
