//! Settings the GPU owner's host supplies at launch: `cocoon-host` writes them from its
//! worker config and QEMU hands them to the guest as fw_cfg `opt/cocoon/worker.toml`.
//!
//! The image's config stays the one source of truth for everything that decides what
//! the worker *is* (TEE, engine, model, limits); the host may set only who is paid and
//! at what price. Those values are merged into the config text *before* it is measured,
//! so the `config` runtime event and the `config_toml` a verifier reads are the settings
//! in force, host part included: a proxy sees the price and payout address it would be
//! paying under, bound to the quote, and an untrusted host cannot change them unseen.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::accounting::Pricing;

/// Largest host settings file read (the real one is a few hundred bytes).
pub const MAX_HOST_SETTINGS_BYTES: u64 = 64 * 1024;

/// `[host_settings]`: where the host's settings come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettingsConfig {
    /// File with the host's `owner_address` and `[pricing]` (the image: `/sys/firmware/qemu_fw_cfg/by_name/opt/cocoon/worker.toml/raw`); its values replace this file's before the config is measured.
    pub path: PathBuf,
    /// Refuse to start when the file is missing (a production worker must be told whom to pay); when false a missing file keeps this file's values (logged).
    #[serde(default)]
    pub required: bool,
}

/// The host's file. Only these keys are accepted: anything else is refused, so a host
/// cannot reach a setting that changes what the worker is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSettings {
    /// The host-side instance index (names, ports, vsock CID on the host); logged only.
    instance: Option<u32>,
    owner_address: Option<String>,
    pricing: Option<Pricing>,
}

/// What reading the host's file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOutcome {
    /// The settings were merged; the config text now carries them.
    Applied { instance: Option<u32> },
    /// No file and not required: the image's values stand.
    Missing,
}

fn refused(path: &Path, why: impl Into<String>) -> ConfigError {
    ConfigError::HostSettings {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Reads the host's file (bounded) or `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<String>, ConfigError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refused(path, e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_HOST_SETTINGS_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| refused(path, e.to_string()))?;
    if bytes.len() as u64 > MAX_HOST_SETTINGS_BYTES {
        return Err(refused(
            path,
            format!("larger than {MAX_HOST_SETTINGS_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| refused(path, "not UTF-8"))
}

/// The config text with the host's values in place of the image's: `owner_address` set,
/// `[pricing]` replaced whole (so no image value mixes into the host's split). The rest
/// of the text, comments included, is kept byte for byte, so a verifier can diff it
/// against the published image config.
pub fn merge(base: &str, host: &str, path: &Path) -> Result<(String, Option<u32>), ConfigError> {
    let settings: HostSettings = toml::from_str(host).map_err(|e| {
        let ConfigError::Parse { field, message } = ConfigError::from_toml(host, &e) else {
            return refused(path, e.message());
        };
        refused(path, format!("field `{field}`: {message}"))
    })?;
    if let Some(a) = &settings.owner_address {
        crate::ton::parse_owner_address(a)
            .map_err(|e| refused(path, format!("field `owner_address`: {e}")))?;
    }
    if let Some(p) = &settings.pricing {
        p.validate()
            .map_err(|e| refused(path, format!("field `pricing`: {e}")))?;
    }
    let mut doc: toml_edit::DocumentMut =
        base.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Parse {
                field: "<file>".into(),
                message: e.message().to_string(),
            })?;
    let mut changed = Vec::new();
    // Values are replaced in place, so the image's comments and order stay.
    if let Some(a) = settings.owner_address {
        let v = toml_edit::value(a.trim());
        match doc.get_mut("owner_address") {
            Some(item) => *item = v,
            None => {
                doc.insert("owner_address", v);
            }
        }
        changed.push("owner_address");
    }
    if let Some(p) = settings.pricing {
        let mut fresh = toml_edit::Table::new();
        let t = match doc
            .get_mut("pricing")
            .and_then(toml_edit::Item::as_table_mut)
        {
            Some(t) => {
                t.clear();
                t
            }
            None => &mut fresh,
        };
        t.insert(
            "nanoton_per_token",
            toml_edit::value(i64_of(p.nanoton_per_token, path)?),
        );
        t.insert(
            "worker_share_bps",
            toml_edit::value(i64::from(p.worker_share_bps)),
        );
        t.insert(
            "proxy_share_bps",
            toml_edit::value(i64::from(p.proxy_share_bps)),
        );
        if !fresh.is_empty() {
            doc.insert("pricing", toml_edit::Item::Table(fresh));
        }
        changed.push("pricing");
    }
    let mut text = doc.to_string();
    if !changed.is_empty() {
        text.push_str(&format!(
            "\n# host_settings: {} set from {}\n",
            changed.join(", "),
            path.display()
        ));
    }
    Ok((text, settings.instance))
}

fn i64_of(v: u64, path: &Path) -> Result<i64, ConfigError> {
    i64::try_from(v).map_err(|_| {
        refused(
            path,
            "field `pricing.nanoton_per_token`: larger than TOML integers allow",
        )
    })
}
