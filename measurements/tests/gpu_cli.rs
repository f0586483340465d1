//! `cocoon-measure gpu verify` on NVIDIA's real Hopper evidence: exit codes, JSON,
//! one stable reason code per failed check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// 2025-01-01T00:00:00Z: inside the device chain (2022-03-01..9999) and the RIM
/// chain (2023-06-23..2025-06-22) windows.
const AT: &str = "1735689600";
const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

/// A shared test vector's path (leaked: tests build argument lists from it).
fn nv(name: &str) -> &'static str {
    let path = common::testdata(&format!("nvidia/{name}"));
    Box::leak(path.to_str().unwrap().to_string().into_boxed_str())
}

fn report() -> &'static str {
    nv("hopperAttestationReport.txt")
}
fn chain() -> &'static str {
    nv("hopperCertChain.txt")
}
fn rim() -> &'static str {
    nv("1010_0200_882_96005E0001_PROD.swidtag")
}

/// Run `cocoon-measure --json gpu verify ARGS`; return (exit code, JSON).
fn verify(args: &[&str]) -> (i32, Value) {
    let out = common::cocoon_measure()
        .args(["--json", "gpu", "verify"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"));
    (out.status.code().unwrap(), json)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn codes(json: &Value) -> Vec<String> {
    json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

fn indices(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn pem_blocks(text: &str) -> Vec<String> {
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b.trim().to_string() + "\n")
        .collect()
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn real_report_verifies_at_a_fixed_time() {
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--rim",
        rim(),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
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
    let (code, _) = verify(&[
        "--report",
        nv("hopper_evidence.json"),
        "--chain",
        nv("hopper_evidence.json"),
        "--at",
        AT,
    ]);
    assert_eq!(code, 0);
}

#[test]
fn flipped_signature_byte_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = hex::decode(std::fs::read_to_string(report()).unwrap().trim()).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    // Raw bytes this time: the input form does not matter.
    let bad = write(&dir, "report.bin", &bytes);
    let (code, j) = verify(&[
        "--report",
        p(&bad),
        "--chain",
        chain(),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
    assert_eq!(code, 1);
    assert_eq!(codes(&j), ["report_signature_invalid"], "{j:#}");
}

#[test]
fn wrong_nonce_is_rejected() {
    let wrong = "00".repeat(32);
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--nonce",
        &wrong,
        "--at",
        AT,
    ]);
    assert_eq!(code, 1);
    assert_eq!(codes(&j), ["nonce_mismatch"], "{j:#}");
}

#[test]
fn another_gpus_chain_is_rejected() {
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        nv("hopper_evidence.json"),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        p(&path),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        p(&path),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        p(&path),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--rim",
        p(&path),
        "--nonce",
        NONCE,
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--rim",
        p(&path),
        "--at",
        AT,
    ]);
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(c.contains(&"rim_signature_invalid".into()), "{c:?}");
    // The signed content is intact: only the signature value is wrong.
    assert!(!c.contains(&"rim_digest_mismatch".into()), "{c:?}");
}

#[test]
fn times_outside_the_certificate_windows_are_rejected() {
    // 2025-06-23T00:00:00Z: the RIM signer expired on 2025-06-22.
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--rim",
        rim(),
        "--at",
        "1750636800",
    ]);
    assert_eq!(code, 1);
    let c = codes(&j);
    assert!(c.contains(&"rim_cert_expired".into()), "{c:?}");
    assert!(!c.iter().any(|c| c.starts_with("device_cert_")), "{c:?}");
    // 2022-01-01T00:00:00Z: the provisioner ICA is valid from 2022-03-01.
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--at",
        "1640995200",
    ]);
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
    let cases: [(&[&str], &str); 4] = [
        (
            &["--report", p(&truncated), "--chain", chain()],
            "byte offset",
        ),
        (
            &["--report", report(), "--chain", p(&garbage)],
            "certificate",
        ),
        (
            &[
                "--report",
                report(),
                "--chain",
                chain(),
                "--rim",
                p(&not_xml),
            ],
            "RIM",
        ),
        (&["--evidence-json", p(&bad_json)], "evidence JSON"),
    ];
    for (args, needle) in cases {
        let mut all = args.to_vec();
        all.extend(["--at", AT]);
        let (code, j) = verify(&all);
        assert_eq!(code, 2, "{args:?}: {j:#}");
        let msg = j["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{args:?}: {msg}");
    }
}

fn policy_file(dir: &tempfile::TempDir, gpu_table: &str) -> PathBuf {
    write(
        dir,
        "policy.toml",
        format!("[tdx]\nowned_elsewhere = true\n\n[gpu]\n{gpu_table}"),
    )
}

const LENIENT: &str = r#"allowed_driver_versions = ["550.90.07"]
allowed_vbios_versions = ["96.00.9f.00.01"]
require_driver_rim = false
require_vbios_rim = false
allow_missing_ocsp = true
nonce_binding = "caller"
"#;

#[test]
fn policy_accepts_listed_versions_in_cc_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pol = policy_file(&dir, LENIENT);
    let base = [
        "--report",
        report(),
        "--chain",
        chain(),
        "--nonce",
        NONCE,
        "--at",
        AT,
        "--policy",
        p(&pol),
    ];
    let (code, j) = verify(&[&base[..], &["--cc-mode", "on"]].concat());
    assert_eq!(code, 0, "{j:#}");
    let (code, j) = verify(&[&base[..], &["--cc-mode", "devtools"]].concat());
    assert_eq!(
        (code, codes(&j)),
        (1, vec!["dev_tools_enabled".to_string()])
    );
    let (code, j) = verify(&[&base[..], &["--cc-mode", "off"]].concat());
    assert_eq!((code, codes(&j)), (1, vec!["cc_mode_off".to_string()]));
    let (code, j) = verify(&base);
    assert_eq!((code, codes(&j)), (1, vec!["cc_mode_unknown".to_string()]));
}

#[test]
fn policy_rejections_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults: nothing allowed, both RIMs required, OCSP required.
    let pol = policy_file(&dir, "nonce_binding = \"caller\"\n");
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--nonce",
        NONCE,
        "--at",
        AT,
        "--policy",
        p(&pol),
        "--cc-mode",
        "on",
    ]);
    assert_eq!(code, 1);
    let c = codes(&j);
    for want in [
        "driver_version_not_allowed",
        "vbios_version_not_allowed",
        "rim_missing_driver",
        "rim_missing_vbios",
        "ocsp_missing",
    ] {
        assert!(c.contains(&want.to_string()), "{want} not in {c:?}");
    }
    // No nonce at all under a policy.
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--at",
        AT,
        "--policy",
        p(&pol),
        "--cc-mode",
        "on",
    ]);
    assert_eq!(code, 1);
    assert!(codes(&j).contains(&"nonce_not_supplied".into()));
}

#[test]
fn policy_pins_rim_files_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let rim_copy = write(&dir, "vbios.swidtag", std::fs::read(rim()).unwrap());
    let _ = rim_copy;
    let pol = policy_file(
        &dir,
        &format!(
            "{LENIENT}\n[[gpu.rims]]\npath = \"vbios.swidtag\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        ),
    );
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--nonce",
        NONCE,
        "--at",
        AT,
        "--policy",
        p(&pol),
        "--cc-mode",
        "on",
    ]);
    assert_eq!(code, 1);
    assert!(
        codes(&j).contains(&"rim_file_hash_mismatch".into()),
        "{j:#}"
    );
    assert_eq!(indices(&j["rim"]["matched"]), [0, 3, 4, 5, 6, 8, 10, 12]);
}

#[test]
fn policy_nonce_binding_decides_which_nonce_flag_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let pol = policy_file(&dir, "allow_missing_ocsp = true\n");
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--nonce",
        NONCE,
        "--at",
        AT,
        "--policy",
        p(&pol),
    ]);
    assert_eq!(code, 2);
    assert!(j["error"].as_str().unwrap().contains("--tls-spki"), "{j:#}");
    // A TLS key whose derived nonce is not the report's: rejected as a mismatch.
    let spki = write(&dir, "key.der", x509_spki_of_leaf());
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--tls-spki",
        p(&spki),
        "--at",
        AT,
        "--policy",
        p(&pol),
    ]);
    assert_eq!(code, 1);
    assert!(codes(&j).contains(&"nonce_mismatch".into()), "{j:#}");
}

fn x509_spki_of_leaf() -> Vec<u8> {
    use der::{Decode, Encode};
    let pem = pem_blocks(&std::fs::read_to_string(chain()).unwrap()).remove(0);
    let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
    x509_cert::Certificate::from_der(&der)
        .unwrap()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

#[test]
fn the_same_rim_twice_is_a_conflict() {
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--rim",
        rim(),
        "--rim",
        rim(),
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--rim",
        p(&path),
        "--at",
        AT,
    ]);
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
    let (code, j) = verify(&[
        "--report",
        report(),
        "--chain",
        chain(),
        "--rim",
        p(&path),
        "--at",
        AT,
    ]);
    assert_eq!(code, 2);
    assert!(
        j["error"].as_str().unwrap().contains("alternatives"),
        "{j:#}"
    );
}
