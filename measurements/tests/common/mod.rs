//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A file under the shared test vectors (`<repo>/../shared/testdata`), or under
/// `$COCOON_TESTDATA` when set. Panics with a clear message when missing: a test
/// that silently skips would be a test that cannot fail.
pub fn testdata(rel: &str) -> PathBuf {
    let root = std::env::var_os("COCOON_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    let p = root.join(rel);
    assert!(
        p.exists(),
        "test vector {} not found (set COCOON_TESTDATA to the shared testdata directory)",
        p.display()
    );
    p
}

/// The `cocoon-measure` binary built for this test run.
pub fn cocoon_measure() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cocoon-measure"))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
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
    let out = std::process::Command::new(repo_root().join("tools").join(script))
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

/// Debian trixie's OVMF.fd (ovmf 2025.02-8+deb13u1), fetched and sha256-checked by
/// `tools/fetch-ovmf` into the cache.
pub fn trixie_ovmf() -> PathBuf {
    tool_path("fetch-ovmf", &[])
}

/// The pinned test UKI (trixie kernel 6.12, systemd-stub 257.13), rebuilt bit for bit
/// by `tools/build-test-uki` into the cache (reused when its sha256 matches).
pub fn test_uki() -> PathBuf {
    let dir = cache_dir().join("test-uki");
    tool_path("build-test-uki", &[dir.as_os_str()])
}

/// The committed swtpm boot of [`test_uki`] (event log, guest PCR values).
pub fn swtpm_fixture(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/swtpm-uki-boot")
        .join(rel);
    assert!(p.exists(), "fixture {} missing", p.display());
    p
}
