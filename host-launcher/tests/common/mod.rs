//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `cocoon-host` binary built for this test run.
pub fn cocoon_host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cocoon-host"))
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Copy a tree, keeping symlinks as symlinks and permission bits (fixture scripts).
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from).unwrap();
        if meta.file_type().is_symlink() {
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
        } else if meta.is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
}

/// Run a command, returning (exit code, stdout parsed as JSON, stderr).
pub fn run_json(cmd: &mut Command) -> (i32, serde_json::Value, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("COCOON_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/cocoon")
        })
}

/// Run one of the repository's `tools/` scripts and return the path it prints.
fn tool_path(script: &str, args: &[&std::ffi::OsStr]) -> PathBuf {
    let out = Command::new(repo_root().join("tools").join(script))
        .args(args)
        .env("COCOON_CACHE", cache_dir())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running tools/{script}: {e}"));
    assert!(
        out.status.success(),
        "tools/{script} failed: {:?}",
        out.status
    );
    let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(p.exists(), "tools/{script} printed {}", p.display());
    p
}

/// Debian trixie's OVMF.fd, fetched and sha256-checked by `tools/fetch-ovmf`.
pub fn trixie_ovmf() -> PathBuf {
    tool_path("fetch-ovmf", &[])
}

/// The pinned test UKI (busybox initrd that prints the TPM log and powers off),
/// built bit for bit by `tools/build-test-uki` into the cache.
pub fn test_uki() -> PathBuf {
    let dir = cache_dir().join("test-uki");
    tool_path("build-test-uki", &[dir.as_os_str()])
}
