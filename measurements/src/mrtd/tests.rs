#![allow(clippy::arithmetic_side_effects)]

use super::*;
use crate::tdvf::synth::{build, pattern, typical, SynthSection};

/// The byte stream the TDX module hashes, spelled out from the ABI spec without the
/// library's helpers: 128-byte PAGE.ADD / MR.EXTEND records, then the chunk bytes.
fn add_record(gpa: u64) -> Vec<u8> {
    let mut v = b"MEM.PAGE.ADD".to_vec();
    v.resize(16, 0);
    v.extend_from_slice(&gpa.to_le_bytes());
    v.resize(128, 0);
    v
}

fn extend_records(gpa: u64, page: &[u8]) -> Vec<u8> {
    assert_eq!(page.len(), 4096);
    let mut v = Vec::new();
    for (i, chunk) in page.chunks(256).enumerate() {
        let mut h = b"MR.EXTEND".to_vec();
        h.resize(16, 0);
        h.extend_from_slice(&(gpa + 256 * i as u64).to_le_bytes());
        h.resize(128, 0);
        v.extend_from_slice(&h);
        v.extend_from_slice(chunk);
    }
    v
}

fn mrtd(img: &[u8], order: PageOrder) -> Digest48 {
    mrtd_from_bytes(img, order).unwrap().mrtd
}

#[test]
fn matches_hand_built_stream_in_both_orders() {
    let sections = typical();
    let img = build(&sections);
    let bfv = &sections[0].raw;
    let (p0, p1) = (&bfv[..4096], &bfv[4096..]);
    let tail = |s: &mut Vec<u8>| {
        // CFV (1 page), TempMem (3 pages), TD_HOB (1 page): PAGE.ADD only.
        s.extend(add_record(0xffff_d000));
        for g in [0x80_0000u64, 0x80_1000, 0x80_2000, 0x80_9000] {
            s.extend(add_record(g));
        }
    };

    let mut page_by_page = Vec::new();
    page_by_page.extend(add_record(0xffff_e000));
    page_by_page.extend(extend_records(0xffff_e000, p0));
    page_by_page.extend(add_record(0xffff_f000));
    page_by_page.extend(extend_records(0xffff_f000, p1));
    tail(&mut page_by_page);

    let mut all_first = Vec::new();
    all_first.extend(add_record(0xffff_e000));
    all_first.extend(add_record(0xffff_f000));
    all_first.extend(extend_records(0xffff_e000, p0));
    all_first.extend(extend_records(0xffff_f000, p1));
    tail(&mut all_first);

    let a = mrtd(&img.bytes, PageOrder::PageByPage);
    let b = mrtd(&img.bytes, PageOrder::AllPagesFirst);
    assert_eq!(a, Digest48::sha384(&page_by_page));
    assert_eq!(b, Digest48::sha384(&all_first));
    assert_ne!(a, b, "the two orders must give different MRTDs");
}

#[test]
fn orders_agree_when_extended_sections_are_one_page() {
    let img = build(&[
        SynthSection::new(0, 1, 0x10_0000, 0x1000, pattern(0x1000, 7)),
        SynthSection::new(3, 0, 0x20_0000, 0x4000, vec![]),
    ]);
    assert_eq!(
        mrtd(&img.bytes, PageOrder::PageByPage),
        mrtd(&img.bytes, PageOrder::AllPagesFirst)
    );
}

#[test]
fn page_aug_section_is_not_measured() {
    let mut with_aug = typical();
    with_aug.push(SynthSection::new(
        4,
        ATTR_PAGE_AUG_FOR_TEST,
        0x1_0000_0000,
        0x10_0000,
        vec![],
    ));
    let a = build(&with_aug);
    let b = build(&typical());
    for order in PageOrder::ALL {
        assert_eq!(mrtd(&a.bytes, order), mrtd(&b.bytes, order));
    }
    let r = mrtd_from_bytes(&a.bytes, PageOrder::PageByPage).unwrap();
    let aug = &r.sections[4];
    assert_eq!(aug.measurement, SectionMeasurement::NotMeasured);
    assert_eq!((aug.pages_added, aug.chunks_extended), (0, 0));
    // The same section without PAGE.AUG is added (and changes MRTD).
    let mut plain = typical();
    plain.push(SynthSection::new(3, 0, 0x1_0000_0000, 0x10_0000, vec![]));
    let c = build(&plain);
    assert_ne!(
        mrtd(&c.bytes, PageOrder::PageByPage),
        mrtd(&b.bytes, PageOrder::PageByPage)
    );
}

const ATTR_PAGE_AUG_FOR_TEST: u32 = crate::tdvf::ATTR_PAGE_AUG;

#[test]
fn mr_extend_makes_contents_count() {
    // CFV is not extended: changing its contents leaves MRTD alone.
    let mut s = typical();
    let base = mrtd(&build(&s).bytes, PageOrder::PageByPage);
    s[1].raw[100] ^= 0xff;
    assert_eq!(mrtd(&build(&s).bytes, PageOrder::PageByPage), base);
    // BFV is extended: one flipped byte changes MRTD.
    let mut s = typical();
    s[0].raw[4096 + 300] ^= 1;
    assert_ne!(mrtd(&build(&s).bytes, PageOrder::PageByPage), base);
    // Extending the CFV too changes MRTD.
    let mut s = typical();
    s[1].attributes = 1;
    let r = mrtd_from_bytes(&build(&s).bytes, PageOrder::PageByPage).unwrap();
    assert_ne!(r.mrtd, base);
    assert_eq!(
        r.sections[1].measurement,
        SectionMeasurement::PageAddAndExtend
    );
    assert_eq!(r.sections[1].chunks_extended, 16);
    assert_eq!(r.sections[2].measurement, SectionMeasurement::PageAdd);
    assert_eq!(r.sections[2].pages_added, 3);
}

#[test]
fn memory_past_raw_data_is_zero() {
    let data = pattern(0x2000, 9);
    let mut padded = data[..0x1000].to_vec();
    padded.resize(0x3000, 0);
    let short = build(&[SynthSection::new(
        0,
        1,
        0x4000,
        0x3000,
        data[..0x1000].to_vec(),
    )]);
    let full = build(&[SynthSection::new(0, 1, 0x4000, 0x3000, padded)]);
    // A raw size that ends mid-chunk.
    let mut odd = data[..0x1234].to_vec();
    let odd_img = build(&[SynthSection::new(0, 1, 0x4000, 0x3000, odd.clone())]);
    odd.resize(0x3000, 0);
    let odd_full = build(&[SynthSection::new(0, 1, 0x4000, 0x3000, odd)]);
    for order in PageOrder::ALL {
        assert_eq!(mrtd(&short.bytes, order), mrtd(&full.bytes, order));
        assert_eq!(mrtd(&odd_img.bytes, order), mrtd(&odd_full.bytes, order));
    }
    let r = mrtd_from_bytes(&short.bytes, PageOrder::PageByPage).unwrap();
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(mrtd_from_bytes(&full.bytes, PageOrder::PageByPage)
        .unwrap()
        .notes
        .is_empty());
}

#[test]
fn extended_vmm_content_is_refused() {
    let mut s = typical();
    s[3].attributes = 1; // TD_HOB with MR.EXTEND
    let img = build(&s);
    match mrtd_from_bytes(&img.bytes, PageOrder::PageByPage).unwrap_err() {
        MrtdError::VmmSuppliedContent {
            index,
            offset,
            section_type,
        } => {
            assert_eq!((index, section_type), (3, SectionType::TdHob));
            assert_eq!(offset, img.entry_offsets[3] + 28);
        }
        e => panic!("{e}"),
    }
    // An extended payload stored in the image is fine.
    let mut s = typical();
    s.push(SynthSection::new(
        5,
        1,
        0x100_0000,
        0x1000,
        pattern(0x800, 3),
    ));
    assert!(mrtd_from_bytes(&build(&s).bytes, PageOrder::PageByPage).is_ok());
}

#[test]
fn huge_sections_are_refused_before_hashing() {
    let img = build(&[
        SynthSection::new(0, 1, 0x1000, 0x1000, pattern(0x1000, 1)),
        SynthSection::new(3, 0, 0x1_0000_0000, 8 << 30, vec![]),
    ]);
    assert!(matches!(
        mrtd_from_bytes(&img.bytes, PageOrder::PageByPage).unwrap_err(),
        MrtdError::TooLarge { .. }
    ));
}

#[test]
fn report_fields() {
    let img = build(&typical());
    let r = mrtd_from_bytes(&img.bytes, PageOrder::AllPagesFirst).unwrap();
    assert_eq!(r.page_order, PageOrder::AllPagesFirst);
    assert_eq!(r.firmware_size, img.bytes.len() as u64);
    assert_eq!(r.tdvf_descriptor_offset, img.descriptor_offset);
    assert_eq!(
        r.firmware_sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&img.bytes))
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["page_order"], "all-pages-first");
    assert_eq!(v["sections"][0]["type"], "bfv");
    assert_eq!(v["sections"][0]["measurement"], "page_add_and_extend");
    assert_eq!(v["sections"][0]["memory_address"], 0xffff_e000u64);
    assert_eq!(v["mrtd"].as_str().unwrap().len(), 96);
    let back: MrtdReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn page_order_text() {
    for o in PageOrder::ALL {
        assert_eq!(o.to_string().parse::<PageOrder>().unwrap(), o);
        assert_eq!(
            serde_json::to_value(o).unwrap(),
            serde_json::Value::String(o.to_string())
        );
    }
    assert!("two-pass".parse::<PageOrder>().is_err());
    assert_eq!(PageOrder::default(), PageOrder::PageByPage);
}

#[test]
fn file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.fd");
    assert!(matches!(
        mrtd_from_file(&missing, PageOrder::PageByPage).unwrap_err(),
        MrtdError::Io { .. }
    ));
    let p = dir.path().join("fw.fd");
    let img = build(&typical());
    std::fs::write(&p, &img.bytes).unwrap();
    assert_eq!(
        mrtd_from_file(&p, PageOrder::PageByPage).unwrap(),
        mrtd_from_bytes(&img.bytes, PageOrder::PageByPage).unwrap()
    );
}
