//! The `generator` source: seeded synthetic streams with known concept drift (SEA, rotating
//! Hyperplane, Agrawal) and a card-fraud stream with per-card amount levels, emitting events
//! *and* their labels after a configurable delay.
//!
//! It is how a pipeline, a detector or a benchmark is tried with no data and no services, and
//! because the drift points are known, how detection delays are measured. Events and labels
//! are emitted in event-time order (an event before a label of the same time), with the field
//! names the pipeline's config expects.

pub mod agrawal;
pub mod concept;
pub mod fraud;
pub mod hyperplane;
pub mod sea;

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use eddy_engine::record::{SourceBatch, StreamRole};
use eddy_engine::source::{Poll, Source, SourceBuildContext, SourceError, SourcePosition};
use eddy_engine::units::ConfigDuration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use concept::{ConceptStream, GenFieldKind, GenValue};

use super::{BuildSource, SourceKind};
use crate::error::{ConceptError, ConnectorError, Problem};

/// Which concept stream to generate, with its parameters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConceptConfig {
    /// SEA: abrupt switches between threshold concepts.
    Sea(sea::SeaConfig),
    /// Rotating hyperplane: gradual, continuous drift.
    Hyperplane(hyperplane::HyperplaneConfig),
    /// Agrawal: switches between classification functions over mixed features.
    Agrawal(agrawal::AgrawalConfig),
    /// Card transactions whose fraud risk depends on the card's own history.
    Fraud(fraud::FraudConfig),
}

impl ConceptConfig {
    /// The name used in event ids.
    pub fn name(&self) -> &'static str {
        match self {
            ConceptConfig::Sea(_) => "sea",
            ConceptConfig::Hyperplane(_) => "hyperplane",
            ConceptConfig::Agrawal(_) => "agrawal",
            ConceptConfig::Fraud(_) => "fraud",
        }
    }

    fn build(&self) -> Result<Box<dyn ConceptStream>, ConceptError> {
        Ok(match self {
            ConceptConfig::Sea(c) => Box::new(sea::SeaStream::new(c)?),
            ConceptConfig::Hyperplane(c) => Box::new(hyperplane::HyperplaneStream::new(c)?),
            ConceptConfig::Agrawal(c) => Box::new(agrawal::AgrawalStream::new(c)?),
            ConceptConfig::Fraud(c) => Box::new(fraud::FraudStream::new(c)?),
        })
    }
}

fn default_seed() -> u64 {
    42
}
fn default_start() -> i64 {
    1_700_000_000_000
}
fn default_interval() -> ConfigDuration {
    ConfigDuration::from_millis(10)
}
fn default_delay() -> ConfigDuration {
    ConfigDuration::from_millis(5000)
}
fn default_probability() -> f64 {
    1.0
}

/// Configuration of the generator source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSourceConfig {
    /// The concept stream and its drift parameters.
    pub concept: ConceptConfig,
    /// Number of events; absent means unbounded (runs until stopped).
    #[serde(default)]
    pub events: Option<u64>,
    /// Seed of the stream: the same seed gives the same events and labels.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Event time of the first event, epoch milliseconds.
    #[serde(default = "default_start")]
    pub start_time: i64,
    /// Event time between consecutive events.
    #[serde(default = "default_interval")]
    pub interval: ConfigDuration,
    /// Event time between an event and its label.
    #[serde(default = "default_delay")]
    pub label_delay: ConfigDuration,
    /// Probability that an event gets a label at all (the rest expire in the join).
    #[serde(default = "default_probability")]
    pub label_probability: f64,
    /// Wall-clock pacing in events per second (unbounded streams); absent means as fast as
    /// possible.
    #[serde(default)]
    pub rate: Option<f64>,
}

impl GeneratorSourceConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(e) = self.concept.build() {
            out.push(("concept", e.to_string()));
        }
        if !(0.0..=1.0).contains(&self.label_probability) {
            out.push((
                "label_probability",
                format!("must be between 0 and 1, got {}", self.label_probability),
            ));
        }
        if self.interval.0.is_zero() {
            out.push(("interval", "must be longer than 0".into()));
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            out.push(("rate", "must be a positive number of events per second".into()));
        }
        out
    }

    /// Positions where the concept changes (for reports).
    pub fn change_points(&self) -> Vec<u64> {
        self.concept.build().map(|c| c.change_points(self.events)).unwrap_or_default()
    }
}

impl BuildSource for GeneratorSourceConfig {
    /// Builds the source.
    ///
    /// # Errors
    /// When the concept parameters are invalid, or the checkpoint's position is not one of
    /// this generator's.
    fn build(&self, cx: &SourceBuildContext) -> Result<Box<dyn Source>, ConnectorError> {
        let err = |p: Problem| ConnectorError::source(&cx.name, SourceKind::Generator.as_str(), p);
        let stream = self.concept.build().map_err(|e| err(e.into()).field("concept"))?;
        let fields = stream.fields();
        let mut event_fields = vec![
            Field::new(&cx.events.key, DataType::Utf8, false),
            Field::new(&cx.events.time, DataType::Int64, false),
        ];
        for (name, kind) in &fields {
            let t = match kind {
                GenFieldKind::Numeric => DataType::Float64,
                GenFieldKind::Categorical => DataType::Utf8,
            };
            event_fields.push(Field::new(name, t, false));
        }
        let label_name = cx.labels.label.as_ref().map(|l| l.name.clone()).unwrap_or_else(|| "label".into());
        let label_schema = Arc::new(Schema::new(vec![
            Field::new(&cx.labels.key, DataType::Utf8, false),
            Field::new(&cx.labels.time, DataType::Int64, false),
            Field::new(label_name, DataType::Float64, false),
        ]));
        let mut source = GeneratorSource {
            prefix: self.concept.name(),
            stream,
            kinds: fields.iter().map(|f| f.1).collect(),
            event_schema: Arc::new(Schema::new(event_fields)),
            label_schema,
            rng: ChaCha8Rng::seed_from_u64(self.seed),
            label_rng: ChaCha8Rng::seed_from_u64(self.seed ^ 0x9e37_79b9_7f4a_7c15),
            total: self.events,
            position: 0,
            start_time: self.start_time,
            interval: self.interval.as_millis_i64().max(1),
            delay: self.label_delay.as_millis_i64(),
            label_probability: self.label_probability,
            rate: self.rate,
            started: Instant::now(),
            labels: VecDeque::new(),
            values: Vec::new(),
            batch_size: cx.batch_size,
            labels_due: false,
            batches: 0,
        };
        match &cx.resume {
            None => {}
            Some(SourcePosition::Batches { batches }) => {
                // Regenerate and discard: the random streams end up exactly where they were.
                while source.batches < *batches {
                    if source.next_batch().is_none() {
                        return Err(err(Problem::GeneratorEnds { batches: *batches, ends: source.batches }));
                    }
                }
            }
            Some(other) => {
                return Err(err(Problem::WrongPosition {
                    position: other.clone(),
                    expected: "a generator position",
                }))
            }
        }
        Ok(Box::new(source))
    }
}

/// See the module docs.
pub struct GeneratorSource {
    prefix: &'static str,
    stream: Box<dyn ConceptStream>,
    kinds: Vec<GenFieldKind>,
    event_schema: SchemaRef,
    label_schema: SchemaRef,
    rng: ChaCha8Rng,
    label_rng: ChaCha8Rng,
    total: Option<u64>,
    position: u64,
    start_time: i64,
    interval: i64,
    delay: i64,
    label_probability: f64,
    rate: Option<f64>,
    started: Instant,
    /// Labels waiting to be emitted: (label time, event position, label).
    labels: VecDeque<(i64, u64, bool)>,
    values: Vec<GenValue>,
    batch_size: usize,
    /// Whether the next poll emits the labels due so far.
    labels_due: bool,
    /// Batches handed over (the resume position).
    batches: u64,
}

/// Appends the id `PREFIX-P` straight into the builder's buffer: no `String` per row and no
/// `core::fmt` (the generator feeds the benchmarks, where a `format!` per event and per label
/// showed up as a tenth of the source thread).
#[inline]
fn push_id(ids: &mut StringBuilder, prefix: &str, p: u64) {
    let mut digits = itoa::Buffer::new();
    for part in [prefix, "-", digits.format(p)] {
        ids.write_str(part).expect("writing to a string builder cannot fail");
    }
    ids.append_value("");
}

impl GeneratorSource {
    fn event_time(&self, p: u64) -> i64 {
        self.start_time + p as i64 * self.interval
    }

    fn events_left(&self) -> bool {
        self.total.is_none_or(|t| self.position < t)
    }

    fn emit_labels(&mut self, before: Option<i64>) -> SourceBatch {
        let mut ids = StringBuilder::new();
        let mut ts = Int64Builder::new();
        let mut ys = Float64Builder::new();
        let mut offsets = Vec::new();
        while let Some(&(t, p, y)) = self.labels.front() {
            if before.is_some_and(|b| t >= b) {
                break;
            }
            self.labels.pop_front();
            push_id(&mut ids, self.prefix, p);
            ts.append_value(t);
            ys.append_value(y as u8 as f64);
            offsets.push(p);
        }
        let cols: Vec<ArrayRef> = vec![Arc::new(ids.finish()), Arc::new(ts.finish()), Arc::new(ys.finish())];
        let batch = RecordBatch::try_new(self.label_schema.clone(), cols).expect("label columns match");
        SourceBatch::new(StreamRole::Labels, batch, offsets)
    }

    fn emit_events(&mut self) -> SourceBatch {
        let mut ids = StringBuilder::new();
        let mut ts = Int64Builder::new();
        let mut nums: Vec<Float64Builder> = self.kinds.iter().map(|_| Float64Builder::new()).collect();
        let mut cats: Vec<StringBuilder> = self.kinds.iter().map(|_| StringBuilder::new()).collect();
        let mut offsets = Vec::new();
        while offsets.len() < self.batch_size && self.events_left() {
            let t = self.event_time(self.position);
            let p = self.position;
            let y = self.stream.next_example(&mut self.rng, p, self.total, &mut self.values);
            push_id(&mut ids, self.prefix, p);
            ts.append_value(t);
            for (i, v) in self.values.iter().enumerate() {
                match v {
                    GenValue::Num(x) => nums[i].append_value(*x),
                    GenValue::Cat(s) => cats[i].append_value(s),
                }
            }
            if self.label_probability >= 1.0 || self.label_rng.random::<f64>() < self.label_probability {
                self.labels.push_back((t + self.delay, p, y));
            }
            offsets.push(p);
            self.position += 1;
        }
        let mut cols: Vec<ArrayRef> = vec![Arc::new(ids.finish()), Arc::new(ts.finish())];
        for (i, kind) in self.kinds.iter().enumerate() {
            cols.push(match kind {
                GenFieldKind::Numeric => Arc::new(nums[i].finish()),
                GenFieldKind::Categorical => Arc::new(cats[i].finish()),
            });
        }
        let batch = RecordBatch::try_new(self.event_schema.clone(), cols).expect("event columns match");
        SourceBatch::new(StreamRole::Events, batch, offsets)
    }

    fn pace(&self) {
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(self.position as f64 / rate);
            if let Some(wait) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(wait.min(Duration::from_millis(200)));
            }
        }
    }
}

impl GeneratorSource {
    /// The next batch, `None` at the end.
    ///
    /// Events and labels alternate: a batch of events, then every label due before the next
    /// event (possibly none: an empty batch still tells the merger the labels lane is alive).
    /// The engine's merger interleaves the two lanes row by row in event-time order.
    fn next_batch(&mut self) -> Option<SourceBatch> {
        let mut batch = if self.events_left() {
            if self.labels_due {
                self.labels_due = false;
                let next = self.event_time(self.position);
                self.emit_labels(Some(next))
            } else {
                self.labels_due = true;
                self.emit_events()
            }
        } else if !self.labels.is_empty() {
            self.emit_labels(None)
        } else {
            return None;
        };
        self.batches += 1;
        batch.position = Some(SourcePosition::Batches { batches: self.batches });
        Some(batch)
    }
}

impl Source for GeneratorSource {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        self.pace();
        Ok(match self.next_batch() {
            Some(b) => Poll::Batch(b),
            None => Poll::End,
        })
    }

    fn roles(&self) -> Vec<eddy_engine::record::StreamRole> {
        vec![StreamRole::Events, StreamRole::Labels]
    }

    fn is_bounded(&self) -> bool {
        self.total.is_some()
    }
}
