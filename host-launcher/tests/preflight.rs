//! `cocoon-host preflight` against fixture trees (`tests/fixtures/preflight/`): the
//! good host passes every check; each overlay breaks exactly the checks it names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;

use common::{cocoon_host, copy_tree, fixtures, run_json};

/// `good/` with the overlay `name/` on top: its `REMOVE` lists paths to delete first,
/// then its files replace or add to the good tree's.
fn assemble(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let base = fixtures().join("preflight");
    copy_tree(&base.join("good"), dir.path());
    if name != "good" {
        let overlay = base.join(name);
        assert!(overlay.is_dir(), "no fixture {name}");
        if let Ok(list) = std::fs::read_to_string(overlay.join("REMOVE")) {
            for rel in list.lines().filter(|l| !l.trim().is_empty()) {
                let p = dir.path().join(rel.trim());
                let meta = std::fs::symlink_metadata(&p)
                    .unwrap_or_else(|_| panic!("{name}: REMOVE {rel}: missing"));
                if meta.is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
        }
        copy_tree(&overlay, dir.path());
        let _ = std::fs::remove_file(dir.path().join("REMOVE"));
    }
    dir
}

fn preflight(dir: &Path) -> (i32, serde_json::Value) {
    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "preflight", "--root"])
            .arg(dir.join("root"))
            .arg("--config")
            .arg(dir.join("worker.toml"))
            // gpu-admin-tools must come from the config, never from the test machine.
            .env("PATH", "/usr/bin:/bin"),
    );
    (code, json)
}

fn failed_ids(json: &serde_json::Value) -> Vec<String> {
    json["failed_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn status_of(json: &serde_json::Value, id: &str) -> String {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn good_host_passes_every_check() {
    let dir = assemble("good");
    let (code, json) = preflight(dir.path());
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["failed"], 0);
    assert_eq!(json["unknown"], 0);
    let ids: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "kernel.version",
            "kernel.config",
            "kvm.tdx",
            "qemu.version",
            "qemu.tdx",
            "iommu.enabled",
            "iommu.iommufd",
            "gpu.exists",
            "gpu.model",
            "gpu.iommu_group",
            "gpu.driver",
            "gpu.cc_mode",
            "memory.available",
            "firmware.sha256"
        ]
    );
    assert_eq!(json["checks"][8]["subject"], "0000:17:00.0");
    assert!(json["checks"][8]["detail"]
        .as_str()
        .unwrap()
        .contains("H100 PCIe"));
}

/// Each failing fixture, the exact checks it must fail, and a word its fix must contain.
const FAILING: &[(&str, &[&str], &str)] = &[
    ("kernel-old", &["kernel.version"], "INTEL_TDX_HOST"),
    ("kernel-config", &["kernel.config"], "6.16"),
    ("kvm-tdx-off", &["kvm.tdx"], "kvm_intel.tdx=1"),
    ("kvm-not-loaded", &["kvm.tdx"], "modprobe kvm_intel"),
    ("kvm-no-tdx-param", &["kvm.tdx"], "INTEL_TDX_HOST"),
    (
        "qemu-old",
        &["qemu.version", "qemu.tdx"],
        "trixie-backports",
    ),
    ("qemu-no-tdx", &["qemu.tdx"], "10.1"),
    ("iommu-off", &["iommu.enabled"], "intel_iommu=on"),
    ("no-iommufd", &["iommu.iommufd"], "IOMMUFD"),
    ("gpu-missing", &["gpu.exists"], "lspci"),
    ("gpu-not-nvidia", &["gpu.model"], "10de"),
    ("gpu-a100", &["gpu.model"], "H100"),
    ("gpu-group-shared", &["gpu.iommu_group"], "ACS"),
    (
        "gpu-driver",
        &["gpu.driver"],
        "cocoon-host gpu bind 0000:17:00.0",
    ),
    ("gpu-cc-off", &["gpu.cc_mode"], "--set-cc-mode=on"),
    ("memory-low", &["memory.available"], "memory_mib"),
    ("hugepages-short", &["memory.hugepages"], "nr_hugepages"),
    ("firmware-mismatch", &["firmware.sha256"], "measured"),
];

#[test]
fn each_failing_fixture_fails_exactly_its_checks() {
    for (name, expected, fix_word) in FAILING {
        let dir = assemble(name);
        let (code, json) = preflight(dir.path());
        assert_eq!(code, 1, "{name}: {json:#}");
        assert_eq!(json["ok"], false, "{name}");
        assert_eq!(failed_ids(&json), *expected, "{name}");
        let fixes: Vec<&str> = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["fix"].as_str().unwrap())
            .collect();
        assert!(
            fixes.iter().any(|f| f.contains(fix_word)),
            "{name}: fixes {fixes:?} lack {fix_word:?}"
        );
    }
}

#[test]
fn every_check_id_has_a_failing_fixture() {
    let covered: std::collections::BTreeSet<&str> = FAILING
        .iter()
        .flat_map(|(_, ids, _)| ids.iter().copied())
        .collect();
    for id in [
        "kernel.version",
        "kernel.config",
        "kvm.tdx",
        "qemu.version",
        "qemu.tdx",
        "iommu.enabled",
        "iommu.iommufd",
        "gpu.exists",
        "gpu.model",
        "gpu.iommu_group",
        "gpu.driver",
        "gpu.cc_mode",
        "memory.available",
        "memory.hugepages",
        "firmware.sha256",
    ] {
        assert!(covered.contains(id), "{id} has no failing fixture");
    }
}

#[test]
fn missing_admin_tools_is_unknown_not_failure() {
    let dir = assemble("gpu-cc-unknown");
    let (code, json) = preflight(dir.path());
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(status_of(&json, "gpu.cc_mode"), "unknown");
    assert_eq!(json["unknown"], 1);
}

#[test]
fn other_functions_of_the_gpu_may_share_its_group() {
    let dir = assemble("gpu-group-functions");
    let (code, json) = preflight(dir.path());
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(status_of(&json, "gpu.iommu_group"), "pass");
}

#[test]
fn text_output_is_one_line_per_check_with_fix() {
    let dir = assemble("kvm-tdx-off");
    let out = cocoon_host()
        .args(["preflight", "--root"])
        .arg(dir.path().join("root"))
        .arg("--config")
        .arg(dir.path().join("worker.toml"))
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("FAIL    kvm.tdx: /sys/module/kvm_intel/parameters/tdx = N"),
        "{text}"
    );
    assert!(
        text.contains("        fix: enable TDX in the BIOS"),
        "{text}"
    );
    assert!(
        text.ends_with("preflight: 13 passed, 1 failed, 0 unknown: host NOT ready\n"),
        "{text}"
    );
}

#[test]
fn bad_config_is_exit_2_naming_the_field() {
    let dir = assemble("good");
    std::fs::write(
        dir.path().join("worker.toml"),
        "image_dir = \"image\"\nowner_address = \"EQDk2VTvn04SUKJrW7rXahzdF8_Qi6utb0wj43InCu9vdjrS\"\n",
    )
    .unwrap();
    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "preflight", "--root"])
            .arg(dir.path().join("root"))
            .arg("--config")
            .arg(dir.path().join("worker.toml")),
    );
    assert_eq!(code, 2);
    let err = json["error"].as_str().unwrap();
    assert!(
        err.contains("`owner_address`") && err.contains("CRC"),
        "{err}"
    );
}
