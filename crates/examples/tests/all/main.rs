//! End-to-end tests of the example computations: each example's guest runs through
//! `covenant-runtime` in-process under the example's own `policy.toml`, every party playing
//! its part, and what the runtime releases is checked against the answer computed in plain
//! Rust from the same generated data.
// Test fixtures outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod examples;
mod support;
