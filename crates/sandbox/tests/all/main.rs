//! The sandbox's integration tests, in one binary (one link of wasmtime instead of five).
//! Every guest runs on both strategies; a case states one expected outcome, so the engines
//! agree whenever it passes.
// Test fixtures outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod artifacts;
mod compile_bounds;
mod containment;
mod fs_attack;
mod guests;
mod hostile;
mod wasi_testsuite;

use std::sync::OnceLock;
use std::time::Duration;

use covenant_sandbox::{Entry, RunLimits, RunOutput, Sandbox, SandboxConfig, Strategy};
use covenant_wasi::WasiCtx;

/// One shared sandbox per strategy, as a host would have: tests also show that nothing one
/// test's guest does reaches another's.
pub fn sandbox(strategy: Strategy) -> &'static Sandbox {
    static JIT: OnceLock<Sandbox> = OnceLock::new();
    static INTERP: OnceLock<Sandbox> = OnceLock::new();
    let cell = match strategy {
        Strategy::Jit => &JIT,
        Strategy::Interpreter => &INTERP,
    };
    cell.get_or_init(|| Sandbox::new(SandboxConfig::new(strategy)).expect("sandbox"))
}

/// Limits small enough that hostile guests fail fast.
pub fn small_limits() -> RunLimits {
    RunLimits {
        max_memory_bytes: 32 << 20,
        max_table_elements: 1_000,
        fuel: 2_000_000_000,
        timeout: Duration::from_secs(20),
        max_output_bytes: 1 << 20,
    }
}

/// Loads and runs `wasm` as a command, panicking on anything but a finished run.
pub fn run_bytes(strategy: Strategy, wasm: &[u8], wasi: WasiCtx, limits: &RunLimits) -> RunOutput {
    let sandbox = sandbox(strategy);
    let module = sandbox
        .load(wasm)
        .unwrap_or_else(|e| panic!("{strategy}: load: {e}"));
    sandbox
        .run(&module, wasi, limits, &Entry::Command)
        .unwrap_or_else(|e| panic!("{strategy}: run: {e}"))
}

/// Runs a WAT fixture as a command with an empty WASI context.
pub fn run_wat(strategy: Strategy, wat: &str, limits: &RunLimits) -> RunOutput {
    let wasm = wat::parse_str(wat).expect("fixture parses");
    run_bytes(
        strategy,
        &wasm,
        WasiCtx::builder("fixture").build().unwrap(),
        limits,
    )
}
