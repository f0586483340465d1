//! Where `/sys`, `/proc` and `/dev` are read from: `/` on a real host, a fixture tree
//! in tests (`--root DIR`).

use std::path::{Path, PathBuf};

/// A directory standing in for `/` for every kernel-interface lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    root: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        Self::new("/")
    }
}

impl SysRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// True when this is the real root (processes, binaries and devices are live).
    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `abs` (an absolute host path such as `/sys/module`) inside this root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        let rel = abs.strip_prefix("/").unwrap_or(abs);
        self.root.join(rel)
    }

    /// A file's text with surrounding whitespace trimmed; `None` when unreadable.
    pub fn read_trimmed(&self, abs: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(self.path(abs))
            .ok()
            .map(|s| s.trim().to_string())
    }

    pub fn exists(&self, abs: impl AsRef<Path>) -> bool {
        // symlink_metadata: a dangling link (e.g. `/dev/vfio/7` fixtures) still "exists".
        std::fs::symlink_metadata(self.path(abs)).is_ok()
    }

    /// The last path component a symlink points to (`driver` -> `vfio-pci`).
    pub fn link_name(&self, abs: impl AsRef<Path>) -> Option<String> {
        let target = std::fs::read_link(self.path(abs)).ok()?;
        target.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// Names of a directory's entries, sorted; empty when it cannot be read.
    pub fn list(&self, abs: impl AsRef<Path>) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(abs))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_absolute_paths_under_the_root() {
        let r = SysRoot::new("/tmp/fx");
        assert_eq!(r.path("/sys/module"), PathBuf::from("/tmp/fx/sys/module"));
        assert!(!r.is_host());
        assert!(SysRoot::default().is_host());
        assert_eq!(SysRoot::default().path("/proc"), PathBuf::from("/proc"));
    }
}
