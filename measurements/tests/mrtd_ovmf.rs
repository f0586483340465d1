//! MRTD of a real firmware: Debian trixie's OVMF (`ovmf` 2025.02-8+deb13u1,
//! `/usr/share/ovmf/OVMF.fd`), fetched by `tools/fetch-ovmf` (`tools/fetch-deb`: sha256-pinned .deb) into
//! `$COCOON_CACHE` (default `$HOME/.cache/cocoon`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cocoon_measurements::mrtd::{self, MrtdError, PageOrder, SectionMeasurement};
use cocoon_measurements::tdvf::{self, SectionType, TdvfError};
use sha2::{Digest, Sha256};

const OVMF_FD_SHA256: &str = "14954040cc754ade0c625ac3470ea46d4c14318b5b1396de4ef77090203d76db";

// Expected MRTDs, computed by an independent implementation that shares no code with
// this crate: a ~90-line Python script (hashlib + struct) written from the TDX module
// ABI spec (TDH.MEM.PAGE.ADD / TDH.MR.EXTEND 128-byte records, 256-byte chunks) and
// the TDVF design guide's metadata layout, run on this exact OVMF.fd (sha256 above).
// It walks the GUIDed table, reads the six sections, adds every page of every section
// and extends the MR.EXTEND ones, per page ("page-by-page") or per section all adds
// then all extends ("all-pages-first").
const MRTD_PAGE_BY_PAGE: &str = "bdc6fb145880f06f30c8b346b8dce2a99d9351b56892df22f80fcf6574caa9f9c31df8e8576d53b4d0cd1c3f28910e11";
const MRTD_ALL_PAGES_FIRST: &str = "456f07902150d008bb913c3e1e84e9297f735a6c83cd2a957a1f0a8bbedb06df188e3837ae48d32c73d473d097dc0db2";

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// OVMF.fd from the pinned .deb (`tools/fetch-ovmf`: `apt-get download` with trixie
/// pinned at priority 1, .deb sha256 checked before use), checked once more here.
fn ovmf_fd() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let p = common::trixie_ovmf();
        assert_eq!(
            sha256_hex(&std::fs::read(&p).unwrap()),
            OVMF_FD_SHA256,
            "{}",
            p.display()
        );
        p
    })
}

fn ovmf_bytes() -> Vec<u8> {
    std::fs::read(ovmf_fd()).unwrap()
}

#[test]
fn trixie_ovmf_section_table() {
    let fw = ovmf_bytes();
    let m = tdvf::parse(&fw).unwrap();
    assert_eq!(m.descriptor_offset, 0x3f_f640);
    assert_eq!(m.version, 1);
    // (type, DataOffset, RawDataSize, MemoryAddress, MemoryDataSize, Attributes), as
    // edk2's IntelTdxMetadata.asm lays them out for a 4 MiB OvmfPkgX64 build.
    let want = [
        (
            SectionType::Bfv,
            0x8_4000,
            0x37_c000,
            0xffc8_4000,
            0x37_c000,
            1,
        ),
        (SectionType::Cfv, 0, 0x8_4000, 0xffc0_0000, 0x8_4000, 0),
        (SectionType::TempMem, 0, 0, 0x81_1000, 0xf000, 0),
        (SectionType::TempMem, 0, 0, 0x80_b000, 0x2000, 0),
        (SectionType::TdHob, 0, 0, 0x80_9000, 0x2000, 0),
        (SectionType::TempMem, 0, 0, 0x80_0000, 0x6000, 0),
    ];
    let got: Vec<_> = m
        .sections
        .iter()
        .map(|s| {
            (
                s.section_type,
                s.data_offset,
                s.raw_data_size,
                s.memory_address,
                s.memory_data_size,
                s.attributes,
            )
        })
        .collect();
    assert_eq!(got, want);
    for (i, s) in m.sections.iter().enumerate() {
        assert_eq!(s.entry_offset, 0x3f_f650 + 32 * i);
    }
    // Five entries in the GUIDed table (SEV and TDX blocks), exactly tiled.
    let table = tdvf::parse_table(&fw).unwrap();
    assert_eq!(table.len(), 5);
    assert_eq!(table[4].guid, tdvf::Guid::TDX_METADATA_OFFSET);
    assert_eq!(table[4].data_offset, 0x3f_ff58);
}

#[test]
fn trixie_ovmf_mrtd_matches_independent_implementation() {
    let path = ovmf_fd();
    let a = mrtd::mrtd_from_file(path, PageOrder::PageByPage).unwrap();
    assert_eq!(a.mrtd.to_hex(), MRTD_PAGE_BY_PAGE);
    assert_eq!(a.firmware_sha256, OVMF_FD_SHA256);
    assert_eq!(a.page_order, PageOrder::PageByPage);
    assert!(a.notes.is_empty(), "{:?}", a.notes);
    let b = mrtd::mrtd_from_file(path, PageOrder::AllPagesFirst).unwrap();
    assert_eq!(b.mrtd.to_hex(), MRTD_ALL_PAGES_FIRST);
    let m: Vec<_> = a.sections.iter().map(|s| s.measurement).collect();
    assert_eq!(
        m,
        [
            SectionMeasurement::PageAddAndExtend,
            SectionMeasurement::PageAdd,
            SectionMeasurement::PageAdd,
            SectionMeasurement::PageAdd,
            SectionMeasurement::PageAdd,
            SectionMeasurement::PageAdd
        ]
    );
    assert_eq!(a.sections[0].pages_added, 892);
    assert_eq!(a.sections[0].chunks_extended, 892 * 16);
    let total_pages: u64 = a.sections.iter().map(|s| s.pages_added).sum();
    assert_eq!(total_pages, 892 + 132 + 15 + 2 + 2 + 6);
}

fn run_cli(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = common::cocoon_measure().args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json = if args.contains(&"--json") {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    } else {
        serde_json::Value::Null
    };
    let text = if args.contains(&"--json") {
        String::from_utf8(out.stderr).unwrap()
    } else {
        stdout
    };
    (out.status.code().unwrap(), json, text)
}

#[test]
fn cli_json_both_orders() {
    let fw = ovmf_fd().to_str().unwrap();
    for (order, want) in [
        (None, MRTD_PAGE_BY_PAGE),
        (Some("page-by-page"), MRTD_PAGE_BY_PAGE),
        (Some("all-pages-first"), MRTD_ALL_PAGES_FIRST),
    ] {
        let mut args = vec!["mrtd", "--firmware", fw, "--json"];
        if let Some(o) = order {
            args.extend(["--page-order", o]);
        }
        let (code, v, _) = run_cli(&args);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["mrtd"], want);
        assert_eq!(v["firmware_sha256"], OVMF_FD_SHA256);
        assert_eq!(v["page_order"], order.unwrap_or("page-by-page"));
        let sections = v["sections"].as_array().unwrap();
        assert_eq!(sections.len(), 6);
        assert_eq!(sections[0]["type"], "bfv");
        assert_eq!(sections[0]["memory_address"], 0xffc8_4000u64);
        assert_eq!(sections[0]["measurement"], "page_add_and_extend");
        assert_eq!(sections[4]["type"], "td_hob");
        assert_eq!(sections[4]["measurement"], "page_add");
    }
}

#[test]
fn cli_text_output() {
    let fw = ovmf_fd().to_str().unwrap();
    let (code, _, text) = run_cli(&["mrtd", "--firmware", fw]);
    assert_eq!(code, 0);
    assert!(
        text.contains(&format!("MRTD        {MRTD_PAGE_BY_PAGE}")),
        "{text}"
    );
    assert!(
        text.contains("BFV") && text.contains("MR.EXTEND x14272"),
        "{text}"
    );
    assert!(text.contains("TD_HOB"), "{text}");
    let (code, _, _) = run_cli(&["mrtd", "--firmware", fw, "--page-order", "two-pass"]);
    assert_eq!(code, 2, "unknown page order is a usage error");
}

/// A damaged copy of OVMF.fd, the library error it must produce, and the field and
/// byte offset the CLI message must name.
struct Damaged {
    name: &'static str,
    bytes: Vec<u8>,
    check: fn(&MrtdError) -> bool,
    field: &'static str,
    offset: usize,
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

fn damaged_images() -> Vec<Damaged> {
    let fw = ovmf_bytes();
    let len = fw.len();
    let entry = |i: usize| 0x3f_f650 + 32 * i;
    let mut v = Vec::new();

    v.push(Damaged {
        name: "truncated to 32 bytes",
        bytes: fw[..0x20].to_vec(),
        check: |e| matches!(e, MrtdError::Tdvf(TdvfError::Parse(_))),
        field: "ovmf_table.footer",
        offset: 0,
    });
    // A download cut short loses the end of the flash image, where the table lives.
    v.push(Damaged {
        name: "first 2 MiB only",
        bytes: fw[..0x20_0000].to_vec(),
        check: |e| matches!(e, MrtdError::Tdvf(TdvfError::NoFooter { .. })),
        field: "ovmf_table.footer_guid",
        offset: 0x20_0000 - 0x30,
    });
    // Only the last 0x900 bytes: the table is intact but the descriptor, 0x9c0 bytes
    // from the end, is gone.
    v.push(Damaged {
        name: "last 0x900 bytes only",
        bytes: fw[len - 0x900..].to_vec(),
        check: |e| {
            matches!(
                e,
                MrtdError::Tdvf(TdvfError::MetadataOffset { value: 0x9c0, .. })
            )
        },
        field: "tdx_metadata_offset",
        offset: 0x3f_ff58 - (len - 0x900),
    });

    let mut b = fw.clone();
    b[len - 0x30 + 3] ^= 0x40;
    v.push(Damaged {
        name: "footer GUID corrupted",
        bytes: b,
        check: |e| matches!(e, MrtdError::Tdvf(TdvfError::NoFooter { .. })),
        field: "ovmf_table.footer_guid",
        offset: len - 0x30,
    });

    let mut b = fw.clone();
    put(&mut b, 0x3f_ff5c, &7u16.to_le_bytes());
    v.push(Damaged {
        name: "TDX table entry length corrupted",
        bytes: b,
        check: |e| {
            matches!(
                e,
                MrtdError::Tdvf(TdvfError::EntryLength {
                    index: 4,
                    length: 7,
                    ..
                })
            )
        },
        field: "ovmf_table.entries[4].length",
        offset: 0x3f_ff5c,
    });

    let mut b = fw.clone();
    b[0x3f_ff5e] ^= 0x01;
    v.push(Damaged {
        name: "TDX metadata GUID corrupted",
        bytes: b,
        check: |e| matches!(e, MrtdError::Tdvf(TdvfError::NoTdxMetadata { .. })),
        field: "ovmf_table",
        offset: 0x3f_ff58,
    });

    let mut b = fw.clone();
    put(&mut b, entry(0), &0x10_0000u32.to_le_bytes());
    v.push(Damaged {
        name: "BFV raw data past EOF",
        bytes: b,
        check: |e| {
            matches!(
                e,
                MrtdError::Tdvf(TdvfError::RawDataOutOfFile {
                    index: 0,
                    end: 0x47_c000,
                    ..
                })
            )
        },
        field: "tdvf.sections[0].data_offset",
        offset: entry(0),
    });

    let mut b = fw.clone();
    put(&mut b, entry(2) + 8, &0x81_1800u64.to_le_bytes());
    v.push(Damaged {
        name: "TempMem address not 4K aligned",
        bytes: b,
        check: |e| {
            matches!(
                e,
                MrtdError::Tdvf(TdvfError::Unaligned {
                    index: 2,
                    field: "memory_address",
                    value: 0x81_1800,
                    ..
                })
            )
        },
        field: "tdvf.sections[2].memory_address",
        offset: entry(2) + 8,
    });

    let mut b = fw.clone();
    put(&mut b, entry(3) + 24, &7u32.to_le_bytes());
    v.push(Damaged {
        name: "unknown section type",
        bytes: b,
        check: |e| {
            matches!(
                e,
                MrtdError::Tdvf(TdvfError::UnknownSectionType {
                    index: 3,
                    value: 7,
                    ..
                })
            )
        },
        field: "tdvf.sections[3].type",
        offset: entry(3) + 24,
    });

    let mut b = fw;
    put(&mut b, entry(4) + 28, &1u32.to_le_bytes());
    v.push(Damaged {
        name: "TD_HOB marked MR.EXTEND",
        bytes: b,
        check: |e| matches!(e, MrtdError::VmmSuppliedContent { index: 4, .. }),
        field: "tdvf.sections[4].attributes",
        offset: entry(4) + 28,
    });
    v
}

#[test]
fn damaged_firmware_gives_specific_errors() {
    for d in damaged_images() {
        let e = mrtd::mrtd_from_bytes(&d.bytes, PageOrder::PageByPage).unwrap_err();
        assert!((d.check)(&e), "{}: unexpected error {e:?}", d.name);
        let msg = e.to_string();
        let want = format!("{} at byte offset {}", d.field, d.offset);
        assert!(msg.contains(&want), "{}: {msg:?} lacks {want:?}", d.name);
    }
}

#[test]
fn cli_exits_2_on_damaged_firmware() {
    let dir = tempfile::tempdir().unwrap();
    for (i, d) in damaged_images().into_iter().enumerate() {
        let p = dir.path().join(format!("damaged-{i}.fd"));
        std::fs::write(&p, &d.bytes).unwrap();
        let (code, v, stderr) = run_cli(&["mrtd", "--firmware", p.to_str().unwrap(), "--json"]);
        assert_eq!(code, 2, "{}: {v}", d.name);
        assert_eq!(v["exit_code"], 2);
        let msg = v["error"].as_str().unwrap();
        let want = format!("{} at byte offset {}", d.field, d.offset);
        assert!(msg.contains(&want), "{}: {msg:?} lacks {want:?}", d.name);
        assert!(msg.contains(p.to_str().unwrap()), "{msg}");
        assert!(stderr.contains(&want), "{}: {stderr}", d.name);
        assert!(v.get("mrtd").is_none());
    }
    let (code, v, _) = run_cli(&["mrtd", "--firmware", "/nonexistent/OVMF.fd", "--json"]);
    assert_eq!(code, 2);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/OVMF.fd"));
}
