//! Stopping a running VM through QMP with real QEMU: a dev-mode VM (TCG, swtpm) with
//! no kernel stays up in the firmware; a stop request sends `system_powerdown`, which
//! the firmware ignores, then `quit` after `stop_timeout_secs`. QEMU and swtpm must
//! both be gone afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cocoon_host::config::{Mode, WorkerConfig};
use cocoon_host::qemu::{tpm_dir, LaunchSpec};
use cocoon_host::qmp::Qmp;
use cocoon_host::run::supervisor::{Event, Finish, Observer, StopMethod, Supervisor};
use cocoon_host::sysroot::SysRoot;

#[derive(Default)]
struct Record {
    events: Vec<String>,
    qemu_pid: Option<u32>,
    tpm_pid: Option<u32>,
}

impl Observer for Record {
    fn on(&mut self, event: Event<'_>) {
        if let Event::Started { pid, tpm_pid, .. } = &event {
            self.qemu_pid = Some(*pid);
            self.tpm_pid = *tpm_pid;
        }
        let name = format!("{event:?}");
        self.events
            .push(name.split([' ', '{', '(']).next().unwrap().to_string());
    }
}

fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

#[test]
fn stop_request_goes_through_qmp_and_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut cfg = WorkerConfig::dev_default(dir.path().join("image"));
    cfg.state_dir = Some(state.clone());
    cfg.vcpus = 1;
    cfg.memory_mib = 512;
    cfg.ports.host_port = Some(28447);
    cfg.restart.stop_timeout_secs = 3;
    let mut spec = LaunchSpec::from_config(&cfg, Mode::Dev, &SysRoot::default());
    spec.firmware = common::trixie_ovmf();
    // No kernel, no disk: the VM sits in the firmware until stopped.
    spec.kernel = None;
    spec.root_disk = None;
    spec.worker_toml = None;

    let stop = Arc::new(AtomicBool::new(false));
    let qmp_path = spec.qmp_socket.clone();
    let trigger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let status = loop {
                assert!(Instant::now() < deadline, "QMP never came up");
                if let Ok(mut q) = Qmp::connect(&qmp_path, Duration::from_secs(5)) {
                    break q.status().unwrap();
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            std::thread::sleep(Duration::from_secs(2));
            stop.store(true, Ordering::SeqCst);
            status
        })
    };
    let sup = Supervisor {
        spec,
        policy: cfg.restart.clone(),
        dev: Some(cfg.dev.clone()),
        tpm_dir: tpm_dir(&state),
        watch_ready: false,
        ready_timeout: None,
        stop_requested: Box::new(move || stop.load(Ordering::SeqCst)),
    };
    let mut rec = Record::default();
    let started = Instant::now();
    let finish = sup.run(&mut rec).unwrap();
    assert_eq!(
        trigger.join().unwrap(),
        "running",
        "QMP query-status while up"
    );
    assert_eq!(finish, Finish::Stopped(StopMethod::Quit));
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "waited stop_timeout_secs before quit"
    );
    assert_eq!(rec.events, ["Starting", "Started", "Stopping", "Stopped"]);
    assert!(!alive(rec.qemu_pid.unwrap()), "QEMU still running");
    assert!(!alive(rec.tpm_pid.unwrap()), "swtpm still running");
}
