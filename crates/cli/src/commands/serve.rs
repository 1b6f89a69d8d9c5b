//! `covenant serve` (the untrusted host) and `covenant worker` (the trusted runtime it starts,
//! hidden: only the host runs it). The work lives in `covenant-host`; this module reads the
//! arguments, prints what happens and picks the exit code.
//!
//! Exit codes: 0 when every computation ended cleanly (its principals closed it, or Ctrl-C);
//! 1 when a worker could not start, or one ended abnormally (crashed, killed, failed); 2 for
//! a refused argument or policy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use covenant_attest::PlatformKind;
use covenant_host::hardening::Probe;
use covenant_host::{Host, HostConfig, HostError, PlatformConfig, WorkerState};
use covenant_policy::Strategy;

use super::{EXIT_FAILURE, Exit};

/// The address `serve` listens on by default: loopback only. `covenant client` connects here
/// by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";

/// The subcommand's long help (`--help`).
pub const LONG_ABOUT: &str = "Serve computations: for each policy, start a worker process (the \
    trusted runtime, hardened with rlimits, no_new_privs and a seccomp allow-list), have it \
    attested by the attestation service the policy names, and relay clients to it. Clients \
    connect with TLS and the computation id as the server name (SNI); the host reads only \
    that name and relays ciphertext. Runs until every computation has been closed by its \
    principals, or Ctrl-C. See docs/host.md.";

/// Arguments of `covenant serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A policy JSON (from `covenant policy build`); repeat for several computations.
    #[arg(long = "policy", value_name = "FILE", required = true)]
    pub policies: Vec<PathBuf>,
    /// Address to accept clients on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// The attestation service's URL [default: the one each policy names].
    #[arg(long, value_name = "URL")]
    pub attestation_service: Option<String>,
}

/// What the workers attest with: the software platform (its key and certificate) or hardware
/// through configfs-tsm.
#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// The platform the workers attest with: `software` (a platform key; trusts the host
    /// operating system), or `sev-snp` or `tdx` (this machine is a confidential guest; the
    /// evidence comes from the hardware through Linux's configfs-tsm).
    #[arg(long, value_name = "PLATFORM", default_value = "software", value_parser = parse_platform)]
    pub platform: PlatformKind,
    /// Software: the platform key (PEM), as `covenant identity new` writes it.
    #[arg(long, value_name = "FILE")]
    pub platform_key: Option<PathBuf>,
    /// Software: the platform certificate (PEM) [default: the key's path with `.crt`].
    #[arg(long, value_name = "FILE")]
    pub platform_cert: Option<PathBuf>,
    /// Hardware: the configfs-tsm report directory.
    #[arg(long, value_name = "DIR", default_value = covenant_attest::tsm::DEFAULT_REPORT_ROOT)]
    pub tsm_report_root: PathBuf,
    /// Hardware: the endorsement to send with the evidence (TDX: the DCAP collateral JSON; an
    /// SEV-SNP VCEK if the hypervisor supplies none), if the attestation service has none
    /// cached for this machine.
    #[arg(long, value_name = "FILE")]
    pub endorsement: Option<PathBuf>,
}

fn parse_platform(name: &str) -> Result<PlatformKind, String> {
    [
        PlatformKind::Software,
        PlatformKind::SevSnp,
        PlatformKind::Tdx,
    ]
    .into_iter()
    .find(|kind| kind.as_str() == name)
    .ok_or_else(|| {
        format!("a worker attests with software, sev-snp or tdx (configfs-tsm), not {name:?}")
    })
}

impl PlatformArgs {
    /// The host's platform configuration, or what is wrong with the arguments.
    fn config(self) -> anyhow::Result<PlatformConfig> {
        if self.platform == PlatformKind::Software {
            if self.endorsement.is_some() {
                return Err(Exit::refused(
                    "--endorsement: the software platform sends none (it is for --platform sev-snp|tdx)",
                ));
            }
            let Some(key) = self.platform_key else {
                return Err(Exit::refused(
                    "--platform-key: the software platform needs its key (from `covenant \
                     identity new`); or choose hardware with --platform sev-snp|tdx",
                ));
            };
            let certificate = self
                .platform_cert
                .unwrap_or_else(|| key.with_extension("crt"));
            return Ok(PlatformConfig::Software { certificate, key });
        }
        if self.platform_key.is_some() || self.platform_cert.is_some() {
            return Err(Exit::refused(format!(
                "--platform-key and --platform-cert are for the software platform; a {} worker \
                 is attested by its hardware",
                self.platform
            )));
        }
        Ok(PlatformConfig::Tsm {
            kind: self.platform,
            report_root: self.tsm_report_root,
            endorsements: self.endorsement.into_iter().collect(),
        })
    }
}

/// Arguments of the hidden `covenant worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The policy JSON.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// The execution strategy whose seccomp filter to install (jit or interpreter); it must
    /// be the policy's. `covenant serve` passes the policy's own.
    #[arg(long, value_name = "STRATEGY", default_value = "jit", value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// Try a forbidden thing right after hardening, before anything is parsed (socket, exec,
    /// open, prlimit, fcntl-async, stat, exec-memory or memfd), to see the filter stop it.
    /// For tests and for operators checking a machine.
    #[arg(long, value_name = "CALL")]
    pub hardening_probe: Option<Probe>,
}

fn parse_strategy(name: &str) -> Result<Strategy, String> {
    [Strategy::Jit, Strategy::Interpreter]
        .into_iter()
        .find(|strategy| strategy.as_str() == name)
        .ok_or_else(|| format!("unknown strategy {name:?}: jit or interpreter"))
}

/// `covenant serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let platform = args.platform.config()?;
    let worker_program =
        std::env::current_exe().context("finding this executable to start workers with")?;
    let config = HostConfig {
        listen: args.listen,
        policies: args.policies,
        platform,
        attestation_service: args.attestation_service,
        worker_program,
        worker_args: vec!["worker".into()],
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: HostConfig) -> anyhow::Result<ExitCode> {
    let host = match Host::start(config).await {
        Ok(host) => host,
        Err(e @ (HostError::Policy { .. } | HostError::DuplicateComputation(_))) => {
            return Err(Exit::refused(e));
        }
        Err(e) => return Err(e.into()),
    };
    let address = host.local_addr().context("reading the listening address")?;
    println!("covenant host listening on {address}");
    for worker in host.workers() {
        println!(
            "computation {}: worker pid {} attested and serving",
            worker.computation, worker.pid
        );
    }
    // Ctrl-C and SIGTERM (what `kill` and service managers send) both stop the workers in
    // order, so that each reports its end to the attestation service and its computation can
    // be attested again; without SIGTERM, a routine restart would leave it held until expiry.
    let shutdown = async {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_err() {
                // No Ctrl-C handling: wait for SIGTERM or for the computations to end.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    };
    let ended = host
        .run(shutdown, |computation, state| {
            if let WorkerState::Ended { reason, clean } = state {
                let verdict = if *clean { "ended" } else { "FAILED" };
                println!("computation {computation}: worker {verdict}: {reason}");
            }
        })
        .await;
    let abnormal = ended
        .iter()
        .filter(|w| matches!(w.state, WorkerState::Ended { clean: false, .. }))
        .count();
    println!("covenant host stopped");
    Ok(if abnormal == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}

/// `covenant worker`.
pub fn run_worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let options = covenant_host::worker::WorkerOptions {
        policy: args.policy,
        platform: args.platform.config()?,
        strategy: args.strategy,
        probe: args.hardening_probe,
    };
    covenant_host::worker::run(&options)?;
    Ok(ExitCode::SUCCESS)
}
