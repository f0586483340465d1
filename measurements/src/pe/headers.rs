//! DOS header, PE signature, COFF file header, optional header (PE32 and PE32+), data
//! directories and section table, after Microsoft's "PE Format" specification
//! (learn.microsoft.com/windows/win32/debug/pe-format), sections "MS-DOS Stub",
//! "Signature", "COFF File Header", "Optional Header" and "Section Table".
#![deny(clippy::arithmetic_side_effects)]

use crate::codec::{ParseError, Reader};

use super::PeError;

/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_AMD64: u16 = 0x8664;
/// Index of the Certificate Table ("security") entry among the data directories.
pub const IMAGE_DIRECTORY_ENTRY_SECURITY: usize = 4;
/// The format defines 16 data directories; edk2's loader refuses images declaring more.
pub const MAX_DATA_DIRECTORIES: u32 = 16;
/// Cap on NumberOfSections. The Windows loader allows 96; systemd-stub caps the table
/// at 16 KiB (409 entries). Anything past 1024 is not an image we will ever boot.
pub const MAX_SECTIONS: u16 = 1024;

const DOS_HEADER_LEN: usize = 64;
const E_LFANEW_OFFSET: usize = 0x3c;
const COFF_HEADER_LEN: usize = 20;
const SECTION_HEADER_LEN: usize = 40;
/// Offset of CheckSum inside the optional header; the same for PE32 and PE32+.
const CHECKSUM_OFFSET: usize = 64;

/// PE32 or PE32+ optional header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionalMagic {
    Pe32,
    Pe32Plus,
}

impl OptionalMagic {
    /// Offset of NumberOfRvaAndSizes inside the optional header (the data directories
    /// follow it directly).
    fn number_of_rva_offset(self) -> usize {
        match self {
            OptionalMagic::Pe32 => 92,
            OptionalMagic::Pe32Plus => 108,
        }
    }
}

/// One data-directory entry (RVA and size; for the Certificate Table the "RVA" is a
/// file offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataDirectory {
    pub virtual_address: u32,
    pub size: u32,
    /// Absolute file offset of this 8-byte entry.
    pub entry_offset: usize,
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionHeader {
    /// Position in the section table (0-based).
    pub index: usize,
    /// The 8 raw name bytes (NUL padded; not NUL terminated when 8 long).
    pub raw_name: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub size_of_raw_data: u32,
    pub pointer_to_raw_data: u32,
    pub characteristics: u32,
    /// Absolute file offset of this 40-byte header.
    pub header_offset: usize,
}

impl SectionHeader {
    /// The name up to its first NUL, lossily decoded (for messages and lookup).
    pub fn name(&self) -> String {
        let end = self
            .raw_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.raw_name.len());
        String::from_utf8_lossy(self.raw_name.get(..end).unwrap_or(&[])).into_owned()
    }

    /// systemd-stub's `pe_section_name_equal`: compare up to 8 bytes, a NUL in the
    /// wanted name ends the comparison.
    pub fn name_is(&self, wanted: &str) -> bool {
        let w = wanted.as_bytes();
        if w.len() > 8 {
            return false;
        }
        let mut padded = [0u8; 8];
        for (dst, src) in padded.iter_mut().zip(w) {
            *dst = *src;
        }
        padded == self.raw_name
    }

    /// End of the raw data in the file (`PointerToRawData + SizeOfRawData`).
    pub fn raw_end(&self) -> u64 {
        u64::from(self.pointer_to_raw_data).saturating_add(u64::from(self.size_of_raw_data))
    }

    /// Bytes of the section that come from the file when it is loaded: the loader copies
    /// `min(VirtualSize, SizeOfRawData)` and zero-fills the rest up to VirtualSize.
    pub fn file_backed_len(&self) -> u32 {
        self.virtual_size.min(self.size_of_raw_data)
    }
}

/// The parsed headers of a PE image of `image_len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeImage {
    pub e_lfanew: usize,
    pub machine: u16,
    pub magic: OptionalMagic,
    pub major_image_version: u16,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    /// Absolute offset of the 4-byte CheckSum field.
    pub checksum_offset: usize,
    /// NumberOfRvaAndSizes as declared.
    pub number_of_rva_and_sizes: u32,
    pub data_directories: Vec<DataDirectory>,
    pub sections: Vec<SectionHeader>,
    /// Length of the whole image (the file, or the buffer the loader was given).
    pub image_len: u64,
    /// Absolute offset just past the section table.
    pub section_table_end: usize,
}

impl PeImage {
    /// How many leading bytes [`PeImage::parse`] needs: the end of the section table.
    /// Reads only the DOS header and COFF header from `prefix` (at least 64 bytes, and
    /// `e_lfanew + 24` once `e_lfanew` is known).
    pub fn headers_len(prefix: &[u8]) -> Result<usize, PeError> {
        let coff = parse_dos_and_coff(prefix)?;
        Ok(coff.section_table_end)
    }

    /// Parse the headers from `bytes` (the image's first bytes, at least
    /// [`PeImage::headers_len`] of them) of an image `image_len` bytes long.
    pub fn parse(bytes: &[u8], image_len: u64) -> Result<Self, PeError> {
        let coff = parse_dos_and_coff(bytes)?;
        let opt_offset = coff.optional_offset;
        let mut r = Reader::new(bytes);
        r.skip(opt_offset, "PE optional header")?;
        let mut opt = r.sub(
            usize::from(coff.size_of_optional_header),
            "PE optional header (SizeOfOptionalHeader bytes)",
        )?;
        let magic_at = opt.offset();
        let magic = match opt.u16_le("PE optional header Magic")? {
            0x10b => OptionalMagic::Pe32,
            0x20b => OptionalMagic::Pe32Plus,
            found => {
                return Err(PeError::BadOptionalMagic {
                    offset: magic_at,
                    found,
                })
            }
        };
        let nrva_rel = magic.number_of_rva_offset();
        // Fixed fields up to and including NumberOfRvaAndSizes must fit.
        let fixed_end = nrva_rel.saturating_add(4);
        if usize::from(coff.size_of_optional_header) < fixed_end {
            return Err(PeError::OptionalHeaderTooSmall {
                offset: coff.size_of_optional_header_offset,
                size: coff.size_of_optional_header,
                needed: fixed_end,
            });
        }
        let mut fields = Reader::with_base(opt.rest(), opt.offset());
        // Magic (2 bytes) is read; the next fields are at fixed offsets.
        fields.skip(44 - 2, "PE optional header fields before MajorImageVersion")?;
        let major_image_version = fields.u16_le("PE optional header MajorImageVersion")?;
        fields.skip(56 - 46, "PE optional header fields before SizeOfImage")?;
        let size_of_image = fields.u32_le("PE optional header SizeOfImage")?;
        let size_of_headers_at = fields.offset();
        let size_of_headers = fields.u32_le("PE optional header SizeOfHeaders")?;
        let checksum_offset = fields.offset();
        debug_assert_eq!(checksum_offset, opt_offset.saturating_add(CHECKSUM_OFFSET));
        fields.skip(
            nrva_rel.saturating_sub(CHECKSUM_OFFSET),
            "PE optional header fields",
        )?;
        let nrva_at = fields.offset();
        let number_of_rva_and_sizes = fields.u32_le("PE optional header NumberOfRvaAndSizes")?;
        if number_of_rva_and_sizes > MAX_DATA_DIRECTORIES {
            return Err(PeError::TooManyDataDirectories {
                offset: nrva_at,
                count: number_of_rva_and_sizes,
                max: MAX_DATA_DIRECTORIES,
            });
        }
        let n_dirs = number_of_rva_and_sizes as usize; // <= 16
        let needed = fixed_end.saturating_add(n_dirs.saturating_mul(8));
        if usize::from(coff.size_of_optional_header) < needed {
            return Err(PeError::OptionalHeaderTooSmall {
                offset: coff.size_of_optional_header_offset,
                size: coff.size_of_optional_header,
                needed,
            });
        }
        let mut data_directories = Vec::with_capacity(n_dirs);
        for _ in 0..n_dirs {
            let entry_offset = fields.offset();
            let virtual_address = fields.u32_le("PE data directory VirtualAddress")?;
            let size = fields.u32_le("PE data directory Size")?;
            data_directories.push(DataDirectory {
                virtual_address,
                size,
                entry_offset,
            });
        }

        // Section table.
        let mut st = Reader::new(bytes);
        st.skip(coff.section_table_offset, "PE section table")?;
        let mut sections = Vec::with_capacity(usize::from(coff.number_of_sections));
        for index in 0..usize::from(coff.number_of_sections) {
            let header_offset = st.offset();
            let raw_name = st.array::<8>("PE section header Name")?;
            let virtual_size = st.u32_le("PE section header VirtualSize")?;
            let virtual_address = st.u32_le("PE section header VirtualAddress")?;
            let size_of_raw_data = st.u32_le("PE section header SizeOfRawData")?;
            let pointer_to_raw_data = st.u32_le("PE section header PointerToRawData")?;
            st.skip(12, "PE section header relocation/line-number fields")?;
            let characteristics = st.u32_le("PE section header Characteristics")?;
            let s = SectionHeader {
                index,
                raw_name,
                virtual_size,
                virtual_address,
                size_of_raw_data,
                pointer_to_raw_data,
                characteristics,
                header_offset,
            };
            if s.size_of_raw_data != 0 && s.raw_end() > image_len {
                return Err(PeError::SectionBeyondEof {
                    index,
                    name: s.name(),
                    header_offset,
                    start: u64::from(s.pointer_to_raw_data),
                    end: s.raw_end(),
                    image_len,
                });
            }
            sections.push(s);
        }

        // Authenticode hashes the header up to SizeOfHeaders around CheckSum and the
        // certificate directory entry: both must lie inside it, and it inside the image.
        let min_headers = if n_dirs > IMAGE_DIRECTORY_ENTRY_SECURITY {
            data_directories
                .get(IMAGE_DIRECTORY_ENTRY_SECURITY)
                .map_or(0, |d| d.entry_offset.saturating_add(8))
        } else {
            checksum_offset.saturating_add(4)
        };
        if u64::from(size_of_headers) < min_headers as u64 || u64::from(size_of_headers) > image_len
        {
            return Err(PeError::BadSizeOfHeaders {
                offset: size_of_headers_at,
                size: size_of_headers,
                min: min_headers as u64,
                max: image_len,
            });
        }

        Ok(PeImage {
            e_lfanew: coff.e_lfanew,
            machine: coff.machine,
            magic,
            major_image_version,
            size_of_image,
            size_of_headers,
            checksum_offset,
            number_of_rva_and_sizes,
            data_directories,
            sections,
            image_len,
            section_table_end: coff.section_table_end,
        })
    }

    /// The Certificate Table directory entry, when the image declares one.
    pub fn security_directory(&self) -> Option<&DataDirectory> {
        self.data_directories.get(IMAGE_DIRECTORY_ENTRY_SECURITY)
    }

    /// The first section whose name matches (systemd-stub: "first matching section wins").
    pub fn section(&self, name: &str) -> Option<&SectionHeader> {
        self.sections.iter().find(|s| s.name_is(name))
    }
}

/// What the DOS header and COFF header say about the layout.
struct CoffLayout {
    e_lfanew: usize,
    machine: u16,
    number_of_sections: u16,
    size_of_optional_header: u16,
    size_of_optional_header_offset: usize,
    optional_offset: usize,
    section_table_offset: usize,
    section_table_end: usize,
}

fn parse_dos_and_coff(bytes: &[u8]) -> Result<CoffLayout, PeError> {
    let mut r = Reader::new(bytes);
    let dos = r.take(DOS_HEADER_LEN, "PE DOS header")?;
    let mut dos = Reader::new(dos);
    let magic = dos.array::<2>("PE DOS header e_magic")?;
    if &magic != b"MZ" {
        return Err(PeError::BadDosMagic { found: magic });
    }
    dos.skip(E_LFANEW_OFFSET - 2, "PE DOS header")?;
    let e_lfanew_at = dos.offset();
    let e_lfanew = dos.u32_le("PE DOS header e_lfanew")? as usize;
    if e_lfanew < DOS_HEADER_LEN {
        return Err(ParseError::invalid(
            "PE DOS header e_lfanew",
            e_lfanew_at,
            format!("{e_lfanew} points inside the DOS header"),
        )
        .into());
    }
    let mut r = Reader::new(bytes);
    r.skip(e_lfanew, "PE signature (at e_lfanew)")?;
    let sig_at = r.offset();
    let sig = r.array::<4>("PE signature")?;
    if &sig != b"PE\0\0" {
        return Err(PeError::BadPeSignature {
            offset: sig_at,
            found: sig,
        });
    }
    let mut coff = r.sub(COFF_HEADER_LEN, "PE COFF header")?;
    let machine = coff.u16_le("PE COFF header Machine")?;
    let nsec_at = coff.offset();
    let number_of_sections = coff.u16_le("PE COFF header NumberOfSections")?;
    if number_of_sections > MAX_SECTIONS {
        return Err(PeError::TooManySections {
            offset: nsec_at,
            count: number_of_sections,
            max: MAX_SECTIONS,
        });
    }
    coff.skip(12, "PE COFF header TimeDateStamp/symbol table fields")?;
    let size_of_optional_header_offset = coff.offset();
    let size_of_optional_header = coff.u16_le("PE COFF header SizeOfOptionalHeader")?;
    let optional_offset = r.offset();
    let section_table_offset = optional_offset.saturating_add(usize::from(size_of_optional_header));
    let section_table_end = section_table_offset
        .saturating_add(usize::from(number_of_sections).saturating_mul(SECTION_HEADER_LEN));
    Ok(CoffLayout {
        e_lfanew,
        machine,
        number_of_sections,
        size_of_optional_header,
        size_of_optional_header_offset,
        optional_offset,
        section_table_offset,
        section_table_end,
    })
}
