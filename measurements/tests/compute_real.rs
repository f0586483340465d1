//! `compute` on real artefacts (Debian trixie's OVMF.fd and the pinned test UKI)
//! against a real boot: the committed swtpm event log of that UKI, replayed and diffed
//! by the library's own `eventlog` module, and through the CLI with exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use cocoon_measurements::boot::{compute, ComputeInputs, LogFlavor};
use cocoon_measurements::eventlog::{EventLog, FormatChoice};
use cocoon_measurements::mrtd::PageOrder;
use cocoon_measurements::{Digest48, Register};

/// MRTD of trixie's OVMF.fd, page by page (see tests/mrtd_ovmf.rs for its provenance).
const OVMF_MRTD: &str = "bdc6fb145880f06f30c8b346b8dce2a99d9351b56892df22f80fcf6574caa9f9c31df8e8576d53b4d0cd1c3f28910e11";

fn inputs() -> ComputeInputs {
    ComputeInputs {
        firmware: common::trixie_ovmf(),
        uki: common::test_uki(),
        acpi: vec![],
        page_order: PageOrder::PageByPage,
        flavor: LogFlavor::Tpm,
    }
}

#[test]
fn tpm_flavoured_prediction_matches_the_real_swtpm_log() {
    let expected = compute(&inputs()).unwrap();
    assert_eq!(expected.mrtd, OVMF_MRTD.parse::<Digest48>().unwrap());
    assert!(expected.rtmr0.is_none() && expected.rtmr0_note.is_some());
    assert!(expected.is_consistent());

    let log = EventLog::parse(
        &std::fs::read(common::swtpm_fixture("eventlog.bin")).unwrap(),
        FormatChoice::Auto,
    )
    .unwrap();
    let diff = log.diff(&expected).unwrap();
    assert!(diff.is_match(), "{diff:#?}");
    let replay = log.replay().unwrap();
    assert_eq!(replay.value(Register::Rtmr1), Some(expected.rtmr1));
    assert_eq!(replay.value(Register::Rtmr2), Some(expected.rtmr2));
}

#[test]
fn cli_compute_then_eventlog_diff_accepts_the_real_log_and_names_a_tampered_event() {
    let dir = tempfile::tempdir().unwrap();
    let (fw, uki) = (common::trixie_ovmf(), common::test_uki());
    let out = common::cocoon_measure()
        .args(["compute", "--json", "--flavor", "tpm", "--firmware"])
        .arg(&fw)
        .arg("--uki")
        .arg(&uki)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_path = dir.path().join("measurements.json");
    std::fs::write(&expected_path, &out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["mrtd"], OVMF_MRTD);
    assert!(json["events"].as_array().unwrap().len() >= 20);

    let diff = |log: &std::path::Path| {
        let out = common::cocoon_measure()
            .args(["eventlog", "diff", "--json", "--expected"])
            .arg(&expected_path)
            .arg(log)
            .output()
            .unwrap();
        (
            out.status.code(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };
    let real = common::swtpm_fixture("eventlog.bin");
    let (code, v) = diff(&real);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["verdict"], "match");

    // Flip one byte of the `.cmdline` section digest in the log: the diff must name
    // RTMR2 and that EV_IPL event.
    let mut bytes = std::fs::read(&real).unwrap();
    let expected: cocoon_measurements::ExpectedMeasurements =
        serde_json::from_value(json.clone()).unwrap();
    let cmdline_event = expected
        .events_of(Register::Rtmr2)
        .find(|e| e.description.contains(".cmdline") && !e.description.contains("name"))
        .expect("a .cmdline contents event")
        .digest;
    let at = bytes
        .windows(48)
        .position(|w| w == cmdline_event.as_bytes())
        .expect("the digest is in the log");
    bytes[at] ^= 1;
    let tampered = dir.path().join("tampered.bin");
    std::fs::write(&tampered, &bytes).unwrap();
    let (code, v) = diff(&tampered);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["verdict"], "mismatch");
    let text = v.to_string();
    assert!(text.contains("rtmr2") && text.contains("EV_IPL"), "{v:#}");
}
