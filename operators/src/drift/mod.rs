//! Concept-drift detectors.
//!
//! Every detector consumes a univariate stream (an error indicator, a loss, a raw feature) one
//! value at a time through the [`DriftDetector`] trait and answers with a [`DriftState`]. The
//! detectors are ports of River 0.26.1 (`river.drift`) and reproduce its detection indices
//! exactly on the reference fixtures in `operators/tests/fixtures/drift/` — parity matters because
//! users compare eddy's alerts against notebooks written with River.
//!
//! Detectors are built from a [`DriftDetectorConfig`] (deserialised from the pipeline config, or
//! parsed from CLI `--param NAME=VALUE` pairs with [`DriftDetectorConfig::from_params`]), and their
//! full state can be captured with [`DriftDetector::snapshot`] and brought back with
//! [`DetectorSnapshot::restore`] for checkpoints.
//!
//! | kind           | input          | warning | River class                |
//! |----------------|----------------|---------|----------------------------|
//! | `adwin`        | any real value | no      | `drift.ADWIN`              |
//! | `ddm`          | 0/1 errors     | yes     | `drift.binary.DDM`         |
//! | `eddm`         | 0/1 errors     | yes     | `drift.binary.EDDM`        |
//! | `hddm_a`       | values in [0,1]| yes     | `drift.binary.HDDM_A`      |
//! | `page_hinkley` | any real value | no      | `drift.PageHinkley`        |
//! | `kswin`        | any real value | no      | `drift.KSWIN`              |

use serde::{Deserialize, Serialize};

mod adwin;
mod ddm;
mod eddm;
mod hddm_a;
mod kswin;
mod page_hinkley;

pub use adwin::{AdwinConfig, AdwinDetector, AdwinMode};
pub use ddm::{DdmConfig, DdmDetector};
pub use eddm::{EddmConfig, EddmDetector};
pub use hddm_a::{HddmAConfig, HddmADetector};
pub use kswin::{KswinConfig, KswinDetector};
pub use page_hinkley::{PageHinkleyConfig, PageHinkleyDetector, PageHinkleyMode};

/// What a detector concluded after one update.
///
/// `Warning` is only produced by detectors that have a warning zone (DDM, EDDM, HDDM_A); it means
/// "the statistic is drifting but not significantly yet" and is typically used to start training
/// a background model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    /// Nothing unusual.
    #[default]
    None,
    /// In the warning zone.
    Warning,
    /// A change was detected by this update.
    Drift,
}

impl DriftState {
    /// `true` for [`DriftState::Drift`].
    pub fn is_drift(self) -> bool {
        self == DriftState::Drift
    }

    /// `true` for [`DriftState::Warning`].
    pub fn is_warning(self) -> bool {
        self == DriftState::Warning
    }
}

/// A streaming change detector.
///
/// Semantics shared by all implementations (they follow River): the update that detects a drift
/// returns [`DriftState::Drift`]; detectors whose River counterpart restarts after a detection do so
/// lazily at the *next* update, so that accessors such as [`DriftDetector::estimate`] still
/// describe the state that triggered the detection when the caller inspects it.
pub trait DriftDetector: Send + std::fmt::Debug {
    /// Feed one value and return what the detector concluded.
    fn update(&mut self, x: f64) -> DriftState;
    /// Forget everything (including the detection count), keeping the configuration.
    fn reset(&mut self);
    /// The statistic the detector tracks (for most: the current mean; see each type).
    fn estimate(&self) -> f64;
    /// Number of drifts detected since construction or the last [`DriftDetector::reset`]
    /// (unlike River's ADWIN `n_detections`, this survives the automatic restart after a drift).
    fn detections(&self) -> u64;
    /// The detector's kind, as used in configs: `"adwin"`, `"ddm"`, ...
    fn name(&self) -> &'static str;
    /// The full state, serialisable, for checkpoints. [`DetectorSnapshot::restore`] brings it back.
    fn snapshot(&self) -> DetectorSnapshot;
    /// Clone into a new box (so `Box<dyn DriftDetector>` is `Clone`).
    fn box_clone(&self) -> Box<dyn DriftDetector>;
    /// Number of values the detector's window currently holds, for detectors that keep one
    /// (ADWIN, KSWIN); exported as a gauge so an SRE sees the window shrink at a drift.
    fn window_width(&self) -> Option<u64> {
        None
    }
}

impl Clone for Box<dyn DriftDetector> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// Serialisable full state of any detector (configuration included), tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum DetectorSnapshot {
    /// State of an [`AdwinDetector`].
    Adwin(AdwinDetector),
    /// State of a [`DdmDetector`].
    Ddm(DdmDetector),
    /// State of an [`EddmDetector`].
    Eddm(EddmDetector),
    /// State of an [`HddmADetector`].
    HddmA(HddmADetector),
    /// State of a [`PageHinkleyDetector`].
    PageHinkley(PageHinkleyDetector),
    /// State of a [`KswinDetector`].
    Kswin(KswinDetector),
}

impl DetectorSnapshot {
    /// Turn the snapshot back into a live detector that continues exactly where it was taken.
    pub fn restore(self) -> Box<dyn DriftDetector> {
        match self {
            DetectorSnapshot::Adwin(d) => Box::new(d),
            DetectorSnapshot::Ddm(d) => Box::new(d),
            DetectorSnapshot::Eddm(d) => Box::new(d),
            DetectorSnapshot::HddmA(d) => Box::new(d),
            DetectorSnapshot::PageHinkley(d) => Box::new(d),
            DetectorSnapshot::Kswin(d) => Box::new(d),
        }
    }

    /// The detector kind this snapshot holds.
    pub fn kind(&self) -> &'static str {
        match self {
            DetectorSnapshot::Adwin(_) => "adwin",
            DetectorSnapshot::Ddm(_) => "ddm",
            DetectorSnapshot::Eddm(_) => "eddm",
            DetectorSnapshot::HddmA(_) => "hddm_a",
            DetectorSnapshot::PageHinkley(_) => "page_hinkley",
            DetectorSnapshot::Kswin(_) => "kswin",
        }
    }
}

/// Why a detector configuration was rejected. The messages are meant for CLI users: they name
/// the offending kind/parameter and list the valid choices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftConfigError {
    /// The detector kind is not known.
    #[error("unknown drift detector `{kind}`{}; valid detectors: {valid}", suggest(.suggestion))]
    UnknownKind {
        /// What was asked for.
        kind: String,
        /// Comma-separated valid kinds.
        valid: String,
        /// A close valid kind, if any.
        suggestion: Option<String>,
    },
    /// The parameter does not exist for that detector.
    #[error("unknown parameter `{param}` for drift detector `{kind}`{}; valid parameters: {valid}", suggest(.suggestion))]
    UnknownParam {
        /// Detector kind.
        kind: String,
        /// What was given.
        param: String,
        /// Comma-separated valid parameters.
        valid: String,
        /// A close valid parameter, if any.
        suggestion: Option<String>,
    },
    /// The same parameter was given twice.
    #[error("parameter `{param}` given more than once for drift detector `{kind}`")]
    DuplicateParam {
        /// Detector kind.
        kind: String,
        /// The repeated parameter.
        param: String,
    },
    /// The value could not be parsed.
    #[error("invalid value `{value}` for `{kind}` parameter `{param}`: expected {expected}")]
    InvalidValue {
        /// Detector kind.
        kind: String,
        /// Parameter name.
        param: String,
        /// What was given.
        value: String,
        /// What the parameter accepts.
        expected: String,
    },
    /// The value parsed but is outside the parameter's valid range.
    #[error("invalid `{kind}` parameter `{param}`: {message}")]
    OutOfRange {
        /// Detector kind.
        kind: String,
        /// Parameter name.
        param: String,
        /// What is wrong.
        message: String,
    },
}

fn suggest(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// Configuration of any detector, as found in the pipeline config:
/// `{ kind = "adwin", delta = 0.002 }`. Missing parameters take River's defaults.
///
/// Deserialisation checks names, not ranges: call [`DriftDetectorConfig::validate`] (or
/// [`DriftDetectorConfig::try_build`]) after loading a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DriftDetectorConfig {
    /// ADWIN (adaptive windowing).
    Adwin(AdwinConfig),
    /// DDM (drift detection method).
    Ddm(DdmConfig),
    /// EDDM (early drift detection method).
    Eddm(EddmConfig),
    /// HDDM_A (Hoeffding-bound drift detection, moving-average test).
    HddmA(HddmAConfig),
    /// Page-Hinkley test.
    PageHinkley(PageHinkleyConfig),
    /// KSWIN (Kolmogorov-Smirnov windowing).
    Kswin(KswinConfig),
}

impl Default for DriftDetectorConfig {
    fn default() -> Self {
        DriftDetectorConfig::Adwin(AdwinConfig::default())
    }
}

/// Description of one detector parameter, for help texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    /// Name as used in configs and `--param NAME=VALUE`.
    pub name: &'static str,
    /// River's default, rendered as it would be typed.
    pub default: &'static str,
    /// One-line help.
    pub help: &'static str,
}

/// Description of one detector kind, for help texts and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorInfo {
    /// Kind name (`kind = "..."`).
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [ParamInfo],
}

/// Every detector eddy knows, in display order.
pub const DETECTORS: &[DetectorInfo] = &[
    DetectorInfo {
        name: "adwin",
        summary: "adaptive windowing: cuts the window when two sub-windows' means differ",
        params: adwin::PARAMS,
    },
    DetectorInfo {
        name: "ddm",
        summary: "drift detection method on a 0/1 error stream (error rate + std)",
        params: ddm::PARAMS,
    },
    DetectorInfo {
        name: "eddm",
        summary: "early drift detection method: distance between errors in a 0/1 stream",
        params: eddm::PARAMS,
    },
    DetectorInfo {
        name: "hddm_a",
        summary: "Hoeffding-bound test on the moving average of values in [0, 1]",
        params: hddm_a::PARAMS,
    },
    DetectorInfo {
        name: "page_hinkley",
        summary: "Page-Hinkley cumulative test on a fading mean",
        params: page_hinkley::PARAMS,
    },
    DetectorInfo {
        name: "kswin",
        summary: "Kolmogorov-Smirnov test between a recent window and a sample of older data",
        params: kswin::PARAMS,
    },
];

/// Looks a detector up by kind, accepting `-` for `_` and any case.
pub fn detector_info(kind: &str) -> Option<&'static DetectorInfo> {
    let k = normalise(kind);
    DETECTORS.iter().find(|d| d.name == k)
}

fn normalise(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('-', "_")
}

impl DriftDetectorConfig {
    /// Build from CLI-style parameters (`eddy detect KIND --param NAME=VALUE`).
    ///
    /// Unknown kinds and parameters are rejected with the list of valid ones and, when a valid
    /// name is within a small edit distance, a suggestion. Values are range-checked.
    pub fn from_params(kind: &str, params: &[(String, String)]) -> Result<Self, DriftConfigError> {
        let info = detector_info(kind).ok_or_else(|| DriftConfigError::UnknownKind {
            kind: kind.to_string(),
            valid: DETECTORS.iter().map(|d| d.name).collect::<Vec<_>>().join(", "),
            suggestion: closest(&normalise(kind), DETECTORS.iter().map(|d| d.name)),
        })?;
        let mut cfg = Self::default_for(info.name);
        let mut seen: Vec<&'static str> = Vec::new();
        for (name, value) in params {
            let n = normalise(name);
            let Some(p) = info.params.iter().find(|p| p.name == n) else {
                return Err(DriftConfigError::UnknownParam {
                    kind: info.name.to_string(),
                    param: name.clone(),
                    valid: info.params.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
                    suggestion: closest(&n, info.params.iter().map(|p| p.name)),
                });
            };
            if seen.contains(&p.name) {
                return Err(DriftConfigError::DuplicateParam {
                    kind: info.name.to_string(),
                    param: p.name.to_string(),
                });
            }
            seen.push(p.name);
            cfg.set_param(p.name, value.trim())?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The default configuration (River's defaults) of a kind.
    ///
    /// # Panics
    /// If `kind` is not one of [`DETECTORS`]' names (use [`detector_info`] first).
    fn default_for(kind: &str) -> Self {
        match kind {
            "adwin" => Self::Adwin(AdwinConfig::default()),
            "ddm" => Self::Ddm(DdmConfig::default()),
            "eddm" => Self::Eddm(EddmConfig::default()),
            "hddm_a" => Self::HddmA(HddmAConfig::default()),
            "page_hinkley" => Self::PageHinkley(PageHinkleyConfig::default()),
            "kswin" => Self::Kswin(KswinConfig::default()),
            other => panic!("no default configuration for detector kind {other:?}"),
        }
    }

    fn set_param(&mut self, name: &str, value: &str) -> Result<(), DriftConfigError> {
        match self {
            Self::Adwin(c) => c.set_param(name, value),
            Self::Ddm(c) => c.set_param(name, value),
            Self::Eddm(c) => c.set_param(name, value),
            Self::HddmA(c) => c.set_param(name, value),
            Self::PageHinkley(c) => c.set_param(name, value),
            Self::Kswin(c) => c.set_param(name, value),
        }
    }

    /// The detector kind (`"adwin"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Adwin(_) => "adwin",
            Self::Ddm(_) => "ddm",
            Self::Eddm(_) => "eddm",
            Self::HddmA(_) => "hddm_a",
            Self::PageHinkley(_) => "page_hinkley",
            Self::Kswin(_) => "kswin",
        }
    }

    /// Check every parameter's range.
    pub fn validate(&self) -> Result<(), DriftConfigError> {
        match self {
            Self::Adwin(c) => c.validate(),
            Self::Ddm(c) => c.validate(),
            Self::Eddm(c) => c.validate(),
            Self::HddmA(c) => c.validate(),
            Self::PageHinkley(c) => c.validate(),
            Self::Kswin(c) => c.validate(),
        }
    }

    /// Validate, then build the detector.
    pub fn try_build(&self) -> Result<Box<dyn DriftDetector>, DriftConfigError> {
        self.validate()?;
        Ok(match self {
            Self::Adwin(c) => Box::new(AdwinDetector::new(c.clone())?),
            Self::Ddm(c) => Box::new(DdmDetector::new(c.clone())?),
            Self::Eddm(c) => Box::new(EddmDetector::new(c.clone())?),
            Self::HddmA(c) => Box::new(HddmADetector::new(c.clone())?),
            Self::PageHinkley(c) => Box::new(PageHinkleyDetector::new(c.clone())?),
            Self::Kswin(c) => Box::new(KswinDetector::new(c.clone())?),
        })
    }

    /// Build the detector.
    ///
    /// # Panics
    /// If the configuration is invalid; configs from [`DriftDetectorConfig::from_params`] are
    /// already validated, deserialised ones should go through [`DriftDetectorConfig::validate`]
    /// or [`DriftDetectorConfig::try_build`].
    pub fn build(&self) -> Box<dyn DriftDetector> {
        match self.try_build() {
            Ok(d) => d,
            Err(e) => panic!("invalid drift detector configuration: {e}"),
        }
    }
}

/// Levenshtein distance (small strings only: parameter and kind names).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a small edit distance (≤ 2, or ≤ 1 for very short names).
fn closest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = if given.chars().count() <= 3 { 1 } else { 2 };
    candidates
        .map(|c| (edit_distance(given, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

// ---- helpers shared by the per-detector `set_param` / `validate` ----

pub(crate) fn parse_f64(kind: &str, param: &str, value: &str) -> Result<f64, DriftConfigError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| invalid(kind, param, value, "a finite number"))
}

pub(crate) fn parse_u32(kind: &str, param: &str, value: &str) -> Result<u32, DriftConfigError> {
    value.parse::<u32>().map_err(|_| invalid(kind, param, value, "a non-negative integer"))
}

pub(crate) fn parse_u64(kind: &str, param: &str, value: &str) -> Result<u64, DriftConfigError> {
    value.parse::<u64>().map_err(|_| invalid(kind, param, value, "a non-negative integer"))
}

pub(crate) fn parse_bool(kind: &str, param: &str, value: &str) -> Result<bool, DriftConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(kind, param, value, "true or false")),
    }
}

pub(crate) fn invalid(kind: &str, param: &str, value: &str, expected: &str) -> DriftConfigError {
    DriftConfigError::InvalidValue {
        kind: kind.to_string(),
        param: param.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

pub(crate) fn out_of_range(kind: &str, param: &str, message: impl Into<String>) -> DriftConfigError {
    DriftConfigError::OutOfRange { kind: kind.to_string(), param: param.to_string(), message: message.into() }
}

/// `Err` unless `lo < v < hi`.
pub(crate) fn check_open(kind: &str, param: &str, v: f64, lo: f64, hi: f64) -> Result<(), DriftConfigError> {
    if v > lo && v < hi {
        Ok(())
    } else {
        Err(out_of_range(kind, param, format!("must be in ({lo}, {hi}), got {v}")))
    }
}

/// River's `stats.Mean` with unit weights: the arithmetic order is River's so that detectors
/// built on it reproduce River's floating-point results bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct RunningMean {
    pub(crate) n: f64,
    pub(crate) mean: f64,
}

impl RunningMean {
    #[inline]
    pub(crate) fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn registry_names_are_unique() {
        let mut names: Vec<&str> = DETECTORS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate detector name in DETECTORS");
        for d in DETECTORS {
            let mut params: Vec<&str> = d.params.iter().map(|p| p.name).collect();
            params.sort_unstable();
            let n = params.len();
            params.dedup();
            assert_eq!(params.len(), n, "duplicate parameter in {}", d.name);
        }
    }

    #[test]
    fn registry_matches_configs() {
        for d in DETECTORS {
            // every kind builds with defaults, and its name round-trips
            let cfg = DriftDetectorConfig::from_params(d.name, &[]).unwrap();
            assert_eq!(cfg.kind(), d.name);
            let det = cfg.build();
            assert_eq!(det.name(), d.name);
            assert_eq!(det.snapshot().kind(), d.name);
            // every documented default parses back to the default config
            let params: Vec<_> = d.params.iter().map(|q| p(q.name, q.default)).collect();
            let with_defaults = DriftDetectorConfig::from_params(d.name, &params).unwrap();
            assert_eq!(with_defaults, cfg, "documented defaults of {} disagree with Default", d.name);
        }
    }

    #[test]
    fn unknown_kind_suggests() {
        let err = DriftDetectorConfig::from_params("adwn", &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("did you mean `adwin`"), "{msg}");
        assert!(msg.contains("page_hinkley"), "{msg}");
        let err = DriftDetectorConfig::from_params("zzzzzz", &[]).unwrap_err();
        assert!(!err.to_string().contains("did you mean"), "{err}");
        // `-` and case are accepted
        assert!(DriftDetectorConfig::from_params("Page-Hinkley", &[]).is_ok());
    }

    #[test]
    fn unknown_param_suggests_and_lists() {
        let err = DriftDetectorConfig::from_params("adwin", &[p("delt", "0.1")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("did you mean `delta`"), "{msg}");
        assert!(msg.contains("grace_period"), "{msg}");
    }

    #[test]
    fn bad_values_are_rejected() {
        let e = DriftDetectorConfig::from_params("adwin", &[p("delta", "abc")]).unwrap_err();
        assert!(matches!(e, DriftConfigError::InvalidValue { .. }), "{e}");
        let e = DriftDetectorConfig::from_params("adwin", &[p("delta", "2")]).unwrap_err();
        assert!(matches!(e, DriftConfigError::OutOfRange { .. }), "{e}");
        let e = DriftDetectorConfig::from_params("adwin", &[p("clock", "0")]).unwrap_err();
        assert!(matches!(e, DriftConfigError::OutOfRange { .. }), "{e}");
        let e = DriftDetectorConfig::from_params("adwin", &[p("mode", "flink")]).unwrap_err();
        assert!(e.to_string().contains("river"), "{e}");
        let e = DriftDetectorConfig::from_params("ddm", &[p("warm_start", "3"), p("warm_start", "4")])
            .unwrap_err();
        assert!(matches!(e, DriftConfigError::DuplicateParam { .. }), "{e}");
    }

    #[test]
    fn params_are_applied() {
        let cfg = DriftDetectorConfig::from_params(
            "adwin",
            &[p("delta", "0.01"), p("clock", "1"), p("mode", "moa")],
        )
        .unwrap();
        let DriftDetectorConfig::Adwin(a) = cfg else { panic!() };
        assert_eq!(a.delta, 0.01);
        assert_eq!(a.clock, 1);
        assert_eq!(a.mode, AdwinMode::Moa);
    }

    #[test]
    fn config_serde_tagged() {
        let cfg: DriftDetectorConfig =
            serde_json::from_str(r#"{"kind":"page_hinkley","threshold":20.0}"#).unwrap();
        let DriftDetectorConfig::PageHinkley(ph) = &cfg else { panic!("{cfg:?}") };
        assert_eq!(ph.threshold, 20.0);
        assert_eq!(ph.delta, 0.005);
        let back: DriftDetectorConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        let err = serde_json::from_str::<DriftDetectorConfig>(r#"{"kind":"adwin","delt":0.1}"#).unwrap_err();
        assert!(err.to_string().contains("delt"), "{err}");
        assert!(serde_json::from_str::<DriftDetectorConfig>(r#"{"kind":"nope"}"#).is_err());
        let cfg: DriftDetectorConfig = serde_json::from_str(r#"{"kind":"adwin","mode":"moa"}"#).unwrap();
        assert_eq!(cfg.kind(), "adwin");
    }

    #[test]
    fn snapshots_round_trip_for_every_kind() {
        for d in DETECTORS {
            let mut det = DriftDetectorConfig::from_params(d.name, &[]).unwrap().build();
            let mut x = 0u64;
            let mut next = || {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                f64::from(u8::from((x >> 33) % 100 < 20 + u64::from(x >> 60 > 12) * 30))
            };
            for _ in 0..700 {
                det.update(next());
            }
            let json = serde_json::to_string(&det.snapshot()).unwrap();
            let snap: DetectorSnapshot = serde_json::from_str(&json).unwrap();
            let mut restored = snap.restore();
            let mut cloned = det.clone();
            for _ in 0..2000 {
                let v = next();
                let a = det.update(v);
                assert_eq!(a, restored.update(v), "{}", d.name);
                assert_eq!(a, cloned.update(v), "{}", d.name);
            }
            assert_eq!(det.detections(), restored.detections());
            assert_eq!(det.estimate().to_bits(), restored.estimate().to_bits(), "{}", d.name);
        }
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("adwin", "adwin"), 0);
        assert_eq!(closest("ddn", ["ddm", "eddm"].into_iter()).as_deref(), Some("ddm"));
    }
}
