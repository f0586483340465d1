//! Typed views of the TD report's 64-bit attribute words.
//!
//! Bit assignments: Intel TDX Module ABI Specification (348551), table "TD
//! Attributes Definition" (TDATTRIBUTES), and the XSAVE feature numbering of the
//! Intel SDM vol. 1, section 13.1 (XFAM uses the XCR0/IA32_XSS bit layout).

use serde::{Serialize, Serializer};

/// A named bit of an attribute word.
struct Bit {
    bit: u32,
    name: &'static str,
}

/// TDATTRIBUTES bits with a name in the TDX Module ABI specification. Bits 0-7 are
/// the TUD ("TD under debug") group: any of them set means the host can observe or
/// perturb the TD, so its attestation proves nothing about confidentiality.
const TD_ATTRIBUTE_BITS: &[Bit] = &[
    Bit {
        bit: 0,
        name: "DEBUG",
    },
    Bit {
        bit: 4,
        name: "HGS_PLUS_PROF",
    },
    Bit {
        bit: 5,
        name: "PERF_PROF",
    },
    Bit {
        bit: 6,
        name: "PMT_PROF",
    },
    Bit {
        bit: 16,
        name: "ICSSD",
    },
    Bit {
        bit: 17,
        name: "SERVTD_EXT",
    },
    Bit {
        bit: 27,
        name: "LASS",
    },
    Bit {
        bit: 28,
        name: "SEPT_VE_DISABLE",
    },
    Bit {
        bit: 29,
        name: "MIGRATABLE",
    },
    Bit {
        bit: 30,
        name: "PKS",
    },
    Bit {
        bit: 31,
        name: "KL",
    },
    Bit {
        bit: 62,
        name: "TPA",
    },
    Bit {
        bit: 63,
        name: "PERFMON",
    },
];

/// Bits the TDX 1.5 ABI reserves as must-be-zero in TDATTRIBUTES (ABI spec
/// 348551-008, table 3.23): 1-3, 7-15, 23-26 and 32-61.
pub const TD_ATTRIBUTES_RESERVED_MASK: u64 = 0x3FFF_FFFF_0780_FF8E;

/// The TUD group (bits 0-7): debug and profiling controls of the host over the TD.
pub const TD_ATTRIBUTES_TUD_MASK: u64 = 0xFF;

/// TDATTRIBUTES of a TD report, kept as the raw 64-bit word with named accessors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TdAttributes(pub u64);

impl TdAttributes {
    pub const DEBUG: u64 = 1 << 0;
    pub const SEPT_VE_DISABLE: u64 = 1 << 28;
    pub const MIGRATABLE: u64 = 1 << 29;
    pub const PKS: u64 = 1 << 30;
    pub const KL: u64 = 1 << 31;
    pub const PERFMON: u64 = 1 << 63;

    pub fn from_le_bytes(b: [u8; 8]) -> Self {
        Self(u64::from_le_bytes(b))
    }

    fn is_set(self, mask: u64) -> bool {
        self.0 & mask != 0
    }

    /// DEBUG (bit 0): the host VMM can read and write the TD's state and memory.
    pub fn debug(self) -> bool {
        self.is_set(Self::DEBUG)
    }

    /// TUD bits other than DEBUG (profiling controls and reserved TUD bits).
    pub fn tud_other(self) -> u64 {
        self.0 & TD_ATTRIBUTES_TUD_MASK & !Self::DEBUG
    }

    /// SEPT_VE_DISABLE (bit 28): EPT violations on pending pages do not become #VE,
    /// which closes a host-induced #VE channel into the guest.
    pub fn sept_ve_disable(self) -> bool {
        self.is_set(Self::SEPT_VE_DISABLE)
    }

    pub fn migratable(self) -> bool {
        self.is_set(Self::MIGRATABLE)
    }

    pub fn pks(self) -> bool {
        self.is_set(Self::PKS)
    }

    pub fn kl(self) -> bool {
        self.is_set(Self::KL)
    }

    pub fn perfmon(self) -> bool {
        self.is_set(Self::PERFMON)
    }

    /// Set bits the ABI reserves as must-be-zero.
    pub fn reserved_bits(self) -> u64 {
        self.0 & TD_ATTRIBUTES_RESERVED_MASK
    }

    /// Names of the set bits, in bit order; unnamed bits as `bitN`.
    pub fn set_names(self) -> Vec<String> {
        (0u32..64)
            .filter(|b| self.0 & (1u64 << b) != 0)
            .map(|b| match TD_ATTRIBUTE_BITS.iter().find(|x| x.bit == b) {
                Some(x) => x.name.to_string(),
                None => format!("bit{b}"),
            })
            .collect()
    }
}

impl Serialize for TdAttributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TdAttributesView {
            value: format!("{:#018x}", self.0),
            debug: self.debug(),
            sept_ve_disable: self.sept_ve_disable(),
            migratable: self.migratable(),
            pks: self.pks(),
            kl: self.kl(),
            perfmon: self.perfmon(),
            set: self.set_names(),
            reserved_bits_set: self.reserved_bits() != 0,
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct TdAttributesView {
    value: String,
    debug: bool,
    sept_ve_disable: bool,
    migratable: bool,
    pks: bool,
    kl: bool,
    perfmon: bool,
    set: Vec<String>,
    reserved_bits_set: bool,
}

/// XSAVE feature components (Intel SDM vol. 1, 13.1) that XFAM may enable.
const XFAM_BITS: &[Bit] = &[
    Bit {
        bit: 0,
        name: "X87",
    },
    Bit {
        bit: 1,
        name: "SSE",
    },
    Bit {
        bit: 2,
        name: "AVX",
    },
    Bit {
        bit: 3,
        name: "MPX_BNDREGS",
    },
    Bit {
        bit: 4,
        name: "MPX_BNDCSR",
    },
    Bit {
        bit: 5,
        name: "AVX512_OPMASK",
    },
    Bit {
        bit: 6,
        name: "AVX512_ZMM_HI256",
    },
    Bit {
        bit: 7,
        name: "AVX512_HI16_ZMM",
    },
    Bit { bit: 8, name: "PT" },
    Bit {
        bit: 9,
        name: "PKRU",
    },
    Bit {
        bit: 10,
        name: "PASID",
    },
    Bit {
        bit: 11,
        name: "CET_U",
    },
    Bit {
        bit: 12,
        name: "CET_S",
    },
    Bit {
        bit: 13,
        name: "HDC",
    },
    Bit {
        bit: 14,
        name: "UINTR",
    },
    Bit {
        bit: 15,
        name: "LBR",
    },
    Bit {
        bit: 16,
        name: "HWP",
    },
    Bit {
        bit: 17,
        name: "AMX_TILECFG",
    },
    Bit {
        bit: 18,
        name: "AMX_TILEDATA",
    },
];

/// XFAM: the extended CPU state components the TD may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Xfam(pub u64);

impl Xfam {
    pub fn from_le_bytes(b: [u8; 8]) -> Self {
        Self(u64::from_le_bytes(b))
    }

    pub fn set_names(self) -> Vec<String> {
        (0u32..64)
            .filter(|b| self.0 & (1u64 << b) != 0)
            .map(|b| match XFAM_BITS.iter().find(|x| x.bit == b) {
                Some(x) => x.name.to_string(),
                None => format!("bit{b}"),
            })
            .collect()
    }
}

impl Serialize for Xfam {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View {
            value: String,
            set: Vec<String>,
        }
        View {
            value: format!("{:#018x}", self.0),
            set: self.set_names(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_mask_matches_abi_ranges() {
        let mut m = 0u64;
        for b in (1..=3).chain(7..=15).chain(23..=26).chain(32..=61) {
            m |= 1u64 << b;
        }
        assert_eq!(m, TD_ATTRIBUTES_RESERVED_MASK);
        for b in TD_ATTRIBUTE_BITS {
            assert_eq!(
                TD_ATTRIBUTES_RESERVED_MASK & (1u64 << b.bit),
                0,
                "{}",
                b.name
            );
        }
    }

    #[test]
    fn names_bits() {
        let a = TdAttributes(TdAttributes::DEBUG | TdAttributes::SEPT_VE_DISABLE | 1 << 40);
        assert!(a.debug());
        assert!(a.sept_ve_disable());
        assert!(!a.perfmon());
        assert_eq!(a.set_names(), ["DEBUG", "SEPT_VE_DISABLE", "bit40"]);
        assert_ne!(a.reserved_bits(), 0);
        assert_eq!(Xfam(0xe7).set_names()[..3], ["X87", "SSE", "AVX"]);
    }
}
