//! End to end with real vLLM (issue 6, "Tests (real parts)"): the agent under test
//! (sim TEE) supervising vLLM's CPU build serving the tiny model, checked from outside by
//! `tests/engine/e2e_agent.py` (attestation via `cocoon-measure connect`, chat and
//! completion streaming and not, ledger vs vLLM `/metrics`, vLLM killed mid-stream, the
//! agent killed with SIGKILL).
//!
//! Ignored by default: it needs the 6 GB vLLM venv (`tools/vllm-venv`) and several
//! minutes. CI runs it explicitly, after building `cocoon-measure`:
//! `cargo build -p cocoon-measurements --bin cocoon-measure &&
//!  cargo test -p cocoon-agent --test e2e_vllm -- --ignored` (or `tests/engine/run`).
#![allow(clippy::expect_used)]

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "real vLLM: needs tools/vllm-venv (6 GB) and minutes; run with --ignored"]
fn agent_with_real_vllm() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new("python3")
        .arg(repo.join("tests/engine/e2e_agent.py"))
        .arg("--agent")
        .arg(env!("CARGO_BIN_EXE_cocoon-agent"))
        .status()
        .expect("python3 runs tests/engine/e2e_agent.py");
    assert!(
        status.success(),
        "tests/engine/e2e_agent.py failed: {status}"
    );
}
