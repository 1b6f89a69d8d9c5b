//! The Covenant global policy: the one document every party checks, and agrees to by its hash.
//!
//! A policy names every principal with its certificate, the program (pinned by SHA-256), the
//! inputs and who provides them, the outputs and who reads them, who may start runs, the engine
//! and limits, and which runtime measurements the parties trust. This crate owns:
//!
//! - the model ([`Policy`] and its parts) and strict parsing of the JSON ([`parse`]);
//! - validation that lists every problem with its JSON path ([`validate`] → [`ValidPolicy`]);
//! - roles and capabilities derived from the policy ([`roles`], [`capabilities`]);
//! - the policy hash over the RFC 8785 canonical form ([`PolicyHash`], [`canonical_json`]);
//! - the human-friendly TOML source and its build into JSON ([`build`], [`SourceFiles`]);
//! - the JSON Schema of the format ([`policy_schema`]).
//!
//! It does no I/O: files come in through [`SourceFiles`], the current time through a `now`
//! parameter, the running build's measurement as a value. It knows nothing of TLS, WASI or
//! engines; the runtime maps [`Capabilities`] onto those.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bounds;
mod canonical;
mod model;
mod parse;
mod platform;
mod roles;
mod schema;
mod source;
pub mod units;
mod validate;

pub use canonical::{
    CanonicalError, PolicyHash, PolicyHashParseError, canonical_json, canonical_policy,
};
pub use model::{
    ACCEPTABLE_TCB_STATUSES, Appraisal, Attestation, Execution, FORMAT, FormatTag, FormatVersion,
    Input, Output, Policy, Principal, Program, RerunConsent, Runs, Strategy, VERSION,
};
pub use parse::{ParseError, StrictValue, parse, policy_from_value};
pub use platform::Platform;
pub use roles::{Capabilities, Grant, Phase, Resource, Rights, Role, Subject, capabilities, roles};
pub use schema::policy_schema;
pub use source::{
    BuildError, DEFAULT_MAX_MEMORY, DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, SELF_MEASUREMENT,
    SourceFiles, build, pem_certificate,
};
pub use validate::{
    CertificateInfo, Problem, Problems, ValidPolicy, certificate_der, certificate_info,
    check_guest_path, format_utc, is_lower_hex, validate,
};

/// The policy as pretty-printed JSON with a final newline: what `covenant policy build`
/// writes. Its RFC 8785 form is what [`PolicyHash`] hashes.
///
/// # Errors
///
/// Only if serialisation fails, which a [`Policy`] cannot make it do.
pub fn to_json_pretty(policy: &Policy) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(policy)?;
    text.push('\n');
    Ok(text)
}
