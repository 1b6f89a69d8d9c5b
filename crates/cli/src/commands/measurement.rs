//! `covenant measurement`: the software platform's measurement of this build.
//!
//! The measurement is SHA-256 of the running `covenant` executable: the same bytes the trusted
//! runtime (a `covenant` worker process) measures itself by when it produces evidence. A policy
//! that lists this value under `attestation.measurements.software` trusts exactly this build;
//! in a policy source, the value `"self"` stands for it.

use std::fs::File;
use std::io;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use sha2::{Digest, Sha256};

/// Print the software-platform measurement of this build (SHA-256 of the covenant executable).
#[derive(Debug, Args)]
#[command(
    long_about = "Print the software-platform measurement of this build: SHA-256 of the covenant \
                  executable, as 64 hex digits. A policy lists it under \
                  attestation.measurements.software to trust a runtime built exactly like this \
                  one; in a policy source, \"self\" stands for it."
)]
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

/// SHA-256 of the running executable, read in a stream (it is tens of megabytes).
///
/// # Errors
///
/// The executable cannot be found or read.
pub fn self_measurement() -> anyhow::Result<[u8; 32]> {
    let path = std::env::current_exe().context("cannot locate the running covenant executable")?;
    let mut file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hasher.finalize().into())
}
