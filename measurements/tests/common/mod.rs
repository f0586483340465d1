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
