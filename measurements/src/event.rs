//! One measured event, shared by the predicted boot sequence (`boot`) and by event
//! logs (`eventlog`), so the two can be compared event by event.

use serde::{Deserialize, Serialize};

use crate::digest::{Digest48, Register};

/// TCG PC Client event types (TCG PC Client Platform Firmware Profile, section 10.4.1).
pub mod event_type {
    pub const EV_PREBOOT_CERT: u32 = 0x0000_0000;
    pub const EV_POST_CODE: u32 = 0x0000_0001;
    pub const EV_NO_ACTION: u32 = 0x0000_0003;
    pub const EV_SEPARATOR: u32 = 0x0000_0004;
    pub const EV_ACTION: u32 = 0x0000_0005;
    pub const EV_EVENT_TAG: u32 = 0x0000_0006;
    pub const EV_S_CRTM_CONTENTS: u32 = 0x0000_0007;
    pub const EV_S_CRTM_VERSION: u32 = 0x0000_0008;
    pub const EV_CPU_MICROCODE: u32 = 0x0000_0009;
    pub const EV_PLATFORM_CONFIG_FLAGS: u32 = 0x0000_000A;
    pub const EV_TABLE_OF_DEVICES: u32 = 0x0000_000B;
    pub const EV_COMPACT_HASH: u32 = 0x0000_000C;
    pub const EV_IPL: u32 = 0x0000_000D;
    pub const EV_IPL_PARTITION_DATA: u32 = 0x0000_000E;
    pub const EV_NONHOST_CODE: u32 = 0x0000_000F;
    pub const EV_NONHOST_CONFIG: u32 = 0x0000_0010;
    pub const EV_NONHOST_INFO: u32 = 0x0000_0011;
    pub const EV_OMIT_BOOT_DEVICE_EVENTS: u32 = 0x0000_0012;
    pub const EV_EFI_EVENT_BASE: u32 = 0x8000_0000;
    pub const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
    pub const EV_EFI_VARIABLE_BOOT: u32 = 0x8000_0002;
    pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
    pub const EV_EFI_BOOT_SERVICES_DRIVER: u32 = 0x8000_0004;
    pub const EV_EFI_RUNTIME_SERVICES_DRIVER: u32 = 0x8000_0005;
    pub const EV_EFI_GPT_EVENT: u32 = 0x8000_0006;
    pub const EV_EFI_ACTION: u32 = 0x8000_0007;
    pub const EV_EFI_PLATFORM_FIRMWARE_BLOB: u32 = 0x8000_0008;
    pub const EV_EFI_HANDOFF_TABLES: u32 = 0x8000_0009;
    pub const EV_EFI_PLATFORM_FIRMWARE_BLOB2: u32 = 0x8000_000A;
    pub const EV_EFI_HANDOFF_TABLES2: u32 = 0x8000_000B;
    pub const EV_EFI_VARIABLE_BOOT2: u32 = 0x8000_000C;
    pub const EV_EFI_HCRTM_EVENT: u32 = 0x8000_0010;
    pub const EV_EFI_VARIABLE_AUTHORITY: u32 = 0x8000_00E0;
    pub const EV_EFI_SPDM_FIRMWARE_BLOB: u32 = 0x8000_00E1;
    pub const EV_EFI_SPDM_FIRMWARE_CONFIG: u32 = 0x8000_00E2;

    /// The spec name of an event type, or `None` when unknown.
    pub fn name(t: u32) -> Option<&'static str> {
        Some(match t {
            EV_PREBOOT_CERT => "EV_PREBOOT_CERT",
            EV_POST_CODE => "EV_POST_CODE",
            EV_NO_ACTION => "EV_NO_ACTION",
            EV_SEPARATOR => "EV_SEPARATOR",
            EV_ACTION => "EV_ACTION",
            EV_EVENT_TAG => "EV_EVENT_TAG",
            EV_S_CRTM_CONTENTS => "EV_S_CRTM_CONTENTS",
            EV_S_CRTM_VERSION => "EV_S_CRTM_VERSION",
            EV_CPU_MICROCODE => "EV_CPU_MICROCODE",
            EV_PLATFORM_CONFIG_FLAGS => "EV_PLATFORM_CONFIG_FLAGS",
            EV_TABLE_OF_DEVICES => "EV_TABLE_OF_DEVICES",
            EV_COMPACT_HASH => "EV_COMPACT_HASH",
            EV_IPL => "EV_IPL",
            EV_IPL_PARTITION_DATA => "EV_IPL_PARTITION_DATA",
            EV_NONHOST_CODE => "EV_NONHOST_CODE",
            EV_NONHOST_CONFIG => "EV_NONHOST_CONFIG",
            EV_NONHOST_INFO => "EV_NONHOST_INFO",
            EV_OMIT_BOOT_DEVICE_EVENTS => "EV_OMIT_BOOT_DEVICE_EVENTS",
            EV_EFI_EVENT_BASE => "EV_EFI_EVENT_BASE",
            EV_EFI_VARIABLE_DRIVER_CONFIG => "EV_EFI_VARIABLE_DRIVER_CONFIG",
            EV_EFI_VARIABLE_BOOT => "EV_EFI_VARIABLE_BOOT",
            EV_EFI_BOOT_SERVICES_APPLICATION => "EV_EFI_BOOT_SERVICES_APPLICATION",
            EV_EFI_BOOT_SERVICES_DRIVER => "EV_EFI_BOOT_SERVICES_DRIVER",
            EV_EFI_RUNTIME_SERVICES_DRIVER => "EV_EFI_RUNTIME_SERVICES_DRIVER",
            EV_EFI_GPT_EVENT => "EV_EFI_GPT_EVENT",
            EV_EFI_ACTION => "EV_EFI_ACTION",
            EV_EFI_PLATFORM_FIRMWARE_BLOB => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
            EV_EFI_HANDOFF_TABLES => "EV_EFI_HANDOFF_TABLES",
            EV_EFI_PLATFORM_FIRMWARE_BLOB2 => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
            EV_EFI_HANDOFF_TABLES2 => "EV_EFI_HANDOFF_TABLES2",
            EV_EFI_VARIABLE_BOOT2 => "EV_EFI_VARIABLE_BOOT2",
            EV_EFI_HCRTM_EVENT => "EV_EFI_HCRTM_EVENT",
            EV_EFI_VARIABLE_AUTHORITY => "EV_EFI_VARIABLE_AUTHORITY",
            EV_EFI_SPDM_FIRMWARE_BLOB => "EV_EFI_SPDM_FIRMWARE_BLOB",
            EV_EFI_SPDM_FIRMWARE_CONFIG => "EV_EFI_SPDM_FIRMWARE_CONFIG",
            _ => return None,
        })
    }

    /// The spec name, or the number in hex for unknown types.
    pub fn display(t: u32) -> String {
        name(t).map_or_else(|| format!("0x{t:08x}"), str::to_string)
    }
}

/// One event folded into a measurement register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredEvent {
    /// The TDX register the event extends.
    pub register: Register,
    /// The TPM PCR the same event uses in a TPM log (PC Client spec), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcr: Option<u32>,
    /// TCG event type (numeric).
    pub event_type: u32,
    /// TCG event type name, e.g. `EV_EFI_BOOT_SERVICES_APPLICATION`.
    pub event_type_name: String,
    /// The SHA-384 digest extended into the register.
    pub digest: Digest48,
    /// What the digest covers, in words (e.g. "Authenticode SHA-384 of the UKI").
    pub description: String,
    /// Where the event is specified (spec and section, or source file).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

impl MeasuredEvent {
    pub fn new(
        register: Register,
        pcr: Option<u32>,
        event_type: u32,
        digest: Digest48,
        description: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            register,
            pcr,
            event_type,
            event_type_name: event_type::display(event_type),
            digest,
            description: description.into(),
            source: source.into(),
        }
    }
}

/// Replay events: the final value of `register` after extending each of its events
/// in order, starting from 48 zero bytes.
pub fn replay_register(events: &[MeasuredEvent], register: Register) -> Digest48 {
    Digest48::replay(
        events
            .iter()
            .filter(|e| e.register == register)
            .map(|e| &e.digest),
    )
}
