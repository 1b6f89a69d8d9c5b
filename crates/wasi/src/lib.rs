//! WASI preview1 for Covenant, written once and bound into both engines.
//!
//! The sandbox hands each host call a [`WasiCtx`] (the instance's WASI state) and a
//! [`GuestMemory`] (its linear memory, bounds-checked); the functions in [`preview1`] do the
//! rest and answer with an errno or a [`Termination`]. Nothing here knows which engine runs the
//! guest, and nothing here knows about principals: a context's file-system view comes from a
//! capability table handed in by whoever builds it.
//!
//! Files live in [`fs`]: an in-memory file system, shared by the program and each principal
//! through their own capability-checked views, bounded by quotas, confined to its preopens.
//!
//! What this crate does not do: compile or run Wasm (that is `covenant-sandbox`), or touch the
//! host's file system while a guest runs.
#![forbid(unsafe_code)]

mod ctx;
pub mod fs;
pub mod memory;
pub mod preview1;
pub mod types;

pub use ctx::{BuildError, MAX_ARGS_ENV_BYTES, OutputSink, Termination, WasiCtx, WasiCtxBuilder};
pub use memory::GuestMemory;
