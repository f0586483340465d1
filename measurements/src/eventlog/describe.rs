//! Words for an event's data, so a person can tell which event differs. Best effort:
//! the data of most events is not measured (only its digest is), so nothing here is
//! trusted or fails the parse; undecodable data is described by its length.
//!
//! Structures: TCG PC Client Platform Firmware Profile 1.05 §10.4 (UEFI_VARIABLE_DATA,
//! UEFI_IMAGE_LOAD_EVENT, UEFI_PLATFORM_FIRMWARE_BLOB(2), UEFI_HANDOFF_TABLE_POINTERS(2),
//! TCG_PCClientTaggedEvent, StartupLocality), UEFI 2.10 §10.3 (device path nodes) and
//! §3.1.3 (EFI_LOAD_OPTION).
#![deny(clippy::arithmetic_side_effects)]

use crate::codec::{ParseError, Reader};
use crate::event::event_type::*;

use super::parse::SPEC_ID_SIGNATURE;

/// Longest string kept in a description.
const MAX_TEXT: usize = 160;

/// A description of the event data of type `event_type`.
pub fn describe(event_type: u32, data: &[u8]) -> String {
    let decoded = match event_type {
        EV_NO_ACTION => no_action(data),
        EV_SEPARATOR => Some(separator(data)),
        EV_EFI_VARIABLE_DRIVER_CONFIG
        | EV_EFI_VARIABLE_BOOT
        | EV_EFI_VARIABLE_BOOT2
        | EV_EFI_VARIABLE_AUTHORITY => variable(data).ok(),
        EV_EFI_BOOT_SERVICES_APPLICATION
        | EV_EFI_BOOT_SERVICES_DRIVER
        | EV_EFI_RUNTIME_SERVICES_DRIVER => image_load(data).ok(),
        EV_EFI_PLATFORM_FIRMWARE_BLOB => blob(data, false).ok(),
        EV_EFI_PLATFORM_FIRMWARE_BLOB2 => blob(data, true).ok(),
        EV_EFI_HANDOFF_TABLES => handoff(data, false).ok(),
        EV_EFI_HANDOFF_TABLES2 => handoff(data, true).ok(),
        EV_EVENT_TAG => tagged(data).ok(),
        _ => text(data).map(|t| format!("{t:?}")),
    };
    decoded.unwrap_or_else(|| format!("{} bytes of event data", data.len()))
}

/// The data as text when it is printable ASCII or UTF-16LE, NUL terminators removed.
pub fn text(data: &[u8]) -> Option<String> {
    let trimmed = trim_nul(data);
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.iter().all(|&b| printable(b)) {
        return Some(clip(&String::from_utf8_lossy(trimmed)));
    }
    utf16_text(data)
}

fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || b == b'\t' || b == b'\n' || b == b'\r'
}

fn trim_nul(data: &[u8]) -> &[u8] {
    let end = data
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i.saturating_add(1));
    data.get(..end).unwrap_or(data)
}

/// UTF-16LE text whose characters are all printable ASCII (what firmware writes).
fn utf16_text(data: &[u8]) -> Option<String> {
    if data.len() < 2 || data.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| match c {
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        })
        .collect();
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let units = units.get(..end)?;
    if units.is_empty() || !units.iter().all(|&u| u8::try_from(u).is_ok_and(printable)) {
        return None;
    }
    Some(clip(&String::from_utf16_lossy(units)))
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX_TEXT).collect();
        out.push('…');
        out
    }
}

fn guid(r: &mut Reader<'_>, field: &str) -> Result<String, ParseError> {
    let d1 = r.u32_le(field)?;
    let d2 = r.u16_le(field)?;
    let d3 = r.u16_le(field)?;
    let d4: [u8; 8] = r.array(field)?;
    let [a, b, c, d, e, f, g, h] = d4;
    Ok(format!(
        "{d1:08x}-{d2:04x}-{d3:04x}-{a:02x}{b:02x}-{c:02x}{d:02x}{e:02x}{f:02x}{g:02x}{h:02x}"
    ))
}

fn guid_name(g: &str) -> Option<&'static str> {
    Some(match g {
        "8be4df61-93ca-11d2-aa0d-00e098032b8c" => "EFI global variable",
        "d719b2cb-3d3a-4596-a3bc-dad00e67656f" => "image security database",
        "605dab50-e046-4300-abb6-3dd810dd8b23" => "shim",
        _ => return None,
    })
}

fn no_action(data: &[u8]) -> Option<String> {
    let sig = data.get(..16)?;
    if sig == SPEC_ID_SIGNATURE {
        return Some("Spec ID Event03 (log header: algorithms and digest sizes)".into());
    }
    if sig == b"StartupLocality\0" {
        let loc = data.get(16)?;
        return Some(format!("StartupLocality {loc} (initial value of PCR 0)"));
    }
    text(sig).map(|s| format!("{s:?} (not extended)"))
}

fn separator(data: &[u8]) -> String {
    match data {
        [0, 0, 0, 0] => "separator 00000000".into(),
        [0xff, 0xff, 0xff, 0xff] => "separator ffffffff (firmware reported an error)".into(),
        _ => format!("separator, {} bytes", data.len()),
    }
}

/// UEFI_VARIABLE_DATA: VariableName GUID, name and data lengths, UTF-16 name, data.
fn variable(data: &[u8]) -> Result<String, ParseError> {
    let mut r = Reader::new(data);
    let g = guid(&mut r, "variable_name")?;
    let name_len = r.u64_le("unicode_name_length")?;
    let data_len = r.u64_le("variable_data_length")?;
    let name_len = usize::try_from(name_len)
        .ok()
        .and_then(|n| n.checked_mul(2))
        .ok_or_else(|| ParseError::invalid("unicode_name_length", 16, "too large"))?;
    let name_bytes = r.take(name_len, "unicode_name")?;
    let name = utf16_text(name_bytes).unwrap_or_else(|| "?".into());
    let value = usize::try_from(data_len)
        .ok()
        .and_then(|n| r.take(n, "variable_data").ok());
    let owner = guid_name(&g).map_or_else(|| g.clone(), str::to_string);
    let mut out = format!("{name} ({owner}), {data_len} bytes");
    if let Some(v) = value {
        match (name.as_str(), v) {
            ("SecureBoot", [b]) => out.push_str(if *b == 1 { ": enabled" } else { ": disabled" }),
            ("BootOrder", _) => {
                let order: Vec<String> = v
                    .chunks_exact(2)
                    .map(|c| match c {
                        [a, b] => format!("Boot{:04X}", u16::from_le_bytes([*a, *b])),
                        _ => String::new(),
                    })
                    .collect();
                out.push_str(&format!(": {}", order.join(",")));
            }
            (n, _) if n.starts_with("Boot") && n.len() == 8 => {
                if let Some(d) = load_option_description(v) {
                    out.push_str(&format!(": {d:?}"));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// EFI_LOAD_OPTION: Attributes, FilePathListLength, NUL-terminated UTF-16 Description.
fn load_option_description(v: &[u8]) -> Option<String> {
    let rest = v.get(6..)?;
    let mut end = 0usize;
    for c in rest.chunks_exact(2) {
        if c == [0, 0] {
            break;
        }
        end = end.checked_add(2)?;
    }
    utf16_text(rest.get(..end)?)
}

/// UEFI_IMAGE_LOAD_EVENT: where the image was loaded and the device path it came from.
fn image_load(data: &[u8]) -> Result<String, ParseError> {
    let mut r = Reader::new(data);
    let _location = r.u64_le("image_location_in_memory")?;
    let length = r.u64_le("image_length_in_memory")?;
    let _link = r.u64_le("image_link_time_address")?;
    let dp_len = r.u64_le("length_of_device_path")?;
    let dp = usize::try_from(dp_len)
        .ok()
        .and_then(|n| r.take(n, "device_path").ok());
    let path = dp.map(device_path).unwrap_or_default();
    let mut out = format!("image of {length} bytes, device path {dp_len} bytes");
    if !path.is_empty() {
        out.push_str(&format!(": {path}"));
    }
    Ok(out)
}

/// A short rendering of the device path nodes firmware commonly logs.
fn device_path(bytes: &[u8]) -> String {
    let mut r = Reader::new(bytes);
    let mut nodes: Vec<String> = Vec::new();
    while !r.is_empty() && nodes.len() < 16 {
        let Ok(kind) = r.u8("type") else { break };
        let Ok(sub) = r.u8("subtype") else { break };
        let Ok(len) = r.u16_le("length") else { break };
        let Some(body_len) = usize::from(len).checked_sub(4) else {
            break;
        };
        let Ok(body) = r.take(body_len, "node") else {
            break;
        };
        let mut b = Reader::new(body);
        let node = match (kind, sub) {
            (0x7f, 0xff) => break,
            (1, 1) => match (b.u8("fn"), b.u8("dev")) {
                (Ok(f), Ok(d)) => format!("Pci(0x{d:x},0x{f:x})"),
                _ => "Pci(?)".into(),
            },
            (1, 3) => "MemoryMapped(..)".into(),
            (1, 4) => format!("VenHw({})", guid(&mut b, "g").unwrap_or_default()),
            (2, 1) => match (b.u32_le("hid"), b.u32_le("uid")) {
                (Ok(0x0a03_41d0), Ok(uid)) => format!("PciRoot(0x{uid:x})"),
                (Ok(hid), Ok(uid)) => format!("Acpi(0x{hid:08x},0x{uid:x})"),
                _ => "Acpi(?)".into(),
            },
            (4, 1) => format!("HD({})", b.u32_le("partition").unwrap_or(0)),
            (4, 3) => format!("VenMedia({})", guid(&mut b, "g").unwrap_or_default()),
            (4, 4) => utf16_text(body).unwrap_or_else(|| "File(?)".into()),
            (4, 6) => format!("FvFile({})", guid(&mut b, "g").unwrap_or_default()),
            (4, 7) => format!("Fv({})", guid(&mut b, "g").unwrap_or_default()),
            (t, s) => format!("Node({t},{s})"),
        };
        nodes.push(node);
    }
    nodes.join("/")
}

/// UEFI_PLATFORM_FIRMWARE_BLOB(2): base and length, BLOB2 with a description first.
fn blob(data: &[u8], with_description: bool) -> Result<String, ParseError> {
    let mut r = Reader::new(data);
    let mut out = String::new();
    if with_description {
        let n = usize::from(r.u8("blob_description_size")?);
        let d = r.take(n, "blob_description")?;
        out = format!("{:?}, ", text(d).unwrap_or_default());
    }
    let base = r.u64_le("blob_base")?;
    let length = r.u64_le("blob_length")?;
    Ok(format!(
        "{out}firmware blob of {length} bytes at 0x{base:x}"
    ))
}

/// UEFI_HANDOFF_TABLE_POINTERS(2): the configuration tables by GUID.
fn handoff(data: &[u8], with_description: bool) -> Result<String, ParseError> {
    let mut r = Reader::new(data);
    let mut out = String::new();
    if with_description {
        let n = usize::from(r.u8("table_description_size")?);
        let d = r.take(n, "table_description")?;
        out = format!("{:?}, ", text(d).unwrap_or_default());
    }
    let n = r.u64_le("number_of_tables")?;
    let mut guids = Vec::new();
    for _ in 0..n.min(8) {
        guids.push(guid(&mut r, "vendor_guid")?);
        r.skip(8, "vendor_table")?;
    }
    Ok(format!(
        "{out}{n} configuration table(s): {}",
        guids.join(", ")
    ))
}

/// TCG_PCClientTaggedEvent: the Linux EFI stub tags its LoadOptions and initrd events.
fn tagged(data: &[u8]) -> Result<String, ParseError> {
    let mut r = Reader::new(data);
    let id = r.u32_le("tagged_event_id")?;
    let n = r.len_u32_le("tagged_event_data_size", data.len())?;
    let d = r.take(n, "tagged_event_data")?;
    Ok(match text(d) {
        Some(t) => format!("tag 0x{id:08x}: {t:?}"),
        None => format!("tag 0x{id:08x}, {n} bytes"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn strings_and_tags() {
        assert_eq!(
            describe(EV_EFI_ACTION, b"Exit Boot Services Invocation"),
            "\"Exit Boot Services Invocation\""
        );
        assert_eq!(describe(EV_IPL, b".linux\0"), "\".linux\"");
        assert_eq!(describe(EV_IPL, &utf16(".cmdline\0")), "\".cmdline\"");
        let mut tag = 0x8F3B_22EDu32.to_le_bytes().to_vec();
        tag.extend(26u32.to_le_bytes());
        tag.extend(b"LOADED_IMAGE::LoadOptions\0");
        assert_eq!(
            describe(EV_EVENT_TAG, &tag),
            "tag 0x8f3b22ed: \"LOADED_IMAGE::LoadOptions\""
        );
        assert_eq!(
            describe(EV_IPL, &[0x01, 0x80, 0x02]),
            "3 bytes of event data"
        );
    }

    #[test]
    fn variable_and_image() {
        let mut v = Vec::new();
        v.extend([0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11]);
        v.extend([0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]);
        v.extend(10u64.to_le_bytes());
        v.extend(1u64.to_le_bytes());
        v.extend(utf16("SecureBoot"));
        v.push(0);
        assert_eq!(
            describe(EV_EFI_VARIABLE_DRIVER_CONFIG, &v),
            "SecureBoot (EFI global variable), 1 bytes: disabled"
        );

        let mut img = Vec::new();
        img.extend(0x1000u64.to_le_bytes());
        img.extend(4096u64.to_le_bytes());
        img.extend(0u64.to_le_bytes());
        let mut dp = vec![4, 4];
        let name = utf16("kernel\0");
        dp.extend(u16::try_from(name.len() + 4).unwrap().to_le_bytes());
        dp.extend(&name);
        dp.extend([0x7f, 0xff, 4, 0]);
        img.extend(u64::try_from(dp.len()).unwrap().to_le_bytes());
        img.extend(&dp);
        assert_eq!(
            describe(EV_EFI_BOOT_SERVICES_APPLICATION, &img),
            "image of 4096 bytes, device path 22 bytes: kernel"
        );
        // A device path longer than the data: still a description, no panic.
        img.truncate(40);
        assert!(describe(EV_EFI_BOOT_SERVICES_APPLICATION, &img).contains("device path 22"));
    }
}
