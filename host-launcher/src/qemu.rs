//! The QEMU command line for a worker: a TDX trust domain with GPUs, or the same VM
//! under TCG with a software TPM in dev mode. `qemu/README.md` says why each argument
//! is there; the golden files under `tests/golden/` pin the exact output.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bdf::Bdf;
use crate::config::{Mode, QuoteGeneration, WorkerConfig};
use crate::gpu::bars::mmio64_window_mib;
use crate::sysroot::SysRoot;

/// Everything the command line is built from, resolved from the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchSpec {
    pub mode: Mode,
    pub qemu: PathBuf,
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub hugepages: bool,
    pub firmware: PathBuf,
    /// The UKI; `None` leaves the VM sitting in the firmware (tests of the supervisor).
    pub kernel: Option<PathBuf>,
    pub root_disk: Option<PathBuf>,
    pub model_disk: Option<PathBuf>,
    pub data_disk: Option<PathBuf>,
    pub gpus: Vec<Bdf>,
    pub mmio64_mib: Option<u64>,
    pub guest_cid: Option<u32>,
    pub quote_generation: Option<QuoteGeneration>,
    pub host_address: String,
    pub host_port: u16,
    pub agent_port: u16,
    pub serial_log: PathBuf,
    pub qmp_socket: PathBuf,
    /// swtpm's control socket (dev mode).
    pub tpm_socket: Option<PathBuf>,
    /// Worker settings for the agent, passed as fw_cfg `opt/cocoon/worker.toml`.
    pub worker_toml: Option<PathBuf>,
}

/// Files inside the state directory.
pub fn qmp_socket(state_dir: &Path) -> PathBuf {
    state_dir.join("qmp.sock")
}
pub fn tpm_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("swtpm")
}
pub fn tpm_socket(state_dir: &Path) -> PathBuf {
    tpm_dir(state_dir).join("ctrl.sock")
}
pub fn worker_toml(state_dir: &Path) -> PathBuf {
    state_dir.join("worker.toml")
}

impl LaunchSpec {
    /// Resolve a validated config. `root` is where GPU BARs are read to size the MMIO window.
    pub fn from_config(cfg: &WorkerConfig, mode: Mode, root: &SysRoot) -> Self {
        let state = cfg.state_dir(mode);
        let td = mode == Mode::Td;
        // Dev mode never passes a GPU: there is no TDX to protect it.
        let gpus = if td { cfg.gpus.clone() } else { Vec::new() };
        let mmio64_mib = if gpus.is_empty() {
            None
        } else {
            cfg.mmio64_mib.or_else(|| mmio64_window_mib(root, &gpus))
        };
        LaunchSpec {
            mode,
            qemu: cfg.qemu.clone(),
            name: format!("cocoon-worker-{}", cfg.instance),
            vcpus: cfg.vcpus,
            memory_mib: cfg.memory_mib,
            hugepages: cfg.hugepages,
            firmware: cfg.firmware_path(),
            kernel: Some(cfg.uki_path()),
            root_disk: Some(cfg.root_disk_path()),
            model_disk: cfg.model_disk.clone(),
            data_disk: cfg.data_disk.as_ref().map(|d| d.path.clone()),
            gpus,
            mmio64_mib,
            guest_cid: td.then(|| cfg.guest_cid()),
            quote_generation: td.then(|| cfg.quote_generation.clone()),
            host_address: cfg.ports.host_address.clone(),
            host_port: cfg.host_port(),
            agent_port: cfg.ports.agent_port,
            serial_log: cfg.serial_log(mode),
            qmp_socket: qmp_socket(&state),
            tpm_socket: (!td).then(|| tpm_socket(&state)),
            worker_toml: Some(worker_toml(&state)),
        }
    }

    /// The argument vector (without the program).
    pub fn args(&self) -> Vec<String> {
        let mut a = Args::default();
        a.push2("-name", format!("{0},process={0}", self.name));
        // Nothing QEMU would add by itself (VGA, default NIC with its option ROM,
        // floppy, CD-ROM, parallel port, monitor): every device is listed below.
        a.push1("-nodefaults");
        a.push1("-nographic");
        a.push1("-no-user-config");
        // A TD cannot be reset; a reboot ends QEMU and the supervisor starts a fresh one.
        a.push1("-no-reboot");
        match self.mode {
            Mode::Td => {
                a.push2("-accel", "kvm");
                a.push2("-cpu", "host");
            }
            Mode::Dev => {
                a.push2("-accel", "tcg");
                // TCG's default CPU lacks RDRAND: the guest's RNG then starts empty and
                // veritysetup in the initrd waits ~15 s for entropy. `max` offers it.
                a.push2("-cpu", "max");
            }
        }
        a.push2("-smp", self.vcpus.to_string());
        a.push2("-m", format!("{}M", self.memory_mib));
        if self.hugepages {
            a.push2(
                "-object",
                format!(
                    "memory-backend-file,id=ram0,size={}M,mem-path=/dev/hugepages,prealloc=on",
                    self.memory_mib
                ),
            );
        } else {
            a.push2(
                "-object",
                format!("memory-backend-ram,id=ram0,size={}M", self.memory_mib),
            );
        }
        match self.mode {
            Mode::Td => {
                a.push2("-object", tdx_guest_object(self.quote_generation.as_ref()));
                a.push2(
                    "-machine",
                    "q35,kernel-irqchip=split,confidential-guest-support=tdx0,memory-backend=ram0",
                );
            }
            Mode::Dev => a.push2("-machine", "q35,memory-backend=ram0"),
        }
        a.push2("-bios", path(&self.firmware));
        if let Some(k) = &self.kernel {
            // No -append: the command line is inside the UKI, measured with it.
            a.push2("-kernel", path(k));
        }
        let disks = [
            (&self.root_disk, "root", "cocoon-root", true),
            (&self.model_disk, "model", "cocoon-model", true),
            (&self.data_disk, "data", "cocoon-data", false),
        ];
        for (disk, id, serial, read_only) in disks {
            if let Some(p) = disk {
                let ro = if read_only { ",readonly=on" } else { "" };
                a.push2(
                    "-drive",
                    format!(
                        "file={},if=none,id={id},format=raw{ro}",
                        qemu_escape(&path(p))
                    ),
                );
                a.push2(
                    "-device",
                    format!("virtio-blk-pci,drive={id},serial={serial}"),
                );
            }
        }
        a.push2(
            "-netdev",
            format!(
                "user,id=net0,hostfwd=tcp:{}:{}-:{}",
                self.host_address, self.host_port, self.agent_port
            ),
        );
        // romfile= keeps iPXE's option ROM out of the firmware's boot measurements.
        a.push2("-device", "virtio-net-pci,netdev=net0,romfile=");
        if self.mode == Mode::Dev {
            // A second entropy source for the emulated guest. Not in a TD: there the
            // host would feed it, and the CPU's RDRAND/RDSEED is what the guest trusts.
            a.push2("-device", "virtio-rng-pci");
        }
        if let Some(cid) = self.guest_cid {
            a.push2("-device", format!("vhost-vsock-pci,guest-cid={cid}"));
        }
        if !self.gpus.is_empty() {
            a.push2("-object", "iommufd,id=iommufd0");
            for (i, bdf) in self.gpus.iter().enumerate() {
                let port = format!("rp{i}");
                a.push2(
                    "-device",
                    format!(
                        "pcie-root-port,id={port},bus=pcie.0,chassis={}",
                        i.saturating_add(1)
                    ),
                );
                a.push2(
                    "-device",
                    format!("vfio-pci,host={bdf},bus={port},iommufd=iommufd0,rombar=0"),
                );
            }
        }
        if let Some(mib) = self.mmio64_mib {
            a.push2(
                "-fw_cfg",
                format!("name=opt/ovmf/X-PciMmio64Mb,string={mib}"),
            );
        }
        if let Some(tpm) = &self.tpm_socket {
            a.push2(
                "-chardev",
                format!("socket,id=chrtpm,path={}", qemu_escape(&path(tpm))),
            );
            a.push2("-tpmdev", "emulator,id=tpm0,chardev=chrtpm");
            a.push2("-device", "tpm-crb,tpmdev=tpm0");
        }
        if let Some(w) = &self.worker_toml {
            a.push2(
                "-fw_cfg",
                format!("name=opt/cocoon/worker.toml,file={}", qemu_escape(&path(w))),
            );
        }
        // append=on: a restart adds to the log instead of erasing the last boot's.
        a.push2(
            "-chardev",
            format!(
                "file,id=serial0,path={},append=on",
                qemu_escape(&path(&self.serial_log))
            ),
        );
        a.push2("-serial", "chardev:serial0");
        a.push2(
            "-qmp",
            format!(
                "unix:{},server=on,wait=off",
                qemu_escape(&path(&self.qmp_socket))
            ),
        );
        a.0
    }
}

/// `tdx-guest` with a SocketAddress property needs QEMU's JSON form of `-object`
/// (the dotted key=value form cannot express a nested struct); QAPI wants the vsock
/// `cid` and `port` as strings. Syntax from QEMU's tdx-guest commit and Canonical's
/// TDX guide.
fn tdx_guest_object(qgs: Option<&QuoteGeneration>) -> String {
    // Written by hand, not through a JSON map: key order stays fixed whatever
    // serde_json features the workspace enables (the golden files pin it).
    let json_str = |s: &str| serde_json::Value::from(s).to_string();
    let sock = match qgs {
        Some(QuoteGeneration::Vsock { cid, port }) => {
            format!(
                r#","quote-generation-socket":{{"type":"vsock","cid":"{cid}","port":"{port}"}}"#
            )
        }
        Some(QuoteGeneration::Unix { path: p }) => format!(
            r#","quote-generation-socket":{{"type":"unix","path":{}}}"#,
            json_str(&path(p))
        ),
        None => String::new(),
    };
    format!(r#"{{"qom-type":"tdx-guest","id":"tdx0"{sock}}}"#)
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// QEMU option values separate properties with `,`; a literal comma is written `,,`.
fn qemu_escape(s: &str) -> String {
    s.replace(',', ",,")
}

#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push1(&mut self, a: &str) {
        self.0.push(a.to_string());
    }
    fn push2(&mut self, flag: &str, value: impl Into<String>) {
        self.0.push(flag.to_string());
        self.0.push(value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tdx_object_matches_qemu_json_syntax() {
        let v = tdx_guest_object(Some(&QuoteGeneration::Vsock { cid: 2, port: 4050 }));
        assert_eq!(
            v,
            r#"{"qom-type":"tdx-guest","id":"tdx0","quote-generation-socket":{"type":"vsock","cid":"2","port":"4050"}}"#
        );
        let u = tdx_guest_object(Some(&QuoteGeneration::Unix {
            path: "/run/q,s".into(),
        }));
        assert!(
            u.ends_with(r#""quote-generation-socket":{"type":"unix","path":"/run/q,s"}}"#),
            "{u}"
        );
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        assert_eq!(qemu_escape("/a,b/c"), "/a,,b/c");
    }
}
