//! Small encoding and signing helpers shared by the simulated PKI.

use std::time::Duration;

use base64::Engine as _;
use der::asn1::{GeneralizedTime, UtcTime};
use der::{DateTime, Encode};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, Signature, SigningKey};
use x509_cert::time::Time;

use super::{derive_hash, SimError};

/// A P-256 key derived from the seed. A hash is a valid scalar except with probability
/// about 2^-32, so a few retries with a counter always suffice in practice.
pub(super) fn derive_key(seed: &[u8; 32], label: &'static str) -> Result<SigningKey, SimError> {
    for counter in 0u8..8 {
        let h = derive_hash(seed, label, counter);
        if let Ok(key) = SigningKey::from_bytes(&h.into()) {
            return Ok(key);
        }
    }
    Err(SimError::KeyDerivation(label))
}

/// ECDSA-SHA256 signature as DER `Ecdsa-Sig-Value` (X.509 certificates and CRLs).
pub(super) fn sign_der(
    key: &SigningKey,
    msg: &[u8],
    what: &'static str,
) -> Result<Vec<u8>, SimError> {
    let sig: DerSignature = key.try_sign(msg).map_err(|e| SimError::Sign {
        what,
        why: e.to_string(),
    })?;
    Ok(sig.as_bytes().to_vec())
}

/// ECDSA-SHA256 signature as raw `r || s` (64 bytes): the form quotes and Intel's
/// collateral JSON signatures use.
pub(super) fn sign_raw(
    key: &SigningKey,
    msg: &[u8],
    what: &'static str,
) -> Result<Vec<u8>, SimError> {
    let sig: Signature = key.try_sign(msg).map_err(|e| SimError::Sign {
        what,
        why: e.to_string(),
    })?;
    Ok(sig.to_bytes().to_vec())
}

/// Uncompressed public point without the SEC1 0x04 prefix (x || y, 64 bytes): the
/// attestation key format of the quote (`ecdsa_attestation_key`).
pub(super) fn raw_public_key(key: &SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_encoded_point(false)
        .as_bytes()
        .iter()
        .skip(1)
        .copied()
        .collect()
}

fn date_time(secs: u64) -> Result<DateTime, SimError> {
    DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|source| SimError::Time { secs, source })
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub(super) fn x509_time(secs: u64) -> Result<Time, SimError> {
    let dt = date_time(secs)?;
    if dt.year() <= UtcTime::MAX_YEAR {
        UtcTime::from_date_time(dt)
            .map(Time::UtcTime)
            .map_err(|source| SimError::Time { secs, source })
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// RFC 3339 UTC timestamp as Intel's PCS writes `issueDate` / `nextUpdate` / `tcbDate`.
pub(super) fn rfc3339(secs: u64) -> Result<String, SimError> {
    let dt = date_time(secs)?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minutes(),
        dt.seconds()
    ))
}

pub(super) fn to_der<T: Encode>(value: &T, what: &'static str) -> Result<Vec<u8>, SimError> {
    value
        .to_der()
        .map_err(|source| SimError::Der { what, source })
}

/// PEM armour (RFC 7468): base64 in 64-character lines.
pub(super) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER bodies of every `label` block in a PEM text, in order.
pub(super) fn pem_blocks(text: &str, label: &str) -> Result<Vec<Vec<u8>>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line == begin {
            if body.is_some() {
                return Err(format!("nested {begin}"));
            }
            body = Some(String::new());
        } else if line == end {
            let b64 = body.take().ok_or_else(|| format!("{end} without BEGIN"))?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("bad base64 in {label} block {}: {e}", blocks.len()))?;
            blocks.push(der);
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    if body.is_some() {
        return Err(format!("unterminated {label} block"));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_750_000_000).unwrap(), "2025-06-15T15:06:40Z");
        assert_eq!(rfc3339(2_556_057_600).unwrap(), "2050-12-31T00:00:00Z");
    }

    #[test]
    fn x509_time_switches_to_generalized_in_2050() {
        assert!(matches!(
            x509_time(2_524_607_999).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            x509_time(2_524_608_000).unwrap(),
            Time::GeneralTime(_)
        ));
    }

    #[test]
    fn pem_round_trip_and_errors() {
        let a: Vec<u8> = (0u8..=200).collect();
        let text = format!("{}{}", pem("CERTIFICATE", &a), pem("CERTIFICATE", b"x"));
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(
            pem_blocks(&text, "CERTIFICATE").unwrap(),
            vec![a, b"x".to_vec()]
        );
        assert!(pem_blocks("-----BEGIN CERTIFICATE-----\nAAAA\n", "CERTIFICATE").is_err());
        assert!(pem_blocks(
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
            "CERTIFICATE"
        )
        .is_err());
    }
}
