//! The TOML source a person writes, and how it becomes the self-contained policy JSON.
//!
//! The source refers to files by path (certificates, the program's `.wasm`, the attestation
//! CA), writes sizes and durations in human units (`"256MiB"`, `"60s"`), and leaves out what
//! has a sensible default. [`build`] reads the files through [`SourceFiles`], which the caller
//! implements (the CLI reads them relative to the source file's directory), so this crate
//! still does no I/O of its own. Building checks what only the source can get wrong (a file
//! that cannot be read, a size without a unit); [`crate::validate`] then checks the result.
//!
//! Defaults (also in `docs/policy.md`):
//!
//! | field | default |
//! |---|---|
//! | `program.name` | the last component of `program.file` |
//! | `program.args`, `program.env` | none |
//! | `inputs[].max_bytes` | [`DEFAULT_INPUT_MAX_BYTES`] (64 MiB) |
//! | `inputs[].required` | `true` |
//! | `runs.max` | 1 |
//! | `runs.rerun_consent` | `"all"` |
//! | `execution.strategy` | `"jit"` |
//! | `execution.max_memory` | [`DEFAULT_MAX_MEMORY`] (256 MiB) |
//! | `execution.fuel` | none (only the wall-time limit bounds CPU) |
//! | `execution.timeout` | [`DEFAULT_TIMEOUT`] (60 s) |
//! | `execution.max_output` | [`DEFAULT_MAX_OUTPUT`] (64 MiB) |
//! | `execution.clock`, `execution.random` | `false` |

use std::collections::BTreeMap;
use std::io;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::bounds::DEFAULT_INPUT_MAX_BYTES;
use crate::model::{
    Attestation, Execution, FormatTag, FormatVersion, Input, Output, Policy, Principal, Program,
    RerunConsent, Runs, Strategy,
};
use crate::units::{parse_duration_ms, parse_size};
use crate::validate::{Problem, Problems, certificate_der};

/// `execution.max_memory` when the source leaves it out.
pub const DEFAULT_MAX_MEMORY: &str = "256MiB";
/// `execution.timeout` when the source leaves it out.
pub const DEFAULT_TIMEOUT: &str = "60s";
/// `execution.max_output` when the source leaves it out.
pub const DEFAULT_MAX_OUTPUT: &str = "64MiB";
/// The measurement value that stands for "this build's runtime" in the source.
pub const SELF_MEASUREMENT: &str = "self";

/// Where [`build`] gets the files a source refers to.
///
/// `path` is exactly as written in the source; implementations resolve it (the CLI: relative
/// to the directory of the source file). Implemented for closures
/// `Fn(&str) -> io::Result<Vec<u8>>` and for in-memory maps `BTreeMap<String, Vec<u8>>`.
pub trait SourceFiles {
    /// The contents of the file at `path`.
    ///
    /// # Errors
    ///
    /// Whatever stops the file being read; it is reported with the source field naming it.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
}

impl<F: Fn(&str) -> io::Result<Vec<u8>>> SourceFiles for F {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self(path)
    }
}

impl SourceFiles for BTreeMap<String, Vec<u8>> {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

/// Why a source could not be built into a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Not TOML, or TOML of the wrong shape (unknown or missing keys, wrong types). The message
    /// shows the line and column.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// The source parsed, but some values or files are unusable: every one is listed, with the
    /// source key (e.g. `principals.hospital-a.certificate`) as path.
    #[error("{0}")]
    Problems(Problems),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    computation: String,
    expires: toml::Value,
    principals: BTreeMap<String, SourcePrincipal>,
    program: SourceProgram,
    #[serde(default)]
    inputs: Vec<SourceInput>,
    #[serde(default)]
    outputs: Vec<SourceOutput>,
    runs: SourceRuns,
    #[serde(default)]
    execution: SourceExecution,
    attestation: SourceAttestation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcePrincipal {
    certificate: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceProgram {
    file: String,
    name: Option<String>,
    provider: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceInput {
    path: String,
    provider: String,
    max_bytes: Option<String>,
    sha256: Option<String>,
    #[serde(default = "yes")]
    required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceOutput {
    path: String,
    readers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceRuns {
    starters: Vec<String>,
    #[serde(default = "one")]
    max: u32,
    #[serde(default = "all")]
    rerun_consent: RerunConsent,
}

fn one() -> u32 {
    1
}

fn all() -> RerunConsent {
    RerunConsent::All
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceExecution {
    strategy: Option<Strategy>,
    max_memory: Option<String>,
    fuel: Option<u64>,
    timeout: Option<String>,
    max_output: Option<String>,
    #[serde(default)]
    clock: bool,
    #[serde(default)]
    random: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceAttestation {
    service: String,
    ca_certificate: String,
    measurements: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    appraisal: BTreeMap<String, crate::Appraisal>,
}

/// Builds the policy JSON model from a TOML source.
///
/// `files` supplies the files the source names; `self_measurement` is what the measurement
/// value `"self"` stands for (the CLI passes SHA-256 of its own executable, the value
/// `covenant measurement` prints); `None` makes `"self"` an error. Principals come out sorted
/// by name, so the order of the source's `[principals]` table never changes the hash.
///
/// # Errors
///
/// [`BuildError::Toml`] if the source is not TOML of the right shape;
/// [`BuildError::Problems`] listing every unreadable file and unusable value.
pub fn build(
    source: &str,
    files: &dyn SourceFiles,
    self_measurement: Option<[u8; 32]>,
) -> Result<Policy, BuildError> {
    let source: Source = toml::from_str(source)?;
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| problems.push(Problem { path, message });

    let expires = match &source.expires {
        toml::Value::String(text) => text.clone(),
        toml::Value::Datetime(datetime) => datetime.to_string(),
        other => {
            problem(
                "expires".to_owned(),
                format!(
                    "expected a time like \"2027-06-01T00:00:00Z\", found {}",
                    other.type_str()
                ),
            );
            String::new()
        }
    };

    let mut principals = Vec::new();
    for (name, principal) in &source.principals {
        let path = format!("principals.{name}.certificate");
        let certificate =
            read_certificate(files, &principal.certificate).unwrap_or_else(|message| {
                problem(path, message);
                String::new()
            });
        principals.push(Principal {
            name: name.clone(),
            certificate,
        });
    }

    let program_sha256 = match files.read(&source.program.file) {
        Ok(bytes) if bytes.starts_with(b"\0asm") => hex::encode(Sha256::digest(&bytes)),
        Ok(_) => {
            problem(
                "program.file".to_owned(),
                format!(
                    "{:?} is not a WebAssembly binary module (it does not start with \\0asm)",
                    source.program.file
                ),
            );
            String::new()
        }
        Err(error) => {
            problem(
                "program.file".to_owned(),
                format!("cannot read {:?}: {error}", source.program.file),
            );
            String::new()
        }
    };
    let name = source.program.name.clone().unwrap_or_else(|| {
        source
            .program
            .file
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    let program = Program {
        name,
        sha256: program_sha256,
        provider: source.program.provider,
        args: source.program.args,
        env: source.program.env,
    };

    let mut inputs = Vec::new();
    for (index, input) in source.inputs.into_iter().enumerate() {
        let max_bytes = match &input.max_bytes {
            None => DEFAULT_INPUT_MAX_BYTES,
            Some(text) => parse_size(text).unwrap_or_else(|error| {
                problem(format!("inputs[{index}].max_bytes"), error.to_string());
                0
            }),
        };
        inputs.push(Input {
            path: input.path,
            provider: input.provider,
            sha256: input.sha256,
            max_bytes,
            required: input.required,
        });
    }

    let outputs = source
        .outputs
        .into_iter()
        .map(|output| Output {
            path: output.path,
            readers: output.readers,
        })
        .collect();

    let execution = &source.execution;
    let mut size = |key: &str, value: &Option<String>, default: &str| {
        parse_size(value.as_deref().unwrap_or(default)).unwrap_or_else(|error| {
            problem(format!("execution.{key}"), error.to_string());
            0
        })
    };
    let max_memory_bytes = size("max_memory", &execution.max_memory, DEFAULT_MAX_MEMORY);
    let max_output_bytes = size("max_output", &execution.max_output, DEFAULT_MAX_OUTPUT);
    let timeout_ms = parse_duration_ms(execution.timeout.as_deref().unwrap_or(DEFAULT_TIMEOUT))
        .unwrap_or_else(|error| {
            problem("execution.timeout".to_owned(), error.to_string());
            0
        });
    let execution = Execution {
        strategy: execution.strategy.unwrap_or(Strategy::Jit),
        max_memory_bytes,
        fuel: execution.fuel,
        timeout_ms,
        max_output_bytes,
        clock: execution.clock,
        random: execution.random,
    };

    let ca_certificate = read_certificate(files, &source.attestation.ca_certificate)
        .unwrap_or_else(|message| {
            problem("attestation.ca_certificate".to_owned(), message);
            String::new()
        });
    let mut measurements = BTreeMap::new();
    for (platform, values) in source.attestation.measurements {
        let mut resolved = Vec::new();
        for (index, value) in values.into_iter().enumerate() {
            if value != SELF_MEASUREMENT {
                resolved.push(value);
                continue;
            }
            let path = format!("attestation.measurements.{platform}[{index}]");
            match self_measurement {
                _ if platform != "software" => problem(
                    path,
                    format!(
                        "\"self\" stands for this build's software measurement; it cannot be used \
                         for platform {platform:?}"
                    ),
                ),
                Some(digest) => resolved.push(hex::encode(digest)),
                None => problem(
                    path,
                    "\"self\" stands for this build's runtime measurement, and none was given"
                        .to_owned(),
                ),
            }
        }
        measurements.insert(platform, resolved);
    }

    if !problems.is_empty() {
        return Err(BuildError::Problems(Problems(problems)));
    }
    Ok(Policy {
        format: FormatTag,
        version: FormatVersion,
        computation: source.computation,
        expires,
        principals,
        program,
        inputs,
        outputs,
        runs: Runs {
            starters: source.runs.starters,
            max: source.runs.max,
            rerun_consent: source.runs.rerun_consent,
        },
        execution,
        attestation: Attestation {
            service: source.attestation.service,
            ca_certificate,
            measurements,
            appraisal: source.attestation.appraisal,
        },
    })
}

/// Reads a certificate file and returns it as normalised PEM (one block, 64-column lines, LF
/// endings, no text around it), so the policy does not depend on how the file was written.
fn read_certificate(files: &dyn SourceFiles, path: &str) -> Result<String, String> {
    let bytes = files
        .read(path)
        .map_err(|error| format!("cannot read {path:?}: {error}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{path:?} is not a PEM text file (it is not UTF-8)"))?;
    let der = certificate_der(&text).map_err(|message| format!("{path:?} {message}"))?;
    Ok(pem_certificate(&der))
}

/// Encodes DER as a PEM `CERTIFICATE` block (RFC 7468 strict form).
#[must_use]
pub fn pem_certificate(der: &[u8]) -> String {
    let encoded = base64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
