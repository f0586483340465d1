//! A cursor over untrusted bytes (after rustls' `msgs/codec.rs`).
//!
//! Nothing in a parser indexes a slice directly: every read goes through
//! [`Reader`], so truncated or oversized input becomes a [`ParseError`] that names
//! the field and the absolute byte offset, never a panic.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

/// What went wrong while reading a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The input ended before the field did.
    Truncated { needed: usize, available: usize },
    /// A length read from the input exceeds the cap for that field.
    TooLarge { len: u64, max: u64 },
    /// The bytes are present but not what the format allows.
    Invalid(String),
}

/// A parse failure: which field, at which absolute byte offset, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub field: String,
    pub offset: usize,
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::Truncated { needed, available } => write!(
                f,
                "{} at byte offset {}: truncated (needs {} bytes, {} available)",
                self.field, self.offset, needed, available
            ),
            ParseErrorKind::TooLarge { len, max } => write!(
                f,
                "{} at byte offset {}: length {} exceeds the limit of {}",
                self.field, self.offset, len, max
            ),
            ParseErrorKind::Invalid(why) => {
                write!(f, "{} at byte offset {}: {}", self.field, self.offset, why)
            }
        }
    }
}

impl ParseError {
    pub fn invalid(field: impl Into<String>, offset: usize, why: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            offset,
            kind: ParseErrorKind::Invalid(why.into()),
        }
    }

    pub fn too_large(field: impl Into<String>, offset: usize, len: u64, max: u64) -> Self {
        Self {
            field: field.into(),
            offset,
            kind: ParseErrorKind::TooLarge { len, max },
        }
    }
}

/// A read cursor over a byte slice. `base` is the absolute offset of `buf[0]` in the
/// original input, so errors from nested readers still name absolute offsets.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over `buf` whose first byte sits at absolute offset `base`.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte to be read.
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// Position relative to the start of this reader's slice.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not yet read, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Take exactly `n` bytes or fail naming `field`.
    pub fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], ParseError> {
        let available = self.remaining();
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end).map(|s| (s, end))) {
            Some((s, end)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(ParseError {
                field: field.to_string(),
                offset: self.offset(),
                kind: ParseErrorKind::Truncated {
                    needed: n,
                    available,
                },
            }),
        }
    }

    /// Take `n` bytes as a nested reader that reports absolute offsets.
    pub fn sub(&mut self, n: usize, field: &str) -> Result<Reader<'a>, ParseError> {
        let base = self.offset();
        let bytes = self.take(n, field)?;
        Ok(Reader::with_base(bytes, base))
    }

    pub fn skip(&mut self, n: usize, field: &str) -> Result<(), ParseError> {
        self.take(n, field).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], ParseError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self, field: &str) -> Result<u8, ParseError> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    pub fn u16_le(&mut self, field: &str) -> Result<u16, ParseError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub fn u32_le(&mut self, field: &str) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub fn u64_le(&mut self, field: &str) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    pub fn u16_be(&mut self, field: &str) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub fn u32_be(&mut self, field: &str) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Read a length field and check it against `max` before it is used.
    pub fn len_u32_le(&mut self, field: &str, max: usize) -> Result<usize, ParseError> {
        let at = self.offset();
        let len = self.u32_le(field)?;
        check_len(field, at, u64::from(len), max)
    }

    pub fn len_u16_le(&mut self, field: &str, max: usize) -> Result<usize, ParseError> {
        let at = self.offset();
        let len = self.u16_le(field)?;
        check_len(field, at, u64::from(len), max)
    }
}

/// Convert a length read from input to `usize`, refusing anything above `max`.
pub fn check_len(field: &str, offset: usize, len: u64, max: usize) -> Result<usize, ParseError> {
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ParseError::too_large(field, offset, len, max as u64)),
    }
}

/// Bytes of a slice at `offset..offset+len`, or an error naming the field.
pub fn slice_at<'a>(
    buf: &'a [u8],
    offset: usize,
    len: usize,
    field: &str,
) -> Result<&'a [u8], ParseError> {
    let mut r = Reader::new(buf);
    if offset > buf.len() {
        return Err(ParseError {
            field: field.to_string(),
            offset,
            kind: ParseErrorKind::Truncated {
                needed: len,
                available: 0,
            },
        });
    }
    r.skip(offset, field)?;
    r.take(len, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_read_names_field_and_offset() {
        let mut r = Reader::with_base(&[1, 2, 3], 100);
        assert_eq!(r.u16_le("a").unwrap(), 0x0201);
        let e = r.u32_le("quote.header.version").unwrap_err();
        assert_eq!(e.offset, 102);
        assert_eq!(e.field, "quote.header.version");
        assert_eq!(
            e.kind,
            ParseErrorKind::Truncated {
                needed: 4,
                available: 1
            }
        );
        assert!(e.to_string().contains("byte offset 102"));
    }

    #[test]
    fn length_cap_is_enforced() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0x7f]);
        let e = r.len_u32_le("event.size", 1024).unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::TooLarge { .. }));
    }

    #[test]
    fn huge_take_does_not_overflow() {
        let mut r = Reader::new(&[0; 4]);
        r.skip(2, "x").unwrap();
        assert!(r.take(usize::MAX, "y").is_err());
        assert!(slice_at(&[0; 4], usize::MAX, 1, "z").is_err());
    }
}
