//! Before the first start: every file the launch names exists, the state directory,
//! the data disk and the agent's worker settings are in place, and no other
//! supervisor owns the state directory.

use std::path::{Path, PathBuf};

use super::RunError;
use crate::config::{Mode, WorkerConfig};
use crate::qemu::LaunchSpec;

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Io { what, path, source }
}

/// Check that the image artefacts and disks exist; creates nothing.
pub fn check_files(cfg: &WorkerConfig) -> Result<(), RunError> {
    let build = "build the image (`image/build dev` writes build/dev/) or point image_dir at it";
    let fw_field = if cfg.firmware.is_some() {
        "firmware"
    } else {
        "image_dir"
    };
    let needed: [(&'static str, PathBuf, &str); 3] = [
        (fw_field, cfg.firmware_path(), build),
        ("image_dir", cfg.uki_path(), build),
        ("image_dir", cfg.root_disk_path(), build),
    ];
    for (field, path, fix) in needed {
        if !path.is_file() {
            return Err(RunError::Missing {
                field,
                path,
                fix: fix.to_string(),
            });
        }
    }
    if let Some(m) = &cfg.model_disk {
        if !m.is_file() {
            return Err(RunError::Missing {
                field: "model_disk",
                path: m.clone(),
                fix: "create the model disk or remove model_disk".into(),
            });
        }
    }
    if let Some(d) = &cfg.data_disk {
        if !d.path.is_file() && d.size_gib.is_none() {
            return Err(RunError::Missing {
                field: "data_disk.path",
                path: d.path.clone(),
                fix: "set data_disk.size_gib to create it, or create it yourself".into(),
            });
        }
    }
    Ok(())
}

/// The settings the agent reads from fw_cfg `opt/cocoon/worker.toml`.
pub fn worker_toml_text(cfg: &WorkerConfig) -> String {
    let mut s = String::from(
        "# Written by cocoon-host; reaches the guest as fw_cfg opt/cocoon/worker.toml.\n",
    );
    s.push_str(&format!("instance = {}\n", cfg.instance));
    if let Some(a) = &cfg.owner_address {
        s.push_str(&format!("owner_address = \"{}\"\n", a.trim()));
    }
    // The agent's own `[pricing]` keys (its `host_settings` schema): shares in basis points.
    let p = &cfg.pricing;
    s.push_str(&format!(
        "\n[pricing]\nnanoton_per_token = {}\nworker_share_bps = {}\nproxy_share_bps = {}\n",
        p.nanoton_per_token,
        u32::from(p.worker_share_percent) * 100,
        u32::from(p.proxy_share_percent) * 100
    ));
    s
}

/// Create the state directory, the log directory, the data disk (sparse) and
/// `worker.toml`, and claim the state directory with a pid file.
pub fn prepare(cfg: &WorkerConfig, spec: &LaunchSpec, mode: Mode) -> Result<PidFile, RunError> {
    check_files(cfg)?;
    let state = cfg.state_dir(mode);
    std::fs::create_dir_all(&state).map_err(io("cannot create state directory", &state))?;
    if let Some(parent) = spec.serial_log.parent() {
        std::fs::create_dir_all(parent).map_err(io("cannot create log directory", parent))?;
    }
    let pid = PidFile::claim(&state)?;
    if let Some(d) = &cfg.data_disk {
        if let (false, Some(gib)) = (d.path.is_file(), d.size_gib) {
            let f =
                std::fs::File::create(&d.path).map_err(io("cannot create data disk", &d.path))?;
            f.set_len(gib.saturating_mul(1 << 30))
                .map_err(io("cannot size data disk", &d.path))?;
            tracing::info!(path = %d.path.display(), gib, "created sparse data disk");
        }
    }
    if let Some(w) = &spec.worker_toml {
        std::fs::write(w, worker_toml_text(cfg)).map_err(io("cannot write", w))?;
    }
    Ok(pid)
}

/// `<state_dir>/supervisor.pid`, removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("supervisor.pid")
    }

    /// The live supervisor's pid recorded in `state_dir`, if any.
    pub fn live_pid(state_dir: &Path) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(Self::path_in(state_dir))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        alive.then_some(pid)
    }

    pub fn claim(state_dir: &Path) -> Result<Self, RunError> {
        if let Some(pid) = Self::live_pid(state_dir) {
            if pid != std::process::id() as i32 {
                return Err(RunError::AlreadyRunning {
                    pid,
                    state_dir: state_dir.to_path_buf(),
                });
            }
        }
        let path = Self::path_in(state_dir);
        std::fs::write(&path, format!("{}\n", std::process::id()))
            .map_err(io("cannot write", &path))?;
        Ok(Self { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
