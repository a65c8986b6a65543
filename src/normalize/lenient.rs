//! Field types that accept every form the inputs are seen to use for a value.
//!
//! Publishers disagree: numbers arrive as strings, booleans as `"true"`, instance types as
//! `{"value": "p2.xlarge"}`, timestamps as ISO strings or epoch numbers. These types take all
//! of them, and never make a record fail over a value we can still read.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::time::{self, Millis};

/// A number, or a string holding one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LenientF64(pub Option<f64>);

impl<'de> Deserialize<'de> for LenientF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientF64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<LenientF64, E> {
                Ok(LenientF64(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<LenientF64, E> {
                Ok(LenientF64(Some(v as f64)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<LenientF64, E> {
                Ok(LenientF64(Some(v as f64)))
            }
            fn visit_str<E>(self, v: &str) -> Result<LenientF64, E> {
                Ok(LenientF64(v.trim().parse().ok()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<LenientF64, E> {
                Ok(LenientF64(None))
            }
            fn visit_unit<E>(self) -> Result<LenientF64, E> {
                Ok(LenientF64(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LenientF64, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientF64(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<LenientF64, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientF64(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl LenientF64 {
    pub fn as_u32(self) -> Option<u32> {
        self.0
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.min(u32::MAX as f64) as u32)
    }
    pub fn as_u64(self) -> Option<u64> {
        self.0
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    }
}

/// A boolean, or `"true"` / `"false"`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LenientBool(pub Option<bool>);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientBool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<LenientBool, E> {
                Ok(LenientBool(Some(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<LenientBool, E> {
                Ok(LenientBool(match v.trim() {
                    s if s.eq_ignore_ascii_case("true") => Some(true),
                    s if s.eq_ignore_ascii_case("false") => Some(false),
                    _ => None,
                }))
            }
            fn visit_u64<E>(self, v: u64) -> Result<LenientBool, E> {
                Ok(LenientBool(Some(v != 0)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<LenientBool, E> {
                Ok(LenientBool(Some(v != 0)))
            }
            fn visit_f64<E>(self, _: f64) -> Result<LenientBool, E> {
                Ok(LenientBool(None))
            }
            fn visit_unit<E>(self) -> Result<LenientBool, E> {
                Ok(LenientBool(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LenientBool, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientBool(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<LenientBool, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientBool(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string; or `{"value": "…"}` as some publishers write `requestParameters.instanceType`;
/// numbers and booleans are kept as their text. Anything else reads as absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LenientStr<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E>(self, v: String) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(Some(Cow::Owned(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<LenientStr<'de>, E> {
                Ok(LenientStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LenientStr<'de>, A::Error> {
                let mut out = None;
                while let Some(key) = m.next_key::<Cow<'de, str>>()? {
                    if key == "value" {
                        out = m.next_value::<LenientStr<'de>>()?.0;
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(LenientStr(out))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<LenientStr<'de>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl LenientStr<'_> {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
    pub fn owned(&self) -> Option<crate::signal::Str> {
        self.get().map(crate::signal::Str::from)
    }
}

/// A timestamp as text (ISO-8601 and friends) or an epoch number (seconds or milliseconds).
/// Keeps unreadable text so the error can quote it.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LenientTime<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Number(f64),
}

impl<'de: 'a, 'a> Deserialize<'de> for LenientTime<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientTime<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<LenientTime<'de>, E> {
                Ok(LenientTime::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<LenientTime<'de>, E> {
                Ok(LenientTime::Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<LenientTime<'de>, E> {
                Ok(LenientTime::Number(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<LenientTime<'de>, E> {
                Ok(LenientTime::Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<LenientTime<'de>, E> {
                Ok(LenientTime::Number(v as f64))
            }
            fn visit_unit<E>(self) -> Result<LenientTime<'de>, E> {
                Ok(LenientTime::Absent)
            }
            fn visit_bool<E>(self, v: bool) -> Result<LenientTime<'de>, E> {
                Ok(LenientTime::Text(Cow::Owned(v.to_string())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<LenientTime<'de>, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientTime::Text(Cow::Borrowed("{…}")))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<LenientTime<'de>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientTime::Text(Cow::Borrowed("[…]")))
            }
        }
        d.deserialize_any(V)
    }
}

impl LenientTime<'_> {
    pub fn is_absent(&self) -> bool {
        matches!(self, LenientTime::Absent)
    }

    /// The time, or None when absent or unreadable.
    pub fn millis(&self) -> Option<Millis> {
        match self {
            LenientTime::Absent => None,
            LenientTime::Text(s) => time::parse_timestamp(s),
            LenientTime::Number(n) => time::from_epoch_number(*n),
        }
    }

    /// The time; an error text naming `field` when it is absent or unreadable.
    pub fn require(&self, field: &str) -> Result<Millis, String> {
        match self {
            LenientTime::Absent => Err(format!("missing field `{field}`")),
            LenientTime::Text(s) => time::parse_timestamp(s).ok_or_else(|| {
                format!(
                    "field `{field}` is not a timestamp: {} (expected ISO-8601 like \"2025-05-02T09:20:00Z\")",
                    super::quote(s)
                )
            }),
            LenientTime::Number(n) => time::from_epoch_number(*n)
                .ok_or_else(|| format!("field `{field}` is not a timestamp: {n}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_values() {
        let s: LenientStr = serde_json::from_str(r#"{"value":"p2.xlarge"}"#).unwrap();
        assert_eq!(s.get(), Some("p2.xlarge"));
        let s: LenientStr = serde_json::from_str(r#""c5.large""#).unwrap();
        assert_eq!(s.get(), Some("c5.large"));
        let n: LenientF64 = serde_json::from_str(r#""10""#).unwrap();
        assert_eq!(n.as_u32(), Some(10));
        let b: LenientBool = serde_json::from_str(r#""true""#).unwrap();
        assert_eq!(b.0, Some(true));
        let t: LenientTime = serde_json::from_str("1746177600.0").unwrap();
        assert_eq!(t.millis(), Some(1_746_177_600_000));
        let t: LenientTime = serde_json::from_str(r#""redacted""#).unwrap();
        assert_eq!(
            t.require("eventTime").unwrap_err(),
            "field `eventTime` is not a timestamp: \"redacted\" (expected ISO-8601 like \"2025-05-02T09:20:00Z\")"
        );
    }
}
