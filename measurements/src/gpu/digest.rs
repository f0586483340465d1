//! The digest that binds GPU evidence to an RA-TLS quote.
//!
//! The agent puts SHA-384 of the evidence JSON's canonical form into the claims
//! (`gpu_evidence_digest`, hence REPORTDATA); a verifier recomputes it from the
//! `gpu_evidence` the response carries. The canonical form is compact JSON with object
//! keys sorted (byte order), recursively, so the digest depends neither on key order
//! nor on either side's JSON library settings.

use crate::digest::Digest48;

/// Canonical JSON text of `v` (compact, object keys sorted).
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

/// SHA-384 of [`canonical_json`]: the claims' `gpu_evidence_digest`.
pub fn evidence_digest(v: &serde_json::Value) -> Digest48 {
    Digest48::sha384(canonical_json(v).as_bytes())
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // A JSON string literal of the key, escaped as serde_json escapes.
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(val, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sorted_compact_and_digest_is_sha384_of_it() {
        let v = serde_json::json!([{"nonce": "00", "arch": "HOPPER", "x": {"b": 1, "a": [true, null, "\u{1}"]}}]);
        let text = r#"[{"arch":"HOPPER","nonce":"00","x":{"a":[true,null,"\u0001"],"b":1}}]"#;
        assert_eq!(canonical_json(&v), text);
        assert_eq!(evidence_digest(&v), Digest48::sha384(text.as_bytes()));
        // Key order in the input text does not matter.
        let w: serde_json::Value = serde_json::from_str(
            r#"[{"x":{"a":[true,null,"\u0001"],"b":1},"nonce":"00","arch":"HOPPER"}]"#,
        )
        .unwrap();
        assert_eq!(evidence_digest(&w), evidence_digest(&v));
    }
}
