//! `covenant client`: act as a principal of a computation through `covenant-client`.
//!
//! Stage one parses and checks what the user typed and the local files (the policy, validated
//! now; the certificate and key; the instance file); stage two connects — verifying the
//! runtime's attestation against the policy in the TLS handshake, and that it is the instance
//! of the computation pinned in the instance file, before anything is sent — records the
//! instance if it is the first, and performs one action.
//!
//! Exit codes (documented in `docs/cli.md`): 0 success; 1 an operational error (unreachable
//! host, lost connection, a file that cannot be read or written, an unexpected answer); 2 a
//! bad command line, an invalid policy, a certificate or key that cannot be used; 3 refused by
//! the runtime (the rule is printed; also a certificate the policy does not name, and an
//! upload the policy rules out, refused before it is sent); 4 the server is not the runtime the
//! policy names (attestation failed, or a receipt it signed does not verify), or is another
//! instance of the computation than the one pinned (accepted only with
//! `--accept-new-instance`).

use std::fs::File;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use covenant_client::{
    Client, ClientError, Identity, InstancePin, PinChange, Progress, RunResult, Status, Upload,
};
use covenant_policy::ValidPolicy;
use covenant_policy::bounds::MAX_POLICY_BYTES;
use serde_json::json;
use time::OffsetDateTime;

use super::{EXIT_FAILURE, EXIT_REFUSED, Exit};

/// Exit code when the runtime refused the request by one of its rules.
pub const EXIT_RUNTIME_REFUSED: u8 = 3;
/// Exit code when the server is not the runtime the policy names (attestation failed), a
/// receipt it returned does not verify, or it is another instance of the computation than the
/// one pinned.
pub const EXIT_ATTESTATION: u8 = 4;

/// The largest certificate or key file read.
const MAX_IDENTITY_FILE_BYTES: usize = 1 << 20;

/// Arguments of `covenant client`.
#[derive(Debug, Args)]
#[command(subcommand_value_name = "ACTION", subcommand_help_heading = "Actions")]
#[command(
    after_help = "The server is verified in the TLS handshake before anything is \
    sent: its certificate must chain to the policy's attestation CA, carry a measurement the \
    policy accepts and this policy's hash. It must also be the instance of the computation \
    you first spoke to (its attested key's fingerprint, kept in POLICY.instance or \
    --instance-file): another instance is refused unless you pass --accept-new-instance.\n\n\
    Exit codes: 0 success; 1 unreachable host, lost connection, unreadable or unwritable \
    file; 2 bad command line, invalid policy, unusable certificate, key or instance file; 3 \
    refused by the runtime, or by the policy before sending (the rule is printed); 4 the \
    server is not the runtime the policy names (or its receipt does not verify), or is \
    another instance than the one pinned."
)]
pub struct ClientArgs {
    /// The computation's built policy JSON (`covenant policy build`).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Your certificate (PEM, as `covenant identity new` writes it); the policy must name it.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Your private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The host serving the computation (`covenant serve`), as ADDRESS:PORT or NAME:PORT.
    #[arg(
        long,
        value_name = "ADDR",
        env = "COVENANT_HOST",
        default_value = covenant_client::DEFAULT_HOST
    )]
    pub host: String,
    /// Where the instance of the computation you spoke to is kept (the fingerprint of its
    /// attested key); another instance is refused (exit 4). Default: the policy's path with
    /// `.instance` appended.
    #[arg(long, value_name = "FILE")]
    pub instance_file: Option<PathBuf>,
    /// Accept the instance reached even if it is not the one pinned, and pin it instead.
    /// Only when the change is expected: the computation was closed and started again, or its
    /// worker died and the attestation service's operator ended it.
    #[arg(long)]
    pub accept_new_instance: bool,
    /// Print one JSON document on stdout instead of text (errors too:
    /// `{"error": KIND, "rule": ..., "message": ...}`).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub action: ClientAction,
}

/// The actions of `covenant client`.
#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// Show the computation's state: program, inputs, runs, agreements.
    Status,
    /// Upload the program module (you must be the policy's program provider). Its SHA-256
    /// is checked against the policy's before anything is sent.
    ProvideProgram {
        /// The `.wasm` module; its SHA-256 must be the policy's.
        file: PathBuf,
    },
    /// Upload an input, streamed from a file (you must be its provider). A file over the
    /// input's max_bytes, or without the SHA-256 the policy pins, is refused before anything
    /// is sent (exit 3).
    ProvideInput {
        /// The input's guest path, as the policy names it (`/input/a.csv`).
        guest_path: String,
        /// The file to send (a pipe such as `/dev/stdin` is checked by the runtime as it
        /// arrives).
        file: PathBuf,
    },
    /// Start the run (you must be a run starter).
    Run {
        /// Wait for the run to end and print its outcome; otherwise return once it started.
        #[arg(long)]
        wait: bool,
    },
    /// Download an output you may read: a guest path, `stdout` or `stderr`.
    Fetch {
        /// The output, as the policy names it.
        output: String,
        /// Write it to FILE (replaced only once the download is whole) instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Fetch the receipts, verify the latest against the policy and write it.
    Receipt {
        /// Write the receipt to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Consent to one more run (every principal must).
    ConsentRerun,
    /// Agree to end the computation (when every principal has, its data is wiped).
    Close,
}

/// Runs `covenant client`.
///
/// # Errors
/// An [`Exit`] with the codes in the module documentation.
pub fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    // Stage one: what the user typed and the local files.
    if args.json
        && let ClientAction::Fetch { to: None, .. } = &args.action
    {
        return Err(Exit::refused(
            "with --json, stdout carries the JSON document: give `fetch -o FILE`",
        ));
    }
    let policy = load_policy(&args.policy)?;
    let cert = read_limited(&args.cert, "certificate")?;
    let key = read_limited(&args.key, "key")?;
    let identity = Identity::from_pem(&cert, &key).map_err(|e| {
        Exit::refused(format!(
            "{} / {}: {e}",
            args.cert.display(),
            args.key.display()
        ))
    })?;
    let instance_file = args
        .instance_file
        .clone()
        .unwrap_or_else(|| InstancePin::path_beside(&args.policy));
    let pin = match InstancePin::load(instance_file, &policy) {
        Ok(pin) => pin,
        // Like the other local files: reported on stderr only, before connecting.
        Err(e) => return Err(client_exit(&e, false)),
    };
    // Stage two: connect and act.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let json = args.json;
    match runtime.block_on(act(&args, &policy, &identity, pin)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::Client(e)) => Err(client_exit(&e, json)),
        Err(Failure::Other(e)) => Err(e),
    }
}

/// Why an action failed: the library's typed error, or a local one already worded.
enum Failure {
    Client(ClientError),
    Other(anyhow::Error),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

/// The exit code and message for a client error; with `--json`, the error document on stdout.
fn client_exit(error: &ClientError, json: bool) -> anyhow::Error {
    let (code, kind) = match error {
        ClientError::Attestation { .. } => (EXIT_ATTESTATION, "attestation"),
        ClientError::InstanceChanged { .. } => (EXIT_ATTESTATION, "instance-changed"),
        ClientError::InstancePin { .. } => (EXIT_REFUSED, "invalid-input"),
        ClientError::Refused { .. } | ClientError::PolicyRefuses { .. } => {
            (EXIT_RUNTIME_REFUSED, "refused")
        }
        ClientError::CertificateRefused { .. } | ClientError::NotAPrincipal => {
            (EXIT_RUNTIME_REFUSED, "certificate-refused")
        }
        ClientError::Identity(_) | ClientError::Policy(_) => (EXIT_REFUSED, "invalid-input"),
        ClientError::Connect { .. } => (EXIT_FAILURE, "unreachable"),
        ClientError::Disconnected { .. } => (EXIT_FAILURE, "disconnected"),
        ClientError::Io { .. } => (EXIT_FAILURE, "io"),
        ClientError::Runtime { .. } => (EXIT_FAILURE, "runtime-failed"),
        _ => (EXIT_FAILURE, "protocol"),
    };
    if json {
        let mut doc = json!({ "error": kind, "message": error.to_string() });
        match error {
            ClientError::Refused { status, rule, .. } => {
                doc["rule"] = json!(rule);
                doc["status"] = json!(status);
            }
            // Refused by the policy before anything was sent: no HTTP status.
            ClientError::PolicyRefuses { rule, .. } => {
                doc["rule"] = json!(rule);
                doc["sent"] = json!(false);
            }
            _ => {}
        }
        println!("{doc}");
    }
    anyhow::Error::new(Exit {
        code,
        message: format!("error: {error}"),
    })
}

/// Reads and validates the policy now (it must be in force to connect).
fn load_policy(path: &Path) -> anyhow::Result<ValidPolicy> {
    let bytes = read_file(path, MAX_POLICY_BYTES, "policy")?;
    let name = path.display();
    let policy = covenant_policy::parse(&bytes)
        .map_err(|e| Exit::refused(format!("{name} is not a valid policy: {e}")))?;
    covenant_policy::validate(&policy, OffsetDateTime::now_utc()).map_err(|problems| {
        let list: Vec<String> = problems
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect();
        Exit::refused(format!("{name} is not a valid policy: {}", list.join("; ")))
    })
}

fn read_limited(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    read_file(path, MAX_IDENTITY_FILE_BYTES, what)
}

fn read_file(path: &Path, limit: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|file| file.take(cap).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() > limit {
        return Err(Exit::refused(format!(
            "the {what} {} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// A progress bar on stderr, drawn only when stderr is a terminal and the output is text.
struct Bar {
    enabled: bool,
    label: String,
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new(json: bool, label: impl Into<String>) -> Self {
        Bar {
            enabled: !json && std::io::stderr().is_terminal(),
            label: label.into(),
            bar: None,
        }
    }
}

impl Progress for Bar {
    fn started(&mut self, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = match total {
            Some(total) => indicatif::ProgressBar::new(total).with_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            ),
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_message(self.label.clone());
        self.bar = Some(bar);
    }

    fn advanced(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Prints `value` as one JSON document on stdout.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn act(
    args: &ClientArgs,
    policy: &ValidPolicy,
    identity: &Identity,
    mut pin: InstancePin,
) -> Result<(), Failure> {
    let expected = if args.accept_new_instance {
        None
    } else {
        pin.instance()
    };
    let mut client = Client::connect_to_instance(policy, identity, &args.host, expected).await?;
    note_pin(&pin.record(&client)?, &pin, &client);
    let json = args.json;
    match &args.action {
        ClientAction::Status => {
            let status = client.status().await?;
            if json {
                print_json(&status)?;
            } else {
                print_status(&status);
            }
        }
        ClientAction::ProvideProgram { file } => {
            let mut bar = Bar::new(json, "program");
            client
                .provide_program(Upload::File(file.clone()), &mut bar)
                .await?;
            if json {
                print_json(&json!({ "accepted": true }))?;
            } else {
                println!("the runtime accepted the program {}", file.display());
            }
        }
        ClientAction::ProvideInput { guest_path, file } => {
            let mut bar = Bar::new(json, guest_path.clone());
            let received = client
                .provide_input(guest_path, Upload::File(file.clone()), &mut bar)
                .await?;
            if json {
                print_json(&received)?;
            } else {
                println!(
                    "input {}: {} bytes stored, sha256 {} (matches {})",
                    received.path,
                    received.bytes,
                    received.sha256,
                    file.display()
                );
                println!(
                    "its commitment salt, for you alone: {} (receipts carry commitment {}; \
                     `covenant receipt verify --file {}={} --salt {}={}` checks it)",
                    received.salt,
                    received.commitment,
                    received.path,
                    file.display(),
                    received.path,
                    received.salt
                );
            }
        }
        ClientAction::Run { wait } => {
            let result = client.run(*wait).await?;
            if json {
                print_json(&result)?;
            } else {
                match &result {
                    RunResult::Finished { record, .. } => {
                        println!(
                            "run {} {}; fuel {}, wall time {} us",
                            record.run,
                            outcome(&record.outcome),
                            record.fuel_used,
                            record.wall_time_us
                        );
                        if let Some(detail) = &record.detail {
                            println!("detail: {detail}");
                        }
                        println!("its signed receipt: `covenant client receipt -o FILE`");
                    }
                    RunResult::Started { run, state } => {
                        println!(
                            "run {run} is {state}; `covenant client status` shows its outcome"
                        );
                    }
                }
            }
        }
        ClientAction::Fetch { output, to } => {
            fetch(&mut client, output, to.as_deref(), json).await?
        }
        ClientAction::Receipt { to } => receipt(&mut client, policy, to.as_deref(), json).await?,
        ClientAction::ConsentRerun => {
            let agreement = client.consent_rerun().await?;
            print_agreement(&agreement, json, "a further run", "consent recorded")?;
        }
        ClientAction::Close => {
            let agreement = client.close().await?;
            print_agreement(&agreement, json, "closing", "agreement to close recorded")?;
        }
    }
    Ok(())
}

/// Says on stderr when the instance file changed: the first instance pinned, a new one
/// accepted, or a file of another policy replaced.
fn note_pin(change: &PinChange, pin: &InstancePin, client: &Client) {
    let instance = client
        .instance()
        .map(|instance| instance.to_hex())
        .unwrap_or_default();
    let file = pin.path().display();
    match change {
        PinChange::Unchanged => {}
        PinChange::Pinned => eprintln!(
            "note: pinned instance {instance} of this computation in {file}; another instance \
             will be refused"
        ),
        PinChange::Replaced { previous } => eprintln!(
            "note: accepted a new instance of this computation: {instance} (was {previous}); \
             pinned in {file}"
        ),
        PinChange::ReplacedOtherPolicy { previous } => eprintln!(
            "note: {file} pinned an instance of another policy ({} of computation {:?}); it now \
             pins this policy's instance {instance}",
            previous.policy_sha256, previous.computation
        ),
    }
}

fn print_agreement(
    agreement: &covenant_client::Agreement,
    json: bool,
    what: &str,
    recorded: &str,
) -> anyhow::Result<()> {
    if json {
        return print_json(agreement);
    }
    if agreement.complete {
        println!("every principal agreed to {what}");
    } else {
        println!(
            "{recorded}; still missing: {}",
            agreement.missing.join(", ")
        );
    }
    Ok(())
}

fn outcome(outcome: &covenant_sandbox::Outcome) -> String {
    match outcome {
        covenant_sandbox::Outcome::Exited(code) => format!("exited with code {code}"),
        covenant_sandbox::Outcome::Trapped(kind) => format!("trapped ({kind})"),
    }
}

fn print_status(status: &Status) {
    println!("computation {}: {}", status.computation, status.state);
    println!(
        "program  {}",
        if status.program_provided {
            "provided"
        } else {
            "not yet provided"
        }
    );
    for input in &status.inputs {
        let provided = match input.provided {
            Some(true) => "provided",
            Some(false) => "not yet provided",
            None => "(the provider's to tell)",
        };
        println!(
            "input    {} from {}{}: {provided}",
            input.path,
            input.provider,
            if input.required { "" } else { " (optional)" }
        );
    }
    println!(
        "runs     {} of {} allowed",
        status.runs.len(),
        status.runs_max
    );
    for record in &status.runs {
        println!("run {}   {}", record.run, outcome(&record.outcome));
        for output in &record.outputs {
            println!("         {} {}", output.path, output.status);
        }
    }
    if !status.rerun_consents.is_empty() {
        println!("re-run consents: {}", status.rerun_consents.join(", "));
    }
    if !status.close_agreed.is_empty() {
        println!("agreed to close: {}", status.close_agreed.join(", "));
    }
    if let Some(failure) = &status.failure {
        println!("failed ({}): {}", failure.code.as_str(), failure.message);
    }
}

/// Downloads an output to a file (written beside it and renamed into place only once whole)
/// or to stdout.
async fn fetch(
    client: &mut Client,
    output: &str,
    to: Option<&Path>,
    json: bool,
) -> Result<(), Failure> {
    let mut bar = Bar::new(json, output.to_owned());
    let Some(path) = to else {
        let mut stdout = tokio::io::stdout();
        client.fetch(output, &mut stdout, &mut bar).await?;
        return Ok(());
    };
    let partial = partial_path(path);
    let file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut writer = tokio::io::BufWriter::new(file);
    let result = client.fetch(output, &mut writer, &mut bar).await;
    let fetched = match result {
        Ok(fetched) => fetched,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e.into());
        }
    };
    drop(writer);
    tokio::fs::rename(&partial, path)
        .await
        .with_context(|| format!("cannot move the download into place at {}", path.display()))?;
    // The salt opens the receipt's commitment to this output: whoever has it and the receipt
    // can test guesses of the output, so it is kept like the output (readable by this user
    // only) and never needs to appear on a command line (`--salt PATH=@FILE.salt`).
    let salt_file = salt_path(path);
    write_private(&salt_file, fetched.salt.as_bytes())
        .with_context(|| format!("cannot write the salt to {}", salt_file.display()))?;
    if json {
        print_json(&json!({
            "output": output,
            "file": path,
            "bytes": fetched.bytes,
            "run": fetched.run,
            "salt": fetched.salt,
            "salt_file": salt_file,
        }))?;
    } else {
        println!(
            "wrote {} bytes of {output} (run {}) to {}, and the salt that checks it against \
             the run's receipt to {}",
            fetched.bytes,
            fetched.run,
            path.display(),
            salt_file.display()
        );
        println!(
            "to check it: covenant receipt verify --policy POLICY RECEIPT --file {output}={} \
             --salt {output}=@{}",
            path.display(),
            salt_file.display()
        );
    }
    Ok(())
}

/// `FILE.salt` beside `FILE`.
fn salt_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".salt");
    path.with_file_name(name)
}

/// Writes `bytes` to `path`, created (or truncated) readable and writable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its mode on open: set it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// `FILE.partial` beside `FILE`.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Fetches the receipts, verifies the latest against the policy, and writes it.
async fn receipt(
    client: &mut Client,
    policy: &ValidPolicy,
    to: Option<&Path>,
    json: bool,
) -> Result<(), Failure> {
    let receipts = client.receipts().await?;
    let Some(latest) = receipts.last() else {
        return Err(Failure::Other(anyhow::Error::new(Exit {
            code: EXIT_FAILURE,
            message: "error: the runtime has signed no receipt yet: no run has ended".into(),
        })));
    };
    let verified = covenant_runtime::verify_receipt(latest, policy).map_err(|e| {
        Failure::Other(anyhow::Error::new(Exit {
            code: EXIT_ATTESTATION,
            message: format!(
                "error: the runtime's latest receipt does not verify against the policy: {e}; \
                 do not rely on its outputs"
            ),
        }))
    })?;
    let claims = &verified.claims;
    if let Some(path) = to {
        std::fs::write(path, format!("{latest}\n"))
            .with_context(|| format!("cannot write the receipt to {}", path.display()))?;
    }
    if json {
        print_json(&json!({
            "verified": true,
            "receipt": latest,
            "file": to,
            "claims": claims,
            "receipts": receipts.len(),
        }))?;
        return Ok(());
    }
    // Without -o the receipt itself is stdout; the summary then goes to stderr.
    let mut summary: Box<dyn std::io::Write> = if to.is_some() {
        Box::new(std::io::stdout())
    } else {
        println!("{latest}");
        Box::new(std::io::stderr())
    };
    let lines = [
        format!(
            "receipt verified: run {} of computation {:?} on {}, {}",
            claims.run,
            claims.computation,
            claims.engine,
            outcome(&claims.outcome)
        ),
        format!("policy   {}", claims.policy_sha256),
        format!("instance {}", claims.instance),
        format!("program  {}", claims.program_sha256),
    ]
    .into_iter()
    .chain(super::receipt::inputs_and_outputs(claims))
    .chain(to.map(|path| format!("wrote the receipt to {}", path.display())));
    for line in lines {
        writeln!(summary, "{line}").context("writing the summary")?;
    }
    Ok(())
}
