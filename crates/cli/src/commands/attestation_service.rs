//! `covenant attestation-service …`: run and administer an attestation service.
//!
//! The service lives in a directory (`--dir`): `ca.crt` (the certificate a policy names),
//! `ca.key` and, unless `--db` names a PostgreSQL database, the SQLite file `attestation.db`.
//! Administration (enrolment, reference values, revocation, the audit log) works on that
//! directory and database directly; it is not exposed over HTTP. Every command is recorded in
//! the audit log.
//!
//! Exit codes: 0 success; 2 refused input (a bad name, certificate or measurement, an unknown
//! platform, an uninitialised directory, a CA that already exists); 1 anything else.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use covenant_attest::PlatformKind;
use covenant_attestation_service::admin::{self, RevocationTarget};
use covenant_attestation_service::{
    AttestationService, DEFAULT_TLS_NAMES, Database, ServiceConfig, ServiceDir, ServiceError,
};

use super::Exit;

/// The address `serve` listens on by default: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8450";

#[derive(Debug, Subcommand)]
pub enum AttestationServiceCommand {
    /// Create a service directory: a new CA (DIR/ca.crt, DIR/ca.key) and the database.
    Init(InitArgs),
    /// Serve the HTTP API (plain HTTP on loopback by default; --https for TLS with a
    /// certificate from the service's CA).
    Serve(ServeArgs),
    /// Enrol a software platform by its certificate (made with `covenant identity new`).
    EnrollPlatform(EnrollArgs),
    /// Accept a measurement (64 hex digits, as `covenant measurement` prints) for a platform.
    AllowMeasurement(AllowArgs),
    /// Revoke a platform, a measurement or a certificate, and every certificate that depends on
    /// it.
    Revoke(RevokeArgs),
    /// Print the audit log (oldest first).
    Audit(AuditArgs),
}

/// Where the service's files and database are.
#[derive(Debug, Args)]
pub struct Location {
    /// The service directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Database URL (`sqlite:PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`). Default: the
    /// SQLite file DIR/attestation.db.
    #[arg(long, env = "COVENANT_ATTESTATION_DB")]
    pub db: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub location: Location,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub location: Location,
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Serve HTTPS (TLS 1.3) with a fresh certificate issued by the service's CA.
    #[arg(long)]
    pub https: bool,
    /// A DNS name or IP address for the HTTPS certificate (repeatable). Default: localhost and
    /// 127.0.0.1.
    #[arg(long = "tls-name", requires = "https")]
    pub tls_names: Vec<String>,
    /// How long a nonce stays usable, in seconds.
    #[arg(long, default_value_t = covenant_attestation_service::service::DEFAULT_NONCE_LIFETIME.as_secs())]
    pub nonce_lifetime: u64,
    /// How long an attested certificate is valid, in seconds (at most one day).
    #[arg(long, default_value_t = covenant_attest::DEFAULT_ATTESTED_CERTIFICATE_LIFETIME.as_secs())]
    pub certificate_lifetime: u64,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    pub location: Location,
    /// A name for the platform (letters, digits, '.', '_', '-').
    pub name: String,
    /// The software platform's certificate (PEM). Hardware platforms have none: their root
    /// is pinned in covenant.
    pub certificate: Option<PathBuf>,
    /// The platform kind: `software` (with its certificate), or a hardware kind (`sev-snp`,
    /// `tdx`, `sgx`, `nitro`; at most one live platform per hardware kind).
    #[arg(long, default_value = "software")]
    pub kind: PlatformKind,
    /// Hardware: accept evidence from a runtime its host can debug. Only for development.
    #[arg(long)]
    pub allow_debug: bool,
    /// SEV-SNP: accept a guest policy that allows a migration agent.
    #[arg(long)]
    pub allow_migration_agent: bool,
    /// TDX and SGX: accept this Intel TCB status besides up-to-date (repeat for more).
    #[arg(long, value_name = "STATUS")]
    pub accept_tcb_status: Vec<String>,
    /// SGX: the MRSIGNER every enclave must have (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub sgx_mrsigner: Option<String>,
    /// SGX: the ISV product id every enclave must have.
    #[arg(long, value_name = "ID")]
    pub sgx_isv_prod_id: Option<u16>,
}

#[derive(Debug, Args)]
pub struct AllowArgs {
    #[command(flatten)]
    pub location: Location,
    /// The enrolled platform's name.
    pub platform: String,
    /// The measurement, 64 hex digits.
    pub measurement: String,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["platform", "measurement", "certificate"])))]
pub struct RevokeArgs {
    #[command(flatten)]
    pub location: Location,
    /// Revoke this platform and every certificate issued through it.
    #[arg(long)]
    pub platform: Option<String>,
    /// Revoke a measurement on a platform (PLATFORM:HEX) and its certificates there.
    #[arg(long, value_name = "PLATFORM:HEX")]
    pub measurement: Option<String>,
    /// Revoke one certificate by serial number (hex). Its computation may then be attested
    /// again: how an operator frees the computation of a worker that died without reporting
    /// its end (check that it is gone first).
    #[arg(long, value_name = "SERIAL")]
    pub certificate: Option<String>,
    /// Why (recorded and shown in certificate status).
    #[arg(long, default_value = "revoked by the administrator")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub location: Location,
    /// How many of the latest entries to print.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Print JSON (one array) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs a subcommand.
///
/// # Errors
/// An [`Exit`] with code 2 for refused input; other errors for operational failures.
pub fn run(command: AttestationServiceCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match command {
            AttestationServiceCommand::Init(args) => init(args).await,
            AttestationServiceCommand::Serve(args) => serve(args).await,
            AttestationServiceCommand::EnrollPlatform(args) => enroll(args).await,
            AttestationServiceCommand::AllowMeasurement(args) => allow(args).await,
            AttestationServiceCommand::Revoke(args) => revoke(args).await,
            AttestationServiceCommand::Audit(args) => audit(args).await,
        }
    })
}

/// Refusals exit 2 with the service's message; everything else is an operational error.
fn cli_error(error: ServiceError) -> anyhow::Error {
    if error.is_refusal() {
        Exit::refused(error)
    } else {
        anyhow::Error::new(error)
    }
}

async fn open(location: &Location) -> anyhow::Result<(ServiceDir, Database)> {
    let dir = ServiceDir::new(&location.dir);
    let db = dir
        .open_database(location.db.as_deref())
        .await
        .map_err(cli_error)?;
    Ok((dir, db))
}

async fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let dir = ServiceDir::new(&args.location.dir);
    let (ca, db) = dir
        .init(args.location.db.as_deref())
        .await
        .map_err(cli_error)?;
    db.close().await;
    println!("CA certificate: {}", dir.ca_certificate_path().display());
    println!(
        "CA certificate SHA-256: {}",
        covenant_attest::Digest::of(ca.certificate_der())
    );
    println!(
        "Next: `covenant attestation-service enroll-platform --dir {} NAME CERT`, then allow-measurement.",
        dir.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (dir, db) = open(&args.location).await?;
    let ca = dir.load_ca().map_err(cli_error)?;
    let tls = if args.https {
        let names = if args.tls_names.is_empty() {
            DEFAULT_TLS_NAMES.iter().map(|n| (*n).to_owned()).collect()
        } else {
            args.tls_names.clone()
        };
        Some(covenant_attestation_service::tls_config(&ca, &names).map_err(cli_error)?)
    } else {
        if !args.listen.ip().is_loopback() {
            tracing::warn!(
                "serving plain HTTP on {}; responses are signed certificates, but consider --https",
                args.listen
            );
        }
        None
    };
    let config = ServiceConfig {
        nonce_lifetime: Duration::from_secs(args.nonce_lifetime),
        certificate_lifetime: Duration::from_secs(args.certificate_lifetime),
        ..ServiceConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let address = listener
        .local_addr()
        .context("reading the listening address")?;
    let service = Arc::new(AttestationService::new(db, ca, config));
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("attestation service listening on {scheme}://{address}");
    covenant_attestation_service::serve(listener, service.clone(), tls, shutdown_signal())
        .await
        .context("serving")?;
    service.database().close().await;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn enroll(args: EnrollArgs) -> anyhow::Result<ExitCode> {
    if args.kind == PlatformKind::Software {
        let Some(certificate) = &args.certificate else {
            return Err(Exit::refused(
                "a software platform is enrolled with its certificate: `enroll-platform NAME \
                 platform.crt` (made by `covenant identity new`)",
            ));
        };
        let hardware_only = args.allow_debug
            || args.allow_migration_agent
            || !args.accept_tcb_status.is_empty()
            || args.sgx_mrsigner.is_some()
            || args.sgx_isv_prod_id.is_some();
        if hardware_only {
            return Err(Exit::refused(
                "--allow-debug, --allow-migration-agent, --accept-tcb-status and --sgx-* apply \
                 to hardware platforms only (--kind sev-snp|tdx|sgx|nitro)",
            ));
        }
        let pem = covenant_attest::pem::read_pem_file(certificate).map_err(Exit::refused)?;
        let (_, db) = open(&args.location).await?;
        let result = admin::enroll_platform(&db, &args.name, args.kind, &pem).await;
        db.close().await;
        let record = result.map_err(cli_error)?;
        println!(
            "enrolled {} platform {:?}, key {}",
            record.kind, record.name, record.key_id
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.certificate.is_some() {
        return Err(Exit::refused(format!(
            "a {} platform has no certificate to enrol: its root is pinned in covenant; leave \
             the certificate out",
            args.kind
        )));
    }
    let requirements = covenant_attest::hardware::HardwareRequirements {
        allow_debug: args.allow_debug,
        allow_migration_agent: args.allow_migration_agent,
        accepted_tcb_statuses: args.accept_tcb_status.iter().cloned().collect(),
        sgx_mrsigner: args.sgx_mrsigner.as_ref().map(|s| s.to_ascii_lowercase()),
        sgx_isv_prod_id: args.sgx_isv_prod_id,
    };
    let (_, db) = open(&args.location).await?;
    let result = admin::enroll_hardware_platform(&db, &args.name, args.kind, &requirements).await;
    db.close().await;
    let record = result.map_err(cli_error)?;
    println!(
        "enrolled {} hardware platform {:?}; allow its measurements with `allow-measurement {} MEASUREMENT`",
        record.kind, record.name, record.name
    );
    Ok(ExitCode::SUCCESS)
}

async fn allow(args: AllowArgs) -> anyhow::Result<ExitCode> {
    let (_, db) = open(&args.location).await?;
    let result = admin::allow_measurement(&db, &args.platform, &args.measurement).await;
    db.close().await;
    if result.map_err(cli_error)? {
        println!(
            "allowed {} for platform {:?}",
            args.measurement.to_ascii_lowercase(),
            args.platform
        );
    } else {
        println!(
            "{} was already allowed for platform {:?}",
            args.measurement.to_ascii_lowercase(),
            args.platform
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let target = match (&args.platform, &args.measurement, &args.certificate) {
        (Some(name), None, None) => RevocationTarget::Platform(name.clone()),
        (None, Some(spec), None) => {
            let (platform, measurement) = spec.split_once(':').ok_or_else(|| {
                Exit::refused(format!("--measurement {spec:?}: expected PLATFORM:HEX"))
            })?;
            RevocationTarget::Measurement {
                platform: platform.to_owned(),
                measurement: measurement.to_owned(),
            }
        }
        (None, None, Some(serial)) => RevocationTarget::Certificate(serial.clone()),
        _ => {
            return Err(Exit::refused(
                "give exactly one of --platform, --measurement, --certificate",
            ));
        }
    };
    let (_, db) = open(&args.location).await?;
    let result = admin::revoke(&db, &target, &args.reason).await;
    db.close().await;
    let certificates = result.map_err(cli_error)?;
    println!("revoked; {certificates} certificate(s) revoked");
    Ok(ExitCode::SUCCESS)
}

async fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let (_, db) = open(&args.location).await?;
    let result = db.audit_log(i64::from(args.limit)).await;
    db.close().await;
    let entries = result.map_err(cli_error)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).context("encoding the audit log")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for entry in entries {
        let at = covenant_attestation_service::service::rfc3339_ms(entry.at)
            .unwrap_or_else(|_| entry.at.to_string());
        println!(
            "{:>6}  {at}  {:<20} {:<8} {:<26} {}",
            entry.id, entry.action, entry.outcome, entry.code, entry.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}
