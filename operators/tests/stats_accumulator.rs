//! Accumulator laws against a naive recomputation: merge equals sequential update, retract
//! equals recomputation, quantiles within the sketch's documented bound, checkpoint round trip.

use eddy_operators::stats::{
    Accumulator, MomentsAccumulator, Retract, SketchConfig, StatsError, SummaryAccumulator,
};
use proptest::prelude::*;

const QUANTILES: [f64; 7] = [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0];

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![4 => -1e4..1e4f64, 1 => Just(0.0), 1 => (-3i32..3).prop_map(f64::from)],
        0..300,
    )
}

fn scale(xs: &[f64]) -> f64 {
    xs.iter().fold(1.0f64, |m, x| m.max(x.abs()))
}

fn naive_moments(xs: &[f64]) -> (u64, f64, f64) {
    if xs.is_empty() {
        return (0, 0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.len() as u64, mean, xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n)
}

fn check_moments(acc: &impl Accumulator, xs: &[f64]) -> Result<(), TestCaseError> {
    check_moments_scaled(acc, xs, scale(xs))
}

/// `sc`: the magnitude the rounding error is relative to — for retraction, the largest value
/// that ever went through the state, not only those still in it.
fn check_moments_scaled(acc: &impl Accumulator, xs: &[f64], sc: f64) -> Result<(), TestCaseError> {
    let s = acc.evaluate(&[]);
    let (n, mean, var) = naive_moments(xs);
    prop_assert_eq!(s.count, n);
    prop_assert!((s.mean - mean).abs() <= 1e-9 * sc, "mean {} vs {}", s.mean, mean);
    prop_assert!((s.variance - var).abs() <= 1e-9 * sc * sc, "variance {} vs {}", s.variance, var);
    prop_assert!((s.std - var.sqrt()).abs() <= 1e-6 * sc, "std {} vs {}", s.std, var.sqrt());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn moments_merge_equals_sequential(a in values(), b in values()) {
        let mut left = MomentsAccumulator::new();
        left.update_batch(&a);
        let mut right = MomentsAccumulator::new();
        right.update_batch(&b);
        left.merge(&right).unwrap();
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        check_moments(&left, &all)?;
    }

    /// Retract each value in turn (oldest first, like a sliding window) and compare with a
    /// recomputation of what is left after every step.
    #[test]
    fn moments_retract_equals_recompute(xs in values(), extra in values()) {
        let mut acc = MomentsAccumulator::new();
        acc.update_batch(&xs);
        let mut window: std::collections::VecDeque<f64> = xs.iter().copied().collect();
        let history = scale(&xs).max(scale(&extra));
        for &x in &extra {
            acc.update(x);
            window.push_back(x);
            if let Some(old) = window.pop_front() {
                acc.retract(old);
            }
            let v: Vec<f64> = window.iter().copied().collect();
            check_moments_scaled(&acc, &v, history)?;
        }
        while let Some(old) = window.pop_front() {
            acc.retract(old);
            let v: Vec<f64> = window.iter().copied().collect();
            check_moments_scaled(&acc, &v, history)?;
        }
        prop_assert_eq!(acc, MomentsAccumulator::new());
    }

    #[test]
    fn summary_after_every_update_and_merge(a in values(), b in values()) {
        let mut seq = SummaryAccumulator::new(SketchConfig::default());
        let mut seen = Vec::new();
        for &x in a.iter().chain(&b) {
            seq.update(x);
            seen.push(x);
            check_summary(&seq, &seen)?;
        }
        let mut left = SummaryAccumulator::new(SketchConfig::default());
        left.update_batch(&a);
        let mut right = SummaryAccumulator::new(SketchConfig::default());
        right.update_batch(&b);
        left.merge(&right).unwrap();
        check_summary(&left, &seen)?;
        // Sketch merges are exact: the merged quantiles equal the sequential ones bit for bit.
        prop_assert_eq!(left.evaluate(&QUANTILES).quantiles, seq.evaluate(&QUANTILES).quantiles);
    }

    #[test]
    fn summary_checkpoint_roundtrip(a in values()) {
        let mut acc = SummaryAccumulator::new(SketchConfig::default());
        acc.update_batch(&a);
        let back: SummaryAccumulator = serde_json::from_value(serde_json::to_value(&acc).unwrap()).unwrap();
        // Debug form: NaN (empty state) compares unequal to itself.
        prop_assert_eq!(format!("{:?}", back.evaluate(&QUANTILES)), format!("{:?}", acc.evaluate(&QUANTILES)));
        prop_assert_eq!(back.size_bytes(), acc.size_bytes());
    }
}

fn check_summary(acc: &SummaryAccumulator, xs: &[f64]) -> Result<(), TestCaseError> {
    check_moments(acc, xs)?;
    let s = acc.evaluate(&QUANTILES);
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    prop_assert_eq!(s.min, sorted[0]);
    prop_assert_eq!(s.max, sorted[sorted.len() - 1]);
    let alpha = SketchConfig::default().relative_error;
    for &(q, est) in &s.quantiles {
        let exact = sorted[(q * (sorted.len() as f64 - 1.0)) as usize];
        prop_assert!(
            (est - exact).abs() <= alpha * (1.0 + 1e-9) * exact.abs() + SketchConfig::MIN_VALUE,
            "q {q}: {est} vs {exact}"
        );
    }
    Ok(())
}

#[test]
fn empty_states() {
    let s = SummaryAccumulator::new(SketchConfig::default()).evaluate(&[0.5]);
    assert_eq!((s.count, s.mean, s.variance, s.std), (0, 0.0, 0.0, 0.0));
    assert!(s.min.is_nan() && s.max.is_nan() && s.quantiles[0].1.is_nan());
    let mut m = MomentsAccumulator::new();
    m.retract(3.0);
    assert_eq!(m, MomentsAccumulator::new(), "retracting from empty is a no-op");
    m.update(4.0);
    assert_eq!(m.evaluate(&[]).variance, 0.0, "one value: population variance 0, not NaN");
}

#[test]
fn merging_different_sketch_settings_is_an_error() {
    let mut a = SummaryAccumulator::new(SketchConfig::default());
    let b = SummaryAccumulator::new(SketchConfig { relative_error: 0.05, ..SketchConfig::default() });
    assert!(matches!(a.merge(&b), Err(StatsError::IncompatibleMerge(_))));
}

#[test]
fn sketch_config_validation() {
    assert!(SketchConfig::default().validate("t").is_ok());
    assert!(SketchConfig { relative_error: 0.0, ..SketchConfig::default() }.validate("t").is_err());
    assert!(SketchConfig { max_bins: 3, ..SketchConfig::default() }.validate("t").is_err());
}
