//! `tools/serial-lines` (what image/test-boot and tools/check-boot read the serial console
//! with) and cocoon-host's ready watch take the same lines out of a console log where
//! kernel records landed inside other lines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cocoon_host::run::ready::SerialWatch;

fn script(input: &[u8]) -> Vec<String> {
    let mut child =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/serial-lines"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The watch, fed the log in pieces of `chunk` bytes as a growing file.
fn watch(input: &[u8], chunk: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serial.log");
    std::fs::write(&log, "").unwrap();
    let mut w = SerialWatch::new(&log, 0);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut lines = Vec::new();
    for piece in input.chunks(chunk) {
        f.write_all(piece).unwrap();
        lines.extend(w.poll().unwrap());
    }
    lines
}

const AGENT: &str =
    "[   29.600000] cocoon-agent[418]: cocoon-agent: ready tee=sim listen=0.0.0.0:8443 engine=none";

fn interrupted() -> Vec<u8> {
    let (a, b) = AGENT.split_at(60);
    format!(
        "[    0.000000] Linux version 6.12\r\n\
         [    2.100000] systemd[1]: Started journald.\r\n\
         {a}[   30.100000] virtio_net virtio0 enp0s3: renamed\r\n\
         [   30.200000] random: crng init done\r\n\
         {b}\r\n\
         ordinary [1.0] text [    7.000000] and more\r\n\
         tail\r\n"
    )
    .into_bytes()
}

#[test]
fn the_script_and_the_watch_agree() {
    let input = interrupted();
    let want = script(&input);
    assert!(want.iter().any(|l| l == AGENT), "{want:#?}");
    assert!(want.contains(&"[   30.100000] virtio_net virtio0 enp0s3: renamed".to_string()));
    for chunk in [1, 7, 64, input.len()] {
        assert_eq!(watch(&input, chunk), want, "in pieces of {chunk} bytes");
    }
}

#[test]
fn a_log_without_interruptions_is_only_stripped_of_carriage_returns() {
    let log = format!(
        "[    1.000000] kernel: a\r\nline two [1.0]\r\n{AGENT}\r\n\r\n[    2.000000] b\r\nlast"
    );
    let want: Vec<String> = log.replace('\r', "").lines().map(str::to_string).collect();
    assert_eq!(script(log.as_bytes()), want);
    // The watch gives complete lines only: all but the unterminated last.
    assert_eq!(watch(log.as_bytes(), 5), want[..want.len() - 1]);
}
