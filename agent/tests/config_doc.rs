//! `agent/README.md`'s config table lists exactly the config structs' fields, each
//! with its doc comment as the description, so the documentation cannot drift from
//! the code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::Path;

/// Struct -> TOML table path, for every struct the config file deserialises into.
const TABLES: &[(&str, &str, &str)] = &[
    ("src/config.rs", "AgentConfig", ""),
    ("src/config.rs", "ModelConfig", "model"),
    ("src/config.rs", "Limits", "limits"),
    ("src/config.rs", "GpuConfig", "gpu"),
    ("src/config.rs", "TlsConfig", "tls"),
    ("src/config/tee.rs", "TeeConfig", "tee"),
    ("src/config/tee.rs", "SimTeeConfig", "tee.sim"),
    ("src/config/tee.rs", "TdxTeeConfig", "tee.tdx"),
    ("src/config/engine.rs", "EngineConfig", "engine"),
    ("src/config/engine.rs", "KnownAnswer", "engine.known_answer"),
    ("src/config/engine.rs", "RestartPolicy", "engine.restart"),
    ("src/accounting/pricing.rs", "Pricing", "pricing"),
    ("src/config/host.rs", "HostSettingsConfig", "host_settings"),
];

/// `field -> doc comment (lines joined with spaces)` of `pub struct name` in `src`.
fn struct_fields(src: &str, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    let mut doc: Vec<String> = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if !inside {
            if t.starts_with(&format!("pub struct {name} ")) || t == format!("pub struct {name} {{")
            {
                inside = true;
                doc.clear();
            }
            continue;
        }
        if line.starts_with('}') {
            break;
        }
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
        } else if let Some(rest) = t.strip_prefix("pub ") {
            let field = rest.split(':').next().unwrap().trim().to_string();
            assert!(!doc.is_empty(), "{name}.{field} has no doc comment");
            out.insert(field, doc.join(" "));
            doc.clear();
        }
    }
    assert!(!out.is_empty(), "struct {name} not found");
    out
}

fn code_fields() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = BTreeMap::new();
    for (file, name, table) in TABLES {
        let src = std::fs::read_to_string(root.join(file)).unwrap();
        for (field, doc) in struct_fields(&src, name) {
            let key = if table.is_empty() {
                field
            } else {
                format!("{table}.{field}")
            };
            all.insert(key, doc);
        }
    }
    all
}

/// Rows `| \`key\` | default | description |` of the README's `## Configuration` table.
fn readme_fields() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = text
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a `## Configuration` section");
    let section = section.split("\n## ").next().unwrap();
    let mut out = BTreeMap::new();
    for line in section.lines() {
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let key = rest.split('`').next().unwrap().to_string();
        let cells: Vec<&str> = line.trim_end_matches('|').split(" | ").collect();
        let desc = cells.last().unwrap().trim().to_string();
        assert!(
            out.insert(key.clone(), desc).is_none(),
            "{key} listed twice"
        );
    }
    out
}

#[test]
fn readme_table_matches_the_config_structs() {
    let code = code_fields();
    let readme = readme_fields();
    let missing: Vec<_> = code.keys().filter(|k| !readme.contains_key(*k)).collect();
    let extra: Vec<_> = readme.keys().filter(|k| !code.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "fields missing from agent/README.md: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "README lists fields the config lacks: {extra:?}"
    );
    for (key, doc) in &code {
        assert_eq!(
            &readme[key], doc,
            "README description of `{key}` differs from its doc comment"
        );
    }
}

#[test]
fn example_configs_are_valid() {
    for name in ["dev-sim.toml", "local-vllm.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        cocoon_agent::config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
