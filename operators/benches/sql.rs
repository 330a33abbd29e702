//! Feature SQL throughput: one planned feature query over an events batch, and windowed
//! aggregates updated (read as of each event, then added) over many keys.
//!
//! `cargo bench -p eddy-operators --bench sql`
//!
//! The feature query bench evaluates 5 expressions and a filter on 8192-row batches (the
//! planning happens once, outside the timing). The aggregate bench feeds 1M events (one per
//! 10 ms of event time, keys uniform) to a fresh `WindowAggregate` with avg + count over a
//! 1-hour window hopping by 1 minute, for 1k and 100k keys.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use eddy_operators::sql::{AggregateQuery, EventsSchema, FeatureQuery, WindowAggregate};
use rand::{Rng, SeedableRng};

const ROWS: usize = 8192;
const N: usize = 1_000_000;

fn batch(rows: usize) -> RecordBatch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("card_id", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("e{i}")))),
            Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|i| 1_700_000_000_000 + i * 10))),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|_| format!("card-{}", rng.random_range(0..100_000))),
            )),
            Arc::new(Float64Array::from_iter_values((0..rows).map(|_| rng.random::<f64>() * 300.0))),
        ],
    )
    .unwrap()
}

fn feature_query(c: &mut Criterion) {
    let events = EventsSchema {
        key: "id".into(),
        time: "ts".into(),
        declared: vec![("card_id".into(), DataType::Utf8)],
    };
    let q = FeatureQuery::plan(
        "SELECT card_id, amount, ln(amount) AS log_amount,
                CASE WHEN amount > 200 THEN 'high' WHEN amount > 20 THEN 'mid' ELSE 'low' END AS band,
                date_part('hour', to_timestamp_millis(ts)) AS hour_of_day,
                amount > 100 AND date_part('hour', to_timestamp_millis(ts)) < 6 AS big_at_night
         FROM events WHERE amount > 1",
        &events,
    )
    .unwrap();
    let b = batch(ROWS);
    let mut group = c.benchmark_group("feature_query");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function(BenchmarkId::new("5_expressions_and_filter", ROWS), |bench| {
        bench.iter(|| black_box(q.evaluate(&b).unwrap()))
    });
    group.finish();
}

fn window_aggregate(c: &mut Criterion) {
    let q = AggregateQuery::parse(
        "SELECT card_id, avg(amount) AS a, count(*) AS n FROM events GROUP BY card_id, HOP(ts, INTERVAL '1 minute', INTERVAL '1 hour')",
        "ts",
    )
    .unwrap();
    let mut group = c.benchmark_group("window_aggregate");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    for keys in [1_000u64, 100_000] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let data: Vec<(u64, i64, f64)> = (0..N)
            .map(|i| {
                (
                    xxhash_rust::xxh3::xxh3_64(&rng.random_range(0..keys).to_le_bytes()),
                    1_700_000_000_000 + i as i64 * 10,
                    rng.random::<f64>() * 300.0,
                )
            })
            .collect();
        group.bench_function(BenchmarkId::new("hop_1m_1h_avg_count", format!("{keys}_keys")), |bench| {
            bench.iter_batched_ref(
                || WindowAggregate::new(q.clone(), 1 << 30),
                |w| {
                    let mut out = [None; 2];
                    for &(k, t, x) in &data {
                        w.update(k, t, &[Some(x)], &mut out);
                    }
                    black_box(out)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, feature_query, window_aggregate);
criterion_main!(benches);
