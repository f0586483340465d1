//! `cocoon-host run --dry-run` pinned against `tests/golden/*.args` (one argument per
//! line, the program first), plus the properties the golden files must keep whatever
//! they are regenerated to. `UPDATE_GOLDEN=1` rewrites the golden files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;

use common::{cocoon_host, fixtures, run_json};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compare with a golden file, or rewrite it under `UPDATE_GOLDEN=1`.
pub fn check_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"
    );
}

fn dry_run(config: &str, dev: bool) -> (String, Vec<String>) {
    let dir = fixtures().join("qemu");
    let mut cmd = cocoon_host();
    cmd.arg("run")
        .arg("--dry-run")
        .arg("--config")
        .arg(dir.join(config))
        .arg("--root")
        .arg(dir.join("root"));
    if dev {
        cmd.arg("--dev");
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // --json carries the same vector.
    let mut cmd = cocoon_host();
    cmd.args(["--json", "run", "--dry-run", "--config"])
        .arg(dir.join(config))
        .arg("--root")
        .arg(dir.join("root"));
    if dev {
        cmd.arg("--dev");
    }
    let (code, json, _) = run_json(&mut cmd);
    assert_eq!(code, 0);
    let args: Vec<String> = json["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], json["program"].as_str().unwrap());
    assert_eq!(
        lines[1..],
        args.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    (text, args)
}

/// The value following `flag`, for every occurrence.
fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

fn td_invariants(args: &[String]) {
    assert_eq!(values(args, "-accel"), ["kvm"]);
    assert!(
        !args.iter().any(|a| a == "-append" || a == "-initrd"),
        "the UKI carries its command line"
    );
    assert!(args.iter().any(|a| a == "-nodefaults") && args.iter().any(|a| a == "-nographic"));
    let machine = values(args, "-machine");
    assert_eq!(machine.len(), 1);
    assert!(machine[0].starts_with("q35,kernel-irqchip=split,confidential-guest-support=tdx0"));
    let objects = values(args, "-object");
    let tdx: Vec<&&str> = objects.iter().filter(|o| o.contains("tdx-guest")).collect();
    assert_eq!(tdx.len(), 1);
    let tdx: serde_json::Value = serde_json::from_str(tdx[0]).unwrap();
    assert_eq!(tdx["qom-type"], "tdx-guest");
    assert_eq!(tdx["id"], "tdx0");
    assert!(tdx["quote-generation-socket"].is_object());
    let drives = values(args, "-drive");
    assert!(drives
        .iter()
        .any(|d| d.contains("root.raw") && d.ends_with("readonly=on")));
    assert_eq!(values(args, "-netdev").len(), 1);
    assert!(
        values(args, "-netdev")[0].ends_with("-:8443"),
        "only the agent's port is forwarded"
    );
    assert!(values(args, "-device")
        .iter()
        .any(|d| d.starts_with("vhost-vsock-pci,guest-cid=")));
    assert!(values(args, "-qmp")[0].starts_with("unix:"));
    assert_eq!(values(args, "-serial"), ["chardev:serial0"]);
    assert!(!args.iter().any(|a| a.contains("tpm")), "a TD has no vTPM");
}

#[test]
fn td_without_gpu() {
    let (text, args) = dry_run("td-0gpu.toml", false);
    td_invariants(&args);
    assert!(!args
        .iter()
        .any(|a| a.contains("vfio") || a.contains("iommufd") || a.contains("X-PciMmio64Mb")));
    assert!(text.contains(r#"{"qom-type":"tdx-guest","id":"tdx0","quote-generation-socket":{"type":"vsock","cid":"2","port":"4050"}}"#));
    assert!(values(&args, "-device").contains(&"vhost-vsock-pci,guest-cid=3"));
    assert!(values(&args, "-netdev")[0].contains("hostfwd=tcp:0.0.0.0:8443-:8443"));
    check_golden("td-0gpu.args", &text);
}

#[test]
fn td_with_one_gpu() {
    let (text, args) = dry_run("td-1gpu.toml", false);
    td_invariants(&args);
    let devices = values(&args, "-device");
    assert!(devices.contains(&"pcie-root-port,id=rp0,bus=pcie.0,chassis=1"));
    assert!(devices.contains(&"vfio-pci,host=0000:17:00.0,bus=rp0,iommufd=iommufd0,rombar=0"));
    assert!(devices.contains(&"virtio-blk-pci,drive=model,serial=cocoon-model"));
    assert!(devices.contains(&"virtio-blk-pci,drive=data,serial=cocoon-data"));
    assert!(values(&args, "-drive")
        .contains(&"file=/srv/cocoon/models/qwen.raw,if=none,id=model,format=raw,readonly=on"));
    assert!(
        values(&args, "-drive").contains(&"file=/srv/cocoon/data-1.raw,if=none,id=data,format=raw")
    );
    // H100: 128 GiB BAR1 + 32 MiB BAR3 -> a 256 GiB window.
    assert!(values(&args, "-fw_cfg").contains(&"name=opt/ovmf/X-PciMmio64Mb,string=262144"));
    // instance 1: CID 4, host port 8444.
    assert!(devices.contains(&"vhost-vsock-pci,guest-cid=4"));
    assert!(values(&args, "-netdev")[0].contains(":8444-:8443"));
    assert!(text.contains(
        r#""quote-generation-socket":{"type":"unix","path":"/var/run/tdx-qgs/qgs.socket"}"#
    ));
    check_golden("td-1gpu.args", &text);
}

#[test]
fn td_with_two_gpus() {
    let (text, args) = dry_run("td-2gpu.toml", false);
    td_invariants(&args);
    let devices = values(&args, "-device");
    assert!(devices.contains(&"vfio-pci,host=0000:17:00.0,bus=rp0,iommufd=iommufd0,rombar=0"));
    assert!(devices.contains(&"pcie-root-port,id=rp1,bus=pcie.0,chassis=2"));
    assert!(devices.contains(&"vfio-pci,host=0000:65:00.0,bus=rp1,iommufd=iommufd0,rombar=0"));
    assert_eq!(
        values(&args, "-object")
            .iter()
            .filter(|o| o.starts_with("iommufd"))
            .count(),
        1
    );
    // 128 GiB + 256 GiB (+ small BARs), plus half -> 1 TiB.
    assert!(values(&args, "-fw_cfg").contains(&"name=opt/ovmf/X-PciMmio64Mb,string=1048576"));
    assert!(values(&args, "-object")
        .contains(&"memory-backend-file,id=ram0,size=262144M,mem-path=/dev/hugepages,prealloc=on"));
    assert_eq!(values(&args, "-bios"), ["/srv/cocoon/OVMF.fd"]);
    assert!(values(&args, "-netdev")[0].contains(":9443-:8443"));
    check_golden("td-2gpu.args", &text);
}

#[test]
fn dev_mode() {
    let (text, args) = dry_run("dev.toml", true);
    assert_eq!(values(&args, "-accel"), ["tcg"]);
    assert!(!text.contains("tdx") && !text.contains("vfio") && !text.contains("vsock"));
    assert_eq!(values(&args, "-machine"), ["q35,memory-backend=ram0"]);
    assert_eq!(
        values(&args, "-chardev")[0],
        "socket,id=chrtpm,path=/tmp/cocoon-host/dev-0/swtpm/ctrl.sock"
    );
    assert!(values(&args, "-device").contains(&"tpm-crb,tpmdev=tpm0"));
    assert!(values(&args, "-netdev")[0].contains("hostfwd=tcp:127.0.0.1:8443-:8443"));
    assert!(!args.iter().any(|a| a == "-append"));
    check_golden("dev.args", &text);
}

#[test]
fn units_are_golden() {
    let cfg = cocoon_host::config::WorkerConfig::load(
        &fixtures().join("qemu/td-1gpu.toml"),
        cocoon_host::config::Mode::Td,
    )
    .unwrap();
    let unit = cocoon_host::units::render(
        &cfg,
        std::path::Path::new("/etc/cocoon-host/worker-1.toml"),
        std::path::Path::new("/usr/local/bin/cocoon-host"),
    );
    check_golden("cocoon-host@1.service", &unit);
}

#[test]
fn install_units_writes_one_unit_per_instance() {
    let dir = tempfile::tempdir().unwrap();
    let q = fixtures().join("qemu");
    let (code, json, _) = run_json(
        cocoon_host()
            .args([
                "--json",
                "install-units",
                "--binary",
                "/usr/local/bin/cocoon-host",
                "--dir",
            ])
            .arg(dir.path())
            .arg("--config")
            .arg(q.join("td-1gpu.toml"))
            .arg("--config")
            .arg(q.join("td-2gpu.toml")),
    );
    assert_eq!(code, 0, "{json:#}");
    let units: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["cocoon-host@1.service", "cocoon-host@2.service"]);
    let two = std::fs::read_to_string(dir.path().join("cocoon-host@2.service")).unwrap();
    assert!(two.contains(&format!(
        "ExecStart=/usr/local/bin/cocoon-host run --config {}",
        q.join("td-2gpu.toml").display()
    )));
    assert!(two.contains("Description=COCOON worker instance 2 (0000:17:00.0 0000:65:00.0)"));
    assert!(two.contains("KillMode=mixed"));

    // Two configs for the same instance would fight over one state directory.
    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "install-units", "--dir"])
            .arg(dir.path())
            .arg("--config")
            .arg(q.join("td-1gpu.toml"))
            .arg("--config")
            .arg(q.join("td-1gpu.toml")),
    );
    assert_eq!(code, 2);
    assert!(json["error"]
        .as_str()
        .unwrap()
        .contains("both use instance 1"));
}
