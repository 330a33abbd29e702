//! Fluvio sink: each output row becomes one record, its value the row's JSON object (the same
//! JSON as the JSON-lines sink) and its key the row's identity:
//!
//! | output | key |
//! | --- | --- |
//! | predictions | `id` and `slot`: `ID/SLOT` |
//! | drift | `detector` and `event_index`: `DETECTOR/INDEX` |
//! | dead letters | `source` and `offset`: `SOURCE/OFFSET` |
//!
//! (any other batch: the `id` column if it has one, else no key).
//!
//! Delivery is at-least-once. Records are sent through the producer and kept until the
//! cluster acknowledges them (at most `max_in_flight`; a full window waits for the
//! acknowledgements — backpressure). When the connection breaks, the sink reconnects with
//! capped exponential backoff and sends every unacknowledged record again. A topic cannot be
//! cut back to a checkpoint, so [`Sink::checkpoint`] flushes and returns `None`: after a
//! restart from a checkpoint the pipeline re-emits the rows written since, with identical keys
//! (and identical values when events and labels merge in the same order, as they always do from
//! files; live topics interleave by arrival). A consumer that needs each row once keeps the
//! last record per key.

use std::collections::VecDeque;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType};
use eddy_engine::metrics::ConnectorDirection;
use eddy_engine::sink::{Sink, SinkBuildContext, SinkError, SinkInput};
use eddy_engine::units::ConfigDuration;
use fluvio::metadata::topic::TopicSpec;
use fluvio::{Fluvio, RecordKey, TopicProducerPool};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::jsonl::write_json_lines;
use super::{BuildSink, SinkKind};
use crate::error::{ConnectorError, Problem};
use crate::fluvio_client::{
    endpoint_problem, resolve_cluster, topic_problem, Backoff, Cluster, ConnectionMetrics, CONNECT_TIMEOUT,
    MIN_BACKOFF,
};

/// A Fluvio topic. See the module docs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FluvioSinkConfig {
    /// `HOST:PORT` of the cluster's SC; default: `EDDY_FLUVIO_ENDPOINT`, else the current
    /// Fluvio profile.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Topic to write (it must exist).
    pub topic: String,
    /// Which output to write; defaults to the sink's name when that is an output's name.
    #[serde(default)]
    pub input: Option<SinkInput>,
    /// Records sent but not yet acknowledged, at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Longest wait between reconnect attempts.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: ConfigDuration,
}

pub use crate::fluvio_client::MAX_IN_FLIGHT_LIMIT;
use crate::fluvio_client::{default_max_backoff, default_max_in_flight};

impl FluvioSinkConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = self.endpoint.as_deref().and_then(endpoint_problem) {
            out.push(("endpoint", p));
        }
        if let Some(p) = topic_problem(&self.topic) {
            out.push(("topic", p));
        }
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT_LIMIT {
            out.push((
                "max_in_flight",
                format!("must be between 1 and {MAX_IN_FLIGHT_LIMIT} records, got {}", self.max_in_flight),
            ));
        }
        if self.max_backoff.0 < MIN_BACKOFF {
            out.push(("max_backoff", format!("must be at least 100ms, got {}", self.max_backoff)));
        }
        out
    }
}

impl BuildSink for FluvioSinkConfig {
    /// Builds the sink; it connects on its first write (a cluster that is down at start is
    /// retried then, not an error). A topic cannot be cut back, so every resume appends.
    ///
    /// # Errors
    /// When no cluster is configured or the runtime cannot start.
    fn build(&self, cx: &SinkBuildContext) -> Result<Box<dyn Sink>, ConnectorError> {
        let (name, metrics) = (cx.name.as_str(), &cx.metrics);
        let err = |p: Problem| ConnectorError::sink(name, SinkKind::Fluvio.as_str(), p);
        let cluster =
            resolve_cluster(self.endpoint.as_deref()).map_err(|e| err(e.into()).field("endpoint"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err(Problem::Runtime(e)))?;
        info!(sink = %name, topic = %self.topic, endpoint = %cluster.config.endpoint, from = %cluster.origin, "Fluvio sink ready");
        Ok(Box::new(FluvioSink {
            name: name.to_string(),
            topic: self.topic.clone(),
            cluster,
            runtime,
            producer: None,
            ever_connected: false,
            unacked: VecDeque::new(),
            max_in_flight: self.max_in_flight.max(1),
            backoff: Backoff::new(self.max_backoff.0),
            connection: ConnectionMetrics::new(metrics, name, ConnectorDirection::Sink),
        }))
    }
}

/// One output row as a record: its key (see the module docs) and its JSON value.
pub type KeyedRow = (Option<String>, Vec<u8>);

/// Each row of `batch` as a [`KeyedRow`].
///
/// # Errors
/// When the batch cannot be encoded as JSON.
pub fn keyed_rows(batch: &RecordBatch) -> Result<Vec<KeyedRow>, ArrowError> {
    let mut json = Vec::new();
    write_json_lines(&mut json, batch)?;
    let values: Vec<Vec<u8>> =
        json.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    if values.len() != batch.num_rows() {
        return Err(ArrowError::ComputeError(format!(
            "internal error: {} JSON lines for {} rows",
            values.len(),
            batch.num_rows()
        )));
    }
    let parts: &[&[&str]] = &[&["id", "slot"], &["detector", "event_index"], &["source", "offset"], &["id"]];
    let columns = parts
        .iter()
        .map(|names| names.iter().map(|n| batch.column_by_name(n)).collect::<Option<Vec<_>>>())
        .find_map(|c| c);
    let keys: Vec<Option<String>> = match columns {
        None => vec![None; batch.num_rows()],
        Some(cols) => (0..batch.num_rows())
            .map(|i| {
                let texts: Vec<String> = cols.iter().map(|c| cell_text(c.as_ref(), i)).collect();
                Some(texts.join("/"))
            })
            .collect(),
    };
    Ok(keys.into_iter().zip(values).collect())
}

fn cell_text(col: &dyn Array, i: usize) -> String {
    if col.is_null(i) {
        return String::new();
    }
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => col.as_string::<i64>().value(i).to_string(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(i).to_string(),
        _ => arrow_cast::display::ArrayFormatter::try_new(col, &Default::default())
            .map(|f| f.value(i).to_string())
            .unwrap_or_default(),
    }
}

/// See the module docs.
pub struct FluvioSink {
    name: String,
    topic: String,
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    producer: Option<(Fluvio, TopicProducerPool)>,
    ever_connected: bool,
    /// Records sent and not yet acknowledged, in order.
    unacked: VecDeque<Unacked>,
    max_in_flight: usize,
    backoff: Backoff,
    connection: ConnectionMetrics,
}

/// A record not yet acknowledged: its key, value, and the pending acknowledgement (`None`
/// when it still has to be sent, or sent again after a reconnect).
type Unacked = (Option<String>, Vec<u8>, Option<fluvio::ProduceOutput>);

/// Why a produce step failed.
enum Failure {
    /// Retrying cannot help (the topic does not exist on a cluster never seen before).
    Fatal(String),
    /// The connection failed: reconnect and send again.
    Lost(String),
}

impl FluvioSink {
    fn error(&self, message: impl Into<String>) -> SinkError {
        SinkError::new(&self.name, message)
    }

    /// Connects (once) and opens the producer.
    async fn connect(
        cluster: &Cluster,
        topic: &str,
        ever_connected: bool,
    ) -> Result<(Fluvio, TopicProducerPool), Failure> {
        let fluvio =
            match tokio::time::timeout(CONNECT_TIMEOUT, Fluvio::connect_with_config(&cluster.config)).await {
                Err(_) => return Err(Failure::Lost(format!("no answer within {CONNECT_TIMEOUT:?}"))),
                Ok(Err(e)) => return Err(Failure::Lost(format!("cannot connect: {e:#}"))),
                Ok(Ok(f)) => f,
            };
        let admin = fluvio.admin().await;
        let topics = admin
            .list::<TopicSpec, String>(vec![topic.to_string()])
            .await
            .map_err(|e| Failure::Lost(format!("cannot list topics: {e:#}")))?;
        if !topics.iter().any(|t| t.name == topic) {
            let why = format!(
                "topic `{topic}` does not exist on the cluster at {} (create it with `fluvio topic create {topic}`)",
                cluster.config.endpoint
            );
            return Err(if ever_connected { Failure::Lost(why) } else { Failure::Fatal(why) });
        }
        let producer = fluvio
            .topic_producer(topic.to_string())
            .await
            .map_err(|e| Failure::Lost(format!("cannot open a producer: {e:#}")))?;
        Ok((fluvio, producer))
    }

    /// Sends every unacknowledged record that has no acknowledgement pending (all of them
    /// after a reconnect), then, when `wait` or the window is full, waits for the
    /// acknowledgements. Reconnects and repeats until it works or a fatal error.
    fn deliver(&mut self, wait: bool) -> Result<(), SinkError> {
        loop {
            let wait = wait || self.unacked.len() >= self.max_in_flight;
            let result = self.runtime.block_on(Self::try_deliver(
                &self.cluster,
                &self.topic,
                &mut self.producer,
                &mut self.ever_connected,
                &mut self.unacked,
                wait,
            ));
            match result {
                Ok(connected_now) => {
                    if connected_now {
                        self.connection.up();
                        self.backoff.reset();
                        info!(sink = %self.name, topic = %self.topic, "Fluvio sink connected");
                    }
                    return Ok(());
                }
                Err(Failure::Fatal(why)) => return Err(self.error(why)),
                Err(Failure::Lost(why)) => {
                    // Everything not acknowledged goes again on the next connection.
                    self.producer = None;
                    for r in &mut self.unacked {
                        r.2 = None;
                    }
                    self.connection.down();
                    let delay = self.backoff.next_delay();
                    warn!(
                        sink = %self.name, endpoint = %self.cluster.config.endpoint, retry_in = ?delay,
                        unacknowledged = self.unacked.len(), "Fluvio sink connection failed: {why}"
                    );
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// One attempt of [`FluvioSink::deliver`]; `Ok(true)` when it had to connect first.
    async fn try_deliver(
        cluster: &Cluster,
        topic: &str,
        producer: &mut Option<(Fluvio, TopicProducerPool)>,
        ever_connected: &mut bool,
        unacked: &mut VecDeque<Unacked>,
        wait: bool,
    ) -> Result<bool, Failure> {
        let mut connected_now = false;
        if producer.is_none() {
            *producer = Some(Self::connect(cluster, topic, *ever_connected).await?);
            *ever_connected = true;
            connected_now = true;
        }
        let (_, p) = producer.as_ref().ok_or_else(|| Failure::Lost("internal error: no producer".into()))?;
        for (key, value, ack) in unacked.iter_mut().filter(|r| r.2.is_none()) {
            let k = key.as_ref().map_or(RecordKey::NULL, |k| RecordKey::from(k.clone()));
            let out =
                p.send(k, value.clone()).await.map_err(|e| Failure::Lost(format!("send failed: {e:#}")))?;
            *ack = Some(out);
        }
        if wait {
            p.flush().await.map_err(|e| Failure::Lost(format!("flush failed: {e:#}")))?;
            // Acknowledged records leave the window one by one, so a failure re-sends only
            // the rest.
            while let Some((_, _, ack)) = unacked.front_mut() {
                if let Some(out) = ack.take() {
                    out.wait().await.map_err(|e| Failure::Lost(format!("not acknowledged: {e:#}")))?;
                }
                unacked.pop_front();
            }
        }
        Ok(connected_now)
    }
}

impl Sink for FluvioSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let rows = keyed_rows(batch).map_err(|e| self.error(e.to_string()))?;
        for (key, value) in rows {
            self.unacked.push_back((key, value, None));
            if self.unacked.len() >= self.max_in_flight {
                self.deliver(true)?;
            }
        }
        self.deliver(false)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.unacked.is_empty() && self.producer.is_none() {
            return Ok(());
        }
        self.deliver(true)
    }

    /// Flushes; a topic cannot be cut back to a checkpoint, so there is no position (see the
    /// module docs for how re-emitted rows are recognised).
    fn checkpoint(&mut self) -> Result<Option<u64>, SinkError> {
        self.flush()?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float32Array, Int64Array, StringArray, UInt64Array};

    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        sink: FluvioSinkConfig,
    }

    fn parse(toml_text: &str) -> Result<FluvioSinkConfig, String> {
        toml::from_str::<Wrap>(&format!("[sink]\n{toml_text}")).map(|w| w.sink).map_err(|e| e.to_string())
    }

    #[test]
    fn config_parses_with_defaults_and_reports_bad_values() {
        let c = parse("topic = \"predictions\"").unwrap();
        assert_eq!((c.endpoint, c.input, c.max_in_flight), (None, None, 16384));
        let c = parse("topic = \"p\"\nendpoint = \"localhost:9003\"\ninput = \"drift\"\nmax_in_flight = 10")
            .unwrap();
        assert_eq!(c.input, Some(SinkInput::Drift));
        assert!(c.problems().is_empty());
        let c = parse("topic = \"P P\"\nendpoint = \"x\"\nmax_in_flight = 0\nmax_backoff = \"0s\"").unwrap();
        let keys: Vec<&str> = c.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec!["endpoint", "topic", "max_in_flight", "max_backoff"]);
        assert!(parse("topic = \"p\"\npath = \"x\"").unwrap_err().contains("unknown field `path`"));
    }

    #[test]
    fn prediction_rows_are_keyed_by_id_and_slot_with_the_jsonl_sink_json() {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(StringArray::from(vec!["a-1", "a-1"])) as _),
            ("ts", Arc::new(Int64Array::from(vec![5, 5])) as _),
            ("slot", Arc::new(StringArray::from(vec!["champion", "shadow"])) as _),
            ("model_version", Arc::new(UInt64Array::from(vec![1, 0])) as _),
            ("prediction", Arc::new(Float32Array::from(vec![0.25, 0.5])) as _),
        ])
        .unwrap();
        let rows = keyed_rows(&batch).unwrap();
        let mut jsonl = Vec::new();
        write_json_lines(&mut jsonl, &batch).unwrap();
        let lines: Vec<&[u8]> = jsonl.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0.as_deref(), Some("a-1/champion"));
        assert_eq!(rows[1].0.as_deref(), Some("a-1/shadow"));
        assert_eq!(rows[0].1, lines[0]);
        assert_eq!(rows[1].1, lines[1]);
        let v: serde_json::Value = serde_json::from_slice(&rows[1].1).unwrap();
        assert_eq!(v["slot"], "shadow");
        assert_eq!(v["prediction"], 0.5);
    }

    #[test]
    fn drift_and_dead_letter_rows_have_their_own_keys() {
        let drift = RecordBatch::try_from_iter([
            ("detector", Arc::new(StringArray::from(vec!["adwin"])) as _),
            ("input", Arc::new(StringArray::from(vec!["champion.error"])) as _),
            ("event_index", Arc::new(UInt64Array::from(vec![767])) as _),
        ])
        .unwrap();
        assert_eq!(keyed_rows(&drift).unwrap()[0].0.as_deref(), Some("adwin/767"));
        let dead = RecordBatch::try_from_iter([
            ("source", Arc::new(StringArray::from(vec!["events"])) as _),
            ("offset", Arc::new(UInt64Array::from(vec![12])) as _),
            ("reason", Arc::new(StringArray::from(vec!["malformed"])) as _),
        ])
        .unwrap();
        assert_eq!(keyed_rows(&dead).unwrap()[0].0.as_deref(), Some("events/12"));
        let other = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1, 2])) as _)]).unwrap();
        assert_eq!(
            keyed_rows(&other).unwrap().iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            vec![None, None]
        );
    }
}
