//! Parsing and replaying synthetic TCG2 logs built event by event.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod eventlog_writer;

use cocoon_measurements::codec::ParseErrorKind;
use cocoon_measurements::event::event_type::*;
use cocoon_measurements::eventlog::{EventLog, EventLogError, FormatChoice, LogFormat, Trailing};
use cocoon_measurements::{Digest48, Register};
use eventlog_writer::{ccel_table, sha384, LogWriter, SHA256, SHA384};

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A TPM-style log: the PCRs OVMF and systemd-stub use, one of each kind.
fn tpm_log() -> LogWriter {
    let mut w = LogWriter::tpm();
    w.startup_locality(3)
        .event(0, EV_S_CRTM_VERSION, &utf16("1.0\0"))
        .event(7, EV_EFI_VARIABLE_DRIVER_CONFIG, b"secureboot-var")
        .event(7, EV_SEPARATOR, &[0; 4])
        .event(1, EV_PLATFORM_CONFIG_FLAGS, b"ACPI DATA")
        .event(4, EV_EFI_BOOT_SERVICES_APPLICATION, b"uki-image-load-event")
        .event(
            4,
            EV_EFI_ACTION,
            b"Calling EFI Application from Boot Option",
        )
        .event(2, EV_SEPARATOR, &[0; 4])
        .event(11, EV_IPL, b".linux\0")
        .event(9, EV_EVENT_TAG, b"tagged")
        .event(17, EV_EFI_ACTION, b"drtm")
        .event(5, EV_EFI_ACTION, b"Exit Boot Services Invocation");
    w
}

#[test]
fn tpm_log_maps_pcrs_and_replays_sha384() {
    let w = tpm_log();
    let log = EventLog::parse(&w.bytes(), FormatChoice::Auto).unwrap();
    assert_eq!(log.format, LogFormat::Tpm);
    assert!(
        log.format_reason.contains("index 7"),
        "{}",
        log.format_reason
    );
    assert_eq!(log.events.len(), 13);
    assert_eq!(log.trailing, Trailing::None);
    assert_eq!(log.log_length, w.buf.len());
    assert_eq!(log.spec_id.algorithm_names(), ["sha256", "sha384"]);
    for (e, off) in log.events.iter().zip(&w.offsets) {
        assert_eq!(e.offset, *off);
    }

    let regs: Vec<Option<Register>> = log.events.iter().map(|e| e.register).collect();
    use Register::*;
    assert_eq!(
        regs,
        [
            Some(Mrtd),
            Some(Mrtd),
            Some(Mrtd),
            Some(Rtmr0),
            Some(Rtmr0),
            Some(Rtmr0),
            Some(Rtmr1),
            Some(Rtmr1),
            Some(Rtmr1),
            Some(Rtmr2),
            Some(Rtmr2),
            None,
            Some(Rtmr1)
        ]
    );

    let r = log.replay().unwrap();
    let rtmr1 = Digest48::replay(&[
        sha384(b"uki-image-load-event"),
        sha384(b"Calling EFI Application from Boot Option"),
        sha384(&[0; 4]),
        sha384(b"Exit Boot Services Invocation"),
    ]);
    assert_eq!(r.value(Rtmr1), Some(rtmr1));
    let rtmr2 = Digest48::replay(&[sha384(b".linux\0"), sha384(b"tagged")]);
    assert_eq!(r.value(Rtmr2), Some(rtmr2));
    let rtmr0 = Digest48::replay(&[
        sha384(b"secureboot-var"),
        sha384(&[0; 4]),
        sha384(b"ACPI DATA"),
    ]);
    assert_eq!(r.value(Rtmr0), Some(rtmr0));
    assert_eq!(r.value(Rtmr3), Some(Digest48::ZERO));
    assert_eq!(r.value(Mrtd), None, "MRTD is never a replay");
    assert_eq!(r.registers[0].events, 1);

    // PCR 0 of a TPM started from locality 3 starts at 00..03.
    assert_eq!(r.startup_locality, Some(3));
    let mut pcr0 = Digest48::ZERO;
    pcr0.0[47] = 3;
    pcr0.extend(&sha384(&utf16("1.0\0")));
    assert_eq!(r.pcr(0), Some(pcr0));
    assert_eq!(
        r.pcr(17),
        Some(Digest48::replay(&[sha384(b"drtm")])),
        "PCR 17 is replayed as a PCR though no TDX register receives it"
    );
    assert_eq!(
        r.pcr(4),
        Some(Digest48::replay(&[
            sha384(b"uki-image-load-event"),
            sha384(b"Calling EFI Application from Boot Option"),
        ]))
    );
    // The SHA-256 bank is replayed too.
    let p9 = r.pcrs.iter().find(|p| p.pcr == 9).unwrap();
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(Sha256::digest(b"tagged"));
    assert_eq!(
        p9.sha256.as_deref(),
        Some(hex::encode(h.finalize()).as_str())
    );

    // Extended events carry register positions; EV_NO_ACTION and PCR 17 are listed
    // as not replayed, with reasons.
    assert_eq!(r.events.len(), 10);
    let ipl = r
        .events
        .iter()
        .find(|e| e.event.event_type == EV_IPL)
        .unwrap();
    assert_eq!(
        (ipl.log_index, ipl.register_index, ipl.data_length),
        (9, 0, 7)
    );
    assert_eq!(ipl.event.pcr, Some(11));
    assert_eq!(ipl.event.description, "\".linux\"");
    let skipped: Vec<usize> = r.not_replayed.iter().map(|n| n.log_index).collect();
    assert_eq!(skipped, [0, 1, 11]);
    assert!(r.not_replayed[2].reason.contains("PCR 17"));
    assert!(r.not_replayed[1].description.contains("StartupLocality 3"));
    assert_eq!(log.measured_events().len(), 10);
}

fn td_log() -> LogWriter {
    let mut w = LogWriter::td();
    w.event(1, EV_EFI_HANDOFF_TABLES2, b"td-hob")
        .event(1, EV_PLATFORM_CONFIG_FLAGS, b"ACPI DATA")
        .event(2, EV_EFI_BOOT_SERVICES_APPLICATION, b"uki")
        .event(3, EV_IPL, b".linux\0")
        .event(3, EV_EVENT_TAG, b"initrd")
        .event(2, EV_EFI_ACTION, b"Exit Boot Services Invocation");
    w
}

#[test]
fn ccel_log_with_ff_padding() {
    let mut w = td_log();
    let log_len = w.buf.len();
    w.pad(0xFF, 4096);
    let log = EventLog::parse(&w.bytes(), FormatChoice::Auto).unwrap();
    assert_eq!(log.format, LogFormat::Ccel);
    assert!(log.format_reason.contains("0xFF padding"));
    assert_eq!(log.events.len(), 7);
    assert_eq!(log.log_length, log_len);
    assert_eq!(
        log.trailing,
        Trailing::OnesPadding {
            bytes: 4096,
            all_ones: true
        }
    );
    let r = log.replay().unwrap();
    assert!(r.pcrs.is_empty(), "no PCRs in a CC log");
    assert_eq!(
        r.value(Register::Rtmr1),
        Some(Digest48::replay(&[
            sha384(b"uki"),
            sha384(b"Exit Boot Services Invocation")
        ]))
    );
    assert_eq!(
        r.value(Register::Rtmr2),
        Some(Digest48::replay(&[sha384(b".linux\0"), sha384(b"initrd")]))
    );
    assert_eq!(r.events_of(Register::Rtmr0).count(), 2);
    assert!(r.events.iter().all(|e| e.event.pcr.is_none()));

    // The same log with its padding stripped: still CCEL (indices 1-4 only).
    let bare = &w.bytes()[..log_len];
    let log = EventLog::parse(bare, FormatChoice::Auto).unwrap();
    assert_eq!(log.format, LogFormat::Ccel);
    assert_eq!(log.trailing, Trailing::None);

    // Zero padding ends the log too; padding that is not all 0xFF is reported.
    let mut z = td_log();
    z.pad(0, 100);
    let log = EventLog::parse(&z.bytes(), FormatChoice::Ccel).unwrap();
    assert_eq!(log.trailing, Trailing::ZeroPadding { bytes: 100 });
    let mut dirty = td_log();
    dirty.pad(0xFF, 64).pad(0x12, 3);
    let log = EventLog::parse(&dirty.bytes(), FormatChoice::Auto).unwrap();
    assert_eq!(
        log.trailing,
        Trailing::OnesPadding {
            bytes: 67,
            all_ones: false
        }
    );
    assert_eq!(log.notes.len(), 1);
}

#[test]
fn ccel_table_locates_the_log_area() {
    let mut w = td_log();
    w.pad(0xFF, 1000);
    let area = w.bytes();
    let table = ccel_table(area.len() as u64);
    let log = EventLog::parse_ccel(&table, &area).unwrap();
    assert_eq!(log.format, LogFormat::Ccel);
    let t = log.ccel_table.as_ref().unwrap();
    assert_eq!(
        (t.cc_type, t.laml, t.oem_id.as_str()),
        (2, area.len() as u64, "COCOON")
    );
    assert!(log.notes.is_empty());

    // LAML shorter than the input: only LAML bytes are read.
    let short = ccel_table(area.len() as u64 - 500);
    let log = EventLog::parse_ccel(&short, &area).unwrap();
    assert_eq!(
        log.trailing,
        Trailing::OnesPadding {
            bytes: 500,
            all_ones: true
        }
    );
    assert_eq!(log.notes.len(), 1);

    // A bad checksum, the wrong signature, or the table given as the log.
    let mut bad = table.clone();
    bad[40] ^= 1;
    let e = EventLog::parse_ccel(&bad, &area).unwrap_err();
    assert!(e.to_string().contains("ccel.checksum"), "{e}");
    let e = EventLog::parse_ccel(&area, &area).unwrap_err();
    assert!(e.to_string().contains("ccel.signature"), "{e}");
    let e = EventLog::parse(&table, FormatChoice::Auto).unwrap_err();
    assert!(matches!(e, EventLogError::CcelTableGivenAsLog));
    assert!(EventLog::parse_ccel(&table[..40], &area).is_err());
}

#[test]
fn format_override() {
    // A CC log read as a TPM log: index 2 is then PCR 2 (RTMR1), index 3 PCR 3 (RTMR1).
    let w = td_log();
    let log = EventLog::parse(&w.bytes(), FormatChoice::Tpm).unwrap();
    assert_eq!(log.format_reason, "given");
    assert_eq!(log.events[4].register, Some(Register::Rtmr1));
    // A TPM log read as a CC log fails at the first index a CC log cannot have.
    let t = tpm_log();
    match EventLog::parse(&t.bytes(), FormatChoice::Ccel).unwrap_err() {
        EventLogError::InvalidMrIndex {
            index,
            offset,
            mr_index,
        } => {
            assert_eq!((index, mr_index), (3, 7));
            assert_eq!(offset, t.offsets[3]);
        }
        e => panic!("{e}"),
    }
    // Index 0 holding firmware events means TPM, even without PCR 5-23.
    let mut p0 = LogWriter::tpm();
    p0.event(0, EV_S_CRTM_VERSION, b"v")
        .event(4, EV_EFI_ACTION, b"a");
    let log = EventLog::parse(&p0.bytes(), FormatChoice::Auto).unwrap();
    assert_eq!(log.format, LogFormat::Tpm);
    assert!(log.format_reason.contains("index 0"));
    assert_eq!("CCEL".parse::<FormatChoice>(), Ok(FormatChoice::Ccel));
    assert!("pcr".parse::<FormatChoice>().is_err());
}

#[test]
fn unknown_algorithm_is_stepped_over_by_its_spec_id_size() {
    let algs = [(0x0004, 20), (0x0099, 7), (SHA384, 48), (0x0012, 32)];
    let mut w = LogWriter::new(&algs);
    w.event(4, EV_EFI_ACTION, b"one")
        .event(5, EV_EFI_ACTION, b"two");
    let log = EventLog::parse(&w.bytes(), FormatChoice::Auto).unwrap();
    assert_eq!(
        log.spec_id.algorithm_names(),
        ["sha1", "0x0099", "sha384", "sm3_256"]
    );
    assert_eq!(log.events[1].digests[1].digest.len(), 7);
    assert_eq!(log.events[2].sha384, Some(sha384(b"two")));
    let r = log.replay().unwrap();
    assert_eq!(
        r.value(Register::Rtmr1),
        Some(Digest48::replay(&[sha384(b"one"), sha384(b"two")]))
    );
    assert!(r.pcrs[0].sha256.is_none(), "no SHA-256 bank in this log");

    // An event digest whose algorithm the Spec ID event does not list.
    let mut w = LogWriter::tpm();
    w.raw_event(4, EV_EFI_ACTION, &[(0x0042, vec![1; 4])], b"x");
    let e = EventLog::parse(&w.bytes(), FormatChoice::Auto).unwrap_err();
    let EventLogError::Parse(p) = e else { panic!() };
    assert_eq!(p.field, "event[1].digests[0].algorithm_id");
    assert_eq!(p.offset, w.offsets[1] + 12);
    assert!(p.to_string().contains("0x0042"));
}

#[test]
fn no_sha384_bank_parses_but_cannot_replay() {
    let mut w = LogWriter::new(&[(SHA256, 32)]);
    w.event(4, EV_EFI_ACTION, b"x");
    let log = EventLog::parse(&w.bytes(), FormatChoice::Auto).unwrap();
    let e = log.replay().unwrap_err();
    assert!(matches!(e, EventLogError::NoSha384Bank { .. }), "{e}");
    assert!(e.to_string().contains("sha256"));

    // A log with the bank, but an event without its digest.
    let mut w = LogWriter::tpm();
    w.raw_event(4, EV_EFI_ACTION, &[(SHA256, vec![0; 32])], b"x");
    let log = EventLog::parse(&w.bytes(), FormatChoice::Tpm).unwrap();
    assert!(matches!(
        log.replay().unwrap_err(),
        EventLogError::MissingSha384 { index: 1, .. }
    ));
}

#[test]
fn malformed_headers_name_field_and_offset() {
    let w = tpm_log();
    let good = w.bytes();
    let field_at = |bytes: &[u8]| match EventLog::parse(bytes, FormatChoice::Auto) {
        Err(EventLogError::Parse(p)) => (p.field, p.offset, p.kind),
        other => panic!("{other:?}"),
    };

    // Not starting with EV_NO_ACTION.
    let mut b = good.clone();
    b[4] = 1;
    let (f, o, _) = field_at(&b);
    assert_eq!((f.as_str(), o), ("event[0].event_type", 4));

    // The SHA-1 log format.
    let mut b = good.clone();
    b[32 + 14] = b'0';
    let (f, o, k) = field_at(&b);
    assert_eq!((f.as_str(), o), ("spec_id.signature", 32));
    assert!(format!("{k:?}").contains("Event00"));

    // A wrong digest size for a known algorithm.
    let mut b = good.clone();
    b[32 + 28 + 6] = 47; // second algorithm (sha384): size 47
    let (f, o, _) = field_at(&b);
    assert_eq!(
        (f.as_str(), o),
        ("spec_id.digest_sizes[1].digest_size", 32 + 34)
    );

    // Event sizes and digest counts are capped before use.
    let ev = w.offsets[2];
    let mut b = good.clone();
    b[ev + 8..ev + 12].copy_from_slice(&1000u32.to_le_bytes());
    let (f, o, k) = field_at(&b);
    assert_eq!((f.as_str(), o), ("event[2].digests.count", ev + 8));
    assert!(matches!(k, ParseErrorKind::TooLarge { len: 1000, .. }));
    let size_at = ev + 12 + 2 + 32 + 2 + 48;
    let mut b = good.clone();
    b[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let (f, o, k) = field_at(&b);
    assert_eq!((f.as_str(), o), ("event[2].event_size", size_at));
    assert!(matches!(k, ParseErrorKind::TooLarge { .. }));
    let mut b = good.clone();
    b[ev + 8..ev + 12].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(field_at(&b).0, "event[2].digests.count");

    // A duplicated digest in one event.
    let mut w2 = LogWriter::tpm();
    w2.raw_event(
        4,
        EV_EFI_ACTION,
        &[(SHA384, vec![0; 48]), (SHA384, vec![0; 48])],
        b"x",
    );
    assert_eq!(field_at(&w2.bytes()).0, "event[1].digests[1].algorithm_id");
}

#[test]
fn truncation_at_every_offset_is_an_error_never_a_panic() {
    let mut w = tpm_log();
    w.event(11, EV_IPL, &[7; 300]);
    let bytes = w.bytes();
    let boundaries: Vec<usize> = w.offsets.iter().skip(1).copied().collect();
    for len in 0..bytes.len() {
        let cut = &bytes[..len];
        match EventLog::parse(cut, FormatChoice::Auto) {
            Ok(log) => {
                // Only a cut exactly between two events leaves a valid (shorter) log.
                assert!(boundaries.contains(&len), "cut at {len} parsed");
                assert_eq!(log.log_length, len);
                assert_eq!(
                    log.events.len(),
                    boundaries.iter().position(|&b| b == len).unwrap() + 1
                );
            }
            Err(EventLogError::Parse(p)) => {
                assert!(
                    matches!(p.kind, ParseErrorKind::Truncated { .. }),
                    "cut at {len}: {p}"
                );
                assert!(
                    p.offset <= len,
                    "cut at {len}: offset {} past the end",
                    p.offset
                );
                assert!(p.field.starts_with("event[") || p.field.starts_with("spec_id"));
            }
            Err(e) => panic!("cut at {len}: {e}"),
        }
    }
    let full = EventLog::parse(&bytes, FormatChoice::Auto).unwrap();
    assert_eq!(full.events.len(), 14);
}

#[test]
fn corrupted_bytes_never_panic() {
    // Deterministic single-byte corruptions across the whole log, in both formats.
    let mut w = tpm_log();
    w.pad(0xFF, 16);
    let bytes = w.bytes();
    let mut state = 0x9e37_79b9_u32;
    let mut parsed = 0;
    for i in 0..bytes.len() {
        for _ in 0..2 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut b = bytes.clone();
            b[i] = state as u8;
            let mut replayed = false;
            for choice in [FormatChoice::Auto, FormatChoice::Tpm, FormatChoice::Ccel] {
                if let Ok(log) = EventLog::parse(&b, choice) {
                    parsed += 1;
                    // Replay is format-independent but for the mapping; once is enough
                    // (SHA-384 in a debug build is slow).
                    if !replayed {
                        let _ = log.replay();
                        replayed = true;
                    }
                }
            }
        }
    }
    assert!(parsed > 0);
}

#[test]
fn descriptions_of_real_event_shapes() {
    let mut w = LogWriter::td();
    let mut blob = 0x820000u64.to_le_bytes().to_vec();
    blob.extend(0xe0000u64.to_le_bytes());
    let mut tag = 0x8F3B_22ECu32.to_le_bytes().to_vec();
    tag.extend(13u32.to_le_bytes());
    tag.extend(b"Linux initrd\0");
    w.event(1, EV_EFI_PLATFORM_FIRMWARE_BLOB, &blob)
        .event(3, EV_EVENT_TAG, &tag)
        .event(1, EV_SEPARATOR, &[0xff; 4])
        .event(
            2,
            EV_EFI_ACTION,
            b"Exit Boot Services Returned with Success",
        );
    let log = EventLog::parse(&w.bytes(), FormatChoice::Ccel).unwrap();
    let d: Vec<&str> = log.events.iter().map(|e| e.description.as_str()).collect();
    assert_eq!(
        d,
        [
            "Spec ID Event03 (log header: algorithms and digest sizes)",
            "firmware blob of 917504 bytes at 0x820000",
            "tag 0x8f3b22ec: \"Linux initrd\"",
            "separator ffffffff (firmware reported an error)",
            "\"Exit Boot Services Returned with Success\"",
        ]
    );
    assert_eq!(
        log.events[1].event_type_name,
        "EV_EFI_PLATFORM_FIRMWARE_BLOB"
    );
    assert_eq!(log.events[2].data_length, tag.len());
}
