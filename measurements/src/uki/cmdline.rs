//! The kernel command line systemd-stub 257 passes on: the `.cmdline` section decoded
//! from UTF-8 to UCS-2 (`xstrn8_to_16`, src/boot/efi-string.c), then cleaned up
//! (`mangle_stub_cmdline`, src/boot/util.c), then handed to the kernel image as
//! `LoadOptions` with `LoadOptionsSize = strsize16()`, i.e. including the terminating
//! NUL (src/boot/linux.c). The kernel's EFI stub measures exactly those bytes
//! (drivers/firmware/efi/libstub/efi-stub-helper.c, `efi_convert_cmdline`).
#![deny(clippy::arithmetic_side_effects)]

/// systemd's `utf8_to_unichar`: decode one sequence; `None` for an invalid or short one.
/// Returns the number of bytes consumed (it may exceed `s.len()`, meaning "all").
/// Overlong forms are accepted as systemd does; 5- and 6-byte forms are decoded too.
fn utf8_to_unichar(s: &[u8]) -> (usize, Option<u32>) {
    let Some(&b0) = s.first() else {
        return (1, None);
    };
    let (len, mut c) = if b0 < 0x80 {
        return (1, Some(u32::from(b0)));
    } else if b0 & 0xe0 == 0xc0 {
        (2, u32::from(b0 & 0x1f))
    } else if b0 & 0xf0 == 0xe0 {
        (3, u32::from(b0 & 0x0f))
    } else if b0 & 0xf8 == 0xf0 {
        (4, u32::from(b0 & 0x07))
    } else if b0 & 0xfc == 0xf8 {
        (5, u32::from(b0 & 0x03))
    } else if b0 & 0xfe == 0xfc {
        (6, u32::from(b0 & 0x01))
    } else {
        return (1, None);
    };
    if len > s.len() {
        return (len, None);
    }
    for &b in s.iter().take(len).skip(1) {
        if b & 0xc0 != 0x80 {
            return (len, None);
        }
        c = (c << 6) | u32::from(b & 0x3f);
    }
    (len, Some(c))
}

/// `xstrn8_to_16`: UTF-8 to UCS-2, stopping at a NUL byte, skipping invalid sequences
/// and anything outside the BMP or in the surrogate range.
pub fn utf8_to_ucs2(mut s: &[u8]) -> Vec<u16> {
    let mut out = Vec::with_capacity(s.len());
    while let Some(&b) = s.first() {
        if b == 0 {
            break;
        }
        let (len, c) = utf8_to_unichar(s);
        s = s.get(len..).unwrap_or(&[]);
        if let Some(c) = c {
            if c <= 0xd7ff || (0xe000..=0xffff).contains(&c) {
                out.push(c as u16);
            }
        }
    }
    out
}

/// `shall_be_whitespace`: all control characters, space and DEL.
fn is_stub_whitespace(c: u16) -> bool {
    c <= 0x20 || c == 0x7f
}

/// `mangle_stub_cmdline`: drop leading whitespace, turn each inner control character
/// into a space (one for one, not collapsed), drop trailing whitespace.
pub fn mangle(cmdline: &[u16]) -> Vec<u16> {
    let start = cmdline
        .iter()
        .position(|&c| !is_stub_whitespace(c))
        .unwrap_or(cmdline.len());
    let end = cmdline
        .iter()
        .rposition(|&c| !is_stub_whitespace(c))
        .map_or(start, |i| i.saturating_add(1));
    cmdline
        .get(start..end.max(start))
        .unwrap_or(&[])
        .iter()
        .map(|&c| if is_stub_whitespace(c) { 0x20 } else { c })
        .collect()
}

/// The `.cmdline` section as the kernel receives it: (text, LoadOptions bytes measured
/// by the kernel = UTF-16LE including the terminating NUL).
pub fn load_options(section: &[u8]) -> (String, Vec<u8>) {
    let ucs2 = mangle(&utf8_to_ucs2(section));
    // No surrogates survive `utf8_to_ucs2`, so every unit is a scalar value.
    let text: String = ucs2
        .iter()
        .filter_map(|&u| char::from_u32(u32::from(u)))
        .collect();
    let mut bytes = Vec::with_capacity(ucs2.len().saturating_add(1).saturating_mul(2));
    for u in ucs2.iter().chain(std::iter::once(&0u16)) {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    (text, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_newline_and_control_chars() {
        let (text, bytes) = load_options(b"  console=ttyS0\tquiet\n\n");
        assert_eq!(text, "console=ttyS0 quiet");
        assert_eq!(bytes.len(), (text.len() + 1) * 2);
        assert_eq!(&bytes[bytes.len() - 2..], &[0, 0]);
        assert_eq!(&bytes[..4], &[b'c', 0, b'o', 0]);
    }

    #[test]
    fn stops_at_nul_and_keeps_inner_spaces() {
        let (text, _) = load_options(b"a  b\0ignored");
        assert_eq!(text, "a  b");
    }

    #[test]
    fn non_bmp_and_invalid_utf8_are_dropped() {
        // U+00E9 kept, U+1F600 (4 bytes) dropped, a lone continuation byte dropped.
        let (text, _) = load_options("x\u{e9}\u{1f600}y".as_bytes());
        assert_eq!(text, "x\u{e9}y");
        let (text, _) = load_options(b"a\x80b");
        assert_eq!(text, "ab");
        // A truncated sequence swallows the rest, as systemd's decoder does.
        let (text, _) = load_options(b"ab\xe2\x82");
        assert_eq!(text, "ab");
    }

    #[test]
    fn all_whitespace_is_empty() {
        let (text, bytes) = load_options(b" \n\t ");
        assert_eq!(text, "");
        assert_eq!(bytes, vec![0, 0]);
    }
}
