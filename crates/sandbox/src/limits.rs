//! Limits: what one run may use (`RunLimits`) and how an engine is set up (`SandboxConfig`).
//!
//! There is no unlimited run: [`crate::Sandbox::run`] takes a [`RunLimits`], every field of which
//! is a finite bound, and the wall-clock deadline and memory bound apply on both engines.

use std::time::Duration;

use crate::check::ModuleBounds;

/// Default linear-memory bound for one instance: 256 MiB. Stops a `memory.grow` loop from
/// taking the host's memory.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// The largest linear memory any run may have: 4 GiB, all that wasm32 can address.
pub const MAX_MEMORY_BYTES_CEILING: u64 = 4 * 1024 * 1024 * 1024;
/// Default bound on table elements per instance: 10 000. Stops a `table.grow` loop; Rust and
/// C programs use a few hundred.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u32 = 10_000;
/// Default instruction budget: 10 000 000 000 units of fuel (roughly ten seconds of JIT code).
/// Stops a busy loop deterministically, before the deadline if the guest never calls out.
pub const DEFAULT_FUEL: u64 = 10_000_000_000;
/// Default wall-clock deadline: 30 s. Stops a guest that loops, sleeps or waits, on both
/// engines, whatever its fuel.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on stdout plus stderr: 64 MiB. Stops an output flood.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = covenant_wasi::WasiCtxBuilder::DEFAULT_MAX_OUTPUT_BYTES;
/// Default native stack for JIT code: 1 MiB. Stops unbounded recursion with a
/// `stack-overflow` trap before it reaches the host thread's guard page.
pub const DEFAULT_MAX_WASM_STACK_BYTES: usize = 1024 * 1024;
/// Default call depth for the interpreter: 16 384 frames. The interpreter's equivalent of the
/// JIT stack bound.
pub const DEFAULT_MAX_CALL_DEPTH: usize = 16 * 1024;
/// Default number of instances that can be alive at once in one sandbox (pool slots). Bounds
/// the virtual memory the JIT reserves up front.
pub const DEFAULT_MAX_INSTANCES: u32 = 256;
/// How many compiled modules a sandbox keeps (by module hash) so the same module is compiled
/// once.
pub const DEFAULT_CACHE_CAPACITY: usize = 64;

/// The bounds on one run. Every field is finite; [`RunLimits::default`] gives the documented
/// defaults.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunLimits {
    /// Linear-memory bytes. Default [`DEFAULT_MAX_MEMORY_BYTES`]; at most the sandbox's
    /// [`SandboxConfig::max_memory_bytes`].
    pub max_memory_bytes: u64,
    /// Table elements. Default [`DEFAULT_MAX_TABLE_ELEMENTS`].
    pub max_table_elements: u32,
    /// Fuel: the instruction budget. Default [`DEFAULT_FUEL`]. Units are each engine's own
    /// (roughly one per Wasm instruction), so the two engines report different fuel for the
    /// same run.
    pub fuel: u64,
    /// Wall-clock deadline. Default [`DEFAULT_TIMEOUT`].
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Bytes of stdout plus stderr. Default [`DEFAULT_MAX_OUTPUT_BYTES`]. The run applies it
    /// to the WASI context, replacing whatever its builder set.
    pub max_output_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            fuel: DEFAULT_FUEL,
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms: u64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_millis(ms))
    }
}

/// Which engine runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// wasmtime with Cranelift: compiled ahead of running, pooling allocation, copy-on-write
    /// memory images. Fast.
    Jit,
    /// wasmi: an interpreter with a smaller trusted base. Slower, starts at once.
    Interpreter,
}

impl Strategy {
    /// Both strategies, for tests that run everything twice.
    pub const ALL: [Strategy; 2] = [Strategy::Jit, Strategy::Interpreter];

    /// The name used on the command line and in policies: `jit` or `interpreter`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Jit => "jit",
            Strategy::Interpreter => "interpreter",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jit" => Ok(Strategy::Jit),
            "interpreter" => Ok(Strategy::Interpreter),
            other => Err(format!(
                "unknown strategy {other:?}; use \"jit\" or \"interpreter\""
            )),
        }
    }
}

/// How a sandbox's engine is set up. Fixed for the sandbox's life; per-run bounds are
/// [`RunLimits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The engine.
    pub strategy: Strategy,
    /// The largest linear memory any run may ask for; the JIT sizes its pool slots by it.
    /// Default [`DEFAULT_MAX_MEMORY_BYTES`]; at most [`MAX_MEMORY_BYTES_CEILING`].
    pub max_memory_bytes: u64,
    /// The largest table any run may ask for. Default [`DEFAULT_MAX_TABLE_ELEMENTS`].
    pub max_table_elements: u32,
    /// Native stack for JIT code. Default [`DEFAULT_MAX_WASM_STACK_BYTES`].
    pub max_wasm_stack_bytes: usize,
    /// Call depth for the interpreter. Default [`DEFAULT_MAX_CALL_DEPTH`].
    pub max_call_depth: usize,
    /// Instances alive at once. Default [`DEFAULT_MAX_INSTANCES`].
    pub max_instances: u32,
    /// Compiled modules kept in the cache. Default [`DEFAULT_CACHE_CAPACITY`].
    pub cache_capacity: usize,
    /// What a module may contain. Default [`ModuleBounds::default`].
    pub module_bounds: ModuleBounds,
}

impl SandboxConfig {
    /// The defaults for `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        SandboxConfig {
            strategy,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_wasm_stack_bytes: DEFAULT_MAX_WASM_STACK_BYTES,
            max_call_depth: DEFAULT_MAX_CALL_DEPTH,
            max_instances: DEFAULT_MAX_INSTANCES,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            module_bounds: ModuleBounds::default(),
        }
    }
}

/// Formats a byte count the way people read it: `64 MiB`, `1.5 GiB`, `512 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_the_way_people_write_them() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(512), "512 bytes");
    }

    #[test]
    fn strategies_parse_and_print() {
        for s in Strategy::ALL {
            assert_eq!(s.as_str().parse::<Strategy>(), Ok(s));
        }
        assert!(
            "cranelift"
                .parse::<Strategy>()
                .unwrap_err()
                .contains("\"jit\"")
        );
    }
}
