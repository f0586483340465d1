//! Shared test scaffolding: a sim TEE on disk, agent configs, an RA-TLS HTTPS
//! client, and a fake engine upstream served by hyper.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod client;
pub mod upstream;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cocoon_measurements::policy::Policy;
use cocoon_measurements::ratls::RaTlsVerifierConfig;
use cocoon_measurements::sim::SimPki;
use cocoon_measurements::verify::TrustRoot;

/// The dev image's sim PKI window (CONTRACT section 4): 2026-01-01..2036-01-01.
pub const NOT_BEFORE: u64 = 1_767_225_600;
pub const NOT_AFTER: u64 = 2_082_758_400;
/// A user-friendly TON address with a valid CRC.
pub const OWNER: &str = "EQCD39VS5jcptHL8vMjEXrzGaRcCVYto7HUn4bpAOg8xqB2N";
pub const MRTD_HEX: &str = "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111";

pub struct SimFiles {
    _dir: tempfile::TempDir,
    pub pki_dir: PathBuf,
    pub registers: PathBuf,
    pub root_der: Vec<u8>,
}

/// One sim PKI per test binary (generation costs a few hundred ms).
pub fn sim() -> &'static SimFiles {
    static SIM: OnceLock<SimFiles> = OnceLock::new();
    SIM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let seed: [u8; 32] = sha2_digest(b"cocoon-agent-test-seed");
        let pki = SimPki::from_seed(seed, NOT_BEFORE, NOT_AFTER).unwrap();
        let pki_dir = dir.path().join("pki");
        pki.save(&pki_dir).unwrap();
        let registers = dir.path().join("sim-registers.json");
        std::fs::write(&registers, format!("{{\"mrtd\": \"{}\"}}", &MRTD_HEX[..96])).unwrap();
        SimFiles {
            root_der: pki.root_ca_der().to_vec(),
            pki_dir,
            registers,
            _dir: dir,
        }
    })
}

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// Config text for a sim agent on an ephemeral port.
pub fn sim_config(data_dir: &Path, engine: &str, extra: &str) -> String {
    let s = sim();
    format!(
        r#"listen = "127.0.0.1:0"
data_dir = {data:?}
owner_address = "{OWNER}"
{extra}
[tee]
kind = "sim"
[tee.sim]
pki_dir = {pki:?}
registers_file = {regs:?}
tpm_event_log = {tpm:?}
[engine]
{engine}
"#,
        data = data_dir.display().to_string(),
        pki = s.pki_dir.display().to_string(),
        regs = s.registers.display().to_string(),
        tpm = data_dir.join("no-tpm-log").display().to_string(),
    )
}

/// The fake-vLLM fixture directory (PYTHONPATH for `python3 -m vllm...`).
pub fn fakevllm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fakevllm")
}

/// Write `text` as agent.toml under `dir` and load it.
pub fn load(dir: &Path, text: &str) -> cocoon_agent::config::LoadedConfig {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    cocoon_agent::config::load(&path).unwrap()
}

/// A verifier that trusts the test's sim root (or not), judging at `at`: the
/// agent's issue time, so its certificate (valid from an hour before issue) and the
/// sim collateral (2026-2036) are both in their windows.
pub fn verifier(trust_sim: bool, at: u64) -> RaTlsVerifierConfig {
    let mut cfg = RaTlsVerifierConfig::new(Policy::default_unpinned());
    if trust_sim {
        cfg.trust_root = TrustRoot::Custom(sim().root_der.clone());
    }
    cfg.at = Some(at);
    cfg
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
