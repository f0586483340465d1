//! The software TPM of dev mode, the boot measurement witness: the firmware and
//! systemd-stub extend its PCRs and log to it as they would to a TD's RTMRs, and the
//! agent's sim TEE replays that log (CONTRACT section 4). A fresh TPM per boot, like
//! a TD's registers. Recipe as in `tools/boot-test-uki`: SHA-256 and SHA-384 banks.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::RunError;
use crate::config::DevSettings;

/// A running swtpm.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    pub socket: PathBuf,
}

impl Swtpm {
    /// Create fresh TPM state in `dir` and start swtpm with its control socket at `socket`.
    pub fn start(settings: &DevSettings, dir: &Path, socket: &Path) -> Result<Self, RunError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| RunError::Io {
                what: "cannot clear swtpm state",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::create_dir_all(dir).map_err(|source| RunError::Io {
            what: "cannot create swtpm state",
            path: dir.to_path_buf(),
            source,
        })?;
        let dir_abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let socket_abs = std::path::absolute(socket).unwrap_or_else(|_| socket.to_path_buf());
        let out = Command::new(&settings.swtpm_setup)
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(&dir_abs)
            .args(["--pcr-banks", "sha256,sha384", "--overwrite"])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RunError::Spawn {
                program: settings.swtpm_setup.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(RunError::Swtpm(format!(
                "swtpm_setup failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let child = Command::new(&settings.swtpm)
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir_abs.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", socket_abs.display()))
            .arg("--log")
            .arg(format!("file={}", dir_abs.join("swtpm.log").display()))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| RunError::Spawn {
                program: settings.swtpm.clone(),
                source,
            })?;
        let mut tpm = Swtpm {
            child,
            socket: socket_abs,
        };
        // QEMU fails at once if the socket is not there yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tpm.socket.exists() {
            if let Ok(Some(status)) = tpm.child.try_wait() {
                return Err(RunError::Swtpm(format!("swtpm exited at start: {status}")));
            }
            if Instant::now() > deadline {
                tpm.stop();
                return Err(RunError::Swtpm(
                    "control socket did not appear within 10 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::info!(pid = tpm.child.id(), socket = %tpm.socket.display(), "swtpm started");
        Ok(tpm)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` once swtpm has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        super::supervisor::terminate(&mut self.child, Duration::from_secs(5));
        let _ = std::fs::remove_file(&self.socket);
        tracing::info!("swtpm stopped");
    }
}
