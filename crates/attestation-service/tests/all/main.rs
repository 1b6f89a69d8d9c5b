//! Integration tests of covenant-attestation-service: one binary (see STYLE.md).
//!
//! Every service test runs against SQLite, and also against PostgreSQL when
//! `COVENANT_TEST_POSTGRES_URL` is set (CI sets it through `.ci/start-postgres.sh`); each run
//! gets a fresh database.
// Test fixtures outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin;
mod api;
mod concurrency;
mod directory;
mod hardware;
mod hostile;
mod https;
mod instances;
