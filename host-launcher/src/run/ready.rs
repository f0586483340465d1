//! Watching the serial log for the agent's ready line (CONTRACT section 5: one stdout
//! line starting `cocoon-agent: ready tee=<kind> listen=<addr> engine=<kind>`, which
//! reaches the serial console through journal+console).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What the agent prints when it serves.
pub const READY_MARKER: &str = "cocoon-agent: ready";

/// Reads the lines appended to a log file since an offset.
#[derive(Debug)]
pub struct SerialWatch {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    last_line: String,
}

impl SerialWatch {
    /// Watch `path` from byte `offset` (its length when this boot started).
    pub fn new(path: &Path, offset: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
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

    /// New complete lines (carriage returns and control characters removed).
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
        self.partial.extend_from_slice(&buf);
        let mut lines = Vec::new();
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.partial.drain(..=pos).collect();
            let text: String = String::from_utf8_lossy(&raw)
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            let text = text.trim_end().to_string();
            if !text.trim().is_empty() {
                self.last_line = text.clone();
            }
            lines.push(text);
        }
        Ok(lines)
    }
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
}
