//! `cocoon-measure eventlog replay|diff`: exit codes and JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod eventlog_writer;

use std::path::{Path, PathBuf};

use cocoon_measurements::event::event_type::*;
use cocoon_measurements::event::replay_register;
use cocoon_measurements::eventlog::{EventLog, FormatChoice};
use cocoon_measurements::expected::{ExpectedMeasurements, Inputs, MEASUREMENTS_FORMAT};
use cocoon_measurements::{Digest48, Register};
use eventlog_writer::{ccel_table, LogWriter};
use serde_json::Value;

fn real_log() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swtpm-uki-boot/eventlog.bin")
}

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

/// The measurements JSON an image build would publish for the real log's UKI, with
/// RTMR2 event `corrupt` predicted wrongly when given.
fn write_expectation(dir: &Path, corrupt: Option<usize>) -> PathBuf {
    let log = EventLog::parse(&std::fs::read(real_log()).unwrap(), FormatChoice::Auto).unwrap();
    let mut events: Vec<_> = log
        .measured_events()
        .into_iter()
        .filter(|e| matches!(e.register, Register::Rtmr1 | Register::Rtmr2))
        .collect();
    if let Some(k) = corrupt {
        let i = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.register == Register::Rtmr2)
            .nth(k)
            .unwrap()
            .0;
        events[i].digest = Digest48::sha384(b"something else");
    }
    let e = ExpectedMeasurements {
        format: MEASUREMENTS_FORMAT,
        mrtd: Digest48::ZERO,
        rtmr0: None,
        rtmr1: replay_register(&events, Register::Rtmr1),
        rtmr2: replay_register(&events, Register::Rtmr2),
        rtmr0_note: Some("no ACPI tables given".into()),
        inputs: Inputs::default(),
        events,
    };
    let p = dir.join(format!("measurements-{corrupt:?}.json"));
    std::fs::write(&p, serde_json::to_vec_pretty(&e).unwrap()).unwrap();
    p
}

#[test]
fn replay_json_and_text() {
    let f = real_log();
    let (code, j, _) = run(&["--json", "eventlog", "replay", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(j["format"], "tpm");
    assert_eq!(j["event_count"], 42);
    assert_eq!(j["algorithms"], serde_json::json!(["sha256", "sha384"]));
    assert_eq!(j["trailing"]["kind"], "none");
    let regs = j["registers"].as_array().unwrap();
    assert_eq!(regs[0]["register"], "mrtd");
    assert!(regs[0]["value"].is_null());
    assert_eq!(
        regs[2]["value"],
        "78ecd62bca52cf50bd5b04eae4dc90be4bf3864cbef5e4334ed597c29105ee3d341284ccdf0a5498a9796f41eb1bbdcb"
    );
    assert_eq!(j["pcrs"].as_array().unwrap().len(), 10);
    let ev = &j["events"][13];
    assert_eq!(ev["log_index"], 14);
    assert_eq!(ev["register"], "rtmr1");
    assert_eq!(ev["pcr"], 4);
    assert_eq!(ev["event_type_name"], "EV_EFI_BOOT_SERVICES_APPLICATION");
    assert_eq!(ev["data_length"], 74);
    assert_eq!(ev["digest"].as_str().unwrap().len(), 96);

    let (code, _, text) = run(&["eventlog", "replay", f.to_str().unwrap(), "--format", "tpm"]);
    assert_eq!(code, 0);
    assert!(text.contains("rtmr2  5f8c1956e9e836ba"), "{text}");
    assert!(text.contains("\"Exit Boot Services Returned with Success\""));
}

#[test]
fn diff_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = real_log();
    let f = f.to_str().unwrap();
    let good = write_expectation(dir.path(), None);
    let (code, j, out) = run(&[
        "--json",
        "eventlog",
        "diff",
        f,
        "--expected",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(j["verdict"], "match");
    assert_eq!(j["registers"][0]["status"], "not_compared");
    assert!(j["registers"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("PCR 0"));

    let bad = write_expectation(dir.path(), Some(5));
    let (code, j, out) = run(&[
        "--json",
        "eventlog",
        "diff",
        f,
        "--expected",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(j["verdict"], "mismatch");
    let d = &j["first_differences"][0];
    assert_eq!(d["register"], "rtmr2");
    assert_eq!(d["kind"], "digest");
    assert_eq!(d["register_index"], 5);
    assert_eq!(d["log_index"], 30);
    assert_eq!(d["found"]["description"], "\".cmdline\"");
    assert_eq!(j["registers"][3]["first_difference"], *d);
    assert!(!j["reasons"].as_array().unwrap().is_empty());

    let (code, _, text) = run(&["eventlog", "diff", f, "--expected", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("rtmr2: MISMATCH"), "{text}");
    assert!(text.contains("rtmr2: event 5 (log event 30)"), "{text}");
}

#[test]
fn bad_input_exits_2_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(real_log()).unwrap();
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..1000]).unwrap();
    let (code, j, _) = run(&["--json", "eventlog", "replay", cut.to_str().unwrap()]);
    assert_eq!(code, 2);
    let msg = j["error"].as_str().unwrap();
    assert!(
        msg.contains("byte offset") && msg.contains("event["),
        "{msg}"
    );

    let (code, _, _) = run(&["eventlog", "replay", "/nonexistent/log"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&[
        "eventlog",
        "replay",
        cut.to_str().unwrap(),
        "--format",
        "pcr",
    ]);
    assert_eq!(code, 2);
    // diff needs an expectation: JSON, or firmware and UKI together.
    let f = real_log();
    let (code, _, _) = run(&["eventlog", "diff", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["eventlog", "diff", f.to_str().unwrap(), "--firmware", "x"]);
    assert_eq!(code, 2);
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"{}").unwrap();
    let (code, j, _) = run(&[
        "--json",
        "eventlog",
        "diff",
        f.to_str().unwrap(),
        "--expected",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(j["error"]
        .as_str()
        .unwrap()
        .contains("expected measurements"));
}

#[test]
fn ccel_log_with_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = LogWriter::td();
    w.event(1, EV_PLATFORM_CONFIG_FLAGS, b"td hob")
        .event(2, EV_EFI_ACTION, b"Exit Boot Services Invocation")
        .event(4, EV_EVENT_TAG, b"runtime")
        .pad(0xFF, 2048);
    let area = dir.path().join("data-CCEL");
    let table = dir.path().join("CCEL");
    std::fs::write(&area, w.bytes()).unwrap();
    std::fs::write(&table, ccel_table(w.buf.len() as u64)).unwrap();

    let (code, j, out) = run(&[
        "--json",
        "eventlog",
        "replay",
        area.to_str().unwrap(),
        "--ccel-table",
        table.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(j["format"], "ccel");
    assert_eq!(j["trailing"]["kind"], "ones_padding");
    assert_eq!(j["trailing"]["bytes"], 2048);
    assert_eq!(j["registers"][4]["events"], 1, "MR index 4 is RTMR3");
    assert!(j.get("pcrs").is_none());

    // Auto-detection without the table; the table given as the log is refused.
    let (code, j, _) = run(&["--json", "eventlog", "replay", area.to_str().unwrap()]);
    assert_eq!((code, j["format"].as_str()), (0, Some("ccel")));
    let (code, j, _) = run(&["--json", "eventlog", "replay", table.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(j["error"].as_str().unwrap().contains("CCEL ACPI table"));
}
