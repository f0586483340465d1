//! Diffing the real swtpm log against expectations that agree with it, and against
//! expectations that differ in one known place.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod eventlog_writer;

use std::path::PathBuf;

use cocoon_measurements::event::event_type::*;
use cocoon_measurements::event::{replay_register, MeasuredEvent};
use cocoon_measurements::eventlog::{
    CompareStatus, DifferenceKind, EventLog, EventLogError, FormatChoice,
};
use cocoon_measurements::expected::{ExpectedMeasurements, Inputs, MEASUREMENTS_FORMAT};
use cocoon_measurements::{Digest48, Register};
use eventlog_writer::{sha384, LogWriter};

fn real_log() -> EventLog {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/swtpm-uki-boot/eventlog.bin");
    EventLog::parse(&std::fs::read(p).unwrap(), FormatChoice::Auto).unwrap()
}

/// An expectation of `events`, its values their replay (as `compute` produces).
fn expectation(events: Vec<MeasuredEvent>) -> ExpectedMeasurements {
    let has_rtmr0 = events.iter().any(|e| e.register == Register::Rtmr0);
    ExpectedMeasurements {
        format: MEASUREMENTS_FORMAT,
        mrtd: Digest48::sha384(b"some firmware"),
        rtmr0: has_rtmr0.then(|| replay_register(&events, Register::Rtmr0)),
        rtmr1: replay_register(&events, Register::Rtmr1),
        rtmr2: replay_register(&events, Register::Rtmr2),
        rtmr0_note: (!has_rtmr0).then(|| "no ACPI tables given".to_string()),
        inputs: Inputs::default(),
        events,
    }
}

/// The RTMR1 and RTMR2 events of the real log, as an image build would predict them.
fn predicted(log: &EventLog) -> Vec<MeasuredEvent> {
    log.measured_events()
        .into_iter()
        .filter(|e| matches!(e.register, Register::Rtmr1 | Register::Rtmr2))
        .collect()
}

fn status(report: &cocoon_measurements::eventlog::DiffReport, r: Register) -> CompareStatus {
    report
        .registers
        .iter()
        .find(|x| x.register == r)
        .unwrap()
        .status
}

#[test]
fn matching_expectation_and_registers_not_compared() {
    let log = real_log();
    let report = log.diff(&expectation(predicted(&log))).unwrap();
    assert_eq!(report.verdict, "match");
    assert!(report.is_match());
    assert!(report.reasons.is_empty());
    assert!(report.first_differences.is_empty());
    assert_eq!(status(&report, Register::Rtmr1), CompareStatus::Match);
    assert_eq!(status(&report, Register::Rtmr2), CompareStatus::Match);
    // Not silently skipped: each has a reason.
    let reason = |r: Register| {
        let x = report.registers.iter().find(|x| x.register == r).unwrap();
        assert_eq!(x.status, CompareStatus::NotCompared);
        x.reason.clone().unwrap()
    };
    assert!(reason(Register::Mrtd).contains("PCR 0 (4 firmware event(s))"));
    assert!(reason(Register::Rtmr0).contains("no ACPI tables given"));
    assert!(reason(Register::Rtmr0).contains("13 event(s)"));
    assert!(reason(Register::Rtmr3).contains("run time"));
    let r1 = report
        .registers
        .iter()
        .find(|x| x.register == Register::Rtmr1)
        .unwrap();
    assert_eq!((r1.expected_events, r1.log_events), (10, 10));
    assert_eq!(r1.expected_value, r1.log_value);
}

#[test]
fn first_differing_event_is_named() {
    let log = real_log();
    let mut events = predicted(&log);
    // The .osrel contents (RTMR2 event 3, log event 28) predicted differently.
    let osrel = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.register == Register::Rtmr2)
        .nth(3)
        .unwrap()
        .0;
    let wrong = Digest48::sha384(b"ID=other\n");
    let real = events[osrel].digest;
    events[osrel].digest = wrong;
    // And a later RTMR2 event too: only the first is named, the count says two.
    let last = events.len() - 3;
    events[last].digest = Digest48::ZERO;
    let report = log.diff(&expectation(events)).unwrap();
    assert_eq!(report.verdict, "mismatch");
    assert_eq!(status(&report, Register::Rtmr1), CompareStatus::Match);
    assert_eq!(status(&report, Register::Rtmr2), CompareStatus::Mismatch);
    assert_eq!(report.first_differences.len(), 1);
    let d = &report.first_differences[0];
    assert_eq!(d.register, Register::Rtmr2);
    assert_eq!(d.kind, DifferenceKind::Digest);
    assert_eq!((d.register_index, d.log_index), (3, Some(28)));
    let (x, f) = (d.expected.as_ref().unwrap(), d.found.as_ref().unwrap());
    assert_eq!((x.digest, f.digest), (wrong, real));
    assert_eq!(f.event_type, EV_IPL);
    assert_eq!(f.description, "\".osrel\"");
    assert_eq!(f.pcr, Some(11));
    let r2 = report
        .registers
        .iter()
        .find(|x| x.register == Register::Rtmr2)
        .unwrap();
    assert_eq!(r2.differing_events, 2);
    assert_eq!(r2.first_difference.as_ref(), Some(d));
    assert!(report.reasons[0].starts_with("rtmr2: event 3 (log event 28): expected EV_IPL"));
    assert!(report.reasons[0].contains(&real.to_hex()));
    assert!(report.reasons.iter().any(|r| r.contains("2 of the 14")));
}

#[test]
fn extra_and_missing_events_at_the_end() {
    let log = real_log();
    // The expectation ends before ExitBootServices: the log has two extra events.
    let mut events = predicted(&log);
    events.retain(|e| e.pcr != Some(5) || e.event_type == EV_SEPARATOR);
    let report = log.diff(&expectation(events)).unwrap();
    let r1 = report
        .registers
        .iter()
        .find(|x| x.register == Register::Rtmr1)
        .unwrap();
    assert_eq!(r1.status, CompareStatus::Mismatch);
    let d = r1.first_difference.as_ref().unwrap();
    assert_eq!(d.kind, DifferenceKind::Extra);
    assert_eq!((d.register_index, d.log_index), (8, Some(40)));
    assert!(d.expected.is_none());
    assert_eq!(
        d.found.as_ref().unwrap().description,
        "\"Exit Boot Services Invocation\""
    );
    assert_eq!(r1.extra_events.len(), 2);
    assert_eq!(r1.extra_events[1].log_index, Some(41));
    assert!(report.reasons[0].contains("extra event EV_EFI_ACTION"));

    // The expectation has one more RTMR2 event than the log.
    let mut events = predicted(&log);
    events.push(MeasuredEvent::new(
        Register::Rtmr2,
        Some(9),
        EV_EVENT_TAG,
        sha384(b"a third tagged event"),
        "not logged",
        "",
    ));
    let report = log.diff(&expectation(events)).unwrap();
    assert_eq!(status(&report, Register::Rtmr1), CompareStatus::Match);
    let r2 = report
        .registers
        .iter()
        .find(|x| x.register == Register::Rtmr2)
        .unwrap();
    let d = r2.first_difference.as_ref().unwrap();
    assert_eq!(d.kind, DifferenceKind::Missing);
    assert_eq!((d.register_index, d.log_index), (14, None));
    assert_eq!(d.expected.as_ref().unwrap().description, "not logged");
    assert_eq!(r2.missing_events.len(), 1);
    assert!(report.reasons[0].contains("past the end of the log"));
}

#[test]
fn an_option_rom_in_the_log_is_the_first_rtmr1_difference() {
    // What MEASURED-BOOT.md warns of: QEMU's default NIC loads an iPXE option ROM,
    // which OVMF measures into PCR 2 before the UKI.
    let uki = sha384(b"authenticode of the uki");
    let mut w = LogWriter::tpm();
    w.event(7, EV_SEPARATOR, &[0; 4])
        .event_digest(2, EV_EFI_BOOT_SERVICES_DRIVER, &sha384(b"ipxe"), &[0; 32])
        .event_digest(4, EV_EFI_BOOT_SERVICES_APPLICATION, &uki, &[0; 32])
        .event(
            4,
            EV_EFI_ACTION,
            b"Calling EFI Application from Boot Option",
        );
    let log = EventLog::parse(&w.bytes(), FormatChoice::Auto).unwrap();
    let events = vec![
        MeasuredEvent::new(
            Register::Rtmr1,
            Some(4),
            EV_EFI_BOOT_SERVICES_APPLICATION,
            uki,
            "UKI",
            "",
        ),
        MeasuredEvent::new(
            Register::Rtmr1,
            Some(4),
            EV_EFI_ACTION,
            sha384(b"Calling EFI Application from Boot Option"),
            "action",
            "",
        ),
    ];
    let report = log.diff(&expectation(events)).unwrap();
    let r1 = report
        .registers
        .iter()
        .find(|x| x.register == Register::Rtmr1)
        .unwrap();
    let d = r1.first_difference.as_ref().unwrap();
    assert_eq!(
        (d.kind, d.register_index, d.log_index),
        (DifferenceKind::Digest, 0, Some(2))
    );
    assert_eq!(
        d.found.as_ref().unwrap().event_type_name,
        "EV_EFI_BOOT_SERVICES_DRIVER"
    );
    assert_eq!(d.expected.as_ref().unwrap().description, "UKI");
    assert_eq!(r1.differing_events, 2);
    assert_eq!(r1.extra_events.len(), 1);
    assert!(report.reasons.iter().any(|r| r.contains("1 more event(s)")));
}

#[test]
fn rtmr0_is_compared_when_the_expectation_models_it() {
    let log = real_log();
    let mut events: Vec<MeasuredEvent> = log
        .measured_events()
        .into_iter()
        .filter(|e| e.register != Register::Mrtd)
        .collect();
    let report = log.diff(&expectation(events.clone())).unwrap();
    assert_eq!(status(&report, Register::Rtmr0), CompareStatus::Match);
    assert_eq!(report.verdict, "match");
    // Another VM shape: the third ACPI blob differs.
    let acpi = events
        .iter()
        .position(|e| e.event_type == EV_PLATFORM_CONFIG_FLAGS)
        .unwrap()
        + 2;
    events[acpi].digest = sha384(b"other ACPI tables");
    let report = log.diff(&expectation(events)).unwrap();
    assert_eq!(status(&report, Register::Rtmr0), CompareStatus::Mismatch);
    let d = &report.first_differences[0];
    assert_eq!(
        (d.register, d.register_index, d.log_index),
        (Register::Rtmr0, 8, Some(12))
    );
    assert_eq!(d.found.as_ref().unwrap().description, "\"ACPI DATA\"");
}

#[test]
fn an_inconsistent_expectation_is_refused() {
    let log = real_log();
    let mut e = expectation(predicted(&log));
    e.rtmr2 = Digest48::ZERO;
    let err = log.diff(&e).unwrap_err();
    assert!(matches!(err, EventLogError::InconsistentExpectation(_)));
    assert!(err.to_string().contains("rtmr2"));
}
