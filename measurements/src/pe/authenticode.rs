//! The Authenticode image digest, as UEFI firmware measures it for
//! EV_EFI_BOOT_SERVICES_APPLICATION events.
//!
//! Algorithm: Microsoft "Windows Authenticode Portable Executable Signature Format",
//! section "Calculating the PE Image Hash", exactly as edk2 implements it in
//! `MeasurePeImageAndExtend` (SecurityPkg/Tcg/Tcg2Dxe/MeasureBootPeCoff.c; TDVF's
//! OvmfPkg/IntelTdx/TdTcg2Dxe/MeasureBootPeCoff.c is the same code):
//!  1. the headers from offset 0 to the CheckSum field;
//!  2. from after CheckSum to the Certificate Table directory entry, then from after
//!     that entry to SizeOfHeaders (when there are at most 4 data directories there is
//!     no such entry: from after CheckSum to SizeOfHeaders);
//!  3. every section with SizeOfRawData != 0, sorted by PointerToRawData (a stable
//!     insertion sort in edk2), over SizeOfRawData bytes;
//!  4. SUM = SizeOfHeaders + the SizeOfRawData of the hashed sections; when the image is
//!     longer than SUM, the bytes from offset SUM up to `image_len - CertTableSize`.
//!
//! Step 4 starts at SUM, not at the end of the last section: edk2 does so, and the
//! measured digest is what we must reproduce, gaps between sections or not.
#![deny(clippy::arithmetic_side_effects)]

use sha2::{Digest as _, Sha384};

use super::{PeError, PeImage, IMAGE_DIRECTORY_ENTRY_SECURITY};
use crate::digest::Digest48;

/// A byte range of the image, `offset..offset+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRange {
    pub offset: u64,
    pub len: u64,
}

impl HashRange {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

impl PeImage {
    /// The byte ranges the Authenticode digest covers, in hash order. Empty ranges are
    /// left out. Every range lies inside `0..image_len`.
    pub fn authenticode_ranges(&self) -> Result<Vec<HashRange>, PeError> {
        let mut out = Vec::new();
        let mut push = |offset: u64, end: u64| {
            if end > offset {
                out.push(HashRange {
                    offset,
                    len: end.saturating_sub(offset),
                });
            }
        };
        let checksum = self.checksum_offset as u64;
        let headers_end = u64::from(self.size_of_headers);
        push(0, checksum);
        let after_checksum = checksum.saturating_add(4);
        let security = if self.data_directories.len() > IMAGE_DIRECTORY_ENTRY_SECURITY {
            self.security_directory()
        } else {
            None
        };
        match security {
            None => push(after_checksum, headers_end),
            Some(dir) => {
                let entry = dir.entry_offset as u64;
                push(after_checksum, entry);
                push(entry.saturating_add(8), headers_end);
            }
        }

        let mut sorted: Vec<_> = self.sections.iter().collect();
        // `sort_by_key` is stable, like edk2's insertion sort: equal keys keep table order.
        sorted.sort_by_key(|s| s.pointer_to_raw_data);
        let mut sum = headers_end;
        for s in sorted.into_iter().filter(|s| s.size_of_raw_data != 0) {
            let start = u64::from(s.pointer_to_raw_data);
            push(start, s.raw_end());
            sum = sum.saturating_add(u64::from(s.size_of_raw_data));
        }

        if self.image_len > sum {
            let cert_size = security.map_or(0, |d| d.size);
            let hashed_end = sum.saturating_add(u64::from(cert_size));
            if self.image_len > hashed_end {
                push(sum, self.image_len.saturating_sub(u64::from(cert_size)));
            } else if self.image_len < hashed_end {
                return Err(PeError::CertTableTooLarge {
                    offset: security.map_or(0, |d| d.entry_offset),
                    cert_size,
                    available: self.image_len.saturating_sub(sum),
                });
            }
        }
        Ok(out)
    }
}

/// Authenticode SHA-384 of a PE image held in memory (whole file or loaded buffer).
pub fn authenticode_sha384(image: &[u8]) -> Result<Digest48, PeError> {
    let pe = PeImage::parse(image, image.len() as u64)?;
    let mut h = Sha384::new();
    for r in pe.authenticode_ranges()? {
        // Ranges were checked against image_len == image.len(); `get` keeps it panic-free.
        let start = usize::try_from(r.offset).unwrap_or(usize::MAX);
        let end = usize::try_from(r.end()).unwrap_or(usize::MAX);
        if let Some(bytes) = image.get(start..end) {
            h.update(bytes);
        }
    }
    Ok(Digest48(h.finalize().into()))
}
