//! The `covenant` binary's tests: each runs the real binary on real files.
// Test fixtures outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attestation;
mod attestation_dcap;
mod attestation_service;
mod attestation_sev_snp;
mod c_guest;
mod client;
mod completions;
mod demo;
mod policy;
mod receipt;
mod sandbox;
mod serve;
mod wasi_fs;
