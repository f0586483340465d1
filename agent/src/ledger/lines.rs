//! Splits a ledger file into lines without trusting it: a line longer than the cap is
//! hashed but not kept, so garbage without newlines cannot exhaust memory.
#![deny(clippy::arithmetic_side_effects)]

use std::io::{self, BufRead};

use sha2::{Digest, Sha256};

/// Longest line kept for parsing. A receipt is ~600 bytes; an epoch carries the
/// attestation (a TDX quote is ~5 KiB, as hex ~10 KiB, plus claims and collateral).
pub const MAX_LINE: usize = 1 << 20;

/// One line of the file.
#[derive(Debug)]
pub struct RawLine {
    /// 1-based line number.
    pub no: u64,
    /// Byte offset of the line's first byte.
    pub start: u64,
    /// Byte offset just past the line (past its `\n` when terminated).
    pub end: u64,
    /// The bytes without `\n`; `None` when longer than [`MAX_LINE`].
    pub bytes: Option<Vec<u8>>,
    /// SHA-256 of the bytes without `\n`.
    pub hash: [u8; 32],
    /// Ends with `\n`. Only the last line of a file can lack it: a torn write.
    pub terminated: bool,
}

pub struct LineReader<R> {
    inner: R,
    offset: u64,
    no: u64,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            offset: 0,
            no: 0,
        }
    }

    /// The next line, `None` at the end of the input.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine>> {
        let start = self.offset;
        let mut bytes = Some(Vec::new());
        let mut hasher = Sha256::new();
        let mut len: u64 = 0;
        let terminated = loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                if len == 0 {
                    return Ok(None);
                }
                break false;
            }
            let (chunk_len, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            let chunk = buf.get(..chunk_len).unwrap_or_default();
            hasher.update(chunk);
            len = len.saturating_add(chunk_len as u64);
            if let Some(b) = bytes.as_mut() {
                if b.len().saturating_add(chunk_len) > MAX_LINE {
                    bytes = None;
                } else {
                    b.extend_from_slice(chunk);
                }
            }
            let consumed = if found {
                chunk_len.saturating_add(1)
            } else {
                chunk_len
            };
            self.inner.consume(consumed);
            self.offset = self.offset.saturating_add(consumed as u64);
            if found {
                break true;
            }
        };
        self.no = self.no.saturating_add(1);
        Ok(Some(RawLine {
            no: self.no,
            start,
            end: self.offset,
            bytes,
            hash: hasher.finalize().into(),
            terminated,
        }))
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_tracks_offsets() {
        let data = b"ab\n\ncd";
        let mut r = LineReader::new(io::BufReader::with_capacity(1, &data[..]));
        let a = r.next_line().unwrap().unwrap();
        assert_eq!((a.no, a.start, a.end, a.terminated), (1, 0, 3, true));
        assert_eq!(a.bytes.as_deref(), Some(&b"ab"[..]));
        assert_eq!(a.hash, <[u8; 32]>::from(Sha256::digest(b"ab")));
        let b = r.next_line().unwrap().unwrap();
        assert_eq!((b.no, b.start, b.end, b.bytes.unwrap().len()), (2, 3, 4, 0));
        let c = r.next_line().unwrap().unwrap();
        assert_eq!((c.no, c.start, c.end, c.terminated), (3, 4, 6, false));
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn long_line_is_hashed_not_kept() {
        let mut data = vec![b'x'; MAX_LINE + 1];
        data.push(b'\n');
        data.extend_from_slice(b"y\n");
        let mut r = LineReader::new(&data[..]);
        let a = r.next_line().unwrap().unwrap();
        assert!(a.bytes.is_none());
        assert_eq!(
            a.hash,
            <[u8; 32]>::from(Sha256::digest(&data[..MAX_LINE + 1]))
        );
        let b = r.next_line().unwrap().unwrap();
        assert_eq!(b.bytes.as_deref(), Some(&b"y"[..]));
    }
}
