//! `cocoon-measure gpu verify --policy` on NVIDIA's real Hopper evidence: allowed
//! versions, CC mode, required RIMs and OCSP, pinned RIM files, nonce binding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod gpu_common;

use gpu_common::{chain, codes, indices, pem_blocks, policy_file, rim, write, Args};

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
    let base = Args::real().policy(&pol);
    let (code, j) = base.clone().cc_mode("on").verify();
    assert_eq!(code, 0, "{j:#}");
    let (code, j) = base.clone().cc_mode("devtools").verify();
    assert_eq!(
        (code, codes(&j)),
        (1, vec!["dev_tools_enabled".to_string()])
    );
    let (code, j) = base.clone().cc_mode("off").verify();
    assert_eq!((code, codes(&j)), (1, vec!["cc_mode_off".to_string()]));
    let (code, j) = base.verify();
    assert_eq!((code, codes(&j)), (1, vec!["cc_mode_unknown".to_string()]));
}

#[test]
fn policy_rejections_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults: nothing allowed, both RIMs required, OCSP required.
    let pol = policy_file(&dir, "nonce_binding = \"caller\"\n");
    let (code, j) = Args::real().policy(&pol).cc_mode("on").verify();
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
    let (code, j) = Args::real().no_nonce().policy(&pol).cc_mode("on").verify();
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
    let (code, j) = Args::real().policy(&pol).cc_mode("on").verify();
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
    let (code, j) = Args::real().policy(&pol).verify();
    assert_eq!(code, 2);
    assert!(j["error"].as_str().unwrap().contains("--tls-spki"), "{j:#}");
    // A TLS key whose derived nonce is not the report's: rejected as a mismatch.
    let spki = write(&dir, "key.der", x509_spki_of_leaf());
    let (code, j) = Args::real().tls_spki(&spki).policy(&pol).verify();
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
