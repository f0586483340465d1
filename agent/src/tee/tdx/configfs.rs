//! TDX quotes through Linux configfs-tsm (Linux 6.7+).
//!
//! Protocol (Documentation/ABI/testing/configfs-tsm): `mkdir` a report entry, check
//! `provider`, write 64 bytes of REPORTDATA to `inblob`, read `generation`, read
//! `outblob` (the kernel asks the host's quoting service), read `generation` again,
//! `rmdir`. `generation` counts writes to the entry's attributes; a fresh entry
//! written once reads 1, and an unchanged value after `outblob` proves that nobody
//! rewrote `inblob` between our write and the quote, so the quote covers our REPORTDATA.
//!
//! The file operations go through [`TsmFs`] so a test can play the kernel's part on a
//! directory tree (real configfs creates the attribute files on `mkdir` and removes
//! them on `rmdir`, which a plain filesystem does not).

use std::path::{Path, PathBuf};

use crate::tee::TeeError;

/// The `provider` a TDX guest's report entry names.
pub const TSM_PROVIDER: &str = "tdx_guest";
/// Quotes are a few KiB; anything bigger is not a quote.
const MAX_QUOTE: usize = 64 * 1024;

/// The four filesystem operations the protocol needs.
pub trait TsmFs {
    fn create_dir(&self, path: &Path) -> std::io::Result<()>;
    fn remove_dir(&self, path: &Path) -> std::io::Result<()>;
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()>;
}

/// The real filesystem.
pub struct RealFs;

impl TsmFs for RealFs {
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        // configfs attributes exist once the entry does; never create files here.
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(data)
    }
}

/// Removes the report entry whatever happens, so failed quotes do not pile up
/// entries in configfs.
struct Entry<'a, F: TsmFs> {
    fs: &'a F,
    dir: PathBuf,
}

impl<F: TsmFs> Drop for Entry<'_, F> {
    fn drop(&mut self) {
        if let Err(e) = self.fs.remove_dir(&self.dir) {
            tracing::warn!(entry = %self.dir.display(), error = %e, "configfs-tsm rmdir failed");
        }
    }
}

/// Run the configfs-tsm protocol once under `root/name`.
pub fn request_quote<F: TsmFs>(
    fs: &F,
    root: &Path,
    name: &str,
    report_data: &[u8; 64],
) -> Result<Vec<u8>, TeeError> {
    let dir = root.join(name);
    let tsm = |why: String| TeeError::Tsm {
        path: dir.clone(),
        why,
    };
    fs.create_dir(&dir)
        .map_err(|e| tsm(format!("mkdir: {e}")))?;
    let entry = Entry {
        fs,
        dir: dir.clone(),
    };

    let provider = read_attr(fs, &entry.dir, "provider")?;
    let provider = String::from_utf8_lossy(&provider);
    if provider.trim() != TSM_PROVIDER {
        return Err(tsm(format!(
            "provider is {:?}, expected {TSM_PROVIDER:?}",
            provider.trim()
        )));
    }
    fs.write(&entry.dir.join("inblob"), report_data)
        .map_err(|e| tsm(format!("write inblob: {e}")))?;
    let before = generation(fs, &entry.dir)?;
    if before != 1 {
        return Err(tsm(format!(
            "generation is {before} after our single inblob write: another writer shares the entry"
        )));
    }
    let quote = read_attr(fs, &entry.dir, "outblob")?;
    let after = generation(fs, &entry.dir)?;
    if after != before {
        return Err(tsm(format!(
            "generation changed from {before} to {after} while the quote was generated"
        )));
    }
    if quote.is_empty() || quote.len() > MAX_QUOTE {
        return Err(tsm(format!(
            "outblob is {} bytes (expected 1..={MAX_QUOTE})",
            quote.len()
        )));
    }
    drop(entry);
    Ok(quote)
}

fn read_attr<F: TsmFs>(fs: &F, dir: &Path, attr: &str) -> Result<Vec<u8>, TeeError> {
    fs.read(&dir.join(attr)).map_err(|e| TeeError::Tsm {
        path: dir.to_path_buf(),
        why: format!("read {attr}: {e}"),
    })
}

fn generation<F: TsmFs>(fs: &F, dir: &Path) -> Result<u64, TeeError> {
    let raw = read_attr(fs, dir, "generation")?;
    let text = String::from_utf8_lossy(&raw);
    text.trim().parse().map_err(|e| TeeError::Tsm {
        path: dir.to_path_buf(),
        why: format!("generation {:?} is not a number: {e}", text.trim()),
    })
}
