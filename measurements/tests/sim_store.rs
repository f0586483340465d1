//! Saving and loading a simulated platform; the collateral JSON format.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;

use cocoon_measurements::sim::{files, load_verifier_material, SimError, SimPki};
use cocoon_measurements::Digest48;
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;

const NOT_BEFORE: u64 = 1_750_000_000;
const NOT_AFTER: u64 = NOT_BEFORE + 30 * 86_400;
const NOW: u64 = NOT_BEFORE + 86_400;

fn pki(seed: u8) -> SimPki {
    SimPki::from_seed([seed; 32], NOT_BEFORE, NOT_AFTER).unwrap()
}

#[test]
fn save_load_round_trip_quotes_verify() {
    let original = pki(9);
    let dir = tempfile::tempdir().unwrap();
    original.save(dir.path()).unwrap();

    for name in [
        files::ROOT_CA_DER,
        files::ROOT_CA_PEM,
        files::COLLATERAL_JSON,
        files::PCK_CHAIN_PEM,
        files::PLATFORM_JSON,
        files::PCK_KEY_PEM,
        files::ATTESTATION_KEY_PEM,
    ] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(files::PCK_KEY_PEM))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }

    // Agent side: the loaded platform quotes.
    let agent = SimPki::load(dir.path()).unwrap();
    let mut td = agent.td_fields();
    td.mr_td = Digest48([0xab; 48]);
    td.report_data = [7; 64];
    let quote = agent.quote(&td).unwrap();
    // Same keys and RFC 6979 nonces: the same bytes as before saving.
    assert_eq!(quote, original.quote(&td).unwrap());

    // Verifier side: only the public files.
    let material = load_verifier_material(dir.path()).unwrap();
    assert_eq!(material.root_ca_der, original.root_ca_der());
    assert_eq!(&material.collateral, original.collateral());
    let report = QuoteVerifier::new(material.root_ca_der)
        .verify(&quote, &material.collateral, NOW)
        .unwrap();
    assert_eq!(report.status, "UpToDate");
    assert_eq!(report.report.as_td10().unwrap().mr_td, [0xab; 48]);
}

#[test]
fn verifier_needs_no_private_files() {
    let pki = pki(9);
    let dir = tempfile::tempdir().unwrap();
    pki.save(dir.path()).unwrap();
    std::fs::remove_dir_all(dir.path().join(files::PRIVATE_DIR)).unwrap();
    let material = load_verifier_material(dir.path()).unwrap();
    let quote = pki.quote(&pki.td_fields()).unwrap();
    QuoteVerifier::new(material.root_ca_der)
        .verify(&quote, &material.collateral, NOW)
        .unwrap();
    // The agent side cannot load without its keys.
    let err = SimPki::load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, SimError::Io { path, .. } if path.ends_with("pck_key.pem")),
        "{err}"
    );
}

#[test]
fn load_rejects_a_foreign_pck_key() {
    let dir = tempfile::tempdir().unwrap();
    pki(9).save(dir.path()).unwrap();
    let other = tempfile::tempdir().unwrap();
    pki(10).save(other.path()).unwrap();
    std::fs::copy(
        other.path().join(files::PCK_KEY_PEM),
        dir.path().join(files::PCK_KEY_PEM),
    )
    .unwrap();
    let err = SimPki::load(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("key does not match the PCK leaf certificate"),
        "{err}"
    );
}

#[test]
fn load_rejects_a_chain_from_another_root() {
    let dir = tempfile::tempdir().unwrap();
    pki(9).save(dir.path()).unwrap();
    let other = tempfile::tempdir().unwrap();
    pki(10).save(other.path()).unwrap();
    std::fs::copy(
        other.path().join(files::ROOT_CA_DER),
        dir.path().join(files::ROOT_CA_DER),
    )
    .unwrap();
    let err = SimPki::load(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("chain does not end in root_ca.der"),
        "{err}"
    );
}

fn json_keys(v: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn collateral_json_has_the_pccs_dump_format() {
    let pki = pki(9);
    let ours: serde_json::Value = serde_json::from_str(&pki.collateral_json().unwrap()).unwrap();
    let real: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::testdata("tdx/tdx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json_keys(&ours), json_keys(&real));
    // Byte fields are hex strings, as in the real dump.
    let crl = ours["root_ca_crl"].as_str().unwrap();
    assert_eq!(hex::decode(crl).unwrap(), pki.collateral().root_ca_crl);
    let back: QuoteCollateralV3 = serde_json::from_value(ours).unwrap();
    assert_eq!(&back, pki.collateral());

    // The signed objects have the same members as Intel's.
    let tcb: serde_json::Value = serde_json::from_str(&pki.collateral().tcb_info).unwrap();
    let real_tcb: serde_json::Value =
        serde_json::from_str(real["tcb_info"].as_str().unwrap()).unwrap();
    assert_eq!(json_keys(&tcb), json_keys(&real_tcb));
    assert_eq!(tcb["id"], "TDX");
    assert_eq!(tcb["version"], 3);
    assert_eq!(tcb["issueDate"], "2025-06-15T15:06:40Z");
    assert_eq!(tcb["nextUpdate"], "2025-07-15T15:06:40Z");
    let qe: serde_json::Value = serde_json::from_str(&pki.collateral().qe_identity).unwrap();
    let real_qe: serde_json::Value =
        serde_json::from_str(real["qe_identity"].as_str().unwrap()).unwrap();
    assert_eq!(json_keys(&qe), json_keys(&real_qe));
    assert_eq!(qe["id"], "TD_QE");
    assert_eq!(qe["version"], 2);
}

#[test]
fn root_pem_matches_der() {
    let pki = pki(9);
    let dir = tempfile::tempdir().unwrap();
    pki.save(dir.path()).unwrap();
    let pem = std::fs::read_to_string(dir.path().join(files::ROOT_CA_PEM)).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    assert_eq!(der, pki.root_ca_der());
    assert_eq!(pem_cert_count(dir.path(), files::PCK_CHAIN_PEM), 3);
    assert_eq!(pem_cert_count(dir.path(), files::ROOT_CA_PEM), 1);
}

fn pem_cert_count(dir: &Path, name: &str) -> usize {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    text.matches("-----BEGIN CERTIFICATE-----").count()
}
