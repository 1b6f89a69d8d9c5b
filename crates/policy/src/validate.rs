//! Validation that explains itself: every rule a policy must satisfy, all checked at once.
//!
//! Each broken rule becomes a [`Problem`] that names the field by its JSON path, says what is
//! wrong and what would be right. [`validate`] returns every problem, never just the first, so
//! a person fixing a policy sees the whole list in one go.
//!
//! The rules, in the order they are checked (docs/policy.md has the same list):
//!
//! 1. `computation` is one DNS label; `expires` is an RFC 3339 UTC time in the future.
//! 2. principals: at least one, at most [`MAX_PRINCIPALS`]; names well-formed and unique;
//!    certificates are one PEM `CERTIFICATE` block each, parse as X.509, are valid at `now`,
//!    and are distinct (compared as DER).
//! 3. program: a name, a SHA-256 of 64 lowercase hex digits, a declared provider, bounded
//!    args and env without NUL bytes or `=` in names.
//! 4. inputs: at most [`MAX_INPUTS`]; paths absolute and normalised; a declared provider; an
//!    optional SHA-256 well-formed; `max_bytes` from 1 to [`MAX_INPUT_BYTES`].
//! 5. outputs: at least one, at most [`MAX_OUTPUTS`]; path absolute and normalised, or
//!    `stdout`/`stderr`; at least one reader, each declared, none twice.
//! 6. All input and output paths distinct, and none inside another.
//! 7. runs: at least one starter, each declared, none twice; `max` from 1 to [`MAX_RUNS`].
//! 8. execution: every limit within the bounds of [`crate::bounds`].
//! 9. attestation: the service is an `http://` or `https://` URL; the CA certificate parses,
//!    is a CA and is valid at `now`; measurements name known platforms only, each
//!    well-formed for its platform, none twice, at least one in all.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::bounds::{
    MAX_ARGS, MAX_ARGS_ENV_BYTES, MAX_CERTIFICATE_PEM_BYTES, MAX_COMPUTATION_BYTES, MAX_ENV,
    MAX_FUEL, MAX_INPUT_BYTES, MAX_INPUTS, MAX_MEASUREMENTS_PER_PLATFORM, MAX_MEMORY_BYTES,
    MAX_NAME_BYTES, MAX_OUTPUT_BYTES, MAX_OUTPUTS, MAX_PATH_BYTES, MAX_PRINCIPALS, MAX_RUNS,
    MAX_TIMEOUT_MS, MIN_MEMORY_BYTES, MIN_TIMEOUT_MS, WASM_PAGE_BYTES,
};
use crate::canonical::PolicyHash;
use crate::model::{Policy, Principal};
use crate::platform::Platform;
use crate::units::{ShowBytes, ShowMillis};

/// One broken rule: where, what is wrong, and what would be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path of the field, e.g. `inputs[1].provider` or `attestation.measurements.sgx[0]`.
    pub path: String,
    /// What is wrong and what would be right, e.g. `"hospital-c" is not a declared principal;
    /// declared principals are hospital-a, hospital-b, researcher`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a policy, in document order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// The problems, in document order.
    #[must_use]
    pub fn as_slice(&self) -> &[Problem] {
        &self.0
    }

    /// How many problems there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never true for a [`validate`] error).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Problems {
    /// One problem per line, each `path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// A policy that passed every rule at a given time, with what validation learnt on the way.
///
/// Only [`validate`] makes one, so holding a `ValidPolicy` proves the checks ran: the trusted
/// runtime should accept nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPolicy {
    policy: Policy,
    expires: OffsetDateTime,
    hash: PolicyHash,
    principal_certificates: Vec<Vec<u8>>,
    ca_certificate: Vec<u8>,
}

impl ValidPolicy {
    /// The policy document.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy document, giving up the proof of validation.
    #[must_use]
    pub fn into_policy(self) -> Policy {
        self.policy
    }

    /// When the policy expires.
    #[must_use]
    pub fn expires(&self) -> OffsetDateTime {
        self.expires
    }

    /// The policy hash.
    #[must_use]
    pub fn hash(&self) -> PolicyHash {
        self.hash
    }

    /// The DER of the named principal's certificate, or `None` if no such principal.
    #[must_use]
    pub fn certificate_der(&self, principal: &str) -> Option<&[u8]> {
        let index = self
            .policy
            .principals
            .iter()
            .position(|p| p.name == principal)?;
        self.principal_certificates.get(index).map(Vec::as_slice)
    }

    /// The name of the principal whose certificate is exactly `der`, if any: how the runtime
    /// maps a client's TLS certificate to a principal.
    #[must_use]
    pub fn principal_with_certificate(&self, der: &[u8]) -> Option<&str> {
        let index = self.principal_certificates.iter().position(|c| c == der)?;
        self.policy.principals.get(index).map(|p| p.name.as_str())
    }

    /// The DER of the attestation service's CA certificate.
    #[must_use]
    pub fn ca_certificate_der(&self) -> &[u8] {
        &self.ca_certificate
    }
}

/// Checks every rule (see the module documentation) against the policy at time `now`.
///
/// `now` is a parameter, not the system clock, so that results are reproducible; callers pass
/// `OffsetDateTime::now_utc()`.
///
/// # Errors
///
/// [`Problems`]: every broken rule, in document order.
pub fn validate(policy: &Policy, now: OffsetDateTime) -> Result<ValidPolicy, Problems> {
    let mut check = Checker {
        problems: Vec::new(),
        now,
        declared: Vec::new(),
    };
    check.declared = policy.principals.iter().map(|p| p.name.clone()).collect();

    check.computation(&policy.computation);
    let expires = check.expires(&policy.expires);
    let principal_certificates = check.principals(&policy.principals);
    check.program(policy);
    check.inputs(policy);
    check.outputs(policy);
    check.paths_distinct(policy);
    check.runs(policy);
    check.execution(policy);
    let ca_certificate = check.attestation(policy);

    let hash = match PolicyHash::of(policy) {
        Ok(hash) => Some(hash),
        Err(error) => {
            check.problem(".", format!("cannot be hashed: {error}"));
            None
        }
    };
    match (
        check.problems.is_empty(),
        expires,
        principal_certificates,
        ca_certificate,
        hash,
    ) {
        (true, Some(expires), Some(principal_certificates), Some(ca_certificate), Some(hash)) => {
            Ok(ValidPolicy {
                policy: policy.clone(),
                expires,
                hash,
                principal_certificates,
                ca_certificate,
            })
        }
        _ => Err(Problems(check.problems)),
    }
}

struct Checker {
    problems: Vec<Problem>,
    now: OffsetDateTime,
    declared: Vec<String>,
}

impl Checker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn computation(&mut self, id: &str) {
        if id.is_empty() {
            self.problem(
                "computation",
                "is empty; give the computation an id like \"hospital-study\"",
            );
        } else if !is_dns_label(id) {
            self.problem(
                "computation",
                format!(
                    "{id:?} is not a valid id; use 1 to {MAX_COMPUTATION_BYTES} lowercase letters, \
                     digits and hyphens, not starting or ending with a hyphen, like \"hospital-study\""
                ),
            );
        }
    }

    fn expires(&mut self, text: &str) -> Option<OffsetDateTime> {
        let parsed = match OffsetDateTime::parse(text, &Rfc3339) {
            Ok(parsed) => parsed,
            Err(_) => {
                self.problem(
                    "expires",
                    format!("{text:?} is not an RFC 3339 time; write a UTC time like \"2027-06-01T00:00:00Z\""),
                );
                return None;
            }
        };
        let canonical = format_utc(parsed);
        if text != canonical || parsed.nanosecond() != 0 {
            self.problem(
                "expires",
                format!("{text:?} must be written in UTC, in whole seconds, as {canonical:?}"),
            );
            return None;
        }
        if parsed <= self.now {
            self.problem(
                "expires",
                format!(
                    "{text} is in the past (now is {}); choose a later time",
                    format_utc(self.now)
                ),
            );
            return None;
        }
        Some(parsed)
    }

    fn principals(&mut self, principals: &[Principal]) -> Option<Vec<Vec<u8>>> {
        if principals.is_empty() {
            self.problem("principals", "no principals; a policy needs at least one");
        }
        if principals.len() > MAX_PRINCIPALS {
            self.problem(
                "principals",
                format!(
                    "{} principals; at most {MAX_PRINCIPALS} are allowed",
                    principals.len()
                ),
            );
        }
        let mut first_with_name: BTreeMap<&str, usize> = BTreeMap::new();
        let mut first_with_der: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let mut ders = Vec::with_capacity(principals.len());
        let mut all_parsed = true;
        for (index, principal) in principals.iter().enumerate() {
            let name = principal.name.as_str();
            if !is_principal_name(name) {
                self.problem(
                    format!("principals[{index}].name"),
                    format!(
                        "{name:?} is not a valid principal name; use 1 to {MAX_NAME_BYTES} letters, \
                         digits, '.', '_' or '-', starting with a letter or digit"
                    ),
                );
            }
            if let Some(first) = first_with_name.get(name) {
                self.problem(
                    format!("principals[{index}].name"),
                    format!("{name:?} is declared twice (also principals[{first}]); principal names must be unique"),
                );
            } else {
                first_with_name.insert(name, index);
            }
            let path = format!("principals[{index}].certificate");
            match self.certificate(&path, &principal.certificate, false) {
                Some(der) => {
                    if let Some(first) = first_with_der.get(&der) {
                        let first_name = principals
                            .get(*first)
                            .map(|p| p.name.as_str())
                            .unwrap_or_default();
                        self.problem(
                            path,
                            format!(
                                "the same certificate as principals[{first}] ({first_name:?}); each \
                                 principal needs its own certificate"
                            ),
                        );
                    } else {
                        first_with_der.insert(der.clone(), index);
                    }
                    ders.push(der);
                }
                None => all_parsed = false,
            }
        }
        all_parsed.then_some(ders)
    }

    /// Parses a PEM certificate and checks it is valid at `now` (and a CA if `must_be_ca`);
    /// returns its DER if it parsed, even when another check failed.
    fn certificate(&mut self, path: &str, pem: &str, must_be_ca: bool) -> Option<Vec<u8>> {
        let der = match certificate_der(pem) {
            Ok(der) => der,
            Err(message) => {
                self.problem(path, message);
                return None;
            }
        };
        let Ok((_, certificate)) = X509Certificate::from_der(&der) else {
            // certificate_der already parsed it; this cannot fail, but report rather than panic.
            self.problem(path, "is not a valid X.509 certificate");
            return None;
        };
        let validity = certificate.validity();
        let not_before = OffsetDateTime::from_unix_timestamp(validity.not_before.timestamp());
        let not_after = OffsetDateTime::from_unix_timestamp(validity.not_after.timestamp());
        match (not_before, not_after) {
            (Ok(not_before), Ok(not_after)) => {
                if self.now < not_before {
                    self.problem(
                        path,
                        format!(
                            "is not valid before {} (now is {}); check the clock of the machine that made it",
                            format_utc(not_before),
                            format_utc(self.now)
                        ),
                    );
                } else if self.now > not_after {
                    self.problem(
                        path,
                        format!(
                            "expired on {} (now is {}); use a current certificate",
                            format_utc(not_after),
                            format_utc(self.now)
                        ),
                    );
                }
            }
            _ => self.problem(path, "has a validity period outside the years 1 to 9999"),
        }
        if must_be_ca && !certificate.is_ca() {
            self.problem(
                path,
                format!(
                    "{} is not a CA certificate (no basicConstraints cA=true); give the attestation \
                     service's CA certificate, not a leaf",
                    certificate.subject()
                ),
            );
        }
        Some(der)
    }

    fn principal_reference(&mut self, path: String, name: &str) {
        if !self.declared.iter().any(|d| d == name) {
            let declared = if self.declared.is_empty() {
                "no principals are declared".to_owned()
            } else {
                format!("declared principals are {}", self.declared.join(", "))
            };
            self.problem(
                path,
                format!("{name:?} is not a declared principal; {declared}"),
            );
        }
    }

    /// A list of principal names: non-empty (unless `may_be_empty`), each declared, none twice.
    fn principal_list(&mut self, path: &str, names: &[String], what: &str) {
        if names.is_empty() {
            self.problem(
                path,
                format!(
                    "is empty; list at least one {what} ({})",
                    self.declared_hint()
                ),
            );
        }
        for (index, name) in names.iter().enumerate() {
            if names[..index].contains(name) {
                self.problem(
                    format!("{path}[{index}]"),
                    format!("{name:?} is listed twice"),
                );
            } else {
                self.principal_reference(format!("{path}[{index}]"), name);
            }
        }
    }

    fn declared_hint(&self) -> String {
        if self.declared.is_empty() {
            "no principals are declared".to_owned()
        } else {
            format!("declared principals are {}", self.declared.join(", "))
        }
    }

    fn program(&mut self, policy: &Policy) {
        let program = &policy.program;
        if program.name.is_empty() {
            self.problem(
                "program.name",
                "is empty; name the program, e.g. after its file",
            );
        } else if program.name.len() > 255 || program.name.contains(['/', '\0']) {
            self.problem(
                "program.name",
                format!(
                    "{:?} is not a file name; use at most 255 bytes without '/' or NUL",
                    program.name
                ),
            );
        }
        self.sha256("program.sha256", &program.sha256);
        self.principal_reference("program.provider".to_owned(), &program.provider);
        if program.args.len() > MAX_ARGS {
            self.problem(
                "program.args",
                format!(
                    "{} arguments; at most {MAX_ARGS} are allowed",
                    program.args.len()
                ),
            );
        }
        for (index, arg) in program.args.iter().enumerate() {
            if arg.contains('\0') {
                self.problem(
                    format!("program.args[{index}]"),
                    "contains a NUL byte, which WASI cannot pass",
                );
            }
        }
        if program.env.len() > MAX_ENV {
            self.problem(
                "program.env",
                format!(
                    "{} variables; at most {MAX_ENV} are allowed",
                    program.env.len()
                ),
            );
        }
        for (name, value) in &program.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                self.problem(
                    format!("program.env.{name}"),
                    format!(
                        "{name:?} is not a variable name; use a non-empty name without '=' or NUL"
                    ),
                );
            }
            if value.contains('\0') {
                self.problem(
                    format!("program.env.{name}"),
                    "the value contains a NUL byte, which WASI cannot pass",
                );
            }
        }
        let total: usize = program.name.len()
            + 1
            + program.args.iter().map(|a| a.len() + 1).sum::<usize>()
            + program
                .env
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>();
        if total > MAX_ARGS_ENV_BYTES {
            self.problem(
                "program",
                format!(
                    "name, args and env take {total} bytes; at most {MAX_ARGS_ENV_BYTES} are allowed"
                ),
            );
        }
    }

    fn sha256(&mut self, path: &str, text: &str) {
        if !is_lower_hex(text, 32) {
            let hint = if is_lower_hex(&text.to_ascii_lowercase(), 32) {
                "write the hex digits in lowercase".to_owned()
            } else {
                format!(
                    "expected 64 lowercase hex digits, found {} characters",
                    text.chars().count()
                )
            };
            self.problem(path, format!("{text:?} is not a SHA-256; {hint}"));
        }
    }

    fn inputs(&mut self, policy: &Policy) {
        if policy.inputs.len() > MAX_INPUTS {
            self.problem(
                "inputs",
                format!(
                    "{} inputs; at most {MAX_INPUTS} are allowed",
                    policy.inputs.len()
                ),
            );
        }
        for (index, input) in policy.inputs.iter().enumerate() {
            if let Err(message) = check_guest_path(&input.path) {
                self.problem(format!("inputs[{index}].path"), message);
            }
            self.principal_reference(format!("inputs[{index}].provider"), &input.provider);
            if let Some(sha256) = &input.sha256 {
                self.sha256(&format!("inputs[{index}].sha256"), sha256);
            }
            if input.max_bytes == 0 || input.max_bytes > MAX_INPUT_BYTES {
                self.problem(
                    format!("inputs[{index}].max_bytes"),
                    format!(
                        "{} is out of bounds; use 1 to {MAX_INPUT_BYTES} bytes ({})",
                        input.max_bytes,
                        ShowBytes(MAX_INPUT_BYTES)
                    ),
                );
            }
        }
    }

    fn outputs(&mut self, policy: &Policy) {
        if policy.outputs.is_empty() {
            self.problem(
                "outputs",
                "no outputs; a computation needs at least one (a path, \"stdout\" or \"stderr\") with readers",
            );
        }
        if policy.outputs.len() > MAX_OUTPUTS {
            self.problem(
                "outputs",
                format!(
                    "{} outputs; at most {MAX_OUTPUTS} are allowed",
                    policy.outputs.len()
                ),
            );
        }
        for (index, output) in policy.outputs.iter().enumerate() {
            if !matches!(output.path.as_str(), "stdout" | "stderr")
                && let Err(message) = check_guest_path(&output.path)
            {
                self.problem(
                    format!("outputs[{index}].path"),
                    format!("{message} (or use \"stdout\" or \"stderr\")"),
                );
            }
            self.principal_list(
                &format!("outputs[{index}].readers"),
                &output.readers,
                "reader",
            );
        }
    }

    /// Every input and output path is distinct, and no file path is inside another.
    fn paths_distinct(&mut self, policy: &Policy) {
        let all: Vec<(String, &str)> = policy
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| (format!("inputs[{i}].path"), input.path.as_str()))
            .chain(
                policy
                    .outputs
                    .iter()
                    .enumerate()
                    .map(|(i, output)| (format!("outputs[{i}].path"), output.path.as_str())),
            )
            .collect();
        for (index, (path, text)) in all.iter().enumerate() {
            for (earlier_path, earlier) in &all[..index] {
                if text == earlier {
                    self.problem(
                        path.clone(),
                        format!("{text:?} is also {earlier_path}; every input and output needs its own path"),
                    );
                } else if is_inside(text, earlier) {
                    self.problem(
                        path.clone(),
                        format!("{text:?} is inside {earlier_path} {earlier:?}, which is a file; choose a path outside it"),
                    );
                } else if is_inside(earlier, text) {
                    self.problem(
                        path.clone(),
                        format!("{text:?} contains {earlier_path} {earlier:?}, so it cannot be a file; choose another path"),
                    );
                }
            }
        }
    }

    fn runs(&mut self, policy: &Policy) {
        self.principal_list(
            "runs.starters",
            &policy.runs.starters,
            "principal who may start a run",
        );
        let max = policy.runs.max;
        if max == 0 || max > MAX_RUNS {
            self.problem(
                "runs.max",
                format!("{max} is out of bounds; use 1 to {MAX_RUNS}"),
            );
        }
    }

    fn execution(&mut self, policy: &Policy) {
        let execution = &policy.execution;
        let memory = execution.max_memory_bytes;
        if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&memory) {
            self.problem(
                "execution.max_memory_bytes",
                format!(
                    "{memory} is out of bounds; use {MIN_MEMORY_BYTES} (64 KiB) to {MAX_MEMORY_BYTES} (4 GiB, all of wasm32)"
                ),
            );
        } else if !memory.is_multiple_of(WASM_PAGE_BYTES) {
            let up = memory.div_ceil(WASM_PAGE_BYTES) * WASM_PAGE_BYTES;
            self.problem(
                "execution.max_memory_bytes",
                format!(
                    "{memory} is not a whole number of 64 KiB wasm pages; use {up} ({})",
                    ShowBytes(up)
                ),
            );
        }
        if let Some(fuel) = execution.fuel
            && (fuel == 0 || fuel > MAX_FUEL)
        {
            self.problem(
                "execution.fuel",
                format!("{fuel} is out of bounds; use 1 to {MAX_FUEL}, or leave fuel out"),
            );
        }
        let timeout = execution.timeout_ms;
        if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout) {
            self.problem(
                "execution.timeout_ms",
                format!(
                    "{timeout} is out of bounds; use {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS} milliseconds ({})",
                    ShowMillis(MAX_TIMEOUT_MS)
                ),
            );
        }
        if execution.max_output_bytes > MAX_OUTPUT_BYTES {
            self.problem(
                "execution.max_output_bytes",
                format!(
                    "{} is out of bounds; use 0 to {MAX_OUTPUT_BYTES} bytes ({})",
                    execution.max_output_bytes,
                    ShowBytes(MAX_OUTPUT_BYTES)
                ),
            );
        }
    }

    fn attestation(&mut self, policy: &Policy) -> Option<Vec<u8>> {
        let attestation = &policy.attestation;
        if let Err(message) = check_service_url(&attestation.service) {
            self.problem("attestation.service", message);
        }
        let ca = self.certificate(
            "attestation.ca_certificate",
            &attestation.ca_certificate,
            true,
        );
        let total: usize = attestation.measurements.values().map(Vec::len).sum();
        if total == 0 {
            self.problem(
                "attestation.measurements",
                "no accepted measurements; list at least one, e.g. software = [the output of `covenant measurement`]",
            );
        }
        for (name, values) in &attestation.measurements {
            let path = format!("attestation.measurements.{name}");
            let Some(platform) = Platform::from_name(name) else {
                self.problem(
                    path,
                    format!(
                        "unknown platform {name:?}; known platforms are {}",
                        Platform::all_names()
                    ),
                );
                continue;
            };
            if values.is_empty() && total > 0 {
                self.problem(
                    path.clone(),
                    "is empty; list measurements or leave the platform out",
                );
            }
            if values.len() > MAX_MEASUREMENTS_PER_PLATFORM {
                self.problem(
                    path.clone(),
                    format!(
                        "{} measurements; at most {MAX_MEASUREMENTS_PER_PLATFORM} per platform are allowed",
                        values.len()
                    ),
                );
            }
            for (index, value) in values.iter().enumerate() {
                let len = platform.measurement_len();
                if !is_lower_hex(value, len) {
                    let case = if is_lower_hex(&value.to_ascii_lowercase(), len) {
                        "write the hex digits in lowercase".to_owned()
                    } else {
                        format!(
                            "expected {} lowercase hex digits, found {} characters",
                            len * 2,
                            value.chars().count()
                        )
                    };
                    self.problem(
                        format!("{path}[{index}]"),
                        format!("{value:?} is not {}; {case}", platform.measurement_kind()),
                    );
                } else if values[..index].contains(value) {
                    self.problem(
                        format!("{path}[{index}]"),
                        format!("{value:?} is listed twice"),
                    );
                }
            }
        }
        self.appraisal(attestation);
        ca
    }

    /// `attestation.appraisal`: each entry names a hardware platform the policy lists
    /// measurements for, and each rule applies to that platform.
    fn appraisal(&mut self, attestation: &crate::Attestation) {
        for (name, rules) in &attestation.appraisal {
            let path = format!("attestation.appraisal.{name}");
            match Platform::from_name(name) {
                None => {
                    self.problem(
                        path,
                        format!(
                            "unknown platform {name:?}; known platforms are {}",
                            Platform::all_names()
                        ),
                    );
                    continue;
                }
                Some(Platform::Software) => {
                    self.problem(
                        path,
                        "the software platform has no hardware to appraise; leave it out",
                    );
                    continue;
                }
                Some(Platform::TrustZone | Platform::Sel4) => {
                    self.problem(
                        path,
                        format!("Covenant cannot verify {name} evidence yet; leave it out"),
                    );
                    continue;
                }
                Some(_) if !attestation.measurements.contains_key(name) => {
                    self.problem(
                        path,
                        format!(
                            "rules for {name}, but attestation.measurements lists no {name} \
                             measurement; add one or leave these rules out"
                        ),
                    );
                    continue;
                }
                Some(_) => {}
            }
            let dcap = name == "tdx" || name == "sgx";
            if rules.allow_migration_agent && name != "sev-snp" {
                self.problem(
                    format!("{path}.allow_migration_agent"),
                    "applies to sev-snp only",
                );
            }
            if !dcap && !rules.accepted_tcb_statuses.is_empty() {
                self.problem(
                    format!("{path}.accepted_tcb_statuses"),
                    "applies to tdx and sgx only (Intel TCB statuses)",
                );
            }
            for (index, status) in rules.accepted_tcb_statuses.iter().enumerate() {
                let at = format!("{path}.accepted_tcb_statuses[{index}]");
                if status == "up-to-date" {
                    self.problem(at, "up-to-date is always accepted; leave it out");
                } else if status == "revoked" {
                    self.problem(
                        at,
                        "a revoked TCB is never accepted: its keys may be in an attacker's hands",
                    );
                } else if !crate::ACCEPTABLE_TCB_STATUSES.contains(&status.as_str()) {
                    self.problem(
                        at,
                        format!(
                            "unknown TCB status {status:?}; known: {}",
                            crate::ACCEPTABLE_TCB_STATUSES.join(", ")
                        ),
                    );
                } else if rules.accepted_tcb_statuses[..index].contains(status) {
                    self.problem(at, format!("{status:?} is listed twice"));
                }
            }
            if name != "sgx" && (rules.sgx_mrsigner.is_some() || rules.sgx_isv_prod_id.is_some()) {
                self.problem(
                    path.clone(),
                    "sgx_mrsigner and sgx_isv_prod_id apply to sgx only",
                );
            }
            if let Some(signer) = &rules.sgx_mrsigner
                && !is_lower_hex(signer, 32)
            {
                self.problem(
                    format!("{path}.sgx_mrsigner"),
                    format!("{signer:?} is not an MRSIGNER: expected 64 lowercase hex digits"),
                );
            }
        }
    }
}

/// Formats a time as RFC 3339 UTC in whole seconds: `2027-06-01T00:00:00Z`.
#[must_use]
pub fn format_utc(time: OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| utc.to_string())
}

/// Decodes a PEM text holding exactly one `CERTIFICATE` block into its DER, checking that the
/// DER is one X.509 certificate with nothing after it.
///
/// # Errors
///
/// A message saying what is wrong and what is expected.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    const EXPECTED: &str = "expected one PEM block \"-----BEGIN CERTIFICATE-----\"";
    if pem.len() > MAX_CERTIFICATE_PEM_BYTES {
        return Err(format!(
            "is {} bytes; a certificate is at most {MAX_CERTIFICATE_PEM_BYTES} bytes of PEM",
            pem.len()
        ));
    }
    let mut blocks = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        match block {
            Ok(block) => blocks.push(block),
            Err(error) => return Err(format!("is not valid PEM ({error}); {EXPECTED}")),
        }
    }
    let block = match blocks.as_slice() {
        [] => return Err(format!("is not a PEM certificate; {EXPECTED}")),
        [block] => block,
        more => return Err(format!("holds {} PEM blocks; {EXPECTED}", more.len())),
    };
    if block.label != "CERTIFICATE" {
        return Err(format!("is a PEM {:?} block; {EXPECTED}", block.label));
    }
    match X509Certificate::from_der(&block.contents) {
        Ok(([], _)) => Ok(block.contents.clone()),
        Ok(_) => Err(
            "has bytes after the X.509 certificate; expected exactly one certificate".to_owned(),
        ),
        Err(error) => Err(format!("is not a valid X.509 certificate ({error})")),
    }
}

/// What a person checks about a certificate in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject, e.g. `CN=hospital-a`.
    pub subject: String,
    /// The end of the validity period.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER: the fingerprint to compare with its owner out of band.
    pub fingerprint: [u8; 32],
}

/// Describes a DER certificate for people: subject, expiry, fingerprint.
///
/// # Errors
///
/// A message if the DER is not an X.509 certificate.
pub fn certificate_info(der: &[u8]) -> Result<CertificateInfo, String> {
    let (_, certificate) = X509Certificate::from_der(der)
        .map_err(|error| format!("is not a valid X.509 certificate ({error})"))?;
    let not_after =
        OffsetDateTime::from_unix_timestamp(certificate.validity().not_after.timestamp())
            .map_err(|_| "has a validity period outside the years 1 to 9999".to_owned())?;
    Ok(CertificateInfo {
        subject: certificate.subject().to_string(),
        not_after,
        fingerprint: Sha256::digest(der).into(),
    })
}

/// Whether `text` is exactly `bytes * 2` lowercase hex digits.
#[must_use]
pub fn is_lower_hex(text: &str, bytes: usize) -> bool {
    text.len() == bytes * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_dns_label(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_COMPUTATION_BYTES
        && id
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && !id.starts_with('-')
        && !id.ends_with('-')
}

fn is_principal_name(name: &str) -> bool {
    name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks that a guest path is absolute and normalised.
///
/// # Errors
///
/// A message saying what is wrong and, where one exists, the normalised path to write instead.
pub fn check_guest_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty; write an absolute path like \"/input/data.csv\"".to_owned());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_PATH_BYTES} are allowed",
            path.len()
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(format!(
            "{path:?} contains a control character; use printable characters only"
        ));
    }
    if path.contains('\\') {
        return Err(format!(
            "{path:?} contains '\\'; guest paths use '/' as separator"
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "{path:?} is not absolute; write {:?}",
            normalise(&format!("/{path}"))
        ));
    }
    let normalised = normalise(path);
    if normalised == "/" {
        return Err(format!(
            "{path:?} is the root directory; name a file, like \"/input/data.csv\""
        ));
    }
    if normalised != path {
        return Err(format!("{path:?} is not normalised; write {normalised:?}"));
    }
    Ok(())
}

/// Lexical normalisation: drops empty and `.` components, resolves `..` (never above `/`),
/// and removes a trailing `/`.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether guest path `inner` lies strictly inside `outer`.
fn is_inside(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Checks the attestation service URL: `http://` or `https://`, a host, no spaces.
fn check_service_url(url: &str) -> Result<(), String> {
    const EXAMPLE: &str = "\"https://attestation.example:3010\"";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(format!(
            "{url:?} is not an http:// or https:// URL; write e.g. {EXAMPLE}"
        ));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{url:?} contains spaces or control characters; write e.g. {EXAMPLE}"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "{url:?} contains credentials; a policy is public, leave them out"
        ));
    }
    // `[v6]:port`, `host:port` or `host`.
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => {
                    return Err(format!(
                        "{url:?} has text after the IPv6 address; write e.g. {EXAMPLE}"
                    ));
                }
            },
            None => return Err(format!("{url:?} has an unclosed '['; write e.g. {EXAMPLE}")),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && (!port.bytes().all(|b| b.is_ascii_digit()) || !matches!(port.parse::<u16>(), Ok(1..)))
    {
        return Err(format!(
            "{url:?} has an invalid port {port:?}; use 1 to 65535"
        ));
    }
    if host.is_empty() {
        return Err(format!("{url:?} has no host; write e.g. {EXAMPLE}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths() {
        assert_eq!(check_guest_path("/input/a.csv"), Ok(()));
        assert_eq!(
            check_guest_path("input/a.csv"),
            Err("\"input/a.csv\" is not absolute; write \"/input/a.csv\"".to_owned())
        );
        assert_eq!(
            check_guest_path("/input/../x//y/./z/"),
            Err("\"/input/../x//y/./z/\" is not normalised; write \"/x/y/z\"".to_owned())
        );
        assert!(check_guest_path("/").is_err_and(|m| m.contains("root directory")));
        assert!(check_guest_path("/..").is_err_and(|m| m.contains("root directory")));
        assert!(check_guest_path("").is_err_and(|m| m.starts_with("is empty")));
        assert!(check_guest_path("/a\0b").is_err_and(|m| m.contains("control character")));
        assert!(check_guest_path("/a\\b").is_err_and(|m| m.contains("'\\'")));
        assert!(check_guest_path(&format!("/{}", "a".repeat(MAX_PATH_BYTES))).is_err());
    }

    #[test]
    fn inside() {
        assert!(is_inside("/a/b", "/a"));
        assert!(!is_inside("/ab", "/a"));
        assert!(!is_inside("/a", "/a"));
    }

    #[test]
    fn service_urls() {
        assert_eq!(check_service_url("http://127.0.0.1:3010"), Ok(()));
        assert_eq!(check_service_url("https://attest.example/v1"), Ok(()));
        assert_eq!(check_service_url("https://[::1]:443"), Ok(()));
        assert!(check_service_url("ftp://x").is_err_and(|m| m.contains("not an http://")));
        assert!(check_service_url("https://").is_err_and(|m| m.contains("no host")));
        assert!(check_service_url("https://a:99999").is_err_and(|m| m.contains("invalid port")));
        assert!(check_service_url("https://a:").is_err_and(|m| m.contains("invalid port")));
        assert!(check_service_url("https://u:p@a").is_err_and(|m| m.contains("credentials")));
        assert!(check_service_url("https://a b").is_err_and(|m| m.contains("spaces")));
    }

    #[test]
    fn names_and_ids() {
        assert!(is_dns_label("hospital-study"));
        assert!(!is_dns_label("Hospital"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_principal_name("hospital_a.1-x"));
        assert!(!is_principal_name("-a"));
        assert!(!is_principal_name(""));
        assert!(!is_principal_name("a b"));
    }

    #[test]
    fn utc_format() {
        let time = OffsetDateTime::from_unix_timestamp(1_811_808_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(format_utc(time), "2027-06-01T00:00:00Z");
    }
}
