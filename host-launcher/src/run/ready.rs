//! Watching the serial log for the agent's ready line (CONTRACT section 5: one stdout
//! line starting `cocoon-agent: ready tee=<kind> listen=<addr> engine=<kind>`, which
//! reaches the serial console through journal+console).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What the agent prints when it serves.
pub const READY_MARKER: &str = "cocoon-agent: ready";

/// Longest line kept whole: a guest that writes more without a newline gets it cut
/// into lines of this size instead of growing the launcher's memory.
pub const MAX_LINE: usize = 64 << 10;

/// Assembles console lines from a serial log's bytes as they arrive, in any pieces.
#[derive(Debug, Default)]
pub struct SerialLines {
    partial: Vec<u8>,
    /// The start of a line that a kernel record interrupted, waiting for its rest.
    held: String,
}

impl SerialLines {
    /// The lines `bytes` completed (carriage returns and control characters removed). A
    /// kernel record that landed inside another line comes as a line of its own, and
    /// the interrupted line comes whole once its rest has arrived.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(bytes);
        let mut lines = Vec::new();
        loop {
            // Only the first MAX_LINE bytes are searched, so where a line is cut does not
            // depend on how the bytes were split into pushes.
            let end = match self.partial.iter().take(MAX_LINE).position(|b| *b == b'\n') {
                Some(pos) => pos.saturating_add(1),
                None if self.partial.len() >= MAX_LINE => MAX_LINE,
                None => break,
            };
            let raw: Vec<u8> = self.partial.drain(..end).collect();
            self.line(&raw, &mut lines);
        }
        lines
    }

    fn line(&mut self, raw: &[u8], lines: &mut Vec<String>) {
        let text: String = String::from_utf8_lossy(raw)
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        let from = self.held.len().max(1);
        let mut text = std::mem::take(&mut self.held) + text.trim_end();
        if let Some(at) = interrupting_record(&text, from) {
            let record = text.split_off(at);
            if text.len() < MAX_LINE {
                self.held = text;
            } else {
                lines.push(text);
            }
            text = record;
        }
        lines.push(text);
    }
}

/// Reads the lines appended to a log file since an offset.
#[derive(Debug)]
pub struct SerialWatch {
    path: PathBuf,
    offset: u64,
    lines: SerialLines,
    last_line: String,
}

impl SerialWatch {
    /// Watch `path` from byte `offset` (its length when this boot started).
    pub fn new(path: &Path, offset: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            offset,
            lines: SerialLines::default(),
            last_line: String::new(),
        }
    }

    /// The current length of a log (0 when it does not exist yet).
    pub fn len_of(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// The last complete non-empty line seen.
    pub fn last_line(&self) -> &str {
        &self.last_line
    }

    /// New complete lines, as [`SerialLines::push`] gives them.
    pub fn poll(&mut self) -> std::io::Result<Vec<String>> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        let n = f.read_to_end(&mut buf)?;
        self.offset = self.offset.saturating_add(n as u64);
        let lines = self.lines.push(&buf);
        if let Some(last) = lines.iter().rev().find(|l| !l.trim().is_empty()) {
            self.last_line = last.clone();
        }
        Ok(lines)
    }
}

/// Where a kernel record begins inside a line that other output had started, if one does,
/// looking from byte `from` on (the part of the line that has not been looked at yet).
/// printk writes a record ("[   12.345678] text" and its newline) to the console at once,
/// even in the middle of a line that journald or a program is writing, and the rest of
/// that line follows on the next one. A record at the start of a line (as journald's own
/// console lines look too) interrupts nothing. tools/serial-lines does the same for scripts.
fn interrupting_record(line: &str, from: usize) -> Option<usize> {
    line.match_indices('[')
        .map(|(i, _)| i)
        .rfind(|&i| i >= from && line.get(i..).is_some_and(is_record_start))
}

/// `[`, seconds right-aligned in at least 5 columns, `.`, 6 digits of microseconds, `] `:
/// the kernel's `[%5lu.%06lu] ` (journald's console lines use the same), exact enough that
/// bracketed numbers inside ordinary text are not taken for a record. Looks at no more
/// than the record's longest prefix, so a line of many `[` stays linear to scan.
fn is_record_start(s: &str) -> bool {
    let Some(rest) = s.as_bytes().strip_prefix(b"[") else {
        return false;
    };
    // Seconds are a u64: at most 20 digits, after the padding to 5 columns.
    let Some(dot) = rest.iter().take(24).position(|&c| c == b'.') else {
        return false;
    };
    let (secs, rest) = rest.split_at(dot);
    let pad = secs.iter().take_while(|&&c| c == b' ').count();
    let digits = secs.get(pad..).unwrap_or_default();
    secs.len() >= 5
        && !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && rest
            .get(1..7)
            .is_some_and(|f| f.iter().all(u8::is_ascii_digit))
        && rest.get(7..9) == Some(b"] ".as_slice())
}

/// The ready line's text from `cocoon-agent: ready` on, if this line carries it.
pub fn ready_text(line: &str) -> Option<&str> {
    line.find(READY_MARKER).and_then(|i| line.get(i..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn finds_ready_line_across_partial_writes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serial.log");
        std::fs::write(&log, "old boot\ncocoon-agent: ready tee=sim listen=old\n").unwrap();
        let mut w = SerialWatch::new(&log, SerialWatch::len_of(&log));
        assert!(
            w.poll().unwrap().is_empty(),
            "lines before the offset are the last boot's"
        );
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"[  1.0] booting\r\ncocoon-agent: rea")
            .unwrap();
        let lines = w.poll().unwrap();
        assert_eq!(lines, vec!["[  1.0] booting".to_string()]);
        assert!(lines.iter().all(|l| ready_text(l).is_none()));
        f.write_all(b"dy tee=sim listen=0.0.0.0:8443 engine=none\r\n")
            .unwrap();
        let lines = w.poll().unwrap();
        assert_eq!(
            ready_text(&lines[0]),
            Some("cocoon-agent: ready tee=sim listen=0.0.0.0:8443 engine=none")
        );
        assert_eq!(
            w.last_line(),
            "cocoon-agent: ready tee=sim listen=0.0.0.0:8443 engine=none"
        );
    }

    #[test]
    fn a_kernel_record_inside_the_ready_line_is_cut_out() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serial.log");
        std::fs::write(&log, "").unwrap();
        let mut w = SerialWatch::new(&log, 0);
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        // As journald forwards the agent's line to the console, with printk records
        // landing inside it twice, and a bracket in the interrupted text itself.
        f.write_all(
            b"[   29.600000] cocoon-agent[418]: cocoon-agent: rea[   30.100000] virtio_net virtio0 enp0s3: renamed\r\n\
              [   30.200000] random: crng init done\r\n\
              dy tee=sim [1.0] listen=0.0.0.0:8443 engine=none\r\n",
        )
        .unwrap();
        let lines = w.poll().unwrap();
        assert_eq!(
            lines,
            vec![
                "[   30.100000] virtio_net virtio0 enp0s3: renamed",
                "[   30.200000] random: crng init done",
                "[   29.600000] cocoon-agent[418]: cocoon-agent: ready tee=sim [1.0] listen=0.0.0.0:8443 engine=none",
            ]
        );
        assert_eq!(
            ready_text(&lines[2]),
            Some("cocoon-agent: ready tee=sim [1.0] listen=0.0.0.0:8443 engine=none")
        );
    }

    #[test]
    fn a_line_without_end_is_cut_at_max_line_however_it_arrives() {
        let mut text = vec![b'a'; MAX_LINE + 10];
        text.extend_from_slice(b"\nnext\n");
        let whole = SerialLines::default().push(&text);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].len(), MAX_LINE);
        assert_eq!(whole[1], "a".repeat(10));
        assert_eq!(whole[2], "next");
        for piece in [1000, MAX_LINE - 1, MAX_LINE + 1] {
            let mut lines = SerialLines::default();
            let got: Vec<String> = text.chunks(piece).flat_map(|c| lines.push(c)).collect();
            assert_eq!(got, whole, "in pieces of {piece}");
        }
    }

    #[test]
    fn record_starts() {
        for yes in [
            "[    2.322390] tsc: x",
            "[12345.000000] x",
            "[123456.000001] ",
        ] {
            assert!(is_record_start(yes), "{yes}");
        }
        for no in [
            "[1.0] x",
            "[    2.32239] x",
            "[     .322390] x",
            "[    2.322390]x",
            "[   -2.322390] x",
            "[    2:322390] x",
            "[    2.322390",
            "x[    2.322390] y",
            "[",
        ] {
            assert!(!is_record_start(no), "{no}");
        }
        assert_eq!(interrupting_record("[    1.000000] unit: text", 1), None);
        assert_eq!(interrupting_record("abc[    1.000000] kernel", 1), Some(3));
        assert_eq!(interrupting_record("a[1.0] b[    2.000000] c", 1), Some(8));
        // A held line start is not looked at again, and the new part may begin with one.
        assert_eq!(interrupting_record("a[    1.000000] b c", 16), None);
        assert_eq!(interrupting_record("held[    2.000000] k", 4), Some(4));
    }
}
