//! A minimal QMP client (QEMU Machine Protocol, `docs/interop/qmp-spec.rst`): JSON
//! objects, one per line, over the unix socket given with `-qmp`. Used to stop the
//! guest gracefully (`system_powerdown`) and, failing that, QEMU (`quit`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// QMP failures.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot connect to QMP socket {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("QMP I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("QMP sent invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("QMP closed the connection")]
    Closed,
    #[error("QMP greeting missing (got {0})")]
    Greeting(String),
    #[error("QMP command `{command}` failed: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
}

/// A connected QMP session in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect, read the greeting and leave capabilities negotiation.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let stream = UnixStream::connect(path).map_err(|source| QmpError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Greeting(greeting.to_string()));
        }
        qmp.execute("qmp_capabilities")?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(QmpError::Closed);
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Run a command without arguments; returns its `return` value. Asynchronous
    /// events arriving meanwhile are skipped.
    pub fn execute(&mut self, command: &str) -> Result<Value, QmpError> {
        let msg = serde_json::json!({ "execute": command });
        self.writer.write_all(format!("{msg}\n").as_bytes())?;
        loop {
            let reply = self.read_message()?;
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                return Err(QmpError::Command {
                    command: command.to_string(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            // {"event": ...}: not ours.
        }
    }

    /// `query-status`'s `status` (`running`, `paused`, `shutdown`, ...).
    pub fn status(&mut self) -> Result<String, QmpError> {
        let r = self.execute("query-status")?;
        Ok(r.get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string())
    }
}
