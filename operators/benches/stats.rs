//! Window statistics and reference-drift throughput.
//!
//! `CARGO_TARGET_DIR=/work/target-stats cargo bench -p eddy-operators --bench stats`
//!
//! Window benches feed a whole precomputed stream (1M records, one per 0.1 ms of event time,
//! the watermark advanced every 1000 records) to a fresh operator, so the figures include
//! window evaluation and emission, not only the per-record pane update. The reference-drift
//! benches measure one PSI + KS check (the per-check cost, dominated by sorting the current
//! window) and the per-value update.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use eddy_operators::stats::{
    ReferenceDrift, ReferenceDriftConfig, WindowConfig, WindowedStats, WindowedStatsConfig,
};
use rand::{Rng, SeedableRng};

const N: usize = 1_000_000;

/// `(key, event_time_ms, value)`: keys uniform in `0..keys`, values roughly normal.
fn stream(keys: u64, seed: u64) -> Vec<(u64, i64, f64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..N)
        .map(|i| {
            let x: f64 = (0..4).map(|_| rng.random::<f64>()).sum::<f64>() * 10.0 - 20.0;
            (rng.random_range(0..keys), i as i64 / 10, x)
        })
        .collect()
}

fn run_windows(c: &mut Criterion, name: &str, window: WindowConfig, keys: u64) {
    let data = stream(keys, 11);
    let config = WindowedStatsConfig::new(window);
    let mut group = c.benchmark_group("windowed_stats");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.bench_function(BenchmarkId::new(name, format!("{keys}_keys")), |b| {
        b.iter_batched_ref(
            || WindowedStats::new(config.clone()).expect("valid config"),
            |ws| {
                let mut emitted = 0usize;
                for (i, &(key, t, x)) in data.iter().enumerate() {
                    ws.update(Some(key), t, black_box(x));
                    if i % 1000 == 999 {
                        ws.advance_watermark(t);
                        emitted += ws.drain_closed().count();
                    }
                }
                ws.flush();
                emitted += ws.drain_closed().count();
                black_box(emitted)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn windows(c: &mut Criterion) {
    // 1M records span 100 s of event time.
    run_windows(c, "tumbling_1s", WindowConfig::Tumbling { size_ms: 1_000 }, 1);
    run_windows(c, "sliding_4s_hop_1s", WindowConfig::Sliding { size_ms: 4_000, hop_ms: 1_000 }, 1);
    run_windows(c, "count_1000", WindowConfig::Count { size: 1_000, hop: None }, 1);
    run_windows(c, "tumbling_60s", WindowConfig::Tumbling { size_ms: 60_000 }, 10_000);
    run_windows(c, "sliding_60s_hop_15s", WindowConfig::Sliding { size_ms: 60_000, hop_ms: 15_000 }, 10_000);
}

fn reference(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let values: Vec<f64> = (0..N).map(|_| rng.random::<f64>()).collect();
    let mut group = c.benchmark_group("reference_drift");
    for size in [1_000usize, 10_000] {
        let config = ReferenceDriftConfig {
            reference_size: size,
            current_size: size,
            check_every: u64::MAX,
            ..ReferenceDriftConfig::default()
        };
        let mut drift = ReferenceDrift::new(config).expect("valid config");
        for &x in &values[..2 * size] {
            drift.update(x);
        }
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("check_psi_ks", size), |b| b.iter(|| black_box(drift.check())));
        group.bench_function(BenchmarkId::new("psi_only", size), |b| b.iter(|| black_box(drift.psi())));
        group.throughput(Throughput::Elements(N as u64));
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("update_check_every_100", size), |b| {
            b.iter_batched_ref(
                || {
                    let cfg = ReferenceDriftConfig {
                        reference_size: size,
                        current_size: size,
                        check_every: 100,
                        ..ReferenceDriftConfig::default()
                    };
                    ReferenceDrift::new(cfg).expect("valid config")
                },
                |d| {
                    let mut events = 0u32;
                    for &x in &values {
                        events += u32::from(d.update(black_box(x)).is_some());
                    }
                    black_box(events)
                },
                BatchSize::LargeInput,
            )
        });
        group.sample_size(100);
    }
    group.finish();
}

criterion_group!(benches, windows, reference);
criterion_main!(benches);
