//! The RTMR1/RTMR2 event sequence of a UKI boot, in log order, each with its source.
//! measurements/README.md (boot events) explains each event at length.
#![deny(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};

use crate::digest::{Digest48, Register};
use crate::event::event_type::{
    EV_EFI_ACTION, EV_EFI_BOOT_SERVICES_APPLICATION, EV_EVENT_TAG, EV_IPL, EV_SEPARATOR,
};
use crate::event::MeasuredEvent;

/// Which firmware measurement driver's log to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFlavor {
    /// A TDX guest: OVMF's TdTcg2Dxe extends RTMRs and logs to the CCEL. At
    /// ReadyToBoot it measures ONE separator into RTMR1 (MR index 2).
    #[default]
    Tdx,
    /// A TPM (swtpm/vTPM): Tcg2Dxe measures a separator into each of PCR 0-6, so the
    /// events mapped to RTMR1 (PCR 2-6) hold five separators. For checking predictions
    /// against TPM logs of test boots.
    Tpm,
}

pub(crate) const SRC_FW_LOADIMAGE: &str = "edk2 DxeTpm2MeasureBootLib (OVMF loads the QEMU -kernel file via QemuKernelLoaderFsDxe); Authenticode per SecurityPkg/Tcg/Tcg2Dxe/MeasureBootPeCoff.c and OvmfPkg/IntelTdx/TdTcg2Dxe/MeasureBootPeCoff.c; TCG PC Client PFP 10.4.4";
pub(crate) const SRC_READY_TO_BOOT: &str = "edk2 OnReadyToBoot (OvmfPkg/IntelTdx/TdTcg2Dxe/TdTcg2Dxe.c, SecurityPkg/Tcg/Tcg2Dxe/Tcg2Dxe.c); TCG PC Client PFP 3.3.4.5";
pub(crate) const SRC_TDX_SEPARATOR: &str = "edk2 OvmfPkg/IntelTdx/TdTcg2Dxe/TdTcg2Dxe.c OnReadyToBoot: MeasureSeparatorEvent(CC_MR_INDEX_2_RTMR1), one separator";
pub(crate) const SRC_TPM_SEPARATOR: &str = "edk2 SecurityPkg/Tcg/Tcg2Dxe/Tcg2Dxe.c OnReadyToBoot: MeasureSeparatorEvent for PCR 0-6; TCG PC Client PFP 3.3.2.2";
pub(crate) const SRC_STUB_SECTIONS: &str = "systemd 257 src/boot/stub.c measure_sections() (order: src/fundamental/uki.h UnifiedSection); docs/TPM2_PCR_MEASUREMENTS.md \"PCR 11, EV_IPL\"";
pub(crate) const SRC_KERNEL_LOADIMAGE: &str = "systemd 257 src/boot/linux.c linux_exec(): LoadImage of the .linux buffer (VirtualSize bytes), measured by edk2 DxeTpm2MeasureBootLib";
pub(crate) const SRC_LOAD_OPTIONS: &str = "Linux drivers/firmware/efi/libstub/efi-stub-helper.c efi_convert_cmdline(): tagged event 0x8F3B22ED \"LOADED_IMAGE::LoadOptions\"; LoadOptions set by systemd 257 src/boot/linux.c (strsize16, with NUL)";
pub(crate) const SRC_INITRD: &str = "Linux drivers/firmware/efi/libstub/efi-stub-helper.c efi_load_initrd(): tagged event 0x8F3B22EC \"Linux initrd\"; bytes from systemd 257 src/boot/stub.c combine_initrds() and src/boot/cpio.c pack_cpio_literal()";
pub(crate) const SRC_EXIT_BOOT_SERVICES: &str =
    "edk2 OnExitBootServices (TdTcg2Dxe.c, Tcg2Dxe.c); TCG PC Client PFP 3.3.4.5";

/// The digests the events need, from the hash plan.
pub(crate) struct Digests<'a> {
    pub uki_authenticode: Digest48,
    /// Measured sections in order: (name, digest of contents).
    pub sections: Vec<(&'a str, Digest48)>,
    pub kernel_authenticode: Digest48,
    /// LoadOptions bytes the kernel measures, when the UKI has a `.cmdline`.
    pub load_options: Option<&'a [u8]>,
    pub initrd: Option<(Digest48, u64)>,
}

fn ev(
    register: Register,
    pcr: Option<u32>,
    t: u32,
    d: Digest48,
    what: String,
    src: &str,
) -> MeasuredEvent {
    MeasuredEvent::new(register, pcr, t, d, what, src)
}

/// The events of RTMR1 and RTMR2, in the order they appear in the log.
pub(crate) fn sequence(d: &Digests<'_>, flavor: LogFlavor) -> Vec<MeasuredEvent> {
    use Register::{Rtmr1, Rtmr2};
    let action = |s: &str| Digest48::sha384(s.as_bytes());
    let separator = Digest48::sha384(&[0u8; 4]);
    let mut out = vec![
        ev(
            Rtmr1,
            Some(4),
            EV_EFI_BOOT_SERVICES_APPLICATION,
            d.uki_authenticode,
            "Authenticode SHA-384 of the UKI (OVMF LoadImage of the -kernel file)".into(),
            SRC_FW_LOADIMAGE,
        ),
        ev(
            Rtmr1,
            Some(4),
            EV_EFI_ACTION,
            action("Calling EFI Application from Boot Option"),
            "SHA-384 of \"Calling EFI Application from Boot Option\"".into(),
            SRC_READY_TO_BOOT,
        ),
    ];
    match flavor {
        LogFlavor::Tdx => out.push(ev(
            Rtmr1,
            None,
            EV_SEPARATOR,
            separator,
            "separator: SHA-384 of 00000000".into(),
            SRC_TDX_SEPARATOR,
        )),
        LogFlavor::Tpm => {
            for pcr in 2..=6 {
                out.push(ev(
                    Rtmr1,
                    Some(pcr),
                    EV_SEPARATOR,
                    separator,
                    format!("separator of PCR {pcr}: SHA-384 of 00000000"),
                    SRC_TPM_SEPARATOR,
                ));
            }
        }
    }
    for (name, digest) in &d.sections {
        let mut with_nul = name.as_bytes().to_vec();
        with_nul.push(0);
        out.push(ev(
            Rtmr2,
            Some(11),
            EV_IPL,
            Digest48::sha384(&with_nul),
            format!("systemd-stub: UKI section name \"{name}\" (ASCII with NUL)"),
            SRC_STUB_SECTIONS,
        ));
        out.push(ev(
            Rtmr2,
            Some(11),
            EV_IPL,
            *digest,
            format!("systemd-stub: UKI section {name} contents (VirtualSize bytes)"),
            SRC_STUB_SECTIONS,
        ));
    }
    out.push(ev(
        Rtmr1,
        Some(4),
        EV_EFI_BOOT_SERVICES_APPLICATION,
        d.kernel_authenticode,
        "Authenticode SHA-384 of the kernel in .linux (systemd-stub LoadImage)".into(),
        SRC_KERNEL_LOADIMAGE,
    ));
    if let Some(lo) = d.load_options {
        out.push(ev(
            Rtmr2,
            Some(9),
            EV_EVENT_TAG,
            Digest48::sha384(lo),
            format!(
                "kernel EFI stub: LoadOptions, the command line as UTF-16LE with NUL ({} bytes)",
                lo.len()
            ),
            SRC_LOAD_OPTIONS,
        ));
    }
    if let Some((digest, len)) = d.initrd {
        out.push(ev(
            Rtmr2,
            Some(9),
            EV_EVENT_TAG,
            digest,
            format!(
                "kernel EFI stub: \"Linux initrd\", the initrd systemd-stub passes ({len} bytes)"
            ),
            SRC_INITRD,
        ));
    }
    out.push(ev(
        Rtmr1,
        Some(5),
        EV_EFI_ACTION,
        action("Exit Boot Services Invocation"),
        "SHA-384 of \"Exit Boot Services Invocation\"".into(),
        SRC_EXIT_BOOT_SERVICES,
    ));
    out.push(ev(
        Rtmr1,
        Some(5),
        EV_EFI_ACTION,
        action("Exit Boot Services Returned with Success"),
        "SHA-384 of \"Exit Boot Services Returned with Success\"".into(),
        SRC_EXIT_BOOT_SERVICES,
    ));
    out
}
