//! Human forms of sizes and durations, as the TOML source writes them (`"256MiB"`, `"60s"`).
//!
//! The JSON policy never uses these forms: it stores sizes as integer bytes and durations as
//! integer milliseconds, in fields whose names carry the unit (`max_memory_bytes`, `timeout_ms`),
//! so that a script reading the JSON needs no parser and the canonical hash never depends on
//! how a person chose to write `1GiB` (or `1024MiB`).

use std::fmt;

/// One kibibyte (1024 bytes).
pub const KIB: u64 = 1 << 10;
/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// One gibibyte.
pub const GIB: u64 = 1 << 30;

/// Why a size or a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    /// The text is empty.
    #[error("empty; write a number and a unit, like {example}")]
    Empty {
        /// An example of a valid value of this kind.
        example: &'static str,
    },
    /// The text does not start with a whole number.
    #[error(
        "{text:?} does not start with a whole number; write a number and a unit, like {example}"
    )]
    NoNumber {
        /// The text as given.
        text: String,
        /// An example of a valid value of this kind.
        example: &'static str,
    },
    /// The number has a fractional part.
    #[error("{text:?} is not a whole number; use a smaller unit instead, like {example}")]
    Fraction {
        /// The text as given.
        text: String,
        /// An example of a valid value of this kind.
        example: &'static str,
    },
    /// A number without a unit: ambiguous, so refused.
    #[error("{text:?} has no unit; write one of {units}, like {example}")]
    NoUnit {
        /// The text as given.
        text: String,
        /// The accepted units.
        units: &'static str,
        /// An example of a valid value of this kind.
        example: &'static str,
    },
    /// The unit is not one this parser knows.
    #[error("{text:?} has unknown unit {unit:?}; write one of {units}")]
    UnknownUnit {
        /// The text as given.
        text: String,
        /// The unit as given.
        unit: String,
        /// The accepted units.
        units: &'static str,
    },
    /// The value does not fit in 64 bits.
    #[error("{text:?} is too large")]
    Overflow {
        /// The text as given.
        text: String,
    },
}

const SIZE_UNITS: &str = "B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000)";
const SIZE_EXAMPLE: &str = "\"64MiB\"";
const DURATION_UNITS: &str = "ms, s, m, h";
const DURATION_EXAMPLE: &str = "\"60s\" or \"500ms\"";

/// Reads a size like `"256MiB"`, `"64 KiB"`, `"10MB"` or `"512B"` and returns it in bytes.
///
/// Units are case-sensitive: `B`, `KiB`, `MiB`, `GiB` (powers of 1024) and `KB`, `MB`, `GB`
/// (powers of 1000). One space between number and unit is allowed. A bare number is refused:
/// whether `1024` means bytes or kibibytes is exactly the kind of doubt a policy must not leave.
///
/// # Errors
///
/// [`UnitError`] saying what is wrong and what a valid value looks like.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let (number, unit) = split(text, SIZE_EXAMPLE, SIZE_UNITS)?;
    let factor = match unit {
        "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(UnitError::UnknownUnit {
                text: text.to_owned(),
                unit: other.to_owned(),
                units: SIZE_UNITS,
            });
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| UnitError::Overflow {
            text: text.to_owned(),
        })
}

/// Reads a duration like `"60s"`, `"500ms"`, `"5m"` or `"1h"` and returns it in milliseconds.
///
/// # Errors
///
/// [`UnitError`] saying what is wrong and what a valid value looks like.
pub fn parse_duration_ms(text: &str) -> Result<u64, UnitError> {
    let (number, unit) = split(text, DURATION_EXAMPLE, DURATION_UNITS)?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(UnitError::UnknownUnit {
                text: text.to_owned(),
                unit: other.to_owned(),
                units: DURATION_UNITS,
            });
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| UnitError::Overflow {
            text: text.to_owned(),
        })
}

/// Splits `"256 MiB"` into `(256, "MiB")`.
fn split<'a>(
    text: &'a str,
    example: &'static str,
    units: &'static str,
) -> Result<(u64, &'a str), UnitError> {
    if text.trim().is_empty() {
        return Err(UnitError::Empty { example });
    }
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return Err(UnitError::NoNumber {
            text: text.to_owned(),
            example,
        });
    }
    let (digits, rest) = text.split_at(digits_end);
    if rest.starts_with(['.', ',']) {
        return Err(UnitError::Fraction {
            text: text.to_owned(),
            example,
        });
    }
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    if unit.is_empty() {
        return Err(UnitError::NoUnit {
            text: text.to_owned(),
            units,
            example,
        });
    }
    let number: u64 = digits.parse().map_err(|_| UnitError::Overflow {
        text: text.to_owned(),
    })?;
    Ok((number, unit))
}

/// A byte count shown the way a person reads it: `268435456` → `256 MiB (268435456 bytes)`
/// when it is a whole number of KiB/MiB/GiB, else `1000 bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowBytes(pub u64);

impl fmt::Display for ShowBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (factor, unit) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if bytes >= factor && bytes.is_multiple_of(factor) {
                return write!(f, "{} {unit} ({bytes} bytes)", bytes / factor);
            }
        }
        if bytes == 1 {
            f.write_str("1 byte")
        } else {
            write!(f, "{bytes} bytes")
        }
    }
}

/// A millisecond count shown the way a person reads it: `60000` → `60s`, `1500` → `1500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowMillis(pub u64);

impl fmt::Display for ShowMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (factor, unit) in [(3_600_000, "h"), (60_000, "m"), (1_000, "s")] {
            if ms >= factor && ms.is_multiple_of(factor) {
                return write!(f, "{}{unit}", ms / factor);
            }
        }
        write!(f, "{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_unit() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("3KB"), Ok(3_000));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("100 MiB"), Ok(100 << 20));
        assert_eq!(parse_size("0B"), Ok(0));
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("60s"), Ok(60_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("24h"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("1 s"), Ok(1_000));
    }

    #[test]
    fn bad_sizes_say_what_would_be_right() {
        let message = |t: &str| {
            parse_size(t)
                .map_err(|e| e.to_string())
                .err()
                .unwrap_or_default()
        };
        assert_eq!(
            message(""),
            "empty; write a number and a unit, like \"64MiB\""
        );
        assert_eq!(
            message("MiB"),
            "\"MiB\" does not start with a whole number; write a number and a unit, like \"64MiB\""
        );
        assert_eq!(
            message("1.5GiB"),
            "\"1.5GiB\" is not a whole number; use a smaller unit instead, like \"64MiB\""
        );
        assert!(message("1024").starts_with("\"1024\" has no unit; write one of B, KiB"));
        assert!(message("1mib").starts_with("\"1mib\" has unknown unit \"mib\"; write one of B,"));
        assert_eq!(
            message("99999999999999999999B"),
            "\"99999999999999999999B\" is too large"
        );
        assert_eq!(message("17179869184GiB"), "\"17179869184GiB\" is too large");
        assert!(message("-1MiB").contains("does not start with a whole number"));
        assert!(message("1  MiB").contains("unknown unit \" MiB\""));
    }

    #[test]
    fn bad_durations_say_what_would_be_right() {
        let message = |t: &str| {
            parse_duration_ms(t)
                .map_err(|e| e.to_string())
                .err()
                .unwrap_or_default()
        };
        assert_eq!(
            message("60"),
            "\"60\" has no unit; write one of ms, s, m, h, like \"60s\" or \"500ms\""
        );
        assert_eq!(
            message("1d"),
            "\"1d\" has unknown unit \"d\"; write one of ms, s, m, h"
        );
        assert_eq!(
            message("99999999999999999h"),
            "\"99999999999999999h\" is too large"
        );
    }

    #[test]
    fn shown_the_way_people_read_them() {
        assert_eq!(
            ShowBytes(256 << 20).to_string(),
            "256 MiB (268435456 bytes)"
        );
        assert_eq!(ShowBytes(4 << 30).to_string(), "4 GiB (4294967296 bytes)");
        assert_eq!(ShowBytes(1000).to_string(), "1000 bytes");
        assert_eq!(ShowBytes(1).to_string(), "1 byte");
        assert_eq!(ShowBytes(0).to_string(), "0 bytes");
        assert_eq!(ShowMillis(60_000).to_string(), "1m");
        assert_eq!(ShowMillis(90_000).to_string(), "90s");
        assert_eq!(ShowMillis(1_500).to_string(), "1500ms");
        assert_eq!(ShowMillis(7_200_000).to_string(), "2h");
    }
}
