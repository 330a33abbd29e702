//! Fluvio source: records of one topic (all partitions or a chosen list), each record value one
//! JSON object, decoded exactly like a JSON-lines file ([`super::jsonl::JsonDecoder`] and the
//! [`Normalizer`]), with the record's offset as its source offset.
//!
//! A reader task on the source's own small tokio runtime keeps the connection: it connects
//! (retrying with capped exponential backoff while the cluster is unreachable), opens one
//! consumer stream per partition at the right offset, and pushes records into a channel of
//! `max_in_flight` records — a full channel stops the reader, which is the backpressure.
//! [`Source::poll`] takes what arrived within a short wait and returns [`Poll::Idle`] when
//! nothing did, so stop requests and commits are seen promptly.
//!
//! Where reading starts, per partition: the checkpoint's position when the pipeline restores
//! one; else the offset committed under `consumer`; else `start`. Every batch carries the
//! position after it ([`SourcePosition::Partitions`]: next offset per partition). Consumer
//! offsets are written to the cluster only in [`Source::commit`], for positions a durable
//! checkpoint covers: delivery is at-least-once, and with the restored state the effect is
//! exactly-once.
//!
//! Field types are inferred from the first records read (after a restart, the first records
//! after the checkpoint); streams with sometimes-absent fields should declare them in the
//! config so that the decoded columns do not depend on where reading starts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_engine::metrics::{ConnectorDirection, MetricsFactory, SOURCE_COMMITTED_OFFSET, SOURCE_LAG_RECORDS};
use eddy_engine::record::{SourceBatch, StreamRole};
use eddy_engine::source::{Poll, Source, SourceBuildContext, SourceError, SourcePosition};
use eddy_engine::units::ConfigDuration;
use fluvio::consumer::{ConsumerConfigExt, ConsumerStream, OffsetManagementStrategy, RetryMode};
use fluvio::metadata::partition::PartitionSpec;
use fluvio::metadata::topic::TopicSpec;
use fluvio::{Fluvio, Offset};
use futures_util::StreamExt;
use metrics::Gauge;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::jsonl::JsonDecoder;
use super::lines::LineChunk;
use super::normalize::{reason, Normalizer};
use super::text::{decode_lines, screen_chunk, RowDecoder};
use super::{BuildSource, SourceKind};
use crate::error::{ConnectorError, Problem};
use crate::fluvio_client::{
    endpoint_problem, resolve_cluster, topic_problem, Backoff, Cluster, ConnectionMetrics, CONNECT_TIMEOUT,
};

/// How long a poll waits for the first record before it answers [`Poll::Idle`].
const POLL_WAIT: Duration = Duration::from_millis(100);
/// After the first record, how long a poll keeps collecting to fill its batch.
const LINGER: Duration = Duration::from_millis(10);
/// How often the reader refreshes the partitions' high watermarks (for the lag gauges).
const WATERMARK_EVERY: Duration = Duration::from_secs(2);
/// How long a commit may take before it is reported as failed (the next checkpoint retries).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A Fluvio topic. See the module docs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FluvioSourceConfig {
    /// `HOST:PORT` of the cluster's SC; default: `EDDY_FLUVIO_ENDPOINT`, else the current
    /// Fluvio profile.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Topic to read.
    pub topic: String,
    /// `"all"` or a list of partition numbers.
    #[serde(default)]
    pub partitions: PartitionSelection,
    /// Where to start when neither a checkpoint nor a committed consumer offset says.
    #[serde(default)]
    pub start: StartPosition,
    /// Consumer name under which offsets are committed (after each durable checkpoint) and
    /// from which a run without a checkpoint resumes; none: offsets are never committed.
    #[serde(default)]
    pub consumer: Option<String>,
    /// Encoding of record values.
    #[serde(default)]
    pub format: RecordFormat,
    /// `events` or `labels`; defaults to the source's name when that is one of them.
    #[serde(default)]
    pub role: Option<StreamRole>,
    /// Records read ahead of the pipeline at most (the rest waits in the cluster).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Longest wait between reconnect attempts.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: ConfigDuration,
}

pub use crate::fluvio_client::MAX_IN_FLIGHT_LIMIT;
use crate::fluvio_client::{default_max_backoff, default_max_in_flight};

/// Which partitions of the topic a source reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(try_from = "RawPartitions", into = "RawPartitions")]
pub enum PartitionSelection {
    /// Every partition the topic has.
    #[default]
    All,
    /// These partitions.
    List(Vec<u32>),
}

#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum RawPartitions {
    Word(String),
    List(Vec<u32>),
}

/// A `partitions` word other than `"all"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown partitions `{0}`: expected \"all\" or a list of partition numbers like [0, 2]")]
pub struct UnknownPartitions(pub String);

impl TryFrom<RawPartitions> for PartitionSelection {
    type Error = UnknownPartitions;

    fn try_from(raw: RawPartitions) -> Result<Self, UnknownPartitions> {
        match raw {
            RawPartitions::Word(w) if w == "all" => Ok(PartitionSelection::All),
            RawPartitions::Word(w) => Err(UnknownPartitions(w)),
            RawPartitions::List(l) => Ok(PartitionSelection::List(l)),
        }
    }
}

/// Why committing consumer offsets failed (the pipeline logs it and commits again after the
/// next checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The durable position is not a partition position.
    #[error("cannot commit {0:?}: not a Fluvio partition position")]
    NotPartitions(SourcePosition),
    /// The cluster did not answer the connection in time.
    #[error("no answer from {endpoint} within {timeout:?}")]
    NoAnswer {
        /// The cluster's endpoint.
        endpoint: String,
        /// How long it was given.
        timeout: Duration,
    },
    /// The Fluvio client failed (its message, with causes).
    #[error("{0}")]
    Client(String),
    /// Committing one partition failed.
    #[error("partition {partition}: {message}")]
    Partition {
        /// The partition.
        partition: u32,
        /// What went wrong.
        message: String,
    },
}

impl From<PartitionSelection> for RawPartitions {
    fn from(p: PartitionSelection) -> Self {
        match p {
            PartitionSelection::All => RawPartitions::Word("all".into()),
            PartitionSelection::List(l) => RawPartitions::List(l),
        }
    }
}

/// Where a source starts reading a partition when nothing else says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record the partition keeps.
    #[default]
    Beginning,
    /// Only records written after the source first connects (the offset found then is kept in
    /// every position, so a restart does not skip what came in between).
    End,
    /// This absolute offset: `start = { offset = 1000 }`.
    Offset(u64),
}

/// Encoding of record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordFormat {
    /// One flat JSON object per record, as in a JSON-lines file.
    #[default]
    Jsonl,
}

impl FluvioSourceConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = self.endpoint.as_deref().and_then(endpoint_problem) {
            out.push(("endpoint", p));
        }
        if let Some(p) = topic_problem(&self.topic) {
            out.push(("topic", p));
        }
        if let PartitionSelection::List(l) = &self.partitions {
            let mut sorted = l.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if l.is_empty() {
                out.push(("partitions", "must list at least one partition, or be \"all\"".into()));
            } else if sorted.len() != l.len() {
                out.push(("partitions", format!("lists a partition twice: {l:?}")));
            }
        }
        if let Some(c) = &self.consumer {
            if c.trim().is_empty() || c.len() > 255 || c.chars().any(char::is_control) {
                out.push(("consumer", format!("`{c}` must be 1 to 255 printable characters")));
            }
        }
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT_LIMIT {
            out.push((
                "max_in_flight",
                format!("must be between 1 and {MAX_IN_FLIGHT_LIMIT} records, got {}", self.max_in_flight),
            ));
        }
        if self.max_backoff.0 < crate::fluvio_client::MIN_BACKOFF {
            out.push(("max_backoff", format!("must be at least 100ms, got {}", self.max_backoff)));
        }
        out
    }
}

impl BuildSource for FluvioSourceConfig {
    /// Builds the source and starts its reader (which connects in the background: a cluster
    /// that is down at start is retried, not an error).
    ///
    /// # Errors
    /// When no cluster is configured, the checkpoint's position is not a partition position,
    /// or the runtime cannot start.
    fn build(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, ConnectorError> {
        let err = |p: Problem| ConnectorError::source(&cx.name, SourceKind::Fluvio.as_str(), p);
        let cluster =
            resolve_cluster(self.endpoint.as_deref()).map_err(|e| err(e.into()).field("endpoint"))?;
        let positions = Positions::resume(cx.resume.as_ref()).map_err(err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("fluvio-{}", cx.name))
            .enable_all()
            .build()
            .map_err(|e| err(Problem::Runtime(e)))?;
        let (tx, rx) = mpsc::channel(self.max_in_flight.max(1));
        let watermarks = Arc::new(Mutex::new(BTreeMap::new()));
        let reader = Reader {
            name: cx.name.clone(),
            cluster: cluster.clone(),
            topic: self.topic.clone(),
            partitions: self.partitions.clone(),
            start: self.start,
            consumer: self.consumer.clone(),
            next: positions.next.clone(),
            max_backoff: self.max_backoff.0,
            connection: ConnectionMetrics::new(&cx.metrics, &cx.name, ConnectorDirection::Source),
            watermarks: watermarks.clone(),
            tx,
        };
        info!(
            source = %cx.name, topic = %self.topic, endpoint = %cluster.config.endpoint, from = %cluster.origin,
            resume = !positions.next.is_empty(), "Fluvio source starting"
        );
        let task = runtime.spawn(reader.run());
        let normalizer = Normalizer::new(&cx.name, cx.role, cx.spec().clone());
        Ok(Box::new(FluvioSource {
            name: cx.name.clone(),
            topic: self.topic.clone(),
            decoder: JsonDecoder::new(normalizer.clone(), cx.batch_size),
            normalizer,
            inferred: false,
            batch_size: cx.batch_size.max(1),
            runtime,
            task,
            records: rx,
            pending: VecDeque::new(),
            positions,
            watermarks,
            committer: Committer {
                cluster,
                consumer: self.consumer.clone(),
                client: None,
                committed: BTreeMap::new(),
            },
            metrics: cx.metrics.clone(),
            lag: BTreeMap::new(),
            committed_gauges: BTreeMap::new(),
        }))
    }
}

/// What the reader task hands the source.
#[derive(Debug)]
enum Fetched {
    /// One record.
    Record(Fetch),
    /// Reading partition `0` starts at absolute offset `1` (resolved from `start = "end"`, a
    /// configured offset or a committed consumer offset): from now on it is part of the
    /// position even before a record of it arrives.
    Start(u32, i64),
    /// The source cannot work (e.g. the topic does not exist).
    Failed(String),
}

#[derive(Debug)]
struct Fetch {
    partition: u32,
    offset: i64,
    value: Vec<u8>,
}

/// Position bookkeeping: per partition, the offset after the last record handed to the
/// pipeline (or the resolved start offset before any record). Pure, so it is unit tested.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Positions {
    next: BTreeMap<u32, i64>,
}

impl Positions {
    /// Positions restored from a checkpoint (or empty for a fresh start).
    ///
    /// # Errors
    /// When the checkpoint holds a position of another kind of source.
    pub fn resume(resume: Option<&SourcePosition>) -> Result<Self, Problem> {
        match resume {
            None => Ok(Positions::default()),
            Some(SourcePosition::Partitions { next }) => Ok(Positions { next: next.clone() }),
            Some(other) => Err(Problem::WrongPosition {
                position: other.clone(),
                expected: "a Fluvio partition position",
            }),
        }
    }

    /// Records that partition `p` starts at `offset`, unless it already has a position.
    pub fn start(&mut self, p: u32, offset: i64) {
        self.next.entry(p).or_insert(offset);
    }

    /// Whether the record at `offset` of partition `p` is new (not before the position: a
    /// record seen again after a reconnect is dropped).
    pub fn is_new(&self, p: u32, offset: i64) -> bool {
        self.next.get(&p).is_none_or(|n| offset >= *n)
    }

    /// The record at `offset` of partition `p` was handed to the pipeline.
    pub fn advance(&mut self, p: u32, offset: i64) {
        let n = self.next.entry(p).or_insert(offset + 1);
        *n = (*n).max(offset + 1);
    }

    /// The next offset of partition `p`, if known.
    pub fn next(&self, p: u32) -> Option<i64> {
        self.next.get(&p).copied()
    }

    /// The position to store in a checkpoint.
    pub fn snapshot(&self) -> SourcePosition {
        SourcePosition::Partitions { next: self.next.clone() }
    }

    /// Records behind the high watermark `hw` in partition `p` (never negative).
    pub fn lag(&self, p: u32, hw: i64) -> i64 {
        (hw - self.next(p).unwrap_or(0)).max(0)
    }
}

/// What to commit for a durable position: the partitions whose next offset moved past the
/// last commit, with the offset of the last record consumed (`next - 1`, which is what
/// Fluvio stores for a consumer).
pub fn commits_due(
    durable: &SourcePosition,
    committed: &BTreeMap<u32, i64>,
) -> Result<Vec<(u32, i64)>, CommitError> {
    let SourcePosition::Partitions { next } = durable else {
        return Err(CommitError::NotPartitions(durable.clone()));
    };
    Ok(next
        .iter()
        .filter(|(p, n)| **n > 0 && committed.get(p).is_none_or(|c| **n - 1 > *c))
        .map(|(p, n)| (*p, n - 1))
        .collect())
}

/// The connection side: runs on the source's runtime.
struct Reader {
    name: String,
    cluster: Cluster,
    topic: String,
    partitions: PartitionSelection,
    start: StartPosition,
    consumer: Option<String>,
    /// Next offset to fetch per partition (what was sent on, not what the pipeline took).
    next: BTreeMap<u32, i64>,
    max_backoff: Duration,
    connection: ConnectionMetrics,
    watermarks: Arc<Mutex<BTreeMap<u32, i64>>>,
    tx: mpsc::Sender<Fetched>,
}

/// How a session with the cluster ended.
enum Ended {
    /// The source was dropped.
    Closed,
    /// A configuration problem that retrying cannot fix.
    Fatal(String),
    /// The connection failed or broke: retry.
    Lost(String),
}

impl Reader {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.max_backoff);
        let mut ever_connected = false;
        loop {
            match self.session(&mut backoff, &mut ever_connected).await {
                Ended::Closed => return,
                Ended::Fatal(why) => {
                    warn!(source = %self.name, "Fluvio source stops: {why}");
                    let _ = self.tx.send(Fetched::Failed(why)).await;
                    return;
                }
                Ended::Lost(why) => {
                    self.connection.down();
                    let delay = backoff.next_delay();
                    warn!(
                        source = %self.name, endpoint = %self.cluster.config.endpoint, retry_in = ?delay,
                        "Fluvio connection failed: {why}"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.tx.closed() => return,
                    }
                }
            }
        }
    }

    /// One connection: connect, open the partition streams, forward records until something
    /// breaks.
    async fn session(&mut self, backoff: &mut Backoff, ever_connected: &mut bool) -> Ended {
        let fluvio =
            match tokio::time::timeout(CONNECT_TIMEOUT, Fluvio::connect_with_config(&self.cluster.config))
                .await
            {
                Err(_) => return Ended::Lost(format!("no answer within {CONNECT_TIMEOUT:?}")),
                Ok(Err(e)) => return Ended::Lost(format!("cannot connect: {e:#}")),
                Ok(Ok(f)) => f,
            };
        let admin = fluvio.admin().await;
        let topics = match admin.list::<TopicSpec, String>(vec![self.topic.clone()]).await {
            Ok(t) => t,
            Err(e) => return Ended::Lost(format!("cannot list topics: {e:#}")),
        };
        let Some(topic) = topics.into_iter().find(|t| t.name == self.topic) else {
            let why = format!(
                "topic `{}` does not exist on the cluster at {} (create it with `fluvio topic create {}`)",
                self.topic, self.cluster.config.endpoint, self.topic
            );
            // A topic that was there before may be missing briefly while a restarted cluster
            // syncs its metadata; one that never was is a configuration error.
            return if *ever_connected { Ended::Lost(why) } else { Ended::Fatal(why) };
        };
        let count = topic.spec.partitions();
        let partitions: Vec<u32> = match &self.partitions {
            PartitionSelection::All => (0..count).collect(),
            PartitionSelection::List(l) => {
                if let Some(p) = l.iter().find(|p| **p >= count) {
                    let why =
                        format!("topic `{}` has {count} partitions; there is no partition {p}", self.topic);
                    return if *ever_connected { Ended::Lost(why) } else { Ended::Fatal(why) };
                }
                l.clone()
            }
        };

        // Committed consumer offsets, for partitions with no position yet.
        let mut committed = BTreeMap::new();
        if let Some(consumer) = &self.consumer {
            if partitions.iter().any(|p| !self.next.contains_key(p)) {
                match fluvio.consumer_offsets().await {
                    Ok(all) => {
                        for o in
                            all.into_iter().filter(|o| o.consumer_id == *consumer && o.topic == self.topic)
                        {
                            committed.insert(o.partition, o.offset);
                        }
                    }
                    Err(e) => return Ended::Lost(format!("cannot read consumer offsets: {e:#}")),
                }
            }
        }
        let known = watermarks(&admin, &self.topic).await.unwrap_or_default();

        let mut streams = Vec::with_capacity(partitions.len());
        for p in &partitions {
            let resolved = match self.next.get(p) {
                Some(n) => Some(*n),
                None => match (committed.get(p), self.start) {
                    (Some(c), _) => Some(c + 1),
                    (None, StartPosition::Offset(o)) => Some(i64::try_from(o).unwrap_or(i64::MAX)),
                    (None, StartPosition::End) => known.get(p).copied(),
                    (None, StartPosition::Beginning) => None,
                },
            };
            let offset = match resolved {
                Some(n) => {
                    if !self.next.contains_key(p) {
                        self.next.insert(*p, n);
                        if self.tx.send(Fetched::Start(*p, n)).await.is_err() {
                            return Ended::Closed;
                        }
                    }
                    match Offset::absolute(n) {
                        Ok(o) => o,
                        Err(e) => return Ended::Fatal(format!("partition {p}: bad offset {n}: {e}")),
                    }
                }
                None if self.start == StartPosition::End => Offset::end(),
                None => Offset::beginning(),
            };
            let config = match ConsumerConfigExt::builder()
                .topic(self.topic.clone())
                .partition(*p)
                .offset_start(offset)
                .retry_mode(RetryMode::Disabled)
                .build()
            {
                Ok(c) => c,
                Err(e) => return Ended::Fatal(format!("consumer config: {e:#}")),
            };
            match fluvio.consumer_with_config(config).await {
                Ok(s) => streams.push(s),
                Err(e) => return Ended::Lost(format!("cannot open partition {p}: {e:#}")),
            }
        }
        self.connection.up();
        backoff.reset();
        *ever_connected = true;
        info!(source = %self.name, topic = %self.topic, partitions = ?partitions, "Fluvio source connected");
        if let Ok(mut w) = self.watermarks.lock() {
            *w = known;
        }

        let mut merged = futures_util::stream::select_all(streams);
        let mut tick = tokio::time::interval(WATERMARK_EVERY);
        loop {
            tokio::select! {
                item = merged.next() => match item {
                    Some(Ok(record)) => {
                        let (partition, offset) = (record.partition(), record.offset());
                        self.next.insert(partition, offset + 1);
                        let fetch = Fetch { partition, offset, value: record.value().to_vec() };
                        if self.tx.send(Fetched::Record(fetch)).await.is_err() {
                            return Ended::Closed;
                        }
                    }
                    Some(Err(code)) => return Ended::Lost(format!("stream error: {code}")),
                    None => return Ended::Lost("the partition streams ended".into()),
                },
                _ = tick.tick() => match watermarks(&admin, &self.topic).await {
                    Ok(w) => {
                        if let Ok(mut shared) = self.watermarks.lock() {
                            *shared = w;
                        }
                    }
                    Err(e) => debug!(source = %self.name, "cannot refresh high watermarks: {e}"),
                },
                _ = self.tx.closed() => return Ended::Closed,
            }
        }
    }
}

/// High watermark of every partition of `topic`, from the cluster's partition status.
async fn watermarks(admin: &fluvio::FluvioAdmin, topic: &str) -> Result<BTreeMap<u32, i64>, CommitError> {
    let all = admin.all::<PartitionSpec>().await.map_err(|e| CommitError::Client(format!("{e:#}")))?;
    let prefix = format!("{topic}-");
    Ok(all
        .into_iter()
        .filter_map(|m| {
            let p = m.name.strip_prefix(&prefix)?.parse::<u32>().ok()?;
            Some((p, m.status.leader.hw))
        })
        .collect())
}

/// Writes consumer offsets. Fluvio only lets a consumer stream commit the record it last
/// yielded, so committing offset `o` of partition `p` opens a stream at `o`, reads that one
/// record, and commits and flushes it.
struct Committer {
    cluster: Cluster,
    consumer: Option<String>,
    client: Option<Fluvio>,
    committed: BTreeMap<u32, i64>,
}

impl Committer {
    async fn commit(&mut self, topic: &str, p: u32, offset: i64) -> Result<(), CommitError> {
        let Some(consumer) = self.consumer.clone() else { return Ok(()) };
        let partition = |message: String| CommitError::Partition { partition: p, message };
        if self.client.is_none() {
            let f = tokio::time::timeout(CONNECT_TIMEOUT, Fluvio::connect_with_config(&self.cluster.config))
                .await
                .map_err(|_| CommitError::NoAnswer {
                    endpoint: self.cluster.config.endpoint.clone(),
                    timeout: CONNECT_TIMEOUT,
                })?
                .map_err(|e| CommitError::Client(format!("cannot connect: {e:#}")))?;
            self.client = Some(f);
        }
        let client =
            self.client.as_ref().ok_or_else(|| CommitError::Client("internal error: no client".into()))?;
        let config = ConsumerConfigExt::builder()
            .topic(topic.to_string())
            .partition(p)
            .offset_consumer(consumer)
            .offset_start(Offset::absolute(offset).map_err(|e| CommitError::Client(e.to_string()))?)
            .offset_strategy(OffsetManagementStrategy::Manual)
            .retry_mode(RetryMode::Disabled)
            .build()
            .map_err(|e| CommitError::Client(format!("{e:#}")))?;
        let mut stream =
            client.consumer_with_config(config).await.map_err(|e| CommitError::Client(format!("{e:#}")))?;
        match stream.next().await {
            Some(Ok(r)) if r.offset() == offset => {}
            Some(Ok(r)) => {
                return Err(partition(format!(
                    "record {offset} is gone (the partition now starts at {}); cannot commit it",
                    r.offset()
                )))
            }
            Some(Err(code)) => return Err(partition(code.to_string())),
            None => return Err(partition(format!("the stream ended before record {offset}"))),
        }
        stream.offset_commit().await.map_err(|e| partition(format!("commit: {e}")))?;
        stream.offset_flush().await.map_err(|e| partition(format!("flush: {e}")))?;
        self.committed.insert(p, offset);
        Ok(())
    }
}

/// See the module docs.
pub struct FluvioSource {
    name: String,
    topic: String,
    normalizer: Normalizer,
    decoder: JsonDecoder,
    inferred: bool,
    batch_size: usize,
    runtime: tokio::runtime::Runtime,
    task: tokio::task::JoinHandle<()>,
    records: mpsc::Receiver<Fetched>,
    /// Records fetched but not yet handed over, one group per partition.
    pending: VecDeque<(u32, Vec<Fetch>)>,
    positions: Positions,
    watermarks: Arc<Mutex<BTreeMap<u32, i64>>>,
    committer: Committer,
    metrics: MetricsFactory,
    lag: BTreeMap<u32, Gauge>,
    committed_gauges: BTreeMap<u32, Gauge>,
}

impl FluvioSource {
    /// Waits (at most [`POLL_WAIT`]) for records and groups what arrived by partition.
    fn fetch(&mut self) -> Result<(), SourceError> {
        let batch_size = self.batch_size;
        let rx = &mut self.records;
        let received: Vec<Fetched> = self.runtime.block_on(async {
            let mut out = Vec::new();
            match tokio::time::timeout(POLL_WAIT, rx.recv()).await {
                Err(_) => return out,
                Ok(None) => {
                    out.push(Fetched::Failed("internal error: the Fluvio reader stopped".into()));
                    return out;
                }
                Ok(Some(f)) => out.push(f),
            }
            let linger = tokio::time::sleep(LINGER);
            tokio::pin!(linger);
            while out.len() < batch_size {
                tokio::select! {
                    f = rx.recv() => match f {
                        Some(f) => out.push(f),
                        None => break,
                    },
                    _ = &mut linger => break,
                }
            }
            out
        });
        for f in received {
            match f {
                Fetched::Record(r) => match self.pending.iter_mut().rev().find(|(p, _)| *p == r.partition) {
                    Some((_, group)) => group.push(r),
                    None => self.pending.push_back((r.partition, vec![r])),
                },
                Fetched::Start(p, offset) => self.positions.start(p, offset),
                Fetched::Failed(why) => return Err(SourceError::new(&self.name, why)),
            }
        }
        Ok(())
    }

    /// Decodes one partition's records into a batch (rows and dead letters) and moves the
    /// position past them.
    fn decode(&mut self, partition: u32, records: Vec<Fetch>) -> Option<SourceBatch> {
        let mut chunk = LineChunk::default();
        for r in records {
            if !self.positions.is_new(partition, r.offset) {
                continue;
            }
            self.positions.advance(partition, r.offset);
            let start = chunk.buf.len();
            chunk.buf.extend_from_slice(&r.value);
            chunk.lines.push((start, chunk.buf.len()));
            chunk.buf.push(b'\n');
            chunk.offsets.push(u64::try_from(r.offset).unwrap_or(0));
        }
        // Over-long or too deeply nested records never reach a parser (inference included).
        screen_chunk(&self.decoder, &mut self.normalizer, &mut chunk);
        if !self.inferred && !chunk.is_empty() {
            // The schema comes from the first records (bad ones ignored); if none of them is a
            // JSON object, they are dead letters and the next records are tried.
            match self.decoder.infer(&chunk) {
                Ok(_) => self.inferred = true,
                Err(e) => {
                    for i in 0..chunk.len() {
                        self.normalizer.reject(
                            chunk.offsets[i],
                            reason::MALFORMED,
                            e.0.clone(),
                            &chunk.line_text(i),
                        );
                    }
                }
            }
        }
        let mut batch =
            if self.inferred { decode_lines(&mut self.decoder, &mut self.normalizer, &chunk) } else { None };
        if batch.is_none() && self.normalizer.has_rejects() {
            batch = Some(self.normalizer.rejects_only());
        }
        let mut batch = batch?;
        for d in &mut batch.dead_letters {
            d.detail = format!("partition {partition}: {}", d.detail);
        }
        batch.position = Some(self.positions.snapshot());
        Some(batch)
    }

    fn update_lag(&mut self) {
        let Ok(watermarks) = self.watermarks.lock().map(|w| w.clone()) else { return };
        for (p, hw) in watermarks {
            let gauge = self.lag.entry(p).or_insert_with(|| {
                let partition = p.to_string();
                self.metrics.gauge(&SOURCE_LAG_RECORDS, &[("source", &self.name), ("partition", &partition)])
            });
            gauge.set(self.positions.lag(p, hw) as f64);
        }
    }
}

impl Source for FluvioSource {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        if self.pending.is_empty() {
            self.fetch()?;
        }
        self.update_lag();
        while let Some((partition, records)) = self.pending.pop_front() {
            if let Some(b) = self.decode(partition, records) {
                return Ok(Poll::Batch(b));
            }
        }
        Ok(Poll::Idle)
    }

    fn is_bounded(&self) -> bool {
        false
    }

    fn roles(&self) -> Vec<StreamRole> {
        vec![self.normalizer.role()]
    }

    fn commit(&mut self, durable: &SourcePosition) -> Result<(), SourceError> {
        if self.committer.consumer.is_none() {
            return Ok(());
        }
        let due = commits_due(durable, &self.committer.committed)
            .map_err(|e| SourceError::new(&self.name, e.to_string()))?;
        for (p, offset) in due {
            let topic = self.topic.clone();
            let committer = &mut self.committer;
            let result = self.runtime.block_on(async {
                tokio::time::timeout(COMMIT_TIMEOUT, committer.commit(&topic, p, offset)).await
            });
            let result = match result {
                Ok(r) => r,
                Err(_) => Err(CommitError::Partition {
                    partition: p,
                    message: format!("no answer within {COMMIT_TIMEOUT:?}"),
                }),
            };
            if let Err(why) = result {
                // A broken client is replaced at the next commit.
                self.committer.client = None;
                return Err(SourceError::new(&self.name, format!("cannot commit consumer offsets: {why}")));
            }
            let gauge = self.committed_gauges.entry(p).or_insert_with(|| {
                let partition = p.to_string();
                self.metrics
                    .gauge(&SOURCE_COMMITTED_OFFSET, &[("source", &self.name), ("partition", &partition)])
            });
            gauge.set(offset as f64);
            debug!(source = %self.name, partition = p, offset, "consumer offset committed");
        }
        Ok(())
    }
}

impl Drop for FluvioSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        source: FluvioSourceConfig,
    }

    fn parse(toml_text: &str) -> Result<FluvioSourceConfig, String> {
        toml::from_str::<Wrap>(&format!("[source]\n{toml_text}")).map(|w| w.source).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = parse("topic = \"events\"").unwrap();
        assert_eq!(c.endpoint, None);
        assert_eq!(c.partitions, PartitionSelection::All);
        assert_eq!(c.start, StartPosition::Beginning);
        assert_eq!(c.consumer, None);
        assert_eq!(c.format, RecordFormat::Jsonl);
        assert_eq!(c.max_in_flight, 16384);
        assert_eq!(c.max_backoff.0, Duration::from_secs(30));
        assert!(c.problems().is_empty());
    }

    #[test]
    fn every_key_parses() {
        let c = parse(
            r#"endpoint = "127.0.0.1:9003"
topic = "labels"
partitions = [0, 2]
start = { offset = 42 }
consumer = "eddy-labels"
format = "jsonl"
role = "labels"
max_in_flight = 100
max_backoff = "5s""#,
        )
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("127.0.0.1:9003"));
        assert_eq!(c.partitions, PartitionSelection::List(vec![0, 2]));
        assert_eq!(c.start, StartPosition::Offset(42));
        assert_eq!(c.consumer.as_deref(), Some("eddy-labels"));
        assert_eq!(c.role, Some(StreamRole::Labels));
        assert_eq!(c.max_in_flight, 100);
        assert_eq!(c.max_backoff.0, Duration::from_secs(5));
        assert!(c.problems().is_empty());
        assert_eq!(parse("topic = \"t\"\nstart = \"end\"").unwrap().start, StartPosition::End);
        assert_eq!(parse("topic = \"t\"\npartitions = \"all\"").unwrap().partitions, PartitionSelection::All);
    }

    #[test]
    fn bad_values_are_reported_with_their_key() {
        let e = parse("topic = \"t\"\npartitions = \"some\"").unwrap_err();
        assert!(e.contains("expected \"all\" or a list"), "{e}");
        let e = parse("topic = \"t\"\nstart = \"middle\"").unwrap_err();
        assert!(e.contains("beginning") && e.contains("end"), "{e}");
        let e = parse("topic = \"t\"\nformat = \"csv\"").unwrap_err();
        assert!(e.contains("jsonl"), "{e}");
        let e = parse("topic = \"t\"\ntopik = \"x\"").unwrap_err();
        assert!(e.contains("unknown field `topik`"), "{e}");

        let c = parse(
            r#"endpoint = "nohost"
topic = "Bad_Topic"
partitions = [1, 1]
consumer = " "
max_in_flight = 0
max_backoff = "1ms""#,
        )
        .unwrap();
        let keys: Vec<&str> = c.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec!["endpoint", "topic", "partitions", "consumer", "max_in_flight", "max_backoff"]);
        let empty = parse("topic = \"t\"\npartitions = []").unwrap();
        assert!(empty.problems()[0].1.contains("at least one partition"));
    }

    #[test]
    fn config_round_trips_through_serde() {
        let c = parse("topic = \"t\"\npartitions = [3]\nstart = { offset = 7 }").unwrap();
        let text = toml::to_string(&c).unwrap();
        let back: FluvioSourceConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn positions_resume_advance_and_skip_replays() {
        let resume = SourcePosition::Partitions { next: BTreeMap::from([(0, 10), (1, 3)]) };
        let mut p = Positions::resume(Some(&resume)).unwrap();
        assert!(!p.is_new(0, 9), "a record before the checkpoint is a replay");
        assert!(p.is_new(0, 10));
        p.advance(0, 10);
        p.advance(0, 11);
        assert_eq!(p.next(0), Some(12));
        // A start offset never moves a partition that has a position.
        p.start(1, 0);
        assert_eq!(p.next(1), Some(3));
        p.start(2, 50);
        assert_eq!(p.next(2), Some(50));
        // Advancing never goes backwards.
        p.advance(0, 5);
        assert_eq!(p.next(0), Some(12));
        assert_eq!(
            p.snapshot(),
            SourcePosition::Partitions { next: BTreeMap::from([(0, 12), (1, 3), (2, 50)]) }
        );
        assert_eq!(p.lag(0, 20), 8);
        assert_eq!(p.lag(0, 5), 0);
        assert_eq!(p.lag(7, 4), 4);
        assert!(Positions::resume(Some(&SourcePosition::Rows { rows: 5 }))
            .unwrap_err()
            .to_string()
            .contains("kind"));
        assert_eq!(Positions::resume(None).unwrap(), Positions::default());
    }

    #[test]
    fn commits_cover_only_what_moved_since_the_last_commit() {
        let durable = SourcePosition::Partitions { next: BTreeMap::from([(0, 10), (1, 0), (2, 5)]) };
        // Nothing committed yet: every partition with a consumed record (partition 1 has none).
        assert_eq!(commits_due(&durable, &BTreeMap::new()).unwrap(), vec![(0, 9), (2, 4)]);
        // Partition 2 already committed at 4: only partition 0 moves.
        assert_eq!(commits_due(&durable, &BTreeMap::from([(2, 4), (0, 3)])).unwrap(), vec![(0, 9)]);
        assert!(commits_due(&SourcePosition::Lines { line: 1, byte: 2 }, &BTreeMap::new()).is_err());
    }
}
