//! `cocoon-host gpu bind|unbind` on the fixture tree `tests/fixtures/gpu-bind/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;

use common::{cocoon_host, copy_tree, fixtures, run_json};

const BDF: &str = "0000:17:00.0";

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("gpu-bind/root"), dir.path());
    dir
}

fn gpu(root: &Path, verb: &str) -> (i32, serde_json::Value) {
    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "gpu", verb, BDF, "--root"])
            .arg(root),
    );
    (code, json)
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

/// Stand in for the kernel: point the device's `driver` link at `driver`.
fn kernel_binds(root: &Path, driver: &str) {
    let link = root.join(format!("sys/bus/pci/devices/{BDF}/driver"));
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(format!("../../../../bus/pci/drivers/{driver}"), link).unwrap();
}

#[test]
fn refuses_while_a_process_holds_the_gpu_and_writes_nothing() {
    let dir = tree();
    let root = dir.path();
    let (code, json) = gpu(root, "bind");
    assert_eq!(code, 2, "{json:#}");
    let err = json["error"].as_str().unwrap();
    assert!(err.contains("pid 4242 (python3) via /dev/nvidia0"), "{err}");
    // nvidiactl (4243) and another GPU's node (4244) do not hold this GPU.
    assert!(!err.contains("4243") && !err.contains("4244"), "{err}");
    assert_eq!(
        read(root, &format!("sys/bus/pci/devices/{BDF}/driver_override")),
        "(null)\n"
    );
    assert_eq!(read(root, "sys/bus/pci/drivers/nvidia/unbind"), "");
    assert!(!root.join("run/cocoon-host/gpu").exists());
}

#[test]
fn bind_then_unbind_round_trips_to_the_previous_driver() {
    let dir = tree();
    let root = dir.path();
    std::fs::remove_dir_all(root.join("proc/4242")).unwrap();

    let (code, json) = gpu(root, "bind");
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["from"], "nvidia");
    assert_eq!(json["to"], "vfio-pci");
    assert_eq!(json["changed"], true);
    assert_eq!(
        read(root, &format!("sys/bus/pci/devices/{BDF}/driver_override")),
        "vfio-pci"
    );
    assert_eq!(read(root, "sys/bus/pci/drivers/nvidia/unbind"), BDF);
    assert_eq!(read(root, "sys/bus/pci/drivers_probe"), BDF);
    assert_eq!(
        read(root, &format!("run/cocoon-host/gpu/{BDF}.driver")),
        "nvidia\n"
    );

    kernel_binds(root, "vfio-pci");
    let (code, json) = gpu(root, "bind");
    assert_eq!(
        (code, &json["changed"]),
        (0, &serde_json::Value::Bool(false)),
        "already bound: no-op"
    );

    // QEMU holds the VFIO group: unbind must refuse.
    std::fs::create_dir_all(root.join("proc/5000/fd")).unwrap();
    std::fs::write(root.join("proc/5000/comm"), "qemu-system-x86\n").unwrap();
    std::os::unix::fs::symlink("/dev/vfio/23", root.join("proc/5000/fd/31")).unwrap();
    let (code, json) = gpu(root, "unbind");
    assert_eq!(code, 2, "{json:#}");
    assert!(json["error"]
        .as_str()
        .unwrap()
        .contains("pid 5000 (qemu-system-x86) via /dev/vfio/23"));
    std::fs::remove_dir_all(root.join("proc/5000")).unwrap();

    let (code, json) = gpu(root, "unbind");
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["from"], "vfio-pci");
    assert_eq!(json["to"], "nvidia");
    assert_eq!(
        read(root, &format!("sys/bus/pci/devices/{BDF}/driver_override")),
        "\n"
    );
    assert_eq!(read(root, "sys/bus/pci/drivers/vfio-pci/unbind"), BDF);
    assert_eq!(read(root, "sys/bus/pci/drivers/nvidia/bind"), BDF);
    assert!(!root
        .join(format!("run/cocoon-host/gpu/{BDF}.driver"))
        .exists());
}

#[test]
fn iommufd_cdev_holders_count() {
    let dir = tree();
    let root = dir.path();
    std::fs::remove_dir_all(root.join("proc/4242")).unwrap();
    kernel_binds(root, "vfio-pci");
    std::fs::create_dir_all(root.join(format!("sys/bus/pci/devices/{BDF}/vfio-dev/vfio0")))
        .unwrap();
    std::fs::create_dir_all(root.join("proc/6000/fd")).unwrap();
    std::os::unix::fs::symlink("/dev/vfio/devices/vfio0", root.join("proc/6000/fd/12")).unwrap();
    let (code, json) = gpu(root, "unbind");
    assert_eq!(code, 2, "{json:#}");
    assert!(json["error"]
        .as_str()
        .unwrap()
        .contains("/dev/vfio/devices/vfio0"));
}

#[test]
fn errors_name_the_fix() {
    let dir = tree();
    let root = dir.path();
    std::fs::remove_dir_all(root.join("proc/4242")).unwrap();
    let (code, json) = gpu(root, "unbind");
    assert_eq!(code, 2);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("bound to nvidia, not vfio-pci"),
        "{json}"
    );

    std::fs::remove_dir_all(root.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
    let (code, json) = gpu(root, "bind");
    assert_eq!(code, 2);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("modprobe vfio-pci"),
        "{json}"
    );

    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "gpu", "bind", "0000:99:00.0", "--root"])
            .arg(root),
    );
    assert_eq!(code, 2);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("no PCI device 0000:99:00.0"),
        "{json}"
    );
}
