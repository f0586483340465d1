//! The worker config (`worker.toml`): what one instance boots, with which GPUs,
//! resources, payout address, prices, ports and restart policy.
//!
//! Every field is documented here and in `host-launcher/README.md` (a test checks that
//! the two lists agree). Unknown fields are an error (fail closed: a misspelt
//! `gpus` must not silently boot a worker without its GPU). [`WorkerConfig::load`]
//! returns every problem at once, each naming the field and the fix; nothing is
//! started with a bad config.

mod address;
mod defaults;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bdf::Bdf;

pub use address::{validate_owner_address, AddressError};

/// Highest instance index: keeps CIDs, ports and unit names small and distinct.
pub const MAX_INSTANCE: u32 = 99;

/// Worker config, one file per instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Directory with the image artefacts `image/build` writes: `uki.efi`, `root.raw`, `OVMF.fd`, `measurements.json`.
    pub image_dir: PathBuf,
    /// Firmware to boot instead of `<image_dir>/OVMF.fd`; its sha256 must still equal `measurements.json`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<PathBuf>,
    /// GPUs passed through to this instance, as PCI addresses (`0000:17:00.0`); each must be bound to vfio-pci.
    #[serde(default)]
    pub gpus: Vec<Bdf>,
    /// Virtual CPUs of the guest.
    #[serde(default = "defaults::vcpus")]
    pub vcpus: u32,
    /// Guest memory in MiB.
    #[serde(default = "defaults::memory_mib")]
    pub memory_mib: u64,
    /// Back guest memory with preallocated hugepages from `/dev/hugepages` (reserve them first).
    #[serde(default)]
    pub hugepages: bool,
    /// Model disk image, attached read-only with serial `cocoon-model`; absent: no model disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_disk: Option<PathBuf>,
    /// Data disk (the agent's ledger), attached read-write with serial `cocoon-data`; absent: the guest uses tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_disk: Option<DataDisk>,
    /// The owner's TON payout address: raw `0:<64 hex>` or user-friendly 48-character base64 (CRC checked). Required outside dev mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_address: Option<String>,
    /// Token prices and the split between worker and proxy.
    #[serde(default)]
    pub pricing: Pricing,
    /// Ports: the agent's port in the guest and the host port forwarded to it.
    #[serde(default)]
    pub ports: Ports,
    /// Instance index on this host (0-99): vsock CID 3+index, host port 8443+index, unit `cocoon-host@index`.
    #[serde(default)]
    pub instance: u32,
    /// QEMU binary (10.1 or newer for TDX).
    #[serde(default = "defaults::qemu")]
    pub qemu: PathBuf,
    /// Where QEMU sends the guest's quote requests (Intel's QGS on the host).
    #[serde(default)]
    pub quote_generation: QuoteGeneration,
    /// How the supervisor restarts QEMU and stops it.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Directory for runtime state (QMP socket, swtpm state, pid file); default `/var/lib/cocoon-host/instance-N` (dev: `/tmp/cocoon-host/dev-N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Serial console log of the guest; default `<state_dir>/serial.log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_log: Option<PathBuf>,
    /// Size of the guest's 64-bit PCI MMIO window in MiB; default: sized from the GPUs' BARs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmio64_mib: Option<u64>,
    /// NVIDIA gpu-admin-tools' `nvidia_gpu_tools.py`, used by preflight to read CC mode; absent: searched on PATH, else "unknown".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_admin_tools: Option<PathBuf>,
    /// Dev-mode settings (software TPM).
    #[serde(default)]
    pub dev: DevSettings,
}

/// The read-write data disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDisk {
    /// Raw disk image path.
    pub path: PathBuf,
    /// Size in GiB of the sparse file created when `path` does not exist; absent: it must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<u64>,
}

/// Prices (nanoTON) and revenue split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// Price of one token in nanoTON.
    #[serde(default = "defaults::nanoton_per_token")]
    pub nanoton_per_token: u64,
    /// Worker's share of each payment, in percent.
    #[serde(default = "defaults::worker_share_percent")]
    pub worker_share_percent: u8,
    /// Proxy's share of each payment, in percent (worker + proxy = 100).
    #[serde(default = "defaults::proxy_share_percent")]
    pub proxy_share_percent: u8,
}

/// Ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    /// The agent's TLS port inside the guest (CONTRACT: 8443).
    #[serde(default = "defaults::agent_port")]
    pub agent_port: u16,
    /// Host port forwarded to `agent_port`; default 8443 + instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// Host address the forwarded port listens on.
    #[serde(default = "defaults::host_address")]
    pub host_address: String,
}

/// Quote Generation Service socket, given to QEMU's `tdx-guest` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum QuoteGeneration {
    /// vsock address of the QGS (`type = "vsock"`); Intel's QGS listens on CID 2 (the host), port 4050.
    Vsock {
        /// vsock CID of the QGS (2 = the host).
        #[serde(default = "defaults::qgs_cid")]
        cid: u32,
        /// vsock port of the QGS.
        #[serde(default = "defaults::qgs_port")]
        port: u32,
    },
    /// Unix socket of the QGS (`type = "unix"`), e.g. `/var/run/tdx-qgs/qgs.socket`.
    Unix {
        /// Socket path.
        path: PathBuf,
    },
}

/// Restart and stop policy of the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// First delay before restarting QEMU, in milliseconds; doubles after each fast failure.
    #[serde(default = "defaults::initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Upper bound of the restart delay, in milliseconds.
    #[serde(default = "defaults::max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// A run shorter than this many seconds is a fast failure.
    #[serde(default = "defaults::fast_failure_secs")]
    pub fast_failure_secs: u64,
    /// Give up (exit 1) after this many consecutive fast failures.
    #[serde(default = "defaults::max_fast_failures")]
    pub max_fast_failures: u32,
    /// When the guest powers off by itself (QEMU exits 0): `"restart"` or `"stop"`.
    #[serde(default)]
    pub on_guest_exit: OnGuestExit,
    /// Seconds the guest gets to power off after `system_powerdown` before QEMU is told to `quit`.
    #[serde(default = "defaults::stop_timeout_secs")]
    pub stop_timeout_secs: u64,
}

/// What a clean guest power-off means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnGuestExit {
    /// Boot the guest again (a worker is meant to stay up).
    #[default]
    Restart,
    /// Exit the supervisor with status 0.
    Stop,
}

/// Dev mode (`--dev`): software TPM binaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSettings {
    /// `swtpm` binary (the boot measurement witness in dev mode).
    #[serde(default = "defaults::swtpm")]
    pub swtpm: PathBuf,
    /// `swtpm_setup` binary (creates the TPM state with SHA-256 and SHA-384 banks).
    #[serde(default = "defaults::swtpm_setup")]
    pub swtpm_setup: PathBuf,
}

/// Which kind of guest is launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A TDX trust domain with GPUs (`-accel kvm`).
    Td,
    /// No TDX, no GPU: TCG with swtpm (`--dev`).
    Dev,
}

/// One thing wrong with a config: the field, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message} (fix: the fields are listed in host-launcher/README.md)")]
    Syntax { path: PathBuf, message: String },
    #[error("config {}: {}", .path.display(), render_problems(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<FieldProblem>,
    },
}

fn render_problems(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("`{}`: {} (fix: {})", p.field, p.problem, p.fix))
        .collect::<Vec<_>>()
        .join("; ")
}

impl WorkerConfig {
    /// Read, parse and validate a config file. Relative paths in it are resolved
    /// against the file's directory, so a config and its image can move together.
    pub fn load(path: &Path, mode: Mode) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Anchor relative paths at the file's absolute directory, so the result does
        // not depend on the working directory of whoever uses the config later.
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = abs.parent().unwrap_or(Path::new("/"));
        Self::from_toml(&text, path, base, mode)
    }

    /// Parse and validate config text; `origin` names it in errors, `base` anchors relative paths.
    pub fn from_toml(
        text: &str,
        origin: &Path,
        base: &Path,
        mode: Mode,
    ) -> Result<Self, ConfigError> {
        let mut cfg: WorkerConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_path_buf(),
            message: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at byte {})", s.start))
                    .unwrap_or_default(),
        })?;
        cfg.resolve_paths(base);
        let problems = cfg.problems(mode);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                path: origin.to_path_buf(),
                problems,
            })
        }
    }

    /// The config `run --dev` uses when no file is given: small, no GPU, no payout address.
    pub fn dev_default(image_dir: PathBuf) -> Self {
        WorkerConfig {
            image_dir,
            firmware: None,
            gpus: Vec::new(),
            vcpus: 2,
            memory_mib: 2048,
            hugepages: false,
            model_disk: None,
            data_disk: None,
            owner_address: None,
            pricing: Pricing::default(),
            ports: Ports {
                host_address: "127.0.0.1".to_string(),
                ..Ports::default()
            },
            instance: 0,
            qemu: defaults::qemu(),
            quote_generation: QuoteGeneration::default(),
            restart: RestartPolicy::default(),
            state_dir: None,
            serial_log: None,
            mmio64_mib: None,
            gpu_admin_tools: None,
            dev: DevSettings::default(),
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        // Programs named bare (`qemu = "qemu-system-x86_64"`) stay bare for a PATH
        // lookup; a relative path with a `/` is anchored like any other file.
        let anchor_program = |p: &mut PathBuf| {
            if p.is_relative() && p.components().count() > 1 {
                *p = base.join(&*p);
            }
        };
        anchor(&mut self.image_dir);
        for p in [
            &mut self.firmware,
            &mut self.model_disk,
            &mut self.state_dir,
            &mut self.serial_log,
        ]
        .into_iter()
        .flatten()
        {
            anchor(p);
        }
        if let Some(d) = &mut self.data_disk {
            anchor(&mut d.path);
        }
        if let QuoteGeneration::Unix { path } = &mut self.quote_generation {
            anchor(path);
        }
        for p in [
            &mut self.qemu,
            &mut self.dev.swtpm,
            &mut self.dev.swtpm_setup,
        ] {
            anchor_program(p);
        }
        if let Some(p) = &mut self.gpu_admin_tools {
            anchor_program(p);
        }
    }

    /// Every problem of the config, empty when it is usable in `mode`.
    pub fn problems(&self, mode: Mode) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        let mut bad = |field: &str, problem: String, fix: &str| {
            out.push(FieldProblem {
                field: field.to_string(),
                problem,
                fix: fix.to_string(),
            })
        };
        for (i, a) in self.gpus.iter().enumerate() {
            if self.gpus.iter().take(i).any(|b| b == a) {
                bad("gpus", format!("{a} is listed twice"), "list each GPU once");
            }
        }
        if !(1..=512).contains(&self.vcpus) {
            bad(
                "vcpus",
                format!("{} is out of range", self.vcpus),
                "use 1 to 512",
            );
        }
        if self.memory_mib < 512 {
            bad(
                "memory_mib",
                format!("{} MiB is too little to boot the image", self.memory_mib),
                "use at least 512 (2048 for dev, 65536+ with a GPU)",
            );
        }
        if let Some(d) = &self.data_disk {
            if d.size_gib == Some(0) {
                bad(
                    "data_disk.size_gib",
                    "0 GiB".into(),
                    "give a size of at least 1 GiB, or remove it to require an existing disk",
                );
            }
        }
        match (&self.owner_address, mode) {
            (None, Mode::Td) => bad(
                "owner_address",
                "missing: a worker needs a payout address".into(),
                "set owner_address to your TON wallet (e.g. `EQ...` or `0:<64 hex>`)",
            ),
            (Some(a), _) => {
                if let Err(e) = validate_owner_address(a) {
                    bad("owner_address", e.to_string(), "copy the address from your wallet: raw `0:<64 hex>` or the 48-character user-friendly form");
                }
            }
            (None, Mode::Dev) => {}
        }
        let p = &self.pricing;
        if p.nanoton_per_token == 0 {
            bad(
                "pricing.nanoton_per_token",
                "0 makes every request free".into(),
                "set a price, e.g. 20",
            );
        }
        if u16::from(p.worker_share_percent) + u16::from(p.proxy_share_percent) != 100 {
            bad(
                "pricing.worker_share_percent",
                format!(
                    "worker {}% + proxy {}% is not 100%",
                    p.worker_share_percent, p.proxy_share_percent
                ),
                "make worker_share_percent + proxy_share_percent = 100 (default 95 + 5)",
            );
        }
        if self.ports.agent_port == 0 {
            bad(
                "ports.agent_port",
                "port 0".into(),
                "use the agent's port, 8443",
            );
        }
        if self.ports.host_port == Some(0) {
            bad(
                "ports.host_port",
                "port 0".into(),
                "use a free TCP port, or remove it for 8443 + instance",
            );
        }
        if self.ports.host_address.parse::<IpAddr>().is_err() {
            bad(
                "ports.host_address",
                format!("`{}` is not an IP address", self.ports.host_address),
                "use 0.0.0.0 (all interfaces) or 127.0.0.1",
            );
        }
        if self.instance > MAX_INSTANCE {
            bad(
                "instance",
                format!("{} is above {MAX_INSTANCE}", self.instance),
                "use 0 for the first instance, 1 for the second, ...",
            );
        }
        if self.ports.host_port.is_none()
            && u32::from(defaults::AGENT_PORT) + self.instance > u32::from(u16::MAX)
        {
            bad(
                "ports.host_port",
                "8443 + instance overflows".into(),
                "set host_port explicitly",
            );
        }
        if let QuoteGeneration::Vsock { cid, port } = &self.quote_generation {
            if *cid == 0 || *cid == 1 {
                bad(
                    "quote_generation.cid",
                    format!("CID {cid} is reserved"),
                    "use 2, the host, where Intel's QGS listens",
                );
            }
            if *port == 0 {
                bad(
                    "quote_generation.port",
                    "port 0".into(),
                    "use 4050, Intel QGS's default",
                );
            }
        }
        let r = &self.restart;
        if r.initial_backoff_ms == 0 || r.initial_backoff_ms > r.max_backoff_ms {
            bad(
                "restart.initial_backoff_ms",
                format!(
                    "{} is 0 or above max_backoff_ms ({})",
                    r.initial_backoff_ms, r.max_backoff_ms
                ),
                "use 1000 with max_backoff_ms 60000",
            );
        }
        if r.max_fast_failures == 0 {
            bad(
                "restart.max_fast_failures",
                "0 would give up before the first start".into(),
                "use 5",
            );
        }
        if r.stop_timeout_secs == 0 {
            bad(
                "restart.stop_timeout_secs",
                "0 gives the guest no time to shut down".into(),
                "use 60",
            );
        }
        if self.mmio64_mib == Some(0) {
            bad(
                "mmio64_mib",
                "0 MiB".into(),
                "remove it to size the window from the GPUs' BARs",
            );
        }
        out
    }

    /// The host port forwarded to the agent.
    pub fn host_port(&self) -> u16 {
        self.ports.host_port.unwrap_or_else(|| {
            u16::try_from(u32::from(defaults::AGENT_PORT).saturating_add(self.instance))
                .unwrap_or(u16::MAX)
        })
    }

    /// The guest's vsock CID: 0-2 are reserved (hypervisor, loopback, host).
    pub fn guest_cid(&self) -> u32 {
        3u32.saturating_add(self.instance)
    }

    pub fn firmware_path(&self) -> PathBuf {
        self.firmware
            .clone()
            .unwrap_or_else(|| self.image_dir.join("OVMF.fd"))
    }

    pub fn uki_path(&self) -> PathBuf {
        self.image_dir.join("uki.efi")
    }

    pub fn root_disk_path(&self) -> PathBuf {
        self.image_dir.join("root.raw")
    }

    pub fn measurements_path(&self) -> PathBuf {
        self.image_dir.join("measurements.json")
    }

    pub fn state_dir(&self, mode: Mode) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| match mode {
            Mode::Td => PathBuf::from(format!("/var/lib/cocoon-host/instance-{}", self.instance)),
            Mode::Dev => PathBuf::from(format!("/tmp/cocoon-host/dev-{}", self.instance)),
        })
    }

    pub fn serial_log(&self, mode: Mode) -> PathBuf {
        self.serial_log
            .clone()
            .unwrap_or_else(|| self.state_dir(mode).join("serial.log"))
    }
}

#[cfg(test)]
mod tests;
