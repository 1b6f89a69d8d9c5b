//! `covenant compile`: check and compile a module ahead of time into a signed artifact.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use covenant_sandbox::{ArtifactSigner, LoadError, Sandbox, SandboxConfig, Strategy};

use super::Exit;

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The WebAssembly module (.wasm) to compile.
    pub module: PathBuf,
    /// Where to write the artifact (conventionally .cwasm).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// The compiling identity's key (PKCS#8 PEM, from `covenant identity new`). Whoever runs
    /// the artifact passes the matching certificate with `covenant run --trust`.
    #[arg(long)]
    pub sign_key: PathBuf,
}

pub fn run(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let wasm = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let key = std::fs::read(&args.sign_key)
        .with_context(|| format!("reading {}", args.sign_key.display()))?;
    let signer = ArtifactSigner::from_pkcs8_pem(&key)
        .map_err(|e| Exit::refused(format!("{}: {e}", args.sign_key.display())))?;
    let sandbox = Sandbox::new(SandboxConfig::new(Strategy::Jit))?;
    let artifact = match sandbox.compile_artifact(&wasm, &signer) {
        Ok(artifact) => artifact,
        Err(LoadError::Refused(refused)) => {
            return Err(Exit::refused(format!(
                "{}: {refused}",
                args.module.display()
            )));
        }
        Err(other) => return Err(other.into()),
    };
    std::fs::write(&args.output, &artifact)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} ({} bytes, signed by {})",
        args.output.display(),
        artifact.len(),
        signer.signer_id()
    );
    Ok(ExitCode::SUCCESS)
}
