//! Online-learner throughput: one `learn` (score + update) and one `predict` per row.
//!
//! `CARGO_TARGET_DIR=/work/target-bench cargo bench -p eddy-operators --bench learner -- --warm-up-time 1 --measurement-time 3`
//!
//! Groups (throughput in rows per second; `BenchmarkId` = `<optimizer>/<shape>`):
//! - `learn`:   `LinearLearner::learn` (logistic) for sgd, adagrad and ftrl;
//! - `predict`: `LinearLearner::predict` on a model trained on the same rows;
//! - `encode`:  `FeatureEncoder` work per row (running standardisation or categorical hashing),
//!   the step the engine runs before scoring.
//!
//! Shapes: `dense10` and `dense100` are standardised numeric rows (indices 0..d, dim = d);
//! `hashed20` is 20 categorical fields hashed by the real `FeatureEncoder` plan into a 2^20
//! block (dim = 2^20, so updates touch scattered cache lines as in production).
//!
//! Each iteration walks a pool of `ROWS` precomputed, seeded rows; the learner persists across
//! iterations, so the figures are for a warm model in steady state, not for allocation.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eddy_operators::encoder::{EncodingConfig, FeatureEncoder};
use eddy_operators::learner::{LinearLearner, OnlineLearner, OptimizerConfig, OptimizerKind};
use eddy_scorer::encoding::{Feature, FeatureKind, FeatureSpec};
use eddy_scorer::model::ModelKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rows per iteration (the pool is walked once per iteration).
const ROWS: usize = 4096;
/// Distinct values of each categorical field in the hashed shape.
const CARDINALITY: u32 = 10_000;
/// Hashed block of the `hashed20` shape.
const HASH_BITS: u32 = 20;

/// A fixed-width pool of encoded rows with 0/1 labels.
struct Pool {
    name: &'static str,
    dim: usize,
    width: usize,
    features: Vec<Feature>,
    labels: Vec<f32>,
}

impl Pool {
    fn rows(&self) -> impl Iterator<Item = (&[Feature], f32)> {
        self.features.chunks_exact(self.width).zip(self.labels.iter().copied())
    }
}

/// Standard-normal-ish value (sum of uniforms, cheap and deterministic).
fn normalish(rng: &mut ChaCha8Rng) -> f32 {
    (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0
}

/// `d` dense numeric features, labelled by a random hyperplane with 5 % label noise.
fn dense_pool(name: &'static str, d: usize, seed: u64) -> Pool {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let truth: Vec<f32> = (0..d).map(|_| normalish(&mut rng)).collect();
    let mut features = Vec::with_capacity(ROWS * d);
    let mut labels = Vec::with_capacity(ROWS);
    for _ in 0..ROWS {
        let mut z = 0.0;
        for (i, w) in truth.iter().enumerate() {
            let x = normalish(&mut rng);
            z += w * x;
            features.push(Feature { index: i as u32, value: x });
        }
        let flip = rng.random::<f32>() < 0.05;
        labels.push(f32::from(u8::from((z > 0.0) != flip)));
    }
    Pool { name, dim: d, width: d, features, labels }
}

fn categorical_encoder(n: usize) -> FeatureEncoder {
    let specs =
        (0..n).map(|i| FeatureSpec { name: format!("c{i}"), kind: FeatureKind::Categorical }).collect();
    FeatureEncoder::new(specs, &EncodingConfig { standardize: true, hash_bits: HASH_BITS }, 1)
}

/// 20 categorical fields with `CARDINALITY` values each, hashed into 2^20 by the encoder's
/// plan; the label depends on a random per-value effect.
fn hashed_pool(name: &'static str, n: usize, seed: u64) -> Pool {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let encoder = categorical_encoder(n);
    let plan = encoder.plan();
    let mut features = Vec::with_capacity(ROWS * n);
    let mut labels = Vec::with_capacity(ROWS);
    for _ in 0..ROWS {
        let mut z = 0.0f32;
        for i in 0..n {
            let v = rng.random_range(0..CARDINALITY);
            // A deterministic per-(field, value) effect in [-1, 1).
            z += ((v.wrapping_mul(2_654_435_761) ^ (i as u32 * 40_503)) % 2000) as f32 / 1000.0 - 1.0;
            features.push(plan.categorical(i, v.to_string().as_bytes()));
        }
        labels.push(f32::from(u8::from(z > 0.0)));
    }
    Pool { name, dim: encoder.dim(), width: n, features, labels }
}

fn pools() -> Vec<Pool> {
    vec![dense_pool("dense10", 10, 1), dense_pool("dense100", 100, 2), hashed_pool("hashed20", 20, 3)]
}

fn optimizers() -> [(&'static str, OptimizerConfig); 3] {
    let base = OptimizerConfig::default();
    [
        ("sgd", OptimizerConfig { kind: OptimizerKind::Sgd, learning_rate: 0.01, ..base.clone() }),
        ("adagrad", OptimizerConfig { kind: OptimizerKind::Adagrad, ..base.clone() }),
        ("ftrl", OptimizerConfig { kind: OptimizerKind::Ftrl, l1: 0.001, l2: 0.001, ..base }),
    ]
}

/// A learner that has already seen the pool once (steady-state weights and accumulators).
fn trained(pool: &Pool, config: &OptimizerConfig) -> LinearLearner {
    let mut learner = LinearLearner::new(ModelKind::Logistic, pool.dim, config.clone());
    for (row, y) in pool.rows() {
        learner.learn(row, y);
    }
    learner
}

fn learn(c: &mut Criterion) {
    let pools = pools();
    let mut group = c.benchmark_group("learn");
    group.throughput(Throughput::Elements(ROWS as u64));
    for pool in &pools {
        for (opt, config) in optimizers() {
            let mut learner = trained(pool, &config);
            group.bench_function(BenchmarkId::new(opt, pool.name), |b| {
                b.iter(|| {
                    for (row, y) in pool.rows() {
                        learner.learn(black_box(row), black_box(y));
                    }
                });
            });
            black_box(learner.bias());
        }
    }
    group.finish();
}

fn predict(c: &mut Criterion) {
    let pools = pools();
    let mut group = c.benchmark_group("predict");
    group.throughput(Throughput::Elements(ROWS as u64));
    for pool in &pools {
        for (opt, config) in optimizers() {
            let learner = trained(pool, &config);
            group.bench_function(BenchmarkId::new(opt, pool.name), |b| {
                b.iter(|| {
                    let mut sum = 0.0f32;
                    for (row, _) in pool.rows() {
                        sum += learner.predict(black_box(row));
                    }
                    black_box(sum)
                });
            });
        }
    }
    group.finish();
}

/// The encoder's per-row work: update running statistics and standardise (dense), or hash
/// category bytes into the sparse block (hashed).
fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, d) in [("dense10", 10usize), ("dense100", 100)] {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let raw: Vec<f64> = (0..ROWS * d).map(|_| f64::from(normalish(&mut rng)) * 3.0 + 1.0).collect();
        let specs =
            (0..d).map(|i| FeatureSpec { name: format!("x{i}"), kind: FeatureKind::Numeric }).collect();
        let mut encoder = FeatureEncoder::new(specs, &EncodingConfig::default(), 1);
        let mut out = Vec::with_capacity(d);
        group.bench_function(BenchmarkId::new("standardize", name), |b| {
            b.iter(|| {
                let mut sum = 0.0f32;
                for row in raw.chunks_exact(d) {
                    out.clear();
                    for (i, &x) in row.iter().enumerate() {
                        out.push(encoder.encode_numeric(i, black_box(x)));
                    }
                    sum += out[0].value;
                }
                black_box(sum)
            });
        });
    }
    let n = 20;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let raw: Vec<String> = (0..ROWS * n).map(|_| rng.random_range(0..CARDINALITY).to_string()).collect();
    let encoder = categorical_encoder(n);
    let mut out = Vec::with_capacity(n);
    group.bench_function(BenchmarkId::new("hash", "hashed20"), |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for row in raw.chunks_exact(n) {
                out.clear();
                for (i, v) in row.iter().enumerate() {
                    out.push(encoder.plan().categorical(i, black_box(v.as_bytes())));
                }
                sum = sum.wrapping_add(out[0].index);
            }
            black_box(sum)
        });
    });
    group.finish();
}

criterion_group!(benches, learn, predict, encode);
criterion_main!(benches);
