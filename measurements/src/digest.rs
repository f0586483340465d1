//! SHA-384 digests and TDX measurement registers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha384};

/// A SHA-384 digest or register value (48 bytes), shown as 96 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest48(pub [u8; 48]);

impl Digest48 {
    pub const ZERO: Digest48 = Digest48([0u8; 48]);

    /// SHA-384 of `data`.
    pub fn sha384(data: &[u8]) -> Self {
        Self(Sha384::digest(data).into())
    }

    pub fn as_bytes(&self) -> &[u8; 48] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `self = SHA384(self || digest)`: how TDH.MR.EXTEND-style RTMR extension and
    /// TPM PCR extension (SHA-384 bank) fold an event digest into a register.
    pub fn extend(&mut self, digest: &Digest48) {
        let mut h = Sha384::new();
        h.update(self.0);
        h.update(digest.0);
        self.0 = h.finalize().into();
    }

    /// The register value after extending 48 zero bytes with each digest in order.
    pub fn replay<'a>(digests: impl IntoIterator<Item = &'a Digest48>) -> Digest48 {
        let mut r = Digest48::ZERO;
        for d in digests {
            r.extend(d);
        }
        r
    }
}

impl From<[u8; 48]> for Digest48 {
    fn from(b: [u8; 48]) -> Self {
        Self(b)
    }
}

impl fmt::Display for Digest48 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest48 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest48({})", self.to_hex())
    }
}

/// Error from parsing a digest written as hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 96 hex digits (a SHA-384 value), got {0}")]
pub struct DigestParseError(String);

impl FromStr for Digest48 {
    type Err = DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(s).map_err(|e| DigestParseError(format!("{s:?} ({e})")))?;
        let arr: [u8; 48] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| DigestParseError(format!("{} bytes", b.len())))?;
        Ok(Self(arr))
    }
}

impl Serialize for Digest48 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest48 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The TDX measurement registers a quote reports.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Register {
    /// Build-time measurement of the initial TD memory (firmware), by the TDX module.
    Mrtd,
    /// Firmware configuration: TD HOB / ACPI tables, Secure Boot variables (PCR 1, 7).
    Rtmr0,
    /// OS loader and boot path: EFI applications, boot variables, ExitBootServices (PCR 2-6).
    Rtmr1,
    /// OS: what systemd-stub and the kernel measure (PCR 8-15).
    Rtmr2,
    /// Runtime: measured by the guest at run time (the agent's events).
    Rtmr3,
}

impl Register {
    pub const ALL: [Register; 5] = [
        Register::Mrtd,
        Register::Rtmr0,
        Register::Rtmr1,
        Register::Rtmr2,
        Register::Rtmr3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Register::Mrtd => "mrtd",
            Register::Rtmr0 => "rtmr0",
            Register::Rtmr1 => "rtmr1",
            Register::Rtmr2 => "rtmr2",
            Register::Rtmr3 => "rtmr3",
        }
    }

    /// The register a TPM PCR maps to in a TD (UEFI spec, "Confidential Computing"
    /// measurement protocol; TDVF design guide): PCR 0 -> MRTD, 1 and 7 -> RTMR0,
    /// 2-6 -> RTMR1, 8-15 -> RTMR2. Other PCRs have no RTMR.
    pub fn from_pcr(pcr: u32) -> Option<Register> {
        match pcr {
            0 => Some(Register::Mrtd),
            1 | 7 => Some(Register::Rtmr0),
            2..=6 => Some(Register::Rtmr1),
            8..=15 => Some(Register::Rtmr2),
            _ => None,
        }
    }

    /// The register a CC measurement-register index names in a CCEL log
    /// (`EFI_CC_EVENT.MrIndex`): 0 = MRTD, 1-4 = RTMR0-3.
    pub fn from_cc_mr_index(index: u32) -> Option<Register> {
        match index {
            0 => Some(Register::Mrtd),
            1 => Some(Register::Rtmr0),
            2 => Some(Register::Rtmr1),
            3 => Some(Register::Rtmr2),
            4 => Some(Register::Rtmr3),
            _ => None,
        }
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Register {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Register::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown register {s:?} (expected mrtd or rtmr0..rtmr3)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_matches_definition() {
        let d = Digest48::sha384(b"x");
        let mut r = Digest48::ZERO;
        r.extend(&d);
        let mut cat = vec![0u8; 48];
        cat.extend_from_slice(&d.0);
        assert_eq!(r, Digest48::sha384(&cat));
        assert_eq!(Digest48::replay([&d]), r);
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let d = Digest48::sha384(b"abc");
        assert_eq!(d.to_hex().parse::<Digest48>().unwrap(), d);
        assert!("abcd".parse::<Digest48>().is_err());
        assert!("zz".repeat(48).parse::<Digest48>().is_err());
    }

    #[test]
    fn pcr_mapping() {
        assert_eq!(Register::from_pcr(0), Some(Register::Mrtd));
        assert_eq!(Register::from_pcr(7), Some(Register::Rtmr0));
        assert_eq!(Register::from_pcr(4), Some(Register::Rtmr1));
        assert_eq!(Register::from_pcr(11), Some(Register::Rtmr2));
        assert_eq!(Register::from_pcr(16), None);
    }
}
