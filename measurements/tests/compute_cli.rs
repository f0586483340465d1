//! `cocoon-measure compute`: exit codes, JSON shape, errors that name field and offset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod uki_fixture;

use std::io::Write as _;

use cocoon_measurements::boot::{compute, compute_uki, BootError, ComputeInputs};
use cocoon_measurements::mrtd::{MrtdError, PageOrder};
use serde_json::Value;
use uki_fixture::UkiSpec;

fn write(img: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(img).unwrap();
    f.flush().unwrap();
    f
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = common::cocoon_measure().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn json_without_firmware_is_the_rtmr_prediction() {
    let f = write(&UkiSpec::default().build());
    let path = f.path().to_str().unwrap();
    let (code, stdout, _) = run(&["compute", "--uki", path, "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let lib = compute_uki(f.path()).unwrap();
    assert_eq!(v["rtmr1"], lib.rtmr1.to_hex());
    assert_eq!(v["rtmr2"], lib.rtmr2.to_hex());
    assert_eq!(v["flavor"], "tdx");
    assert_eq!(v["stub_version"], "257.13");
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), lib.events.len());
    assert_eq!(
        events[0]["event_type_name"],
        "EV_EFI_BOOT_SERVICES_APPLICATION"
    );
    assert_eq!(events[0]["register"], "rtmr1");
    assert!(events
        .iter()
        .all(|e| !e["source"].as_str().unwrap().is_empty()));
}

#[test]
fn text_lists_every_event_and_says_why_no_rtmr0() {
    let f = write(&UkiSpec::default().build());
    let (code, stdout, _) = run(&["compute", "--uki", f.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    let lib = compute_uki(f.path()).unwrap();
    assert!(
        stdout.contains(&format!("RTMR1  {}", lib.rtmr1)),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("RTMR2  {}", lib.rtmr2)));
    assert!(stdout.contains("RTMR0  RTMR0 not computed"));
    assert!(stdout.contains("MRTD   not computed"));
    for e in &lib.events {
        assert!(
            stdout.contains(&e.digest.to_hex()),
            "missing {}",
            e.description
        );
    }
}

#[test]
fn tpm_flavor_has_five_separators() {
    let f = write(&UkiSpec::default().build());
    let path = f.path().to_str().unwrap();
    let (code, stdout, _) = run(&["compute", "--uki", path, "--flavor", "tpm", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let seps = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type_name"] == "EV_SEPARATOR")
        .count();
    assert_eq!(seps, 5);
    // A TPM log has no MRTD: refuse the combination instead of mixing flavours.
    let (code, _, stderr) = run(&[
        "compute",
        "--uki",
        path,
        "--flavor",
        "tpm",
        "--firmware",
        path,
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn bad_uki_exits_2_naming_field_and_offset() {
    let mut img = UkiSpec::default().build();
    img[uki_fixture::E_LFANEW] = b'Q';
    let f = write(&img);
    let path = f.path().to_str().unwrap();
    let (code, stdout, stderr) = run(&["compute", "--uki", path]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("PE signature at byte offset 128"),
        "{stderr}"
    );

    let (code, stdout, _) = run(&["compute", "--uki", path, "--json"]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["error"].as_str().unwrap().contains("byte offset 128"),
        "{v}"
    );

    // Truncated in the section table.
    let f = write(&UkiSpec::default().build()[..0x1a0]);
    let (code, _, stderr) = run(&["compute", "--uki", f.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("PE section header") && stderr.contains("truncated"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&["compute", "--uki", "/nonexistent/uki.efi"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/uki.efi"), "{stderr}");
}

#[test]
fn garbage_firmware_exits_2() {
    let uki = write(&UkiSpec::default().build());
    let fw = write(&[0u8; 4096]);
    let (code, stdout, stderr) = run(&[
        "compute",
        "--uki",
        uki.path().to_str().unwrap(),
        "--firmware",
        fw.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("MRTD"), "{stderr}");
}

/// `compute` = MRTD + the UKI prediction: a firmware without TDVF metadata is an MRTD
/// error even when the UKI is fine.
#[test]
fn compute_combines_mrtd_and_the_uki_prediction() {
    let uki = write(&UkiSpec::default().build());
    let fw = write(&[0u8; 4096]);
    let inputs = ComputeInputs {
        firmware: fw.path().to_path_buf(),
        uki: uki.path().to_path_buf(),
        acpi: vec![],
        page_order: PageOrder::PageByPage,
        flavor: Default::default(),
    };
    match compute(&inputs) {
        Err(BootError::Mrtd(MrtdError::Tdvf(_))) => {} // 4 KiB of zeros is no TDVF image
        other => panic!("{other:?}"),
    }
    // With a bad UKI the UKI error wins over anything MRTD says.
    let bad = write(b"not a PE");
    let e = compute(&ComputeInputs {
        uki: bad.path().to_path_buf(),
        ..inputs.clone()
    })
    .unwrap_err();
    assert!(matches!(e, BootError::Uki { .. }), "{e:?}");
}
