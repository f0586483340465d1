//! `cocoon-host run --dev` with real QEMU (TCG) and a real swtpm, booting the pinned
//! test UKI (`tools/build-test-uki`: a busybox initrd that prints the TPM event log
//! and the SHA-384 PCR bank, then powers off) with Debian trixie's OVMF; and the
//! background/ready/stop path with a stand-in QEMU that prints the agent's ready line.
//! Needs qemu-system-x86_64 and swtpm (`tools/install-deps`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;

use cocoon_measurements::eventlog::{EventLog, FormatChoice};
use cocoon_measurements::Digest48;
use common::{cocoon_host, run_json, test_uki, trixie_ovmf};

/// An image directory holding the test UKI, trixie's OVMF and an empty root disk (the
/// test UKI's initrd never reads it).
fn image_dir(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("image");
    std::fs::create_dir_all(&img).unwrap();
    std::os::unix::fs::symlink(test_uki(), img.join("uki.efi")).unwrap();
    std::os::unix::fs::symlink(trixie_ovmf(), img.join("OVMF.fd")).unwrap();
    std::fs::File::create(img.join("root.raw"))
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    img
}

fn write_config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("worker.toml");
    std::fs::write(
        &cfg,
        format!(
            "image_dir = \"image\"\nstate_dir = \"state\"\nvcpus = 1\nmemory_mib = 512\n{extra}\n\
             [ports]\nhost_address = \"127.0.0.1\"\nhost_port = {port}\n"
        ),
    )
    .unwrap();
    cfg
}

/// The serial log as the ready watch reads it: whole lines, kernel records that landed
/// inside another line moved out of it.
fn serial(dir: &Path) -> Vec<String> {
    let bytes = std::fs::read(dir.join("state/serial.log")).unwrap();
    cocoon_host::run::ready::SerialLines::default().push(&bytes)
}

#[test]
fn boots_the_test_uki_with_swtpm_and_stops_on_guest_poweroff() {
    let dir = tempfile::tempdir().unwrap();
    image_dir(dir.path());
    let cfg = write_config(dir.path(), 28443, "[restart]\non_guest_exit = \"stop\"\n");
    let (code, json, stderr) = run_json(
        cocoon_host()
            .args(["--json", "run", "--dev", "--config"])
            .arg(&cfg),
    );
    assert_eq!(code, 0, "{json:#}\n{stderr}");
    assert_eq!(json["finish"], "guest_powered_off");
    assert!(
        stderr.contains("swtpm started") && stderr.contains("swtpm stopped"),
        "{stderr}"
    );
    // What the guest printed, read as tools/check-boot reads it (kernel messages that
    // land inside the guest's lines are cut out; a missing "=== DONE" is an error).
    let out = dir.path().join("guest");
    let read = std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/read-test-serial"),
    )
    .arg(dir.path().join("state/serial.log"))
    .arg(&out)
    .output()
    .unwrap();
    assert!(
        read.status.success(),
        "the guest ran to the end and printed intact lines: {}\n{}",
        String::from_utf8_lossy(&read.stderr),
        serial(dir.path()).join("\n")
    );
    // swtpm ran with a SHA-384 bank: the firmware extended PCR 0 there.
    let pcrs = std::fs::read_to_string(out.join("pcr-sha384.txt")).unwrap();
    let pcr0: Digest48 = pcrs.lines().next().unwrap()["PCR-SHA384 0 ".len()..]
        .to_lowercase()
        .parse()
        .unwrap();
    assert_ne!(pcr0, Digest48::ZERO);
    // The TPM event log the guest read back is a TCG2 log the measurements crate parses,
    // and its replay gives the PCR 0 the guest read.
    let bytes = std::fs::read(out.join("eventlog.bin")).unwrap();
    let log = EventLog::parse(&bytes, FormatChoice::Auto).unwrap();
    assert_eq!(log.replay().unwrap().pcr(0), Some(pcr0));
    // State: worker settings written for the guest, pid file and sockets gone.
    let worker = std::fs::read_to_string(dir.path().join("state/worker.toml")).unwrap();
    assert!(worker.contains("nanoton_per_token = 20"));
    assert!(!dir.path().join("state/supervisor.pid").exists());
    assert!(!dir.path().join("state/swtpm/ctrl.sock").exists());
}

#[test]
fn restarts_with_backoff_then_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    image_dir(dir.path());
    let cfg = write_config(
        dir.path(),
        28444,
        "[restart]\ninitial_backoff_ms = 200\nfast_failure_secs = 600\nmax_fast_failures = 2\n",
    );
    let (code, json, stderr) = run_json(
        cocoon_host()
            .args(["--json", "run", "--dev", "--config"])
            .arg(&cfg),
    );
    assert_eq!(code, 1, "{json:#}\n{stderr}");
    let err = json["error"].as_str().unwrap();
    assert!(
        err.contains("gave up after 2 consecutive fast failures"),
        "{err}"
    );
    assert!(
        stderr.contains("restarting") && stderr.contains("delay_ms=200"),
        "{stderr}"
    );
    // Two boots, both in the (appended) serial log.
    let done = serial(dir.path())
        .iter()
        .filter(|l| *l == "=== DONE")
        .count();
    assert_eq!(done, 2);
}

/// Ends a background supervisor if the test fails before `cocoon-host stop` does.
struct StopOnDrop(i32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0);
        if nix::sys::signal::kill(pid, None).is_ok() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
    }
}

/// A stand-in for QEMU: appends boot lines and the agent's ready line to the serial
/// log named by `-chardev file,...,path=X`, then idles like a running VM.
const FAKE_QEMU: &str = r#"#!/bin/sh
for a in "$@"; do
  case "$a" in file,id=serial0,path=*) log=${a#file,id=serial0,path=}; log=${log%,append=on} ;; esac
done
echo "[    0.000000] Linux version 6.12 (stand-in)" >> "$log"
sleep 1
echo "${FAKE_READY:-cocoon-agent: ready tee=sim listen=0.0.0.0:8443 engine=none}" >> "$log"
exec sleep 1000
"#;

fn fake_qemu(dir: &Path, ready_line: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("fake-qemu");
    std::fs::write(
        &p,
        FAKE_QEMU.replace(
            "${FAKE_READY:-cocoon-agent: ready tee=sim listen=0.0.0.0:8443 engine=none}",
            ready_line,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn until_ready_returns_with_the_supervisor_running_and_stop_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    image_dir(dir.path());
    fake_qemu(
        dir.path(),
        "cocoon-agent: ready tee=sim listen=0.0.0.0:8443 engine=none",
    );
    let cfg = write_config(
        dir.path(),
        28445,
        "qemu = \"./fake-qemu\"\n[restart]\nstop_timeout_secs = 2\n\
         [data_disk]\npath = \"data.raw\"\nsize_gib = 2\n",
    );
    let (code, json, stderr) = run_json(
        cocoon_host()
            .args([
                "--json",
                "run",
                "--dev",
                "--until-ready",
                "--ready-timeout",
                "60",
                "--config",
            ])
            .arg(&cfg),
    );
    assert_eq!(code, 0, "{json:#}\n{stderr}");
    assert_eq!(
        json["ready_line"],
        "cocoon-agent: ready tee=sim listen=0.0.0.0:8443 engine=none"
    );
    assert_eq!(json["host_port"], 28445);
    let pid = json["supervisor_pid"].as_i64().unwrap();
    let guard = StopOnDrop(pid as i32);
    // The data disk was created sparse at its configured size.
    assert_eq!(
        std::fs::metadata(dir.path().join("data.raw"))
            .unwrap()
            .len(),
        2 << 30
    );
    let pidfile = dir.path().join("state/supervisor.pid");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );

    // A second supervisor on the same state directory is refused.
    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "run", "--dev", "--config"])
            .arg(&cfg),
    );
    assert_eq!(code, 2);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("another supervisor"),
        "{json}"
    );

    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "stop", "--dev", "--config"])
            .arg(&cfg),
    );
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["was_running"], true);
    assert_eq!(json["stopped"], true);
    // Stopped: disarm, so a recycled pid is never signalled.
    std::mem::forget(guard);
    assert!(!pidfile.exists());
    let log = std::fs::read_to_string(dir.path().join("state/supervisor.log")).unwrap();
    // The stand-in has no QMP socket: powerdown and quit fail, so it is killed.
    assert!(
        log.contains("system_powerdown failed") && log.contains("Killed"),
        "{log}"
    );
    assert!(log.contains("swtpm stopped"), "{log}");

    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "stop", "--dev", "--config"])
            .arg(&cfg),
    );
    assert_eq!(
        (code, &json["was_running"]),
        (0, &serde_json::Value::Bool(false))
    );
}

#[test]
fn wait_ready_times_out_naming_the_last_serial_line() {
    let dir = tempfile::tempdir().unwrap();
    image_dir(dir.path());
    fake_qemu(
        dir.path(),
        "[    5.000000] cocoon-agent[230]: engine failed",
    );
    let cfg = write_config(
        dir.path(),
        28446,
        "qemu = \"./fake-qemu\"\n[restart]\nstop_timeout_secs = 2\n",
    );
    let (code, json, _) = run_json(
        cocoon_host()
            .args([
                "--json",
                "run",
                "--dev",
                "--wait-ready",
                "--ready-timeout",
                "4",
                "--config",
            ])
            .arg(&cfg),
    );
    assert_eq!(code, 1, "{json:#}");
    let err = json["error"].as_str().unwrap();
    assert!(
        err.contains("did not print `cocoon-agent: ready` within 4 s"),
        "{err}"
    );
    assert!(err.contains("engine failed"), "{err}");
}

#[test]
fn missing_image_is_exit_2_naming_the_field_and_starting_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (code, json, _) = run_json(
        cocoon_host()
            .args(["--json", "run", "--dev", "--image-dir"])
            .arg(dir.path().join("no-image"))
            .arg("--state-dir")
            .arg(dir.path().join("state")),
    );
    assert_eq!(code, 2, "{json:#}");
    let err = json["error"].as_str().unwrap();
    assert!(
        err.starts_with("`image_dir`: ") && err.contains("OVMF.fd does not exist"),
        "{err}"
    );
    assert!(err.contains("image/build dev"), "{err}");
    assert!(!dir.path().join("state").exists(), "nothing created");
}
