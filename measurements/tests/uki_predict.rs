//! RTMR1/RTMR2 predictions from synthetic UKIs, checked against digests computed here
//! from the bytes that went into the image.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod uki_fixture;

use std::io::Write as _;

use cocoon_measurements::boot::{compute_uki, BootError, Rtmr12Prediction};
use cocoon_measurements::event::event_type::{EV_EVENT_TAG, EV_IPL};
use cocoon_measurements::pe::authenticode_sha384;
use cocoon_measurements::uki::{cpio, UkiError};
use cocoon_measurements::{Digest48, Register};
use uki_fixture::{kernel, Sec, UkiSpec};

fn write(img: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(img).unwrap();
    f.flush().unwrap();
    f
}

fn predict(img: &[u8]) -> Result<Rtmr12Prediction, BootError> {
    let f = write(img);
    compute_uki(f.path())
}

fn section_digests(p: &Rtmr12Prediction) -> Vec<(String, Digest48)> {
    let ipl: Vec<_> = p.events.iter().filter(|e| e.event_type == EV_IPL).collect();
    ipl.chunks(2)
        .map(|c| {
            let name = c[0].description.split('"').nth(1).unwrap().to_string();
            let mut with_nul = name.clone().into_bytes();
            with_nul.push(0);
            assert_eq!(
                c[0].digest,
                Digest48::sha384(&with_nul),
                "name digest of {name}"
            );
            (name, c[1].digest)
        })
        .collect()
}

fn tagged(p: &Rtmr12Prediction) -> Vec<Digest48> {
    p.events
        .iter()
        .filter(|e| e.event_type == EV_EVENT_TAG)
        .map(|e| e.digest)
        .collect()
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

#[test]
fn digests_equal_those_of_the_parts() {
    let spec = UkiSpec::default();
    let img = spec.build();
    let p = predict(&img).unwrap();
    assert_eq!(p.stub_version, "257.13");
    assert_eq!(p.cmdline.as_deref(), Some("console=ttyS0 quiet"));
    assert_eq!(p.kernel_release.as_deref(), Some("6.12.0-test"));

    let secs = section_digests(&p);
    let names: Vec<&str> = secs.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"]
    );
    let initrd = spec.initrd.clone().unwrap();
    assert_eq!(secs[0].1, Digest48::sha384(&spec.linux));
    assert_eq!(secs[1].1, Digest48::sha384(&spec.osrel));
    assert_eq!(secs[2].1, Digest48::sha384(spec.cmdline.as_ref().unwrap()));
    assert_eq!(secs[3].1, Digest48::sha384(&initrd));
    assert_eq!(secs[5].1, Digest48::sha384(uki_fixture::SBAT));

    let r1: Vec<_> = p.events_of(Register::Rtmr1).collect();
    assert_eq!(r1.len(), 6);
    assert_eq!(r1[0].digest, authenticode_sha384(&img).unwrap());
    assert_eq!(r1[3].digest, authenticode_sha384(&spec.linux).unwrap());

    // The initrd the kernel gets: .initrd padded to 4, then the os-release archive.
    let mut combined = initrd.clone();
    pad4(&mut combined);
    combined.extend(cpio::literal("os-release", &spec.osrel).unwrap());
    pad4(&mut combined);
    assert_eq!(
        tagged(&p),
        [
            Digest48::sha384(&utf16z("console=ttyS0 quiet")),
            Digest48::sha384(&combined)
        ]
    );
    assert_eq!(p.rtmr1, Digest48::replay(r1.iter().map(|e| &e.digest)));
    assert_eq!(
        p.rtmr2,
        Digest48::replay(p.events_of(Register::Rtmr2).map(|e| &e.digest))
    );
    assert_eq!(p.uki_sha256, {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&img))
    });
}

#[test]
fn virtual_size_bounds_what_is_measured() {
    let mut spec = UkiSpec::default();
    let initrd: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    spec.initrd = None;
    // .initrd: VirtualSize 4000 of 5000 file bytes; .uname: VirtualSize past its raw size.
    spec.extra = vec![Sec {
        virtual_size: Some(4000),
        ..Sec::new(".initrd", initrd.clone())
    }];
    spec.uname = None;
    spec.extra.push(Sec {
        virtual_size: Some(0x300),
        raw_size: Some(0x200),
        ..Sec::new(".uname", b"6.1".to_vec())
    });
    let p = predict(&spec.build()).unwrap();
    let secs = section_digests(&p);
    let get = |n: &str| secs.iter().find(|s| s.0 == n).unwrap().1;
    assert_eq!(get(".initrd"), Digest48::sha384(&initrd[..4000]));
    // The loader copies the raw data (3 bytes + 0xEE fill to 0x200) and zero-fills to 0x300.
    let mut uname = b"6.1".to_vec();
    uname.resize(0x200, 0xEE);
    uname.resize(0x300, 0);
    assert_eq!(get(".uname"), Digest48::sha384(&uname));
}

#[test]
fn no_cmdline_and_no_initrd() {
    let spec = UkiSpec {
        cmdline: None,
        initrd: None,
        ..Default::default()
    };
    let p = predict(&spec.build()).unwrap();
    assert_eq!(p.cmdline, None);
    // No LoadOptions event; the initrd is the os-release archive alone, unpadded.
    let only = cpio::literal("os-release", &spec.osrel).unwrap();
    assert_eq!(tagged(&p), [Digest48::sha384(&only)]);
    assert_eq!(p.events_of(Register::Rtmr2).count(), 2 * 4 + 1);
}

#[test]
fn ucode_pcrsig_and_pcrpkey_join_the_initrd_in_stub_order() {
    let ucode = vec![0xAB; 1001];
    let pcrsig = br#"{"sha256":[]}"#.to_vec();
    let pcrpkey = b"-----BEGIN PUBLIC KEY-----\n".to_vec();
    let spec = UkiSpec {
        extra: vec![
            Sec::new(".ucode", ucode.clone()),
            Sec::new(".pcrsig", pcrsig.clone()),
            Sec::new(".pcrpkey", pcrpkey.clone()),
        ],
        ..Default::default()
    };
    let p = predict(&spec.build()).unwrap();
    let names: Vec<String> = section_digests(&p).into_iter().map(|s| s.0).collect();
    // .pcrsig is never measured into PCR 11 (it signs the expected result).
    assert_eq!(
        names,
        [".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".uname", ".sbat", ".pcrpkey"]
    );
    let mut combined = Vec::new();
    for part in [
        ucode,
        spec.initrd.clone().unwrap(),
        cpio::literal("tpm2-pcr-signature.json", &pcrsig).unwrap(),
        cpio::literal("tpm2-pcr-public-key.pem", &pcrpkey).unwrap(),
        cpio::literal("os-release", &spec.osrel).unwrap(),
    ] {
        combined.extend(part);
        pad4(&mut combined);
    }
    assert_eq!(tagged(&p)[1], Digest48::sha384(&combined));
}

#[test]
fn profile_zero_overrides_base_sections() {
    let spec = UkiSpec {
        extra: vec![
            Sec::new(".profile", b"ID=default\n".to_vec()),
            Sec::new(".cmdline", b"profile0 cmdline".to_vec()),
            Sec::new(".profile", b"ID=other\n".to_vec()),
            Sec::new(".cmdline", b"profile1 cmdline".to_vec()),
        ],
        ..Default::default()
    };
    let p = predict(&spec.build()).unwrap();
    assert_eq!(p.cmdline.as_deref(), Some("profile0 cmdline"));
    let secs = section_digests(&p);
    let names: Vec<&str> = secs.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat", ".profile"]
    );
    assert_eq!(secs[2].1, Digest48::sha384(b"profile0 cmdline"));
    assert_eq!(secs[6].1, Digest48::sha384(b"ID=default\n"));
}

fn uki_err(img: &[u8]) -> UkiError {
    match predict(img).unwrap_err() {
        BootError::Uki { error, .. } => error,
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_images_are_refused_with_reasons() {
    let v256 = UkiSpec {
        sdmagic: b"#### LoaderInfo: systemd-stub 256.7 ####\0".to_vec(),
        ..Default::default()
    };
    let e = uki_err(&v256.build());
    assert!(
        matches!(&e, UkiError::UnsupportedStub { version, .. } if version == "256.7"),
        "{e}"
    );
    assert!(e.to_string().contains("os-release"), "{e}");

    let bad = UkiSpec {
        sdmagic: b"hello".to_vec(),
        ..Default::default()
    };
    assert!(matches!(uki_err(&bad.build()), UkiError::BadSdMagic { .. }));

    let mut no_magic = UkiSpec::default().sections();
    no_magic.retain(|s| s.name != ".sdmagic");
    let img = uki_fixture::PeSpec {
        sections: no_magic,
        ..Default::default()
    }
    .build();
    assert!(matches!(uki_err(&img), UkiError::NoSdMagic));

    let mut no_linux = UkiSpec::default().sections();
    no_linux.retain(|s| s.name != ".linux");
    let img = uki_fixture::PeSpec {
        sections: no_linux,
        ..Default::default()
    }
    .build();
    assert!(matches!(uki_err(&img), UkiError::MissingLinux));

    let dtbauto = UkiSpec {
        extra: vec![Sec::new(".dtbauto", vec![0xd0, 0x0d, 0xfe, 0xed])],
        ..Default::default()
    };
    assert!(matches!(
        uki_err(&dtbauto.build()),
        UkiError::UnsupportedSection { name, .. } if name == ".dtbauto"
    ));

    let old_kernel = UkiSpec {
        linux: uki_fixture::PeSpec {
            major_image_version: 0,
            sections: vec![Sec::new(".text", vec![1; 100])],
            ..Default::default()
        }
        .build(),
        ..Default::default()
    };
    assert!(matches!(
        uki_err(&old_kernel.build()),
        UkiError::KernelHandover(0)
    ));

    let mut hdrs = UkiSpec::default().build();
    hdrs[0x202..0x206].copy_from_slice(b"HdrS");
    assert!(matches!(uki_err(&hdrs), UkiError::HasLinuxSetupHeader));

    let arm = uki_fixture::PeSpec {
        machine: 0xaa64,
        sections: UkiSpec::default().sections(),
        ..Default::default()
    }
    .build();
    assert!(matches!(
        uki_err(&arm),
        UkiError::NotX64 { machine: 0xaa64 }
    ));
}

#[test]
fn a_broken_kernel_image_is_named_relative_to_linux() {
    let mut k = kernel(2000, 1);
    k[uki_fixture::E_LFANEW] = b'X'; // PE signature of the inner image
    let spec = UkiSpec {
        linux: k,
        ..Default::default()
    };
    let e = uki_err(&spec.build());
    assert!(matches!(e, UkiError::Kernel { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(".linux") && msg.contains("byte offset 128"),
        "{msg}"
    );
}

#[test]
fn a_truncated_uki_is_refused() {
    let img = UkiSpec::default().build();
    for cut in [50usize, 300, img.len() - 10] {
        let e = uki_err(&img[..cut]);
        assert!(matches!(e, UkiError::Pe(_)), "cut {cut}: {e}");
        assert!(e.to_string().contains("offset"), "{e}");
    }
}
