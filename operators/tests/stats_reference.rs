//! PSI and KS against hand-computed values and against scipy (`fixtures/stats/ks_scipy.json`,
//! regenerated with `python3 fixtures/stats/gen_ks.py > fixtures/stats/ks_scipy.json`).

use eddy_operators::stats::{
    kolmogorov_sf, ks_p_value, ks_statistic_sorted, ReferenceDrift, ReferenceDriftConfig, ReferenceSource,
};
use proptest::prelude::*;

fn config(reference_size: usize, current_size: usize, bins: usize) -> ReferenceDriftConfig {
    ReferenceDriftConfig {
        reference_size,
        current_size,
        bins,
        check_every: 1,
        ..ReferenceDriftConfig::default()
    }
}

#[test]
fn psi_hand_computed() {
    // Reference 1..=10 in 5 bins: edges at ref[2], ref[4], ref[6], ref[8] = 3, 5, 7, 9, so each
    // bin holds 2 values (r = 0.2 everywhere).
    let reference: Vec<f64> = (1..=10).map(f64::from).collect();
    let mut d = ReferenceDrift::with_reference(config(10, 4, 5), &reference).unwrap();
    assert_eq!(d.bin_edges(), &[3.0, 5.0, 7.0, 9.0]);
    assert_eq!(d.source(), ReferenceSource::Provided);
    // Current [1, 2, 3, 9]: fractions 0.5, 0.25, 0, 0, 0.25; the empty bins use epsilon 1e-4.
    for x in [1.0, 2.0, 3.0, 9.0] {
        d.update(x);
    }
    let eps: f64 = 1e-4;
    let term = |c: f64, r: f64| (c - r) * (c / r).ln();
    let want = term(0.5, 0.2) + term(0.25, 0.2) + 2.0 * term(eps, 0.2) + term(0.25, 0.2);
    assert!((d.psi().unwrap() - want).abs() < 1e-12, "{} vs {want}", d.psi().unwrap());
    // KS: F_ref(2) = 0.2, F_cur(2) = 0.5 -> 0.3; F_ref(3) = 0.3, F_cur(3) = 0.75 -> 0.45.
    assert!((d.ks().unwrap() - 0.45).abs() < 1e-12);
    // Ring buffer: four more values replace the window entirely.
    for x in [5.0, 6.0, 7.0, 8.0] {
        d.update(x);
    }
    // Fractions 0, 0, 0.5, 0.5, 0 -> two bins at 0.5, three at epsilon.
    let want = 2.0 * term(0.5, 0.2) + 3.0 * term(eps, 0.2);
    assert!((d.psi().unwrap() - want).abs() < 1e-12);
    // F_ref(4) = 0.4, F_cur(4) = 0 -> 0.4; F_ref(8) = 0.8, F_cur(8) = 1 -> 0.2.
    assert!((d.ks().unwrap() - 0.4).abs() < 1e-12);
}

#[test]
fn identical_samples_have_zero_psi_and_ks() {
    let reference: Vec<f64> = (0..100).map(|i| f64::from(i % 17)).collect();
    let mut d = ReferenceDrift::with_reference(config(100, 100, 10), &reference).unwrap();
    let mut events = 0;
    for &x in &reference {
        events += usize::from(d.update(x).is_some());
    }
    assert_eq!(events, 0);
    assert!(d.psi().unwrap().abs() < 1e-12);
    assert_eq!(d.ks().unwrap(), 0.0);
}

#[test]
fn ks_matches_scipy_fixture() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stats/ks_scipy.json"))
            .expect("fixture");
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sorted = |v: &serde_json::Value| {
        let mut xs: Vec<f64> = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        xs.sort_by(f64::total_cmp);
        xs
    };
    let cases = fixture["ks_2samp"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let (a, b) = (sorted(&case["a"]), sorted(&case["b"]));
        let want = case["statistic"].as_f64().unwrap();
        let got = ks_statistic_sorted(&a, &b);
        assert!((got - want).abs() < 1e-12, "n={} m={}: {got} vs scipy {want}", a.len(), b.len());
        // The same through the operator: reference a, current window b.
        let mut d = ReferenceDrift::with_reference(config(a.len(), b.len(), 10), &a).unwrap();
        for x in case["b"].as_array().unwrap() {
            d.update(x.as_f64().unwrap());
        }
        assert!((d.ks().unwrap() - want).abs() < 1e-12);
    }
    for point in fixture["kstwobign_sf"].as_array().unwrap() {
        let (lambda, want) = (point["lambda"].as_f64().unwrap(), point["sf"].as_f64().unwrap());
        let got = kolmogorov_sf(lambda);
        assert!((got - want).abs() < 1e-10, "Q({lambda}) = {got}, scipy {want}");
    }
}

fn naive_ks(a: &[f64], b: &[f64]) -> f64 {
    let cdf = |s: &[f64], x: f64| s.iter().filter(|v| **v <= x).count() as f64 / s.len() as f64;
    a.iter().chain(b).map(|&x| (cdf(a, x) - cdf(b, x)).abs()).fold(0.0, f64::max)
}

proptest! {
    #[test]
    fn ks_matches_brute_force(mut a in prop::collection::vec((-20i32..20).prop_map(|x| f64::from(x) / 4.0), 1..60),
                              mut b in prop::collection::vec((-20i32..20).prop_map(|x| f64::from(x) / 3.0), 1..60)) {
        let want = naive_ks(&a, &b);
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        prop_assert!((ks_statistic_sorted(&a, &b) - want).abs() < 1e-12);
    }

    /// The incrementally maintained bin counts equal a recomputation after every update.
    #[test]
    fn psi_equals_recomputation(reference in prop::collection::vec(-50.0..50.0f64, 5..80),
                                stream in prop::collection::vec(prop_oneof![-60.0..60.0f64, (-3i32..3).prop_map(f64::from)], 1..200),
                                m in 1usize..30, bins in 2usize..12) {
        let mut d = ReferenceDrift::with_reference(config(reference.len(), m, bins), &reference).unwrap();
        let edges = d.bin_edges().to_vec();
        let bin = |x: f64| edges.iter().filter(|e| **e <= x).count();
        let nb = edges.len() + 1;
        let mut r = vec![0.0; nb];
        for &x in &reference { r[bin(x)] += 1.0 / reference.len() as f64; }
        for (i, &x) in stream.iter().enumerate() {
            d.update(x);
            if i + 1 < m {
                prop_assert!(d.psi().is_none());
                continue;
            }
            let window = &stream[i + 1 - m..=i];
            let mut c = vec![0.0; nb];
            for &x in window { c[bin(x)] += 1.0 / m as f64; }
            let want: f64 = r.iter().zip(&c).map(|(&r, &c)| {
                let (r, c) = (f64::max(r, 1e-4), f64::max(c, 1e-4));
                (c - r) * (c / r).ln()
            }).sum();
            prop_assert!((d.psi().unwrap() - want).abs() < 1e-9, "{} vs {}", d.psi().unwrap(), want);
            prop_assert!((d.ks().unwrap() - naive_ks(&reference, window)).abs() < 1e-12);
        }
    }
}

#[test]
fn first_values_reference_and_drift_events() {
    let cfg = ReferenceDriftConfig {
        reference_size: 1000,
        current_size: 500,
        check_every: 50,
        ..Default::default()
    };
    let mut d = ReferenceDrift::new(cfg).unwrap();
    // A deterministic pseudo-uniform stream on [0, 1) whose level rises by 0.3 at value 3000.
    let x = |i: u64| (i * 7919 % 1000) as f64 / 1000.0 + if i >= 3000 { 0.3 } else { 0.0 };
    let mut events = Vec::new();
    for i in 0..4000 {
        if let Some(e) = d.update(x(i)) {
            events.push(e);
        }
    }
    assert_eq!(d.source(), ReferenceSource::FirstValues);
    let first = &events[0];
    // With a 500-value window the shifted share must reach about a third before D > 0.1.
    assert!(first.at_update > 3000 && first.at_update <= 3250, "{first:?}");
    assert!(first.ks_drift && first.ks > 0.1);
    assert!(first.current_mean > first.reference_mean);
    assert!(events.last().unwrap().psi_drift);
    assert_eq!(d.events(), events.len() as u64);

    // A new champion trained on the shifted data: no more drift against it.
    let shifted: Vec<f64> = (3000..4000).map(x).collect();
    d.reset_reference(&shifted).unwrap();
    assert_eq!(d.source(), ReferenceSource::Provided);
    assert!(d.check().is_none(), "psi {:?} ks {:?}", d.psi(), d.ks());
    assert!(d.reset_reference(&[f64::NAN]).is_err());
}

#[test]
fn ks_p_value_form() {
    assert!((ks_p_value(0.0, 100, 100) - 1.0).abs() < 1e-12);
    // sqrt(50 * 50 / 100) * 0.3 = 1.5 -> Q(1.5).
    assert!((ks_p_value(0.3, 50, 50) - kolmogorov_sf(1.5)).abs() < 1e-15);
    let cfg = ReferenceDriftConfig {
        ks_p_value: Some(0.01),
        ks_threshold: 1.0,
        psi_threshold: 100.0,
        ..config(50, 50, 5)
    };
    let mut d = ReferenceDrift::with_reference(cfg, &(0..50).map(f64::from).collect::<Vec<_>>()).unwrap();
    let mut events = Vec::new();
    for i in 0..50 {
        events.extend(d.update(f64::from(i) + 25.0));
    }
    // D = 0.5, p = Q(2.5) ≈ 7.5e-6 < 0.01.
    let last = events.last().expect("drift by p-value");
    assert!(last.ks_drift && !last.psi_drift && last.ks_p_value < 0.01);
}

#[test]
fn config_validation_and_unknown_keys() {
    assert!(serde_json::from_str::<ReferenceDriftConfig>(r#"{"psi_treshold": 0.3}"#).is_err());
    let c: ReferenceDriftConfig = serde_json::from_str(r#"{"psi_threshold": 0.3}"#).unwrap();
    assert_eq!((c.psi_threshold, c.bins, c.ks_threshold), (0.3, 10, 0.1));
    let bad = ReferenceDriftConfig { bins: 1, check_every: 0, ks_p_value: Some(2.0), ..Default::default() };
    assert_eq!(bad.validate().unwrap_err().len(), 3);
    assert!(ReferenceDrift::new(bad).is_err());
}

#[test]
fn non_finite_values_are_skipped_and_state_round_trips() {
    let mut d = ReferenceDrift::new(config(3, 2, 2)).unwrap();
    for x in [1.0, f64::NAN, 2.0, 3.0, f64::INFINITY, 10.0, 11.0] {
        d.update(x);
    }
    assert_eq!(d.invalid_values(), 2);
    let back: ReferenceDrift = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
    assert_eq!((back.psi(), back.ks()), (d.psi(), d.ks()));
    assert_eq!(d.ks(), Some(1.0));
    assert!(d.size_bytes() > 0);
}
