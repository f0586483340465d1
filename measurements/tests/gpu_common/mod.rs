//! Helpers shared by the `cocoon-measure gpu` integration tests (`gpu_cli`,
//! `gpu_cli_policy`). Needs the including test to declare `mod common;` too.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common;

/// 2025-01-01T00:00:00Z: inside the device chain (2022-03-01..9999) and the RIM
/// chain (2023-06-23..2025-06-22) windows.
pub const AT: &str = "1735689600";
pub const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

/// A shared test vector's path (leaked: tests build argument lists from it).
pub fn nv(name: &str) -> &'static str {
    let path = common::testdata(&format!("nvidia/{name}"));
    Box::leak(path.to_str().unwrap().to_string().into_boxed_str())
}

pub fn report() -> &'static str {
    nv("hopperAttestationReport.txt")
}
pub fn chain() -> &'static str {
    nv("hopperCertChain.txt")
}
pub fn rim() -> &'static str {
    nv("1010_0200_882_96005E0001_PROD.swidtag")
}

/// Run `cocoon-measure --json gpu verify ARGS`; return (exit code, JSON).
pub fn verify<S: AsRef<OsStr>>(args: &[S]) -> (i32, Value) {
    let out = common::cocoon_measure()
        .args(["--json", "gpu", "verify"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"));
    (out.status.code().unwrap(), json)
}

fn path_str(path: impl AsRef<Path>) -> String {
    path.as_ref().to_str().unwrap().to_string()
}

/// The argument list of `gpu verify` on the real Hopper vectors, in this order:
/// `--report R --chain C [--rim F]... [--nonce N | --tls-spki K] --at T
/// [--policy P] [--cc-mode M]`. [`Args::real`] starts from the real report and
/// chain, `--nonce NONCE` and `--at AT`; each part can be replaced or dropped.
#[derive(Clone, Debug)]
pub struct Args {
    report: String,
    chain: String,
    rims: Vec<String>,
    nonce: Option<String>,
    tls_spki: Option<String>,
    at: String,
    policy: Option<String>,
    cc_mode: Option<String>,
}

impl Args {
    /// `--report report() --chain chain() --nonce NONCE --at AT`.
    pub fn real() -> Self {
        Self {
            report: report().to_string(),
            chain: chain().to_string(),
            rims: Vec::new(),
            nonce: Some(NONCE.to_string()),
            tls_spki: None,
            at: AT.to_string(),
            policy: None,
            cc_mode: None,
        }
    }

    pub fn report(mut self, path: impl AsRef<Path>) -> Self {
        self.report = path_str(path);
        self
    }

    pub fn chain(mut self, path: impl AsRef<Path>) -> Self {
        self.chain = path_str(path);
        self
    }

    /// Add one `--rim` (repeatable).
    pub fn rim(mut self, path: impl AsRef<Path>) -> Self {
        self.rims.push(path_str(path));
        self
    }

    pub fn nonce(mut self, nonce: &str) -> Self {
        self.nonce = Some(nonce.to_string());
        self
    }

    /// Drop `--nonce`.
    pub fn no_nonce(mut self) -> Self {
        self.nonce = None;
        self
    }

    /// `--tls-spki PATH` in place of `--nonce`.
    pub fn tls_spki(mut self, path: impl AsRef<Path>) -> Self {
        self.nonce = None;
        self.tls_spki = Some(path_str(path));
        self
    }

    pub fn at(mut self, at: &str) -> Self {
        self.at = at.to_string();
        self
    }

    pub fn policy(mut self, path: impl AsRef<Path>) -> Self {
        self.policy = Some(path_str(path));
        self
    }

    pub fn cc_mode(mut self, mode: &str) -> Self {
        self.cc_mode = Some(mode.to_string());
        self
    }

    pub fn to_vec(&self) -> Vec<String> {
        let mut v = vec![
            "--report".to_string(),
            self.report.clone(),
            "--chain".to_string(),
            self.chain.clone(),
        ];
        for rim in &self.rims {
            v.extend(["--rim".to_string(), rim.clone()]);
        }
        if let Some(nonce) = &self.nonce {
            v.extend(["--nonce".to_string(), nonce.clone()]);
        }
        if let Some(spki) = &self.tls_spki {
            v.extend(["--tls-spki".to_string(), spki.clone()]);
        }
        v.extend(["--at".to_string(), self.at.clone()]);
        if let Some(policy) = &self.policy {
            v.extend(["--policy".to_string(), policy.clone()]);
        }
        if let Some(mode) = &self.cc_mode {
            v.extend(["--cc-mode".to_string(), mode.clone()]);
        }
        v
    }

    /// Run `cocoon-measure --json gpu verify` with these arguments.
    pub fn verify(&self) -> (i32, Value) {
        verify(&self.to_vec())
    }
}

pub fn codes(json: &Value) -> Vec<String> {
    json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

pub fn indices(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

pub fn pem_blocks(text: &str) -> Vec<String> {
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b.trim().to_string() + "\n")
        .collect()
}

pub fn write(dir: &tempfile::TempDir, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A policy file whose `[gpu]` table is `gpu_table` (TDX owned elsewhere).
pub fn policy_file(dir: &tempfile::TempDir, gpu_table: &str) -> PathBuf {
    write(
        dir,
        "policy.toml",
        format!("[tdx]\nowned_elsewhere = true\n\n[gpu]\n{gpu_table}"),
    )
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
