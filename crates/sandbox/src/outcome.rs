//! How a run ended: an exit code or a trap of a stable, named kind, plus what it used.

use std::fmt;
use std::time::Duration;

/// Why an instance stopped without exiting. The kebab-case names ([`TrapKind::as_str`]) are
/// stable: reports, receipts and scripts depend on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapKind {
    /// The fuel (instruction budget) ran out.
    OutOfFuel,
    /// The wall-clock deadline passed.
    Timeout,
    /// The guest tried to grow linear memory past the limit.
    MemoryLimit,
    /// The guest tried to grow a table past the limit.
    TableLimit,
    /// The call stack limit was reached (unbounded recursion).
    StackOverflow,
    /// An `unreachable` instruction ran (also how Rust's `abort` and `panic` end).
    Unreachable,
    /// A load, store or table access outside bounds.
    OutOfBounds,
    /// Integer division or remainder by zero.
    IntegerDivideByZero,
    /// Integer overflow (`i32.div_s` of `MIN` by `-1`).
    IntegerOverflow,
    /// A float-to-integer conversion of NaN or an out-of-range value.
    BadConversionToInteger,
    /// `call_indirect` reached a function of another type.
    IndirectCallTypeMismatch,
    /// `call_indirect` reached an empty table slot.
    UninitializedElement,
    /// A null reference was used.
    NullReference,
    /// A host call broke the ABI where no errno could be returned.
    BadHostCall,
    /// The guest wrote more to stdout and stderr than the limit allows.
    OutputLimit,
}

impl TrapKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [TrapKind; 15] = [
        TrapKind::OutOfFuel,
        TrapKind::Timeout,
        TrapKind::MemoryLimit,
        TrapKind::TableLimit,
        TrapKind::StackOverflow,
        TrapKind::Unreachable,
        TrapKind::OutOfBounds,
        TrapKind::IntegerDivideByZero,
        TrapKind::IntegerOverflow,
        TrapKind::BadConversionToInteger,
        TrapKind::IndirectCallTypeMismatch,
        TrapKind::UninitializedElement,
        TrapKind::NullReference,
        TrapKind::BadHostCall,
        TrapKind::OutputLimit,
    ];

    /// The stable kebab-case name: `out-of-fuel`, `memory-limit`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            TrapKind::OutOfFuel => "out-of-fuel",
            TrapKind::Timeout => "timeout",
            TrapKind::MemoryLimit => "memory-limit",
            TrapKind::TableLimit => "table-limit",
            TrapKind::StackOverflow => "stack-overflow",
            TrapKind::Unreachable => "unreachable",
            TrapKind::OutOfBounds => "out-of-bounds",
            TrapKind::IntegerDivideByZero => "integer-divide-by-zero",
            TrapKind::IntegerOverflow => "integer-overflow",
            TrapKind::BadConversionToInteger => "bad-conversion-to-integer",
            TrapKind::IndirectCallTypeMismatch => "indirect-call-type-mismatch",
            TrapKind::UninitializedElement => "uninitialized-element",
            TrapKind::NullReference => "null-reference",
            TrapKind::BadHostCall => "bad-host-call",
            TrapKind::OutputLimit => "output-limit",
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "value")]
pub enum Outcome {
    /// The guest returned from its entry point (code 0) or called `proc_exit(code)`.
    Exited(u32),
    /// The guest trapped or exceeded a limit.
    Trapped(TrapKind),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exited({code})"),
            Outcome::Trapped(kind) => write!(f, "trapped({kind})"),
        }
    }
}

/// What a run did and used. Serialises as the JSON `covenant run --report` writes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// A sentence on what happened, for traps: which limit, what the guest did.
    pub detail: Option<String>,
    /// Fuel consumed (each engine's own units).
    pub fuel_used: u64,
    /// Wall time from instantiation to the end of the call, in microseconds.
    #[serde(rename = "wall_time_us", with = "duration_us")]
    pub wall_time: Duration,
    /// The largest linear memory the instance had, in bytes.
    pub peak_memory_bytes: u64,
    /// Bytes written to stdout and stderr together.
    pub output_bytes: u64,
    /// The engine that ran it.
    pub strategy: crate::Strategy,
}

impl RunReport {
    /// The exit code, if the guest exited.
    pub fn exit_code(&self) -> Option<u32> {
        match self.outcome {
            Outcome::Exited(code) => Some(code),
            Outcome::Trapped(_) => None,
        }
    }

    /// The trap kind, if the guest trapped.
    pub fn trap(&self) -> Option<TrapKind> {
        match self.outcome {
            Outcome::Exited(_) => None,
            Outcome::Trapped(kind) => Some(kind),
        }
    }
}

mod duration_us {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let us: u64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_micros(us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_stable_names() {
        let mut names: Vec<_> = TrapKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TrapKind::ALL.len());
        for kind in TrapKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(
            serde_json::to_string(&Outcome::Trapped(TrapKind::OutOfFuel)).unwrap(),
            r#"{"status":"trapped","value":"out-of-fuel"}"#
        );
    }
}
