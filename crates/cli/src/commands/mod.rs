//! The subcommands. Each module has its clap arguments and `run(args) -> anyhow::Result<ExitCode>`.
//!
//! Exit codes (documented in `docs/cli.md`):
//! - `0` success, or the guest's own exit code for `covenant run`;
//! - `1` an operational error (a file that cannot be read, a network failure);
//! - `2` refused input: bad command line, an invalid policy, a refused module or artifact;
//! - `3` `covenant client`: the runtime refused the request (the rule is printed);
//! - `4` `covenant client`: the server is not the runtime the policy names;
//!   `covenant attestation verify-evidence`: the evidence does not verify;
//! - `134` the guest trapped or exceeded a limit (`covenant run`).

pub mod attestation;
pub mod attestation_service;
pub mod client;
pub mod compile;
pub mod completions;
pub mod demo;
pub mod identity;
pub mod measurement;
pub mod policy;
pub mod receipt;
pub mod run;
pub mod serve;

use std::fmt;
use std::process::ExitCode;

/// Exit code for input Covenant refuses: a module, artifact, policy or argument.
pub const EXIT_REFUSED: u8 = 2;
/// Exit code when the guest trapped or exceeded a limit (the value a native `abort()` gives).
pub const EXIT_TRAPPED: u8 = 134;
/// Exit code for operational failures: unreadable files, network errors.
pub const EXIT_FAILURE: u8 = 1;

/// An error that ends the process with a specific exit code. Its `Display` is the whole message
/// printed to stderr, so it can list several reasons on several lines.
#[derive(Debug)]
pub struct Exit {
    /// The process exit code.
    pub code: u8,
    /// What to print on stderr, already formatted (`error: ...`).
    pub message: String,
}

impl Exit {
    /// Input refused (exit code 2), with a message printed as `error: <message>`.
    pub fn refused(message: impl fmt::Display) -> anyhow::Error {
        anyhow::Error::new(Exit {
            code: EXIT_REFUSED,
            message: format!("error: {message}"),
        })
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Prints an error the way every subcommand does and picks the exit code.
pub fn report_error(error: &anyhow::Error) -> ExitCode {
    if let Some(exit) = error.downcast_ref::<Exit>() {
        if !exit.message.is_empty() {
            eprintln!("{}", exit.message);
        }
        return ExitCode::from(exit.code);
    }
    eprintln!("error: {error:#}");
    ExitCode::from(EXIT_FAILURE)
}
