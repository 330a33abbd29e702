//! The registry directory: versions, manifests, the atomic CURRENT pointer and its history.

mod common;

use common::*;
use eddy_scorer::model::ModelKind;
use eddy_scorer::registry::{
    read_current, ModelRegistry, OffsetRange, PointerAction, Producer, RegistryError, RegistryOptions,
    TimeRange, CURRENT_FILE, HISTORY_FILE,
};
use eddy_scorer::Scorer;

fn full_manifest() -> eddy_scorer::Manifest {
    let mut m = manifest();
    m.parent = Some(7);
    m.produced_by = Producer::Online { since: Some(7), updates: 1234 };
    m.source_offsets.insert("events/0".into(), OffsetRange { first: 10, last: 99 });
    m.event_time = Some(TimeRange { min_ms: 1_700_000_000_000, max_ms: 1_700_000_360_000 });
    m.examples = 1234;
    m.metrics.insert("log_loss".into(), 0.25);
    m.metrics.insert("auc".into(), f64::NAN);
    m.device = "cuda:0".into();
    m.config_hash = "abc123".into();
    m
}

#[test]
fn publish_list_show_and_current() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open(tmp.path().join("models")).unwrap();
    assert_eq!(reg.current().unwrap(), None);
    assert!(reg.list().unwrap().is_empty());
    assert!(matches!(Scorer::open(reg.dir()), Err(RegistryError::NoCurrent { .. })));

    let m = model(ModelKind::Logistic, encodings().remove(0), 1);
    let v1 = reg.publish(&m, full_manifest()).unwrap();
    assert_eq!(v1, 1);
    assert_eq!(reg.current().unwrap(), Some(1));
    assert!(reg.dir().join("v00000001.eddy").exists());
    assert_eq!(std::fs::read_to_string(reg.dir().join(CURRENT_FILE)).unwrap(), "v00000001.eddy\n");

    let shown = reg.show(1).unwrap();
    assert_eq!(shown.version, 1);
    assert_eq!(shown.examples, 1234);
    assert_eq!(shown.produced_by, Producer::Online { since: Some(7), updates: 1234 });
    assert_eq!(shown.metrics["log_loss"], 0.25);
    assert!(shown.metrics["auc"].is_nan(), "NaN metrics survive JSON as null");
    assert_eq!(shown.file, "v00000001.eddy");
    assert!(shown.file_bytes > 0 && shown.created_unix_ms > 0 && shown.payload_xxh3.len() == 16);

    // Shadow: written, not served.
    let shadow = model(ModelKind::Logistic, encodings().remove(0), 2);
    let v2 = reg.publish_without_promote(&shadow, manifest()).unwrap();
    assert_eq!(v2, 2);
    assert_eq!(reg.current().unwrap(), Some(1));
    assert_eq!(reg.list().unwrap().iter().map(|m| m.version).collect::<Vec<_>>(), vec![1, 2]);

    // Explicit versions must grow.
    let mut old = m.clone();
    old.version = 2;
    assert!(matches!(reg.publish(&old, manifest()), Err(RegistryError::VersionNotNewer { latest: 2, .. })));
    old.version = 10;
    assert_eq!(reg.publish(&old, manifest()).unwrap(), 10);
    assert_eq!(reg.publish(&m, manifest()).unwrap(), 11);

    assert!(matches!(reg.show(5), Err(RegistryError::UnknownVersion { version: 5, .. })));
    // No temporary files are left behind.
    let stray: Vec<_> = std::fs::read_dir(reg.dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn rollback_and_promote_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open_with(tmp.path(), RegistryOptions { fsync: false }).unwrap();
    for seed in 0..3 {
        reg.publish(&model(ModelKind::Linear, encodings().remove(2), seed), manifest()).unwrap();
    }
    let shadow =
        reg.publish_without_promote(&model(ModelKind::Linear, encodings().remove(2), 9), manifest()).unwrap();
    assert_eq!(reg.current().unwrap(), Some(3));

    let change = reg.rollback(1, "v3 regressed on auc").unwrap();
    assert_eq!((change.action, change.from, change.to), (PointerAction::Rollback, Some(3), 1));
    assert_eq!(reg.current().unwrap(), Some(1));
    assert!(matches!(reg.rollback(42, "typo"), Err(RegistryError::UnknownVersion { version: 42, .. })));
    assert_eq!(reg.current().unwrap(), Some(1), "a failed rollback leaves CURRENT alone");

    reg.promote(shadow, "shadow beat champion").unwrap();
    assert_eq!(reg.current().unwrap(), Some(shadow));

    let history = reg.history().unwrap();
    let summary: Vec<_> = history.iter().map(|h| (h.action, h.from, h.to)).collect();
    assert_eq!(
        summary,
        vec![
            (PointerAction::Publish, None, 1),
            (PointerAction::Publish, Some(1), 2),
            (PointerAction::Publish, Some(2), 3),
            (PointerAction::Rollback, Some(3), 1),
            (PointerAction::Promote, Some(1), shadow),
        ]
    );
    assert_eq!(history[3].reason, "v3 regressed on auc");
    assert_eq!(std::fs::read_to_string(reg.dir().join(HISTORY_FILE)).unwrap().lines().count(), 5);
}

#[test]
fn rollback_refuses_a_corrupted_target() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open_with(tmp.path(), RegistryOptions { fsync: false }).unwrap();
    reg.publish(&model(ModelKind::Linear, encodings().remove(2), 1), manifest()).unwrap();
    reg.publish(&model(ModelKind::Linear, encodings().remove(2), 2), manifest()).unwrap();
    let path = reg.snapshot_path(1);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let e = reg.rollback(1, "test").unwrap_err();
    assert!(matches!(e, RegistryError::Snapshot { .. }), "{e}");
    assert!(e.to_string().contains("checksum"), "{e}");
    assert_eq!(reg.current().unwrap(), Some(2));
}

#[test]
fn promote_from_imports_another_registrys_current_model() {
    let tmp = tempfile::tempdir().unwrap();
    let staging =
        ModelRegistry::open_with(tmp.path().join("staging"), RegistryOptions { fsync: false }).unwrap();
    let prod = ModelRegistry::open_with(tmp.path().join("prod"), RegistryOptions { fsync: false }).unwrap();
    assert!(matches!(prod.promote_from(staging.dir(), "x"), Err(RegistryError::NoCurrent { .. })));

    prod.publish(&model(ModelKind::Logistic, encodings().remove(0), 1), manifest()).unwrap();
    let candidate = model(ModelKind::Logistic, encodings().remove(0), 2);
    staging.publish(&candidate, manifest()).unwrap();
    staging.publish(&candidate, full_manifest()).unwrap();
    staging.rollback(2, "keep v2 current").unwrap();

    let v = prod.promote_from(staging.dir(), "passed review").unwrap();
    assert_eq!(v, 2);
    assert_eq!(prod.current().unwrap(), Some(2));
    let m = prod.show(2).unwrap();
    assert_eq!(m.parent, Some(1));
    match &m.produced_by {
        Producer::Imported { from_version: 2, original, .. } => {
            assert_eq!(**original, Producer::Online { since: Some(7), updates: 1234 })
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.examples, 1234, "provenance is kept");
    let imported = prod.load(2).unwrap().to_model_snapshot();
    assert_eq!(imported.weights, candidate.weights);
    let last = prod.history().unwrap().pop().unwrap();
    assert_eq!(last.action, PointerAction::Import);
    assert!(last.reason.contains("passed review"));
}

#[test]
fn current_pointer_is_validated() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(CURRENT_FILE), "../../etc/passwd\n").unwrap();
    let e = read_current(tmp.path()).unwrap_err();
    assert!(matches!(e, RegistryError::BadPointer { .. }), "{e}");
    assert!(matches!(Scorer::open(tmp.path()), Err(RegistryError::BadPointer { .. })));
}

#[test]
fn pointer_flip_is_atomic_for_concurrent_readers() {
    // Readers hammer CURRENT while it is flipped back and forth: every read parses (never
    // empty or half written), which is what temp + rename guarantees.
    let tmp = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open_with(tmp.path(), RegistryOptions { fsync: false }).unwrap();
    reg.publish(&model(ModelKind::Linear, encodings().remove(4), 1), manifest()).unwrap();
    reg.publish(&model(ModelKind::Linear, encodings().remove(4), 2), manifest()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = read_current(tmp.path()).expect("CURRENT always parses");
                assert!(matches!(v, Some(1) | Some(2)));
                reads += 1;
            }
            reads
        });
        for i in 0..200 {
            reg.rollback(1 + (i % 2), "flip").unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
}
