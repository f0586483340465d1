//! PE/COFF images: the headers and section table (Microsoft "PE Format"), and the
//! Authenticode digest that UEFI firmware measures for every image it loads.
//!
//! Parsing reads only the headers, so a caller can read them with a few small preads
//! and hash the (large) rest of the file in one streaming pass: [`PeImage`] knows where
//! everything lies, [`PeImage::authenticode_ranges`] says which byte ranges the
//! Authenticode digest covers, in hash order.
#![deny(clippy::arithmetic_side_effects)]

mod authenticode;
mod headers;

pub use authenticode::{authenticode_sha384, HashRange};
pub use headers::{
    DataDirectory, OptionalMagic, PeImage, SectionHeader, IMAGE_DIRECTORY_ENTRY_SECURITY,
    MACHINE_AMD64, MAX_DATA_DIRECTORIES, MAX_SECTIONS,
};

use crate::codec::ParseError;

/// Why a PE image cannot be parsed or hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeError {
    /// A header field is truncated, oversized or malformed.
    #[error("PE header: {0}")]
    Parse(#[from] ParseError),
    /// The file does not start with the DOS "MZ" signature.
    #[error("PE DOS header e_magic at byte offset 0: expected \"MZ\", found {found:02x?}")]
    BadDosMagic { found: [u8; 2] },
    /// `e_lfanew` does not point at "PE\0\0".
    #[error("PE signature at byte offset {offset}: expected \"PE\\0\\0\", found {found:02x?}")]
    BadPeSignature { offset: usize, found: [u8; 4] },
    /// The optional header magic is neither PE32 (0x10b) nor PE32+ (0x20b).
    #[error("PE optional header Magic at byte offset {offset}: 0x{found:04x} is neither PE32 (0x10b) nor PE32+ (0x20b)")]
    BadOptionalMagic { offset: usize, found: u16 },
    /// More sections than any real image has (a cap against absurd counts).
    #[error("PE COFF header NumberOfSections at byte offset {offset}: {count} exceeds the limit of {max}")]
    TooManySections { offset: usize, count: u16, max: u16 },
    /// More data directories than the 16 the format defines (edk2 refuses these too).
    #[error(
        "PE optional header NumberOfRvaAndSizes at byte offset {offset}: {count} exceeds {max}"
    )]
    TooManyDataDirectories { offset: usize, count: u32, max: u32 },
    /// SizeOfOptionalHeader is too small for the fields and data directories it declares.
    #[error("PE COFF header SizeOfOptionalHeader at byte offset {offset}: {size} bytes cannot hold the {needed} bytes the optional header declares")]
    OptionalHeaderTooSmall {
        offset: usize,
        size: u16,
        needed: usize,
    },
    /// SizeOfHeaders ends before the fields Authenticode hashes around, or beyond the file.
    #[error(
        "PE optional header SizeOfHeaders at byte offset {offset}: {size} is outside {min}..={max}"
    )]
    BadSizeOfHeaders {
        offset: usize,
        size: u32,
        min: u64,
        max: u64,
    },
    /// A section's raw data lies (partly) beyond the end of the image.
    #[error("PE section {index} ({name}) header at byte offset {header_offset}: raw data {start}..{end} lies beyond the image end {image_len}")]
    SectionBeyondEof {
        index: usize,
        name: String,
        header_offset: usize,
        start: u64,
        end: u64,
        image_len: u64,
    },
    /// The certificate table is larger than the data left after the hashed sections
    /// (edk2's Authenticode code refuses such an image: EFI_UNSUPPORTED).
    #[error("PE certificate table (Size {cert_size} at byte offset {offset}) is larger than the {available} bytes after the hashed headers and sections")]
    CertTableTooLarge {
        offset: usize,
        cert_size: u32,
        available: u64,
    },
}
