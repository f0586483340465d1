//! Unified kernel images (UAPI.5 "Unified Kernel Image" specification): a systemd-stub
//! PE binary with the kernel, initrd, command line and metadata in PE sections.
//!
//! [`Uki::read`] reads only what a prediction needs before hashing: the PE headers, the
//! kernel's own PE headers inside `.linux`, and the small text sections (`.sdmagic`,
//! `.cmdline`, `.osrel`, `.uname`, ...). Large sections are left to the streaming pass
//! (`hashplan`). Section lookup follows systemd-stub 257 (src/boot/pe.c,
//! `pe_locate_profile_sections`; src/boot/stub.c, `find_sections`), which is what
//! decides what the stub measures.
#![deny(clippy::arithmetic_side_effects)]

pub mod cmdline;
pub mod cpio;
mod sections;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub use sections::{UkiSection, UNIFIED_SECTIONS};

use crate::pe::{PeError, PeImage, SectionHeader, MACHINE_AMD64};

/// The only systemd-stub major version whose measurements are modelled.
pub const SUPPORTED_STUB_MAJOR: u32 = 257;
/// Cap on the headers read before parsing (DOS + PE headers + section table).
pub const MAX_HEADERS_LEN: usize = 1 << 20;
/// Cap on a small section read ahead of the pass (`.osrel`, `.cmdline`, ...).
pub const MAX_SMALL_SECTION: u32 = 16 << 20;
/// Cap on `.ucode`, read ahead because it precedes `.initrd` in the combined initrd
/// while ukify places it after `.initrd` in the file.
pub const MAX_UCODE_SECTION: u32 = 64 << 20;

/// Sections read ahead of the streaming pass (small, or needed out of file order).
const READ_AHEAD: [&str; 7] = [
    ".osrel", ".cmdline", ".uname", ".pcrsig", ".pcrpkey", ".profile", ".ucode",
];

/// Why a UKI cannot be used for a prediction.
#[derive(Debug, thiserror::Error)]
pub enum UkiError {
    #[error("reading {path} at byte offset {offset}: {error}")]
    Io {
        path: String,
        offset: u64,
        error: std::io::Error,
    },
    #[error("UKI {0}")]
    Pe(#[from] PeError),
    /// The kernel image inside `.linux` is not a PE image the stub can LoadImage.
    #[error("kernel image in .linux (section data at file offset {section_offset}; offsets that follow are relative to it): {error}")]
    Kernel { section_offset: u64, error: PeError },
    #[error("UKI PE COFF header Machine: 0x{machine:04x} is not x86-64 (0x8664); only x86-64 TDX guests are modelled")]
    NotX64 { machine: u16 },
    #[error("UKI has no .sdmagic section: not a systemd-stub image, its measurements are unknown")]
    NoSdMagic,
    #[error(".sdmagic section at file offset {offset}: {text:?} is not \"#### LoaderInfo: systemd-stub <version> ####\"")]
    BadSdMagic { offset: u64, text: String },
    #[error("systemd-stub {version}: only stub {SUPPORTED_STUB_MAJOR}.x measurements are modelled ({why})")]
    UnsupportedStub { version: String, why: &'static str },
    #[error("UKI has no .linux section (systemd-stub refuses such an image: \"Image lacks .linux section\")")]
    MissingLinux,
    #[error("UKI section {name} (header at byte offset {header_offset}) is not supported: {why}")]
    UnsupportedSection {
        name: String,
        header_offset: usize,
        why: &'static str,
    },
    #[error("UKI section {name} (header at byte offset {header_offset}): VirtualSize {size} exceeds the limit of {max} for a section read ahead")]
    SectionTooLarge {
        name: String,
        header_offset: usize,
        size: u32,
        max: u32,
    },
    #[error("kernel image in .linux: MajorImageVersion {0} < 1, so systemd-stub starts it through the legacy EFI handover protocol without LoadImage; that boot path is not modelled")]
    KernelHandover(u16),
    #[error("kernel image in .linux: Machine 0x{0:04x} is not x86-64 (0x8664)")]
    KernelNotX64(u16),
    #[error("UKI carries a Linux boot-protocol header (\"HdrS\" at byte offset 0x202): QEMU would patch it before the firmware measures the image, which is not modelled")]
    HasLinuxSetupHeader,
}

/// The systemd-stub version from `.sdmagic` ("#### LoaderInfo: systemd-stub 257.13 ####").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubVersion {
    /// The version text between the markers, e.g. "257.13".
    pub text: String,
    /// The leading number, e.g. 257.
    pub major: u32,
}

impl StubVersion {
    /// Parse the `.sdmagic` contents (trailing NULs allowed).
    pub fn parse(contents: &[u8]) -> Option<StubVersion> {
        let end = contents
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(contents.len());
        let s = std::str::from_utf8(contents.get(..end)?).ok()?;
        let v = s
            .strip_prefix("#### LoaderInfo: systemd-stub ")?
            .strip_suffix(" ####")?
            .trim();
        let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
        let major = digits.parse().ok()?;
        Some(StubVersion {
            text: v.to_string(),
            major,
        })
    }
}

/// Random access to the bytes being parsed: a file, or a buffer (tests, fuzzing).
pub trait ByteSource {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Exactly `len` bytes at `offset`.
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>>;
}

/// A file and its length.
pub struct FileSource<'a> {
    pub file: &'a File,
    pub len: u64,
}

impl ByteSource for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

impl ByteSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        start
            .checked_add(len)
            .and_then(|end| self.get(start..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
    }
}

/// The kernel PE image inside `.linux`.
#[derive(Debug, Clone)]
pub struct KernelImage {
    /// Its headers; offsets are relative to the start of `.linux`, and `image_len` is
    /// the section's VirtualSize: the buffer systemd-stub hands to LoadImage.
    pub pe: PeImage,
    /// The header bytes read (the first `pe.section_table_end` bytes of `.linux`).
    pub header_bytes: Arc<[u8]>,
}

/// What a prediction needs to know about a UKI before hashing it.
#[derive(Debug, Clone)]
pub struct Uki {
    pub pe: PeImage,
    /// The first `pe.section_table_end` bytes of the file.
    pub header_bytes: Arc<[u8]>,
    pub stub: StubVersion,
    /// The sections systemd-stub finds, in its canonical order (measurement order).
    pub sections: Vec<UkiSection>,
    /// In-memory contents (VirtualSize bytes) of the sections read ahead, by name.
    pub contents: BTreeMap<&'static str, Arc<[u8]>>,
    pub kernel: KernelImage,
}

impl Uki {
    /// Read and check the UKI at `path` (the name is used in errors).
    pub fn read(file: &File, path: &str) -> Result<Uki, UkiError> {
        let len = file
            .metadata()
            .map_err(|error| UkiError::Io {
                path: path.to_string(),
                offset: 0,
                error,
            })?
            .len();
        Self::from_source(&FileSource { file, len }, path)
    }

    /// Read and check a UKI from any byte source.
    pub fn from_source<S: ByteSource + ?Sized>(src: &S, path: &str) -> Result<Uki, UkiError> {
        let io = |offset: u64| {
            move |error| UkiError::Io {
                path: path.to_string(),
                offset,
                error,
            }
        };
        let image_len = src.len();
        let header_bytes = read_headers(image_len, |o, n| src.read_at(o, n).map_err(io(o)))?
            .map_err(UkiError::Pe)?;
        let pe = PeImage::parse(&header_bytes, image_len)?;
        if pe.machine != MACHINE_AMD64 {
            return Err(UkiError::NotX64 {
                machine: pe.machine,
            });
        }
        if header_bytes.get(0x202..0x206) == Some(b"HdrS".as_slice()) {
            return Err(UkiError::HasLinuxSetupHeader);
        }

        let sdmagic = pe.section(".sdmagic").ok_or(UkiError::NoSdMagic)?;
        let sd_bytes = read_section(src, sdmagic, MAX_SMALL_SECTION, path)?;
        let stub = StubVersion::parse(&sd_bytes).ok_or_else(|| UkiError::BadSdMagic {
            offset: u64::from(sdmagic.pointer_to_raw_data),
            text: String::from_utf8_lossy(&sd_bytes)
                .trim_end_matches('\0')
                .chars()
                .take(80)
                .collect(),
        })?;
        check_stub(&stub)?;

        let sections = sections::locate(&pe)?;
        let mut contents = BTreeMap::new();
        for s in &sections {
            if READ_AHEAD.contains(&s.name) {
                let cap = if s.name == ".ucode" {
                    MAX_UCODE_SECTION
                } else {
                    MAX_SMALL_SECTION
                };
                contents.insert(s.name, Arc::from(read_section(src, &s.header, cap, path)?));
            }
        }

        let linux = sections
            .iter()
            .find(|s| s.name == ".linux")
            .ok_or(UkiError::MissingLinux)?;
        let kernel = read_kernel(src, &linux.header, path)?;
        Ok(Uki {
            pe,
            header_bytes: Arc::from(header_bytes),
            stub,
            sections,
            contents,
            kernel,
        })
    }

    /// The located section `name`, when the stub finds it.
    pub fn section(&self, name: &str) -> Option<&UkiSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The command line as the kernel receives it (text, measured LoadOptions bytes),
    /// or `None` without a `.cmdline` section (the stub then sets no LoadOptions and the
    /// kernel measures nothing).
    pub fn cmdline(&self) -> Option<(String, Vec<u8>)> {
        self.contents
            .get(".cmdline")
            .map(|c| cmdline::load_options(c))
    }

    /// The `.uname` text (kernel release), when present.
    pub fn uname(&self) -> Option<String> {
        self.contents.get(".uname").map(|c| {
            String::from_utf8_lossy(c)
                .trim_end_matches('\0')
                .trim()
                .to_string()
        })
    }
}

/// What each stub version measures differently; only 257 is modelled.
fn check_stub(stub: &StubVersion) -> Result<(), UkiError> {
    let why = match stub.major {
        SUPPORTED_STUB_MAJOR => return Ok(()),
        0..=254 => {
            "older stubs start kernels without the stub's LoadImage path (no second \
             EV_EFI_BOOT_SERVICES_APPLICATION) or measure a different section set"
        }
        255 | 256 => {
            "255/256 measure no .profile/.dtbauto/.hwids and append no .extra/os-release \
             cpio to the initrd, so the 'Linux initrd' digest differs"
        }
        _ => "newer stubs may add sections or initrd parts (e.g. SMBIOS events); re-check against a boot log before adding support",
    };
    Err(UkiError::UnsupportedStub {
        version: stub.text.clone(),
        why,
    })
}

/// Read the headers: first a small prefix to learn the section table's end, then all.
/// The outer `Result` is I/O, the inner one parsing.
fn read_headers<E>(
    image_len: u64,
    read: impl Fn(u64, usize) -> Result<Vec<u8>, E>,
) -> Result<Result<Vec<u8>, PeError>, E> {
    let first = usize::try_from(image_len.min(4096)).unwrap_or(4096);
    let prefix = read(0, first)?;
    let need = match PeImage::headers_len(&prefix) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    if need <= prefix.len() {
        return Ok(Ok(prefix));
    }
    let need_u64 = need as u64;
    if need > MAX_HEADERS_LEN || need_u64 > image_len {
        // Let the parser name the field that runs past the end.
        return Ok(PeImage::parse(&prefix, image_len).map(|_| prefix));
    }
    Ok(Ok(read(0, need)?))
}

/// The in-memory contents of a section: `min(VirtualSize, SizeOfRawData)` bytes from
/// the file, zero-filled up to VirtualSize (what the loader puts at its address).
fn read_section<S: ByteSource + ?Sized>(
    src: &S,
    s: &SectionHeader,
    cap: u32,
    path: &str,
) -> Result<Vec<u8>, UkiError> {
    if s.virtual_size > cap {
        return Err(UkiError::SectionTooLarge {
            name: s.name(),
            header_offset: s.header_offset,
            size: s.virtual_size,
            max: cap,
        });
    }
    let offset = u64::from(s.pointer_to_raw_data);
    let mut buf = src
        .read_at(offset, s.file_backed_len() as usize)
        .map_err(|error| UkiError::Io {
            path: path.to_string(),
            offset,
            error,
        })?;
    buf.resize(s.virtual_size as usize, 0);
    Ok(buf)
}

/// Parse the kernel's PE headers from the start of `.linux` (as loaded in memory).
fn read_kernel<S: ByteSource + ?Sized>(
    src: &S,
    linux: &SectionHeader,
    path: &str,
) -> Result<KernelImage, UkiError> {
    let base = u64::from(linux.pointer_to_raw_data);
    let file_backed = u64::from(linux.file_backed_len());
    let image_len = u64::from(linux.virtual_size);
    // Bytes of the in-memory section: from the file, then zeros past SizeOfRawData.
    let read = |offset: u64, len: usize| -> Result<Vec<u8>, UkiError> {
        let from_file = file_backed.saturating_sub(offset).min(len as u64) as usize;
        let mut v = if from_file > 0 {
            let at = base.saturating_add(offset);
            src.read_at(at, from_file).map_err(|error| UkiError::Io {
                path: path.to_string(),
                offset: at,
                error,
            })?
        } else {
            Vec::new()
        };
        v.resize(len, 0);
        Ok(v)
    };
    let kerr = |error| UkiError::Kernel {
        section_offset: base,
        error,
    };
    let header_bytes = read_headers(image_len, read)?.map_err(kerr)?;
    let pe = PeImage::parse(&header_bytes, image_len).map_err(kerr)?;
    if pe.machine != MACHINE_AMD64 {
        return Err(UkiError::KernelNotX64(pe.machine));
    }
    // stub pe.c `pe_kernel_info`: LINUX_INITRD_MEDIA_GUID support (kernel EFI stub 1.0)
    // is what makes the stub use LoadImage; older kernels take the handover path.
    if pe.major_image_version < 1 {
        return Err(UkiError::KernelHandover(pe.major_image_version));
    }
    // The Authenticode ranges must be computable (certificate table size etc.).
    pe.authenticode_ranges().map_err(kerr)?;
    Ok(KernelImage {
        pe,
        header_bytes: Arc::from(header_bytes),
    })
}
