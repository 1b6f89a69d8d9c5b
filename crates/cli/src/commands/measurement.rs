//! `covenant measurement`: the software platform's measurement of this build.
//!
//! The measurement is SHA-256 of the running `covenant` executable: the same bytes the trusted
//! runtime (a `covenant` worker process) measures itself by when it produces evidence. A policy
//! that lists this value under `attestation.measurements.software` trusts exactly this build;
//! in a policy source, the value `"self"` stands for it.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

/// The subcommand's long help (`--help`).
pub const LONG_ABOUT: &str = "Print the software-platform measurement of this build: SHA-256 of the covenant \
                  executable, as 64 hex digits. A policy lists it under \
                  attestation.measurements.software to trust a runtime built exactly like this \
                  one; in a policy source, \"self\" stands for it.";

/// Print the software-platform measurement of this build (SHA-256 of the covenant executable).
#[derive(Debug, Args)]
pub struct MeasurementArgs {}

/// Prints the measurement, one line of hex.
///
/// # Errors
///
/// The executable cannot be found or read.
pub fn run(_args: MeasurementArgs) -> anyhow::Result<ExitCode> {
    println!("{}", hex::encode(self_measurement()?));
    Ok(ExitCode::SUCCESS)
}

/// SHA-256 of the running executable: the software platform's own measurement function
/// (`covenant_attest::software`), so what this prints and what a worker attests cannot differ.
///
/// # Errors
///
/// The executable cannot be found or read.
pub fn self_measurement() -> anyhow::Result<[u8; 32]> {
    let measurement = covenant_attest::software::measure_current_executable()
        .context("measuring the running covenant executable")?;
    <[u8; 32]>::try_from(measurement.as_bytes())
        .context("the software platform's measurement is not a SHA-256 digest")
}
