//! What both engines share about one running instance: the entry point, limit bookkeeping,
//! and how a run ended before it becomes a [`crate::RunReport`].

use covenant_wasi::Termination;

use crate::limits::human_bytes;
use crate::outcome::TrapKind;

/// Where a run starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A WASI command: call `_start`, which takes and returns nothing.
    Command,
    /// Call an exported function with these arguments (a reactor, a kernel).
    Export {
        /// The export's name.
        name: String,
        /// Its arguments.
        args: Vec<Value>,
    },
}

/// A core-Wasm value passed to or returned from an exported function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// `i32`
    I32(i32),
    /// `i64`
    I64(i64),
    /// `f32`, as its bits.
    F32(u32),
    /// `f64`, as its bits.
    F64(u64),
}

/// The growth bookkeeping of one instance: the limits, the peak, and which limit stopped it.
/// Both engines' resource limiters delegate here, so they refuse exactly the same growth.
#[derive(Debug)]
pub(crate) struct GrowthLimits {
    max_memory_bytes: u64,
    max_table_elements: u64,
    pub(crate) peak_memory_bytes: u64,
    /// Set when a growth was refused: the trap that follows is this limit's.
    pub(crate) hit: Option<(TrapKind, String)>,
}

impl GrowthLimits {
    pub(crate) fn new(max_memory_bytes: u64, max_table_elements: u32) -> Self {
        GrowthLimits {
            max_memory_bytes,
            max_table_elements: u64::from(max_table_elements),
            peak_memory_bytes: 0,
            hit: None,
        }
    }

    /// Whether linear memory may grow to `desired` bytes. A refusal ends the instance with
    /// `memory-limit` (rather than `memory.grow` returning -1), so a guest cannot probe the
    /// limit and the outcome says what happened.
    pub(crate) fn memory_growing(&mut self, desired: usize) -> bool {
        let desired = desired as u64;
        if desired > self.max_memory_bytes {
            self.hit = Some((
                TrapKind::MemoryLimit,
                format!(
                    "the guest tried to grow its memory to {}; the limit is {}",
                    human_bytes(desired),
                    human_bytes(self.max_memory_bytes)
                ),
            ));
            return false;
        }
        self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        true
    }

    /// Whether a table may grow to `desired` elements. A refusal ends the instance with
    /// `table-limit`.
    pub(crate) fn table_growing(&mut self, desired: usize) -> bool {
        let desired = desired as u64;
        if desired > self.max_table_elements {
            self.hit = Some((
                TrapKind::TableLimit,
                format!(
                    "the guest tried to grow a table to {desired} elements; the limit is {}",
                    self.max_table_elements
                ),
            ));
            return false;
        }
        true
    }
}

/// A WASI [`Termination`] travelling through an engine as a host error.
#[derive(Debug)]
pub(crate) struct HostTrap(pub(crate) Termination);

impl std::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for HostTrap {}

impl wasmi::errors::HostError for HostTrap {}

/// How the engine's call ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The entry returned these values.
    Returned(Vec<Value>),
    /// `proc_exit(code)`.
    Exit(u32),
    /// A trap of this kind, with a sentence on what happened.
    Trap(TrapKind, String),
}

impl Ended {
    /// The ending a WASI termination means.
    pub(crate) fn from_termination(t: &Termination, timeout: std::time::Duration) -> Ended {
        match t {
            Termination::Exit(code) => Ended::Exit(*code),
            Termination::OutputLimit { limit } => Ended::Trap(
                TrapKind::OutputLimit,
                format!(
                    "the guest wrote more than {} to stdout and stderr",
                    human_bytes(*limit)
                ),
            ),
            Termination::Timeout => timeout_trap(timeout),
            Termination::BadHostCall(why) => Ended::Trap(TrapKind::BadHostCall, why.clone()),
        }
    }
}

pub(crate) fn timeout_trap(timeout: std::time::Duration) -> Ended {
    Ended::Trap(
        TrapKind::Timeout,
        format!("the guest ran past the wall-clock limit of {timeout:?}"),
    )
}

pub(crate) fn fuel_trap(fuel: u64) -> Ended {
    Ended::Trap(
        TrapKind::OutOfFuel,
        format!("the guest used all {fuel} units of fuel"),
    )
}

/// The sentence for a trap raised by the Wasm code itself.
pub(crate) fn wasm_trap(kind: TrapKind) -> Ended {
    let what = match kind {
        TrapKind::StackOverflow => "the guest exhausted its call stack (unbounded recursion?)",
        TrapKind::Unreachable => {
            "the guest executed `unreachable` (a Rust panic or abort ends this way)"
        }
        TrapKind::OutOfBounds => "the guest accessed memory or a table out of bounds",
        TrapKind::IntegerDivideByZero => "the guest divided an integer by zero",
        TrapKind::IntegerOverflow => "the guest's integer division overflowed",
        TrapKind::BadConversionToInteger => {
            "the guest converted NaN or an out-of-range float to an integer"
        }
        TrapKind::IndirectCallTypeMismatch => {
            "the guest's call_indirect reached a function of the wrong type"
        }
        TrapKind::UninitializedElement => "the guest's call_indirect reached an empty table slot",
        TrapKind::NullReference => "the guest used a null reference",
        other => return Ended::Trap(other, other.as_str().to_string()),
    };
    Ended::Trap(kind, what.to_string())
}
