//! Every digest a UKI prediction needs, as one streaming hash plan.
#![deny(clippy::arithmetic_side_effects)]

use std::sync::Arc;

use crate::hashplan::{Algo, LaneId, OutputId, Plan};
use crate::uki::{cpio, Uki, UkiSection};

use super::BootError;

/// Where each digest of the plan ends up.
#[derive(Debug, Clone)]
pub(crate) struct PlanIds {
    pub uki_sha256: OutputId,
    pub uki_authenticode: OutputId,
    /// Measured sections in measurement order, with the digest of their contents.
    pub sections: Vec<(&'static str, OutputId)>,
    pub kernel_authenticode: OutputId,
    /// The initrd the kernel receives, when there is one, and its length.
    pub initrd: Option<(OutputId, u64)>,
}

/// One piece of the initrd systemd-stub 257 hands to the kernel (stub.c, the
/// `INITRD_*` enum: UCODE, BASE, the generated sidecar archives, then PCRSIG, PCRPKEY,
/// OSREL, PROFILE; sidecars come from the ESP, which QEMU's `-kernel` file system
/// does not have, so there are none).
enum InitrdPart<'a> {
    Section(&'a UkiSection),
    Cpio {
        filename: &'static str,
        section: &'static str,
    },
}

/// stub.c `generate_embedded_initrds`: sections wrapped into `.extra/<file>` archives.
const EMBEDDED_CPIOS: [(&str, &str); 4] = [
    (".pcrsig", "tpm2-pcr-signature.json"),
    (".pcrpkey", "tpm2-pcr-public-key.pem"),
    (".osrel", "os-release"),
    (".profile", "profile"),
];

fn initrd_parts(uki: &Uki) -> Vec<InitrdPart<'_>> {
    let mut parts = Vec::new();
    for name in [".ucode", ".initrd"] {
        if let Some(s) = uki.section(name) {
            parts.push(InitrdPart::Section(s));
        }
    }
    for (section, filename) in EMBEDDED_CPIOS {
        if uki.section(section).is_some() {
            parts.push(InitrdPart::Cpio { filename, section });
        }
    }
    parts
}

/// Feed the in-memory bytes `rel..rel+len` of section `s` (file part, then zeros).
fn push_section_view(plan: &mut Plan, lane: LaneId, s: &UkiSection, rel: u64, len: u64) {
    let end = rel.saturating_add(len);
    let file_end = s.file_len().min(end);
    if rel < file_end {
        plan.file(
            lane,
            s.file_offset().saturating_add(rel),
            file_end.saturating_sub(rel),
        );
    }
    plan.zeros(lane, end.saturating_sub(rel.max(file_end)));
}

fn pad4(len: u64) -> u64 {
    (4u64.saturating_sub(len % 4)) % 4
}

fn cpio_for(uki: &Uki, filename: &str, section: &'static str) -> Result<Vec<u8>, BootError> {
    let content = uki
        .contents
        .get(section)
        .cloned()
        .unwrap_or_else(|| Arc::from(&[][..]));
    cpio::literal(filename, &content).ok_or(BootError::CpioTooLarge { section })
}

pub(crate) fn build(uki: &Uki) -> Result<(Plan, PlanIds), BootError> {
    let mut plan = Plan::new(uki.pe.image_len);

    // Bytes parsed before the pass must still be there during it.
    plan.expect(0, Arc::clone(&uki.header_bytes));
    for s in &uki.sections {
        if let Some(c) = uki.contents.get(s.name) {
            let file_part = c.get(..s.file_len() as usize).unwrap_or(&[]);
            plan.expect(s.file_offset(), file_part.to_vec());
        }
    }
    let linux = uki.section(".linux").ok_or(BootError::Uki {
        path: String::new(),
        error: crate::uki::UkiError::MissingLinux,
    })?;
    let kh = &uki.kernel.header_bytes;
    let kh_file = kh
        .get(..(linux.file_len().min(kh.len() as u64) as usize))
        .unwrap_or(&[]);
    plan.expect(linux.file_offset(), kh_file.to_vec());

    let lane = plan.lane("UKI SHA-256", Algo::Sha256);
    plan.file(lane, 0, uki.pe.image_len);
    let uki_sha256 = plan.emit(lane);

    let lane = plan.lane("UKI Authenticode", Algo::Sha384);
    for r in uki.pe.authenticode_ranges()? {
        plan.file(lane, r.offset, r.len);
    }
    let uki_authenticode = plan.emit(lane);

    let mut sections = Vec::new();
    let mut initrd_lane = None;
    for s in uki.sections.iter().filter(|s| s.measured) {
        let lane = plan.lane(format!("section {}", s.name), Algo::Sha384);
        push_section_view(&mut plan, lane, s, 0, s.memory_len());
        sections.push((s.name, plan.emit(lane)));
        if s.name == ".initrd" {
            initrd_lane = Some(lane);
        }
    }

    let lane = plan.lane("kernel Authenticode", Algo::Sha384);
    for r in uki.kernel.pe.authenticode_ranges()? {
        push_section_view(&mut plan, lane, linux, r.offset, r.len);
    }
    let kernel_authenticode = plan.emit(lane);

    let parts = initrd_parts(uki);
    // stub.c: one initrd is passed as is; several are each zero-padded to a multiple
    // of 4 and concatenated (`combine_initrds`).
    let pad_each = parts.len() > 1;
    let initrd = match parts.split_first() {
        None => None,
        Some((first, rest)) => {
            // The combined initrd starts with the .initrd section when there is no
            // .ucode: continue that section's lane instead of hashing it again.
            let mut total = 0u64;
            let (lane, rest) = match (first, initrd_lane) {
                (InitrdPart::Section(s), Some(lane)) if s.name == ".initrd" => {
                    total = s.memory_len();
                    if pad_each {
                        plan.zeros(lane, pad4(s.memory_len()));
                        total = total.saturating_add(pad4(s.memory_len()));
                    }
                    (lane, rest)
                }
                _ => (plan.lane("combined initrd", Algo::Sha384), parts.as_slice()),
            };
            for part in rest {
                let len = match part {
                    InitrdPart::Section(s) => {
                        match uki.contents.get(s.name) {
                            // Read ahead (.ucode): it lies after .initrd in the file.
                            Some(c) => plan.bytes(lane, Arc::clone(c)),
                            None => push_section_view(&mut plan, lane, s, 0, s.memory_len()),
                        }
                        s.memory_len()
                    }
                    InitrdPart::Cpio { filename, section } => {
                        let a = cpio_for(uki, filename, section)?;
                        let n = a.len() as u64;
                        plan.bytes(lane, a);
                        n
                    }
                };
                total = total.saturating_add(len);
                if pad_each {
                    plan.zeros(lane, pad4(len));
                    total = total.saturating_add(pad4(len));
                }
            }
            Some((plan.emit(lane), total))
        }
    };

    Ok((
        plan,
        PlanIds {
            uki_sha256,
            uki_authenticode,
            sections,
            kernel_authenticode,
            initrd,
        },
    ))
}
