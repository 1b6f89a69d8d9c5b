//! RFC 8785 (JSON Canonicalization Scheme) and the policy hash.
//!
//! # Why our own canonicaliser instead of the `serde_jcs` crate
//!
//! The policy hash is the one value every party compares, so the code that produces it is part
//! of the trusted base and should be small enough to read in one sitting. A policy holds only
//! strings, integers, booleans, arrays and objects; for those, RFC 8785 reduces to four rules
//! (sort object keys by UTF-16 code units, no whitespace, the ECMAScript string escapes,
//! integers in plain decimal), which fit in the ~60 lines below. The general case is floating
//! point formatting (ECMAScript `Number.prototype.toString`), which is where JCS libraries
//! are large and where they have had bugs; we need none of it and refuse floats outright, as
//! well as integers beyond 2^53 − 1 that a JavaScript implementation would round. `serde_jcs`
//! is used as an independent oracle in this crate's tests, not in the build.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::bounds::MAX_JSON_INTEGER;
use crate::model::Policy;

/// Why a JSON value has no RFC 8785 canonical form in this implementation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number with a fraction or exponent: policies carry integers only.
    #[error("{path}: {number} is not an integer; a policy carries integers only")]
    Float {
        /// Where the number is, e.g. `execution.fuel`.
        path: String,
        /// The number as serde_json prints it.
        number: String,
    },
    /// An integer outside ±(2^53 − 1), which RFC 8785 implementations in JavaScript would round.
    #[error("{path}: {number} is outside the exact integer range of RFC 8785 (at most 2^53 - 1)")]
    IntegerOutOfRange {
        /// Where the number is.
        path: String,
        /// The number.
        number: String,
    },
    /// The value could not be turned into JSON at all (not possible for a [`Policy`]).
    #[error("cannot serialise to JSON: {0}")]
    Serialize(String),
}

/// Writes `value` in its RFC 8785 canonical form.
///
/// # Errors
///
/// [`CanonicalError`] if the value holds a non-integer number or an integer beyond 2^53 − 1.
pub fn canonical_json(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::new();
    write_value(&mut out, value, &mut String::new())?;
    Ok(out)
}

/// The RFC 8785 canonical form of a policy: the bytes the [`PolicyHash`] is taken over.
///
/// # Errors
///
/// [`CanonicalError::IntegerOutOfRange`] if a number in the policy exceeds 2^53 − 1 (a valid
/// policy never does: every bound is far below it).
pub fn canonical_policy(policy: &Policy) -> Result<String, CanonicalError> {
    let value =
        serde_json::to_value(policy).map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    canonical_json(&value)
}

fn write_value(out: &mut String, value: &Value, path: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => {
            let exact = if let Some(n) = number.as_u64() {
                (n <= MAX_JSON_INTEGER).then(|| n.to_string())
            } else if let Some(n) = number.as_i64() {
                (n.unsigned_abs() <= MAX_JSON_INTEGER).then(|| n.to_string())
            } else {
                let at = if path.is_empty() {
                    ".".to_owned()
                } else {
                    path.clone()
                };
                return Err(CanonicalError::Float {
                    path: at,
                    number: number.to_string(),
                });
            };
            match exact {
                Some(text) => out.push_str(&text),
                None => {
                    let at = if path.is_empty() {
                        ".".to_owned()
                    } else {
                        path.clone()
                    };
                    return Err(CanonicalError::IntegerOutOfRange {
                        path: at,
                        number: number.to_string(),
                    });
                }
            }
        }
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                write_value(out, item, path)?;
                path.truncate(len);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // RFC 8785 §3.2.3: sort by the keys' UTF-16 code units, not by bytes or chars.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                write_value(out, item, path)?;
                path.truncate(len);
            }
            out.push('}');
        }
    }
    Ok(())
}

/// RFC 8785 §3.2.2.2: the escapes of ECMAScript `JSON.stringify`. Only `"`, `\` and control
/// characters are escaped; everything else, including non-ASCII, is written as UTF-8.
fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The policy hash: SHA-256 over the RFC 8785 canonical JSON of a policy.
///
/// Reformatting a policy or reordering its keys does not change it; any change of meaning
/// does. For a policy file `covenant policy build` wrote, it equals
/// `sha256(jcs(policy.json))` computed by any RFC 8785 implementation. Displayed (and
/// serialised) as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyHash(pub [u8; 32]);

impl PolicyHash {
    /// Hashes a policy.
    ///
    /// # Errors
    ///
    /// [`CanonicalError`] as for [`canonical_policy`]; never for a policy that
    /// [`crate::parse`] returned or that passed [`crate::validate`].
    pub fn of(policy: &Policy) -> Result<PolicyHash, CanonicalError> {
        Ok(PolicyHash::of_canonical_bytes(
            canonical_policy(policy)?.as_bytes(),
        ))
    }

    /// SHA-256 of bytes that are already in canonical form.
    #[must_use]
    pub fn of_canonical_bytes(canonical: &[u8]) -> PolicyHash {
        PolicyHash(Sha256::digest(canonical).into())
    }

    /// The 32 bytes of the digest.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for PolicyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PolicyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyHash({self})")
    }
}

/// Why a text is not a policy hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a policy hash; expected 64 lowercase hex digits")]
pub struct PolicyHashParseError(pub String);

impl FromStr for PolicyHash {
    type Err = PolicyHashParseError;

    /// Reads 64 lowercase hex digits.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !crate::validate::is_lower_hex(text, 32) {
            return Err(PolicyHashParseError(text.to_owned()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| PolicyHashParseError(text.to_owned()))?;
        Ok(PolicyHash(bytes))
    }
}

impl Serialize for PolicyHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for PolicyHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jcs(value: Value) -> String {
        canonical_json(&value).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn keys_sorted_by_utf16_code_units() {
        // RFC 8785 §3.2.3's example: U+20AC (€) sorts before U+1F600 (😀) in UTF-16 because the
        // emoji is a surrogate pair starting 0xD83D; in UTF-8 byte order it would be after.
        let value = json!({"\u{1F600}": 1, "\u{20AC}": 2, "\r": 3, "1": 4, "\u{0080}": 5, "ö": 6});
        assert_eq!(
            jcs(value),
            "{\"\\r\":3,\"1\":4,\"\u{0080}\":5,\"ö\":6,\"\u{20AC}\":2,\"\u{1F600}\":1}"
        );
    }

    #[test]
    fn strings_escaped_like_ecmascript() {
        let value = json!("\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1f}\"\\/\u{7f}é\u{2028}");
        assert_eq!(
            jcs(value),
            "\"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\\\"\\\\/\u{7f}é\u{2028}\""
        );
    }

    #[test]
    fn no_whitespace_and_nested_structures() {
        let value = json!({"b": [1, true, null, {"z": "x", "a": []}], "a": {}});
        assert_eq!(jcs(value), r#"{"a":{},"b":[1,true,null,{"a":[],"z":"x"}]}"#);
    }

    #[test]
    fn floats_and_huge_integers_refused_with_their_path() {
        assert_eq!(
            jcs(json!({"execution": {"fuel": 1.5}})),
            "error: execution.fuel: 1.5 is not an integer; a policy carries integers only"
        );
        assert_eq!(
            jcs(json!({"a": [0, 9007199254740992_u64]})),
            "error: a[1]: 9007199254740992 is outside the exact integer range of RFC 8785 (at most 2^53 - 1)"
        );
        assert_eq!(jcs(json!(9007199254740991_u64)), "9007199254740991");
        assert_eq!(jcs(json!(-9007199254740991_i64)), "-9007199254740991");
        assert!(jcs(json!(-9007199254740992_i64)).starts_with("error: .:"));
    }

    #[test]
    fn policy_hash_hex_round_trip() {
        let hash = PolicyHash::of_canonical_bytes(b"{}");
        let text = hash.to_string();
        assert_eq!(
            text,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(text.parse::<PolicyHash>(), Ok(hash));
        assert!(text.to_uppercase().parse::<PolicyHash>().is_err());
        assert!("abc".parse::<PolicyHash>().is_err());
        assert_eq!(format!("{hash:?}"), format!("PolicyHash({text})"));
    }
}
