//! systemd units, one per worker instance: `cocoon-host@N.service`.
//!
//! A concrete `name@instance.service` file is a valid unit on its own (systemd looks
//! for it before a `name@.service` template), so each instance's unit names its own
//! config. `KillMode=mixed`: systemd's SIGTERM reaches only cocoon-host, which powers
//! the guest down through QMP; a plain SIGTERM to the whole group would end QEMU
//! without letting the guest shut down.

use std::path::Path;

use crate::config::WorkerConfig;

/// The unit file's name for an instance.
pub fn unit_name(instance: u32) -> String {
    format!("cocoon-host@{instance}.service")
}

/// The unit text for one instance; `binary` and `config` must be absolute.
pub fn render(cfg: &WorkerConfig, config: &Path, binary: &Path) -> String {
    let gpus = if cfg.gpus.is_empty() {
        "no GPU".to_string()
    } else {
        cfg.gpus
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let stop = cfg.restart.stop_timeout_secs.saturating_add(30);
    let bin = binary.display();
    let conf = config.display();
    format!(
        "# Written by `cocoon-host install-units`; edit the worker config, not this file.
[Unit]
Description=COCOON worker instance {instance} ({gpus})
Documentation=file://{conf}
Wants=network-online.target
After=network-online.target qgsd.service

[Service]
Type=exec
ExecStartPre={bin} preflight --config {conf}
ExecStart={bin} run --config {conf}
KillMode=mixed
TimeoutStopSec={stop}
# cocoon-host gives up after restart.max_fast_failures fast failures; try again later.
Restart=on-failure
RestartSec=300
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=multi-user.target
",
        instance = cfg.instance,
    )
}
