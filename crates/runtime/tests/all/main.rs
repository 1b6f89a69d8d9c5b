//! Integration tests of covenant-runtime: one binary, one module per concern.
// Test fixtures outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod attacks;
mod flow;
mod guest_attacks;
mod matrix;
mod receipts;
mod support;
