//! Reloads, the watcher, bad snapshots and concurrent scoring during publication.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use eddy_scorer::model::dense_score;
use eddy_scorer::registry::{snapshot_file_name, ModelRegistry, RegistryOptions, CURRENT_FILE};
use eddy_scorer::{ReloadOutcome, Scorer};

fn registry(dir: &std::path::Path) -> ModelRegistry {
    ModelRegistry::open_with(dir, RegistryOptions { fsync: false }).unwrap()
}

/// What version `v`'s model must predict for `x`.
fn expected(v: u64, x: &[f32]) -> f32 {
    let m = versioned_model(v);
    dense_score(&m.weights, m.bias, x)
}

#[test]
fn reload_swaps_and_a_bad_snapshot_keeps_the_old_model_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    reg.publish(&versioned_model(1), manifest()).unwrap();
    let scorer = Scorer::open(tmp.path()).unwrap();
    let x = [1.0f32, 2.0, 3.0, 4.0];
    assert_eq!(scorer.reload().unwrap(), ReloadOutcome::Unchanged { version: 1 });

    reg.publish(&versioned_model(2), manifest()).unwrap();
    assert_eq!(scorer.reload().unwrap(), ReloadOutcome::Swapped { from: 1, to: 2 });
    assert_eq!(scorer.score_dense(&x).value, expected(2, &x));

    // A corrupted v3 is "published" by hand: CURRENT flips to it, the scorer refuses it.
    let good = std::fs::read(reg.snapshot_path(2)).unwrap();
    let mut bad = eddy_scorer::snapshot::encode_snapshot(&{
        let mut m = versioned_model(3);
        m.version = 3;
        m
    })
    .unwrap();
    let n = bad.len();
    bad[n - 3] ^= 0xff;
    std::fs::write(tmp.path().join(snapshot_file_name(3)), &bad).unwrap();
    std::fs::write(tmp.path().join(CURRENT_FILE), "v00000003.eddy\n").unwrap();
    let e = scorer.reload().unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    assert_eq!(scorer.rejected_loads(), 1);
    assert!(scorer.last_error().unwrap().to_string().contains("v00000003.eddy"));
    let p = scorer.score_dense(&x);
    assert_eq!((p.value, p.version), (expected(2, &x), 2), "old model keeps serving");
    // The same bad file is not re-validated or re-counted on every poll.
    assert_eq!(scorer.reload().unwrap(), ReloadOutcome::StillRejected { rejected: 3, serving: 2 });
    assert_eq!(scorer.rejected_loads(), 1);

    // Truncated, wrong magic and missing files are refused the same way.
    for (i, bytes) in
        [good[..good.len() / 2].to_vec(), b"NOTASNAPSHOT-AT-ALL".to_vec()].into_iter().enumerate()
    {
        let v = 4 + i as u64;
        std::fs::write(tmp.path().join(snapshot_file_name(v)), bytes).unwrap();
        std::fs::write(tmp.path().join(CURRENT_FILE), format!("{}\n", snapshot_file_name(v))).unwrap();
        assert!(scorer.reload().is_err());
        assert_eq!(scorer.version(), 2);
    }
    std::fs::write(tmp.path().join(CURRENT_FILE), "v00000099.eddy\n").unwrap();
    assert!(scorer.reload().is_err());
    std::fs::write(tmp.path().join(CURRENT_FILE), "garbage").unwrap();
    assert!(scorer.reload().is_err());
    assert_eq!(scorer.rejected_loads(), 5);
    assert_eq!(scorer.score_dense(&x).version, 2);

    // A good version after all that is picked up again.
    reg.publish(&versioned_model(0), manifest()).unwrap(); // next version: 100
    let after = reg.current().unwrap().unwrap();
    assert_eq!(scorer.reload().unwrap(), ReloadOutcome::Swapped { from: 2, to: after });
}

#[test]
fn watcher_picks_up_new_versions_and_stops_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    reg.publish(&versioned_model(1), manifest()).unwrap();
    let scorer = Scorer::open(tmp.path()).unwrap();
    let handle = scorer.watch(Duration::from_millis(5));
    reg.publish(&versioned_model(2), manifest()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while scorer.version() != 2 {
        assert!(Instant::now() < deadline, "watcher did not reload within 10 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    let started = Instant::now();
    drop(handle);
    assert!(started.elapsed() < Duration::from_secs(2), "drop stops the watcher promptly");
    reg.publish(&versioned_model(3), manifest()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(scorer.version(), 2, "no reload after the handle is dropped");
}

#[test]
fn readers_never_see_torn_or_backward_versions_during_1000_publications() {
    const READERS: usize = 8;
    const VERSIONS: u64 = 1000;
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    reg.publish(&versioned_model(1), manifest()).unwrap();
    let scorer = Scorer::open(tmp.path()).unwrap();
    let done = AtomicBool::new(false);

    let (seen, reads) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|t| {
                let scorer = scorer.clone();
                let done = &done;
                s.spawn(move || {
                    let x = [t as f32, 1.5, -2.0, 0.25];
                    let mut last = 0u64;
                    let mut reads = 0u64;
                    while !done.load(Ordering::Acquire) {
                        let p = scorer.score_dense(&x);
                        assert!(p.version >= last, "version went backwards: {last} -> {}", p.version);
                        assert_eq!(
                            p.value.to_bits(),
                            expected(p.version, &x).to_bits(),
                            "prediction does not match version {}",
                            p.version
                        );
                        let named = scorer.score(&[("x0", eddy_scorer::encoding::RawValue::Number(1.0))]);
                        assert!(named.version >= p.version);
                        last = named.version;
                        reads += 1;
                        if reads.is_multiple_of(16) {
                            // 8 spinning readers on a 2-core CI machine would otherwise starve
                            // the publisher for whole scheduler slices.
                            std::thread::yield_now();
                        }
                    }
                    (last, reads)
                })
            })
            .collect();
        // The watcher does the reloads while this thread publishes; a second thread calls
        // reload() directly as well, to prove concurrent reloads never go backwards.
        let _watch = scorer.watch(Duration::from_micros(200));
        let manual = {
            let scorer = scorer.clone();
            let done = &done;
            s.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    scorer.reload().expect("every published version is valid");
                    std::thread::yield_now();
                }
            })
        };
        for v in 2..=VERSIONS {
            let mut m = versioned_model(v);
            m.version = v;
            assert_eq!(reg.publish(&m, manifest()).unwrap(), v);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while scorer.version() != VERSIONS {
            assert!(Instant::now() < deadline, "last version never loaded");
            std::thread::sleep(Duration::from_millis(1));
        }
        done.store(true, Ordering::Release);
        manual.join().unwrap();
        let results: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        (results.iter().map(|r| r.0).min().unwrap(), results.iter().map(|r| r.1).sum::<u64>())
    });
    assert_eq!(scorer.rejected_loads(), 0, "{:?}", scorer.last_error());
    assert!(seen >= 1 && reads > 0);
    assert!(scorer.swaps() > 1);
}
