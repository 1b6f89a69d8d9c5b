//! The worker process: the trusted runtime of one computation.
//!
//! This is trusted code living in the host crate because it shares the control protocol with
//! the host; it runs in its own process, started by the host as `covenant worker`. In order:
//!
//! 1. read the policy and the platform's certificate and key; validate the policy; measure
//!    its own executable (the software platform's measurement);
//! 2. start the async runtime;
//! 3. [`harden`](crate::hardening::harden) itself: rlimits, not dumpable, `no_new_privs`,
//!    seccomp — before it reads one byte from the host;
//! 4. attest through the host: say hello, take a nonce, make its TLS key and evidence, hand
//!    the request over, check the certificate that comes back is for its key;
//! 5. serve each client connection the host hands over (a socket carried in a control
//!    message), TLS ending here, until every principal has closed the computation, the host
//!    says stop, or the host goes away.
//!
//! Nothing the host sends is trusted: it can withhold or garble connections (clients then see
//! TLS fail) or the attestation (the certificate check fails), but not read or change data.

use std::os::fd::{AsFd as _, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use covenant_attest::Digest;
use covenant_attest::software::SoftwarePlatform;
use covenant_attest::wire::{accept_attestation_response, prepare_attestation};
use covenant_policy::ValidPolicy;
use covenant_policy::bounds::MAX_POLICY_BYTES;
use covenant_runtime::api::{ApiServer, ServerIdentity};
use covenant_runtime::{Computation, ReceiptSigner};
use tokio::sync::mpsc;

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

/// What the worker is started with.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The policy JSON.
    pub policy: PathBuf,
    /// The software platform's certificate (PEM).
    pub platform_certificate: PathBuf,
    /// The software platform's key (PEM, PKCS#8).
    pub platform_key: PathBuf,
    /// A forbidden thing to try right after hardening (tests of the filter).
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
    // 1. Everything from the file system, before hardening.
    let (policy, platform) = match load(options) {
        Ok(loaded) => loaded,
        Err(error) => {
            report_failure(&control, &error);
            return Err(error);
        }
    };
    // 2. The async runtime, whose threads the filter then covers too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_ASYNC_THREADS)
        .thread_name("covenant-worker")
        .enable_all()
        .build()
        .map_err(|e| WorkerError::Setup(format!("starting the async runtime: {e}")))?;
    // 3. Hardening.
    if let Err(e) = hardening::harden() {
        let error = WorkerError::from(e);
        report_failure(&control, &error);
        return Err(error);
    }
    tracing::info!("hardened: rlimits, not dumpable, no_new_privs, seccomp allow-list");
    if let Some(probe) = options.probe {
        // For tests: a probe that should kill the process returns only if the filter failed.
        let result = hardening::probe(probe);
        eprintln!("hardening probe {probe:?}: {result:?}");
        if result.is_ok() {
            return Err(WorkerError::ProbeSucceeded(probe));
        }
    }
    let result = runtime.block_on(serve(Arc::clone(&control), policy, &platform));
    if let Err(e) = &result {
        report_failure(&control, e);
    }
    // Blocking tasks (a running guest) are not waited for: the computation is over.
    runtime.shutdown_background();
    result
}

fn load(options: &WorkerOptions) -> Result<(ValidPolicy, SoftwarePlatform), WorkerError> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| {
        WorkerError::Setup(format!(
            "reading the policy {}: {e}",
            options.policy.display()
        ))
    };
    // Bounded: the path comes from the (untrusted) host.
    let mut bytes = Vec::new();
    std::fs::File::open(&options.policy)
        .map_err(unreadable)?
        .take(MAX_POLICY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(WorkerError::Setup(format!(
            "the policy {} is larger than {MAX_POLICY_BYTES} bytes",
            options.policy.display()
        )));
    }
    let policy = covenant_policy::parse(&bytes)
        .map_err(|e| WorkerError::Setup(format!("the policy is not valid: {e}")))?;
    let policy = covenant_policy::validate(&policy, time::OffsetDateTime::now_utc())
        .map_err(|problems| WorkerError::Setup(format!("the policy is not valid: {problems}")))?;
    let platform =
        SoftwarePlatform::from_files(&options.platform_certificate, &options.platform_key)
            .map_err(|e| WorkerError::Setup(format!("the software platform: {e}")))?;
    Ok((policy, platform))
}

fn report_failure(control: &ControlSocket, error: &WorkerError) {
    let message = WorkerMessage::Failed {
        message: error.to_string(),
    };
    if let Err(e) = control.send(&message, None) {
        tracing::warn!(error = %e, "could not report the failure to the host");
    }
}

/// A control message as the serving task sees it.
type Incoming = Result<(HostMessage, Option<OwnedFd>), String>;

async fn serve(
    control: Arc<ControlSocket>,
    policy: ValidPolicy,
    platform: &SoftwarePlatform,
) -> Result<(), WorkerError> {
    let mut incoming = read_control(Arc::clone(&control));
    let send = |message: &WorkerMessage| {
        control
            .send(message, None)
            .map_err(|e| WorkerError::Control(e.to_string()))
    };
    let computation = policy.policy().computation.clone();
    let policy_hash = Digest(*policy.hash().as_bytes());
    send(&WorkerMessage::Hello {
        computation: computation.clone(),
        policy_hash: policy_hash.to_hex(),
        measurement: covenant_attest::Platform::measurement(platform).to_hex(),
    })?;

    // 4. Attestation through the host.
    let nonce = match next(&mut incoming).await? {
        (HostMessage::Nonce { nonce }, None) => nonce,
        (other, _) => return Err(unexpected("a nonce", &other)),
    };
    let (key, request) = prepare_attestation(
        platform,
        policy_hash,
        &computation,
        std::slice::from_ref(&computation),
        nonce,
    )
    .map_err(|e| WorkerError::Attestation(e.to_string()))?;
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
    let chain: Vec<Vec<u8>> = chain.iter().map(|c| c.to_vec()).collect();
    let key_der = key.serialize_der();
    let signer = ReceiptSigner::new(&key_der, chain.clone())
        .map_err(|e| WorkerError::Attestation(format!("the receipt signer: {e}")))?;
    let computation_state = Computation::new(policy, signer)
        .map_err(|e| WorkerError::Setup(format!("setting up the computation: {e}")))?;
    let server = ApiServer::new(computation_state, &ServerIdentity::new(key_der, chain))
        .map_err(|e| WorkerError::Setup(format!("setting up TLS: {e}")))?;
    send(&WorkerMessage::Serving {
        not_after: response.not_after.clone(),
    })?;
    tracing::info!(%computation, "attested; serving");

    // 5. Connections, until closed or told to stop.
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
