//! The scoring hot paths do not allocate (after a thread's first named-feature call).
//! The only test in this binary, so no other thread allocates while it counts.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use eddy_scorer::encoding::{Feature, RawValue};
use eddy_scorer::model::ModelKind;
use eddy_scorer::registry::{ModelRegistry, RegistryOptions};
use eddy_scorer::Scorer;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn scoring_does_not_allocate() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open_with(tmp.path(), RegistryOptions { fsync: false }).unwrap();
    let encoding = encodings().remove(0);
    reg.publish(&model(ModelKind::Logistic, encoding, 1), manifest()).unwrap();
    let scorer = Scorer::open(tmp.path()).unwrap();
    let x = [1.0f32, 0.0, 2.0];
    let row = [Feature { index: 0, value: 1.0 }, Feature { index: 7, value: 1.0 }];
    let named = [
        ("amount", RawValue::Number(10.0)),
        ("country", RawValue::Text("fr")),
        ("is_new", RawValue::Bool(true)),
        ("unknown", RawValue::Missing),
    ];
    let mut scratch = Vec::with_capacity(64);
    // Warm up: the thread-local buffer grows once.
    let mut sum = scorer.score(&named).value;
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        sum += scorer.score_dense(&x).value;
        sum += scorer.score_sparse(&row).value;
        sum += scorer.score(&named).value;
        sum += scorer.score_ordered(&[RawValue::Number(1.0), RawValue::Text("de")], &mut scratch).value;
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert!(sum.is_finite());
    assert_eq!(after - before, 0, "scoring allocated {} times", after - before);
}
