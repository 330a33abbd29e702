//! `RunSummary`: the machine-readable account of a run (`eddy run --summary FILE`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evaluator::SlotMetrics;

/// One drift detection, as listed in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftRecord {
    /// Detector name from the config.
    pub detector: String,
    /// What the detector watches (e.g. `champion.error`, `feature.x0`).
    pub input: String,
    /// 0-based index of the event at which drift was detected.
    pub event_index: u64,
    /// Event time (epoch ms) of that event.
    pub event_time: i64,
    /// The detector's estimate just before the detection.
    pub estimate_before: f64,
    /// Its estimate just after (the mean of the shrunk window).
    pub estimate_after: f64,
}

/// One promotion of a shadow slot to champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRecord {
    /// Event time (epoch ms) of the label that completed the evidence.
    pub event_time: i64,
    /// Labels joined so far when it happened.
    pub at_label: u64,
    /// The shadow slot whose model became champion.
    pub from_slot: String,
    /// Registry version the champion served before.
    pub old_version: u64,
    /// Registry version of the promoted model.
    pub new_version: u64,
    /// The gate's figures.
    pub gate: crate::promotion::GateFigures,
}

/// A feature the model uses, as resolved at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// Field name.
    pub name: String,
    /// `numeric`, `categorical` or `boolean`.
    pub kind: String,
}

/// Everything a run did. Field names are part of eddy's interface (documented in the README).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Pipeline name.
    pub pipeline: String,
    /// Events read (after dead-lettering).
    pub events: u64,
    /// Labels read (after dead-lettering).
    pub labels: u64,
    /// Labels that met their event (each one is learned once per slot).
    pub joined: u64,
    /// Events whose label did not come within the TTL.
    pub expired: u64,
    /// Labels whose event never came within the TTL, or that could not be kept.
    pub unmatched_labels: u64,
    /// Labels that arrived before their event.
    pub early_labels: u64,
    /// Labels for an event already joined.
    pub duplicate_labels: u64,
    /// Events whose key was already waiting (the newer one replaced the older).
    pub duplicate_events: u64,
    /// Events evicted from a full join buffer.
    pub evicted: u64,
    /// Events not buffered because the join buffer was full.
    pub rejected_full: u64,
    /// Events older than the watermark minus the allowed lateness when they arrived.
    pub late_records: u64,
    /// Blank lines of text inputs, skipped: lines read = events + labels + dead letters +
    /// these.
    #[serde(default)]
    pub skipped_blank_lines: u64,
    /// Events still waiting for their label when the input ended.
    pub pending_at_end: u64,
    /// Labels still waiting for their event when the input ended.
    pub waiting_labels_at_end: u64,
    /// Records rejected by the sources.
    pub dead_letters: u64,
    /// Dead letters by reason.
    pub dead_letters_by_reason: BTreeMap<String, u64>,
    /// Prequential metrics per slot.
    pub metrics: BTreeMap<String, SlotMetrics>,
    /// Drift detections, in order.
    pub drift: Vec<DriftRecord>,
    /// Promotions of shadow slots, in order.
    pub promotions: Vec<PromotionRecord>,
    /// Full retrains, in order.
    pub retrains: Vec<crate::retrain::RetrainRecord>,
    /// Retrain triggers skipped (one in flight, or within the cooldown).
    pub retrains_skipped: u64,
    /// Model versions written to the registry.
    pub published_versions: Vec<u64>,
    /// Registry write failures (the previous version kept serving).
    pub registry_errors: Vec<String>,
    /// The model's input features.
    pub features: Vec<FeatureSummary>,
    /// Checkpoints written by this process (0 when checkpoints are off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checkpoints: u64,
    /// Longest engine pause for a checkpoint, seconds.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub checkpoint_max_seconds: f64,
    /// Size of the largest checkpoint written, bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checkpoint_bytes: u64,
    /// Wall-clock duration of the run.
    pub elapsed_seconds: f64,
    /// Events per wall-clock second.
    pub events_per_second: f64,
    /// Feature SQL: filtered rows and windowed aggregates (absent without `[features]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_sql: Option<crate::feature_sql::FeatureSqlSummary>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

impl RunSummary {
    /// A human-readable table of the summary.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pipeline {}  ({:.2}s, {:.0} events/s)",
            self.pipeline, self.elapsed_seconds, self.events_per_second
        );
        let rows: [(&str, u64); 13] = [
            ("events", self.events),
            ("labels", self.labels),
            ("joined", self.joined),
            ("expired", self.expired),
            ("unmatched labels", self.unmatched_labels),
            ("early labels", self.early_labels),
            ("duplicate labels", self.duplicate_labels),
            ("duplicate events", self.duplicate_events),
            ("evicted / rejected", self.evicted + self.rejected_full),
            ("late records", self.late_records),
            ("skipped blank lines", self.skipped_blank_lines),
            ("pending at end", self.pending_at_end),
            ("dead letters", self.dead_letters),
        ];
        for (name, v) in rows {
            let _ = writeln!(s, "  {name:<20} {v:>12}");
        }
        for (reason, n) in &self.dead_letters_by_reason {
            let _ = writeln!(s, "    {reason:<18} {n:>12}");
        }
        if let Some(f) = &self.feature_sql {
            let _ = writeln!(s, "  {:<20} {:>12}", "feature sql filtered", f.filtered);
            for a in &f.aggregates {
                let _ = writeln!(
                    s,
                    "  aggregate {:<10} {:>12} keys, {} evicted, {} late",
                    a.name, a.keys, a.evictions, a.late
                );
            }
        }
        let _ = writeln!(
            s,
            "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            "slot", "labels", "accuracy", "log_loss", "roc_auc", "roll.acc", "mae/rmse"
        );
        let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
        for (slot, m) in &self.metrics {
            let roll = m.rolling.as_ref().and_then(|r| r.accuracy);
            let reg = match (m.mae, m.rmse) {
                (Some(a), Some(b)) => format!("{a:.3}/{b:.3}"),
                _ => "-".into(),
            };
            let _ = writeln!(
                s,
                "  {slot:<12} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
                m.labels,
                f(m.accuracy),
                f(m.log_loss),
                f(m.roc_auc),
                f(roll),
                reg
            );
        }
        for r in &self.retrains {
            let _ = writeln!(
                s,
                "  retrain ({}) on {}: {} examples in {:.3}s, loss {:.4}, {:?}",
                r.trigger, r.device, r.examples, r.seconds, r.final_loss, r.outcome
            );
        }
        for p in &self.promotions {
            let _ = writeln!(
                s,
                "  promotion: {} -> champion (v{} -> v{}) at label {}: {} {:.4} vs {:.4}",
                p.from_slot,
                p.old_version,
                p.new_version,
                p.at_label,
                p.gate.metric,
                p.gate.shadow,
                p.gate.champion
            );
        }
        if let (Some(first), Some(last)) = (self.published_versions.first(), self.published_versions.last()) {
            let _ = writeln!(
                s,
                "  published model versions {first}..={last} ({} files)",
                self.published_versions.len()
            );
        }
        if !self.drift.is_empty() {
            let _ = writeln!(s, "  drift detections:");
            for d in &self.drift {
                let _ = writeln!(
                    s,
                    "    {:<16} {:<20} event {:>10} at {}",
                    d.detector, d.input, d.event_index, d.event_time
                );
            }
        }
        s
    }
}
