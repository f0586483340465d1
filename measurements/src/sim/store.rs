//! Saving a simulated platform to a directory and loading it back, so a guest agent
//! (which quotes) and a host verifier (which only trusts the root) can share one PKI.
//!
//! Layout, fixed names (see [`files`]):
//! - verifier side: `root_ca.der` (trust anchor), `root_ca.pem` (same, for humans and
//!   OpenSSL), `collateral.json` (dcap-qvl `QuoteCollateralV3` serde JSON);
//! - agent side: `pck_chain.pem`, `platform.json` and, under `private/` (mode 0600 on
//!   Unix), `pck_key.pem` and `attestation_key.pem` (PKCS#8).
//!
//! A verifier needs only the first group; it never reads `private/`.

use std::path::{Path, PathBuf};

use der::Decode as _;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};

use super::der_util::{pem, pem_blocks};
use super::{QuoteCollateralV3, SimError, SimPki, SimPlatform};

/// File names inside a saved simulation directory.
pub mod files {
    pub const ROOT_CA_DER: &str = "root_ca.der";
    pub const ROOT_CA_PEM: &str = "root_ca.pem";
    pub const COLLATERAL_JSON: &str = "collateral.json";
    pub const PCK_CHAIN_PEM: &str = "pck_chain.pem";
    pub const PLATFORM_JSON: &str = "platform.json";
    pub const PRIVATE_DIR: &str = "private";
    pub const PCK_KEY_PEM: &str = "private/pck_key.pem";
    pub const ATTESTATION_KEY_PEM: &str = "private/attestation_key.pem";
}

/// What a verifier of simulated quotes needs: the root to trust and the collateral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierMaterial {
    pub root_ca_der: Vec<u8>,
    pub collateral: QuoteCollateralV3,
}

/// Load `root_ca.der` and `collateral.json` from a directory written by [`SimPki::save`].
pub fn load_verifier_material(dir: &Path) -> Result<VerifierMaterial, SimError> {
    Ok(VerifierMaterial {
        root_ca_der: read(&dir.join(files::ROOT_CA_DER))?,
        collateral: read_json(&dir.join(files::COLLATERAL_JSON))?,
    })
}

impl SimPki {
    /// Write the PKI to `dir` (created if missing); see the module docs for the layout.
    pub fn save(&self, dir: &Path) -> Result<(), SimError> {
        let private = dir.join(files::PRIVATE_DIR);
        std::fs::create_dir_all(&private).map_err(|source| SimError::Io {
            path: private.clone(),
            source,
        })?;
        write(&dir.join(files::ROOT_CA_DER), &self.root_ca_der, false)?;
        write(
            &dir.join(files::ROOT_CA_PEM),
            pem("CERTIFICATE", &self.root_ca_der).as_bytes(),
            false,
        )?;
        write(
            &dir.join(files::COLLATERAL_JSON),
            self.collateral_json()?.as_bytes(),
            false,
        )?;
        write(
            &dir.join(files::PCK_CHAIN_PEM),
            self.pck_chain_pem.as_bytes(),
            false,
        )?;
        let platform =
            serde_json::to_string_pretty(&self.platform).map_err(|source| SimError::Json {
                what: "platform",
                source,
            })?;
        write(&dir.join(files::PLATFORM_JSON), platform.as_bytes(), false)?;
        write_key(&dir.join(files::PCK_KEY_PEM), &self.pck_key)?;
        write_key(&dir.join(files::ATTESTATION_KEY_PEM), &self.attestation_key)?;
        Ok(())
    }

    /// Load a PKI written by [`SimPki::save`], checking that the pieces belong together
    /// (chain ends in the root, PCK key matches the PCK leaf).
    pub fn load(dir: &Path) -> Result<Self, SimError> {
        let VerifierMaterial {
            root_ca_der,
            collateral,
        } = load_verifier_material(dir)?;
        let chain_path = dir.join(files::PCK_CHAIN_PEM);
        let pck_chain_pem = read_string(&chain_path)?;
        let chain =
            pem_blocks(&pck_chain_pem, "CERTIFICATE").map_err(|why| malformed(&chain_path, why))?;
        let (Some(leaf), Some(last)) = (chain.first(), chain.last()) else {
            return Err(malformed(&chain_path, "no certificate"));
        };
        if chain.len() < 2 || *last != root_ca_der {
            return Err(malformed(
                &chain_path,
                format!("chain does not end in {}", files::ROOT_CA_DER),
            ));
        }
        let platform: SimPlatform = read_json(&dir.join(files::PLATFORM_JSON))?;
        let pck_key = read_key(&dir.join(files::PCK_KEY_PEM))?;
        let attestation_key = read_key(&dir.join(files::ATTESTATION_KEY_PEM))?;

        let leaf_cert =
            x509_cert::Certificate::from_der(leaf).map_err(|e| malformed(&chain_path, e))?;
        let leaf_key = leaf_cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        if leaf_key != pck_key.verifying_key().to_encoded_point(false).as_bytes() {
            return Err(malformed(
                &dir.join(files::PCK_KEY_PEM),
                "key does not match the PCK leaf certificate",
            ));
        }
        Ok(SimPki {
            platform,
            root_ca_der,
            pck_chain_pem,
            collateral,
            pck_key,
            attestation_key,
        })
    }
}

fn malformed(path: &Path, why: impl ToString) -> SimError {
    SimError::Malformed {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError {
    let path: PathBuf = path.to_path_buf();
    move |source| SimError::Io { path, source }
}

fn read(path: &Path) -> Result<Vec<u8>, SimError> {
    std::fs::read(path).map_err(io_err(path))
}

fn read_string(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SimError> {
    serde_json::from_str(&read_string(path)?).map_err(|e| malformed(path, e))
}

fn read_key(path: &Path) -> Result<SigningKey, SimError> {
    SigningKey::from_pkcs8_pem(&read_string(path)?).map_err(|e| malformed(path, e))
}

fn write_key(path: &Path, key: &SigningKey) -> Result<(), SimError> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| malformed(path, e))?;
    write(path, pem.as_bytes(), true)
}

fn write(path: &Path, bytes: &[u8], private: bool) -> Result<(), SimError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))
}
