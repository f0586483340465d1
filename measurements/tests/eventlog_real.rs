//! The real TPM event log of a UKI boot under QEMU + swtpm
//! (`tests/fixtures/swtpm-uki-boot/`, provenance in its README), checked against the
//! guest's own PCR values, an independent replay and `tpm2_eventlog`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use cocoon_measurements::event::event_type::*;
use cocoon_measurements::eventlog::{EventLog, FormatChoice, LogFormat, Trailing};
use cocoon_measurements::{Digest48, Register};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/swtpm-uki-boot")
        .join(name)
}

fn log() -> EventLog {
    let bytes = std::fs::read(fixture("eventlog.bin")).unwrap();
    EventLog::parse(&bytes, FormatChoice::Auto).unwrap()
}

/// The register values replayed by a separate script (Python hashlib over the
/// SHA-384 digests `tpm2_eventlog` printed for the log, PCR 1+7 / 2-6 / 8-15).
const RTMR0: &str = "c329aedd31f73904fd8ca506ab8198802278325cef76661159607660dbbb4b0da142a7bc67d7ba8c405d346cbcd9a1fd";
const RTMR1: &str = "78ecd62bca52cf50bd5b04eae4dc90be4bf3864cbef5e4334ed597c29105ee3d341284ccdf0a5498a9796f41eb1bbdcb";
const RTMR2: &str = "5f8c1956e9e836ba58b76e5291b9db74511bfc296d8224fff57f6a2b50f1b636e76a1a950817550e4916f9502822f11d";

#[test]
fn events_in_the_order_measured_boot_md_lists() {
    let log = log();
    assert_eq!(log.format, LogFormat::Tpm);
    assert_eq!(log.trailing, Trailing::None);
    assert_eq!(log.log_length, 5137);
    assert_eq!(log.events.len(), 42);
    assert_eq!(log.spec_id.algorithm_names(), ["sha256", "sha384"]);

    let mut want: Vec<(u32, u32)> = vec![(0, EV_NO_ACTION), (0, EV_S_CRTM_VERSION)];
    want.extend([(0, EV_EFI_PLATFORM_FIRMWARE_BLOB); 2]);
    want.extend([(7, EV_EFI_VARIABLE_DRIVER_CONFIG); 5]);
    want.push((7, EV_SEPARATOR));
    want.extend([(1, EV_PLATFORM_CONFIG_FLAGS); 4]);
    // No EV_EFI_BOOT_SERVICES_DRIVER (option ROM): booted with -net none.
    want.push((4, EV_EFI_BOOT_SERVICES_APPLICATION));
    want.extend([(1, EV_EFI_VARIABLE_BOOT); 2]);
    want.push((4, EV_EFI_ACTION));
    want.extend((0..=6).map(|pcr| (pcr, EV_SEPARATOR)));
    want.extend([(11, EV_IPL); 12]);
    want.push((4, EV_EFI_BOOT_SERVICES_APPLICATION));
    want.extend([(9, EV_EVENT_TAG); 2]);
    want.extend([(5, EV_EFI_ACTION); 2]);
    let got: Vec<(u32, u32)> = log.events.iter().map(|e| (e.index, e.event_type)).collect();
    assert_eq!(got, want);

    let desc = |i: usize| log.events[i].description.as_str();
    assert_eq!(desc(1), "\"2025.02-8+deb13u1\"");
    assert!(desc(4).starts_with("SecureBoot (EFI global variable)"));
    assert!(desc(8).starts_with("dbx (image security database)"));
    assert!(
        desc(14).contains("image of 14246912 bytes"),
        "the UKI: {}",
        desc(14)
    );
    assert!(desc(15).contains("BootOrder"));
    assert_eq!(desc(17), "\"Calling EFI Application from Boot Option\"");
    assert_eq!(desc(38), "tag 0x8f3b22ed: \"LOADED_IMAGE::LoadOptions\"");
    assert_eq!(desc(39), "tag 0x8f3b22ec: \"Linux initrd\"");
    assert_eq!(desc(41), "\"Exit Boot Services Returned with Success\"");

    // PCR 11: a (name, contents) pair per UKI section, in systemd-stub's order; the
    // first of each pair measures the name with its NUL.
    let sections = [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"];
    for (k, name) in sections.iter().enumerate() {
        let first = &log.events[25 + 2 * k];
        assert_eq!(first.description, format!("{name:?}"));
        let mut with_nul = name.as_bytes().to_vec();
        with_nul.push(0);
        assert_eq!(first.sha384, Some(Digest48::sha384(&with_nul)), "{name}");
        assert_eq!(log.events[26 + 2 * k].description, format!("{name:?}"));
    }
    // Events whose digest is the hash of their own data.
    for i in [17, 18, 19, 20, 21, 22, 23, 24, 40, 41] {
        let e = &log.events[i];
        assert_eq!(e.sha384, Some(Digest48::sha384(&e.data)), "event {i}");
    }
}

#[test]
fn rtmr_values_equal_an_independent_replay() {
    let log = log();
    let r = log.replay().unwrap();
    let hex = |v: Option<Digest48>| v.map(|d| d.to_hex()).unwrap_or_default();
    assert_eq!(hex(r.value(Register::Rtmr0)), RTMR0);
    assert_eq!(hex(r.value(Register::Rtmr1)), RTMR1);
    assert_eq!(hex(r.value(Register::Rtmr2)), RTMR2);
    assert_eq!(r.value(Register::Rtmr3), Some(Digest48::ZERO));
    let counts: Vec<usize> = r.registers.iter().map(|x| x.events).collect();
    assert_eq!(counts, [4, 13, 10, 14, 0]);

    // And the replay of the parsed digests, register by register.
    for reg in [Register::Rtmr0, Register::Rtmr1, Register::Rtmr2] {
        let digests: Vec<Digest48> = log.events_of(reg).map(|e| e.sha384.unwrap()).collect();
        assert_eq!(r.value(reg), Some(Digest48::replay(&digests)));
    }
    assert_eq!(r.events.len(), 41);
    assert_eq!(r.not_replayed.len(), 1);
    assert_eq!(r.startup_locality, None);
}

/// The guest's `/sys/class/tpm/tpm0/pcr-sha384/N`, as read at boot.
fn guest_pcrs() -> BTreeMap<u32, Digest48> {
    std::fs::read_to_string(fixture("pcr-sha384.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace().skip(1);
            let pcr: u32 = f.next().unwrap().parse().unwrap();
            (pcr, f.next().unwrap().to_lowercase().parse().unwrap())
        })
        .collect()
}

#[test]
fn pcr_values_equal_the_guests_own() {
    let r = log().replay().unwrap();
    let guest = guest_pcrs();
    assert_eq!(guest.len(), 16);
    for (pcr, value) in &guest {
        match r.pcr(*pcr) {
            Some(v) => assert_eq!(v, *value, "PCR {pcr}"),
            // PCR 10 is IMA's (the kernel extends it after boot; its log is elsewhere);
            // the others the firmware log leaves untouched are zero.
            None if *pcr == 10 => assert_ne!(*value, Digest48::ZERO),
            None => assert_eq!(*value, Digest48::ZERO, "PCR {pcr}"),
        }
    }
    let replayed: Vec<u32> = r.pcrs.iter().map(|p| p.pcr).collect();
    assert_eq!(replayed, [0, 1, 2, 3, 4, 5, 6, 7, 9, 11]);
}

/// `pcrs:` of tpm2_eventlog's YAML: bank -> PCR -> hex value.
fn tpm2_eventlog_pcrs(yaml: &str) -> BTreeMap<String, BTreeMap<u32, String>> {
    let mut out: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
    let mut bank = None;
    let mut in_pcrs = false;
    for line in yaml.lines() {
        if line.starts_with("pcrs:") {
            in_pcrs = true;
            continue;
        }
        if !in_pcrs {
            continue;
        }
        let t = line.trim();
        if let Some(b) = t.strip_suffix(':') {
            bank = Some(b.to_string());
        } else if let (Some(b), Some((pcr, v))) = (&bank, t.split_once(':')) {
            out.entry(b.clone()).or_default().insert(
                pcr.trim().parse().unwrap(),
                v.trim().trim_start_matches("0x").to_string(),
            );
        }
    }
    out
}

/// tpm2_eventlog (tpm2-tools 5.4) on this log, recorded when the fixture was made:
/// the SHA-256 bank, which the guest values do not cover.
const TPM2_EVENTLOG_SHA256: [(u32, &str); 10] = [
    (
        0,
        "0101271704ccc2360ddbb08438d591c23fb8a0a9cb0cebc60cefea7868833f8e",
    ),
    (
        1,
        "86ee8a423deb032c2c3ae0f404ca27609e2ce6d40cf4b399280d85a13e0d730b",
    ),
    (
        2,
        "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
    ),
    (
        3,
        "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
    ),
    (
        4,
        "dfdd45bab6eae395212bfd6333c527df017b2d3633160e6d342b3aa82e4ba104",
    ),
    (
        5,
        "a5ceb755d043f32431d63e39f5161464620a3437280494b5850dc1b47cc074e0",
    ),
    (
        6,
        "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969",
    ),
    (
        7,
        "b5710bf57d25623e4019027da116821fa99f5c81e9e38b87671cc574f9281439",
    ),
    (
        9,
        "4e967aeb3844e351f7cec16e712ec90a5685cffbac12761cf2f5ee9c985659e7",
    ),
    (
        11,
        "4528a7869c1540ba825f564abcf9ba188c13ab245e6b56d385819be832a4136d",
    ),
];

#[test]
fn tpm2_eventlog_agrees_on_both_banks() {
    let r = log().replay().unwrap();
    let ours_256: BTreeMap<u32, String> = r
        .pcrs
        .iter()
        .map(|p| (p.pcr, p.sha256.clone().unwrap()))
        .collect();
    let ours_384: BTreeMap<u32, String> =
        r.pcrs.iter().map(|p| (p.pcr, p.sha384.to_hex())).collect();
    let recorded: BTreeMap<u32, String> = TPM2_EVENTLOG_SHA256
        .iter()
        .map(|(p, v)| (*p, v.to_string()))
        .collect();
    assert_eq!(ours_256, recorded);

    // Run the tool itself when it is installed (Debian: tpm2-tools).
    let out = std::process::Command::new("tpm2_eventlog")
        .arg(fixture("eventlog.bin"))
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let yaml = String::from_utf8(o.stdout).unwrap();
            let banks = tpm2_eventlog_pcrs(&yaml);
            assert_eq!(banks["sha256"], ours_256);
            assert_eq!(banks["sha384"], ours_384);
            assert_eq!(yaml.matches("- EventNum:").count(), 42);
        }
        Ok(o) => panic!(
            "tpm2_eventlog failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("tpm2_eventlog not run ({e}); compared with its recorded output"),
    }
}

#[test]
fn forced_ccel_reading_of_a_tpm_log_is_refused() {
    let bytes = std::fs::read(fixture("eventlog.bin")).unwrap();
    let e = EventLog::parse(&bytes, FormatChoice::Ccel).unwrap_err();
    assert!(e.to_string().contains("index 7"), "{e}");
}

#[test]
fn every_truncation_of_the_real_log_fails_cleanly() {
    let bytes = std::fs::read(fixture("eventlog.bin")).unwrap();
    let full = EventLog::parse(&bytes, FormatChoice::Auto).unwrap();
    let boundaries: Vec<usize> = full.events.iter().skip(1).map(|e| e.offset).collect();
    for len in 0..bytes.len() {
        match EventLog::parse(&bytes[..len], FormatChoice::Tpm) {
            Ok(log) => assert!(boundaries.contains(&len) && log.log_length == len, "{len}"),
            Err(e) => assert!(e.to_string().contains("byte offset"), "{len}: {e}"),
        }
    }
}
