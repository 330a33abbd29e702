//! Every learner kind, snapshotted mid-stream, scores bit-identically through the embeddable
//! scorer (mapped file, zero copy) to the live learner, on a fixed stream.

use eddy_operators::encoder::{EncodingConfig, FeatureEncoder};
use eddy_operators::learner::{LearnerConfig, OptimizerConfig, OptimizerKind};
use eddy_scorer::encoding::{FeatureKind, FeatureSpec, RawValue};
use eddy_scorer::model::ModelKind;
use eddy_scorer::registry::{Manifest, ModelRegistry, Producer};
use eddy_scorer::scorer::Scorer;
use eddy_scorer::snapshot::ModelSnapshot;

/// A fixed, deterministic stream of raw rows: x (numeric), color (categorical), flag (boolean).
fn row(i: u64) -> (f64, &'static str, bool) {
    let x = ((i * 7919) % 1000) as f64 / 100.0 - 5.0;
    let color = ["red", "green", "blue", "cyan"][(i % 4) as usize];
    (x, color, i.is_multiple_of(3))
}

#[test]
fn every_learner_kind_round_trips_bit_identically() {
    let specs = vec![
        FeatureSpec { name: "x".into(), kind: FeatureKind::Numeric },
        FeatureSpec { name: "color".into(), kind: FeatureKind::Categorical },
        FeatureSpec { name: "flag".into(), kind: FeatureKind::Boolean },
    ];
    for task in [ModelKind::Logistic, ModelKind::Linear] {
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adagrad, OptimizerKind::Ftrl] {
            let mut encoder =
                FeatureEncoder::new(specs.clone(), &EncodingConfig { standardize: true, hash_bits: 10 }, 9);
            let config = LearnerConfig {
                optimizer: OptimizerConfig { kind, l1: 0.001, l2: 0.001, ..OptimizerConfig::default() },
            };
            let mut learner = config.build(task, encoder.dim());
            let plan = encoder.plan().clone();
            let mut encoded = Vec::new();
            for i in 0..2000u64 {
                let (x, color, flag) = row(i);
                let stats = encoder.observe(0, x);
                encoded.clear();
                encoded.push(plan.numeric(0, x, stats, true));
                encoded.push(plan.categorical(1, color.as_bytes()));
                encoded.push(plan.boolean(2, flag));
                let y = match task {
                    ModelKind::Logistic => (x + if flag { 1.0 } else { 0.0 } > 0.0) as u8 as f32,
                    ModelKind::Linear => (2.0 * x - 1.0) as f32,
                };
                learner.learn(&encoded, y);
            }
            let dir = tempfile::tempdir().unwrap();
            let registry = ModelRegistry::open(dir.path()).unwrap();
            let snapshot: ModelSnapshot = learner.snapshot(0, encoder.frozen());
            registry
                .publish(
                    &snapshot,
                    Manifest::new("champion", Producer::Online { since: None, updates: 2000 }),
                )
                .unwrap();
            let scorer = Scorer::open(dir.path()).unwrap();
            let frozen = encoder.frozen();
            for i in 5000..6000u64 {
                let (x, color, flag) = row(i);
                // Live: the engine's encoder with frozen statistics, then the learner.
                encoded.clear();
                encoded.push(plan.numeric(0, x, frozen.stats[0], true));
                encoded.push(plan.categorical(1, color.as_bytes()));
                encoded.push(plan.boolean(2, flag));
                let live = learner.predict(&encoded);
                // Served: raw named features through the mapped snapshot.
                let served = scorer.score(&[
                    ("x", RawValue::Number(x)),
                    ("color", RawValue::Text(color)),
                    ("flag", RawValue::Bool(flag)),
                ]);
                assert_eq!(
                    served.value.to_bits(),
                    live.to_bits(),
                    "{task:?}/{kind:?} row {i}: {} vs {live}",
                    served.value
                );
                assert_eq!(served.version, 1);
            }
        }
    }
}
