//! `eddy detect`, the detector playground: the same detection indices as River on the shared
//! ADWIN reference streams, parameters from the command line, JSON details, and clear errors.

mod common;

use common::{eddy, eddy_ok, root};

fn stream(name: &str) -> String {
    root().join("operators/tests/fixtures/drift/adwin").join(name).to_str().unwrap().to_string()
}

fn indices(out: &std::process::Output) -> Vec<u64> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.parse().unwrap()).collect()
}

#[test]
fn detect_prints_river_identical_indices() {
    let dir = root();
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("operators/tests/fixtures/drift/adwin/reference.json")).unwrap(),
    )
    .unwrap();
    for s in reference["streams"].as_array().unwrap().iter().take(12) {
        let file = stream(s["file"].as_str().unwrap());
        for (set, params) in [
            ("default", vec![]),
            ("clock_1", vec!["--param", "clock=1"]),
            ("delta_0.01", vec!["--param", "delta=0.01"]),
        ] {
            let mut args = vec!["detect", "adwin"];
            args.extend(params);
            args.push(&file);
            let got = indices(&eddy_ok(&dir, &args));
            let want: Vec<u64> =
                s["detections"][set].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(got, want, "{} / {set}", s["file"]);
        }
    }
}

#[test]
fn detect_gives_json_details() {
    let dir = tempfile::tempdir().unwrap();
    let series: String = (0..4000).map(|i| if i < 2000 { "0\n" } else { "1\n" }).collect();
    std::fs::write(dir.path().join("s.txt"), &series).unwrap();
    let out = eddy_ok(dir.path(), &["detect", "page_hinkley", "--json", "s.txt"]);
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let index = first["index"].as_u64().unwrap();
    assert!((2000..2100).contains(&index), "{first}");
    assert!(first["estimate_before"].is_number());
}

#[test]
fn detect_rejects_unknown_kinds_params_and_bad_numbers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.txt"), "0.1\nabc\n").unwrap();
    let out = eddy(dir.path(), &["detect", "adwn", "s.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean `adwin`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = eddy(dir.path(), &["detect", "adwin", "--param", "delt=0.1", "s.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("delta"));
    let out = eddy(dir.path(), &["detect", "adwin", "s.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

#[test]
fn detect_runs_every_registered_kind_and_hddm_w_matches_river() {
    let dir = root();
    let fixtures = dir.join("operators/tests/fixtures/drift");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("reference.json")).unwrap()).unwrap();
    let file = fixtures.join("streams/bern_abrupt.txt");
    let file = file.to_str().unwrap();
    for (set, params) in [("default", vec![]), ("lambda_0.2", vec!["--param", "lambda_val=0.2"])] {
        let mut args = vec!["detect", "hddm_w"];
        args.extend(params);
        args.push(file);
        let want: Vec<u64> = reference["detectors"]["hddm_w"]["results"][set]["bern_abrupt"]["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(!want.is_empty());
        assert_eq!(indices(&eddy_ok(&dir, &args)), want, "hddm_w / {set}");
    }
    // the help lists the kinds from the registry, and each of them runs
    let help = String::from_utf8_lossy(&eddy_ok(&dir, &["detect", "--help"]).stdout).to_string();
    let kinds = help.lines().find(|l| l.contains("Detector kind:")).expect(&help).to_string();
    for kind in ["adwin", "ddm", "eddm", "hddm_a", "hddm_w", "page_hinkley", "kswin"] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds}");
        eddy_ok(&dir, &["detect", kind, file]);
    }
}

#[test]
fn detect_names_the_parameter_of_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.txt"), "0\n1\n").unwrap();
    let out = eddy(dir.path(), &["detect", "hddm_w", "--param", "lambda_val=fast", "s.txt"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`lambda_val`") && err.contains("fast"), "{err}");
    let out = eddy(dir.path(), &["detect", "hddm_w", "--param", "lamda_val=0.1", "s.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `lambda_val`"));
}
