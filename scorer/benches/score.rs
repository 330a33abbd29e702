//! Scoring latency of the embedded scorer, next to a plain dot-product loop over the same
//! weights; tail latency with and without concurrent hot swaps; `Scorer::open` time.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-scorer cargo bench -p eddy-scorer --bench score`
//! The criterion groups give mean latencies; the hand-made sections (printed as plain lines)
//! give p50/p99/p99.9 from batches of `Instant`-timed calls.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use eddy_scorer::encoding::{Encoding, Feature, FeatureKind, FeatureSpec, RawValue};
use eddy_scorer::model::ModelKind;
use eddy_scorer::registry::{ModelRegistry, Producer, RegistryOptions};
use eddy_scorer::{Manifest, ModelSnapshot, Scorer, Validation};

fn numeric_model(n: usize, hash_bits: u32, version: u64) -> ModelSnapshot {
    let features =
        (0..n).map(|i| FeatureSpec { name: format!("x{i}"), kind: FeatureKind::Numeric }).collect();
    let encoding = Encoding::new(features, false, hash_bits, 1);
    let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ version;
    let weights = (0..encoding.dim())
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    ModelSnapshot { version: 0, kind: ModelKind::Logistic, encoding, weights, bias: 0.1 }
}

fn categorical_model(n: usize, hash_bits: u32) -> ModelSnapshot {
    let features =
        (0..n).map(|i| FeatureSpec { name: format!("c{i}"), kind: FeatureKind::Categorical }).collect();
    let encoding = Encoding::new(features, false, hash_bits, 1);
    let weights = (0..encoding.dim()).map(|i| ((i % 97) as f32 - 48.0) / 100.0).collect();
    ModelSnapshot { version: 0, kind: ModelKind::Logistic, encoding, weights, bias: 0.1 }
}

fn publish(dir: &Path, m: &ModelSnapshot) -> ModelRegistry {
    let reg = ModelRegistry::open_with(dir, RegistryOptions { fsync: false }).expect("registry");
    reg.publish(m, Manifest::new("champion", Producer::Retrain { trigger: "bench".into() }))
        .expect("publish");
    reg
}

/// The baseline: the same summation a hand-written service would do over a `Vec<f32>`.
#[inline(never)]
fn plain_dot(w: &[f32], b: f32, x: &[f32]) -> f32 {
    let mut z = b;
    for i in 0..x.len() {
        z += w[i] * x[i];
    }
    1.0 / (1.0 + (-z).exp())
}

#[inline(never)]
fn plain_sparse(w: &[f32], b: f32, row: &[Feature]) -> f32 {
    let mut z = b;
    for f in row {
        z += w[f.index as usize] * f.value;
    }
    1.0 / (1.0 + (-z).exp())
}

/// What 8 independent accumulators would give (not bit-identical to the engine's order; shown
/// only to size the gap between a dependent-add chain and a vectorised sum).
#[inline(never)]
fn lanes8_dot(w: &[f32], b: f32, x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (wc, xc) = (w[..x.len()].chunks_exact(8), x.chunks_exact(8));
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (wc, xc) in wc.zip(xc) {
        for k in 0..8 {
            acc[k] += wc[k] * xc[k];
        }
    }
    let mut z = b + acc.iter().sum::<f32>();
    for (a, c) in wr.iter().zip(xr) {
        z += a * c;
    }
    1.0 / (1.0 + (-z).exp())
}

fn criterion_benches(c: &mut Criterion, tmp: &Path) {
    let mut g = c.benchmark_group("dense");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for n in [10usize, 100, 1000] {
        let m = numeric_model(n, 0, 1);
        let dir = tmp.join(format!("dense{n}"));
        publish(&dir, &m);
        let scorer = Scorer::open(&dir).expect("open");
        let x: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.1).collect();
        g.bench_with_input(BenchmarkId::new("scorer", n), &x, |b, x| {
            b.iter(|| scorer.score_dense(black_box(x)))
        });
        g.bench_with_input(BenchmarkId::new("plain_loop", n), &x, |b, x| {
            b.iter(|| plain_dot(black_box(&m.weights), m.bias, black_box(x)))
        });
        g.bench_with_input(BenchmarkId::new("lanes8_loop", n), &x, |b, x| {
            b.iter(|| lanes8_dot(black_box(&m.weights), m.bias, black_box(x)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("hashed_2^20");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    let m = categorical_model(20, 20);
    let dir = tmp.join("hashed");
    publish(&dir, &m);
    let scorer = Scorer::open(&dir).expect("open");
    let model = scorer.model();
    let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let vals: Vec<String> = (0..20).map(|i| format!("value-{}", i * 7919)).collect();
    let named: Vec<(&str, RawValue<'_>)> =
        names.iter().zip(&vals).map(|(n, v)| (n.as_str(), RawValue::Text(v.as_str()))).collect();
    let ordered: Vec<RawValue<'_>> = named.iter().map(|(_, v)| *v).collect();
    let mut row = Vec::new();
    model.encode_ordered(&ordered, &mut row);
    g.bench_function("scorer_sparse_20", |b| b.iter(|| scorer.score_sparse(black_box(&row))));
    g.bench_function("plain_sparse_20", |b| {
        b.iter(|| plain_sparse(black_box(&m.weights), m.bias, black_box(&row)))
    });
    let mut scratch = Vec::new();
    g.bench_function("scorer_ordered_raw_20", |b| {
        b.iter(|| scorer.score_ordered(black_box(&ordered), &mut scratch))
    });
    g.bench_function("scorer_named_raw_20", |b| b.iter(|| scorer.score(black_box(&named))));
    g.finish();
}

fn percentiles(mut ns: Vec<f64>) -> (f64, f64, f64) {
    ns.sort_by(f64::total_cmp);
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99), at(0.999))
}

/// Per-call latency from batches of 64 calls, each batch timed with `Instant` (amortises the
/// ~20 ns cost of reading the clock).
fn batch_latencies(batches: usize, mut call: impl FnMut()) -> Vec<f64> {
    const BATCH: usize = 64;
    for _ in 0..BATCH * 200 {
        call();
    }
    (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..BATCH {
                call();
            }
            t.elapsed().as_nanos() as f64 / BATCH as f64
        })
        .collect()
}

/// Per-call latency with one `Instant` pair around every call (includes the clock's cost;
/// catches single slow calls that a batch average hides).
fn single_latencies(calls: usize, mut call: impl FnMut()) -> Vec<f64> {
    (0..calls)
        .map(|_| {
            let t = Instant::now();
            call();
            t.elapsed().as_nanos() as f64
        })
        .collect()
}

fn print_pcts(label: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let max = v.last().copied().unwrap_or(0.0);
    let p9999 = v[((v.len() as f64 - 1.0) * 0.9999).round() as usize];
    let (p50, p99, p999) = percentiles(v);
    println!(
        "{label:<58} p50 {p50:>8.1} ns   p99 {p99:>8.1} ns   p99.9 {p999:>8.1} ns   p99.99 {p9999:>8.1} ns   max {max:>9.1} ns"
    );
}

fn latency_histograms(tmp: &Path) {
    println!("\n== per-call latency (batches of 64 Instant-timed calls) ==");
    for n in [10usize, 100, 1000] {
        let dir = tmp.join(format!("dense{n}"));
        let scorer = Scorer::open(&dir).expect("open");
        let m = numeric_model(n, 0, 1);
        let x: Vec<f32> = (0..n).map(|i| (i % 13) as f32 * 0.1).collect();
        print_pcts(
            &format!("score_dense n={n} scorer"),
            batch_latencies(100_000, || {
                black_box(scorer.score_dense(black_box(&x)));
            }),
        );
        print_pcts(
            &format!("score_dense n={n} plain loop"),
            batch_latencies(100_000, || {
                black_box(plain_dot(black_box(&m.weights), m.bias, black_box(&x)));
            }),
        );
    }
    let scorer = Scorer::open(tmp.join("hashed")).expect("open");
    let m = categorical_model(20, 20);
    let mut s = 12345u64;
    let rows: Vec<Vec<Feature>> = (0..4096)
        .map(|_| {
            (0..20)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    Feature { index: 20 + ((s >> 33) as u32 & ((1 << 20) - 1)), value: 1.0 }
                })
                .collect()
        })
        .collect();
    let mut i = 0usize;
    print_pcts(
        "score_sparse 2^20 buckets, 20 random idx, scorer",
        batch_latencies(50_000, || {
            i = (i + 1) & 4095;
            black_box(scorer.score_sparse(black_box(&rows[i])));
        }),
    );
    print_pcts(
        "score_sparse 2^20 buckets, 20 random idx, plain loop",
        batch_latencies(50_000, || {
            i = (i + 1) & 4095;
            black_box(plain_sparse(black_box(&m.weights), m.bias, black_box(&rows[i])));
        }),
    );
}

fn open_times(tmp: &Path) {
    println!("\n== Scorer::open, 2^20-weight snapshot (page cache warm, median of 30) ==");
    let dir = tmp.join("open");
    publish(&dir, &numeric_model(16, 20, 1));
    for (label, v) in [("full validation", Validation::Full), ("structural only", Validation::Structural)] {
        let mut t: Vec<f64> = (0..30)
            .map(|_| {
                let start = Instant::now();
                black_box(Scorer::open_with(&dir, v).expect("open"));
                start.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        t.sort_by(f64::total_cmp);
        println!("Scorer::open ({label:<16}) median {:>8.1} us   max {:>8.1} us", t[15], t[29]);
    }
    let bytes = std::fs::metadata(dir.join("v00000001.eddy")).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    let copy = std::fs::read(dir.join("v00000001.eddy")).expect("read");
    println!(
        "(for scale: std::fs::read of the same {bytes}-byte file {:.1} us)",
        t.elapsed().as_secs_f64() * 1e6
    );
    black_box(copy);
}

fn swap_tail(tmp: &Path) {
    println!("\n== tail latency of score_dense n=100 with 100 swaps/s vs none (one Instant per call) ==");
    let dir = tmp.join("swap");
    let reg = publish(&dir, &numeric_model(100, 0, 1));
    reg.publish(
        &numeric_model(100, 0, 2),
        Manifest::new("champion", Producer::Retrain { trigger: "bench".into() }),
    )
    .expect("publish");
    let scorer = Scorer::open(&dir).expect("open");
    let x: Vec<f32> = (0..100).map(|i| (i % 13) as f32 * 0.1).collect();
    const CALLS: usize = 15_000_000;
    print_pcts(
        "no swaps",
        single_latencies(CALLS, || {
            black_box(scorer.score_dense(black_box(&x)));
        }),
    );
    let stop = AtomicBool::new(false);
    let (lat, swaps) = std::thread::scope(|s| {
        let swapper = s.spawn(|| {
            let mut n = 0u64;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let to = 1 + (n % 2);
                reg.rollback(to, "bench swap").expect("flip");
                scorer.reload().expect("reload");
                n += 1;
                next += Duration::from_millis(10);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            n
        });
        let started = Instant::now();
        let lat = single_latencies(CALLS, || {
            black_box(scorer.score_dense(black_box(&x)));
        });
        let wall = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        (lat, (swapper.join().expect("swapper"), wall))
    });
    print_pcts(&format!("with swaps ({} swaps during {:.2} s of scoring)", swaps.0, swaps.1), lat);
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, tmp.path());
    latency_histograms(tmp.path());
    open_times(tmp.path());
    swap_tail(tmp.path());
    c.final_summary();
}
