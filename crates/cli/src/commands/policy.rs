//! `covenant policy build|check|hash`: write, check and hash the global policy.
//!
//! The model, the rules and the hash live in `covenant-policy`; this module reads files, asks
//! the clock, and prints for people (or for scripts with `--json`). Exit codes: 0 valid, 2 an
//! invalid or unreadable policy or source (every problem is listed), 1 an operational failure
//! such as a file that cannot be written.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use covenant_policy::bounds::MAX_POLICY_BYTES;
use covenant_policy::units::{ShowBytes, ShowMillis};
use covenant_policy::{
    BuildError, Capabilities, ParseError, Phase, Policy, PolicyHash, Problem, Problems,
    RerunConsent, Resource, Role, Subject, ValidPolicy, certificate_info, format_utc,
};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{EXIT_REFUSED, Exit};

/// Write, check and hash the global policy of a computation.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Build the self-contained policy JSON from a TOML source.
    #[command(
        long_about = "Build the self-contained policy JSON from a TOML source.\n\n\
        The source refers to files by paths relative to itself (certificates, the program's \
        .wasm, the attestation CA certificate); the JSON embeds the certificates and the \
        program's SHA-256. The measurement \"self\" becomes this build's measurement (see \
        `covenant measurement`). The result is checked like `covenant policy check` before it \
        is written; an invalid policy is not written. See docs/policy-example/policy.toml."
    )]
    Build(BuildArgs),
    /// Check a policy: list every problem, or summarise it with its hash.
    #[command(
        long_about = "Check a policy: list every problem (exit code 2), or print a summary \
        of what it says (principals and their roles, program, inputs and outputs with who \
        provides and reads them, limits, trusted measurements) and its hash (exit code 0).\n\n\
        Every party should run this on the policy it is asked to agree to, and compare the \
        hash with the other parties."
    )]
    Check(CheckArgs),
    /// Print a policy's hash: SHA-256 over its RFC 8785 canonical JSON.
    #[command(
        long_about = "Print a policy's hash, 64 hex digits: SHA-256 over the RFC 8785 \
        canonical form of the JSON, so formatting and key order never change it. The policy \
        must parse; it is not otherwise checked (an expired policy still has a hash)."
    )]
    Hash(HashArgs),
}

/// Arguments of `covenant policy build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The TOML source.
    pub source: PathBuf,
    /// Where to write the policy JSON; `-` for standard output [default: the source's path
    /// with the extension `.json`].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Arguments of `covenant policy check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy JSON; `-` for standard input.
    pub policy: PathBuf,
    /// Print the result as JSON (`valid`, `hash`, `roles`, `capabilities`, or `problems`).
    #[arg(long)]
    pub json: bool,
    /// Check as of this time (RFC 3339, e.g. 2027-01-01T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<OffsetDateTime>,
}

/// Arguments of `covenant policy hash`.
#[derive(Debug, Args)]
pub struct HashArgs {
    /// The policy JSON; `-` for standard input.
    pub policy: PathBuf,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time like 2027-01-01T00:00:00Z"))
}

/// Runs a `covenant policy` subcommand.
///
/// # Errors
///
/// An [`Exit`] with code 2 for an invalid policy or source (listing every problem); other
/// errors for files that cannot be read or written.
pub fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Build(args) => build(&args),
        PolicyCommand::Check(args) => check(&args),
        PolicyCommand::Hash(args) => hash(&args),
    }
}

fn build(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let source_path = &args.source;
    let source = std::fs::read_to_string(source_path)
        .with_context(|| format!("cannot read {}", source_path.display()))?;
    let base = source_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let read = |path: &str| std::fs::read(base.join(path));
    let own = super::measurement::self_measurement()?;
    let policy = match covenant_policy::build(&source, &read, Some(own)) {
        Ok(policy) => policy,
        Err(BuildError::Toml(error)) => {
            return Err(refused(format!("{}: {error}", source_path.display())));
        }
        Err(BuildError::Problems(problems)) => {
            return Err(refused(problem_list(
                &format!("cannot build a policy from {}", source_path.display()),
                &problems,
            )));
        }
        Err(other) => return Err(refused(format!("{}: {other}", source_path.display()))),
    };
    let valid = match covenant_policy::validate(&policy, OffsetDateTime::now_utc()) {
        Ok(valid) => valid,
        Err(problems) => {
            return Err(refused(problem_list(
                &format!(
                    "the policy built from {} is not valid",
                    source_path.display()
                ),
                &problems,
            )));
        }
    };
    let json = covenant_policy::to_json_pretty(&policy).context("cannot serialise the policy")?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| source_path.with_extension("json"));
    if output == Path::new("-") {
        print!("{json}");
        eprintln!("policy hash {}", valid.hash());
    } else {
        std::fs::write(&output, json)
            .with_context(|| format!("cannot write {}", output.display()))?;
        println!("wrote {}", output.display());
        println!("policy hash {}", valid.hash());
    }
    Ok(ExitCode::SUCCESS)
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_policy(&args.policy)?;
    let now = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let name = args.policy.display().to_string();
    let policy = match covenant_policy::parse(&bytes) {
        Ok(policy) => policy,
        Err(error) => {
            if args.json {
                let (path, message) = match &error {
                    ParseError::Field { path, message } => (path.clone(), message.clone()),
                    other => (".".to_owned(), other.to_string()),
                };
                print_json(
                    &json!({"valid": false, "problems": [{"path": path, "message": message}]}),
                )?;
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
            return Err(refused(format!("{name} is not a valid policy: {error}")));
        }
    };
    match covenant_policy::validate(&policy, now) {
        Ok(valid) => {
            if args.json {
                print_json(&summary_json(&valid))?;
            } else {
                let own = super::measurement::self_measurement().ok();
                print!("{}", summary(&valid, now, own));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            if args.json {
                let list: Vec<_> = problems
                    .as_slice()
                    .iter()
                    .map(|p| json!({"path": p.path, "message": p.message}))
                    .collect();
                print_json(&json!({"valid": false, "problems": list}))?;
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
            Err(refused(problem_list(
                &format!("{name} is not a valid policy"),
                &problems,
            )))
        }
    }
}

fn hash(args: &HashArgs) -> anyhow::Result<ExitCode> {
    let bytes = read_policy(&args.policy)?;
    let policy = covenant_policy::parse(&bytes).map_err(|error| {
        refused(format!(
            "{} is not a valid policy: {error}",
            args.policy.display()
        ))
    })?;
    let hash = PolicyHash::of(&policy).map_err(|error| {
        refused(format!(
            "{} cannot be hashed: {error}",
            args.policy.display()
        ))
    })?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

/// Reads a policy file (or standard input for `-`), refusing more than the largest policy.
fn read_policy(path: &Path) -> anyhow::Result<Vec<u8>> {
    let limit = u64::try_from(MAX_POLICY_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
    } else {
        File::open(path)
            .and_then(|file| file.take(limit).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(bytes)
}

fn refused(message: String) -> anyhow::Error {
    Exit::refused(message)
}

/// `error: <headline> (N problems):` and one indented line per problem.
fn problem_list(headline: &str, problems: &Problems) -> String {
    let count = problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    let mut out = format!("{headline} ({count} {noun}):");
    for Problem { path, message } in problems.as_slice() {
        let _ = write!(out, "\n  {path}: {message}");
    }
    out
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("cannot serialise JSON")?
    );
    Ok(())
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::BeforeRun => "before-run",
        Phase::DuringRun => "during-run",
        Phase::AfterRun => "after-run",
    }
}

fn capabilities_json(capabilities: &Capabilities) -> serde_json::Value {
    let entries: Vec<_> = capabilities
        .entries()
        .iter()
        .map(|(subject, grants)| {
            let subject = match subject {
                Subject::Principal(name) => json!({"principal": name}),
                Subject::Program => json!("program"),
            };
            let grants: Vec<_> = grants
                .iter()
                .map(|grant| {
                    let resource = match &grant.resource {
                        Resource::Program => json!("program"),
                        Resource::File(path) => json!({"file": path}),
                        Resource::Stdout => json!("stdout"),
                        Resource::Stderr => json!("stderr"),
                    };
                    json!({
                        "resource": resource,
                        "rights": grant.rights.names(),
                        "phase": phase_name(grant.phase),
                    })
                })
                .collect();
            json!({"subject": subject, "grants": grants})
        })
        .collect();
    serde_json::Value::Array(entries)
}

fn summary_json(valid: &ValidPolicy) -> serde_json::Value {
    let policy = valid.policy();
    let roles: serde_json::Map<String, serde_json::Value> = covenant_policy::roles(policy)
        .into_iter()
        .map(|(name, roles)| {
            let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
            (name, json!(names))
        })
        .collect();
    json!({
        "valid": true,
        "hash": valid.hash().to_hex(),
        "computation": policy.computation,
        "expires": policy.expires,
        "roles": roles,
        "capabilities": capabilities_json(&covenant_policy::capabilities(policy)),
    })
}

/// The human summary of a valid policy.
fn summary(valid: &ValidPolicy, now: OffsetDateTime, own: Option<[u8; 32]>) -> String {
    let policy: &Policy = valid.policy();
    let mut out = String::new();
    let days = (valid.expires() - now).whole_days();
    let _ = writeln!(out, "computation  {}", policy.computation);
    let _ = writeln!(out, "expires      {} (in {days} days)", policy.expires);

    // Principals × roles.
    let table = covenant_policy::roles(policy);
    let width = table
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0)
        .max("principal".len());
    let _ = writeln!(out, "\nprincipals and their roles");
    let mut header = format!("  {:width$}", "principal");
    for role in Role::ALL {
        let _ = write!(header, "  {}", role.name());
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for (name, roles) in &table {
        let mut row = format!("  {name:width$}");
        for role in Role::ALL {
            let mark = if roles.contains(&role) { "yes" } else { "-" };
            let _ = write!(row, "  {mark:w$}", w = role.name().len());
        }
        let _ = writeln!(out, "{}", row.trim_end());
    }
    let _ = writeln!(
        out,
        "\ncertificates (compare the fingerprints with their owners)"
    );
    for principal in &policy.principals {
        let line = valid
            .certificate_der(&principal.name)
            .and_then(|der| certificate_info(der).ok())
            .map(|info| {
                format!(
                    "{}, until {}, sha256 {}",
                    info.subject,
                    format_utc(info.not_after),
                    hex::encode(info.fingerprint)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  {:width$}  {line}", principal.name);
    }

    let program = &policy.program;
    let _ = writeln!(out, "\nprogram");
    let _ = writeln!(out, "  name      {}", program.name);
    let _ = writeln!(out, "  sha256    {}", program.sha256);
    let _ = writeln!(out, "  provider  {}", program.provider);
    let args = if program.args.is_empty() {
        "(none)".to_owned()
    } else {
        serde_json::to_string(&program.args).unwrap_or_default()
    };
    let _ = writeln!(out, "  args      {args}");
    let env = if program.env.is_empty() {
        "(none)".to_owned()
    } else {
        program
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(out, "  env       {env}");

    let path_width = policy
        .inputs
        .iter()
        .map(|i| i.path.len())
        .chain(policy.outputs.iter().map(|o| o.path.len()))
        .max()
        .unwrap_or(0);
    let _ = writeln!(out, "\ninputs");
    if policy.inputs.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for input in &policy.inputs {
        let required = if input.required {
            "required"
        } else {
            "optional"
        };
        let mut line = format!(
            "  {:path_width$}  from {}, {required}, at most {}",
            input.path,
            input.provider,
            ShowBytes(input.max_bytes)
        );
        if let Some(sha256) = &input.sha256 {
            let _ = write!(line, ", pinned to sha256 {sha256}");
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\noutputs");
    for output in &policy.outputs {
        let _ = writeln!(
            out,
            "  {:path_width$}  read by {}",
            output.path,
            output.readers.join(", ")
        );
    }

    let runs = &policy.runs;
    let _ = writeln!(out, "\nruns");
    let _ = writeln!(out, "  started by  {}", runs.starters.join(", "));
    let plural = if runs.max == 1 { "run" } else { "runs" };
    let further = match runs.rerun_consent {
        RerunConsent::All => "each needs the consent of every principal",
        RerunConsent::Never => "none",
    };
    let _ = writeln!(
        out,
        "  allowed     {} {plural}; further runs: {further}",
        runs.max
    );

    let execution = &policy.execution;
    let allowed = |yes: bool| if yes { "allowed" } else { "denied" };
    let _ = writeln!(out, "\nexecution");
    let _ = writeln!(out, "  strategy    {}", execution.strategy.as_str());
    let _ = writeln!(
        out,
        "  memory      {}",
        ShowBytes(execution.max_memory_bytes)
    );
    let fuel = execution
        .fuel
        .map_or("unlimited (wall time only)".to_owned(), |f| f.to_string());
    let _ = writeln!(out, "  fuel        {fuel}");
    let _ = writeln!(out, "  timeout     {}", ShowMillis(execution.timeout_ms));
    let _ = writeln!(
        out,
        "  output      {}",
        ShowBytes(execution.max_output_bytes)
    );
    let _ = writeln!(out, "  clock       {}", allowed(execution.clock));
    let _ = writeln!(out, "  random      {}", allowed(execution.random));

    let attestation = &policy.attestation;
    let _ = writeln!(out, "\ntrusted runtime");
    let _ = writeln!(out, "  attestation service  {}", attestation.service);
    if let Ok(info) = certificate_info(valid.ca_certificate_der()) {
        let _ = writeln!(
            out,
            "  attestation CA       {}, until {}, sha256 {}",
            info.subject,
            format_utc(info.not_after),
            hex::encode(info.fingerprint)
        );
    }
    let own_hex = own.map(hex::encode);
    for (platform, values) in &attestation.measurements {
        for value in values {
            let note = if platform == "software" && own_hex.as_deref() == Some(value.as_str()) {
                "  (this covenant build)"
            } else {
                ""
            };
            let _ = writeln!(out, "  {platform:<19}  {value}{note}");
        }
    }
    let _ = writeln!(out, "\npolicy hash  {}", valid.hash());
    out
}
