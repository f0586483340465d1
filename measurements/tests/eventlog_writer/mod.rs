//! A small encoder of TCG2 crypto-agile logs (TCG PC Client Platform Firmware
//! Profile §10.2), so tests can build logs event by event.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use cocoon_measurements::event::event_type::EV_NO_ACTION;
use cocoon_measurements::Digest48;
use sha2::{Digest as _, Sha256, Sha384};

pub const SHA256: u16 = 0x000B;
pub const SHA384: u16 = 0x000C;

/// The digest a writer logs for `alg` over `data`: the real hash for SHA-256 and
/// SHA-384, a recognisable fill for others (their value is never checked).
pub fn digest_for(alg: u16, size: u16, data: &[u8]) -> Vec<u8> {
    match alg {
        SHA256 => Sha256::digest(data).to_vec(),
        SHA384 => Sha384::digest(data).to_vec(),
        _ => vec![0xA5; usize::from(size)],
    }
}

pub fn sha384(data: &[u8]) -> Digest48 {
    Digest48::sha384(data)
}

pub struct LogWriter {
    pub buf: Vec<u8>,
    pub algs: Vec<(u16, u16)>,
    /// Byte offset of each event written, the header first.
    pub offsets: Vec<usize>,
}

impl LogWriter {
    /// A log whose Spec ID event lists `algs` (id, digest size).
    pub fn new(algs: &[(u16, u16)]) -> Self {
        let mut spec = Vec::new();
        spec.extend_from_slice(b"Spec ID Event03\0");
        spec.extend(0u32.to_le_bytes()); // platform class
        spec.extend([0, 2, 0, 2]); // minor, major, errata, uintn size
        spec.extend(u32::try_from(algs.len()).unwrap().to_le_bytes());
        for (id, size) in algs {
            spec.extend(id.to_le_bytes());
            spec.extend(size.to_le_bytes());
        }
        spec.push(0); // vendor info size
        let mut buf = Vec::new();
        buf.extend(0u32.to_le_bytes());
        buf.extend(EV_NO_ACTION.to_le_bytes());
        buf.extend([0u8; 20]);
        buf.extend(u32::try_from(spec.len()).unwrap().to_le_bytes());
        buf.extend(spec);
        Self {
            buf,
            algs: algs.to_vec(),
            offsets: vec![0],
        }
    }

    /// The banks of a typical TPM log: SHA-256 and SHA-384.
    pub fn tpm() -> Self {
        Self::new(&[(SHA256, 32), (SHA384, 48)])
    }

    /// A TD log: SHA-384 only (edk2 TdTcg2Dxe).
    pub fn td() -> Self {
        Self::new(&[(SHA384, 48)])
    }

    /// An event whose digests hash `data`, as most events do.
    pub fn event(&mut self, index: u32, event_type: u32, data: &[u8]) -> &mut Self {
        let digests: Vec<(u16, Vec<u8>)> = self
            .algs
            .clone()
            .into_iter()
            .map(|(id, size)| (id, digest_for(id, size, data)))
            .collect();
        self.raw_event(index, event_type, &digests, data)
    }

    /// An event whose SHA-384 digest is given (for events that measure something
    /// other than their data), the other digests filled.
    pub fn event_digest(
        &mut self,
        index: u32,
        event_type: u32,
        sha384: &Digest48,
        data: &[u8],
    ) -> &mut Self {
        let digests: Vec<(u16, Vec<u8>)> = self
            .algs
            .clone()
            .into_iter()
            .map(|(id, size)| {
                if id == SHA384 {
                    (id, sha384.0.to_vec())
                } else {
                    (id, vec![0x5A; usize::from(size)])
                }
            })
            .collect();
        self.raw_event(index, event_type, &digests, data)
    }

    pub fn raw_event(
        &mut self,
        index: u32,
        event_type: u32,
        digests: &[(u16, Vec<u8>)],
        data: &[u8],
    ) -> &mut Self {
        self.offsets.push(self.buf.len());
        self.buf.extend(index.to_le_bytes());
        self.buf.extend(event_type.to_le_bytes());
        self.buf
            .extend(u32::try_from(digests.len()).unwrap().to_le_bytes());
        for (id, d) in digests {
            self.buf.extend(id.to_le_bytes());
            self.buf.extend(d);
        }
        self.buf
            .extend(u32::try_from(data.len()).unwrap().to_le_bytes());
        self.buf.extend(data);
        self
    }

    /// EV_NO_ACTION StartupLocality event (PC Client spec §10.4.5.3).
    pub fn startup_locality(&mut self, locality: u8) -> &mut Self {
        let mut data = b"StartupLocality\0".to_vec();
        data.push(locality);
        let digests: Vec<(u16, Vec<u8>)> = self
            .algs
            .clone()
            .into_iter()
            .map(|(id, size)| (id, vec![0; usize::from(size)]))
            .collect();
        self.raw_event(0, EV_NO_ACTION, &digests, &data)
    }

    pub fn pad(&mut self, byte: u8, n: usize) -> &mut Self {
        self.buf.extend(std::iter::repeat_n(byte, n));
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

/// A CCEL ACPI table (ACPI 6.5 §5.2.34) for a log area of `laml` bytes.
pub fn ccel_table(laml: u64) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(b"CCEL");
    t.extend(56u32.to_le_bytes());
    t.push(1); // revision
    t.push(0); // checksum, set below
    t.extend(b"COCOON");
    t.extend(b"TESTTBL ");
    t.extend(1u32.to_le_bytes());
    t.extend(b"TEST");
    t.extend(1u32.to_le_bytes());
    t.push(2); // CC type: TDX
    t.push(1);
    t.extend([0, 0]);
    t.extend(laml.to_le_bytes());
    t.extend(0x7f00_0000u64.to_le_bytes());
    let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}
