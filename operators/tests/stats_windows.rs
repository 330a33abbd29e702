//! `WindowedStats` against a naive batch recomputation after every operation.
//!
//! The naive model keeps every accepted record and recomputes each window from scratch with a
//! sort, so it shares nothing with the operator's panes and sketches. Count, min and max must
//! match exactly; mean and variance within 1e-9 relative to the data's scale (`max |x|` and
//! `max x²`: a relative bound on a value near zero is meaningless); quantiles within the
//! sketch's documented bound `α·|v| + 1e-9` of the exact lower quantile.

use std::collections::BTreeMap;

use eddy_operators::stats::{
    SketchConfig, UpdateOutcome, WindowConfig, WindowResult, WindowStats, WindowedStats, WindowedStatsConfig,
};
use proptest::prelude::*;

const QUANTILES: [f64; 6] = [0.0, 0.1, 0.5, 0.9, 0.99, 1.0];

#[derive(Debug, Clone)]
enum Op {
    Update { key: Option<u64>, t: i64, x: f64 },
    Watermark(i64),
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e3..1e3f64,
        1 => Just(0.0),
        2 => (-5i32..5).prop_map(f64::from),
        1 => 1e-3..1e6f64,
    ]
}

/// Event times drift forward with jitter (some records arrive out of order, some late);
/// watermarks trail the clock.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((0u8..10, 0u64..3, -400i64..100, value(), any::<bool>()), 1..200).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (kind, key, jitter, x, grouped))| {
                let clock = i as i64 * 25 - 500;
                if kind >= 8 {
                    Op::Watermark(clock + jitter)
                } else {
                    Op::Update { key: grouped.then_some(key), t: clock + jitter, x }
                }
            })
            .collect()
    })
}

fn config(window: WindowConfig, lateness: u64) -> WindowedStatsConfig {
    WindowedStatsConfig {
        allowed_lateness_ms: lateness,
        quantiles: QUANTILES.to_vec(),
        ..WindowedStatsConfig::new(window)
    }
}

fn naive_stats(values: &[f64]) -> WindowStats {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    WindowStats {
        count: n as u64,
        mean,
        variance,
        std: variance.sqrt(),
        min: sorted[0],
        max: sorted[n - 1],
        quantiles: QUANTILES.iter().map(|&q| (q, sorted[(q * (n as f64 - 1.0)) as usize])).collect(),
    }
}

fn check_stats(got: &WindowStats, values: &[f64], what: &str) -> Result<(), TestCaseError> {
    let want = naive_stats(values);
    let scale = values.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    prop_assert_eq!(got.count, want.count, "{}: count", what);
    prop_assert_eq!(got.min, want.min, "{}: min", what);
    prop_assert_eq!(got.max, want.max, "{}: max", what);
    prop_assert!((got.mean - want.mean).abs() <= 1e-9 * scale, "{what}: mean {} vs {}", got.mean, want.mean);
    prop_assert!(
        (got.variance - want.variance).abs() <= 1e-9 * scale * scale,
        "{what}: variance {} vs {}",
        got.variance,
        want.variance
    );
    let alpha = SketchConfig::default().relative_error;
    for ((q, est), (_, exact)) in got.quantiles.iter().zip(&want.quantiles) {
        prop_assert!(
            (est - exact).abs() <= alpha * (1.0 + 1e-9) * exact.abs() + SketchConfig::MIN_VALUE,
            "{what}: quantile {q}: {est} vs exact {exact}"
        );
    }
    Ok(())
}

/// Naive model of time windows: all accepted records, and the closed-through bound.
struct NaiveTime {
    size: i64,
    hop: i64,
    lateness: i64,
    closed_through: Option<i64>,
    watermark: Option<i64>,
    records: Vec<(Option<u64>, i64, f64)>,
    late: u64,
}

impl NaiveTime {
    fn last_end(&self, t: i64) -> i64 {
        t.div_euclid(self.hop) * self.hop + self.size
    }

    fn update(&mut self, key: Option<u64>, t: i64, x: f64) -> UpdateOutcome {
        if self.closed_through.is_some_and(|c| self.last_end(t) <= c) {
            self.late += 1;
            return UpdateOutcome::Late;
        }
        self.records.push((key, t, x));
        UpdateOutcome::Accepted
    }

    fn values(&self, key: Option<u64>, start: i64, end: i64) -> Vec<f64> {
        self.records.iter().filter(|r| r.0 == key && r.1 >= start && r.1 < end).map(|r| r.2).collect()
    }

    /// Windows emitted by moving the watermark to `w`, as (key, start, end, values).
    fn advance(&mut self, w: i64) -> Vec<(Option<u64>, i64, i64, Vec<f64>)> {
        if self.watermark.is_some_and(|old| w <= old) {
            return Vec::new();
        }
        self.watermark = Some(w);
        let c_new = w - self.lateness;
        let c_old = self.closed_through.replace(c_new);
        let mut out = Vec::new();
        let keys: std::collections::BTreeSet<_> = self.records.iter().map(|r| r.0).collect();
        // Every window that contains a record and ends in (c_old, c_new].
        let mut windows = std::collections::BTreeSet::new();
        for &(_, t, _) in &self.records {
            let mut j = t.div_euclid(self.hop);
            while j * self.hop + self.size > t {
                let end = j * self.hop + self.size;
                if end <= c_new && c_old.is_none_or(|c| end > c) {
                    windows.insert((end, j * self.hop));
                }
                j -= 1;
            }
        }
        for (end, start) in windows {
            for &key in &keys {
                let v = self.values(key, start, end);
                if !v.is_empty() {
                    out.push((key, start, end, v));
                }
            }
        }
        out
    }

    fn current(&self, key: Option<u64>) -> Option<(i64, i64, Vec<f64>)> {
        let c = self.closed_through.unwrap_or(i64::MIN / 4);
        let tmax = self.records.iter().filter(|r| r.0 == key && self.last_end(r.1) > c).map(|r| r.1).max()?;
        let first_open = (c - self.size).div_euclid(self.hop) + 1;
        let j = ((tmax - self.size).div_euclid(self.hop) + 1).max(first_open);
        let (start, end) = (j * self.hop, j * self.hop + self.size);
        Some((start, end, self.values(key, start, end)))
    }
}

fn check_emitted(
    got: &[WindowResult],
    want: &[(Option<u64>, i64, i64, Vec<f64>)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "number of windows emitted: {:?}", got);
    for (g, (key, start, end, values)) in got.iter().zip(want) {
        prop_assert_eq!((g.key, g.start, g.end), (*key, *start, *end));
        check_stats(&g.stats, values, &format!("window {key:?} [{start}, {end})"))?;
    }
    Ok(())
}

fn run_time(
    window: WindowConfig,
    size: i64,
    hop: i64,
    lateness: u64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut ws = WindowedStats::new(config(window, lateness)).unwrap();
    let mut naive = NaiveTime {
        size,
        hop,
        lateness: lateness as i64,
        closed_through: None,
        watermark: None,
        records: Vec::new(),
        late: 0,
    };
    for op in ops {
        match *op {
            Op::Update { key, t, x } => {
                prop_assert_eq!(ws.update(key, t, x), naive.update(key, t, x));
                let got = ws.current(key);
                match naive.current(key) {
                    None => prop_assert!(got.is_none()),
                    Some((start, end, values)) => {
                        let got = got.expect("current window");
                        prop_assert_eq!((got.start, got.end), (start, end));
                        check_stats(&got.stats, &values, "current")?;
                    }
                }
            }
            Op::Watermark(w) => {
                ws.advance_watermark(w);
                let got: Vec<_> = ws.drain_closed().collect();
                check_emitted(&got, &naive.advance(w))?;
            }
        }
        prop_assert_eq!(ws.late_records(), naive.late);
    }
    // Closing everything emits every remaining window exactly once.
    ws.flush();
    let got: Vec<_> = ws.drain_closed().collect();
    check_emitted(&got, &naive.advance(i64::MAX / 4))?;
    prop_assert!(ws.keys().is_empty());
    prop_assert_eq!(ws.size_bytes(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tumbling_matches_naive(ops in ops(), size in prop::sample::select(vec![50i64, 100, 250, 1000]),
                              lateness in prop::sample::select(vec![0u64, 50, 300])) {
        run_time(WindowConfig::Tumbling { size_ms: size as u64 }, size, size, lateness, &ops)?;
    }

    #[test]
    fn sliding_matches_naive(ops in ops(),
                             (size, hop) in prop::sample::select(vec![(300i64, 100i64), (1000, 250), (500, 200), (400, 400)]),
                             lateness in prop::sample::select(vec![0u64, 50, 300])) {
        run_time(WindowConfig::Sliding { size_ms: size as u64, hop_ms: hop as u64 }, size, hop, lateness, &ops)?;
    }

    #[test]
    fn count_matches_naive(ops in ops(), (size, hop) in prop::sample::select(vec![(5u64, None), (10, Some(5)), (6, Some(4)), (1, None)]),
                           lateness in prop::sample::select(vec![0u64, 300])) {
        let mut ws = WindowedStats::new(config(WindowConfig::Count { size, hop }, lateness)).unwrap();
        let (s, h) = (size as usize, hop.unwrap_or(size) as usize);
        let mut values: BTreeMap<Option<u64>, Vec<f64>> = BTreeMap::new();
        let mut watermark: Option<i64> = None;
        let mut late = 0;
        for op in &ops {
            match *op {
                Op::Update { key, t, x } => {
                    let outcome = ws.update(key, t, x);
                    if watermark.is_some_and(|w| t < w - lateness as i64) {
                        late += 1;
                        prop_assert_eq!(outcome, UpdateOutcome::Late);
                        prop_assert_eq!(ws.drain_closed().count(), 0);
                        continue;
                    }
                    prop_assert_eq!(outcome, UpdateOutcome::Accepted);
                    let v = values.entry(key).or_default();
                    v.push(x);
                    let n = v.len();
                    let got: Vec<_> = ws.drain_closed().collect();
                    if n >= s && (n - s).is_multiple_of(h) {
                        prop_assert_eq!(got.len(), 1);
                        prop_assert_eq!((got[0].key, got[0].start, got[0].end), (key, (n - s) as i64, n as i64));
                        check_stats(&got[0].stats, &v[n - s..], "count window")?;
                    } else {
                        prop_assert_eq!(got.len(), 0);
                    }
                    let j = if n >= s { (n - s) / h + 1 } else { 0 };
                    let cur = ws.current(key);
                    if j * h < n {
                        let cur = cur.expect("current count window");
                        prop_assert_eq!((cur.start, cur.end), ((j * h) as i64, (j * h + s) as i64));
                        check_stats(&cur.stats, &v[j * h..n.min(j * h + s)], "current count window")?;
                    } else {
                        prop_assert!(cur.is_none());
                    }
                }
                Op::Watermark(w) => {
                    ws.advance_watermark(w);
                    if watermark.is_none_or(|old| w > old) {
                        watermark = Some(w);
                    }
                    prop_assert_eq!(ws.drain_closed().count(), 0);
                }
            }
            prop_assert_eq!(ws.late_records(), late);
        }
        // flush emits the incomplete windows that hold data.
        ws.flush();
        let got: Vec<_> = ws.drain_closed().collect();
        let mut want = Vec::new();
        for (key, v) in &values {
            let n = v.len();
            let mut j = if n >= s { (n - s) / h + 1 } else { 0 };
            while j * h < n {
                want.push((*key, (j * h) as i64, (j * h + s) as i64, v[j * h..n].to_vec()));
                j += 1;
            }
        }
        check_emitted(&got, &want)?;
    }

    /// A checkpoint taken anywhere and restored gives the same results as never stopping.
    #[test]
    fn snapshot_roundtrip_mid_stream(ops in ops(), cut in 0usize..200) {
        let cfg = config(WindowConfig::Sliding { size_ms: 300, hop_ms: 100 }, 50);
        let mut a = WindowedStats::new(cfg).unwrap();
        let cut = cut.min(ops.len());
        let apply = |ws: &mut WindowedStats, op: &Op| match *op {
            Op::Update { key, t, x } => { ws.update(key, t, x); }
            Op::Watermark(w) => { ws.advance_watermark(w); }
        };
        for op in &ops[..cut] { apply(&mut a, op); }
        // Through `serde_json::Value`: serde_json's text parser only round-trips floats exactly
        // with its `float_roundtrip` feature.
        let state = serde_json::to_value(&a).unwrap();
        let mut b: WindowedStats = serde_json::from_value(state.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&b).unwrap(), state);
        for op in &ops[cut..] { apply(&mut a, op); apply(&mut b, op); }
        a.flush();
        b.flush();
        let wa: Vec<_> = a.drain_closed().collect();
        let wb: Vec<_> = b.drain_closed().collect();
        prop_assert_eq!(wa, wb);
    }
}

fn tumbling(size_ms: u64) -> WindowedStats {
    WindowedStats::new(WindowedStatsConfig::new(WindowConfig::Tumbling { size_ms })).unwrap()
}

#[test]
fn watermark_closes_windows_and_late_records_are_counted() {
    let mut ws = WindowedStats::new(WindowedStatsConfig {
        allowed_lateness_ms: 100,
        ..WindowedStatsConfig::new(WindowConfig::Tumbling { size_ms: 1000 })
    })
    .unwrap();
    ws.update(None, 100, 1.0);
    ws.update(None, 999, 3.0);
    ws.update(None, 1000, 10.0);
    assert_eq!(ws.advance_watermark(1050), 0, "lateness keeps [0, 1000) open until 1100");
    assert_eq!(ws.update(None, 500, 5.0), UpdateOutcome::Accepted, "within allowed lateness");
    assert_eq!(ws.advance_watermark(1100), 1);
    let closed: Vec<_> = ws.drain_closed().collect();
    assert_eq!((closed[0].start, closed[0].end), (0, 1000));
    assert_eq!(closed[0].stats.count, 3);
    assert_eq!(closed[0].stats.mean, 3.0);
    assert_eq!(ws.update(None, 999, 7.0), UpdateOutcome::Late);
    assert_eq!(ws.update(None, -5, 7.0), UpdateOutcome::Late);
    assert_eq!(ws.late_records(), 2);
    assert_eq!(ws.advance_watermark(900), 0, "the watermark never goes back");
    assert_eq!(ws.watermark(), Some(1100));
    assert_eq!(ws.current(None).unwrap().stats.count, 1);
}

#[test]
fn sliding_record_joins_open_windows_after_earlier_ones_closed() {
    let mut ws =
        WindowedStats::new(WindowedStatsConfig::new(WindowConfig::Sliding { size_ms: 300, hop_ms: 100 }))
            .unwrap();
    ws.update(None, 50, 1.0);
    ws.advance_watermark(100); // closes [-200, 100)
    assert_eq!(ws.drain_closed().map(|w| (w.start, w.end)).collect::<Vec<_>>(), vec![(-200, 100)]);
    // t = 60 is in [-200, 100) (closed), [-100, 200) and [0, 300) (open): accepted, not late.
    assert_eq!(ws.update(None, 60, 3.0), UpdateOutcome::Accepted);
    ws.flush();
    let windows: Vec<_> = ws.drain_closed().map(|w| (w.start, w.end, w.stats.count)).collect();
    assert_eq!(windows, vec![(-100, 200, 2), (0, 300, 2)]);
}

#[test]
fn invalid_values_and_times_are_counted() {
    let mut ws = tumbling(10);
    assert_eq!(ws.update(None, 1, f64::NAN), UpdateOutcome::Invalid);
    assert_eq!(ws.update(None, 1, f64::INFINITY), UpdateOutcome::Invalid);
    assert_eq!(ws.update(None, i64::MAX, 1.0), UpdateOutcome::Invalid);
    assert_eq!(ws.update(None, i64::MIN, 1.0), UpdateOutcome::Invalid);
    assert_eq!(ws.invalid_records(), 4);
    assert!(ws.keys().is_empty());
    // Extreme but valid times and watermarks do not overflow.
    ws.update(Some(1), (1 << 62) - 1, 1.0);
    ws.update(Some(2), -(1 << 62), 1.0);
    ws.advance_watermark(i64::MAX);
    // Watermarks are clamped to 2^62: the window [2^62 - 4, 2^62 + 6) stays open until flush.
    assert_eq!(ws.drain_closed().map(|w| w.key).collect::<Vec<_>>(), vec![Some(2)]);
    ws.flush();
    assert_eq!(ws.drain_closed().map(|w| w.key).collect::<Vec<_>>(), vec![Some(1)]);
}

#[test]
fn least_recently_updated_key_is_evicted_at_the_cap() {
    let mut ws = WindowedStats::new(WindowedStatsConfig {
        max_keys: Some(2),
        ..WindowedStatsConfig::new(WindowConfig::Tumbling { size_ms: 1000 })
    })
    .unwrap();
    ws.update(Some(1), 0, 1.0);
    ws.update(Some(2), 0, 1.0);
    ws.update(Some(1), 1, 1.0); // key 2 is now the least recently updated
    ws.update(Some(3), 2, 1.0);
    assert_eq!(ws.keys(), vec![Some(1), Some(3)]);
    assert_eq!(ws.evicted_keys(), 1);

    let mut ws = WindowedStats::new(WindowedStatsConfig {
        max_state_bytes: Some(1),
        ..WindowedStatsConfig::new(WindowConfig::Tumbling { size_ms: 1000 })
    })
    .unwrap();
    for k in 0..5 {
        ws.update(Some(k), 0, 1.0);
    }
    assert_eq!(ws.keys(), vec![Some(4)], "the key being updated is kept even above the cap");
    assert_eq!(ws.evicted_keys(), 4);
    let one_key = ws.size_bytes();
    assert!(one_key > 0);
}

#[test]
fn size_bytes_tracks_state() {
    let mut ws = tumbling(1000);
    assert_eq!(ws.size_bytes(), 0);
    for k in 0..100 {
        ws.update(Some(k), 10, k as f64 + 1.0);
    }
    let per_key = ws.size_bytes() / 100;
    assert!(per_key > 100 && per_key < 10_000, "{per_key} bytes per key");
    ws.advance_watermark(1000);
    assert_eq!(ws.drain_closed().count(), 100);
    assert_eq!(ws.size_bytes(), 0);
}

#[test]
fn config_rejects_unknown_keys_and_bad_values() {
    let ok: WindowedStatsConfig =
        serde_json::from_str(r#"{"window": {"kind": "sliding", "size_ms": 60000, "hop_ms": 15000}}"#)
            .unwrap();
    assert_eq!(ok.quantiles, vec![0.5, 0.9, 0.99]);
    assert_eq!(ok.allowed_lateness_ms, 0);
    assert!(serde_json::from_str::<WindowedStatsConfig>(
        r#"{"window": {"kind": "tumbling", "size_ms": 1, "hop_ms": 1}}"#
    )
    .is_err());
    assert!(serde_json::from_str::<WindowedStatsConfig>(
        r#"{"window": {"kind": "tumbling", "size_ms": 1}, "lateness": 3}"#
    )
    .is_err());
    assert!(serde_json::from_str::<WindowedStatsConfig>(r#"{"window": {"kind": "session", "size_ms": 1}}"#)
        .is_err());
    let count: WindowedStatsConfig =
        serde_json::from_str(r#"{"window": {"kind": "count", "size": 100}}"#).unwrap();
    assert_eq!(count.window, WindowConfig::Count { size: 100, hop: None });

    let bad = WindowedStatsConfig {
        quantiles: vec![0.5, 1.5],
        max_keys: Some(0),
        ..WindowedStatsConfig::new(WindowConfig::Sliding { size_ms: 100, hop_ms: 200 })
    };
    let errors = bad.validate().unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].to_string().contains("window.hop_ms"), "{}", errors[0]);
    let too_many_panes = WindowedStatsConfig::new(WindowConfig::Sliding { size_ms: 86_400_000, hop_ms: 7 });
    assert!(too_many_panes.validate().unwrap_err()[0].to_string().contains("panes"));
    assert!(WindowedStatsConfig::new(WindowConfig::Tumbling { size_ms: 0 }).validate().is_err());
}
