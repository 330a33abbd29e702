//! A snapshot scores bit-identically to the owned model it was taken from.

mod common;

use common::*;
use eddy_scorer::encoding::{Feature, RawValue};
use eddy_scorer::model::{dense_score, linear_score, ModelKind};
use eddy_scorer::registry::{ModelRegistry, RegistryOptions};
use eddy_scorer::snapshot::{decode_snapshot, encode_snapshot, LoadedModel, Validation};
use eddy_scorer::{ScoreBuffer, Scorer};
use rand::Rng;

#[test]
fn snapshot_scores_bit_identically_to_the_owned_model() {
    let tmp = tempfile::tempdir().unwrap();
    let mut case = 0u64;
    for kind in [ModelKind::Logistic, ModelKind::Linear] {
        for encoding in encodings() {
            case += 1;
            let owned = model(kind, encoding.clone(), case);
            let dir = tmp.path().join(format!("case{case}"));
            let reg = ModelRegistry::open_with(&dir, RegistryOptions { fsync: false }).unwrap();
            let version = reg.publish(&owned, manifest()).unwrap();
            let scorer = Scorer::open(&dir).unwrap();
            assert_eq!(scorer.version(), version);

            let plan = encoding.plan();
            let mut rng = rng(1000 + case);
            let mut buf = ScoreBuffer::new();
            let mut sparse = Vec::new();
            for _ in 0..500 {
                let values = row(&mut rng, &encoding);
                let mut expected_row: Vec<Feature> = Vec::new();
                encoding.encode_into(&plan, &values, &mut expected_row);
                let expected = kind.link(linear_score(&owned.weights, owned.bias, &expected_row));

                // Named features, in a shuffled order, with an unknown extra name.
                let mut named: Vec<(&str, RawValue<'_>)> =
                    encoding.features.iter().zip(&values).map(|(f, v)| (f.name.as_str(), *v)).collect();
                named.reverse();
                named.push(("not_a_feature", RawValue::Number(1e9)));
                let p = scorer.score(&named);
                assert_eq!(p.value.to_bits(), expected.to_bits(), "{kind:?} case {case}: {values:?}");
                assert_eq!(p.version, version);
                let p = scorer.score_with(&named, &mut buf);
                assert_eq!(p.value.to_bits(), expected.to_bits());
                assert_eq!(buf.encoded(), &expected_row[..]);

                let p = scorer.score_ordered(&values, &mut sparse);
                assert_eq!(p.value.to_bits(), expected.to_bits());
                let p = scorer.score_sparse(&expected_row);
                assert_eq!(p.value.to_bits(), expected.to_bits());

                let x: Vec<f32> = (0..encoding.n_dense()).map(|_| rng.random_range(-3.0f32..3.0)).collect();
                let expected_dense = kind.link(dense_score(&owned.weights, owned.bias, &x));
                assert_eq!(scorer.score_dense(&x).value.to_bits(), expected_dense.to_bits());
            }

            // Features not given at all are encoded as missing.
            let mut expected_row = Vec::new();
            encoding.encode_into(&plan, &[], &mut expected_row);
            let expected = kind.link(linear_score(&owned.weights, owned.bias, &expected_row));
            assert_eq!(scorer.score(&[]).value.to_bits(), expected.to_bits());

            // The owned model survives the round trip exactly (NaN-free, so `==` is exact).
            let bytes = encode_snapshot(&owned).unwrap();
            assert_eq!(decode_snapshot(&bytes).unwrap(), owned);
            let mapped = scorer.model().to_model_snapshot();
            assert_eq!(mapped, owned.clone().with_version(version));
        }
    }
}

trait WithVersion {
    fn with_version(self, v: u64) -> Self;
}

impl WithVersion for eddy_scorer::ModelSnapshot {
    fn with_version(mut self, v: u64) -> Self {
        self.version = v;
        self
    }
}

#[test]
fn mapped_weights_are_read_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let owned = model(ModelKind::Logistic, encodings().remove(3), 5);
    let path = tmp.path().join("v00000001.eddy");
    std::fs::write(&path, encode_snapshot(&owned.clone().with_version(1)).unwrap()).unwrap();
    let loaded = LoadedModel::open(&path, Validation::Full).unwrap();
    let w = loaded.weights();
    assert_eq!(w, &owned.weights[..]);
    assert_eq!(w.as_ptr() as usize % std::mem::align_of::<f32>(), 0);
    // The structural open skips the checksum and the weight scan but must see the same
    // weights (read in place from the map).
    let structural = LoadedModel::open(&path, Validation::Structural).unwrap();
    assert_eq!(structural.weights(), w);
}

#[test]
fn golden_bytes_keep_the_format_stable() {
    // A fixed model must always encode to the same bytes: this fails if rkyv's format or its
    // features (endianness, alignment, pointer width) change under us.
    let encoding = encodings().remove(1);
    let weights = (0..encoding.dim()).map(|i| i as f32 * 0.25 - 1.0).collect();
    let owned =
        eddy_scorer::ModelSnapshot { version: 3, kind: ModelKind::Logistic, encoding, weights, bias: 0.5 };
    let bytes = encode_snapshot(&owned).unwrap();
    assert_eq!(&bytes[..8], b"EDDYSNAP");
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 3);
    let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
    assert_eq!(digest, GOLDEN, "snapshot bytes changed: {digest:#018x}; bump FORMAT_VERSION if intended");
}

const GOLDEN: u64 = 0xb8d6_64c7_6bc8_65cc;
