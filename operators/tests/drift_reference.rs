//! Detection indices of every drift detector against River 0.26.1.
//!
//! * `fixtures/drift/adwin/` — the project's ADWIN development data (12 streams of 20k–40k
//!   values, parameter sets `default`, `clock_1`, `delta_0.01`), copied from the shared data set.
//! * `fixtures/drift/reference.json` + `streams/` — small streams and River's detections (and
//!   warnings) for every detector, produced by `fixtures/drift/gen_reference.py` (which runs River
//!   itself); every registered kind must have an entry.
//!
//! Indices are 0-based positions of the values whose `update()` made River report drift; they
//! must match exactly.

use std::path::PathBuf;

use eddy_operators::drift::{DriftDetector, DriftDetectorConfig, DriftState};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drift")
}

fn read_stream(path: PathBuf) -> Vec<f64> {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse::<f64>().unwrap_or_else(|e| panic!("{}: {l:?}: {e}", path.display())))
        .collect()
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Build through the same path the CLI uses: `kind` + `NAME=VALUE` strings.
fn build(kind: &str, params: &Value) -> Box<dyn DriftDetector> {
    let params: Vec<(String, String)> = params
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    DriftDetectorConfig::from_params(kind, &params).unwrap().build()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

#[test]
fn adwin_matches_river_on_dev_streams() {
    let dir = fixtures().join("adwin");
    let reference = read_json(dir.join("reference.json"));
    assert_eq!(reference["river_version"], "0.26.1");
    let mut checked = 0;
    for stream in reference["streams"].as_array().unwrap() {
        let values = read_stream(dir.join(stream["file"].as_str().unwrap()));
        assert_eq!(values.len() as u64, stream["n"].as_u64().unwrap());
        for (pname, params) in reference["params"].as_object().unwrap() {
            let expected = indices(&stream["detections"][pname]);
            let mut det = build("adwin", params);
            let got: Vec<usize> = values
                .iter()
                .enumerate()
                .filter(|&(_, &x)| det.update(x) == DriftState::Drift)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(got, expected, "stream {} params {pname}", stream["name"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
}

/// Runs `kind` over every parameter set and stream of its entry in `reference.json`, checking
/// drift and warning indices (and, for ADWIN, window checkpoints); returns the number of runs.
fn check_against_river(kind: &str, entry: &Value) -> usize {
    let dir = fixtures();
    let mut checked = 0;
    for (pname, params) in entry["params"].as_object().unwrap() {
        for (sname, expected) in entry["results"][pname].as_object().unwrap() {
            let values = read_stream(dir.join("streams").join(format!("{sname}.txt")));
            let mut det = build(kind, params);
            let (mut drifts, mut warnings, mut checkpoints) = (Vec::new(), Vec::new(), Vec::new());
            for (i, &x) in values.iter().enumerate() {
                match det.update(x) {
                    DriftState::Drift => drifts.push(i),
                    DriftState::Warning => warnings.push(i),
                    DriftState::None => {}
                }
                if kind == "adwin" && (i + 1) % 250 == 0 {
                    let snap = serde_json::to_value(det.snapshot()).unwrap();
                    checkpoints.push((i, snap["width"].as_f64().unwrap(), det.estimate()));
                }
            }
            let ctx = format!("{kind} / {pname} / {sname}");
            assert_eq!(drifts, indices(&expected["drift"]), "drift indices: {ctx}");
            if let Some(w) = expected.get("warning") {
                // River can report `warning_detected` together with `drift_detected` (EDDM
                // leaves the flag on); a `DriftState` reports the drift.
                let want: Vec<usize> = indices(w).into_iter().filter(|i| !drifts.contains(i)).collect();
                assert_eq!(warnings, want, "warning indices: {ctx}");
            } else {
                assert!(warnings.is_empty(), "{ctx}: unexpected warnings");
            }
            if let Some(cps) = expected.get("checkpoints") {
                let cps: Vec<(usize, f64, f64)> = cps
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c[0].as_u64().unwrap() as usize,
                            c[1].as_f64().unwrap(),
                            c[2].as_str().unwrap().parse::<f64>().unwrap(),
                        )
                    })
                    .collect();
                assert_eq!(checkpoints.len(), cps.len(), "{ctx}");
                for (got, want) in checkpoints.iter().zip(&cps) {
                    assert_eq!((got.0, got.1), (want.0, want.1), "{ctx}: width at index {}", want.0);
                    assert_eq!(
                        got.2.to_bits(),
                        want.2.to_bits(),
                        "{ctx}: estimation at index {}: {} vs {}",
                        want.0,
                        got.2,
                        want.2
                    );
                }
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn all_detectors_match_river_on_small_streams() {
    let reference = read_json(fixtures().join("reference.json"));
    assert_eq!(reference["river_version"], "0.26.1");
    let mut checked = 0;
    for (kind, entry) in reference["detectors"].as_object().unwrap() {
        checked += check_against_river(kind, entry);
    }
    assert!(checked >= 120, "only {checked} reference runs");
}

/// The checklist's last step: a detector is not done until River's reference is in the fixture.
#[test]
fn every_registered_kind_has_a_river_reference() {
    let reference = read_json(fixtures().join("reference.json"));
    for kind in DriftDetectorConfig::KINDS {
        let entry = &reference["detectors"][kind];
        assert!(
            entry["params"].as_object().is_some_and(|p| !p.is_empty()),
            "no River reference for `{kind}`: add it to fixtures/drift/gen_reference.py and rerun it"
        );
    }
}

/// HDDM_W (`river.drift.binary.HDDMW`): drift and warning indices on the Bernoulli streams, one-
/// and two-sided, with River's and other confidences and weights.
#[test]
fn hddm_w_matches_river() {
    let reference = read_json(fixtures().join("reference.json"));
    let entry = &reference["detectors"]["hddm_w"];
    let drifts: usize = entry["results"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|r| r.as_object().unwrap().values())
        .map(|r| r["drift"].as_array().unwrap().len())
        .sum();
    assert!(drifts >= 20, "the fixture should exercise detections, has {drifts}");
    assert_eq!(check_against_river("hddm_w", entry), 20);
}
