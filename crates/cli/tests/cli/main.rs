//! The `covenant` binary's tests: each runs the real binary on real files.

mod attestation_service;
mod c_guest;
mod client;
mod completions;
mod demo;
mod policy;
mod receipt;
mod sandbox;
mod serve;
mod wasi_fs;
