//! `Evaluator`: prequential (test-then-train) metrics of one model slot.
//!
//! Each label is scored against the prediction its event got *when it was scored*, before the
//! model learned that label, so every figure here is an honest out-of-sample estimate, with
//! delayed labels exactly as they arrive in production. Cumulative figures cover the whole
//! run; rolling figures cover the last `rolling_window` labels, which is what shows drift and
//! recovery.

use std::collections::VecDeque;

use eddy_scorer::model::ModelKind;
use serde::{Deserialize, Serialize};

/// Configuration of the evaluator.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Number of most recent labels the rolling metrics cover.
    pub rolling_window: usize,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig { rolling_window: 1000 }
    }
}

impl EvaluationConfig {
    /// Checks the values, returning `(key, message)` for each bad one.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        if self.rolling_window == 0 || self.rolling_window > 10_000_000 {
            vec![("rolling_window", format!("must be between 1 and 10000000, got {}", self.rolling_window))]
        } else {
            Vec::new()
        }
    }
}

/// Probabilities are clipped like scikit-learn and River do, so one confident mistake costs a
/// large but finite log loss.
const LOG_LOSS_EPS: f64 = 1e-15;

/// Resolution of the cumulative ROC AUC histogram (error at most about 1/BINS).
const AUC_BINS: usize = 4096;

/// Metrics of one slot at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotMetrics {
    /// Labels evaluated.
    pub labels: u64,
    /// Fraction of correct 0/1 predictions (threshold 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Mean log loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_loss: Option<f64>,
    /// ROC AUC (cumulative: histogram approximation within ~1/4096).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    /// Mean absolute error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Root mean squared error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// The same figures over the rolling window (exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolling: Option<Box<SlotMetrics>>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Sums {
    n: u64,
    correct: u64,
    log_loss: f64,
    abs_err: f64,
    sq_err: f64,
}

impl Sums {
    #[inline]
    fn add(&mut self, kind: ModelKind, p: f32, y: f32, sign: f64) {
        let (c, ll, ae, se) = contributions(kind, p, y);
        if sign > 0.0 {
            self.n += 1;
            self.correct += c as u64;
        } else {
            self.n -= 1;
            self.correct -= c as u64;
        }
        self.log_loss += sign * ll;
        self.abs_err += sign * ae;
        self.sq_err += sign * se;
    }
}

#[inline]
fn contributions(kind: ModelKind, p: f32, y: f32) -> (bool, f64, f64, f64) {
    match kind {
        ModelKind::Logistic => {
            let p = (p as f64).clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            let positive = y >= 0.5;
            let ll = if positive { -p.ln() } else { -(1.0 - p).ln() };
            ((p >= 0.5) == positive, ll, 0.0, 0.0)
        }
        ModelKind::Linear => {
            let e = (p - y) as f64;
            (false, 0.0, e.abs(), e * e)
        }
    }
}

/// Prequential metrics of one slot. See the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluator {
    kind: ModelKind,
    window: usize,
    total: Sums,
    rolling: Sums,
    recent: VecDeque<(f32, f32)>,
    auc_pos: Vec<u64>,
    auc_neg: Vec<u64>,
}

impl Evaluator {
    /// An evaluator for predictions of `kind`.
    pub fn new(kind: ModelKind, config: &EvaluationConfig) -> Self {
        let bins = if kind == ModelKind::Logistic { AUC_BINS } else { 0 };
        Evaluator {
            kind,
            window: config.rolling_window,
            total: Sums::default(),
            rolling: Sums::default(),
            recent: VecDeque::with_capacity(config.rolling_window),
            auc_pos: vec![0; bins],
            auc_neg: vec![0; bins],
        }
    }

    /// Records one prediction `p` (made before the label was learned) and its label `y`.
    #[inline]
    pub fn record(&mut self, p: f32, y: f32) {
        self.total.add(self.kind, p, y, 1.0);
        self.rolling.add(self.kind, p, y, 1.0);
        if self.recent.len() == self.window {
            if let Some((op, oy)) = self.recent.pop_front() {
                self.rolling.add(self.kind, op, oy, -1.0);
            }
        }
        self.recent.push_back((p, y));
        if self.kind == ModelKind::Logistic {
            let bin = ((p.clamp(0.0, 1.0) as f64) * (AUC_BINS - 1) as f64).round() as usize;
            if y >= 0.5 {
                self.auc_pos[bin] += 1;
            } else {
                self.auc_neg[bin] += 1;
            }
        }
    }

    /// Labels evaluated so far.
    pub fn labels(&self) -> u64 {
        self.total.n
    }

    /// Rolling accuracy (classification) or rolling MAE (regression); `None` before any label.
    pub fn rolling_headline(&self) -> Option<f64> {
        let s = &self.rolling;
        (s.n > 0).then(|| match self.kind {
            ModelKind::Logistic => s.correct as f64 / s.n as f64,
            ModelKind::Linear => s.abs_err / s.n as f64,
        })
    }

    /// Rolling accuracy/log loss/MAE without the (sorting) AUC: cheap enough for every batch.
    pub fn rolling_figures(&self) -> SlotMetrics {
        self.figures(&self.rolling, None)
    }

    /// Exact ROC AUC over the rolling window (sorts the window: call per batch, not per row).
    pub fn rolling_auc(&self) -> Option<f64> {
        self.window_auc()
    }

    /// Cumulative and rolling metrics.
    pub fn report(&self) -> SlotMetrics {
        let mut m = self.figures(&self.total, self.histogram_auc());
        let mut r = self.figures(&self.rolling, self.window_auc());
        r.rolling = None;
        m.rolling = Some(Box::new(r));
        m
    }

    fn figures(&self, s: &Sums, auc: Option<f64>) -> SlotMetrics {
        let n = s.n as f64;
        let some = |v: f64| (s.n > 0).then_some(v);
        match self.kind {
            ModelKind::Logistic => SlotMetrics {
                labels: s.n,
                accuracy: some(s.correct as f64 / n),
                log_loss: some(s.log_loss.max(0.0) / n),
                roc_auc: auc,
                ..SlotMetrics::default()
            },
            ModelKind::Linear => SlotMetrics {
                labels: s.n,
                mae: some(s.abs_err.max(0.0) / n),
                rmse: some((s.sq_err.max(0.0) / n).sqrt()),
                ..SlotMetrics::default()
            },
        }
    }

    /// AUC from the score histogram: the probability that a random positive outranks a random
    /// negative, ties counting one half.
    fn histogram_auc(&self) -> Option<f64> {
        if self.kind != ModelKind::Logistic {
            return None;
        }
        let pos: u64 = self.auc_pos.iter().sum();
        let neg: u64 = self.auc_neg.iter().sum();
        if pos == 0 || neg == 0 {
            return None;
        }
        let mut neg_below = 0u64;
        let mut wins = 0.0f64;
        for (p, n) in self.auc_pos.iter().zip(&self.auc_neg) {
            wins += *p as f64 * (neg_below as f64 + 0.5 * *n as f64);
            neg_below += n;
        }
        Some(wins / (pos as f64 * neg as f64))
    }

    /// Exact AUC over the rolling window (sorted ranks, ties averaged).
    fn window_auc(&self) -> Option<f64> {
        if self.kind != ModelKind::Logistic {
            return None;
        }
        exact_auc(self.recent.iter().copied())
    }
}

/// Exact ROC AUC of `(score, label)` pairs via the rank-sum (Mann-Whitney U) statistic.
pub fn exact_auc(pairs: impl Iterator<Item = (f32, f32)>) -> Option<f64> {
    let mut v: Vec<(f32, bool)> = pairs.map(|(p, y)| (p, y >= 0.5)).collect();
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].0 == v[i].0 {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * v[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics_match_hand_computation() {
        let mut e = Evaluator::new(ModelKind::Logistic, &EvaluationConfig { rolling_window: 2 });
        for (p, y) in [(0.9, 1.0), (0.2, 0.0), (0.6, 0.0), (0.4, 1.0)] {
            e.record(p, y);
        }
        let m = e.report();
        assert_eq!(m.labels, 4);
        assert_eq!(m.accuracy, Some(0.5));
        let ll = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln() + 0.4f64.ln()) / 4.0;
        assert!((m.log_loss.unwrap() - ll).abs() < 1e-6);
        // positives {0.9, 0.4}, negatives {0.2, 0.6}: pairs won 0.9>0.2, 0.9>0.6, 0.4>0.2 = 3/4.
        assert!((m.roc_auc.unwrap() - 0.75).abs() < 1e-3);
        let r = m.rolling.unwrap();
        assert_eq!((r.labels, r.accuracy), (2, Some(0.0)));
        assert_eq!(r.roc_auc, Some(0.0));
    }

    #[test]
    fn regression_metrics_match_hand_computation() {
        let mut e = Evaluator::new(ModelKind::Linear, &EvaluationConfig::default());
        e.record(1.0, 2.0);
        e.record(3.0, 1.0);
        let m = e.report();
        assert_eq!(m.mae, Some(1.5));
        assert!((m.rmse.unwrap() - (2.5f64).sqrt()).abs() < 1e-12);
        assert_eq!(m.accuracy, None);
    }

    #[test]
    fn exact_auc_handles_ties() {
        assert_eq!(exact_auc([(0.5, 1.0), (0.5, 0.0)].into_iter()), Some(0.5));
        assert_eq!(exact_auc([(0.1, 0.0), (0.9, 1.0)].into_iter()), Some(1.0));
        assert_eq!(exact_auc([(0.1, 1.0)].into_iter()), None);
    }
}
