//! `covenant`: the one binary.
//!
//! Each subcommand lives in `commands/<name>.rs` with its clap arguments and a `run` function
//! returning the process exit code. This file only parses and dispatches. Parsing and checking
//! what the user typed happens in the argument types; building the real objects happens in `run`
//! (the ripgrep split). `anyhow` lives here and nowhere else.
#![forbid(unsafe_code)]

mod commands;
mod units;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// Covenant runs untrusted WebAssembly for parties who do not trust each other.
#[derive(Debug, Parser)]
#[command(name = "covenant", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an example computation end to end on this machine: every party, the attestation
    /// service, the host and its worker, over real TLS on loopback.
    #[command(long_about = commands::demo::LONG_ABOUT)]
    Demo(commands::demo::DemoArgs),
    /// Make identities: an X.509 certificate and a P-256 key for a principal, platform or signer.
    #[command(subcommand)]
    Identity(commands::identity::IdentityCommand),
    /// Compile a WebAssembly module ahead of time into a signed artifact.
    Compile(commands::compile::CompileArgs),
    /// Run a WebAssembly module (or a signed artifact) in the sandbox.
    Run(commands::run::RunArgs),
    /// Write, check and hash the global policy of a computation.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Print the software-platform measurement of this build (SHA-256 of the executable).
    #[command(long_about = commands::measurement::LONG_ABOUT)]
    Measurement(commands::measurement::MeasurementArgs),
    /// Run and administer an attestation service: init, serve, enroll-platform,
    /// allow-measurement, revoke, audit.
    #[command(subcommand)]
    AttestationService(commands::attestation_service::AttestationServiceCommand),
    /// Verify hardware attestation evidence offline (verify-evidence).
    #[command(subcommand)]
    Attestation(commands::attestation::AttestationCommand),
    /// Serve computations: a hardened, attested worker process per policy, clients relayed
    /// by the computation id they name (SNI).
    #[command(long_about = commands::serve::LONG_ABOUT)]
    Serve(commands::serve::ServeArgs),
    /// The trusted runtime of one computation, started by `covenant serve` (not by hand).
    #[command(hide = true)]
    Worker(commands::serve::WorkerArgs),
    /// Act as a principal: connect to the attested runtime and provide, run, fetch, close.
    Client(commands::client::ClientArgs),
    /// Work with run receipts: verify one offline against the policy.
    #[command(subcommand)]
    Receipt(commands::receipt::ReceiptCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(long_about = commands::completions::COMPLETIONS_LONG_ABOUT)]
    Completions(commands::completions::CompletionsArgs),
    /// Write roff manual pages for covenant and every subcommand.
    #[command(long_about = commands::completions::MAN_LONG_ABOUT)]
    Man(commands::completions::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Worker(_)));
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Identity(cmd) => commands::identity::run(cmd),
        Command::Compile(args) => commands::compile::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Policy(cmd) => commands::policy::run(cmd),
        Command::Measurement(args) => commands::measurement::run(args),
        Command::AttestationService(cmd) => commands::attestation_service::run(cmd),
        Command::Attestation(cmd) => commands::attestation::run(cmd),
        Command::Client(args) => commands::client::run(args),
        Command::Receipt(cmd) => commands::receipt::run(cmd),
        Command::Serve(args) => commands::serve::run(args),
        Command::Worker(args) => commands::serve::run_worker(args),
        Command::Completions(args) => commands::completions::run_completions(args, Cli::command()),
        Command::Man(args) => commands::completions::run_man(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(error) => commands::report_error(&error),
    }
}

/// What a worker logs, whatever its environment says: Covenant's own events at `info`, every
/// dependency's warnings. A worker's stderr goes to the host, which is untrusted and starts
/// the worker as it likes: a filter it chose (`RUST_LOG=cranelift_codegen=trace`) would make
/// the engine print the program's code into that log.
const WORKER_LOG_FILTER: &str = "warn,covenant=info,covenant_host=info,covenant_runtime=info";

/// Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default: warnings only); a
/// worker's by [`WORKER_LOG_FILTER`] alone.
fn init_logging(worker: bool) {
    let filter = if worker {
        tracing_subscriber::EnvFilter::new(WORKER_LOG_FILTER)
    } else {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
