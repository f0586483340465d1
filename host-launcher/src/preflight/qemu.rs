//! QEMU: version and the `tdx-guest` object.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{major_minor, Check, MIN_QEMU};

pub const QEMU_FIX: &str = "install QEMU 10.1 or newer: Debian trixie-backports ships 11.1 \
(`apt install -t trixie-backports qemu-system-x86`), Ubuntu 25.10+ or the canonical/tdx PPA \
on 24.04; then set `qemu` in the worker config if it is not /usr/bin/qemu-system-x86_64 \
(see qemu/README.md)";

fn output(qemu: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(qemu)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", qemu.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {}` failed: {}",
            qemu.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Parse `QEMU emulator version 10.1.0 (Debian ...)`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version").nth(1)?;
    major_minor(rest.trim_start())
}

pub fn checks(qemu: &Path) -> Vec<Check> {
    const VERSION: &str = "qemu.version";
    const TDX: &str = "qemu.tdx";
    let version = match output(qemu, &["--version"]) {
        Err(e) => Check::fail(VERSION, e, QEMU_FIX),
        Ok(text) => {
            let first = text.lines().next().unwrap_or_default().trim().to_string();
            match parse_version(&text) {
                Some(v) if v >= MIN_QEMU => Check::pass(VERSION, first),
                Some(_) => Check::fail(
                    VERSION,
                    format!("{first}: older than {}.{}", MIN_QEMU.0, MIN_QEMU.1),
                    QEMU_FIX,
                ),
                None => Check::unknown(VERSION, format!("cannot parse `{first}`"), QEMU_FIX),
            }
        }
    };
    // `-object help` lists the object types this build knows; `tdx-guest` is there only
    // in QEMU 10.1+ built with KVM for x86.
    let tdx = match output(qemu, &["-object", "help"]) {
        Err(e) => Check::fail(TDX, e, QEMU_FIX),
        Ok(text) if text.lines().any(|l| l.trim() == "tdx-guest") => {
            Check::pass(TDX, "`-object help` lists tdx-guest")
        }
        Ok(_) => Check::fail(TDX, "`-object help` has no tdx-guest object", QEMU_FIX),
    };
    vec![version, tdx]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_version_lines() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"),
            Some((10, 0))
        );
        assert_eq!(
            parse_version("QEMU emulator version 11.1.0\n"),
            Some((11, 1))
        );
        assert_eq!(parse_version("nonsense"), None);
    }
}
