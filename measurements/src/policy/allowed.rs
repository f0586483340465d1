//! Policy value sets: either an explicit list, or the explicit word "any".

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The values a policy accepts for one field. There is no implicit "any": a policy
/// that does not care must write `"any"`, so a forgotten entry fails closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed<T> {
    /// Every value is accepted (written `"any"`).
    Any,
    /// Only these values (an empty list accepts nothing).
    OneOf(Vec<T>),
}

impl<T: PartialEq> Allowed<T> {
    pub fn permits(&self, v: &T) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::OneOf(list) => list.contains(v),
        }
    }

    pub fn is_any(&self) -> bool {
        matches!(self, Allowed::Any)
    }
}

impl<T: Serialize> Serialize for Allowed<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Allowed::Any => s.serialize_str("any"),
            Allowed::OneOf(v) => v.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Allowed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Allowed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the string \"any\" or a list of values")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                if s == "any" {
                    Ok(Allowed::Any)
                } else {
                    Err(E::custom(format!(
                        "expected \"any\" or a list of values, found the string {s:?} (write a single value as a one-element list)"
                    )))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Allowed::OneOf(out))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A 64-bit attribute value written as a hex string ("0x00000000000618e7") or an
/// integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex64(pub u64);

impl Serialize for Hex64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#018x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Hex64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Hex64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-bit value as \"0x...\" hex or an integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Hex64, E> {
                Ok(Hex64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Hex64, E> {
                u64::try_from(v)
                    .map(Hex64)
                    .map_err(|_| E::custom("negative value"))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Hex64, E> {
                let h = s
                    .strip_prefix("0x")
                    .or_else(|| s.strip_prefix("0X"))
                    .ok_or_else(|| E::custom(format!("{s:?}: hex values start with 0x")))?;
                u64::from_str_radix(h, 16)
                    .map(Hex64)
                    .map_err(|e| E::custom(format!("{s:?}: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}
