//! Per-GPU checks: present, CC-capable model, isolated IOMMU group, vfio-pci, CC mode.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Check;
use crate::bdf::Bdf;
use crate::gpu::ids::{classify, GpuModel};
use crate::sysroot::SysRoot;

pub fn checks(root: &SysRoot, bdf: &Bdf, admin_tools: Option<&Path>) -> Vec<Check> {
    let dev = format!("/sys/bus/pci/devices/{bdf}");
    if !root.exists(&dev) {
        return vec![Check::fail(
            "gpu.exists",
            format!("no PCI device {bdf} ({dev} missing)"),
            "check the address with `lspci -D -d 10de:` and fix `gpus` in the worker config",
        )];
    }
    vec![
        Check::pass("gpu.exists", format!("{dev} present")),
        model(root, &dev),
        iommu_group(root, bdf, &dev),
        driver(root, bdf, &dev),
        cc_mode(bdf, admin_tools),
    ]
}

fn hex_id(root: &SysRoot, path: &str) -> Option<u16> {
    let v = root.read_trimmed(path)?;
    u16::from_str_radix(v.trim_start_matches("0x"), 16).ok()
}

fn model(root: &SysRoot, dev: &str) -> Check {
    const ID: &str = "gpu.model";
    let (Some(vendor), Some(device)) = (
        hex_id(root, &format!("{dev}/vendor")),
        hex_id(root, &format!("{dev}/device")),
    ) else {
        return Check::fail(ID, "cannot read vendor/device IDs", "check the PCI address");
    };
    let ids = format!("{vendor:04x}:{device:04x}");
    match classify(vendor, device) {
        GpuModel::Named { chip, name } => Check::pass(ID, format!("{ids} NVIDIA {name} ({chip})")),
        GpuModel::Chip { chip } => Check::pass(ID, format!("{ids} NVIDIA {chip}")),
        GpuModel::Unsupported => Check::fail(
            ID,
            format!(
                "{ids} is an NVIDIA GPU without confidential computing (Hopper or newer needed)"
            ),
            "use an H100/H200/H20/H800/B100/B200/GB200-class GPU",
        ),
        GpuModel::NotNvidia => Check::fail(
            ID,
            format!("{ids} is not an NVIDIA device (vendor 10de)"),
            "fix `gpus` in the worker config (`lspci -D -d 10de:` lists NVIDIA devices)",
        ),
    }
}

/// The whole IOMMU group is handed to the guest: any other device in it (a NIC, a
/// disk controller) would be reachable by the guest or block the assignment.
fn iommu_group(root: &SysRoot, bdf: &Bdf, dev: &str) -> Check {
    const ID: &str = "gpu.iommu_group";
    let Some(group) = root.link_name(format!("{dev}/iommu_group")) else {
        return Check::fail(
            ID,
            "no iommu_group: the IOMMU is off for this device",
            "enable VT-d and boot with `intel_iommu=on iommu=pt`",
        );
    };
    let members = root.list(format!("/sys/kernel/iommu_groups/{group}/devices"));
    let strangers: Vec<&String> = members
        .iter()
        .filter(|m| {
            m.parse::<Bdf>()
                .map(|b| !b.same_device(bdf))
                .unwrap_or(true)
        })
        .collect();
    if strangers.is_empty() {
        Check::pass(
            ID,
            format!("IOMMU group {group} holds only this GPU's functions"),
        )
    } else {
        Check::fail(
            ID,
            format!(
                "IOMMU group {group} also holds {}",
                strangers.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "move the GPU to a slot with its own group, or enable ACS on the bridges above it (BIOS); never use the ACS override patch for a TD",
        )
    }
}

fn driver(root: &SysRoot, bdf: &Bdf, dev: &str) -> Check {
    const ID: &str = "gpu.driver";
    match root.link_name(format!("{dev}/driver")) {
        Some(d) if d == "vfio-pci" => Check::pass(ID, "bound to vfio-pci"),
        Some(d) => Check::fail(
            ID,
            format!("bound to {d}"),
            format!("`cocoon-host gpu bind {bdf}` (stop whatever uses the GPU first)"),
        ),
        None => Check::fail(
            ID,
            "bound to no driver",
            format!("`cocoon-host gpu bind {bdf}`"),
        ),
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// CC mode lives in the GPU's firmware state, which only NVIDIA's gpu-admin-tools
/// read from the host (the driver is not loaded: the GPU is on vfio-pci).
fn cc_mode(bdf: &Bdf, admin_tools: Option<&Path>) -> Check {
    const ID: &str = "gpu.cc_mode";
    const INSTALL: &str =
        "install NVIDIA gpu-admin-tools (github.com/NVIDIA/gpu-admin-tools) and set \
`gpu_admin_tools` in the worker config; turn CC on with `nvidia_gpu_tools.py --gpu-bdf=BDF \
--set-cc-mode=on --reset-after-cc-mode-switch`";
    let tool = admin_tools
        .map(Path::to_path_buf)
        .or_else(|| find_on_path("nvidia_gpu_tools.py"))
        .or_else(|| find_on_path("nvidia_gpu_tools"));
    let Some(tool) = tool else {
        return Check::unknown(
            ID,
            "gpu-admin-tools not installed: CC mode not queried",
            INSTALL,
        );
    };
    let out = Command::new(&tool)
        .args(["--mmio-access-type=sysfs", "--query-cc-mode"])
        .arg(format!("--gpu-bdf={bdf}"))
        .stdin(Stdio::null())
        .output();
    let text = match out {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            return Check::unknown(ID, format!("cannot run {}: {e}", tool.display()), INSTALL)
        }
    };
    let set_on = format!(
        "`{} --gpu-bdf={bdf} --set-cc-mode=on --reset-after-cc-mode-switch`",
        tool.display()
    );
    if text.contains("CC mode is on") {
        Check::pass(ID, "CC mode is on")
    } else if text.contains("CC mode is devtools") {
        Check::fail(
            ID,
            "CC mode is devtools (debuggable, not confidential)",
            set_on,
        )
    } else if text.contains("CC mode is off") {
        Check::fail(ID, "CC mode is off", set_on)
    } else {
        let last = text.lines().last().unwrap_or_default().trim().to_string();
        Check::unknown(
            ID,
            format!("gpu-admin-tools gave no CC mode: {last}"),
            INSTALL,
        )
    }
}
