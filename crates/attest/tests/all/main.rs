//! Integration tests of covenant-attest: one binary (see STYLE.md).
// Test fixtures outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod client_verify;
mod csr;
mod dcap;
mod dcap_synthetic;
mod evidence;
mod instance;
mod sev_snp;
mod tls;
