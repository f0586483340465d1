//! Synthetic PE images and UKIs built in tests (and the benchmark), with full control
//! over every field the parser and the digests depend on.
#![allow(dead_code)]

/// One section to lay out.
#[derive(Clone, Debug)]
pub struct Sec {
    pub name: &'static str,
    pub data: Vec<u8>,
    /// VirtualSize; default: `data.len()`.
    pub virtual_size: Option<u32>,
    /// SizeOfRawData; default: `data.len()` rounded up to the file alignment.
    pub raw_size: Option<u32>,
}

impl Sec {
    pub fn new(name: &'static str, data: impl Into<Vec<u8>>) -> Self {
        Self {
            name,
            data: data.into(),
            virtual_size: None,
            raw_size: None,
        }
    }
}

/// A PE/COFF image description.
#[derive(Clone, Debug)]
pub struct PeSpec {
    pub pe32plus: bool,
    pub machine: u16,
    pub major_image_version: u16,
    pub n_rva: u32,
    pub file_align: u32,
    pub sections: Vec<Sec>,
    /// Bytes after the last section (before any certificate table).
    pub trailing: Vec<u8>,
    /// Attribute certificate table appended at the end (security directory set).
    pub cert: Option<Vec<u8>>,
    pub checksum: u32,
}

impl Default for PeSpec {
    fn default() -> Self {
        Self {
            pe32plus: true,
            machine: 0x8664,
            major_image_version: 1,
            n_rva: 16,
            file_align: 0x200,
            sections: Vec::new(),
            trailing: Vec::new(),
            cert: None,
            checksum: 0,
        }
    }
}

pub const E_LFANEW: usize = 0x80;

fn align(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

/// Where things landed in a built image.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub checksum_offset: usize,
    pub security_entry_offset: Option<usize>,
    pub size_of_headers: usize,
    /// (PointerToRawData, SizeOfRawData) per section, in table order.
    pub raw: Vec<(usize, usize)>,
    pub section_table: usize,
    pub trailing_offset: usize,
    pub cert_offset: Option<usize>,
}

impl PeSpec {
    pub fn build(&self) -> Vec<u8> {
        self.build_with_layout().0
    }

    pub fn build_with_layout(&self) -> (Vec<u8>, Layout) {
        let fa = self.file_align as usize;
        let opt_fixed = if self.pe32plus { 112 } else { 96 };
        let opt_size = opt_fixed + 8 * self.n_rva as usize;
        let opt = E_LFANEW + 24;
        let section_table = opt + opt_size;
        let headers_end = section_table + 40 * self.sections.len();
        let size_of_headers = align(headers_end, fa);
        let mut out = vec![0u8; size_of_headers];
        out[0..2].copy_from_slice(b"MZ");
        out[0x3c..0x40].copy_from_slice(&(E_LFANEW as u32).to_le_bytes());
        out[E_LFANEW..E_LFANEW + 4].copy_from_slice(b"PE\0\0");
        let coff = E_LFANEW + 4;
        out[coff..coff + 2].copy_from_slice(&self.machine.to_le_bytes());
        out[coff + 2..coff + 4].copy_from_slice(&(self.sections.len() as u16).to_le_bytes());
        out[coff + 16..coff + 18].copy_from_slice(&(opt_size as u16).to_le_bytes());
        out[coff + 18..coff + 20].copy_from_slice(&0x0206u16.to_le_bytes());
        let magic: u16 = if self.pe32plus { 0x20b } else { 0x10b };
        out[opt..opt + 2].copy_from_slice(&magic.to_le_bytes());
        out[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes());
        out[opt + 36..opt + 40].copy_from_slice(&self.file_align.to_le_bytes());
        out[opt + 44..opt + 46].copy_from_slice(&self.major_image_version.to_le_bytes());
        out[opt + 60..opt + 64].copy_from_slice(&(size_of_headers as u32).to_le_bytes());
        out[opt + 64..opt + 68].copy_from_slice(&self.checksum.to_le_bytes());
        out[opt + 68..opt + 70].copy_from_slice(&10u16.to_le_bytes()); // EFI application
        let nrva = opt + opt_fixed - 4;
        out[nrva..nrva + 4].copy_from_slice(&self.n_rva.to_le_bytes());
        let mut layout = Layout {
            checksum_offset: opt + 64,
            security_entry_offset: (self.n_rva > 4).then_some(opt + opt_fixed + 4 * 8),
            size_of_headers,
            section_table,
            ..Default::default()
        };
        // Fill the unused header tail with a pattern so header-range bugs show.
        for (i, b) in out.iter_mut().enumerate().skip(headers_end) {
            *b = (i % 251) as u8;
        }
        let mut va = 0x1000u32;
        for (i, s) in self.sections.iter().enumerate() {
            let ptr = out.len();
            let raw = s
                .raw_size
                .map_or_else(|| align(s.data.len(), fa), |r| r as usize);
            let vs = s.virtual_size.unwrap_or(s.data.len() as u32);
            let mut body = s.data.clone();
            body.resize(raw, 0xEE); // raw padding is not zero: VirtualSize bugs show
            out.extend_from_slice(&body);
            let h = section_table + 40 * i;
            let mut name = [0u8; 8];
            name[..s.name.len()].copy_from_slice(s.name.as_bytes());
            out[h..h + 8].copy_from_slice(&name);
            out[h + 8..h + 12].copy_from_slice(&vs.to_le_bytes());
            out[h + 12..h + 16].copy_from_slice(&va.to_le_bytes());
            out[h + 16..h + 20].copy_from_slice(&(raw as u32).to_le_bytes());
            out[h + 20..h + 24]
                .copy_from_slice(&(if raw == 0 { 0 } else { ptr as u32 }).to_le_bytes());
            out[h + 36..h + 40].copy_from_slice(&0x4000_0040u32.to_le_bytes());
            layout.raw.push((ptr, raw));
            va += (vs.max(1) as usize).div_ceil(0x1000) as u32 * 0x1000;
        }
        layout.trailing_offset = out.len();
        out.extend_from_slice(&self.trailing);
        if let Some(cert) = &self.cert {
            let at = out.len();
            out.extend_from_slice(cert);
            let e = layout
                .security_entry_offset
                .expect("cert needs >4 data directories");
            out[e..e + 4].copy_from_slice(&(at as u32).to_le_bytes());
            out[e + 4..e + 8].copy_from_slice(&(cert.len() as u32).to_le_bytes());
            layout.cert_offset = Some(at);
        }
        let soi = va;
        out[opt + 56..opt + 60].copy_from_slice(&soi.to_le_bytes());
        (out, layout)
    }
}

pub const SDMAGIC: &[u8] = b"#### LoaderInfo: systemd-stub 257.13 ####\0";
pub const SBAT: &[u8] =
    b"sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n";

/// A kernel-like PE for `.linux` (x86-64, MajorImageVersion 1, `size` bytes of text).
pub fn kernel(size: usize, seed: u8) -> Vec<u8> {
    let text: Vec<u8> = (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    PeSpec {
        sections: vec![Sec::new(".text", text)],
        ..Default::default()
    }
    .build()
}

/// A UKI-shaped image: stub sections, then .osrel/.cmdline/.uname/.linux/.initrd as
/// ukify lays them out.
pub struct UkiSpec {
    pub osrel: Vec<u8>,
    pub cmdline: Option<Vec<u8>>,
    pub uname: Option<Vec<u8>>,
    pub linux: Vec<u8>,
    pub initrd: Option<Vec<u8>>,
    pub sdmagic: Vec<u8>,
    pub extra: Vec<Sec>,
}

impl Default for UkiSpec {
    fn default() -> Self {
        Self {
            osrel: b"ID=test\nPRETTY_NAME=\"Synthetic\"\n".to_vec(),
            cmdline: Some(b"console=ttyS0 quiet\n".to_vec()),
            uname: Some(b"6.12.0-test".to_vec()),
            linux: kernel(5000, 7),
            initrd: Some((0..3001u32).map(|i| (i * 7) as u8).collect()),
            sdmagic: SDMAGIC.to_vec(),
            extra: Vec::new(),
        }
    }
}

impl UkiSpec {
    pub fn sections(&self) -> Vec<Sec> {
        let mut v = vec![
            Sec::new(".text", vec![0xC3; 700]),
            Sec::new(".sbat", SBAT.to_vec()),
            Sec::new(".sdmagic", self.sdmagic.clone()),
            Sec::new(".osrel", self.osrel.clone()),
        ];
        if let Some(c) = &self.cmdline {
            v.push(Sec::new(".cmdline", c.clone()));
        }
        if let Some(u) = &self.uname {
            v.push(Sec::new(".uname", u.clone()));
        }
        v.push(Sec::new(".linux", self.linux.clone()));
        if let Some(i) = &self.initrd {
            v.push(Sec::new(".initrd", i.clone()));
        }
        v.extend(self.extra.iter().cloned());
        v
    }

    pub fn build(&self) -> Vec<u8> {
        PeSpec {
            sections: self.sections(),
            ..Default::default()
        }
        .build()
    }
}
