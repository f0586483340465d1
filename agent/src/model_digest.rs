//! The `model` runtime event's payload: which weights the engine serves.
//!
//! `verity:<hex>`: the dm-verity root hash the image opened the read-only model disk
//! with; every block read is checked against it, so it pins the whole disk.
//! `manifest-sha256:<hex>`: SHA-256 over a `sha256sum`-style manifest of every file
//! under the model directory (sorted by path), for models that are not on a verity
//! disk. `none`: no model.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::config::{AgentConfig, ModelDigestSource};

#[derive(Debug, thiserror::Error)]
pub enum ModelDigestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelDigestError + '_ {
    move |source| ModelDigestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The payload string for the config's digest source.
pub fn model_digest(config: &AgentConfig) -> Result<String, ModelDigestError> {
    match config.model.digest {
        ModelDigestSource::None => Ok("none".to_string()),
        ModelDigestSource::Verity => {
            let path = config
                .model
                .verity_root_hash_file
                .as_deref()
                .ok_or_else(|| ModelDigestError::Invalid {
                    path: PathBuf::from("model.verity_root_hash_file"),
                    why: "not set".into(),
                })?;
            verity(path)
        }
        ModelDigestSource::Manifest => {
            let dir =
                config
                    .engine
                    .model_dir
                    .as_deref()
                    .ok_or_else(|| ModelDigestError::Invalid {
                        path: PathBuf::from("engine.model_dir"),
                        why: "not set".into(),
                    })?;
            Ok(format!(
                "manifest-sha256:{}",
                hex::encode(manifest_digest(dir)?)
            ))
        }
    }
}

/// `verity:<root hash>` from the file the image wrote.
pub fn verity(path: &Path) -> Result<String, ModelDigestError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let hash = text.trim().to_ascii_lowercase();
    // veritysetup root hashes are the digest of the hash algorithm: 32 bytes for the
    // default sha256, 64 for sha512.
    let ok = matches!(hash.len(), 64 | 128) && hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(ModelDigestError::Invalid {
            path: path.to_path_buf(),
            why: format!("{hash:?} is not a hex root hash"),
        });
    }
    Ok(format!("verity:{hash}"))
}

/// The manifest text: one `<sha256 hex>  <relative path>` line per regular file,
/// sorted by path bytes.
pub fn manifest(dir: &Path) -> Result<String, ModelDigestError> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut out = String::new();
    for rel in files {
        let path = dir.join(&rel);
        let digest = hash_file(&path)?;
        out.push_str(&hex::encode(digest));
        out.push_str("  ");
        out.push_str(&rel);
        out.push('\n');
    }
    Ok(out)
}

/// SHA-256 of [`manifest`].
pub fn manifest_digest(dir: &Path) -> Result<[u8; 32], ModelDigestError> {
    Ok(Sha256::digest(manifest(dir)?.as_bytes()).into())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ModelDigestError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(io(&path))?;
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() {
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .ok_or_else(|| ModelDigestError::Invalid {
                    path: path.clone(),
                    why: "path is not UTF-8".into(),
                })?;
            if rel.contains('\n') {
                return Err(ModelDigestError::Invalid {
                    path: path.clone(),
                    why: "newline in file name would forge manifest lines".into(),
                });
            }
            out.push(rel.to_string());
        } else {
            // A symlink could point outside the measured tree (or change after we
            // hash it); refuse rather than follow.
            return Err(ModelDigestError::Invalid {
                path,
                why: "not a regular file or directory".into(),
            });
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<[u8; 32], ModelDigestError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_is_sorted_sha256sum_format() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.json"), b"{}").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a.bin"), b"abc").unwrap();
        std::fs::write(d.path().join("a.txt"), b"").unwrap();
        let m = manifest(d.path()).unwrap();
        assert_eq!(
            m,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a.txt\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a  b.json\n\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  sub/a.bin\n"
        );
        // Changing any byte changes the digest.
        let before = manifest_digest(d.path()).unwrap();
        std::fs::write(d.path().join("sub/a.bin"), b"abd").unwrap();
        assert_ne!(before, manifest_digest(d.path()).unwrap());
    }

    #[test]
    fn symlinks_are_refused() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("link")).unwrap();
        assert!(manifest(d.path()).is_err());
    }

    #[test]
    fn verity_root_hash_is_validated() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("roothash");
        std::fs::write(&p, format!("{}\n", "AB".repeat(32))).unwrap();
        assert_eq!(verity(&p).unwrap(), format!("verity:{}", "ab".repeat(32)));
        std::fs::write(&p, "zz").unwrap();
        assert!(verity(&p).is_err());
    }
}
