//! The worker process: the trusted runtime of one computation.
//!
//! This is trusted code living in the host crate because it shares the control protocol with
//! the host; it runs in its own process, started by the host as `covenant worker`, with an
//! empty environment but for [`WORKER_ENVIRONMENT`]. In order:
//!
//! 1. read the bytes of the policy and of the platform's certificate and key (each bounded;
//!    the key into a buffer zeroed on drop), and measure its own executable (the software
//!    platform's measurement) — reading only, parsing nothing;
//! 2. start the async runtime;
//! 3. [`harden`](crate::hardening::harden) itself for its strategy: rlimits, not dumpable,
//!    `no_new_privs`, seccomp — before it parses any of those bytes or reads one byte from
//!    the host;
//! 4. parse and validate the policy (and refuse one whose strategy is not the one it was
//!    hardened for), and the platform's certificate and key;
//! 5. attest through the host: say hello, take a nonce, make its TLS key and evidence — and
//!    drop the platform, zeroing its key, before the request leaves — then check the chain
//!    that comes back is for its key, issued by the policy's attestation CA, and carries this
//!    policy's hash, computation and an accepted measurement (its own);
//! 6. serve each client connection the host hands over (a socket carried in a control
//!    message), TLS ending here, until every principal has closed the computation, the host
//!    says stop, or the host goes away.
//!
//! Nothing the host sends is trusted: it can withhold or garble connections (clients then see
//! TLS fail) or the attestation (the certificate check fails), but not read or change data.

use std::os::fd::{AsFd as _, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use covenant_attest::Platform;
use covenant_attest::instance::{EndReason, InstanceEndSigner};
use covenant_attest::software::{SoftwarePlatform, read_platform_key_file};
use covenant_attest::tsm::{PreparedTsm, TsmPlatform};
use covenant_attest::wire::{AttestationRequest, accept_attestation_response, prepare_attestation};
use covenant_attest::{Digest, Measurement, PlatformKind, verify_attested_certificate};
use covenant_policy::bounds::MAX_POLICY_BYTES;
use covenant_policy::{Strategy, ValidPolicy};
use covenant_runtime::api::{ApiServer, ServerIdentity};
use covenant_runtime::{Computation, ReceiptSigner};
use rustls_pki_types::CertificateDer;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::control::{ControlSocket, HostMessage, WorkerMessage};
use crate::hardening::{self, Probe};

/// Threads of the worker's async runtime: TLS and HTTP for its clients. Guest runs and
/// transfers to the in-memory file system happen on blocking threads.
pub const WORKER_ASYNC_THREADS: usize = 2;

/// Control messages buffered between the thread reading the control socket and the serving
/// task. Bounds what a host flooding the worker with messages can make it hold.
const CONTROL_QUEUE: usize = 64;

/// How long a closed computation's worker waits for its open connections to end before it
/// exits: the answer to the last principal's `close` is still on its way when the computation
/// closes, and exiting at once would cut it off. Bounds what an idle client can hold it up.
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The environment variables the host passes a worker; it starts the worker with an empty
/// environment plus these, if set: none. Not even `RUST_LOG`: a worker's log filter is fixed
/// (a filter the untrusted host chose could make the engine trace the program's code into
/// the log the host reads). Nothing of the host's environment reaches the trusted runtime:
/// not the dynamic loader's variables (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `LD_AUDIT`), which
/// would run the host's code inside it, nor glibc's (`GLIBC_TUNABLES`, `MALLOC_*`), nor the
/// host's secrets. A worker started with anything else says so in its log, naming the
/// variables, never their values.
pub const WORKER_ENVIRONMENT: &[&str] = &[];

/// What the worker is started with.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The policy JSON.
    pub policy: PathBuf,
    /// What the worker attests with.
    pub platform: crate::PlatformConfig,
    /// The execution strategy whose seccomp filter the worker installs. It must be the
    /// policy's: the worker hardens before it parses the policy, and refuses to serve if
    /// they differ.
    pub strategy: Strategy,
    /// A forbidden thing to try right after hardening, before anything is parsed (tests of
    /// the filter).
    pub probe: Option<Probe>,
}

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Reading its start-up files or the policy failed.
    #[error("{0}")]
    Setup(String),
    /// Hardening failed: the worker does not serve unhardened.
    #[error("hardening: {0}")]
    Hardening(#[from] hardening::HardeningError),
    /// The host broke the control protocol or went away.
    #[error("control channel: {0}")]
    Control(String),
    /// Attestation failed.
    #[error("attestation: {0}")]
    Attestation(String),
    /// A forbidden probe was not stopped: the hardening does not work.
    #[error("the probe {0:?} was not stopped by the seccomp filter")]
    ProbeSucceeded(Probe),
}

/// Runs the worker to the end. The control socket is the process's standard input.
///
/// # Errors
/// [`WorkerError`]; it has also been reported to the host if the channel was up.
pub fn run(options: &WorkerOptions) -> Result<(), WorkerError> {
    let control = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| WorkerError::Setup(format!("taking the control socket: {e}")))?;
    let control = Arc::new(ControlSocket::from_fd(control));
    let failed = |error: WorkerError| {
        report_failure(&control, &error);
        Err(error)
    };
    // 1. The bytes of everything from the file system, before hardening; nothing parsed.
    let files = match StartupFiles::read(options) {
        Ok(files) => files,
        Err(error) => return failed(error),
    };
    // 2. The async runtime, whose threads the filter then covers too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_ASYNC_THREADS)
        .thread_name("covenant-worker")
        .enable_all()
        .build()
        .map_err(|e| WorkerError::Setup(format!("starting the async runtime: {e}")))?;
    // 3. Hardening.
    if let Err(e) = hardening::harden(options.strategy) {
        return failed(WorkerError::from(e));
    }
    tracing::info!(
        strategy = options.strategy.as_str(),
        "hardened: rlimits, not dumpable, no_new_privs, seccomp allow-list"
    );
    if let Some(probe) = options.probe {
        // For tests: a probe that should kill the process returns only if the filter failed.
        let result = hardening::probe(probe);
        eprintln!("hardening probe {probe:?}: {result:?}");
        if result.is_ok() {
            return Err(WorkerError::ProbeSucceeded(probe));
        }
    }
    warn_of_unexpected_environment();
    // 4. Parsing, hardened.
    let (policy, platform) = match files.parse(options.strategy) {
        Ok(parsed) => parsed,
        Err(error) => return failed(error),
    };
    let result = runtime.block_on(serve(Arc::clone(&control), policy, platform));
    if let Err(e) = &result {
        report_failure(&control, e);
    }
    // Blocking tasks (a running guest) are not waited for: the computation is over.
    runtime.shutdown_background();
    result
}

/// What the worker reads from the file system before it hardens: bytes only (and, for a
/// hardware platform, the report entries it will use, made and opened: see [`PreparedTsm`]).
struct StartupFiles {
    policy: Vec<u8>,
    platform: StartupPlatform,
}

enum StartupPlatform {
    Software {
        certificate: Vec<u8>,
        /// Zeroed when dropped, which is right after it is parsed.
        key: Zeroizing<Vec<u8>>,
        measurement: Measurement,
    },
    /// Its two report entries (probe and report) made and opened before hardening, once
    /// hardened the worker can neither make nor open files; nothing read from them yet.
    Tsm(PreparedTsm),
}

/// The largest endorsement file a hardware worker reads: the service accepts no larger.
const MAX_ENDORSEMENT_FILE_BYTES: usize = covenant_attest::platform::MAX_ENDORSEMENT_LEN;

impl StartupFiles {
    /// Reads each file within its bound (the paths come from the untrusted host) and measures
    /// the executable. Parses nothing.
    fn read(options: &WorkerOptions) -> Result<Self, WorkerError> {
        use std::io::Read as _;
        let unreadable = |e: std::io::Error| {
            WorkerError::Setup(format!(
                "reading the policy {}: {e}",
                options.policy.display()
            ))
        };
        let mut policy = Vec::new();
        std::fs::File::open(&options.policy)
            .map_err(unreadable)?
            .take(MAX_POLICY_BYTES as u64 + 1)
            .read_to_end(&mut policy)
            .map_err(unreadable)?;
        if policy.len() > MAX_POLICY_BYTES {
            return Err(WorkerError::Setup(format!(
                "the policy {} is larger than {MAX_POLICY_BYTES} bytes",
                options.policy.display()
            )));
        }
        let platform = match &options.platform {
            crate::PlatformConfig::Software { certificate, key } => {
                let software = |e: covenant_attest::AttestError| {
                    WorkerError::Setup(format!("the software platform: {e}"))
                };
                StartupPlatform::Software {
                    certificate: covenant_attest::pem::read_pem_file(certificate)
                        .map_err(software)?,
                    key: read_platform_key_file(key).map_err(software)?,
                    measurement: covenant_attest::software::measure_current_executable()
                        .map_err(software)?,
                }
            }
            crate::PlatformConfig::Tsm {
                kind,
                report_root,
                endorsements,
            } => {
                let hardware = |e: String| WorkerError::Setup(format!("the {kind} platform: {e}"));
                if endorsements.len() > covenant_attest::platform::MAX_ENDORSEMENTS {
                    return Err(hardware(format!(
                        "{} endorsements; hardware evidence carries at most {}",
                        endorsements.len(),
                        covenant_attest::platform::MAX_ENDORSEMENTS
                    )));
                }
                let mut read = Vec::new();
                for path in endorsements {
                    let mut bytes = Vec::new();
                    std::fs::File::open(path)
                        .and_then(|file| {
                            file.take(MAX_ENDORSEMENT_FILE_BYTES as u64 + 1)
                                .read_to_end(&mut bytes)
                        })
                        .map_err(|e| hardware(format!("{}: {e}", path.display())))?;
                    if bytes.len() > MAX_ENDORSEMENT_FILE_BYTES {
                        return Err(hardware(format!(
                            "{} is larger than {MAX_ENDORSEMENT_FILE_BYTES} bytes",
                            path.display()
                        )));
                    }
                    read.push(bytes);
                }
                // Two report entries made and opened, nothing read: the probe and the report
                // are taken through them once hardened, in `parse`.
                let prepared = TsmPlatform::prepare(*kind, report_root.clone(), read)
                    .map_err(|e| hardware(e.to_string()))?;
                StartupPlatform::Tsm(prepared)
            }
        };
        Ok(Self { policy, platform })
    }

    /// Parses and validates what was read, once hardened. Consumes the bytes: the key's are
    /// zeroed on return, whatever happens.
    fn parse(
        self,
        hardened_for: Strategy,
    ) -> Result<(ValidPolicy, Box<dyn Platform>), WorkerError> {
        let policy = covenant_policy::parse(&self.policy)
            .map_err(|e| WorkerError::Setup(format!("the policy is not valid: {e}")))?;
        let policy = covenant_policy::validate(&policy, time::OffsetDateTime::now_utc()).map_err(
            |problems| WorkerError::Setup(format!("the policy is not valid: {problems}")),
        )?;
        let strategy = policy.policy().execution.strategy;
        if strategy != hardened_for {
            return Err(WorkerError::Setup(format!(
                "this worker was hardened for the {} strategy, but the policy selects {}: start \
                 it with `--strategy {}` (covenant serve does so itself)",
                hardened_for.as_str(),
                strategy.as_str(),
                strategy.as_str()
            )));
        }
        let platform: Box<dyn Platform> = match self.platform {
            StartupPlatform::Software {
                certificate,
                key,
                measurement,
            } => Box::new(
                SoftwarePlatform::new(&certificate, &key, measurement)
                    .map_err(|e| WorkerError::Setup(format!("the software platform: {e}")))?,
            ),
            StartupPlatform::Tsm(prepared) => {
                let kind = prepared.kind();
                Box::new(prepared.probe().map_err(|e| {
                    WorkerError::Setup(format!("the {kind} platform's probe report: {e}"))
                })?)
            }
        };
        Ok((policy, platform))
    }
}

/// Logs the names (never the values) of environment variables the host should not have
/// passed (see [`WORKER_ENVIRONMENT`]). A loader variable has done its work by now; the
/// line tells the operator their host leaks its environment into the trusted runtime.
fn warn_of_unexpected_environment() {
    let unexpected: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .filter(|name| !WORKER_ENVIRONMENT.contains(&name.as_str()))
        .collect();
    if !unexpected.is_empty() {
        tracing::warn!(
            "started with environment variables a worker does not take: {}; a host must start \
             workers with an empty environment (covenant serve does)",
            unexpected.join(", ")
        );
    }
}

fn report_failure(control: &ControlSocket, error: &WorkerError) {
    let message = WorkerMessage::Failed {
        message: error.to_string(),
    };
    if let Err(e) = control.send(&message, None) {
        tracing::warn!(error = %e, "could not report the failure to the host");
    }
}

/// Makes the TLS key and the attestation request, then drops the platform, which zeroes its
/// key: the request is sent, the host answers and the first client connects with no platform
/// key in this process. Taking the platform by value makes that a property of the types: no
/// code after this call can sign evidence.
fn prepare_and_forget_the_platform(
    platform: Box<dyn Platform>,
    policy_hash: Digest,
    computation: &str,
    nonce: covenant_attest::Nonce,
) -> Result<(rcgen::KeyPair, AttestationRequest), WorkerError> {
    let prepared = prepare_attestation(
        platform.as_ref(),
        policy_hash,
        computation,
        std::slice::from_ref(&computation.to_owned()),
        nonce,
    );
    drop(platform);
    prepared.map_err(|e| WorkerError::Attestation(e.to_string()))
}

/// Checks the chain the host brought back before the worker serves with it: exactly the
/// worker's certificate and the policy's attestation CA certificate; the certificate issued
/// by that CA, valid now, for this policy's hash and computation, with a measurement the
/// policy accepts — and it is this worker's own (its platform kind and measurement).
/// What a client of this policy checks, checked first by the worker, so that it never serves
/// with a certificate its clients would refuse, or one from a service the parties did not
/// name.
fn check_attested_chain(
    policy: &ValidPolicy,
    chain: &[CertificateDer<'static>],
    own_platform: PlatformKind,
    own_measurement: Measurement,
) -> Result<(), WorkerError> {
    let refused = |what: String| {
        WorkerError::Attestation(format!(
            "{what}; the worker does not serve with it. Check that the attestation service \
             the host uses (--attestation-service, or the policy's service) is the one whose \
             CA certificate the policy names"
        ))
    };
    let expected = covenant_runtime::expected_runtime(policy)
        .map_err(|e| WorkerError::Setup(format!("the policy's attestation section: {e}")))?;
    let [leaf, ca] = chain else {
        return Err(refused(format!(
            "the attestation response carries {} certificates, not the attested certificate \
             and its CA's",
            chain.len()
        )));
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = verify_attested_certificate(&expected, leaf, now).map_err(|e| {
        refused(format!(
            "the certificate the attestation service issued is not one this policy's clients \
             accept: {e}"
        ))
    })?;
    if ca.as_ref() != expected.ca_certificate_der.as_slice() {
        return Err(refused(
            "the chain does not end at the attestation CA certificate the policy names".into(),
        ));
    }
    if claims.platform != own_platform || claims.measurement != own_measurement {
        return Err(refused(format!(
            "the certificate names platform {} and measurement {}, not this worker's ({}, {})",
            claims.platform, claims.measurement, own_platform, own_measurement
        )));
    }
    Ok(())
}

/// A control message as the serving task sees it.
type Incoming = Result<(HostMessage, Option<OwnedFd>), String>;

async fn serve(
    control: Arc<ControlSocket>,
    policy: ValidPolicy,
    platform: Box<dyn Platform>,
) -> Result<(), WorkerError> {
    let mut incoming = read_control(Arc::clone(&control));
    let send = |message: &WorkerMessage| {
        control
            .send(message, None)
            .map_err(|e| WorkerError::Control(e.to_string()))
    };
    let computation = policy.policy().computation.clone();
    let policy_hash = Digest(*policy.hash().as_bytes());
    let measurement = platform.measurement();
    let platform_kind = platform.kind();
    send(&WorkerMessage::Hello {
        computation: computation.clone(),
        policy_hash: policy_hash.to_hex(),
        measurement: measurement.to_hex(),
    })?;

    // 5. Attestation through the host. The platform is consumed (its key zeroed) as soon as
    // the evidence is signed.
    let nonce = match next(&mut incoming).await? {
        (HostMessage::Nonce { nonce }, None) => nonce,
        (other, _) => return Err(unexpected("a nonce", &other)),
    };
    let (key, request) =
        prepare_and_forget_the_platform(platform, policy_hash, &computation, nonce)?;
    send(&WorkerMessage::Attest { request })?;
    let response = match next(&mut incoming).await? {
        (HostMessage::Attested { response }, None) => response,
        (HostMessage::AttestationFailed { message }, None) => {
            return Err(WorkerError::Attestation(message));
        }
        (other, _) => return Err(unexpected("the attestation response", &other)),
    };
    let chain = accept_attestation_response(&key, &response)
        .map_err(|e| WorkerError::Attestation(e.to_string()))?;
    check_attested_chain(&policy, &chain, platform_kind, measurement)?;
    let chain: Vec<Vec<u8>> = chain.iter().map(|c| c.to_vec()).collect();
    let key_der = key.serialize_der();
    let signer = ReceiptSigner::new(&key_der, chain.clone())
        .map_err(|e| WorkerError::Attestation(format!("the receipt signer: {e}")))?;
    // The instance's end statement is signed when it ends (below); made now, from its key.
    let end = InstanceEndSigner::new(&key_der, chain.first().map_or(&[][..], Vec::as_slice))
        .map_err(|e| WorkerError::Attestation(format!("the end statement's signer: {e}")))?;
    let computation_state = Computation::new(policy, signer)
        .map_err(|e| WorkerError::Setup(format!("setting up the computation: {e}")))?;
    let server = ApiServer::new(computation_state, &ServerIdentity::new(key_der, chain))
        .map_err(|e| WorkerError::Setup(format!("setting up TLS: {e}")))?;
    send(&WorkerMessage::Serving {
        not_after: response.not_after.clone(),
    })?;
    tracing::info!(%computation, "attested; serving");

    // 6. Connections, until closed or told to stop.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = server.closed() => {
                // Let the connections finish what they are sending (the answer to the last
                // `close` among them), for a while.
                let drained = async { while connections.join_next().await.is_some() {} };
                if tokio::time::timeout(CLOSE_GRACE, drained).await.is_err() {
                    tracing::info!(%computation, "connections still open after {CLOSE_GRACE:?}; closing them");
                }
                // Nothing is served once the end is signed: the connections still open are
                // aborted, and waited for, first.
                connections.shutdown().await;
                report_end(&control, &end, EndReason::Closed);
                send(&WorkerMessage::Closed)?;
                tracing::info!(%computation, "every principal closed the computation");
                return Ok(());
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            message = incoming.recv() => match message {
                Some(Ok((HostMessage::Connection, Some(fd)))) => {
                    let server = server.clone();
                    connections.spawn(async move {
                        match connection(fd) {
                            Ok(stream) => {
                                if let Err(e) = server.serve_connection(stream).await {
                                    tracing::info!(error = %e, "a connection ended with an error");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "a handed-over connection is unusable"),
                        }
                    });
                }
                Some(Ok((HostMessage::Connection, None))) => {
                    tracing::warn!("the host sent a connection without its socket; ignored");
                }
                Some(Ok((HostMessage::Shutdown, _))) | None => {
                    tracing::info!(%computation, "the host stopped the worker");
                    connections.shutdown().await;
                    report_end(&control, &end, EndReason::Stopped);
                    return Ok(());
                }
                Some(Ok((other, _))) => return Err(unexpected("a connection", &other)),
                Some(Err(e)) => return Err(WorkerError::Control(e)),
            }
        }
    }
}

/// A handed-over descriptor as an async stream. It must be a stream socket: anything else
/// (a file, a listening socket) fails here or at the first read.
fn connection(fd: OwnedFd) -> std::io::Result<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// Reads the control socket on a thread of its own (the reads block) into a bounded queue.
fn read_control(control: Arc<ControlSocket>) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel(CONTROL_QUEUE);
    std::thread::spawn(move || {
        loop {
            let item = match control.recv::<HostMessage>() {
                Ok(Some(message)) => Ok(message),
                Ok(None) => return, // The host closed its end: the queue ends.
                Err(e) => Err(e.to_string()),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
}

async fn next(
    incoming: &mut mpsc::Receiver<Incoming>,
) -> Result<(HostMessage, Option<OwnedFd>), WorkerError> {
    match incoming.recv().await {
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(WorkerError::Control(e)),
        None => Err(WorkerError::Control(
            "the host closed the control channel".into(),
        )),
    }
}

fn unexpected(wanted: &str, got: &HostMessage) -> WorkerError {
    let name = match got {
        HostMessage::Nonce { .. } => "nonce",
        HostMessage::Attested { .. } => "attested",
        HostMessage::AttestationFailed { .. } => "attestation-failed",
        HostMessage::Connection => "connection",
        HostMessage::Shutdown => "shutdown",
    };
    WorkerError::Control(format!("expected {wanted}, the host sent `{name}`"))
}

/// Signs the instance's end statement with its attested key and hands it to the host, which
/// posts it to the attestation service so that the computation can be attested again
/// (`docs/host.md`, "A worker's life"). The instance serves nothing after this. If it cannot
/// be sent (the host has gone), the computation stays held until its certificate expires or
/// the service's operator revokes it.
fn report_end(control: &ControlSocket, end: &InstanceEndSigner, reason: EndReason) {
    let sent = end
        .sign(reason, time::OffsetDateTime::now_utc())
        .map_err(|e| e.to_string())
        .and_then(|statement| {
            control
                .send(&WorkerMessage::InstanceEnded { statement }, None)
                .map_err(|e| e.to_string())
        });
    match sent {
        Ok(()) => {
            tracing::info!(serial = end.serial(), %reason, "end statement handed to the host")
        }
        Err(e) => tracing::warn!(error = %e, "could not hand the end statement to the host"),
    }
}
