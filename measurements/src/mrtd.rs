//! MRTD: the TDX module's build-time measurement of the TD's initial memory.
//!
//! The TDX module keeps a running SHA-384 over the build. Intel TDX Module ABI spec
//! (TDH.MEM.PAGE.ADD, TDH.MR.EXTEND, TDH.MR.FINALIZE):
//! - TDH.MEM.PAGE.ADD of the 4 KiB page at GPA `g` hashes one 128-byte buffer:
//!   `"MEM.PAGE.ADD"` zero padded to 16 bytes || `g` (u64 LE) || zeros to 128.
//!   The page contents are not hashed here.
//! - TDH.MR.EXTEND of the 256-byte chunk at GPA `g` hashes a 128-byte buffer
//!   `"MR.EXTEND"` zero padded to 16 || `g` (u64 LE) || zeros, then the 256 bytes.
//! - TDH.MR.FINALIZE closes the hash: that digest is MRTD.
//!
//! Which pages are added and extended is the VMM's choice, driven by the TDVF metadata
//! (see [`crate::tdvf`]): QEMU (`target/i386/kvm/tdx.c`, `tdx_init_fw_mem_region`)
//! issues one `KVM_TDX_INIT_MEM_REGION` per section in metadata order, with
//! `KVM_TDX_MEASURE_MEMORY_REGION` when the section has MR.EXTEND. Every section is
//! added (BFV, CFV, TD_HOB, TempMem); only MR.EXTEND sections are extended.
//! PAGE.AUG sections (design guide table 11-4) are accepted by the guest after the
//! build and never reach MRTD.
#![deny(clippy::arithmetic_side_effects)]

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha384};

use crate::digest::Digest48;
use crate::tdvf::{self, SectionType, TdvfError, TdvfMetadata, TdvfSection, PAGE_SIZE};

/// TDH.MR.EXTEND measures 256-byte chunks.
pub const MR_EXTEND_CHUNK: u64 = 256;
/// A flash image is a few MiB; refuse to read anything far larger into memory.
pub const MAX_FIRMWARE_BYTES: u64 = 256 << 20;
/// Build-time added memory we are willing to hash (128 bytes per 4 KiB page).
pub const MAX_ADDED_BYTES: u64 = 4 << 30;
/// Extended memory we are willing to hash (1.5 bytes per byte).
pub const MAX_EXTENDED_BYTES: u64 = 1 << 30;

/// In which order the VMM adds and measures firmware pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageOrder {
    /// QEMU issuing `KVM_TDX_INIT_MEM_REGION` with `KVM_TDX_MEASURE_MEMORY_REGION`
    /// (upstream QEMU 10.1+ with Linux 6.16+ KVM, and the TDX QEMU 9.x builds): for each
    /// section in metadata order, for each page, TDH.MEM.PAGE.ADD then, when the
    /// section has MR.EXTEND, the 16 TDH.MR.EXTENDs of that page (KVM's
    /// `tdx_gmem_post_populate` extends each page right after adding it).
    #[default]
    PageByPage,
    /// TDX QEMU 8.x builds on the 2024 `KVM_MEMORY_MAPPING` + `KVM_TDX_EXTEND_MEMORY`
    /// KVM interface (the QEMU TDX patch series of early 2024; dstack-mr's "two pass",
    /// its default for QEMU 8.x): for each section in metadata order,
    /// every TDH.MEM.PAGE.ADD of the section, then every TDH.MR.EXTEND of it. Sections
    /// are still processed one after another, not all adds of all sections first.
    AllPagesFirst,
}

impl PageOrder {
    pub const ALL: [PageOrder; 2] = [PageOrder::PageByPage, PageOrder::AllPagesFirst];

    pub fn name(self) -> &'static str {
        match self {
            PageOrder::PageByPage => "page-by-page",
            PageOrder::AllPagesFirst => "all-pages-first",
        }
    }
}

impl fmt::Display for PageOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PageOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PageOrder::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| format!("unknown page order {s:?} (page-by-page or all-pages-first)"))
    }
}

/// How one section entered MRTD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionMeasurement {
    /// TDH.MEM.PAGE.ADD of every page and TDH.MR.EXTEND of its contents.
    PageAddAndExtend,
    /// TDH.MEM.PAGE.ADD only: the GPAs are measured, the contents are not.
    PageAdd,
    /// Added with TDH.MEM.PAGE.AUG after the build: not in MRTD.
    NotMeasured,
}

/// A TDVF section and what MRTD measured of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredSection {
    #[serde(flatten)]
    pub section: TdvfSection,
    pub measurement: SectionMeasurement,
    /// TDH.MEM.PAGE.ADD calls for this section.
    pub pages_added: u64,
    /// TDH.MR.EXTEND calls (256-byte chunks) for this section.
    pub chunks_extended: u64,
}

/// MRTD and what it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MrtdReport {
    pub mrtd: Digest48,
    /// SHA-256 of the firmware file (hex).
    pub firmware_sha256: String,
    pub page_order: PageOrder,
    /// Size of the firmware file in bytes.
    pub firmware_size: u64,
    /// Absolute offset of the TDVF descriptor in the file.
    pub tdvf_descriptor_offset: usize,
    /// The sections in metadata (= measurement) order.
    pub sections: Vec<MeasuredSection>,
    /// Assumptions the value depends on (empty for OVMF as built by edk2).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MrtdError {
    #[error("reading firmware {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("firmware {path} is {size} bytes, more than the {max}-byte limit for a flash image")]
    FileTooLarge { path: String, size: u64, max: u64 },
    #[error(transparent)]
    Tdvf(#[from] TdvfError),
    /// The section is extended into MRTD but its contents come from the VMM at launch
    /// (TD HOB, payload parameters, or a payload not stored in the image), so the
    /// firmware file alone does not determine MRTD.
    #[error(
        "tdvf.sections[{index}].attributes at byte offset {offset}: {section_type} section \
         has MR.EXTEND but its contents are supplied by the VMM, not the firmware file; \
         MRTD cannot be computed from the firmware alone"
    )]
    VmmSuppliedContent {
        index: usize,
        offset: usize,
        section_type: SectionType,
    },
    #[error(
        "tdvf.sections: {what} is {bytes} bytes, above the {max}-byte limit this tool \
         will hash"
    )]
    TooLarge {
        what: &'static str,
        bytes: u64,
        max: u64,
    },
    /// The metadata given to [`compute_mrtd`] does not fit the bytes (it was not
    /// produced by [`tdvf::parse`] on them).
    #[error("tdvf.sections[{index}]: {why}")]
    Inconsistent { index: usize, why: &'static str },
}

/// Where a section's memory contents come from.
fn contents_from_vmm(s: &TdvfSection) -> bool {
    match s.section_type {
        SectionType::TdHob | SectionType::PayloadParam => true,
        SectionType::Payload => s.raw_data_size == 0,
        SectionType::Bfv | SectionType::Cfv | SectionType::TempMem | SectionType::PermMem => false,
    }
}

fn measurement_of(s: &TdvfSection) -> SectionMeasurement {
    if s.page_aug() {
        SectionMeasurement::NotMeasured
    } else if s.mr_extend() {
        SectionMeasurement::PageAddAndExtend
    } else {
        SectionMeasurement::PageAdd
    }
}

/// Refuse metadata whose MRTD is not determined by the image, or too big to hash.
fn check_measurable(meta: &TdvfMetadata) -> Result<(), MrtdError> {
    for s in &meta.sections {
        if measurement_of(s) == SectionMeasurement::PageAddAndExtend && contents_from_vmm(s) {
            return Err(MrtdError::VmmSuppliedContent {
                index: s.index,
                offset: s.entry_offset.saturating_add(tdvf::field::ATTRIBUTES),
                section_type: s.section_type,
            });
        }
    }
    let added = meta.added_bytes();
    if added > MAX_ADDED_BYTES {
        return Err(MrtdError::TooLarge {
            what: "memory added at build time",
            bytes: added,
            max: MAX_ADDED_BYTES,
        });
    }
    let extended = meta.extended_bytes();
    if extended > MAX_EXTENDED_BYTES {
        return Err(MrtdError::TooLarge {
            what: "memory extended into MRTD",
            bytes: extended,
            max: MAX_EXTENDED_BYTES,
        });
    }
    Ok(())
}

/// The 128-byte header the TDX module hashes for PAGE.ADD and MR.EXTEND.
fn header(op: &[u8], gpa: u64) -> [u8; 128] {
    let mut buf = [0u8; 128];
    for (dst, src) in buf.iter_mut().zip(op.iter().take(16)) {
        *dst = *src;
    }
    for (dst, src) in buf.iter_mut().skip(16).zip(gpa.to_le_bytes()) {
        *dst = src;
    }
    buf
}

/// The running MRTD hash and the firmware bytes MR.EXTEND chunks come from.
struct Builder<'a> {
    fw: &'a [u8],
    hash: Sha384,
}

impl Builder<'_> {
    fn gpa(s: &TdvfSection, offset: u64) -> Result<u64, MrtdError> {
        s.memory_address
            .checked_add(offset)
            .ok_or(MrtdError::Inconsistent {
                index: s.index,
                why: "GPA overflows",
            })
    }

    fn page_add(&mut self, s: &TdvfSection, page: u64) -> Result<(), MrtdError> {
        let gpa = Self::gpa(s, page.saturating_mul(PAGE_SIZE))?;
        self.hash.update(header(b"MEM.PAGE.ADD", gpa));
        Ok(())
    }

    /// The 16 TDH.MR.EXTENDs of one page. Memory past RawDataSize is zero (design
    /// guide table 11-2: "the VMM shall fill zero up to MemoryDataSize").
    fn extend_page(&mut self, s: &TdvfSection, page: u64) -> Result<(), MrtdError> {
        let page_start = page.saturating_mul(PAGE_SIZE);
        let mut rel = page_start;
        while rel < page_start.saturating_add(PAGE_SIZE) {
            self.hash.update(header(b"MR.EXTEND", Self::gpa(s, rel)?));
            let mut chunk = [0u8; MR_EXTEND_CHUNK as usize];
            let raw = u64::from(s.raw_data_size);
            if rel < raw {
                let n = raw.saturating_sub(rel).min(MR_EXTEND_CHUNK);
                let from = u64::from(s.data_offset).saturating_add(rel);
                let bytes = usize::try_from(from)
                    .ok()
                    .zip(usize::try_from(n).ok())
                    .and_then(|(from, n)| self.fw.get(from..from.checked_add(n)?))
                    .ok_or(MrtdError::Inconsistent {
                        index: s.index,
                        why: "raw data lies outside the firmware bytes",
                    })?;
                for (dst, src) in chunk.iter_mut().zip(bytes) {
                    *dst = *src;
                }
            }
            self.hash.update(chunk);
            rel = rel.saturating_add(MR_EXTEND_CHUNK);
        }
        Ok(())
    }
}

/// Compute MRTD for `fw` whose metadata is `meta` (from [`tdvf::parse`]).
pub fn compute_mrtd(
    fw: &[u8],
    meta: &TdvfMetadata,
    order: PageOrder,
) -> Result<Digest48, MrtdError> {
    check_measurable(meta)?;
    let mut b = Builder {
        fw,
        hash: Sha384::new(),
    };
    for s in &meta.sections {
        let pages = s.pages();
        match measurement_of(s) {
            SectionMeasurement::NotMeasured => {}
            SectionMeasurement::PageAdd => {
                for p in 0..pages {
                    b.page_add(s, p)?;
                }
            }
            SectionMeasurement::PageAddAndExtend => match order {
                PageOrder::PageByPage => {
                    for p in 0..pages {
                        b.page_add(s, p)?;
                        b.extend_page(s, p)?;
                    }
                }
                PageOrder::AllPagesFirst => {
                    for p in 0..pages {
                        b.page_add(s, p)?;
                    }
                    for p in 0..pages {
                        b.extend_page(s, p)?;
                    }
                }
            },
        }
    }
    Ok(Digest48(b.hash.finalize().into()))
}

/// Parse the TDVF metadata of `fw` and compute MRTD with the per-section details.
pub fn mrtd_from_bytes(fw: &[u8], order: PageOrder) -> Result<MrtdReport, MrtdError> {
    let meta = tdvf::parse(fw)?;
    // The file's SHA-256 and MRTD are independent: hash them on two cores.
    let (mrtd, firmware_sha256) = std::thread::scope(|s| {
        let sha256 = s.spawn(|| hex::encode(Sha256::digest(fw)));
        let mrtd = compute_mrtd(fw, &meta, order);
        // A panic in a hasher thread is impossible short of a bug; hash inline then.
        let sha256 = sha256
            .join()
            .unwrap_or_else(|_| hex::encode(Sha256::digest(fw)));
        (mrtd, sha256)
    });
    let mrtd = mrtd?;
    let mut notes = Vec::new();
    let sections = meta
        .sections
        .iter()
        .map(|s| {
            let measurement = measurement_of(s);
            let pages_added = match measurement {
                SectionMeasurement::NotMeasured => 0,
                _ => s.pages(),
            };
            let chunks_extended = match measurement {
                SectionMeasurement::PageAddAndExtend => s.memory_data_size / MR_EXTEND_CHUNK,
                _ => 0,
            };
            if measurement == SectionMeasurement::PageAddAndExtend
                && u64::from(s.raw_data_size) < s.memory_data_size
            {
                // QEMU copies MemoryDataSize bytes from the image at DataOffset for
                // BFV/CFV rather than zero filling: for such an image the two differ.
                notes.push(format!(
                    "sections[{}]: memory past RawDataSize ({:#x} of {:#x} bytes) is \
                     measured as zeros, as the TDVF design guide specifies; QEMU would \
                     copy the image bytes that follow instead",
                    s.index, s.raw_data_size, s.memory_data_size
                ));
            }
            MeasuredSection {
                section: s.clone(),
                measurement,
                pages_added,
                chunks_extended,
            }
        })
        .collect();
    Ok(MrtdReport {
        mrtd,
        firmware_sha256,
        page_order: order,
        firmware_size: fw.len() as u64,
        tdvf_descriptor_offset: meta.descriptor_offset,
        sections,
        notes,
    })
}

/// Compute MRTD from a firmware file.
pub fn mrtd_from_file(path: &Path, order: PageOrder) -> Result<MrtdReport, MrtdError> {
    let io = |source| MrtdError::Io {
        path: path.display().to_string(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FIRMWARE_BYTES {
        return Err(MrtdError::FileTooLarge {
            path: path.display().to_string(),
            size,
            max: MAX_FIRMWARE_BYTES,
        });
    }
    let fw = std::fs::read(path).map_err(io)?;
    mrtd_from_bytes(&fw, order)
}
