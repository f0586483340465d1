//! `cocoon-measure gpu verify` on NVIDIA's real Hopper evidence: exit codes, JSON,
//! one stable reason code per failed check. The `--policy` tests are in
//! `gpu_cli_policy.rs`; the shared helpers in `gpu_common/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod gpu_common;

use serde_json::Value;

use gpu_common::{
    chain, codes, indices, nv, p, pem_blocks, report, rim, verify, write, Args, AT, NONCE,
};

#[test]
fn real_report_verifies_at_a_fixed_time() {
    let (code, j) = Args::real().verify();
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["verdict"], "accepted");
    assert_eq!(j["reasons"], serde_json::json!([]));
    assert_eq!(j["driver_version"], "550.90.07");
    assert_eq!(j["vbios_version"], "96.00.9F.00.01");
    assert_eq!(j["nonce"], NONCE);
    assert_eq!(j["measurement_blocks"], 64);
    assert_eq!(j["project"], "1010");
    assert_eq!(j["project_sku"], "0200");
    assert_eq!(j["chip_sku"], "882");
}

#[test]
fn rim_signature_verifies_and_comparison_lists_indices() {
    let (code, j) = Args::real().rim(rim()).verify();
    // The RIM is for VBIOS 96.00.5E.00.01, the report's VBIOS is 96.00.9F.00.01:
    // real data that must be rejected, with the signature itself valid.
    assert_eq!(code, 1, "{j:#}");
    assert_eq!(j["rim"]["files"][0]["signature_valid"], true);
    assert_eq!(j["rim"]["files"][0]["kind"], "vbios");
    assert_eq!(j["rim"]["files"][0]["version"], "96.00.5E.00.01");
    assert_eq!(indices(&j["rim"]["matched"]), [0, 3, 4, 5, 6, 8, 10, 12]);
    assert_eq!(indices(&j["rim"]["mismatched"]), [1, 2, 9, 11]);
    let c = codes(&j);
    assert_eq!(
        c.iter()
            .filter(|c| *c == "rim_measurement_mismatch")
            .count(),
        4,
        "{c:?}"
    );
    assert!(c.contains(&"rim_version_mismatch".to_string()), "{c:?}");
    assert!(
        !c.iter().any(|c| c.starts_with("rim_cert_")
            || c == "rim_digest_mismatch"
            || c == "rim_signature_invalid"),
        "{c:?}"
    );
}

#[test]
fn evidence_json_of_another_gpu_verifies_with_its_own_chain() {
    let (code, j) = verify(&["--evidence-json", nv("hopper_evidence.json"), "--at", AT]);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["driver_version"], "590.12");
    assert_eq!(j["vbios_version"], "96.00.A5.00.01");
    // The JSON's report and chain also work through --report/--chain.
    let (code, _) = Args::real()
        .report(nv("hopper_evidence.json"))
        .chain(nv("hopper_evidence.json"))
        .no_nonce()
        .verify();
    assert_eq!(code, 0);
}

#[test]
fn flipped_signature_byte_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = hex::decode(std::fs::read_to_string(report()).unwrap().trim()).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    // Raw bytes this time: the input form does not matter.
    let bad = write(&dir, "report.bin", &bytes);
    let (code, j) = Args::real().report(&bad).verify();
    assert_eq!(code, 1);
    assert_eq!(codes(&j), ["report_signature_invalid"], "{j:#}");
}

#[test]
fn wrong_nonce_is_rejected() {
    let wrong = "00".repeat(32);
    let (code, j) = Args::real().nonce(&wrong).verify();
    assert_eq!(code, 1);
    assert_eq!(codes(&j), ["nonce_mismatch"], "{j:#}");
}

#[test]
fn another_gpus_chain_is_rejected() {
    let (code, j) = Args::real().chain(nv("hopper_evidence.json")).verify();
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(c.contains(&"report_signature_invalid".into()), "{c:?}");
    assert!(c.contains(&"fwid_mismatch".into()), "{c:?}");
}

#[test]
fn chain_with_one_certificate_swapped_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ours = pem_blocks(&std::fs::read_to_string(chain()).unwrap());
    let json: Value =
        serde_json::from_slice(&std::fs::read(nv("hopper_evidence.json")).unwrap()).unwrap();
    use base64::Engine as _;
    let theirs_pem = base64::engine::general_purpose::STANDARD
        .decode(json[0]["certificate"].as_str().unwrap())
        .unwrap();
    let theirs = pem_blocks(std::str::from_utf8(&theirs_pem).unwrap());
    assert_eq!((ours.len(), theirs.len()), (5, 5));
    // Swap the BROM certificate (position 1; the ICAs above it are shared by
    // every GH100) for the other GPU's.
    let mut swapped = ours.clone();
    swapped[1] = theirs[1].clone();
    assert_ne!(swapped[1], ours[1]);
    let path = write(&dir, "swapped.pem", swapped.concat());
    let (code, j) = Args::real().chain(&path).verify();
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(
        c.contains(&"device_cert_signature_invalid".into())
            || c.contains(&"device_cert_issuer_mismatch".into()),
        "{c:?}"
    );
    assert!(!c.contains(&"report_signature_invalid".into()), "{c:?}");
}

#[test]
fn truncated_chains_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let ours = pem_blocks(&std::fs::read_to_string(chain()).unwrap());
    // Without the BROM certificate the leaf's issuer is missing from the path.
    let mut no_middle = ours.clone();
    no_middle.remove(1);
    let path = write(&dir, "no_middle.pem", no_middle.concat());
    let (code, j) = Args::real().chain(&path).verify();
    assert_eq!(code, 1);
    assert!(
        codes(&j).contains(&"device_cert_issuer_mismatch".into()),
        "{j:#}"
    );
    assert!(
        codes(&j).contains(&"device_cert_signature_invalid".into()),
        "{j:#}"
    );
    // Only the leaf: the root cannot have issued it.
    let path = write(&dir, "leaf_only.pem", &ours[0]);
    let (code, j) = Args::real().chain(&path).verify();
    assert_eq!(code, 1);
    assert!(
        codes(&j).contains(&"device_cert_issuer_mismatch".into()),
        "{j:#}"
    );
}

#[test]
fn edited_golden_value_breaks_both_the_comparison_and_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(rim()).unwrap();
    // Index 3 matches the report; change its golden hash.
    let golden = "73bbf35822549e28ba8fb2671fb7b58f46424a0069205b3ecf1d0fa762adef90b538cc9d692eb5c050147f2f1e8214ab";
    assert_eq!(text.matches(golden).count(), 1);
    let edited = text.replace(golden, &golden.replacen('7', "8", 1));
    let path = write(&dir, "edited.swidtag", edited);
    let (code, j) = Args::real().rim(&path).verify();
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(c.contains(&"rim_digest_mismatch".into()), "{c:?}");
    assert!(indices(&j["rim"]["mismatched"]).contains(&3), "{j:#}");
    assert!(
        j["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "rim_measurement_mismatch"
                && r["message"].as_str().unwrap().contains("index 3 ")),
        "{j:#}"
    );
    assert_eq!(j["rim"]["files"][0]["signature_valid"], false);
}

#[test]
fn rim_signature_value_that_does_not_verify_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(rim()).unwrap();
    let edited = text.replacen("<ds:SignatureValue>s5JY", "<ds:SignatureValue>t5JY", 1);
    assert_ne!(edited, text);
    let path = write(&dir, "badsig.swidtag", edited);
    let (code, j) = Args::real().rim(&path).no_nonce().verify();
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(c.contains(&"rim_signature_invalid".into()), "{c:?}");
    // The signed content is intact: only the signature value is wrong.
    assert!(!c.contains(&"rim_digest_mismatch".into()), "{c:?}");
}

#[test]
fn times_outside_the_certificate_windows_are_rejected() {
    // 2025-06-23T00:00:00Z: the RIM signer expired on 2025-06-22.
    let (code, j) = Args::real().rim(rim()).no_nonce().at("1750636800").verify();
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(c.contains(&"rim_cert_expired".into()), "{c:?}");
    assert!(!c.iter().any(|c| c.starts_with("device_cert_")), "{c:?}");
    // 2022-01-01T00:00:00Z: the provisioner ICA is valid from 2022-03-01.
    let (code, j) = Args::real().no_nonce().at("1640995200").verify();
    assert_eq!(code, 1);
    assert_eq!(
        codes(&j),
        ["device_cert_not_yet_valid", "device_cert_not_yet_valid"],
        "{j:#}"
    );
}

#[test]
fn malformed_inputs_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let hex_text = std::fs::read_to_string(report()).unwrap();
    let truncated = write(&dir, "short.txt", &hex_text.trim()[..2000]);
    let garbage = write(&dir, "garbage.bin", b"\x30\x82\xff\xff junk");
    let not_xml = write(&dir, "rim.xml", b"<SoftwareIdentity");
    let bad_json = write(&dir, "e.json", b"[{\"evidence\": 1}]");
    // Each with `--at AT` and no nonce.
    let cases: [(Vec<String>, &str); 4] = [
        (
            Args::real().report(&truncated).no_nonce().to_vec(),
            "byte offset",
        ),
        (
            Args::real().chain(&garbage).no_nonce().to_vec(),
            "certificate",
        ),
        (Args::real().rim(&not_xml).no_nonce().to_vec(), "RIM"),
        (
            ["--evidence-json", p(&bad_json), "--at", AT]
                .map(String::from)
                .to_vec(),
            "evidence JSON",
        ),
    ];
    for (args, needle) in cases {
        let (code, j) = verify(&args);
        assert_eq!(code, 2, "{args:?}: {j:#}");
        let msg = j["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{args:?}: {msg}");
    }
}

#[test]
fn the_same_rim_twice_is_a_conflict() {
    let (code, j) = Args::real().rim(rim()).rim(rim()).no_nonce().verify();
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(c.contains(&"rim_kind_duplicate".into()), "{c:?}");
    assert_eq!(
        c.iter().filter(|c| *c == "rim_index_conflict").count(),
        12,
        "{c:?}"
    );
}

#[test]
fn inspect_prints_the_parsed_report() {
    let out = common::cocoon_measure()
        .args(["--json", "gpu", "inspect", "--report", report()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["length"], 4117);
    assert_eq!(j["blocks"].as_array().unwrap().len(), 64);
    assert_eq!(j["request"]["nonce"], NONCE);
}

#[test]
fn any_alternative_may_match() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(rim()).unwrap();
    let golden_1 = "c3f65ef79a19c029868cd7ce54b10e44f192444edb3506dde29cef2aac4e916c90a4f438e55aa7581a9e384c74d82db6";
    // Report block 2, which RIM index 1 is compared with.
    let block_2 = "8048dfd18fe229bf16eb9d30cca0f11a24dafe6eb731de1462984645a0b189b77c4e4e17de727a5e19e3d07de51da338";
    let old = format!("alternatives=\"1\" ns2:Hash0=\"{golden_1}\"");
    assert_eq!(text.matches(&old).count(), 1);
    let edited = text.replace(
        &old,
        &format!("alternatives=\"2\" ns2:Hash0=\"{golden_1}\" ns2:Hash1=\"{block_2}\""),
    );
    let path = write(&dir, "alt.swidtag", edited);
    let (code, j) = Args::real().rim(&path).no_nonce().verify();
    assert_eq!(code, 1);
    assert_eq!(indices(&j["rim"]["matched"]), [0, 1, 3, 4, 5, 6, 8, 10, 12]);
    assert_eq!(indices(&j["rim"]["mismatched"]), [2, 9, 11]);
    // The edit is outside what NVIDIA signed.
    assert!(codes(&j).contains(&"rim_digest_mismatch".into()));
    // An alternatives count that disagrees with the hash attributes is malformed.
    let bad = text.replace(
        &old,
        &format!("alternatives=\"2\" ns2:Hash0=\"{golden_1}\""),
    );
    let path = write(&dir, "bad.swidtag", bad);
    let (code, j) = Args::real().rim(&path).no_nonce().verify();
    assert_eq!(code, 2);
    assert!(
        j["error"].as_str().unwrap().contains("alternatives"),
        "{j:#}"
    );
}
