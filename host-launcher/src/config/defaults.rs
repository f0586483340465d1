//! Default values of the worker config (serde `default = "..."` functions).

use std::path::PathBuf;

use super::{DevSettings, Ports, Pricing, QuoteGeneration, RestartPolicy};

/// The agent's TLS port (CONTRACT section 5) and the base of host ports.
pub const AGENT_PORT: u16 = 8443;

pub fn vcpus() -> u32 {
    8
}
pub fn memory_mib() -> u64 {
    16384
}
pub fn qemu() -> PathBuf {
    PathBuf::from("/usr/bin/qemu-system-x86_64")
}
pub fn nanoton_per_token() -> u64 {
    20
}
pub fn worker_share_percent() -> u8 {
    95
}
pub fn proxy_share_percent() -> u8 {
    5
}
pub fn agent_port() -> u16 {
    AGENT_PORT
}
pub fn host_address() -> String {
    "0.0.0.0".to_string()
}
/// Intel's QGS listens on the host (vsock CID 2), port 4050 (QGS default).
pub fn qgs_cid() -> u32 {
    2
}
pub fn qgs_port() -> u32 {
    4050
}
pub fn initial_backoff_ms() -> u64 {
    1000
}
pub fn max_backoff_ms() -> u64 {
    60_000
}
pub fn fast_failure_secs() -> u64 {
    60
}
pub fn max_fast_failures() -> u32 {
    5
}
pub fn stop_timeout_secs() -> u64 {
    60
}
pub fn swtpm() -> PathBuf {
    PathBuf::from("swtpm")
}
pub fn swtpm_setup() -> PathBuf {
    PathBuf::from("swtpm_setup")
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            nanoton_per_token: nanoton_per_token(),
            worker_share_percent: worker_share_percent(),
            proxy_share_percent: proxy_share_percent(),
        }
    }
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            agent_port: agent_port(),
            host_port: None,
            host_address: host_address(),
        }
    }
}

impl Default for QuoteGeneration {
    fn default() -> Self {
        QuoteGeneration::Vsock {
            cid: qgs_cid(),
            port: qgs_port(),
        }
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff_ms: initial_backoff_ms(),
            max_backoff_ms: max_backoff_ms(),
            fast_failure_secs: fast_failure_secs(),
            max_fast_failures: max_fast_failures(),
            on_guest_exit: Default::default(),
            stop_timeout_secs: stop_timeout_secs(),
        }
    }
}

impl Default for DevSettings {
    fn default() -> Self {
        DevSettings {
            swtpm: swtpm(),
            swtpm_setup: swtpm_setup(),
        }
    }
}
