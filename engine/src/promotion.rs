//! `PromotionGate`: decides when a shadow slot has beaten the champion on the same labels.
//!
//! Every slot scores every event and is evaluated on every joined label, so the gate can
//! compare the slots label by label: it keeps, per slot, the per-label loss of the most recent
//! `window` labels (the windows follow the *models*, and are cleared after a promotion so each
//! decision is made on fresh evidence), and promotes the best shadow when it has seen
//! `min_labels`, improves the metric by at least `min_improvement`, and — if asked — passes a
//! one-sided paired test on the per-label differences at level `significance`.

use std::collections::VecDeque;

use eddy_scorer::model::ModelKind;
use serde::{Deserialize, Serialize};

/// The metric the gate compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMetric {
    /// Mean log loss (lower is better).
    LogLoss,
    /// Accuracy (higher is better).
    Accuracy,
    /// Mean absolute error (lower is better).
    Mae,
    /// Mean squared error (lower is better).
    Mse,
}

impl GateMetric {
    fn higher_is_better(self) -> bool {
        self == GateMetric::Accuracy
    }

    /// The per-label value of the metric.
    #[inline]
    pub fn of(self, p: f32, y: f32) -> f64 {
        match self {
            GateMetric::LogLoss => {
                let p = (p as f64).clamp(1e-15, 1.0 - 1e-15);
                if y >= 0.5 {
                    -p.ln()
                } else {
                    -(1.0 - p).ln()
                }
            }
            GateMetric::Accuracy => ((p >= 0.5) == (y >= 0.5)) as u8 as f64,
            GateMetric::Mae => (p - y).abs() as f64,
            GateMetric::Mse => ((p - y) as f64).powi(2),
        }
    }

    /// The name used in configs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            GateMetric::LogLoss => "log_loss",
            GateMetric::Accuracy => "accuracy",
            GateMetric::Mae => "mae",
            GateMetric::Mse => "mse",
        }
    }
}

fn default_metric() -> GateMetric {
    GateMetric::LogLoss
}
fn default_window() -> usize {
    2000
}
fn default_min_improvement() -> f64 {
    0.0
}
fn default_check_every() -> u64 {
    500
}

/// `[promotion]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionConfig {
    /// Metric compared.
    #[serde(default = "default_metric")]
    pub metric: GateMetric,
    /// Most recent labels compared.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Labels a shadow must have been compared on (since it started or since the last
    /// promotion); defaults to `window`.
    #[serde(default)]
    pub min_labels: Option<usize>,
    /// Smallest improvement of the metric (absolute) that promotes.
    #[serde(default = "default_min_improvement")]
    pub min_improvement: f64,
    /// One-sided paired test level; absent means no test.
    #[serde(default)]
    pub significance: Option<f64>,
    /// Labels between two checks.
    #[serde(default = "default_check_every")]
    pub check_every: u64,
}

impl PromotionConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self, task: ModelKind) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let classification = matches!(self.metric, GateMetric::LogLoss | GateMetric::Accuracy);
        if classification != (task == ModelKind::Logistic) {
            out.push((
                "metric",
                format!(
                    "`{}` does not fit a {} model; use {}",
                    self.metric.as_str(),
                    task.as_str(),
                    if task == ModelKind::Logistic { "log_loss or accuracy" } else { "mae or mse" }
                ),
            ));
        }
        if self.window < 10 {
            out.push(("window", format!("must be at least 10 labels, got {}", self.window)));
        }
        if self.min_labels.is_some_and(|m| m > self.window) {
            out.push(("min_labels", "cannot exceed window".into()));
        }
        if !(self.min_improvement >= 0.0 && self.min_improvement.is_finite()) {
            out.push(("min_improvement", "must be a non-negative number".into()));
        }
        if self.significance.is_some_and(|s| !(s > 0.0 && s < 1.0)) {
            out.push(("significance", "must be between 0 and 1, e.g. 0.05".into()));
        }
        if self.check_every == 0 {
            out.push(("check_every", "must be at least 1".into()));
        }
        out
    }
}

/// The figures behind a promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateFigures {
    /// Metric compared.
    pub metric: String,
    /// Labels compared.
    pub labels: usize,
    /// The champion's metric over them.
    pub champion: f64,
    /// The shadow's metric over them.
    pub shadow: f64,
    /// Improvement of the shadow (positive is better).
    pub improvement: f64,
    /// One-sided p-value of the paired test, when one was asked for.
    pub p_value: Option<f64>,
}

/// See the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromotionGate {
    config: PromotionConfig,
    /// Per-label metric values per slot, most recent last.
    windows: Vec<VecDeque<f64>>,
    since_check: u64,
}

impl PromotionGate {
    /// A gate over `n_slots` slots (slot 0 is the champion).
    pub fn new(config: PromotionConfig, n_slots: usize) -> Self {
        let cap = config.window;
        PromotionGate {
            config,
            windows: (0..n_slots).map(|_| VecDeque::with_capacity(cap)).collect(),
            since_check: 0,
        }
    }

    /// Records slot `slot`'s prediction `p` for label `y`.
    #[inline]
    pub fn record(&mut self, slot: usize, p: f32, y: f32) {
        let w = &mut self.windows[slot];
        if w.len() == self.config.window {
            w.pop_front();
        }
        w.push_back(self.config.metric.of(p, y));
        if slot == 0 {
            self.since_check += 1;
        }
    }

    /// Whether a check is due.
    pub fn due(&self) -> bool {
        self.windows.len() > 1 && self.since_check >= self.config.check_every
    }

    /// The best shadow that passes the gate, with the figures.
    pub fn check(&mut self) -> Option<(usize, GateFigures)> {
        self.since_check = 0;
        let min_labels = self.config.min_labels.unwrap_or(self.config.window);
        let sign = if self.config.metric.higher_is_better() { 1.0 } else { -1.0 };
        let mut best: Option<(usize, GateFigures)> = None;
        for s in 1..self.windows.len() {
            let n = self.windows[s].len().min(self.windows[0].len());
            if n < min_labels || n == 0 {
                continue;
            }
            let champ = &self.windows[0];
            let shadow = &self.windows[s];
            // The same most recent n labels in both windows.
            let c = champ.iter().skip(champ.len() - n);
            let sh = shadow.iter().skip(shadow.len() - n);
            let diffs: Vec<f64> = c.zip(sh).map(|(a, b)| sign * (b - a)).collect();
            let mean_c = champ.iter().skip(champ.len() - n).sum::<f64>() / n as f64;
            let mean_s = shadow.iter().skip(shadow.len() - n).sum::<f64>() / n as f64;
            let improvement = sign * (mean_s - mean_c);
            if improvement <= 0.0 || improvement < self.config.min_improvement {
                continue;
            }
            let p_value = self.config.significance.map(|_| paired_p_value(&diffs));
            if let (Some(p), Some(level)) = (p_value, self.config.significance) {
                if p >= level {
                    continue;
                }
            }
            let figures = GateFigures {
                metric: self.config.metric.as_str().into(),
                labels: n,
                champion: mean_c,
                shadow: mean_s,
                improvement,
                p_value,
            };
            if best.as_ref().is_none_or(|(_, b)| figures.improvement > b.improvement) {
                best = Some((s, figures));
            }
        }
        best
    }

    /// Forgets the evidence about one slot (its model was replaced).
    pub fn reset_slot(&mut self, slot: usize) {
        if let Some(w) = self.windows.get_mut(slot) {
            w.clear();
        }
    }

    /// Forgets all evidence (after a promotion, both models are judged afresh).
    pub fn reset(&mut self) {
        self.windows.iter_mut().for_each(VecDeque::clear);
        self.since_check = 0;
    }
}

/// One-sided p-value that the mean of `d` is not above 0 (paired t-test with the normal
/// approximation; the gate's windows hold hundreds to thousands of labels).
pub fn paired_p_value(d: &[f64]) -> f64 {
    let n = d.len() as f64;
    if n < 2.0 {
        return 1.0;
    }
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if var <= 0.0 {
        return if mean > 0.0 { 0.0 } else { 1.0 };
    }
    let t = mean / (var / n).sqrt();
    0.5 * erfc(t / std::f64::consts::SQRT_2)
}

/// Complementary error function (W. J. Cody's rational approximation via `erfc(x) = 1 - erf`,
/// accurate to ~1e-7, ample for a significance threshold).
fn erfc(x: f64) -> f64 {
    // Abramowitz & Stegun 7.1.26 on |x|, reflected for negative x.
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(significance: Option<f64>) -> PromotionGate {
        PromotionGate::new(
            PromotionConfig {
                metric: GateMetric::Accuracy,
                window: 100,
                min_labels: None,
                min_improvement: 0.05,
                significance,
                check_every: 10,
            },
            3,
        )
    }

    #[test]
    fn promotes_the_best_shadow_only_when_it_clearly_wins() {
        let mut g = gate(Some(0.05));
        for i in 0..100 {
            let y = (i % 2) as f32;
            g.record(0, if i % 4 == 0 { 1.0 - y } else { y }, y); // 75% right
            g.record(1, y, y); // 100% right
            g.record(2, if i % 5 == 0 { 1.0 - y } else { y }, y); // 80% right
        }
        assert!(g.due());
        let (slot, f) = g.check().expect("slot 1 wins");
        assert_eq!(slot, 1);
        assert!((f.champion - 0.75).abs() < 1e-12 && (f.shadow - 1.0).abs() < 1e-12);
        assert!(f.p_value.unwrap() < 0.001);
    }

    #[test]
    fn needs_enough_labels_and_enough_improvement() {
        let mut g = gate(None);
        for i in 0..50 {
            g.record(0, 0.0, (i % 2) as f32);
            g.record(1, (i % 2) as f32, (i % 2) as f32);
        }
        assert!(g.check().is_none(), "only 50 of 100 labels seen");
        let mut g = gate(None);
        for i in 0..100 {
            let y = (i % 2) as f32;
            g.record(0, y, y);
            g.record(1, y, y);
        }
        assert!(g.check().is_none(), "no improvement");
    }

    #[test]
    fn p_value_and_erfc_are_sane() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-6);
        let noise: Vec<f64> = (0..1000).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        assert!(paired_p_value(&noise) > 0.4);
        let better: Vec<f64> = noise.iter().map(|x| x + 0.5).collect();
        assert!(paired_p_value(&better) < 1e-6);
    }
}
