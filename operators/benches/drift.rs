//! Drift-detector throughput.
//!
//! `CARGO_TARGET_DIR=/work/target-drift cargo bench -p eddy-operators --bench drift`
//!
//! Each iteration feeds a whole precomputed stream (1M values) to a fresh detector, so the
//! figure includes the window growing from empty — the regime a long-running pipeline is in.
//! ADWIN's cost is dominated by its clock-gated cut scan, whose length grows with log(width).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eddy_operators::drift::{AdwinConfig, AdwinDetector, DriftDetector, DriftDetectorConfig};
use rand::{Rng, SeedableRng};

const N: usize = 1_000_000;

/// Bernoulli(0.2) errors, then Bernoulli(0.4) for the last 10 %.
fn bernoulli_stream() -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    (0..N)
        .map(|i| {
            let p = if i < N * 9 / 10 { 0.2 } else { 0.4 };
            f64::from(u8::from(rng.random::<f64>() < p))
        })
        .collect()
}

/// Stationary Bernoulli(0.2): the window never shrinks (worst case for the scan length).
fn stationary_stream() -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    (0..N).map(|_| f64::from(u8::from(rng.random::<f64>() < 0.2))).collect()
}

fn run_adwin(c: &mut Criterion, name: &str, stream: &[f64], config: AdwinConfig) {
    let mut group = c.benchmark_group("adwin");
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function(name, |b| {
        b.iter_batched_ref(
            || AdwinDetector::new(config.clone()).unwrap(),
            |d| {
                let mut drifts = 0u32;
                for &x in stream {
                    drifts += u32::from(d.update(black_box(x)).is_drift());
                }
                black_box(drifts)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn adwin(c: &mut Criterion) {
    let bern = bernoulli_stream();
    let stat = stationary_stream();
    run_adwin(c, "default/bernoulli_drift", &bern, AdwinConfig::default());
    run_adwin(c, "default/bernoulli_stationary", &stat, AdwinConfig::default());
    run_adwin(c, "clock_1/bernoulli_drift", &bern, AdwinConfig { clock: 1, ..AdwinConfig::default() });
    run_adwin(c, "no_scan/bernoulli_drift", &bern, AdwinConfig { clock: u32::MAX, ..AdwinConfig::default() });
}

fn others(c: &mut Criterion) {
    let bern = bernoulli_stream();
    let mut group = c.benchmark_group("detectors");
    group.sample_size(10).measurement_time(Duration::from_secs(3));
    for &kind in DriftDetectorConfig::KINDS {
        let params = if kind == "kswin" { vec![("seed".to_string(), "1".to_string())] } else { vec![] };
        let config = DriftDetectorConfig::from_params(kind, &params).unwrap();
        // KSWIN sorts two samples per update: bench it on a shorter prefix.
        let stream = if kind == "kswin" { &bern[..N / 20] } else { &bern[..] };
        group.throughput(Throughput::Elements(stream.len() as u64));
        group.bench_function(format!("{kind}/dyn"), |b| {
            b.iter_batched_ref(
                || config.build(),
                |d: &mut Box<dyn DriftDetector>| {
                    let mut drifts = 0u32;
                    for &x in stream {
                        drifts += u32::from(d.update(black_box(x)).is_drift());
                    }
                    black_box(drifts)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, adwin, others);
criterion_main!(benches);
