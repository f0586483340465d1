//! Quote files come either as the raw quote or as hex text (what `tdx-attest`,
//! dstack's tappd and most HTTP APIs hand out). A raw TDX quote starts with the
//! little-endian version `04 00` or `05 00`, which is never ASCII hex, so the two
//! forms cannot be confused.
#![deny(clippy::arithmetic_side_effects)]

use std::borrow::Cow;

use super::{QuoteError, MAX_QUOTE_BYTES};

/// True when `input` is meant as hex text: after leading whitespace and an optional
/// `0x`/`0X`, its first four non-whitespace bytes are hex digits. A raw quote begins with
/// `04 00` or `05 00` and never passes; stray characters later in hex text are then
/// reported by [`quote_bytes`] with their offset instead of being read as binary.
pub fn looks_like_hex(input: &[u8]) -> bool {
    let body = strip_prefix(input).1;
    let mut first = body.iter().filter(|b| !b.is_ascii_whitespace()).take(4);
    first.clone().count() == 4 && first.all(u8::is_ascii_hexdigit)
}

/// The text after leading whitespace and an optional `0x`, with its offset.
fn strip_prefix(input: &[u8]) -> (usize, &[u8]) {
    let lead = input.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let rest = input.get(lead..).unwrap_or(&[]);
    match rest {
        [b'0', b'x' | b'X', tail @ ..] => (lead.saturating_add(2), tail),
        _ => (lead, rest),
    }
}

/// The quote bytes of a file's content: decoded when it is hex text, as-is otherwise.
/// Hex errors name the byte offset in the text.
pub fn quote_bytes(input: &[u8]) -> Result<Cow<'_, [u8]>, QuoteError> {
    if !looks_like_hex(input) {
        return Ok(Cow::Borrowed(input));
    }
    let (start, body) = strip_prefix(input);
    let mut out = Vec::with_capacity((body.len() / 2).min(MAX_QUOTE_BYTES));
    let mut high: Option<u8> = None;
    for (i, &b) in body.iter().enumerate() {
        let offset = start.saturating_add(i);
        if b.is_ascii_whitespace() {
            continue;
        }
        let Some(v) = hex_value(b) else {
            return Err(QuoteError::Hex {
                offset,
                reason: format!("byte {b:#04x} is neither a hex digit nor whitespace"),
            });
        };
        match high.take() {
            None => high = Some(v),
            Some(h) => {
                if out.len() >= MAX_QUOTE_BYTES {
                    return Err(QuoteError::TooLarge {
                        len: body.len() / 2,
                        max: MAX_QUOTE_BYTES,
                    });
                }
                out.push(h.wrapping_shl(4) | v);
            }
        }
    }
    if high.is_some() {
        return Err(QuoteError::Hex {
            offset: input.len(),
            reason: "odd number of hex digits".into(),
        });
    }
    Ok(Cow::Owned(out))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => b.checked_sub(b'0'),
        b'a'..=b'f' => b.checked_sub(b'a').and_then(|v| v.checked_add(10)),
        b'A'..=b'F' => b.checked_sub(b'A').and_then(|v| v.checked_add(10)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_decodes_hex() {
        assert!(looks_like_hex(b"0x0400 02\n"));
        assert!(!looks_like_hex(b"\x04\x00\x02\x00"));
        assert!(!looks_like_hex(b"   "));
        assert!(!looks_like_hex(b"0x"));
        assert!(!looks_like_hex(b"04zz"));
        let e = quote_bytes(b"0400 02zz").unwrap_err();
        assert!(matches!(e, QuoteError::Hex { offset: 7, .. }), "{e}");
        assert_eq!(
            &*quote_bytes(b" 0x04 00\r\nAbff\n").unwrap(),
            &[4, 0, 0xab, 0xff]
        );
        assert_eq!(&*quote_bytes(b"\x04\x00").unwrap(), &[4, 0]);
        let e = quote_bytes(b"04000").unwrap_err();
        assert!(matches!(e, QuoteError::Hex { offset: 5, .. }), "{e}");
    }
}
