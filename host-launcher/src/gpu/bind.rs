//! Moving a GPU to vfio-pci and back through sysfs (`driver_override`, `unbind`,
//! `drivers_probe`; Documentation/ABI/testing/sysfs-bus-pci), refusing while a process
//! holds the device open. The previous driver is remembered under
//! `/run/cocoon-host/gpu/` so `unbind` restores it (runtime state: after a reboot the
//! kernel binds the default driver again anyway).

use std::path::PathBuf;

use serde::Serialize;

use crate::bdf::Bdf;
use crate::sysroot::SysRoot;

/// Where the previous driver of each GPU is remembered.
pub const STATE_DIR: &str = "/run/cocoon-host/gpu";

/// A process holding one of the device's files open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    pub comm: String,
    pub path: String,
}

/// Why a bind or unbind did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("no PCI device {0} (fix: check `lspci -D -d 10de:`)")]
    NoDevice(Bdf),
    #[error("{bdf} is in use by {} (fix: stop them first)", render_holders(.holders))]
    Busy { bdf: Bdf, holders: Vec<Holder> },
    #[error("the vfio-pci driver is not loaded (fix: `modprobe vfio-pci`)")]
    NoVfioDriver,
    #[error("{bdf} is bound to {found}, not {expected}: nothing to undo (fix: `cocoon-host gpu bind` binds it)")]
    NotBound {
        bdf: Bdf,
        expected: String,
        found: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("after binding, {bdf} is bound to {found} (fix: check `dmesg` for vfio-pci errors)")]
    Unexpected { bdf: Bdf, found: String },
}

fn render_holders(h: &[Holder]) -> String {
    h.iter()
        .map(|h| format!("pid {} ({}) via {}", h.pid, h.comm, h.path))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a bind or unbind did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindReport {
    pub bdf: Bdf,
    /// Driver before (`None`: unbound).
    pub from: Option<String>,
    /// Driver after (`None`: left for the kernel to choose).
    pub to: Option<String>,
    /// False when the device was already where it should be.
    pub changed: bool,
}

fn write(root: &SysRoot, abs: &str, value: &str) -> Result<(), BindError> {
    let path = root.path(abs);
    std::fs::write(&path, value).map_err(|source| BindError::Write { path, source })
}

fn dev_dir(bdf: &Bdf) -> String {
    format!("/sys/bus/pci/devices/{bdf}")
}

/// Current driver of a device.
pub fn current_driver(root: &SysRoot, bdf: &Bdf) -> Option<String> {
    root.link_name(format!("{}/driver", dev_dir(bdf)))
}

/// Device files that stand for this GPU: its VFIO group, its VFIO cdev (iommufd), its
/// `/dev/nvidiaN` (minor from the NVIDIA driver's procfs; every `/dev/nvidiaN` when
/// unknown, erring on the side of refusing).
fn device_files(root: &SysRoot, bdf: &Bdf) -> Vec<String> {
    let dev = dev_dir(bdf);
    let mut files = Vec::new();
    if let Some(group) = root.link_name(format!("{dev}/iommu_group")) {
        files.push(format!("/dev/vfio/{group}"));
    }
    for cdev in root.list(format!("{dev}/vfio-dev")) {
        files.push(format!("/dev/vfio/devices/{cdev}"));
    }
    let info = root.read_trimmed(format!("/proc/driver/nvidia/gpus/{bdf}/information"));
    let minor = info.as_deref().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("Device Minor:"))
            .and_then(|m| m.trim().parse::<u32>().ok())
    });
    match minor {
        Some(m) => files.push(format!("/dev/nvidia{m}")),
        None => files.push("/dev/nvidia#".to_string()),
    }
    files
}

fn matches(target: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('#') {
        Some(prefix) => target
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())),
        None => target == pattern,
    }
}

/// Processes with one of this GPU's device files open (scans `/proc/*/fd`).
pub fn holders(root: &SysRoot, bdf: &Bdf) -> Vec<Holder> {
    let files = device_files(root, bdf);
    let mut out = Vec::new();
    for pid in root.list("/proc") {
        let Ok(pid_num) = pid.parse::<u32>() else {
            continue;
        };
        for fd in root.list(format!("/proc/{pid}/fd")) {
            let Ok(target) = std::fs::read_link(root.path(format!("/proc/{pid}/fd/{fd}"))) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            if files.iter().any(|f| matches(&target, f)) {
                let comm = root
                    .read_trimmed(format!("/proc/{pid}/comm"))
                    .unwrap_or_default();
                if !out
                    .iter()
                    .any(|h: &Holder| h.pid == pid_num && h.path == target)
                {
                    out.push(Holder {
                        pid: pid_num,
                        comm,
                        path: target,
                    });
                }
            }
        }
    }
    out
}

fn state_file(bdf: &Bdf) -> String {
    format!("{STATE_DIR}/{bdf}.driver")
}

/// Bind `bdf` to vfio-pci, remembering its driver.
pub fn bind(root: &SysRoot, bdf: &Bdf) -> Result<BindReport, BindError> {
    let dev = dev_dir(bdf);
    if !root.exists(&dev) {
        return Err(BindError::NoDevice(*bdf));
    }
    let from = current_driver(root, bdf);
    if from.as_deref() == Some("vfio-pci") {
        return Ok(BindReport {
            bdf: *bdf,
            from: from.clone(),
            to: from,
            changed: false,
        });
    }
    if !root.exists("/sys/bus/pci/drivers/vfio-pci") {
        return Err(BindError::NoVfioDriver);
    }
    let held = holders(root, bdf);
    if !held.is_empty() {
        return Err(BindError::Busy {
            bdf: *bdf,
            holders: held,
        });
    }
    // Remember first: if anything below fails half-way, unbind still knows the way back.
    let state = root.path(STATE_DIR);
    std::fs::create_dir_all(&state).map_err(|source| BindError::Write {
        path: state,
        source,
    })?;
    write(
        root,
        &state_file(bdf),
        &format!("{}\n", from.as_deref().unwrap_or("")),
    )?;
    // driver_override makes the next probe pick vfio-pci and no other driver.
    write(root, &format!("{dev}/driver_override"), "vfio-pci")?;
    if from.is_some() {
        write(root, &format!("{dev}/driver/unbind"), &bdf.to_string())?;
    }
    write(root, "/sys/bus/pci/drivers_probe", &bdf.to_string())?;
    verify(root, bdf, "vfio-pci")?;
    Ok(BindReport {
        bdf: *bdf,
        from,
        to: Some("vfio-pci".into()),
        changed: true,
    })
}

/// Undo [`bind`]: leave vfio-pci and go back to the remembered driver (or let the
/// kernel choose when none was remembered).
pub fn unbind(root: &SysRoot, bdf: &Bdf) -> Result<BindReport, BindError> {
    let dev = dev_dir(bdf);
    if !root.exists(&dev) {
        return Err(BindError::NoDevice(*bdf));
    }
    let from = current_driver(root, bdf);
    if from.as_deref() != Some("vfio-pci") {
        return Err(BindError::NotBound {
            bdf: *bdf,
            expected: "vfio-pci".into(),
            found: from.unwrap_or_else(|| "no driver".into()),
        });
    }
    let held = holders(root, bdf);
    if !held.is_empty() {
        return Err(BindError::Busy {
            bdf: *bdf,
            holders: held,
        });
    }
    let previous = root
        .read_trimmed(state_file(bdf))
        .filter(|d| !d.is_empty() && d != "vfio-pci");
    // An empty driver_override (a lone newline) clears it (sysfs-bus-pci).
    write(root, &format!("{dev}/driver_override"), "\n")?;
    write(root, &format!("{dev}/driver/unbind"), &bdf.to_string())?;
    match &previous {
        Some(d) => write(
            root,
            &format!("/sys/bus/pci/drivers/{d}/bind"),
            &bdf.to_string(),
        )?,
        None => write(root, "/sys/bus/pci/drivers_probe", &bdf.to_string())?,
    }
    if let Some(d) = &previous {
        verify(root, bdf, d)?;
    }
    let _ = std::fs::remove_file(root.path(state_file(bdf)));
    Ok(BindReport {
        bdf: *bdf,
        from,
        to: previous,
        changed: true,
    })
}

/// On a real host the driver link must now point at `expected`; fixture trees have no
/// kernel behind them, so the writes are what the tests check.
fn verify(root: &SysRoot, bdf: &Bdf, expected: &str) -> Result<(), BindError> {
    if !root.is_host() {
        return Ok(());
    }
    match current_driver(root, bdf) {
        Some(d) if d == expected => Ok(()),
        other => Err(BindError::Unexpected {
            bdf: *bdf,
            found: other.unwrap_or_else(|| "no driver".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_pattern_matches_only_numbered_nodes() {
        assert!(matches("/dev/nvidia0", "/dev/nvidia#"));
        assert!(matches("/dev/nvidia12", "/dev/nvidia#"));
        assert!(!matches("/dev/nvidiactl", "/dev/nvidia#"));
        assert!(!matches("/dev/nvidia-uvm", "/dev/nvidia#"));
        assert!(matches("/dev/vfio/7", "/dev/vfio/7"));
        assert!(!matches("/dev/vfio/70", "/dev/vfio/7"));
    }
}
