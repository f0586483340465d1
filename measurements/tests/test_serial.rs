//! `tools/read-test-serial`, which `tools/check-boot` relies on to take the test UKI's event
//! log off the serial console: kernel messages that land inside /init's lines are cut out
//! and the line joined back, and damage it cannot undo is named instead of decoded.
//! The serial logs are built here from the real boot fixture (`fixtures/swtpm-uki-boot/`),
//! in the shape a real boot prints (CRLF, base64 wrapped at 76, printk records
//! "[    2.322390] text").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::swtpm_fixture as fixture;

/// The lines /init prints, each without its line end.
fn init_lines() -> Vec<String> {
    let log = std::fs::read(fixture("eventlog.bin")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(log);
    let mut lines = vec!["=== EVENTLOG BEGIN".to_string()];
    lines.extend(
        b64.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap()),
    );
    lines.push("=== EVENTLOG END".into());
    let pcrs = std::fs::read_to_string(fixture("pcr-sha384.txt")).unwrap();
    lines.extend(pcrs.lines().map(str::to_string));
    lines.push("=== DONE".into());
    lines
}

const KMSG: &str = "[    2.322390] tsc: Refined TSC clocksource calibration: 2100.001 MHz\r\n";
const KMSG2: &str = "[   12.000001] i2c i2c-0: Memory type 0x07 not supported yet\r\n";

/// A serial log: boot messages around `lines`, each ended by CRLF.
fn serial(lines: &[String]) -> String {
    let mut s = String::from("[    0.000000] Linux version 6.12.117+deb13-amd64\r\n");
    s.push_str("[    2.172398] Run /init as init process\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("[    2.411649] reboot: Power down\r\n");
    s
}

struct Read {
    ok: bool,
    stderr: String,
    eventlog: Option<Vec<u8>>,
    pcrs: Option<String>,
}

fn read(serial_text: &str) -> Read {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serial.log");
    std::fs::write(&log, serial_text).unwrap();
    let out = dir.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/read-test-serial");
    let o = Command::new(script).arg(&log).arg(&out).output().unwrap();
    Read {
        ok: o.status.success(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        eventlog: std::fs::read(out.join("eventlog.bin")).ok(),
        pcrs: std::fs::read_to_string(out.join("pcr-sha384.txt")).ok(),
    }
}

fn assert_fixture_bytes(r: &Read) {
    assert!(r.ok, "read-test-serial failed: {}", r.stderr);
    assert_eq!(
        r.eventlog.as_deref(),
        Some(std::fs::read(fixture("eventlog.bin")).unwrap().as_slice())
    );
    assert_eq!(
        r.pcrs.as_deref(),
        Some(
            std::fs::read_to_string(fixture("pcr-sha384.txt"))
                .unwrap()
                .as_str()
        )
    );
}

/// Splits line `i` after `at` characters and puts `kmsg` (ending in its own newline) there,
/// as the console shows a printk that arrived while /init was writing that line.
fn split_line(lines: &mut [String], i: usize, at: usize, kmsg: &str) {
    let (a, b) = lines[i].split_at(at);
    lines[i] = format!("{a}{kmsg}{b}");
}

#[test]
fn a_clean_log_gives_the_fixture_bytes() {
    assert_fixture_bytes(&read(&serial(&init_lines())));
}

#[test]
fn kernel_messages_inside_lines_are_cut_and_the_lines_joined() {
    let mut lines = init_lines();
    // Inside a base64 line (the CI failure), two records back to back inside another,
    // one right after a line's start, inside a PCR line and inside the END marker.
    split_line(&mut lines, 3, 40, KMSG);
    split_line(&mut lines, 10, 75, &format!("{KMSG}{KMSG2}"));
    split_line(&mut lines, 20, 1, KMSG2);
    let end = lines.iter().position(|l| l == "=== EVENTLOG END").unwrap();
    split_line(&mut lines, end, 7, KMSG);
    split_line(&mut lines, end + 5, 30, KMSG);
    assert_fixture_bytes(&read(&serial(&lines)));
}

#[test]
fn kernel_messages_between_lines_are_dropped() {
    let mut lines = init_lines();
    lines.insert(5, KMSG.trim_end().to_string());
    lines.insert(30, KMSG2.trim_end().to_string());
    let pcr = lines
        .iter()
        .position(|l| l.starts_with("PCR-SHA384 3 "))
        .unwrap();
    lines.insert(pcr, KMSG.trim_end().to_string());
    assert_fixture_bytes(&read(&serial(&lines)));
}

#[test]
fn a_damaged_base64_line_is_named_not_decoded() {
    let mut lines = init_lines();
    lines[7].remove(10); // a lost character: 75 characters
    let r = read(&serial(&lines));
    assert!(!r.ok);
    assert!(r.stderr.contains("event log line 7 of"), "{}", r.stderr);
    assert!(r.stderr.contains("75 characters"), "{}", r.stderr);
    assert!(r.eventlog.is_none(), "nothing decoded from a damaged log");

    let mut lines = init_lines();
    lines[4].replace_range(20..21, "#");
    let r = read(&serial(&lines));
    assert!(!r.ok);
    assert!(r.stderr.contains("event log line 4 of"), "{}", r.stderr);
}

fn without(lines: &[String], prefix: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with(prefix))
        .cloned()
        .collect()
}

fn assert_fails_naming(r: &Read, what: &str) {
    assert!(!r.ok, "accepted a log with {what} wrong");
    assert!(r.stderr.contains(what), "{what} not named in: {}", r.stderr);
}

#[test]
fn missing_parts_are_named() {
    let lines = init_lines();
    assert_fails_naming(&read(&serial(&without(&lines, "=== DONE"))), "'=== DONE'");
    let no_end = without(&lines, "=== EVENTLOG END");
    assert_fails_naming(&read(&serial(&no_end)), "'=== EVENTLOG END'");
    let no_pcr5 = without(&lines, "PCR-SHA384 5 ");
    assert_fails_naming(&read(&serial(&no_pcr5)), "PCR line 6 is damaged");

    let mut short_pcr = lines.clone();
    let pcr9 = short_pcr
        .iter()
        .position(|l| l.starts_with("PCR-SHA384 9 "));
    short_pcr[pcr9.unwrap()].pop();
    assert_fails_naming(&read(&serial(&short_pcr)), "PCR line 10 is damaged");
}
