//! The TDX backend against fixture trees: configfs-tsm protocol (with a fake kernel
//! playing configfs' part on a temp directory), RTMR3 sysfs file, CCEL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::cell::Cell;
use std::path::{Path, PathBuf};

use cocoon_agent::config::TdxTeeConfig;
use cocoon_agent::tee::tdx::{request_quote, TdxBackend, TsmFs, RTMR3_FILE};
use cocoon_agent::tee::{BootLogFormat, TeeBackend, TeeError};
use cocoon_measurements::Digest48;

/// configfs' behaviour on a plain directory: `mkdir` creates the attributes, writes
/// bump `generation`, reading `outblob` produces a "quote" over `inblob`, `rmdir`
/// removes everything. Knobs inject the failures the protocol must catch.
#[derive(Default)]
struct FakeKernel {
    provider: Option<&'static str>,
    /// Simulates a second writer touching `inblob` while the quote is produced.
    race_during_outblob: bool,
    removed: Cell<usize>,
}

fn bump(dir: &Path) {
    let g: u64 = std::fs::read_to_string(dir.join("generation"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::fs::write(dir.join("generation"), format!("{}\n", g + 1)).unwrap();
}

impl TsmFs for FakeKernel {
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir(path)?;
        std::fs::write(
            path.join("provider"),
            format!("{}\n", self.provider.unwrap_or("tdx_guest")),
        )?;
        std::fs::write(path.join("generation"), "0\n")?;
        std::fs::write(path.join("inblob"), b"")?;
        Ok(())
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        self.removed.set(self.removed.get() + 1);
        std::fs::remove_dir_all(path)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if path.file_name().unwrap() == "outblob" {
            let dir = path.parent().unwrap();
            let inblob = std::fs::read(dir.join("inblob"))?;
            if self.race_during_outblob {
                bump(dir);
            }
            let mut quote = b"FAKEQUOTE".to_vec();
            quote.extend_from_slice(&inblob);
            return Ok(quote);
        }
        std::fs::read(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        std::fs::write(path, data)?;
        bump(path.parent().unwrap());
        Ok(())
    }
}

fn report_data() -> [u8; 64] {
    let mut r = [0u8; 64];
    for (i, b) in r.iter_mut().enumerate() {
        *b = i as u8;
    }
    r
}

#[test]
fn configfs_tsm_quote_covers_our_report_data_and_cleans_up() {
    let root = tempfile::tempdir().unwrap();
    let k = FakeKernel::default();
    let quote = request_quote(&k, root.path(), "q0", &report_data()).unwrap();
    assert_eq!(&quote[..9], b"FAKEQUOTE");
    assert_eq!(&quote[9..], &report_data()[..]);
    assert_eq!(k.removed.get(), 1);
    assert!(!root.path().join("q0").exists());
}

#[test]
fn generation_change_during_quote_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let k = FakeKernel {
        race_during_outblob: true,
        ..Default::default()
    };
    let e = request_quote(&k, root.path(), "q1", &report_data()).unwrap_err();
    assert!(matches!(e, TeeError::Tsm { .. }), "{e}");
    assert!(
        e.to_string().contains("generation changed from 1 to 2"),
        "{e}"
    );
    // The entry is removed on the error path too.
    assert_eq!(k.removed.get(), 1);
    assert!(!root.path().join("q1").exists());
}

#[test]
fn wrong_provider_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let k = FakeKernel {
        provider: Some("sev_guest"),
        ..Default::default()
    };
    let e = request_quote(&k, root.path(), "q2", &report_data()).unwrap_err();
    assert!(e.to_string().contains("sev_guest"), "{e}");
}

#[test]
fn existing_entry_is_not_reused() {
    // Someone else's entry with our name: mkdir fails and we do not touch it.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("q3")).unwrap();
    let k = FakeKernel::default();
    let e = request_quote(&k, root.path(), "q3", &report_data()).unwrap_err();
    assert!(e.to_string().contains("mkdir"), "{e}");
    assert_eq!(k.removed.get(), 0);
    assert!(root.path().join("q3").exists());
}

fn backend(root: &Path) -> TdxBackend {
    TdxBackend::new(TdxTeeConfig {
        configfs_tsm_dir: root.join("tsm/report"),
        device: root.join("dev/tdx_guest"),
        measurements_dir: root.join("measurements"),
        acpi_tables_dir: root.join("acpi/tables"),
    })
}

#[test]
fn rtmr3_is_extended_through_sysfs_when_the_file_exists() {
    let root = tempfile::tempdir().unwrap();
    let b = backend(root.path());
    let d = Digest48::sha384(b"event");
    // Kernel without the interface: not extended, and no file is created.
    assert!(!b.extend_rtmr3(&d).unwrap());
    assert!(!root.path().join("measurements").join(RTMR3_FILE).exists());

    std::fs::create_dir_all(root.path().join("measurements")).unwrap();
    let file: PathBuf = root.path().join("measurements").join(RTMR3_FILE);
    std::fs::write(&file, b"").unwrap();
    assert!(b.extend_rtmr3(&d).unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), d.as_bytes().to_vec());
}

#[test]
fn quote_without_any_interface_names_both_paths() {
    let root = tempfile::tempdir().unwrap();
    let e = backend(root.path()).quote(&report_data()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("tsm/report") && msg.contains("tdx_guest"),
        "{msg}"
    );
}

#[test]
fn ccel_log_is_served_when_present() {
    let root = tempfile::tempdir().unwrap();
    let b = backend(root.path());
    assert!(b.boot_event_log().is_none());
    let data = root.path().join("acpi/tables/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("CCEL"), b"\x01\x02log").unwrap();
    let log = b.boot_event_log().unwrap();
    assert_eq!(log.format, BootLogFormat::Ccel);
    assert_eq!(log.bytes, b"\x01\x02log");
    assert_eq!(b.kind().as_str(), "tdx");
    assert!(b.collateral().is_none());
}
