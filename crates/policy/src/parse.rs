//! Reading a policy document: bytes → [`Policy`], refusing anything ambiguous.
//!
//! Parsing is strict in two passes. The first reads the bytes into a JSON value and refuses
//! what JSON allows but a signed-off document must not have: a key twice in one object (two
//! parsers may keep different ones), non-integer numbers, integers beyond 2^53 − 1 (which
//! RFC 8785 cannot hash exactly). The second maps the value onto the model with
//! `deny_unknown_fields`, and its errors carry the JSON path of the offending field.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::bounds::{MAX_JSON_INTEGER, MAX_POLICY_BYTES};
use crate::model::{FORMAT, Policy, VERSION};

/// Why bytes are not a policy document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The document is larger than [`MAX_POLICY_BYTES`].
    #[error("the policy is {size} bytes; the largest accepted is {max} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// Not JSON, or JSON that a policy may not contain (repeated keys, floats, huge integers).
    /// The message includes the line and column.
    #[error("not valid policy JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// JSON, but not a Covenant policy (no `format: "covenant-policy"`).
    #[error("not a Covenant policy: {0}")]
    NotAPolicy(String),
    /// A Covenant policy of a version this build does not read.
    #[error("policy version {found} is not supported; this build reads version {VERSION}")]
    UnsupportedVersion {
        /// The version in the document.
        found: String,
    },
    /// A policy whose fields do not have the right shape: an unknown or missing field, or a
    /// value of the wrong type.
    #[error("{path}: {message}")]
    Field {
        /// JSON path of the field, e.g. `inputs[1].max_bytes`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Reads a policy document.
///
/// This checks the *shape* of the document only; [`crate::validate`] checks its meaning.
///
/// # Errors
///
/// [`ParseError`] naming the first field (by JSON path) or position where the document is not
/// a version-1 Covenant policy.
pub fn parse(bytes: &[u8]) -> Result<Policy, ParseError> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            max: MAX_POLICY_BYTES,
        });
    }
    let StrictValue(value) = serde_json::from_slice(bytes).map_err(ParseError::Json)?;
    policy_from_value(value)
}

/// Maps a JSON value onto the model, checking the format tag and version first so that a
/// document of another version is reported as that, not as a list of unknown fields.
///
/// The value should come from a strict parse (see the module documentation); a value built in
/// memory may hold numbers the canonical hash refuses.
///
/// # Errors
///
/// As for [`parse`].
pub fn policy_from_value(value: Value) -> Result<Policy, ParseError> {
    let Value::Object(object) = &value else {
        return Err(ParseError::NotAPolicy(format!(
            "expected a JSON object with \"format\": \"{FORMAT}\", found {}",
            kind(&value)
        )));
    };
    match object.get("format") {
        Some(Value::String(format)) if format == FORMAT => {}
        Some(other) => {
            return Err(ParseError::NotAPolicy(format!(
                "\"format\" is {other}; expected \"{FORMAT}\""
            )));
        }
        None => {
            return Err(ParseError::NotAPolicy(format!(
                "no \"format\" field; expected \"format\": \"{FORMAT}\""
            )));
        }
    }
    match object.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        Some(other) => {
            return Err(ParseError::UnsupportedVersion {
                found: other.to_string(),
            });
        }
        None => {
            return Err(ParseError::Field {
                path: "version".to_owned(),
                message: format!("missing field `version`; expected {VERSION}"),
            });
        }
    }
    serde_path_to_error::deserialize(value).map_err(|error| ParseError::Field {
        path: error.path().to_string(),
        message: error.inner().to_string(),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value read strictly: no repeated keys, integers only, within ±(2^53 − 1).
///
/// Nesting depth is bounded by `serde_json`'s recursion limit (128), so hostile input cannot
/// overflow the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_JSON_INTEGER {
            return Err(E::custom(format_args!(
                "{v} is outside the exact integer range (at most 2^53 - 1 in size)"
            )));
        }
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_JSON_INTEGER {
            return Err(E::custom(format_args!(
                "{v} is outside the exact integer range (at most 2^53 - 1)"
            )));
        }
        Ok(Value::Number(Number::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format_args!(
            "{v} is not an integer; a policy carries integers only"
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "key {key:?} appears twice in one object"
                )));
            }
            let StrictValue(item) = map.next_value()?;
            object.insert(key, item);
        }
        Ok(Value::Object(object))
    }
}
