//! Fluvio helpers for the integration tests: a private local cluster run from a `fluvio-run`
//! binary (one SC and one SPU in a temp directory, on free loopback ports, that a test can stop
//! and start again), and small producer/consumer/admin calls.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fluvio::consumer::ConsumerConfigExt;
use fluvio::metadata::customspu::CustomSpuSpec;
use fluvio::metadata::spu::SpuSpec;
use fluvio::metadata::topic::TopicSpec;
use fluvio::{Fluvio, FluvioClusterConfig, Offset, RecordKey};
use fluvio_controlplane_metadata::spu::{Endpoint, IngressAddr, IngressPort};
use futures_util::StreamExt;

use crate::common::KillOnDrop;

/// A runtime for the async client calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("local addr").port()
}

/// Connects, retrying for up to `wait`.
pub async fn connect(endpoint: &str, wait: Duration) -> Fluvio {
    let deadline = Instant::now() + wait;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            Fluvio::connect_with_config(&FluvioClusterConfig::new(endpoint)),
        )
        .await;
        match attempt {
            Ok(Ok(f)) => return f,
            Ok(Err(e)) if Instant::now() > deadline => {
                panic!("cannot connect to Fluvio at {endpoint}: {e:#}")
            }
            Err(_) if Instant::now() > deadline => panic!("no answer from Fluvio at {endpoint}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// An SC and one SPU run from `fluvio-run`, with their data under `dir`.
pub struct LocalCluster {
    run: PathBuf,
    dir: PathBuf,
    sc_public: u16,
    sc_private: u16,
    spu_public: u16,
    spu_private: u16,
    processes: Vec<KillOnDrop>,
}

const SPU_ID: i32 = 5001;

impl LocalCluster {
    /// Starts a new cluster and registers its SPU.
    pub fn start(run: &Path, dir: &Path) -> Self {
        let mut c = LocalCluster {
            run: run.to_path_buf(),
            dir: dir.to_path_buf(),
            sc_public: free_port(),
            sc_private: free_port(),
            spu_public: free_port(),
            spu_private: free_port(),
            processes: Vec::new(),
        };
        c.spawn_sc();
        let endpoint = c.endpoint();
        let spec = CustomSpuSpec {
            id: SPU_ID,
            public_endpoint: IngressPort {
                port: c.spu_public,
                ingress: vec![IngressAddr { hostname: Some("127.0.0.1".into()), ..Default::default() }],
                ..Default::default()
            },
            private_endpoint: Endpoint {
                port: c.spu_private,
                host: "127.0.0.1".into(),
                ..Default::default()
            },
            rack: None,
            public_endpoint_local: None,
        };
        runtime().block_on(async {
            let f = connect(&endpoint, Duration::from_secs(60)).await;
            f.admin()
                .await
                .create(format!("custom-spu-{SPU_ID}"), false, spec)
                .await
                .expect("register the SPU");
        });
        c.spawn_spu();
        c.wait_ready();
        c
    }

    /// The SC's public address.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.sc_public)
    }

    fn spawn(&mut self, args: &[String], log: &str) {
        let log = std::fs::File::create(self.dir.join(log)).expect("log file");
        let child = Command::new(&self.run)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.run.display()));
        self.processes.push(KillOnDrop(child));
    }

    fn spawn_sc(&mut self) {
        let metadata = self.dir.join("sc-metadata");
        std::fs::create_dir_all(&metadata).expect("metadata dir");
        let args = vec![
            "sc".into(),
            "--local".into(),
            metadata.display().to_string(),
            "--bind-public".into(),
            format!("127.0.0.1:{}", self.sc_public),
            "--bind-private".into(),
            format!("127.0.0.1:{}", self.sc_private),
        ];
        self.spawn(&args, "sc.log");
    }

    fn spawn_spu(&mut self) {
        let data = self.dir.join("spu-data");
        std::fs::create_dir_all(&data).expect("spu data dir");
        let args = vec![
            "spu".into(),
            "-i".into(),
            SPU_ID.to_string(),
            "-p".into(),
            format!("127.0.0.1:{}", self.spu_public),
            "-v".into(),
            format!("127.0.0.1:{}", self.spu_private),
            "--sc-addr".into(),
            format!("127.0.0.1:{}", self.sc_private),
            "--log-base-dir".into(),
            data.display().to_string(),
        ];
        self.spawn(&args, "spu.log");
    }

    fn wait_ready(&self) {
        let endpoint = self.endpoint();
        runtime().block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let f = connect(&endpoint, Duration::from_secs(60)).await;
                let spus = f.admin().await.all::<SpuSpec>().await.unwrap_or_default();
                if spus.iter().any(|s| s.status.is_online()) {
                    return;
                }
                assert!(Instant::now() < deadline, "the SPU did not come online; see {}", self.dir.display());
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    }

    /// Kills the SC and the SPU (as a crash would).
    pub fn stop(&mut self) {
        self.processes.clear();
    }

    /// Starts the SC and the SPU again on the same ports and data.
    pub fn restart(&mut self) {
        self.spawn_sc();
        self.spawn_spu();
        self.wait_ready();
    }
}

/// Creates `topic` with `partitions` partitions and waits until it can be produced to.
pub async fn create_topic(f: &Fluvio, topic: &str, partitions: u32) {
    f.admin()
        .await
        .create(topic.to_string(), false, TopicSpec::new_computed(partitions, 1, None))
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e:#}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.topic_producer(topic.to_string()).await.is_err() {
        assert!(Instant::now() < deadline, "topic {topic} never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Produces `(key, value)` records to `topic` and waits for each to be acknowledged. A record
/// the cluster refuses (a partition whose leader is not back yet after a restart) is sent
/// again, with the ones after it, for up to a minute.
pub async fn produce(f: &Fluvio, topic: &str, records: &[(String, String)]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = 0;
    while done < records.len() {
        let attempt = async {
            let producer = f.topic_producer(topic.to_string()).await?;
            let mut outputs = Vec::new();
            for (k, v) in &records[done..] {
                outputs.push(producer.send(RecordKey::from(k.clone()), v.clone()).await?);
            }
            producer.flush().await?;
            for o in outputs {
                o.wait().await?;
                done += 1;
            }
            anyhow_ok()
        };
        if let Err(e) = attempt.await {
            assert!(Instant::now() < deadline, "producing to {topic} failed for a minute: {e:#}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

fn anyhow_ok() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

/// Every record of every partition of `topic` from the beginning to the end now, as
/// `(key, value)`.
pub async fn read_all(f: &Fluvio, topic: &str) -> Vec<(String, String)> {
    let config = ConsumerConfigExt::builder()
        .topic(topic.to_string())
        .offset_start(Offset::beginning())
        .disable_continuous(true)
        .build()
        .expect("consumer config");
    let mut stream = f.consumer_with_config(config).await.expect("consumer");
    let mut out = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        let r = r.expect("record");
        let key = r.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
        out.push((key, String::from_utf8_lossy(r.value()).into_owned()));
    }
    out
}

/// The offsets committed by consumer `consumer` on `topic`, per partition.
pub async fn committed(f: &Fluvio, consumer: &str, topic: &str) -> std::collections::BTreeMap<u32, i64> {
    f.consumer_offsets()
        .await
        .expect("consumer offsets")
        .into_iter()
        .filter(|o| o.consumer_id == consumer && o.topic == topic)
        .map(|o| (o.partition, o.offset))
        .collect()
}
