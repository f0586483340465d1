//! The "newc" cpio archives systemd-stub 257 generates around small UKI sections and
//! appends to the initrd (src/boot/cpio.c, `pack_cpio_literal`; format:
//! Documentation/driver-api/early-userspace/buffer-format.rst in the kernel).
//!
//! Byte-exact quirks the measurement depends on: headers in lowercase hex; a directory
//! entry for `.extra` (mode 040555, inode 1) then the file (mode 0100444, inode 2),
//! nlink 1, uid/gid/mtime 0; name sizes count the NUL; header+name and contents each
//! padded with NULs to a multiple of 4; and a fixed trailer record whose name-size
//! field is written `0000000B` (uppercase hex), followed by "TRAILER!!!" and 3 NULs.
#![deny(clippy::arithmetic_side_effects)]

/// The directory the stub puts its generated files in.
pub const EXTRA_DIR: &str = ".extra";

/// Mode bits of the directory and of the file (`dir_mode`/`access_mode` in stub.c).
const DIR_MODE: u32 = 0o040_000 | 0o555;
const FILE_MODE: u32 = 0o100_000 | 0o444;

/// The trailer exactly as cpio.c writes it (a C string literal with 3 explicit NULs
/// plus the implicit one: 124 bytes).
const TRAILER: &[u8; 124] = b"070701\
00000000000000000000000000000000\
00000001\
000000000000000000000000000000000000000000000000\
0000000B\
00000000\
TRAILER!!!\0\0\0\0";

fn push_word(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(format!("{v:08x}").as_bytes());
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, size: u32, name: &str) {
    out.extend_from_slice(b"070701");
    push_word(out, ino);
    push_word(out, mode);
    push_word(out, 0); // uid
    push_word(out, 0); // gid
    push_word(out, 1); // nlink
    push_word(out, 0); // mtime: never propagated, for stable measurements
    push_word(out, size);
    for _ in 0..4 {
        push_word(out, 0); // dev major/minor, rdev major/minor
    }
    let namesize = u32::try_from(name.len().saturating_add(1)).unwrap_or(u32::MAX);
    push_word(out, namesize);
    push_word(out, 0); // check
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

/// An archive holding `.extra/<filename>` with `content_len` bytes of content, split
/// around the content: (bytes before it, bytes after it). The content itself is left to
/// the caller so that it can come straight from the file being hashed.
/// `None` when the content does not fit cpio's 32-bit size field.
pub fn literal_parts(filename: &str, content_len: u64) -> Option<(Vec<u8>, Vec<u8>)> {
    let size = u32::try_from(content_len).ok()?;
    let mut before = Vec::with_capacity(256);
    header(&mut before, 1, DIR_MODE, 0, EXTRA_DIR);
    header(
        &mut before,
        2,
        FILE_MODE,
        size,
        &format!("{EXTRA_DIR}/{filename}"),
    );
    let pad = 4u64.saturating_sub(content_len % 4) % 4;
    let mut after = vec![0u8; pad as usize];
    after.extend_from_slice(TRAILER);
    Some((before, after))
}

/// The whole archive for `.extra/<filename>` holding `content`.
pub fn literal(filename: &str, content: &[u8]) -> Option<Vec<u8>> {
    let (mut out, after) = literal_parts(filename, content.len() as u64)?;
    out.extend_from_slice(content);
    out.extend_from_slice(&after);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_is_the_stub_literal() {
        assert_eq!(TRAILER.len(), 124);
        assert_eq!(TRAILER.len() % 4, 0);
        assert_eq!(&TRAILER[94..102], b"0000000B");
        assert_eq!(&TRAILER[110..120], b"TRAILER!!!");
    }

    #[test]
    fn os_release_archive_layout() {
        let content = b"ID=debian\n";
        let a = literal("os-release", content).unwrap();
        // dir entry: 110 header + ".extra\0" (7) = 117 -> 120
        assert_eq!(&a[..6], b"070701");
        assert_eq!(&a[6..14], b"00000001");
        assert_eq!(&a[14..22], b"0000416d"); // 040555
        assert_eq!(&a[94..102], b"00000007");
        assert_eq!(&a[110..117], b".extra\0");
        // file entry at 120: 110 + ".extra/os-release\0" (18) = 128 -> 128
        let f = &a[120..];
        assert_eq!(&f[6..14], b"00000002");
        assert_eq!(&f[14..22], b"00008124"); // 0100444
        assert_eq!(&f[54..62], b"0000000a"); // size 10, lowercase
        assert_eq!(&f[94..102], b"00000012"); // name size 18
        assert_eq!(&f[110..128], b".extra/os-release\0");
        assert_eq!(&f[128..138], content);
        assert_eq!(&f[138..140], &[0, 0]); // pad 10 -> 12
        assert_eq!(&f[140..], TRAILER);
        assert_eq!(a.len() % 4, 0);
    }
}
