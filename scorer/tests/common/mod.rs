//! Shared helpers of the integration tests: seeded models and rows.
#![allow(dead_code)]

use eddy_scorer::encoding::{Encoding, FeatureKind, FeatureSpec, NumericStats, RawValue};
use eddy_scorer::model::ModelKind;
use eddy_scorer::registry::{Manifest, Producer};
use eddy_scorer::snapshot::ModelSnapshot;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn spec(name: &str, kind: FeatureKind) -> FeatureSpec {
    FeatureSpec { name: name.into(), kind }
}

/// Several encodings: all kinds, standardize on and off, small and large hash blocks.
pub fn encodings() -> Vec<Encoding> {
    use FeatureKind::*;
    let mixed = vec![
        spec("amount", Numeric),
        spec("country", Categorical),
        spec("is_new", Boolean),
        spec("age", Numeric),
        spec("device", Categorical),
    ];
    let mut with_stats = Encoding::new(mixed.clone(), true, 10, 42);
    with_stats.stats = vec![
        NumericStats { mean: 120.5, std: 33.25 },
        NumericStats::IDENTITY,
        NumericStats::IDENTITY,
        NumericStats { mean: 41.0, std: 12.0 },
        NumericStats::IDENTITY,
    ];
    vec![
        with_stats,
        Encoding::new(mixed, false, 4, 7),
        Encoding::new((0..10).map(|i| spec(&format!("x{i}"), Numeric)).collect(), false, 0, 1),
        Encoding::new(vec![spec("a", Categorical), spec("b", Categorical)], true, 16, 99),
        Encoding::new(vec![spec("flag", Boolean)], true, 2, 3),
    ]
}

/// A model over `encoding` with seeded random weights.
pub fn model(kind: ModelKind, encoding: Encoding, seed: u64) -> ModelSnapshot {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights = (0..encoding.dim()).map(|_| rng.random_range(-2.0f32..2.0)).collect();
    ModelSnapshot { version: 0, kind, encoding, weights, bias: rng.random_range(-1.0f32..1.0) }
}

const WORDS: &[&str] = &["fr", "de", "us", "", "ios", "android", "web", "é", "12345"];

/// One raw value for a feature of `kind`, sometimes missing, NaN or of the wrong kind.
pub fn raw_value(rng: &mut ChaCha8Rng, kind: FeatureKind) -> RawValue<'static> {
    match rng.random_range(0..20) {
        0 => return RawValue::Missing,
        1 => return RawValue::Number(f64::NAN),
        2 => return RawValue::Number(rng.random_range(0..1000) as f64),
        3 => return RawValue::Bool(rng.random()),
        4 => return RawValue::Text(WORDS[rng.random_range(0..WORDS.len())]),
        _ => {}
    }
    match kind {
        FeatureKind::Numeric => RawValue::Number(rng.random_range(-500.0..500.0)),
        FeatureKind::Categorical => RawValue::Text(WORDS[rng.random_range(0..WORDS.len())]),
        FeatureKind::Boolean => RawValue::Bool(rng.random()),
    }
}

/// A row in feature order.
pub fn row(rng: &mut ChaCha8Rng, encoding: &Encoding) -> Vec<RawValue<'static>> {
    encoding.features.iter().map(|f| raw_value(rng, f.kind)).collect()
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn manifest() -> Manifest {
    Manifest::new("champion", Producer::Retrain { trigger: "manual".into() })
}

/// A tiny all-numeric linear model whose weights are a known function of `v`, so a reader can
/// check that a prediction matches the version it reports.
pub fn versioned_model(v: u64) -> ModelSnapshot {
    let encoding =
        Encoding::new((0..4).map(|i| spec(&format!("x{i}"), FeatureKind::Numeric)).collect(), false, 2, 0);
    let weights = (0..encoding.dim()).map(|i| expected_weight(v, i)).collect();
    ModelSnapshot { version: 0, kind: ModelKind::Linear, encoding, weights, bias: v as f32 }
}

pub fn expected_weight(v: u64, i: usize) -> f32 {
    (v as f32) * 0.5 + i as f32
}
