//! Every numeric bound a policy is checked against, each with the attack or mistake it stops.
//!
//! The runtime enforces the limits a policy states; these bounds stop a policy from stating
//! limits that would make the runtime itself the victim (a host that cannot hold the memory it
//! promised, a run that never ends) or that make no sense for wasm32.

use crate::units::{GIB, KIB, MIB};

/// Size of one WebAssembly page. Linear memory grows in whole pages, so `max_memory_bytes`
/// must be a multiple of it: a limit between pages would be silently rounded by the engine.
pub const WASM_PAGE_BYTES: u64 = 64 * KIB;

/// Smallest memory limit: one page. A module with memory needs at least one page to start.
pub const MIN_MEMORY_BYTES: u64 = WASM_PAGE_BYTES;

/// Largest memory limit: the whole wasm32 address space (65536 pages). Nothing larger can be
/// addressed, so a larger number is a mistake, not a wish.
pub const MAX_MEMORY_BYTES: u64 = 4 * GIB;

/// Largest fuel budget (instructions, roughly): 10^13, hours of work on a fast machine. Stops
/// a policy that makes fuel meaningless by asking for `u64::MAX`; the wall-time limit applies
/// as well.
pub const MAX_FUEL: u64 = 10_000_000_000_000;

/// Shortest wall-time limit: 1 ms.
pub const MIN_TIMEOUT_MS: u64 = 1;

/// Longest wall-time limit: 24 hours. A run that can hold a worker, its memory and every
/// party's data for longer is a denial of service against the host, not a computation.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1_000;

/// Largest total size of everything the program writes (output files, stdout, stderr): 4 GiB.
/// The trusted runtime keeps outputs in memory until readers fetch them; this caps what a
/// guest can make it hold.
pub const MAX_OUTPUT_BYTES: u64 = 4 * GIB;

/// Size bound of an input when the source does not give one: 64 MiB.
pub const DEFAULT_INPUT_MAX_BYTES: u64 = 64 * MIB;

/// Largest size bound of one input: 16 GiB. Inputs live in the runtime's memory; a larger
/// promise would let one data provider exhaust the worker before the program even runs.
pub const MAX_INPUT_BYTES: u64 = 16 * GIB;

/// Largest `runs.max`: 1000 runs without further consent. Each run is another query over
/// everybody's data; an unbounded number of them is a way to extract the data piecewise.
pub const MAX_RUNS: u32 = 1_000;

/// Most principals in one policy: 256. Each is checked on every connection; the bound keeps
/// certificate matching and the role table small.
pub const MAX_PRINCIPALS: usize = 256;

/// Most inputs in one policy.
pub const MAX_INPUTS: usize = 1_024;

/// Most outputs in one policy.
pub const MAX_OUTPUTS: usize = 1_024;

/// Most accepted measurements per platform. A list of thousands would mean "trust anything".
pub const MAX_MEASUREMENTS_PER_PLATFORM: usize = 64;

/// Most program arguments.
pub const MAX_ARGS: usize = 1_024;

/// Most program environment variables.
pub const MAX_ENV: usize = 1_024;

/// Largest total size of program arguments and environment (names, values, one byte each for
/// the `=` and the terminator), like Linux's `ARG_MAX`: the guest asks for these through WASI
/// `args_sizes_get`/`environ_sizes_get`, and the host copies them into guest memory.
pub const MAX_ARGS_ENV_BYTES: usize = 64 * KIB as usize;

/// Longest guest path, in bytes.
pub const MAX_PATH_BYTES: usize = 1_024;

/// Longest principal name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Longest computation id, in bytes: one DNS label, so that the id can be a TLS server name
/// label when the host routes connections.
pub const MAX_COMPUTATION_BYTES: usize = 63;

/// Largest policy document accepted by [`crate::parse`]: 16 MiB. Certificates are the bulk of
/// a policy and are around a kilobyte each; the bound stops a memory bomb handed in as a policy.
pub const MAX_POLICY_BYTES: usize = 16 * MIB as usize;

/// Largest certificate, in bytes of PEM text.
pub const MAX_CERTIFICATE_PEM_BYTES: usize = 64 * KIB as usize;

/// Largest integer the policy JSON may carry: 2^53 − 1, the I-JSON limit (RFC 7493) that RFC
/// 8785 canonicalisation assumes. Every bound above is far below it.
pub const MAX_JSON_INTEGER: u64 = (1 << 53) - 1;
