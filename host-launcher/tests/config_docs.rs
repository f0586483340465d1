//! Every worker-config field has a doc comment in `src/config.rs`, and
//! `host-launcher/README.md`'s field table has one row per field carrying that doc
//! comment's text; no row names a field that does not exist.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

/// Struct (or enum) in config.rs -> the TOML table its fields live in.
const TABLES: &[(&str, &str)] = &[
    ("WorkerConfig", ""),
    ("DataDisk", "data_disk."),
    ("Pricing", "pricing."),
    ("Ports", "ports."),
    ("QuoteGeneration", "quote_generation."),
    ("RestartPolicy", "restart."),
    ("DevSettings", "dev."),
];

/// `key -> doc text` from the source.
fn fields() -> BTreeMap<String, String> {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs")).unwrap();
    let mut out = BTreeMap::new();
    let mut prefix: Option<&str> = None;
    let mut doc: Vec<String> = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some(name) = t
            .strip_prefix("pub struct ")
            .or_else(|| t.strip_prefix("pub enum "))
            .and_then(|r| r.strip_suffix(" {"))
        {
            prefix = TABLES.iter().find(|(s, _)| *s == name).map(|(_, p)| *p);
            doc.clear();
            continue;
        }
        if t == "}" && !line.starts_with("    ") {
            prefix = None;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if t.starts_with("#[") {
            continue;
        }
        if let Some(p) = prefix {
            let decl = t.strip_prefix("pub ").unwrap_or(t);
            if let Some((name, _)) = decl.split_once(": ") {
                if name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                {
                    assert!(!doc.is_empty(), "config field {p}{name} has no doc comment");
                    out.insert(format!("{p}{name}"), doc.join(" "));
                }
            }
        }
        doc.clear();
    }
    out
}

/// `key -> description` rows of the README's field table (`| \`key\` | ... |`).
fn readme_rows() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // Only the "## Worker config" section; other tables (preflight ids) are not fields.
    let section = text
        .split("\n## Worker config")
        .nth(1)
        .expect("README has a Worker config section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("| `")?;
            let (key, rest) = rest.split_once("` |")?;
            let cells: Vec<&str> = rest.split(" | ").collect();
            Some((
                key.to_string(),
                cells.last()?.trim_end_matches(" |").trim().to_string(),
            ))
        })
        .collect()
}

#[test]
fn every_field_is_documented_in_source_and_readme() {
    let fields = fields();
    assert!(
        fields.len() >= 30,
        "parsed only {} fields: {fields:?}",
        fields.len()
    );
    for key in [
        "image_dir",
        "gpus",
        "owner_address",
        "pricing.nanoton_per_token",
        "quote_generation.cid",
        "restart.max_fast_failures",
    ] {
        assert!(fields.contains_key(key), "parser missed {key}");
    }
    let rows = readme_rows();
    for (key, doc) in &fields {
        let row = rows
            .get(key)
            .unwrap_or_else(|| panic!("README.md has no row for `{key}`"));
        assert!(
            row.contains(doc.as_str()),
            "README row for `{key}` does not carry its doc comment:\n  row: {row}\n  doc: {doc}"
        );
    }
    for key in rows.keys() {
        assert!(
            fields.contains_key(key) || key == "quote_generation.type",
            "README.md documents `{key}`, which is not a config field"
        );
    }
}
