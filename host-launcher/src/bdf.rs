//! PCI addresses (`domain:bus:device.function`, the form sysfs uses for
//! `/sys/bus/pci/devices/*`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A PCI address in the canonical sysfs form `DDDD:BB:DD.F` (lower-case hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    pub domain: u16,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

/// Why a string is not a PCI address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a PCI address: {reason} (expected DDDD:BB:DD.F, e.g. 0000:17:00.0)")]
pub struct BdfError {
    pub input: String,
    pub reason: &'static str,
}

impl Bdf {
    /// The same device's function `f` (functions share an IOMMU group legitimately).
    pub fn same_device(&self, other: &Bdf) -> bool {
        self.domain == other.domain && self.bus == other.bus && self.device == other.device
    }
}

impl FromStr for Bdf {
    type Err = BdfError;

    /// Accepts `DDDD:BB:DD.F` and the short `BB:DD.F` (domain 0), as `lspci` prints it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| BdfError {
            input: s.to_string(),
            reason,
        };
        let (head, function) = s.rsplit_once('.').ok_or_else(|| err("no `.function`"))?;
        let parts: Vec<&str> = head.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [d, b, v] => (*d, *b, *v),
            [b, v] => ("0000", *b, *v),
            _ => return Err(err("expected two or three `:`-separated fields")),
        };
        let hex = |t: &str, max_len: usize| -> Option<u32> {
            if t.is_empty() || t.len() > max_len || !t.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(t, 16).ok()
        };
        let domain = hex(domain, 4).ok_or_else(|| err("bad domain"))?;
        let bus = hex(bus, 2).ok_or_else(|| err("bad bus"))?;
        let device = hex(device, 2)
            .filter(|d| *d < 32)
            .ok_or_else(|| err("bad device (0-1f)"))?;
        let function = hex(function, 1)
            .filter(|f| *f < 8)
            .ok_or_else(|| err("bad function (0-7)"))?;
        Ok(Bdf {
            domain: u16::try_from(domain).map_err(|_| err("bad domain"))?,
            bus: u8::try_from(bus).map_err(|_| err("bad bus"))?,
            device: u8::try_from(device).map_err(|_| err("bad device"))?,
            function: u8::try_from(function).map_err(|_| err("bad function"))?,
        })
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl Serialize for Bdf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bdf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_long_and_short_forms() {
        let b: Bdf = "0000:17:00.0".parse().unwrap();
        assert_eq!(b.to_string(), "0000:17:00.0");
        let s: Bdf = "3B:1F.7".parse().unwrap();
        assert_eq!(s.to_string(), "0000:3b:1f.7");
        assert!(b.same_device(&"0000:17:00.1".parse().unwrap()));
        assert!(!b.same_device(&"0000:18:00.0".parse().unwrap()));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "17:00",
            "0000:17:20.0",
            "0000:17:00.8",
            "x:17:00.0",
            "00000:17:00.0",
            "1:2:3:4.0",
        ] {
            assert!(bad.parse::<Bdf>().is_err(), "{bad}");
        }
    }
}
