//! PE/COFF parsing and Authenticode on synthetic images built field by field.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod uki_fixture;

use cocoon_measurements::codec::ParseErrorKind;
use cocoon_measurements::pe::{authenticode_sha384, OptionalMagic, PeError, PeImage};
use cocoon_measurements::Digest48;
use uki_fixture::{PeSpec, Sec};

fn spec() -> PeSpec {
    PeSpec {
        sections: vec![
            Sec::new(".text", vec![0x90; 1000]),
            Sec::new(".data", b"hello".to_vec()),
            Sec {
                virtual_size: Some(0x3000),
                ..Sec::new(".bss", vec![1, 2, 3])
            },
        ],
        trailing: b"trailing data after the sections".to_vec(),
        ..Default::default()
    }
}

/// The Authenticode digest by the spec's recipe, written independently of the library:
/// cut CheckSum and the certificate directory entry out of the headers, append the
/// sections by file offset, then the rest of the file minus the certificate table.
fn reference_authenticode(img: &[u8], l: &uki_fixture::Layout, cert_len: usize) -> Digest48 {
    let mut m = Vec::new();
    let cks = l.checksum_offset;
    m.extend_from_slice(&img[..cks]);
    match l.security_entry_offset {
        Some(sec) => {
            m.extend_from_slice(&img[cks + 4..sec]);
            m.extend_from_slice(&img[sec + 8..l.size_of_headers]);
        }
        None => m.extend_from_slice(&img[cks + 4..l.size_of_headers]),
    }
    let mut raw = l.raw.clone();
    raw.sort();
    let mut sum = l.size_of_headers;
    for (p, n) in raw.into_iter().filter(|r| r.1 > 0) {
        m.extend_from_slice(&img[p..p + n]);
        sum += n;
    }
    m.extend_from_slice(&img[sum..img.len() - cert_len]);
    Digest48::sha384(&m)
}

#[test]
fn parses_pe32_plus_headers_and_sections() {
    let (img, l) = spec().build_with_layout();
    let pe = PeImage::parse(&img, img.len() as u64).unwrap();
    assert_eq!(pe.magic, OptionalMagic::Pe32Plus);
    assert_eq!(pe.machine, 0x8664);
    assert_eq!(pe.major_image_version, 1);
    assert_eq!(pe.e_lfanew, uki_fixture::E_LFANEW);
    assert_eq!(pe.checksum_offset, l.checksum_offset);
    assert_eq!(pe.size_of_headers as usize, l.size_of_headers);
    assert_eq!(pe.data_directories.len(), 16);
    assert_eq!(
        pe.security_directory().unwrap().entry_offset,
        l.security_entry_offset.unwrap()
    );
    let names: Vec<String> = pe.sections.iter().map(|s| s.name()).collect();
    assert_eq!(names, [".text", ".data", ".bss"]);
    let bss = pe.section(".bss").unwrap();
    assert_eq!(bss.virtual_size, 0x3000);
    assert_eq!(bss.size_of_raw_data, 0x200);
    assert_eq!(bss.file_backed_len(), 0x200);
    let data = pe.section(".data").unwrap();
    assert_eq!(
        data.file_backed_len(),
        5,
        "VirtualSize bounds what is loaded"
    );
    assert_eq!(
        PeImage::headers_len(&img).unwrap(),
        l.section_table + 3 * 40
    );
}

#[test]
fn parses_pe32() {
    let img = PeSpec {
        pe32plus: false,
        ..spec()
    }
    .build();
    let pe = PeImage::parse(&img, img.len() as u64).unwrap();
    assert_eq!(pe.magic, OptionalMagic::Pe32);
    assert_eq!(pe.number_of_rva_and_sizes, 16);
    assert_eq!(pe.checksum_offset, uki_fixture::E_LFANEW + 24 + 64);
}

#[test]
fn authenticode_matches_the_reference_recipe() {
    for pe32plus in [true, false] {
        for n_rva in [16, 5, 4, 0] {
            let s = PeSpec {
                pe32plus,
                n_rva,
                ..spec()
            };
            let (img, l) = s.build_with_layout();
            assert_eq!(
                authenticode_sha384(&img).unwrap(),
                reference_authenticode(&img, &l, 0),
                "pe32plus {pe32plus} n_rva {n_rva}"
            );
        }
    }
}

#[test]
fn checksum_and_certificate_table_are_excluded() {
    let plain = spec().build();
    let base = authenticode_sha384(&plain).unwrap();
    let with_checksum = PeSpec {
        checksum: 0xdead_beef,
        ..spec()
    }
    .build();
    assert_ne!(with_checksum, plain);
    assert_eq!(authenticode_sha384(&with_checksum).unwrap(), base);
    let (signed, l) = PeSpec {
        cert: Some(vec![0x30; 1234]),
        ..spec()
    }
    .build_with_layout();
    assert_eq!(l.cert_offset, Some(plain.len()));
    assert_eq!(authenticode_sha384(&signed).unwrap(), base);
    assert_eq!(reference_authenticode(&signed, &l, 1234), base);
}

#[test]
fn every_other_byte_counts() {
    let (img, l) = spec().build_with_layout();
    let base = authenticode_sha384(&img).unwrap();
    // A header byte, a section byte, a section's raw padding past VirtualSize, and
    // trailing data: each changes the digest.
    for at in [
        2usize,
        l.raw[0].0 + 10,
        l.raw[1].0 + 100,
        l.trailing_offset + 3,
    ] {
        let mut m = img.clone();
        m[at] ^= 0xff;
        assert_ne!(authenticode_sha384(&m).unwrap(), base, "byte {at}");
    }
}

#[test]
fn sections_are_hashed_in_file_order_not_table_order() {
    let (mut img, l) = spec().build_with_layout();
    // Swap the first two section headers: the table order no longer is the file order.
    let (a, b) = (l.section_table, l.section_table + 40);
    let first: Vec<u8> = img[a..a + 40].to_vec();
    let second: Vec<u8> = img[b..b + 40].to_vec();
    img[a..a + 40].copy_from_slice(&second);
    img[b..b + 40].copy_from_slice(&first);
    let pe = PeImage::parse(&img, img.len() as u64).unwrap();
    assert_eq!(pe.sections[0].name(), ".data");
    let got = authenticode_sha384(&img).unwrap();
    // `reference_authenticode` sorts by PointerToRawData.
    assert_eq!(got, reference_authenticode(&img, &l, 0));
    // Hashing in table order would differ.
    let mut table_order = l.clone();
    table_order.raw.swap(0, 1);
    let mut m = Vec::new();
    let cks = l.checksum_offset;
    let sec = l.security_entry_offset.unwrap();
    m.extend_from_slice(&img[..cks]);
    m.extend_from_slice(&img[cks + 4..sec]);
    m.extend_from_slice(&img[sec + 8..l.size_of_headers]);
    for (p, n) in &table_order.raw {
        m.extend_from_slice(&img[*p..p + n]);
    }
    m.extend_from_slice(&img[l.trailing_offset..]);
    assert_ne!(got, Digest48::sha384(&m));
}

#[test]
fn ranges_cover_the_image_exactly_once_but_the_exclusions() {
    let (img, l) = PeSpec {
        cert: Some(vec![1; 64]),
        ..spec()
    }
    .build_with_layout();
    let pe = PeImage::parse(&img, img.len() as u64).unwrap();
    let ranges = pe.authenticode_ranges().unwrap();
    let covered: u64 = ranges.iter().map(|r| r.len).sum();
    assert_eq!(covered as usize, img.len() - 4 - 8 - 64);
    assert_eq!(ranges[0].offset, 0);
    assert_eq!(ranges[0].len as usize, l.checksum_offset);
    assert!(ranges.windows(2).all(|w| w[0].end() <= w[1].offset));
}

fn parse(img: &[u8]) -> PeError {
    PeImage::parse(img, img.len() as u64).unwrap_err()
}

#[test]
fn bad_magic_and_signature_are_named() {
    let img = spec().build();
    let mut m = img.clone();
    m[0] = b'X';
    assert!(matches!(parse(&m), PeError::BadDosMagic { found } if found == *b"XZ"));
    let mut m = img.clone();
    m[uki_fixture::E_LFANEW + 1] = b'X';
    let e = parse(&m);
    assert!(matches!(e, PeError::BadPeSignature { offset, .. } if offset == uki_fixture::E_LFANEW));
    assert!(e.to_string().contains("byte offset 128"), "{e}");
    let mut m = img.clone();
    m[uki_fixture::E_LFANEW + 24] = 0x0b;
    m[uki_fixture::E_LFANEW + 25] = 0x03;
    assert!(matches!(
        parse(&m),
        PeError::BadOptionalMagic { found: 0x30b, .. }
    ));
}

#[test]
fn truncated_headers_name_the_field_and_offset() {
    let img = spec().build();
    for cut in [10usize, 0x3e, 0x82, 0x90, 0xa0, 0x180] {
        let e = parse(&img[..cut]);
        let PeError::Parse(p) = &e else {
            panic!("cut {cut}: {e:?}")
        };
        assert!(
            matches!(p.kind, ParseErrorKind::Truncated { .. }),
            "cut {cut}: {e}"
        );
        assert!(p.offset <= cut, "cut {cut}: {e}");
        assert!(e.to_string().contains("PE "), "{e}");
    }
    let e = parse(&img[..0x90]);
    assert!(e.to_string().contains("PE COFF header"), "{e}");
}

#[test]
fn absurd_counts_are_refused() {
    let img = spec().build();
    let mut m = img.clone();
    let nsec = uki_fixture::E_LFANEW + 6;
    m[nsec..nsec + 2].copy_from_slice(&5000u16.to_le_bytes());
    assert!(matches!(
        parse(&m),
        PeError::TooManySections { count: 5000, offset, .. } if offset == nsec
    ));
    let mut m = img.clone();
    let nrva = uki_fixture::E_LFANEW + 24 + 108;
    m[nrva..nrva + 4].copy_from_slice(&17u32.to_le_bytes());
    assert!(matches!(
        parse(&m),
        PeError::TooManyDataDirectories { count: 17, .. }
    ));
    // SizeOfOptionalHeader too small for the 16 directories it declares.
    let mut m = img.clone();
    let soh = uki_fixture::E_LFANEW + 20;
    m[soh..soh + 2].copy_from_slice(&120u16.to_le_bytes());
    assert!(matches!(
        parse(&m),
        PeError::OptionalHeaderTooSmall { size: 120, .. }
    ));
}

#[test]
fn section_beyond_eof_names_the_section() {
    let img = spec().build();
    let e = parse(&img[..img.len() - 100]);
    // The trailing data is 32 bytes: cutting 100 bytes cuts into .bss.
    match e {
        PeError::SectionBeyondEof { name, index, .. } => {
            assert_eq!(name, ".bss");
            assert_eq!(index, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn size_of_headers_and_cert_table_are_checked() {
    let (img, l) = spec().build_with_layout();
    let mut m = img.clone();
    let at = uki_fixture::E_LFANEW + 24 + 60;
    m[at..at + 4].copy_from_slice(&0x10u32.to_le_bytes());
    assert!(matches!(
        parse(&m),
        PeError::BadSizeOfHeaders { size: 0x10, .. }
    ));
    let mut m = img.clone();
    let sec = l.security_entry_offset.unwrap();
    m[sec + 4..sec + 8].copy_from_slice(&10_000u32.to_le_bytes());
    let pe = PeImage::parse(&m, m.len() as u64).unwrap();
    assert!(matches!(
        pe.authenticode_ranges().unwrap_err(),
        PeError::CertTableTooLarge {
            cert_size: 10_000,
            ..
        }
    ));
}

#[test]
fn section_name_matching_follows_systemd_stub() {
    let img = PeSpec {
        sections: vec![Sec::new(".linuxxx", vec![1]), Sec::new(".linux", vec![2])],
        ..Default::default()
    }
    .build();
    let pe = PeImage::parse(&img, img.len() as u64).unwrap();
    assert_eq!(pe.section(".linux").unwrap().index, 1);
    assert!(pe.sections[0].name_is(".linuxxx"));
    assert!(!pe.sections[0].name_is(".linux"));
    assert!(pe.section(".toolongname").is_none());
}
