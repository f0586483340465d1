//! The prediction against a real boot: a UKI built from Debian trixie's 6.12 kernel
//! with ukify + systemd-stub 257.13, booted under QEMU TCG with swtpm (see the
//! README beside the files). The TPM log's events for PCR 2-6, 9 and 11 must equal
//! the predicted events one for one, and replaying the prediction must give the
//! PCR values the guest itself read.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use cocoon_measurements::boot::{
    compute_uki, compute_uki_with, LogFlavor, Rtmr12Prediction, UkiOptions,
};
use cocoon_measurements::event::event_type;
use cocoon_measurements::eventlog::{EventLog, FormatChoice};
use cocoon_measurements::{Digest48, Register};

/// The real-UKI vectors: the pinned UKI (rebuilt reproducibly) and the committed
/// swtpm boot log of it.
fn testuki(rel: &str) -> PathBuf {
    match rel {
        "uki.efi" => common::test_uki(),
        other => common::swtpm_fixture(other),
    }
}

/// One logged or predicted event, as the comparison sees it: PCR, type, SHA-384.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogEvent {
    pcr: u32,
    event_type: u32,
    sha384: Option<Digest48>,
}

/// The swtpm log's events, read by the crate's own TCG2 parser.
fn logged_events() -> Vec<LogEvent> {
    let bytes = std::fs::read(testuki("eventlog.bin")).unwrap();
    EventLog::parse(&bytes, FormatChoice::Tpm)
        .unwrap()
        .events
        .into_iter()
        .map(|e| LogEvent {
            pcr: e.index,
            event_type: e.event_type,
            sha384: e.sha384,
        })
        .collect()
}

/// The prediction in the TPM flavour (five RTMR1 separators), as swtpm logs it.
fn tpm_prediction() -> Rtmr12Prediction {
    compute_uki_with(
        &testuki("uki.efi"),
        &UkiOptions {
            flavor: LogFlavor::Tpm,
            ..Default::default()
        },
    )
    .unwrap()
}

fn guest_pcrs() -> BTreeMap<u32, Digest48> {
    std::fs::read_to_string(testuki("pcr-sha384.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].parse().unwrap(), f[2].to_lowercase().parse().unwrap())
        })
        .collect()
}

#[test]
fn tpm_flavor_events_equal_the_swtpm_log_one_for_one() {
    let p = tpm_prediction();
    let log = logged_events();
    // The events of the PCRs RTMR1 and RTMR2 map (2-6, 8-15), in log order.
    let logged: Vec<LogEvent> = log
        .into_iter()
        .filter(|e| matches!(e.pcr, 2..=6 | 8..=15) && e.event_type != event_type::EV_NO_ACTION)
        .collect();
    let predicted: Vec<LogEvent> = p
        .events
        .iter()
        .map(|e| LogEvent {
            pcr: e.pcr.unwrap(),
            event_type: e.event_type,
            sha384: Some(e.digest),
        })
        .collect();
    assert_eq!(predicted.len(), logged.len(), "{predicted:#?}\n{logged:#?}");
    for (i, (a, b)) in predicted.iter().zip(&logged).enumerate() {
        assert_eq!(a, b, "event {i}: {}", p.events[i].description);
    }
}

#[test]
fn replaying_the_prediction_gives_the_guests_pcr_values() {
    let p = tpm_prediction();
    let pcrs = guest_pcrs();
    for pcr in [2u32, 3, 4, 5, 6, 9, 11] {
        let replay = Digest48::replay(
            p.events
                .iter()
                .filter(|e| e.pcr == Some(pcr))
                .map(|e| &e.digest),
        );
        assert_eq!(replay, pcrs[&pcr], "PCR {pcr}");
    }
}

#[test]
fn tdx_flavor_has_one_separator_and_the_same_digests() {
    let tdx = compute_uki(&testuki("uki.efi")).unwrap();
    let tpm = tpm_prediction();
    assert_eq!(tdx.flavor, LogFlavor::Tdx);
    let seps = |p: &Rtmr12Prediction| {
        p.events
            .iter()
            .filter(|e| e.event_type == event_type::EV_SEPARATOR)
            .count()
    };
    assert_eq!(seps(&tdx), 1);
    assert_eq!(seps(&tpm), 5);
    // RTMR2 does not involve separators: same value; RTMR1 differs by them only.
    assert_eq!(tdx.rtmr2, tpm.rtmr2);
    assert_ne!(tdx.rtmr1, tpm.rtmr1);
    let non_sep = |p: &Rtmr12Prediction| -> Vec<Digest48> {
        p.events_of(Register::Rtmr1)
            .filter(|e| e.event_type != event_type::EV_SEPARATOR)
            .map(|e| e.digest)
            .collect()
    };
    assert_eq!(non_sep(&tdx), non_sep(&tpm));
    assert_eq!(tdx.events_of(Register::Rtmr1).count(), 6);
    assert_eq!(tdx.events_of(Register::Rtmr2).count(), 14);
}

#[test]
fn metadata_of_the_real_uki() {
    let p = compute_uki(&testuki("uki.efi")).unwrap();
    assert_eq!(
        p.uki_sha256,
        "798aef18a1f126619837a9f435978f6f3dc2a765762ef8f148cc56b1095d1889"
    );
    assert_eq!(p.uki_size, 14_246_912);
    assert!(p.stub_version.starts_with("257.13"), "{}", p.stub_version);
    assert_eq!(p.cmdline.as_deref(), Some("console=ttyS0 panic=-1"));
    assert_eq!(p.kernel_release.as_deref(), Some("6.12.117+deb13-amd64"));
    let names: Vec<&str> = p
        .events
        .iter()
        .filter(|e| e.event_type == event_type::EV_IPL)
        .step_by(2)
        .map(|e| e.description.split('"').nth(1).unwrap())
        .collect();
    assert_eq!(
        names,
        [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"]
    );
}

#[test]
fn single_threaded_and_small_chunks_give_the_same_prediction() {
    let base = compute_uki(&testuki("uki.efi")).unwrap();
    for (threads, chunk) in [(1, 4096), (3, 65536), (2, 3 << 20)] {
        let p = compute_uki_with(
            &testuki("uki.efi"),
            &UkiOptions {
                run: cocoon_measurements::hashplan::RunOptions {
                    threads: Some(threads),
                    chunk: Some(chunk),
                    progress: None,
                },
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p, base, "threads {threads} chunk {chunk}");
    }
}
