//! The `usage` object of an OpenAI-compatible response: what the engine says it
//! processed, and the only source of the token counts a receipt charges for.
//!
//! Shape (OpenAI API reference, "The chat completion object" / "The completion
//! object"; vLLM's `UsageInfo` in `vllm/entrypoints/openai/protocol.py`):
//! `"usage": {"prompt_tokens": N, "completion_tokens": N, "total_tokens": N, ...}`;
//! vLLM may add `prompt_tokens_details`, which is ignored.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Token counts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTokens {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `prompt_tokens + completion_tokens`; the number a request is charged for.
    pub total_tokens: u64,
}

/// Why a response's usage could not be read. The agent cannot charge for such a
/// response, so each case is named for its log and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("response body is not a JSON object: {0}")]
    NotJson(String),
    #[error("response has no `usage` object")]
    MissingUsage,
    #[error("`usage` is not a JSON object")]
    UsageNotObject,
    #[error("`usage.{field}` is missing")]
    MissingField { field: &'static str },
    #[error("`usage.{field}` is not a non-negative integer: {found}")]
    InvalidField { field: &'static str, found: String },
    #[error("`usage.total_tokens` ({total}) != prompt_tokens ({prompt}) + completion_tokens ({completion})")]
    TotalMismatch {
        prompt: u64,
        completion: u64,
        total: u64,
    },
}

/// A response body's `usage` field (`U`: a tree, or the typed counts); the rest of the
/// body (choices, possibly megabytes of text) is skipped without building anything.
/// Read as a JSON object only: a derived struct would also take an array (`[usage]`).
struct BodyUsage<U> {
    usage: Option<U>,
}

impl<'de, U: Deserialize<'de>> Deserialize<'de> for BodyUsage<U> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<U>(PhantomData<U>);
        impl<'de, U: Deserialize<'de>> Visitor<'de> for V<U> {
            type Value = BodyUsage<U>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut usage = None;
                let mut seen = false;
                while let Some(key) = map.next_key_seed(KeyIn(&["usage"]))? {
                    if key.is_none() {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    if seen {
                        return Err(A::Error::duplicate_field("usage"));
                    }
                    seen = true;
                    usage = map.next_value::<Option<U>>()?;
                }
                Ok(BodyUsage { usage })
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// An object key as its index in a list of names (`None`: another key), compared
/// without allocating, escaped or not.
struct KeyIn(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyIn {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        struct V(&'static [&'static str]);
        impl<'de> Visitor<'de> for V {
            type Value = Option<usize>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
                Ok(self.0.iter().position(|n| *n == v))
            }
        }
        d.deserialize_str(V(self.0))
    }
}

/// The counts, typed; an object only, each field at most once, `total_tokens` absent or
/// a number (anything else falls back to the tree, which names it).
struct FastUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: Option<u64>,
}

impl<'de> Deserialize<'de> for FastUsage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FastUsage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a usage object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastUsage, A::Error> {
                let mut fields: [Option<u64>; 3] = [None; 3];
                while let Some(key) = map.next_key_seed(KeyIn(&[
                    "prompt_tokens",
                    "completion_tokens",
                    "total_tokens",
                ]))? {
                    let slot = key.and_then(|i| fields.get_mut(i));
                    match slot {
                        Some(Some(_)) => return Err(A::Error::custom("duplicate usage field")),
                        Some(slot) => *slot = Some(map.next_value::<u64>()?),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match fields {
                    [Some(prompt_tokens), Some(completion_tokens), total_tokens] => Ok(FastUsage {
                        prompt_tokens,
                        completion_tokens,
                        total_tokens,
                    }),
                    _ => Err(A::Error::custom("usage field missing")),
                }
            }
        }
        d.deserialize_map(V)
    }
}

impl FastUsage {
    fn checked(self) -> Result<UsageTokens, UsageError> {
        UsageTokens::combine(
            self.prompt_tokens,
            self.completion_tokens,
            self.total_tokens,
        )
    }
}

impl UsageTokens {
    /// Reads `usage` from a whole (non-streamed) response body.
    pub fn from_response_body(body: &[u8]) -> Result<UsageTokens, UsageError> {
        // The common case, typed: no tree for `usage`. Anything it does not take (a
        // field missing or of another type, a duplicate key) goes the slow way below,
        // which names what is wrong.
        if let Ok(fast) = serde_json::from_slice::<BodyUsage<FastUsage>>(body) {
            return match fast.usage {
                None => Err(UsageError::MissingUsage),
                Some(u) => u.checked(),
            };
        }
        UsageTokens::from_response_body_tree(body)
    }

    /// The reference reading, through a JSON tree of `usage`: what
    /// [`UsageTokens::from_response_body`] falls back to, and must always agree with
    /// (public for the differential fuzz target `usage`).
    pub fn from_response_body_tree(body: &[u8]) -> Result<UsageTokens, UsageError> {
        let parsed: BodyUsage<Value> =
            serde_json::from_slice(body).map_err(|e| UsageError::NotJson(e.to_string()))?;
        match parsed.usage {
            None | Some(Value::Null) => Err(UsageError::MissingUsage),
            Some(v) => UsageTokens::from_usage_value(&v),
        }
    }

    /// Reads a `usage` object (also the one in a stream's usage chunk).
    pub fn from_usage_value(usage: &Value) -> Result<UsageTokens, UsageError> {
        let obj = usage.as_object().ok_or(UsageError::UsageNotObject)?;
        let field = |name: &'static str| -> Result<Option<u64>, UsageError> {
            match obj.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| UsageError::InvalidField {
                        field: name,
                        found: v.to_string(),
                    }),
            }
        };
        let prompt = field("prompt_tokens")?.ok_or(UsageError::MissingField {
            field: "prompt_tokens",
        })?;
        let completion = field("completion_tokens")?.ok_or(UsageError::MissingField {
            field: "completion_tokens",
        })?;
        let total = field("total_tokens")?;
        UsageTokens::combine(prompt, completion, total)
    }

    fn combine(
        prompt: u64,
        completion: u64,
        total: Option<u64>,
    ) -> Result<UsageTokens, UsageError> {
        // A total that disagrees with its parts means we do not know what the engine
        // counted; refuse rather than pick one.
        match (prompt.checked_add(completion), total) {
            (Some(s), None) => Ok(UsageTokens {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: s,
            }),
            (Some(s), Some(t)) if s == t => Ok(UsageTokens {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: s,
            }),
            (_, t) => Err(UsageError::TotalMismatch {
                prompt,
                completion,
                total: t.unwrap_or(u64::MAX),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A non-streamed chat completion as vLLM 0.11 returns it (trimmed choices).
    const VLLM_CHAT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],"usage":{"prompt_tokens":12,"total_tokens":20,"completion_tokens":8,"prompt_tokens_details":null},"prompt_logprobs":null}"#;

    #[test]
    fn reads_vllm_usage() {
        let u = UsageTokens::from_response_body(VLLM_CHAT.as_bytes()).unwrap();
        assert_eq!(
            u,
            UsageTokens {
                prompt_tokens: 12,
                completion_tokens: 8,
                total_tokens: 20
            }
        );
    }

    #[test]
    fn total_is_optional_but_must_agree() {
        let u = UsageTokens::from_response_body(
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(u.total_tokens, 3);
        assert_eq!(
            UsageTokens::from_response_body(
                br#"{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":4}}"#
            ),
            Err(UsageError::TotalMismatch {
                prompt: 1,
                completion: 2,
                total: 4
            })
        );
    }

    #[test]
    fn typed_reading_agrees_with_the_tree() {
        for body in [
            VLLM_CHAT.as_bytes(),
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":4}}"#,
            br#"{"usage":{"prompt_tokens":-0,"completion_tokens":2,"total_tokens":2}}"#,
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":1e2}}"#,
            br#"{"usage":null,"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            br#"{"choices":[]}"#,
            // Found by the fuzz target: arrays in place of objects.
            b"[[9,6]]",
            br#"{"usage":[9,6]}"#,
            br#"[{"prompt_tokens":1,"completion_tokens":2}]"#,
            br#"{"usage":{"prompt_tokens":1,"prompt_tokens":3,"completion_tokens":2}}"#,
            br#"{"us\u0061ge":{"prompt_tokens":1,"completion_tokens":2}}"#,
        ] {
            assert_eq!(
                UsageTokens::from_response_body(body),
                UsageTokens::from_response_body_tree(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn named_errors() {
        let cases: &[(&[u8], UsageError)] = &[
            (b"not json", UsageError::NotJson(String::new())),
            (b"[1,2]", UsageError::NotJson(String::new())),
            (br#"{"choices":[]}"#, UsageError::MissingUsage),
            (br#"{"usage":null}"#, UsageError::MissingUsage),
            (br#"{"usage":5}"#, UsageError::UsageNotObject),
            (br#"{"usage":[9,6]}"#, UsageError::UsageNotObject),
            (b"[[9,6]]", UsageError::NotJson(String::new())),
            (
                br#"{"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":null}}"#,
                UsageError::InvalidField {
                    field: "total_tokens",
                    found: "null".into(),
                },
            ),
            (
                br#"{"usage":{"prompt_tokens":1,"completion_tokens":2.0}}"#,
                UsageError::InvalidField {
                    field: "completion_tokens",
                    found: "2.0".into(),
                },
            ),
            (
                br#"{"usage":{"completion_tokens":2}}"#,
                UsageError::MissingField {
                    field: "prompt_tokens",
                },
            ),
            (
                br#"{"usage":{"prompt_tokens":1}}"#,
                UsageError::MissingField {
                    field: "completion_tokens",
                },
            ),
            (
                br#"{"usage":{"prompt_tokens":-1,"completion_tokens":2}}"#,
                UsageError::InvalidField {
                    field: "prompt_tokens",
                    found: "-1".into(),
                },
            ),
            (
                br#"{"usage":{"prompt_tokens":1,"completion_tokens":"2"}}"#,
                UsageError::InvalidField {
                    field: "completion_tokens",
                    found: "\"2\"".into(),
                },
            ),
            (
                br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1}}"#,
                UsageError::TotalMismatch {
                    prompt: u64::MAX,
                    completion: 1,
                    total: u64::MAX,
                },
            ),
        ];
        for (body, want) in cases {
            let got = UsageTokens::from_response_body(body).unwrap_err();
            match (want, &got) {
                (UsageError::NotJson(_), UsageError::NotJson(_)) => {}
                _ => assert_eq!(&got, want, "{}", String::from_utf8_lossy(body)),
            }
        }
    }
}
