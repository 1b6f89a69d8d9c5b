//! `covenant identity new NAME`: an X.509 certificate and a P-256 key for a principal, a
//! platform, or whoever signs artifacts.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::Exit;

/// How long a new identity's certificate is valid: two years.
const VALIDITY_DAYS: i64 = 730;

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Make a new identity: writes DIR/NAME.crt (self-signed X.509, P-256) and DIR/NAME.key
    /// (PKCS#8 PEM, readable only by you). Refuses to overwrite either.
    New(NewArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The identity's name (letters, digits, '.', '_' and '-'); it becomes the certificate's
    /// common name and the files' names.
    pub name: String,
    /// Where to write the files.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

pub fn run(cmd: IdentityCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IdentityCommand::New(args) => new(&args),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    if !valid_name(&args.name) {
        return Err(Exit::refused(format!(
            "{:?} is not a usable identity name; use up to 64 letters, digits, '.', '_' or '-', not starting with '.'",
            args.name
        )));
    }
    let (cert_path, key_path) = create(&args.dir, &args.name)?;
    println!("wrote {} and {}", cert_path.display(), key_path.display());
    Ok(ExitCode::SUCCESS)
}

/// Makes identity `name` in `dir`: `NAME.crt` (self-signed X.509, P-256) and `NAME.key`
/// (PKCS#8 PEM, mode 0600). Never overwrites either. Returns the two paths.
///
/// # Errors
/// An [`Exit`] with code 2 if a file exists; I/O errors.
pub fn create(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert_path = dir.join(format!("{}.crt", name));
    let key_path = dir.join(format!("{}.key", name));
    for path in [&cert_path, &key_path] {
        if path.exists() {
            return Err(Exit::refused(format!(
                "{} already exists; an identity is never overwritten. Choose another name or move the old files away",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating a P-256 key")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;

    // The key first, created 0600 and never over an existing file.
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
