//! The runtime (RTMR3) event log: what the agent measured after boot.
//!
//! ```text
//! digest = SHA-384( "cocoon-rtmr3-event/v1" || 0x00 || name || 0x00 || payload )
//! rtmr   = [0; 48];  for e in log { rtmr = SHA-384(rtmr || e.digest) }
//! ```
//!
//! The label keeps these digests apart from every other SHA-384 use in a TD; the NUL
//! after the name (names never contain NUL) keeps `("ab", "c")` and `("a", "bc")`
//! apart. The replay is `Claims::runtime_event_log_digest`, and the quote's RTMR3
//! when the register was really extended.
#![deny(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha384};

use crate::digest::Digest48;

/// Domain-separation label of a runtime event digest.
pub const RUNTIME_EVENT_LABEL: &[u8] = b"cocoon-rtmr3-event/v1";
/// SHA-256 of the agent's config file bytes (32 bytes).
pub const EVENT_CONFIG: &str = "config";
/// UTF-8 model digest string: `verity:<hex>`, `manifest-sha256:<hex>` or `none`.
pub const EVENT_MODEL: &str = "model";
/// The engine's argv joined with 0x00.
pub const EVENT_ENGINE_CMDLINE: &str = "engine-cmdline";

/// Longest event name.
pub const MAX_NAME_LEN: usize = 64;
/// Largest event payload.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024;
/// Most events a verifier replays.
pub const MAX_RUNTIME_EVENTS: usize = 1024;

/// One measured runtime event. JSON: `{"name", "payload_hex", "digest"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeEvent {
    pub name: String,
    #[serde(rename = "payload_hex", with = "hex_vec")]
    pub payload: Vec<u8>,
    /// The digest the agent extended RTMR3 with (recorded; see [`RuntimeEvent::check_digest`]).
    pub digest: Digest48,
}

/// Why a runtime event log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeLogError {
    #[error("runtime event {index} ({name:?}): recorded digest {recorded} is not the digest of its name and payload ({computed})")]
    DigestMismatch {
        index: usize,
        name: String,
        /// Hex of the digest in the log.
        recorded: String,
        /// Hex of the digest of name and payload.
        computed: String,
    },
    #[error("runtime event {index}: name {why}")]
    BadName { index: usize, why: String },
    #[error(
        "runtime event {index} ({name:?}): payload is {len} bytes, more than {MAX_PAYLOAD_LEN}"
    )]
    PayloadTooLarge {
        index: usize,
        name: String,
        len: usize,
    },
    #[error("runtime event log has {0} events, more than {MAX_RUNTIME_EVENTS}")]
    TooManyEvents(usize),
}

impl RuntimeEvent {
    /// An event with its digest computed from `name` and `payload`.
    pub fn new(name: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        let name = name.into();
        let payload = payload.into();
        let digest = Self::compute_digest(&name, &payload);
        RuntimeEvent {
            name,
            payload,
            digest,
        }
    }

    /// The digest of a name and payload (module documentation).
    pub fn compute_digest(name: &str, payload: &[u8]) -> Digest48 {
        let mut h = Sha384::new();
        h.update(RUNTIME_EVENT_LABEL);
        h.update([0u8]);
        h.update(name.as_bytes());
        h.update([0u8]);
        h.update(payload);
        Digest48(h.finalize().into())
    }

    /// The digest recomputed from this event's name and payload.
    pub fn digest(&self) -> Digest48 {
        Self::compute_digest(&self.name, &self.payload)
    }

    /// Ok when the name is well-formed, the payload within limits and the recorded
    /// digest is the digest of name and payload. `index` only labels the error.
    pub fn check(&self, index: usize) -> Result<(), RuntimeLogError> {
        let bad = |why: String| Err(RuntimeLogError::BadName { index, why });
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return bad(format!(
                "is {} bytes (must be 1..={MAX_NAME_LEN})",
                self.name.len()
            ));
        }
        if self.name.contains('\0') {
            return bad(format!("{:?} contains NUL", self.name));
        }
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(RuntimeLogError::PayloadTooLarge {
                index,
                name: self.name.clone(),
                len: self.payload.len(),
            });
        }
        self.check_digest(index)
    }

    /// Ok when the recorded digest is the digest of name and payload.
    pub fn check_digest(&self, index: usize) -> Result<(), RuntimeLogError> {
        let computed = self.digest();
        if computed == self.digest {
            Ok(())
        } else {
            Err(RuntimeLogError::DigestMismatch {
                index,
                name: self.name.clone(),
                recorded: self.digest.to_hex(),
                computed: computed.to_hex(),
            })
        }
    }
}

/// Replay the recorded digests: the value RTMR3 has after these extensions.
pub fn replay(log: &[RuntimeEvent]) -> Digest48 {
    Digest48::replay(log.iter().map(|e| &e.digest))
}

/// Check every event ([`RuntimeEvent::check`]) and replay: `Ok(replay)` when all
/// pass, otherwise every failure.
pub fn verify_log(log: &[RuntimeEvent]) -> Result<Digest48, Vec<RuntimeLogError>> {
    if log.len() > MAX_RUNTIME_EVENTS {
        return Err(vec![RuntimeLogError::TooManyEvents(log.len())]);
    }
    let errors: Vec<_> = log
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.check(i).err())
        .collect();
    if errors.is_empty() {
        Ok(replay(log))
    } else {
        Err(errors)
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent vector: `printf 'cocoon-rtmr3-event/v1\0model\0none' | sha384sum`.
    #[test]
    fn digest_definition() {
        let e = RuntimeEvent::new(EVENT_MODEL, b"none".to_vec());
        let mut pre = RUNTIME_EVENT_LABEL.to_vec();
        pre.extend_from_slice(b"\0model\0none");
        assert_eq!(e.digest, Digest48::sha384(&pre));
        assert_eq!(
            e.digest.to_hex(),
            "f7a160a9efd81611680fe641cf1fc9c0e27ca8bb825731389e94033be880c92b8e1f80d3207ab227edd104bf953256b2"
        );
    }

    #[test]
    fn replay_matches_register_extension() {
        let log = vec![
            RuntimeEvent::new(EVENT_CONFIG, [7u8; 32].to_vec()),
            RuntimeEvent::new(EVENT_MODEL, b"none".to_vec()),
            RuntimeEvent::new(EVENT_ENGINE_CMDLINE, b"vllm\0serve".to_vec()),
        ];
        let mut r = Digest48::ZERO;
        for e in &log {
            r.extend(&e.digest);
        }
        assert_eq!(replay(&log), r);
        assert_eq!(verify_log(&log).unwrap(), r);
        assert_eq!(replay(&[]), Digest48::ZERO);
    }

    #[test]
    fn tampering_is_named() {
        let mut log = vec![
            RuntimeEvent::new(EVENT_CONFIG, [7u8; 32].to_vec()),
            RuntimeEvent::new(EVENT_MODEL, b"none".to_vec()),
        ];
        log[1].payload = b"verity:00".to_vec();
        let errs = verify_log(&log).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(matches!(
            &errs[0],
            RuntimeLogError::DigestMismatch { index: 1, name, .. } if name == "model"
        ));
        log[0].name = "a\0b".into();
        assert_eq!(verify_log(&log).unwrap_err().len(), 2);
        // Name/payload boundary is not ambiguous.
        assert_ne!(
            RuntimeEvent::compute_digest("ab", b"c"),
            RuntimeEvent::compute_digest("a", b"bc")
        );
    }

    #[test]
    fn json_shape() {
        let e = RuntimeEvent::new("engine-cmdline", b"a\0b".to_vec());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["payload_hex"], "610062");
        assert_eq!(v["digest"], e.digest.to_hex());
        assert_eq!(v.as_object().unwrap().len(), 3);
        assert_eq!(serde_json::from_value::<RuntimeEvent>(v).unwrap(), e);
    }
}
