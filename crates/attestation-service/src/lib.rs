//! The Covenant attestation service.
//!
//! A runtime proves what it is to this service once; the service issues a short-lived X.509
//! certificate for the runtime's TLS key carrying what was proven (platform, measurement,
//! policy hash, computation id), and clients check that certificate in the TLS handshake
//! (`covenant_attest::AttestedServerVerifier`). This crate is the service:
//!
//! - [`dir`]: the service directory (`ca.crt`, `ca.key`, the SQLite database);
//! - [`db`]: the database, SQLite or PostgreSQL through one query set, with migrations;
//! - [`service`]: the logic — nonces, evidence checks, issuance (one live instance per
//!   computation), the end of instances, status — and the audit log;
//! - [`admin`]: enrolment, reference values, revocation;
//! - [`http`]: the JSON API and its body limits; [`serve()`]: plain HTTP or HTTPS;
//! - [`client`]: a client for the API;
//! - [`error`]: one error type and the policy for what the peer sees.
//!
//! What it does not do: verify hardware evidence (only the software platform has a verifier;
//! see `covenant_attest::platform`), rate-limit callers (put it behind a proxy that does if it
//! faces the internet), or publish CRLs (status is per certificate, and certificates are
//! short-lived).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod client;
pub mod db;
pub mod dir;
pub mod error;
pub mod http;
mod serve;
pub mod service;

pub use client::{AttestationClient, ClientError};
pub use db::Database;
pub use dir::ServiceDir;
pub use error::ServiceError;
pub use serve::{
    DEFAULT_TLS_NAMES, MAX_CONCURRENT_TLS_HANDSHAKES, SERVER_CERTIFICATE_LIFETIME,
    TLS_HANDSHAKE_TIMEOUT, serve, tls_config,
};
pub use service::{AttestationService, ServiceConfig};
