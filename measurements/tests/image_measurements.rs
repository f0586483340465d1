//! What the image build relies on: `compute --profile/--artefact/--tool` (the `image`
//! record of measurements.json) and `eventlog diff --expected` of a TPM log (swtpm test
//! boot) against the TD-flavour measurements.json (TD view: the TPM-only RTMR1
//! separators are dropped, every other RTMR1/RTMR2 event compared).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use cocoon_measurements::expected::{ExpectedMeasurements, ImageBuild, ImageMeasurements};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

fn run(args: &[&str]) -> (i32, Value, String) {
    let out = common::cocoon_measure().args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8(out.stderr).unwrap() + &stdout,
    )
}

/// `compute --json` (TD flavour, as image/build publishes it) for the test UKI.
fn td_measurements(dir: &Path) -> PathBuf {
    let (fw, uki) = (common::trixie_ovmf(), common::test_uki());
    let (code, j, out) = run(&[
        "--json",
        "compute",
        "--firmware",
        fw.to_str().unwrap(),
        "--uki",
        uki.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let p = dir.join("measurements.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&j).unwrap()).unwrap();
    p
}

#[test]
fn compute_records_profile_artefacts_and_tools() {
    let dir = tempfile::tempdir().unwrap();
    let artefact = dir.path().join("root.raw");
    std::fs::write(&artefact, b"a root disk").unwrap();
    let (fw, uki) = (common::trixie_ovmf(), common::test_uki());
    let args = [
        "--json",
        "compute",
        "--firmware",
        fw.to_str().unwrap(),
        "--uki",
        uki.to_str().unwrap(),
        "--profile",
        "dev",
        "--artefact",
        artefact.to_str().unwrap(),
        "--tool",
        "systemd-ukify=257.13-1~deb13u1",
        "--tool",
        "mkosi=25.3-7",
    ];
    let (code, j, out) = run(&args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(j["image"]["profile"], "dev");
    assert_eq!(
        j["image"]["artefacts"]["root.raw"],
        hex::encode(Sha256::digest(b"a root disk"))
    );
    assert_eq!(j["image"]["tools"]["mkosi"], "25.3-7");
    assert_eq!(j["image"]["tools"]["systemd-ukify"], "257.13-1~deb13u1");
    // The test UKI's command line has no roothash=.
    assert!(j["image"].get("verity_root_hash").is_none());
    // Readers that want only the registers still read the file; the full type too.
    let bytes = serde_json::to_vec(&j).unwrap();
    let plain: ExpectedMeasurements = serde_json::from_slice(&bytes).unwrap();
    let full: ImageMeasurements = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(plain, full.measurements);
    assert_eq!(plain.rtmr2.to_hex(), j["rtmr2"].as_str().unwrap());
    // Same inputs, same bytes (image/test-boot compares a rerun with the published file).
    let (_, again, _) = run(&args);
    assert_eq!(again, j);

    let mut bad = args.to_vec();
    bad.extend(["--tool", "no-version"]);
    let (code, j, _) = run(&bad);
    assert_eq!(code, 2);
    assert!(j["error"].as_str().unwrap().contains("NAME=VERSION"), "{j}");
}

#[test]
fn verity_root_hash_is_read_from_the_command_line() {
    let h = "95445c8b7fec022680840d2abba1aef278e9ac331885d41384bb806247932962";
    assert_eq!(
        ImageBuild::verity_root_hash_from_cmdline(&format!("roothash={h} console=ttyS0")),
        Some(h.to_string())
    );
    assert_eq!(
        ImageBuild::verity_root_hash_from_cmdline("usrhash=ab roothash=cd"),
        Some("cd".to_string())
    );
    assert_eq!(
        ImageBuild::verity_root_hash_from_cmdline("usrhash=ab quiet"),
        Some("ab".to_string())
    );
    assert_eq!(
        ImageBuild::verity_root_hash_from_cmdline("xroothash=ab"),
        None
    );
}

#[test]
fn tpm_log_matches_td_measurements_through_the_td_view() {
    let dir = tempfile::tempdir().unwrap();
    let expected = td_measurements(dir.path());
    let log = common::swtpm_fixture("eventlog.bin");
    let (code, j, out) = run(&[
        "--json",
        "eventlog",
        "diff",
        log.to_str().unwrap(),
        "--expected",
        expected.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(j["verdict"], "match");
    // The separators of PCR 3-6, after the first RTMR1 (PCR 2) one.
    assert_eq!(j["td_view_dropped"], serde_json::json!([21, 22, 23, 24]));
    let regs = j["registers"].as_array().unwrap();
    let reg = |name: &str| regs.iter().find(|r| r["register"] == name).unwrap().clone();
    assert_eq!(reg("rtmr1")["status"], "match");
    assert_eq!(reg("rtmr1")["log_events"], 6);
    assert_eq!(reg("rtmr2")["status"], "match");
    assert_eq!(reg("rtmr2")["log_events"], 14);

    // Every remaining RTMR1 event is still compared: a wrong kernel digest is named.
    let mut m: Value = serde_json::from_slice(&std::fs::read(&expected).unwrap()).unwrap();
    let events = m["events"].as_array_mut().unwrap();
    let kernel = events
        .iter_mut()
        .filter(|e| e["register"] == "rtmr1")
        .nth(3)
        .unwrap();
    kernel["digest"] = Value::String("00".repeat(48));
    // Keep the file self-consistent (RTMR1 = replay of its events) so only the diff fails.
    let parsed: ExpectedMeasurements = serde_json::from_value(m.clone()).unwrap();
    let rtmr1 = cocoon_measurements::event::replay_register(
        &parsed.events,
        cocoon_measurements::Register::Rtmr1,
    );
    m["rtmr1"] = Value::String(rtmr1.to_hex());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&m).unwrap()).unwrap();
    let (code, j, out) = run(&[
        "--json",
        "eventlog",
        "diff",
        log.to_str().unwrap(),
        "--expected",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let d = &j["first_differences"][0];
    assert_eq!(d["register"], "rtmr1");
    assert_eq!(d["kind"], "digest");
    assert_eq!(d["register_index"], 3);
}
