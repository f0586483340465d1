#![allow(clippy::arithmetic_side_effects)]

use super::synth::{build, typical, SynthSection};
use super::*;

fn put_u32(img: &mut [u8], at: usize, v: u32) {
    img[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(img: &mut [u8], at: usize, v: u64) {
    img[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn typical_image_parses() {
    let img = build(&typical());
    let m = parse(&img.bytes).unwrap();
    assert_eq!(m.descriptor_offset, img.descriptor_offset);
    assert_eq!(m.version, 1);
    assert_eq!(m.sections.len(), 4);
    let bfv = &m.sections[0];
    assert_eq!(bfv.section_type, SectionType::Bfv);
    assert_eq!(bfv.data_offset, 0);
    assert_eq!(bfv.raw_data_size, 0x2000);
    assert_eq!(bfv.memory_address, 0xffff_e000);
    assert!(bfv.mr_extend() && !bfv.page_aug());
    assert_eq!(bfv.entry_offset, img.entry_offsets[0]);
    assert_eq!(m.sections[1].data_offset, 0x2000);
    assert_eq!(m.sections[3].section_type, SectionType::TdHob);
    assert_eq!(m.added_bytes(), 0x7000);
    assert_eq!(m.extended_bytes(), 0x2000);
}

#[test]
fn table_lists_entries_last_first() {
    let img = build(&typical());
    let t = parse_table(&img.bytes).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].guid, Guid::TDX_METADATA_OFFSET);
    assert_eq!(t[0].data_offset, img.metadata_offset_at);
    assert_eq!(t[0].data_len, 4);
    assert_eq!(t[1].guid, Guid([0x11; 16]));
    assert_eq!(t[1].data_len, 6);
}

#[test]
fn too_short_input_is_truncated_not_a_panic() {
    for len in [0, 1, 0x31, 0x32] {
        let e = parse(&vec![0u8; len]).unwrap_err();
        if len < 0x32 {
            assert!(matches!(e, TdvfError::Parse(_)), "{len}: {e}");
        } else {
            assert!(matches!(e, TdvfError::NoFooter { .. }), "{len}: {e}");
        }
    }
}

#[test]
fn footer_guid_corruption() {
    let mut img = build(&typical());
    let at = img.footer_length_at + 2;
    img.bytes[at + 5] ^= 0xff;
    let e = parse(&img.bytes).unwrap_err();
    assert!(matches!(e, TdvfError::NoFooter { offset, .. } if offset == at));
    assert!(e.to_string().contains("ovmf_table.footer_guid"));
}

#[test]
fn table_length_errors() {
    let mut img = build(&typical());
    let at = img.footer_length_at;
    img.bytes[at..at + 2].copy_from_slice(&10u16.to_le_bytes());
    let e = parse(&img.bytes).unwrap_err();
    assert!(
        matches!(e, TdvfError::TableLength { offset, .. } if offset == at),
        "{e}"
    );

    img.bytes[at..at + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    let small: Vec<u8> = img.bytes[img.bytes.len() - 0x1000..].to_vec();
    let e = parse(&small).unwrap_err();
    assert!(matches!(e, TdvfError::TableLength { .. }), "{e}");
}

#[test]
fn entry_length_errors() {
    let mut img = build(&typical());
    // The TDX entry's u16 length sits 4 bytes after its data.
    let at = img.metadata_offset_at + 4;
    img.bytes[at..at + 2].copy_from_slice(&3u16.to_le_bytes());
    let e = parse(&img.bytes).unwrap_err();
    assert!(
        matches!(e, TdvfError::EntryLength { index: 0, offset, .. } if offset == at),
        "{e}"
    );
    img.bytes[at..at + 2].copy_from_slice(&500u16.to_le_bytes());
    let e = parse(&img.bytes).unwrap_err();
    assert!(matches!(e, TdvfError::EntryLength { index: 0, .. }), "{e}");
}

#[test]
fn missing_and_duplicate_tdx_entry() {
    let mut img = build(&typical());
    let guid_at = img.metadata_offset_at + 6;
    img.bytes[guid_at] ^= 1;
    assert!(matches!(
        parse(&img.bytes).unwrap_err(),
        TdvfError::NoTdxMetadata { .. }
    ));
    // Make the unrelated entry a second TDX metadata offset entry.
    let mut img = build(&typical());
    let other_guid_at = img.metadata_offset_at - 16;
    img.bytes[other_guid_at..other_guid_at + 16].copy_from_slice(&Guid::TDX_METADATA_OFFSET.0);
    let e = parse(&img.bytes).unwrap_err();
    assert!(
        matches!(e, TdvfError::DuplicateTdxMetadata { index: 1, offset } if offset == other_guid_at),
        "{e}"
    );
}

#[test]
fn metadata_offset_out_of_file() {
    let mut img = build(&typical());
    let len = img.bytes.len() as u32;
    for bad in [0u32, 8, len + 1, u32::MAX] {
        put_u32(&mut img.bytes, img.metadata_offset_at, bad);
        let e = parse(&img.bytes).unwrap_err();
        assert!(
            matches!(e, TdvfError::MetadataOffset { value, .. } if value == bad),
            "{bad}: {e}"
        );
    }
    // Points at bytes that are not a descriptor.
    put_u32(&mut img.bytes, img.metadata_offset_at, len);
    assert!(matches!(
        parse(&img.bytes).unwrap_err(),
        TdvfError::Signature { offset: 0, .. }
    ));
}

#[test]
fn descriptor_header_errors() {
    let base = build(&typical());
    let d = base.descriptor_offset;
    let mut img = base.bytes.clone();
    put_u32(&mut img, d + 8, 2);
    assert!(
        matches!(parse(&img).unwrap_err(), TdvfError::Version { version: 2, offset } if offset == d + 8)
    );

    let mut img = base.bytes.clone();
    put_u32(&mut img, d + 12, 0);
    assert!(matches!(
        parse(&img).unwrap_err(),
        TdvfError::SectionCount { count: 0, .. }
    ));
    put_u32(&mut img, d + 12, 65);
    assert!(matches!(
        parse(&img).unwrap_err(),
        TdvfError::SectionCount { count: 65, .. }
    ));

    let mut img = base.bytes.clone();
    put_u32(&mut img, d + 4, 16 + 32 * 3);
    assert!(matches!(
        parse(&img).unwrap_err(),
        TdvfError::Length { expected: 144, .. }
    ));

    // A descriptor in the last 0x20 bytes whose section runs past the end of the file.
    let mut img = base.bytes.clone();
    let at = img.len() - 0x20;
    img[at..at + 4].copy_from_slice(b"TDVF");
    put_u32(&mut img, at + 4, 48);
    put_u32(&mut img, at + 8, 1);
    put_u32(&mut img, at + 12, 1);
    put_u32(&mut img, base.metadata_offset_at, 0x20);
    let e = parse(&img).unwrap_err();
    match e {
        TdvfError::Parse(p) => {
            assert_eq!(p.field, "tdvf.sections[0]");
            assert_eq!(p.offset, img.len() - 0x10);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn section_field_errors_name_field_and_offset() {
    let base = build(&typical());
    let e2 = base.entry_offsets[2];

    let mut img = base.bytes.clone();
    put_u64(&mut img, e2 + 8, 0x80_0800);
    let e = parse(&img).unwrap_err();
    assert_eq!(
        e,
        TdvfError::Unaligned {
            index: 2,
            field: "memory_address",
            offset: e2 + 8,
            value: 0x80_0800
        }
    );
    assert!(e.to_string().contains(&format!(
        "tdvf.sections[2].memory_address at byte offset {}",
        e2 + 8
    )));

    let mut img = base.bytes.clone();
    put_u64(&mut img, e2 + 16, 0x2800);
    assert!(matches!(
        parse(&img).unwrap_err(),
        TdvfError::Unaligned {
            field: "memory_data_size",
            ..
        }
    ));

    let mut img = base.bytes.clone();
    put_u32(&mut img, e2 + 24, 9);
    assert_eq!(
        parse(&img).unwrap_err(),
        TdvfError::UnknownSectionType {
            index: 2,
            offset: e2 + 24,
            value: 9
        }
    );

    let mut img = base.bytes.clone();
    put_u32(&mut img, e2 + 28, 4);
    assert!(matches!(
        parse(&img).unwrap_err(),
        TdvfError::InvalidSection {
            field: "attributes",
            ..
        }
    ));

    // Raw data past the end of the file.
    let e0 = base.entry_offsets[0];
    let mut img = base.bytes.clone();
    let far = img.len() as u32 - 0x1000;
    put_u32(&mut img, e0, far);
    let e = parse(&img).unwrap_err();
    assert!(
        matches!(e, TdvfError::RawDataOutOfFile { index: 0, offset, .. } if offset == e0),
        "{e}"
    );

    // Raw data larger than the memory it goes to.
    let mut img = base.bytes.clone();
    put_u32(&mut img, e0 + 4, 0x3000);
    assert!(matches!(
        parse(&img).unwrap_err(),
        TdvfError::InvalidSection {
            field: "raw_data_size",
            ..
        }
    ));

    // GPA range past 52 bits.
    let mut img = base.bytes.clone();
    put_u64(&mut img, e2 + 8, (1 << 52) - 0x1000);
    assert!(matches!(
        parse(&img).unwrap_err(),
        TdvfError::InvalidSection {
            field: "memory_data_size",
            ..
        }
    ));
}

#[test]
fn type_specific_rules() {
    let cases: Vec<(Vec<SynthSection>, &str)> = vec![
        // BFV without MR.EXTEND.
        (
            vec![SynthSection::new(0, 0, 0x1000, 0x1000, vec![1; 0x1000])],
            "attributes",
        ),
        // TD_HOB with raw data.
        (
            vec![
                SynthSection::new(0, 1, 0x1000, 0x1000, vec![1; 0x1000]),
                SynthSection::new(2, 0, 0x2000, 0x1000, vec![1; 0x10]),
            ],
            "raw_data_size",
        ),
        // PAGE.AUG on TempMem.
        (
            vec![
                SynthSection::new(0, 1, 0x1000, 0x1000, vec![1; 0x1000]),
                SynthSection::new(3, 2, 0x2000, 0x1000, vec![]),
            ],
            "attributes",
        ),
        // PAGE.AUG together with MR.EXTEND.
        (
            vec![
                SynthSection::new(0, 1, 0x1000, 0x1000, vec![1; 0x1000]),
                SynthSection::new(4, 3, 0x2000, 0x1000, vec![]),
            ],
            "attributes",
        ),
        // CFV with no raw data.
        (
            vec![
                SynthSection::new(0, 1, 0x1000, 0x1000, vec![1; 0x1000]),
                SynthSection::new(1, 0, 0x2000, 0x1000, vec![]),
            ],
            "raw_data_size",
        ),
    ];
    for (i, (sections, want)) in cases.into_iter().enumerate() {
        let img = build(&sections);
        match parse(&img.bytes).unwrap_err() {
            TdvfError::InvalidSection { field, offset, .. } => {
                assert_eq!(field, want, "case {i}");
                let idx = sections.len() - 1;
                assert!(offset >= img.entry_offsets[idx] && offset < img.entry_offsets[idx] + 32);
            }
            e => panic!("case {i}: {e}"),
        }
    }
}

#[test]
fn overlap_and_missing_bfv() {
    let img = build(&[
        SynthSection::new(0, 1, 0x1000, 0x2000, vec![1; 0x2000]),
        SynthSection::new(3, 0, 0x2000, 0x1000, vec![]),
    ]);
    assert!(matches!(
        parse(&img.bytes).unwrap_err(),
        TdvfError::Overlap {
            index: 1,
            other: 0,
            ..
        }
    ));
    let img = build(&[SynthSection::new(3, 0, 0x2000, 0x1000, vec![])]);
    assert!(matches!(
        parse(&img.bytes).unwrap_err(),
        TdvfError::NoBfv { .. }
    ));
}

#[test]
fn every_prefix_and_suffix_is_handled() {
    let img = build(&typical());
    for cut in (0..img.bytes.len()).step_by(97) {
        // Every strict prefix loses the footer; suffixes may or may not parse, but
        // neither may panic.
        assert!(parse(&img.bytes[..cut]).is_err(), "prefix {cut}");
        let _ = parse(&img.bytes[cut..]);
    }
}
