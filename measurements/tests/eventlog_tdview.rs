//! The TD view of the committed swtpm boot log (five RTMR1 separators) equals the
//! TD-flavour prediction of the same UKI: what a sim TEE under swtpm reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use cocoon_measurements::boot::{compute_uki_with, LogFlavor, UkiOptions};
use cocoon_measurements::event::event_type::EV_SEPARATOR;
use cocoon_measurements::eventlog::{EventLog, FormatChoice};
use cocoon_measurements::Register;

fn swtpm_log() -> EventLog {
    let bytes = std::fs::read(common::swtpm_fixture("eventlog.bin")).unwrap();
    EventLog::parse(&bytes, FormatChoice::Tpm).unwrap()
}

#[test]
fn tpm_log_td_view_equals_tdx_prediction() {
    let log = swtpm_log();
    let view = log.td_view().unwrap();
    let tdx = compute_uki_with(
        &common::test_uki(),
        &UkiOptions {
            flavor: LogFlavor::Tdx,
            ..Default::default()
        },
    )
    .unwrap();
    let tdx_rtmr1 = tdx.rtmr1.to_hex();
    let tdx_rtmr2 = tdx.rtmr2.to_hex();
    // The TD-flavour values of the test UKI (also in the docs).
    assert!(tdx_rtmr1.starts_with("732d440e") && tdx_rtmr1.ends_with("55d8"));
    assert!(tdx_rtmr2.starts_with("5f8c1956") && tdx_rtmr2.ends_with("f11d"));
    assert_eq!(view.rtmr1, tdx.rtmr1);
    assert_eq!(view.rtmr2, tdx.rtmr2);
    // The plain replay (five separators) differs in RTMR1 only.
    let replay = log.replay().unwrap();
    assert_ne!(replay.value(Register::Rtmr1), Some(view.rtmr1));
    assert_eq!(replay.value(Register::Rtmr2), Some(view.rtmr2));
    assert_eq!(replay.value(Register::Rtmr0), Some(view.rtmr0));
    // PCR 3-6's separators are the ones dropped.
    assert_eq!(view.dropped_separators.len(), 4);
    for i in &view.dropped_separators {
        let e = &log.events[*i];
        assert_eq!(e.event_type, EV_SEPARATOR);
        assert!((3..=6).contains(&e.index), "PCR {}", e.index);
    }
    let rtmr1_events: Vec<_> = view
        .events
        .iter()
        .filter(|e| e.register == Register::Rtmr1)
        .map(|e| (e.event_type, e.digest))
        .collect();
    let predicted: Vec<_> = tdx
        .events_of(Register::Rtmr1)
        .map(|e| (e.event_type, e.digest))
        .collect();
    assert_eq!(rtmr1_events, predicted);
    assert!(view.events.iter().all(|e| e.register != Register::Mrtd));
    assert_eq!(view.value(Register::Rtmr3), None);
}
