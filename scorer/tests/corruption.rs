//! Damaged, truncated, foreign and future snapshots are rejected, never trusted, never panic.

mod common;

use common::*;
use eddy_scorer::model::ModelKind;
use eddy_scorer::snapshot::{
    encode_snapshot, frame_payload, read_header, LoadedModel, SnapshotError, SnapshotV1, Validation,
    HEADER_LEN,
};
use proptest::prelude::*;

fn good_bytes() -> Vec<u8> {
    let mut m = model(ModelKind::Logistic, encodings().remove(0), 3);
    m.version = 9;
    encode_snapshot(&m).unwrap()
}

#[test]
fn wrong_magic_is_rejected() {
    let mut b = good_bytes();
    b[0] = b'X';
    assert!(matches!(LoadedModel::from_bytes(&b, Validation::Full), Err(SnapshotError::BadMagic { .. })));
    let e = LoadedModel::from_bytes(b"{\"json\": true}", Validation::Full).unwrap_err();
    assert!(matches!(e, SnapshotError::BadMagic { .. }), "{e}");
    assert!(e.to_string().contains("not an eddy snapshot"));
}

#[test]
fn future_format_version_is_rejected_before_anything_else() {
    let mut b = good_bytes();
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    match LoadedModel::from_bytes(&b, Validation::Full) {
        Err(SnapshotError::UnsupportedVersion { found: 2, supported: 1 }) => {}
        other => panic!("{other:?}"),
    }
    // Even a truncated file of a future format says "unsupported", which is the actionable part.
    match LoadedModel::from_bytes(&b[..20], Validation::Full) {
        Err(SnapshotError::UnsupportedVersion { found: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncation_is_reported_as_truncated() {
    let b = good_bytes();
    for len in [0, 3, 8, 30, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 10, b.len() - 1] {
        match LoadedModel::from_bytes(&b[..len], Validation::Full) {
            Err(SnapshotError::Truncated { found, .. }) => assert_eq!(found, len as u64),
            other => panic!("len {len}: {other:?}"),
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v00000009.eddy");
    std::fs::write(&path, &b[..HEADER_LEN / 2]).unwrap();
    assert!(matches!(LoadedModel::open(&path, Validation::Full), Err(SnapshotError::Truncated { .. })));
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(LoadedModel::open(&path, Validation::Full), Err(SnapshotError::Truncated { .. })));
    let missing = tmp.path().join("nope.eddy");
    let e = LoadedModel::open(&missing, Validation::Full).unwrap_err();
    assert!(matches!(e, SnapshotError::Io { .. }) && e.to_string().contains("nope.eddy"), "{e}");
}

#[test]
fn payload_damage_is_a_checksum_mismatch() {
    let mut b = good_bytes();
    let last = b.len() - 20;
    b[last] ^= 0x40;
    assert!(matches!(
        LoadedModel::from_bytes(&b, Validation::Full),
        Err(SnapshotError::ChecksumMismatch { what: "payload", .. })
    ));
    let mut b = good_bytes();
    b[20] ^= 1; // model version in the header
    assert!(matches!(
        LoadedModel::from_bytes(&b, Validation::Full),
        Err(SnapshotError::ChecksumMismatch { what: "header", .. })
    ));
    let mut b = good_bytes();
    b.push(0);
    assert!(matches!(LoadedModel::from_bytes(&b, Validation::Full), Err(SnapshotError::Invalid(_))));
}

#[test]
fn structurally_bad_payloads_with_valid_checksums_are_invalid() {
    // Garbage behind a correct header: only rkyv's validation stands between it and the scorer.
    for payload in [vec![], vec![0u8; 7], vec![0xffu8; 64], (0..200u8).collect::<Vec<_>>()] {
        let b = frame_payload(1, &payload);
        assert!(matches!(LoadedModel::from_bytes(&b, Validation::Full), Err(SnapshotError::Invalid(_))));
    }
    // A well-formed archive that disagrees with itself.
    let mut m = model(ModelKind::Linear, encodings().remove(1), 4);
    m.version = 1;
    let mut v1 = SnapshotV1::from_model(&m, 1);
    v1.weights.pop();
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v1).unwrap();
    let e = LoadedModel::from_bytes(&frame_payload(1, &payload), Validation::Full).unwrap_err();
    assert!(e.to_string().contains("weights"), "{e}");
    let mut v1 = SnapshotV1::from_model(&m, 2);
    v1.hash_bits = 60;
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v1).unwrap();
    let e = LoadedModel::from_bytes(&frame_payload(2, &payload), Validation::Structural).unwrap_err();
    assert!(e.to_string().contains("hash_bits"), "{e}");
    let v1 = SnapshotV1::from_model(&m, 5);
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&v1).unwrap();
    let e = LoadedModel::from_bytes(&frame_payload(6, &payload), Validation::Full).unwrap_err();
    assert!(e.to_string().contains("version"), "{e}");
}

#[test]
fn diverged_models_are_refused_at_encode_and_at_load() {
    let mut m = model(ModelKind::Logistic, encodings().remove(2), 8);
    m.weights[3] = f32::NAN;
    assert!(matches!(encode_snapshot(&m), Err(SnapshotError::Invalid(_))));
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(&SnapshotV1::from_model(&m, 0)).unwrap();
    let b = frame_payload(0, &payload);
    let e = LoadedModel::from_bytes(&b, Validation::Full).unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");
    let mut m = model(ModelKind::Logistic, encodings().remove(0), 8);
    m.encoding.stats[0].std = 0.0;
    assert!(encode_snapshot(&m).unwrap_err().to_string().contains("amount"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn random_byte_flips_are_never_accepted(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let good = good_bytes();
        let mut b = good.clone();
        for (at, mask) in &flips {
            let i = at.index(b.len());
            b[i] ^= mask;
        }
        for validation in [Validation::Full, Validation::Structural] {
            let r = LoadedModel::from_bytes(&b, validation);
            if validation == Validation::Full {
                // A flip anywhere must be caught (checksums are over every byte).
                prop_assert!(r.is_err(), "accepted a corrupted snapshot: flips {flips:?}");
            } else if let Ok(m) = r {
                // Structural mode may accept a flipped weight, but never anything it cannot
                // score safely.
                let _ = m.score_dense(&[1.0, 2.0]);
            }
        }
    }

    #[test]
    fn truncations_are_never_accepted(cut in any::<prop::sample::Index>()) {
        let good = good_bytes();
        let len = cut.index(good.len());
        let r = LoadedModel::from_bytes(&good[..len], Validation::Full);
        prop_assert!(matches!(r, Err(SnapshotError::Truncated { .. })), "{r:?}");
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_header_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let b = frame_payload(1, &payload);
        let _ = LoadedModel::from_bytes(&b, Validation::Full);
        let _ = read_header(&payload);
    }

    #[test]
    fn flips_inside_a_valid_archive_never_panic(at in any::<prop::sample::Index>(), mask in 1u8..=255) {
        // Re-frame the damaged payload with a fresh checksum, so the flip reaches rkyv's
        // validation and the semantic checks instead of stopping at the checksum.
        let good = good_bytes();
        let mut payload = good[HEADER_LEN..].to_vec();
        let i = at.index(payload.len());
        payload[i] ^= mask;
        if let Ok(m) = LoadedModel::from_bytes(&frame_payload(9, &payload), Validation::Full) {
            let _ = m.score_sparse(&[eddy_scorer::encoding::Feature { index: 1, value: 1.0 }]);
            let _ = m.to_model_snapshot();
        }
    }
}
