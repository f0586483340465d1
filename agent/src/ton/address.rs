//! Owner address parsing. The structure checks are ours so each failure has a name;
//! the address value itself comes from tonlib-core's parser, which must agree.
#![deny(clippy::arithmetic_side_effects)]

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use tonlib_core::TonAddress;

/// Length of a user-friendly address in characters (36 bytes in base64, no padding).
const FRIENDLY_LEN: usize = 48;

/// Why an owner address is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("raw address must be WORKCHAIN:<64 hex digits>; got {0} hex digits")]
    BadRawLength(usize),
    #[error("raw address account id is not hex")]
    BadHex,
    #[error("workchain {0:?} is not a number")]
    BadWorkchainNumber(String),
    #[error("workchain {0} is neither basechain (0) nor masterchain (-1)")]
    BadWorkchain(i64),
    #[error("user-friendly address must be {FRIENDLY_LEN} characters, got {0}")]
    BadLength(usize),
    #[error("user-friendly address is not base64 or base64url")]
    BadBase64,
    #[error("unknown flag byte 0x{0:02x} (expected 0x11, 0x51, 0x91 or 0xd1)")]
    BadTag(u8),
    #[error(
        "CRC16 mismatch: computed {computed:04x}, address carries {found:04x} (mistyped address?)"
    )]
    BadCrc { computed: u16, found: u16 },
    #[error("tonlib-core rejects the address: {0}")]
    Tonlib(String),
}

/// How the address was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressForm {
    Raw,
    Base64,
    Base64Url,
}

/// A validated owner address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerAddress {
    address: TonAddress,
    form: AddressForm,
    /// User-friendly flag; raw addresses carry none and count as bounceable.
    bounceable: bool,
    /// User-friendly "test only" flag.
    testnet: bool,
}

impl OwnerAddress {
    pub fn ton_address(&self) -> &TonAddress {
        &self.address
    }

    pub fn workchain(&self) -> i32 {
        self.address.workchain
    }

    pub fn form(&self) -> AddressForm {
        self.form
    }

    pub fn is_bounceable(&self) -> bool {
        self.bounceable
    }

    /// The user-friendly form said "test only": money sent here on mainnet may be lost.
    pub fn is_testnet(&self) -> bool {
        self.testnet
    }

    /// `workchain:hex`, lower case: one spelling per account, which is what the ledger
    /// records (flags are presentation, not identity).
    pub fn raw(&self) -> String {
        self.address.to_hex()
    }

    /// base64url with the flags it was given with.
    pub fn friendly(&self) -> String {
        self.address
            .to_base64_url_flags(!self.bounceable, self.testnet)
    }
}

impl std::fmt::Display for OwnerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw())
    }
}

/// CRC-16/XMODEM (poly 0x1021, init 0, no reflection), the checksum of user-friendly
/// addresses. Written out here rather than taken from tonlib-core so the check is
/// independent of the parser that produces the value.
pub(crate) fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn check_workchain(wc: i64) -> Result<(), AddressError> {
    if wc == 0 || wc == -1 {
        Ok(())
    } else {
        Err(AddressError::BadWorkchain(wc))
    }
}

/// Parses and validates the owner's payout address.
pub fn parse_owner_address(s: &str) -> Result<OwnerAddress, AddressError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(AddressError::Empty);
    }
    if let Some((wc, hex_part)) = s.split_once(':') {
        return parse_raw(s, wc, hex_part);
    }
    parse_friendly(s)
}

fn parse_raw(s: &str, wc: &str, hex_part: &str) -> Result<OwnerAddress, AddressError> {
    let wc: i64 = wc
        .parse()
        .map_err(|_| AddressError::BadWorkchainNumber(wc.to_string()))?;
    check_workchain(wc)?;
    if hex_part.len() != 64 {
        return Err(AddressError::BadRawLength(hex_part.len()));
    }
    if !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressError::BadHex);
    }
    let address = TonAddress::from_hex_str(s).map_err(|e| AddressError::Tonlib(e.to_string()))?;
    Ok(OwnerAddress {
        address,
        form: AddressForm::Raw,
        bounceable: true,
        testnet: false,
    })
}

fn parse_friendly(s: &str) -> Result<OwnerAddress, AddressError> {
    if s.len() != FRIENDLY_LEN {
        return Err(AddressError::BadLength(s.len()));
    }
    let url = s.contains(['-', '_']);
    let std = s.contains(['+', '/']);
    let (form, bytes) = match (url, std) {
        (true, true) => return Err(AddressError::BadBase64),
        (true, false) => (AddressForm::Base64Url, URL_SAFE_NO_PAD.decode(s)),
        (false, _) => (AddressForm::Base64, STANDARD_NO_PAD.decode(s)),
    };
    let bytes: [u8; 36] = bytes
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(AddressError::BadBase64)?;
    let [tag, wc, ..] = bytes;
    let (bounceable, testnet) = match tag {
        0x11 => (true, false),
        0x51 => (false, false),
        0x91 => (true, true),
        0xd1 => (false, true),
        other => return Err(AddressError::BadTag(other)),
    };
    let (body, crc) = bytes.split_at(34);
    let found = match crc {
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        _ => return Err(AddressError::BadBase64),
    };
    let computed = crc16_xmodem(body);
    if computed != found {
        return Err(AddressError::BadCrc { computed, found });
    }
    // The workchain byte is signed (-1 = 0xff).
    check_workchain(i64::from(wc as i8))?;
    let (address, nb, test) = match form {
        AddressForm::Base64Url => TonAddress::from_base64_url_flags(s),
        _ => TonAddress::from_base64_std_flags(s),
    }
    .map_err(|e| AddressError::Tonlib(e.to_string()))?;
    if (nb, test) != (!bounceable, testnet) {
        return Err(AddressError::Tonlib("flags disagree with ours".into()));
    }
    Ok(OwnerAddress {
        address,
        form,
        bounceable,
        testnet,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// (user-friendly, raw) pairs published by others:
    /// - TON docs, "TON cookbook", "How to convert between user-friendly and raw
    ///   addresses" (docs.ton.org/v3/guidelines/dapps/cookbook);
    /// - toncenter API docs, packAddress/unpackAddress example (standard base64);
    /// - Chainstack TON API reference, packAddress/unpackAddress example;
    /// - tonlib-core 0.26.11 `src/types/address.rs` tests.
    const PAIRS: &[(&str, &str)] = &[
        (
            "EQDKbjIcfM6ezt8KjKJJLshZJJSqX7XOA4ff-W72r5gqPrHF",
            "0:ca6e321c7cce9ecedf0a8ca2492ec8592494aa5fb5ce0387dff96ef6af982a3e",
        ),
        (
            "EQApAj3rEnJJSxEjEHVKrH3QZgto/MQMOmk8l72azaXlY1zB",
            "0:29023deb1272494b112310754aac7dd0660b68fcc40c3a693c97bd9acda5e563",
        ),
        (
            "EQDtFpEwcFAEcRe5mLVh2N6C0x-_hJEM7W61_JLnSF74p4q2",
            "0:ed1691307050047117b998b561d8de82d31fbf84910ced6eb5fc92e7485ef8a7",
        ),
        (
            "EQDk2VTvn04SUKJrW7rXahzdF8_Qi6utb0wj43InCu9vdjrR",
            "0:e4d954ef9f4e1250a26b5bbad76a1cdd17cfd08babad6f4c23e372270aef6f76",
        ),
    ];

    #[test]
    fn crc16_xmodem_check_value() {
        // The CRC catalogue's check value for CRC-16/XMODEM over "123456789".
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3);
    }

    #[test]
    fn published_pairs() {
        for (friendly, raw) in PAIRS {
            let f = parse_owner_address(friendly).unwrap();
            let r = parse_owner_address(raw).unwrap();
            assert_eq!(f.ton_address(), r.ton_address(), "{friendly}");
            assert_eq!(f.raw(), *raw);
            assert_eq!(r.raw(), *raw);
            assert!(f.is_bounceable() && !f.is_testnet());
            // Re-encoding gives the published string back (url-safe alphabet).
            assert_eq!(f.friendly(), friendly.replace('/', "_").replace('+', "-"));
            assert_eq!(f.to_string(), *raw);
        }
        assert_eq!(
            parse_owner_address(PAIRS[1].0).unwrap().form(),
            AddressForm::Base64
        );
        assert_eq!(
            parse_owner_address(PAIRS[0].0).unwrap().form(),
            AddressForm::Base64Url
        );
        assert_eq!(
            parse_owner_address(PAIRS[0].1).unwrap().form(),
            AddressForm::Raw
        );
        // Upper-case hex and surrounding whitespace are accepted.
        let upper = format!("  {}\n", PAIRS[0].1.to_uppercase());
        assert_eq!(parse_owner_address(&upper).unwrap().raw(), PAIRS[0].1);
    }

    #[test]
    fn non_bounceable_and_masterchain() {
        // Non-bounceable wallet address from tonlib-core's address tests.
        let a = parse_owner_address("UQAO9JsDEbOjnb8AZRyxNHiODjVeAvgR2n03T0utYgkpx-K0").unwrap();
        assert!(!a.is_bounceable());
        assert_eq!(
            a.friendly(),
            "UQAO9JsDEbOjnb8AZRyxNHiODjVeAvgR2n03T0utYgkpx-K0"
        );
        // Masterchain raw example from Dune's TON address documentation.
        let m = parse_owner_address(
            "-1:fcb91a3a3816d0f7b8c2c76108b8a9bc5a6b7a55bd79f8ab101c52db29232260",
        )
        .unwrap();
        assert_eq!(m.workchain(), -1);
        // Its user-friendly form round-trips through our parser (workchain byte 0xff).
        let f = m.friendly();
        assert!(f.starts_with("Ef"), "{f}");
        assert_eq!(parse_owner_address(&f).unwrap().workchain(), -1);
    }

    #[test]
    fn named_errors() {
        let good = PAIRS[0].0;
        // Last character changed: the CRC no longer matches (tonlib-core's test case).
        assert!(matches!(
            parse_owner_address("EQDk2VTvn04SUKJrW7rXahzdF8_Qi6utb0wj43InCu9vdjra"),
            Err(AddressError::BadCrc { .. })
        ));
        // One account-id character changed.
        let typo = good.replacen("Kbj", "Kbk", 1);
        assert!(matches!(
            parse_owner_address(&typo),
            Err(AddressError::BadCrc { .. })
        ));
        assert_eq!(parse_owner_address(""), Err(AddressError::Empty));
        assert_eq!(
            parse_owner_address(&good[..47]),
            Err(AddressError::BadLength(47))
        );
        assert_eq!(
            parse_owner_address("EQDKbjIcfM6ezt8KjKJJLshZJJSqX7XOA4ff-W72r5gqPr/F"),
            Err(AddressError::BadBase64)
        );
        assert_eq!(
            parse_owner_address("EQDKbjIcfM6ezt8KjKJJLshZJJSqX7XOA4ff!W72r5gqPrHF"),
            Err(AddressError::BadBase64)
        );
        assert_eq!(
            parse_owner_address("0:ca6e"),
            Err(AddressError::BadRawLength(4))
        );
        assert_eq!(
            parse_owner_address(&format!("0:{}", "zz".repeat(32))),
            Err(AddressError::BadHex)
        );
        assert_eq!(
            parse_owner_address(&format!("x:{}", "00".repeat(32))),
            Err(AddressError::BadWorkchainNumber("x".into()))
        );
        assert_eq!(
            parse_owner_address(&format!("5:{}", "00".repeat(32))),
            Err(AddressError::BadWorkchain(5))
        );
        // A well-formed friendly address (valid CRC) for workchain 5.
        let mut bytes = [0u8; 36];
        bytes[0] = 0x11;
        bytes[1] = 5;
        let crc = crc16_xmodem(&bytes[..34]).to_be_bytes();
        bytes[34..].copy_from_slice(&crc);
        let wc5 = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            parse_owner_address(&wc5),
            Err(AddressError::BadWorkchain(5))
        );
        // Unknown tag byte.
        bytes[0] = 0x12;
        bytes[1] = 0;
        let crc = crc16_xmodem(&bytes[..34]).to_be_bytes();
        bytes[34..].copy_from_slice(&crc);
        assert_eq!(
            parse_owner_address(&URL_SAFE_NO_PAD.encode(bytes)),
            Err(AddressError::BadTag(0x12))
        );
    }

    #[test]
    fn testnet_flag_is_reported() {
        let a = parse_owner_address(PAIRS[0].1).unwrap();
        let t = a.ton_address().to_base64_url_flags(true, true);
        let parsed = parse_owner_address(&t).unwrap();
        assert!(parsed.is_testnet() && !parsed.is_bounceable());
        assert_eq!(parsed.raw(), PAIRS[0].1);
    }
}
