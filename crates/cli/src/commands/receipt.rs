//! `covenant receipt verify`: check a run's receipt offline against the policy.
//!
//! The checks live in `covenant-runtime` (`verify_receipt`, documented in `docs/receipts.md`);
//! this module reads the files, picks the time and prints. With `--file PATH=FILE --salt
//! PATH=HEX` it also checks that FILE opens the receipt's commitment at PATH. Exit codes: 0 the
//! receipt verifies (and every file matches), 2 it does not (or the policy is invalid, or a
//! file does not match), 1 a file cannot be read.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use covenant_policy::bounds::MAX_POLICY_BYTES;
use covenant_runtime::receipt::MAX_RECEIPT_BYTES;
use serde_json::json;
use time::OffsetDateTime;

use super::Exit;

/// Work with run receipts.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Verify a receipt against a policy, offline.
    #[command(
        long_about = "Verify a receipt against a policy, offline: its signature, that the \
        signing certificate was issued by the policy's attestation CA for a runtime with a \
        measurement the policy accepts, serving this policy (by hash) and computation, and \
        that the receipt names this policy and its program. The certificate and the policy \
        are checked at the time the receipt was signed, so a receipt stays verifiable after \
        both expire. See docs/receipts.md."
    )]
    Verify(VerifyArgs),
}

/// Arguments of `covenant receipt verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The policy JSON the computation ran under.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The receipt (a compact JWS, as the runtime returns it).
    pub receipt: PathBuf,
    /// Also check that FILE holds the bytes the receipt committed to at PATH (an output, as
    /// its reader fetched it, or an input, as its provider sent it), opened with the salt
    /// given for PATH by `--salt`. Repeatable.
    #[arg(long = "file", value_name = "PATH=FILE")]
    pub files: Vec<String>,
    /// The commitment salt for PATH, hex, as `covenant client fetch` (or `provide-input`)
    /// printed it, or `@FILE` to read it from FILE (keeps it off the command line). One for
    /// each `--file`.
    #[arg(long = "salt", value_name = "PATH=HEX")]
    pub salts: Vec<String>,
    /// Print the result as JSON: `{"valid": true, "claims": {...}}` or
    /// `{"valid": false, "error": "..."}`.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `covenant receipt` subcommand.
///
/// # Errors
/// Unreadable files (exit 1); an invalid policy or a receipt that does not verify (exit 2).
pub fn run(command: ReceiptCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReceiptCommand::Verify(args) => verify(&args),
    }
}

fn read_limited(path: &Path, limit: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|file| file.take(limit).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    Ok(bytes)
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let policy_bytes = read_limited(&args.policy, MAX_POLICY_BYTES, "policy")?;
    let receipt_bytes = read_limited(&args.receipt, MAX_RECEIPT_BYTES, "receipt")?;
    let openings = openings(&args.files, &args.salts).map_err(Exit::refused)?;
    let mut readers = Vec::with_capacity(openings.len());
    for (path, file, _) in &openings {
        let reader = File::open(file)
            .with_context(|| format!("cannot read {} (given for {path})", file.display()))?;
        readers.push(std::io::BufReader::new(reader));
    }
    let checked = check(&policy_bytes, &receipt_bytes, &args.policy).and_then(|claims| {
        for ((path, _, salt), reader) in openings.iter().zip(readers) {
            covenant_runtime::check_opening(&claims, path, salt, reader)
                .map_err(|e| e.to_string())?;
        }
        Ok(claims)
    });
    match checked {
        Ok(claims) => {
            if args.json {
                let text = serde_json::to_string_pretty(&json!({"valid": true, "claims": claims}))?;
                println!("{text}");
            } else {
                println!(
                    "receipt valid: run {} of computation {:?} on {}, {}",
                    claims.run,
                    claims.computation,
                    claims.engine,
                    outcome(&claims.outcome)
                );
                println!("policy   {}", claims.policy_sha256);
                println!("instance {}", claims.instance);
                println!("program  {}", claims.program_sha256);
                for line in inputs_and_outputs(&claims) {
                    println!("{line}");
                }
                for (path, file, _) in &openings {
                    println!(
                        "checked  {} holds what the receipt committed to at {path}",
                        file.display()
                    );
                }
                println!(
                    "fuel {}, wall time {} us",
                    claims.fuel_used, claims.wall_time_us
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            if args.json {
                let text =
                    serde_json::to_string_pretty(&json!({"valid": false, "error": message}))?;
                println!("{text}");
                Ok(ExitCode::from(super::EXIT_REFUSED))
            } else {
                Err(Exit::refused(message))
            }
        }
    }
}

/// One line per input and output of a receipt, for people: a pinned input by its hash, the
/// rest by their commitments, outputs with their status.
pub(crate) fn inputs_and_outputs(claims: &covenant_runtime::ReceiptClaims) -> Vec<String> {
    let inputs = claims.inputs.iter().map(|i| match (&i.sha256, i.bytes) {
        (Some(sha), Some(bytes)) => {
            format!("input    {} pinned sha256 {sha} ({bytes} bytes)", i.path)
        }
        _ => format!("input    {} commitment {}", i.path, i.commitment),
    });
    let outputs = claims.outputs.iter().map(|o| match &o.commitment {
        Some(c) => format!("output   {} written, commitment {c}", o.path),
        None => format!("output   {} {}", o.path, o.status),
    });
    inputs.chain(outputs).collect()
}

/// Pairs each `--file PATH=FILE` with its `--salt PATH=HEX`.
fn openings(files: &[String], salts: &[String]) -> Result<Vec<(String, PathBuf, String)>, String> {
    // A salt is hex, so `--salt` splits at its last `=` (a guest path may hold one); a file
    // name may too, so `--file` splits at the first.
    let split = |arg: &str, flag: &str, last: bool| -> Result<(String, String), String> {
        let parts = if last {
            arg.rsplit_once('=')
        } else {
            arg.split_once('=')
        };
        parts
            .filter(|(p, v)| !p.is_empty() && !v.is_empty())
            .map(|(p, v)| (p.to_owned(), v.to_owned()))
            .ok_or_else(|| {
                format!("--{flag} {arg:?}: write PATH=VALUE, like /output/result.txt=...")
            })
    };
    let mut salt_of = std::collections::BTreeMap::new();
    for arg in salts {
        let (path, value) = split(arg, "salt", true)?;
        // `@FILE` reads the salt from a file, so that it need not appear on a command line
        // (which other local users can read in /proc) or in the shell's history.
        let salt = match value.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("--salt {path}=@{file}: cannot read {file}: {e}"))?
                .trim()
                .to_owned(),
            None => value,
        };
        if salt_of.insert(path.clone(), salt).is_some() {
            return Err(format!("--salt names {path} twice"));
        }
    }
    let mut out = Vec::new();
    for arg in files {
        let (path, file) = split(arg, "file", false)?;
        let salt = salt_of.remove(&path).ok_or_else(|| {
            format!(
                "--file {path}=... needs its salt: add --salt {path}=HEX (the salt `covenant \
                 client fetch` printed)"
            )
        })?;
        out.push((path, PathBuf::from(file), salt));
    }
    if let Some(path) = salt_of.keys().next() {
        return Err(format!(
            "--salt {path}=... has no --file {path}=FILE to check"
        ));
    }
    Ok(out)
}

fn outcome(outcome: &covenant_sandbox::Outcome) -> String {
    match outcome {
        covenant_sandbox::Outcome::Exited(code) => format!("exited with code {code}"),
        covenant_sandbox::Outcome::Trapped(kind) => format!("trapped ({kind})"),
    }
}

/// Parses the policy, validates it at the receipt's signing time, and verifies the receipt.
fn check(
    policy_bytes: &[u8],
    receipt_bytes: &[u8],
    policy_path: &Path,
) -> Result<covenant_runtime::ReceiptClaims, String> {
    let name = policy_path.display();
    let receipt = std::str::from_utf8(receipt_bytes)
        .map_err(|_| "the receipt is not text (a compact JWS is ASCII)".to_owned())?;
    let policy = covenant_policy::parse(policy_bytes)
        .map_err(|e| format!("{name} is not a valid policy: {e}"))?;
    // Only to pick the time; nothing is trusted before verify_receipt.
    let issued_at = covenant_runtime::unverified_claims(receipt)
        .map_err(|e| e.to_string())?
        .issued_at;
    let at = OffsetDateTime::from_unix_timestamp(issued_at)
        .map_err(|_| "the receipt's issued_at is out of range".to_owned())?;
    let valid = covenant_policy::validate(&policy, at).map_err(|problems| {
        let list: Vec<String> = problems
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect();
        format!(
            "{name} is not a valid policy at the receipt's time: {}",
            list.join("; ")
        )
    })?;
    covenant_runtime::verify_receipt(receipt, &valid)
        .map(|v| v.claims)
        .map_err(|e| format!("the receipt does not verify: {e}"))
}
