//! The host: starts a worker per policy, relays its attestation, routes client connections
//! to it by SNI, and reports workers that end.
//!
//! The host is untrusted. It never holds a key of the computation or sees plaintext: it reads
//! the ClientHello's server name (which the client sends in clear anyway) and relays bytes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use covenant_attestation_service::AttestationClient;
use covenant_policy::ValidPolicy;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::control::{ControlSocket, HostMessage, WorkerMessage};
use crate::sni;

/// How long a client has to send its ClientHello. Stops a connection that opens and says
/// nothing (slowloris) from holding a task and a descriptor in the host.
pub const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a worker has from start to serving (hardening, attestation). A worker that hangs
/// is killed rather than left half-started.
pub const WORKER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a worker told to stop has to exit before the host stops waiting (and kills it as
/// it exits itself). A worker stops at once unless it is finishing a close
/// (`worker::CLOSE_GRACE`).
pub const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Client connections the host relays at once, over all computations. Each holds two
/// descriptors and two buffers in the host; the bound stops a connection flood from
/// exhausting them. A connection over it is closed at once.
pub const MAX_RELAYED_CONNECTIONS: usize = 4096;

/// Bytes buffered in each direction of a relayed connection. Large enough that a bulk upload
/// moves in few system calls.
pub const RELAY_BUFFER_BYTES: usize = 256 << 10;

/// How long the accept loop pauses after a failed `accept` (out of descriptors, most often),
/// instead of retrying at once on a listener that stays readable and spinning a core.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Descriptors the host wants: each relayed connection holds two (its TCP socket and the
/// host's end of the pair it hands the worker), for [`MAX_RELAYED_CONNECTIONS`], plus room
/// for workers, logs and the listener.
pub const HOST_DESCRIPTORS_WANTED: u64 = 2 * MAX_RELAYED_CONNECTIONS as u64 + 1024;

/// Raises the host's soft limit on open descriptors to its hard limit, so that the connection
/// bounds above, not the default soft limit (often 1024), are what a flood meets; warns if
/// even the hard limit is below [`HOST_DESCRIPTORS_WANTED`]. (Workers set their own, lower
/// limit when they harden.)
fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        tracing::warn!(error = %e, "could not raise the limit on open descriptors");
    }
    let now = getrlimit(Resource::Nofile).current;
    if now.is_some_and(|n| n < HOST_DESCRIPTORS_WANTED) {
        tracing::warn!(
            limit = now,
            wanted = HOST_DESCRIPTORS_WANTED,
            "the host may run out of descriptors before its connection bounds; raise its \
             hard limit (ulimit -Hn)"
        );
    }
}

/// Connections relayed to one computation's worker at once; beyond it, a new connection for
/// that computation is closed at once. Without it, a flood aimed at one computation would take
/// every one of the [`MAX_RELAYED_CONNECTIONS`] and starve the others. The worker bounds what
/// it serves itself (`covenant_runtime::api::MAX_CONNECTIONS`, 512); this is twice that, so
/// that the host is never the tighter bound for a computation's genuine principals.
pub const MAX_CONNECTIONS_PER_COMPUTATION: usize = 1024;

/// The longest line of a worker's log the host forwards; longer lines are cut. Bounds what a
/// worker (trusted, but possibly failing) can make the host buffer.
const MAX_LOG_LINE_BYTES: usize = 8 << 10;

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where to accept clients.
    pub listen: SocketAddr,
    /// The policies, one computation each (JSON, as `covenant policy build` writes them).
    pub policies: Vec<PathBuf>,
    /// What the workers attest with.
    pub platform: PlatformConfig,
    /// The attestation service's URL, if not the one each policy names.
    pub attestation_service: Option<String>,
    /// The worker program (normally this very executable) and the arguments that select the
    /// worker mode (normally `["worker"]`).
    pub worker_program: PathBuf,
    /// See [`HostConfig::worker_program`].
    pub worker_args: Vec<OsString>,
}

/// What a worker attests with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformConfig {
    /// The software platform: its certificate and key (PEM, PKCS#8), handed to each worker.
    /// It trusts the host operating system.
    Software {
        /// The platform certificate.
        certificate: PathBuf,
        /// The platform key.
        key: PathBuf,
    },
    /// Hardware, through Linux's configfs-tsm report interface: an SEV-SNP or TDX guest.
    Tsm {
        /// `sev-snp` or `tdx`.
        kind: covenant_attest::PlatformKind,
        /// The interface's report directory
        /// ([`covenant_attest::tsm::DEFAULT_REPORT_ROOT`] on a real guest).
        report_root: PathBuf,
        /// Endorsements to send with the evidence (for TDX: the DCAP collateral JSON), which
        /// the attestation service trusts only as far as their signatures go.
        endorsements: Vec<PathBuf>,
    },
}

impl PlatformConfig {
    /// The worker's command-line arguments that select this platform.
    pub fn worker_args(&self) -> Vec<OsString> {
        match self {
            Self::Software { certificate, key } => vec![
                "--platform-cert".into(),
                certificate.into(),
                "--platform-key".into(),
                key.into(),
            ],
            Self::Tsm {
                kind,
                report_root,
                endorsements,
            } => {
                let mut args: Vec<OsString> = vec![
                    "--platform".into(),
                    kind.as_str().into(),
                    "--tsm-report-root".into(),
                    report_root.into(),
                ];
                for endorsement in endorsements {
                    args.push("--endorsement".into());
                    args.push(endorsement.into());
                }
                args
            }
        }
    }
}

/// Removes the configfs-tsm report entry a hardware worker left (it cannot `rmdir` once
/// hardened), once the worker has exited. Failing to is logged, not fatal: an entry holds no
/// secret, only the last report made in it.
fn remove_report_entries(platform: &PlatformConfig, pid: u32) {
    if let PlatformConfig::Tsm { report_root, .. } = platform {
        match covenant_attest::tsm::remove_entries(report_root, pid) {
            Ok(removed) => tracing::debug!(pid, removed, "removed the worker's report entries"),
            Err(e) => {
                tracing::warn!(pid, error = %e, "could not remove the worker's report entries")
            }
        }
    }
}

/// Why the host could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A policy file is unreadable or invalid.
    #[error("policy {path}: {message}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Two policies share a computation id: SNI could not tell them apart.
    #[error("two policies name the computation {0:?}; each computation needs its own id")]
    DuplicateComputation(String),
    /// Listening failed.
    #[error("listening on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A worker could not be started, hardened or attested.
    #[error("computation {computation}: the worker did not start: {message}")]
    WorkerStart {
        /// Its computation.
        computation: String,
        /// Why.
        message: String,
    },
}

/// A worker's state, as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerState {
    /// Attested and serving.
    Serving,
    /// Ended: closed by its principals, stopped, failed or killed.
    Ended {
        /// How it ended, in words (exit status or signal, and the worker's own reason).
        reason: String,
        /// Whether it ended as it should (every principal closed the computation, or the
        /// host stopped it).
        clean: bool,
    },
}

/// One computation's worker, as the host sees it.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// The computation id (the SNI it is reached by).
    pub computation: String,
    /// The worker's process id.
    pub pid: u32,
    /// Its state.
    pub state: WorkerState,
}

struct Worker {
    info: Mutex<WorkerInfo>,
    control: Arc<ControlSocket>,
    /// [`MAX_CONNECTIONS_PER_COMPUTATION`] permits, one per connection relayed to it.
    connections: Arc<Semaphore>,
}

type Routes = Arc<Mutex<HashMap<String, Arc<Worker>>>>;

/// A running host: its workers are attested and serving; [`Host::run`] accepts clients.
pub struct Host {
    listener: TcpListener,
    routes: Routes,
    /// Each worker's end, from the task watching it. Closed when every watcher has ended.
    events: mpsc::UnboundedReceiver<(String, WorkerState)>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("listener", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Reads and validates every policy, binds the listener, and starts, hardens and attests
    /// a worker for each policy, concurrently. If any of them fails, the others are stopped
    /// and the error says which and why.
    ///
    /// # Errors
    /// [`HostError`].
    pub async fn start(config: HostConfig) -> Result<Host, HostError> {
        raise_descriptor_limit();
        let mut policies = Vec::new();
        for path in &config.policies {
            let policy = load_policy(path)?;
            let id = policy.policy().computation.clone();
            if policies
                .iter()
                .any(|(other, _, _): &(String, _, _)| *other == id)
            {
                return Err(HostError::DuplicateComputation(id));
            }
            policies.push((id, path.clone(), policy));
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| HostError::Listen {
                    address: config.listen,
                    source,
                })?;
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let config = Arc::new(config);
        let mut starting = tokio::task::JoinSet::new();
        for (id, path, policy) in policies {
            let config = Arc::clone(&config);
            let events = events_tx.clone();
            starting.spawn(async move {
                let started = start_worker(&config, &id, &path, &policy, events).await;
                (id, started)
            });
        }
        let mut routes = HashMap::new();
        let mut failure = None;
        while let Some(joined) = starting.join_next().await {
            match joined {
                Ok((id, Ok(worker))) => {
                    routes.insert(id, worker);
                }
                Ok((computation, Err(message))) => {
                    failure.get_or_insert(HostError::WorkerStart {
                        computation,
                        message,
                    });
                }
                Err(e) => {
                    failure.get_or_insert(HostError::WorkerStart {
                        computation: "?".into(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if let Some(error) = failure {
            for worker in routes.values() {
                let _ = worker.control.send(&HostMessage::Shutdown, None);
            }
            // Wait for them to end, so that each one's end statement reaches the attestation
            // service (which frees its computation) before the caller exits.
            drop(events_tx);
            for _ in 0..routes.len() {
                if !matches!(
                    tokio::time::timeout(WORKER_STOP_TIMEOUT, events.recv()).await,
                    Ok(Some(_))
                ) {
                    break;
                }
            }
            return Err(error);
        }
        drop(events_tx);
        Ok(Host {
            listener,
            routes: Arc::new(Mutex::new(routes)),
            events,
        })
    }

    /// The address clients connect to.
    ///
    /// # Errors
    /// If the socket has no local address (it always has once bound).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Every worker's computation, process id and state.
    #[must_use]
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut workers: Vec<WorkerInfo> = routes
            .values()
            .map(|w| {
                w.info
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect();
        workers.sort_by(|a, b| a.computation.cmp(&b.computation));
        workers
    }

    /// Accepts and relays clients until every worker has ended or `shutdown` resolves (then
    /// the workers are told to stop). Each worker that ends is reported through `on_event`
    /// (and the log); the others carry on. Returns the final state of every worker.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
        mut on_event: impl FnMut(&str, &WorkerState),
    ) -> Vec<WorkerInfo> {
        let permits = Arc::new(Semaphore::new(MAX_RELAYED_CONNECTIONS));
        let mut live = self
            .workers()
            .iter()
            .filter(|w| w.state == WorkerState::Serving)
            .count();
        tokio::pin!(shutdown);
        while live > 0 {
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("shutting down: stopping every worker");
                    for worker in self.routes.lock().unwrap_or_else(PoisonError::into_inner).values() {
                        let _ = worker.control.send(&HostMessage::Shutdown, None);
                    }
                    // Wait for each worker's exit to be seen, so none outlives the host; one
                    // that does not exit in time is killed when its watcher is dropped.
                    while live > 0 {
                        match tokio::time::timeout(WORKER_STOP_TIMEOUT, self.events.recv()).await {
                            Ok(Some((computation, state))) => {
                                on_event(&computation, &state);
                                live -= 1;
                            }
                            _ => break,
                        }
                    }
                    break;
                }
                event = self.events.recv() => {
                    let Some((computation, state)) = event else { break };
                    on_event(&computation, &state);
                    live -= 1;
                }
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!(error = %e, "accepting a connection failed");
                            // Out of descriptors (EMFILE, ENFILE) the listener stays readable:
                            // pause instead of spinning, while connections end and free some.
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    // At the bound, the connection is closed at once: waiting for a slot here
                    // would stall the loop that also reports workers and handles shutdown.
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        tracing::warn!(%peer, limit = MAX_RELAYED_CONNECTIONS, "too many connections; closing this one");
                        continue;
                    };
                    let routes = Arc::clone(&self.routes);
                    tokio::spawn(async move {
                        if let Err(e) = relay(tcp, &routes).await {
                            tracing::info!(%peer, error = %e, "connection not relayed");
                        }
                        drop(permit);
                    });
                }
            }
        }
        self.workers()
    }
}

fn load_policy(path: &std::path::Path) -> Result<ValidPolicy, HostError> {
    let error = |message: String| HostError::Policy {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let policy = covenant_policy::parse(&bytes).map_err(|e| error(e.to_string()))?;
    covenant_policy::validate(&policy, time::OffsetDateTime::now_utc())
        .map_err(|problems| error(format!("not valid: {problems}")))
}

/// Starts one worker for the policy at `policy_path` (already read and validated as
/// `policy`) and takes it through attestation to serving.
async fn start_worker(
    config: &HostConfig,
    computation: &str,
    policy_path: &std::path::Path,
    policy: &ValidPolicy,
    events: mpsc::UnboundedSender<(String, WorkerState)>,
) -> Result<Arc<Worker>, String> {
    let service_url = config
        .attestation_service
        .clone()
        .unwrap_or_else(|| policy.policy().attestation.service.clone());
    let ca_der = covenant_attest::pem::certificate_from_pem(
        policy.policy().attestation.ca_certificate.as_bytes(),
        "the policy's attestation CA certificate",
    )
    .map_err(|e| e.to_string())?;
    let service = AttestationClient::new(&service_url, Some(ca_der.as_ref()))
        .map_err(|e| format!("the attestation service {service_url}: {e}"))?;

    let (control, worker_end) = ControlSocket::pair().map_err(|e| e.to_string())?;
    let control = Arc::new(control);
    let mut child = tokio::process::Command::new(&config.worker_program)
        .args(&config.worker_args)
        .arg("--policy")
        .arg(policy_path)
        .args(config.platform.worker_args())
        // The seccomp filter to install: the worker hardens before it parses the policy, and
        // refuses to serve if this is not the policy's strategy.
        .arg("--strategy")
        .arg(policy.policy().execution.strategy.as_str())
        // Nothing of the host's environment but what the worker takes: no `LD_PRELOAD` and
        // friends, no secrets of the host in the trusted runtime.
        .env_clear()
        .envs(
            crate::worker::WORKER_ENVIRONMENT
                .iter()
                .filter_map(|name| std::env::var_os(name).map(|value| (name, value))),
        )
        .stdin(Stdio::from(worker_end))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A process group of its own: a terminal's Ctrl-C reaches the host, which stops its
        // workers in order, instead of killing them behind its back.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", config.worker_program.display()))?;
    let pid = child.id().unwrap_or(0);
    tracing::info!(computation, pid, "worker started");
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_log(computation.to_owned(), stderr));
    }

    let (messages_tx, mut messages) = mpsc::channel::<Result<WorkerMessage, String>>(16);
    {
        let control = Arc::clone(&control);
        std::thread::spawn(move || {
            loop {
                let item = match control.recv::<WorkerMessage>() {
                    Ok(Some((message, _fd))) => Ok(message),
                    Ok(None) => return,
                    Err(e) => Err(e.to_string()),
                };
                let failed = item.is_err();
                if messages_tx.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        });
    }

    let attested = tokio::time::timeout(
        WORKER_START_TIMEOUT,
        attest(&control, &mut messages, &service, computation, policy),
    )
    .await
    .unwrap_or_else(|_| Err(format!("not serving after {WORKER_START_TIMEOUT:?}")));
    if let Err(message) = attested {
        let _ = child.start_kill();
        let status = child.wait().await.map(describe_exit).unwrap_or_default();
        remove_report_entries(&config.platform, pid);
        return Err(if status.is_empty() {
            message
        } else {
            format!("{message} (the worker {status})")
        });
    }
    tracing::info!(computation, pid, "worker attested and serving");

    let worker = Arc::new(Worker {
        info: Mutex::new(WorkerInfo {
            computation: computation.to_owned(),
            pid,
            state: WorkerState::Serving,
        }),
        control,
        connections: Arc::new(Semaphore::new(MAX_CONNECTIONS_PER_COMPUTATION)),
    });
    let watched = Arc::clone(&worker);
    let computation = computation.to_owned();
    let platform = config.platform.clone();
    tokio::spawn(async move {
        // The worker's last words, if it said any, then its exit. Its end statement, if it
        // sends one, goes to the attestation service as it arrives.
        let mut last = None;
        let mut end = None;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                message = messages.recv(), if last.is_none() => {
                    last_words(message, &mut last, &mut end, &service, &computation).await;
                }
            }
        };
        // What the worker sent just before it exited may still be on its way from the
        // reader thread, which sees the channel's end once it has read everything.
        while last.is_none() || end.is_none() {
            match tokio::time::timeout(WORKER_STOP_TIMEOUT, messages.recv()).await {
                Ok(Some(message)) => {
                    last_words(Some(message), &mut last, &mut end, &service, &computation).await;
                }
                Ok(None) | Err(_) => break,
            }
        }
        let exit = status
            .map(describe_exit)
            .unwrap_or_else(|e| format!("could not be waited for: {e}"));
        remove_report_entries(&platform, pid);
        let (said, closed) = last.unwrap_or_default();
        let clean_exit = exit == "exited with status 0";
        let clean = clean_exit && (closed || said.is_empty());
        let said = match end {
            Some(end) if said.is_empty() => end,
            Some(end) => format!("{said}; {end}"),
            None => said,
        };
        let reason = if said.is_empty() {
            exit
        } else {
            format!("{said}; the worker {exit}")
        };
        if clean {
            tracing::info!(computation, pid, %reason, "worker ended");
        } else {
            tracing::error!(computation, pid, %reason, "worker ended abnormally; the host and the other computations carry on");
        }
        let state = WorkerState::Ended { reason, clean };
        watched
            .info
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state = state.clone();
        let _ = events.send((computation, state));
    });
    Ok(worker)
}

/// Takes in one of a serving worker's messages: its last words (`closed`, `failed`, or the
/// channel's end) into `last`, and its end statement, which is posted to the attestation
/// service at once, into `end` as a sentence saying whether the service recorded it.
async fn last_words(
    message: Option<Result<WorkerMessage, String>>,
    last: &mut Option<(String, bool)>,
    end: &mut Option<String>,
    service: &AttestationClient,
    computation: &str,
) {
    match message {
        Some(Ok(WorkerMessage::Closed)) => {
            *last = Some(("every principal closed the computation".to_owned(), true));
        }
        Some(Ok(WorkerMessage::Failed { message })) => *last = Some((message, false)),
        Some(Ok(WorkerMessage::InstanceEnded { statement })) if end.is_none() => {
            *end = Some(match service.end_instance(&statement).await {
                Ok(ended) => {
                    tracing::info!(computation, serial = %ended.serial, "the attestation service recorded the instance's end");
                    format!(
                        "the attestation service recorded the end of instance {}",
                        ended.serial
                    )
                }
                Err(e) => {
                    tracing::warn!(computation, error = %e, "the attestation service did not record the instance's end");
                    format!(
                        "the attestation service did not record the instance's end ({e}): the \
                         computation cannot be attested again until its certificate expires or \
                         the service's operator revokes it"
                    )
                }
            });
        }
        Some(Ok(_)) => {}
        Some(Err(e)) => *last = Some((format!("control channel: {e}"), false)),
        None => *last = Some((String::new(), false)),
    }
}

async fn attest(
    control: &ControlSocket,
    messages: &mut mpsc::Receiver<Result<WorkerMessage, String>>,
    service: &AttestationClient,
    computation: &str,
    policy: &ValidPolicy,
) -> Result<(), String> {
    let mut next = async || match messages.recv().await {
        Some(Ok(WorkerMessage::Failed { message })) => Err(message),
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(format!("control channel: {e}")),
        None => Err("the worker exited".to_owned()),
    };
    match next().await? {
        WorkerMessage::Hello {
            computation: said,
            policy_hash,
            measurement,
        } => {
            let expected = covenant_attest::Digest(*policy.hash().as_bytes()).to_hex();
            if said != computation || policy_hash != expected {
                return Err(format!(
                    "the worker serves computation {said} with policy hash {policy_hash}, not {computation} with {expected}"
                ));
            }
            tracing::info!(computation, %measurement, "worker hardened; attesting");
        }
        other => return Err(format!("expected hello, the worker sent {other:?}")),
    }
    let send = |message: &HostMessage| control.send(message, None).map_err(|e| e.to_string());
    let nonce = match service.nonce().await {
        Ok(nonce) => nonce,
        Err(e) => {
            let message = format!("the attestation service: {e}");
            let _ = send(&HostMessage::AttestationFailed {
                message: message.clone(),
            });
            return Err(message);
        }
    };
    send(&HostMessage::Nonce { nonce: nonce.nonce })?;
    let request = match next().await? {
        WorkerMessage::Attest { request } => request,
        other => {
            return Err(format!(
                "expected an attestation request, the worker sent {other:?}"
            ));
        }
    };
    match service.attest(&request).await {
        Ok(response) => send(&HostMessage::Attested { response })?,
        Err(e) => {
            let message = format!("the attestation service refused the worker: {e}");
            let _ = send(&HostMessage::AttestationFailed {
                message: message.clone(),
            });
            return Err(message);
        }
    }
    match next().await? {
        WorkerMessage::Serving { not_after } => {
            tracing::info!(computation, %not_after, "attested certificate issued");
            Ok(())
        }
        other => Err(format!("expected serving, the worker sent {other:?}")),
    }
}

/// Forwards a worker's log lines to the host's log, each tagged with its computation.
async fn forward_log(computation: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncReadExt as _;
    let mut lines = tokio::io::BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut bounded = (&mut lines).take(MAX_LOG_LINE_BYTES as u64);
        match bounded.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                eprintln!("[worker {computation}] {}", text.trim_end());
            }
        }
    }
}

/// Describes how a process ended, in words (`exited with status 0`, `was killed by signal 9
/// (SIGKILL)`).
#[must_use]
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(signal) => {
            let name = match signal {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGSYS => " (SIGSYS: the seccomp filter stopped a forbidden system call)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGTERM => " (SIGTERM)",
                _ => "",
            };
            format!("was killed by signal {signal}{name}")
        }
        None => format!("ended with {status}"),
    }
}

/// Reads the ClientHello, finds the worker, hands it one end of a socket pair and relays.
async fn relay(mut tcp: TcpStream, routes: &Routes) -> Result<(), String> {
    let (hello, name) =
        tokio::time::timeout(CLIENT_HELLO_TIMEOUT, sni::read_client_hello(&mut tcp))
            .await
            .map_err(|_| format!("no ClientHello within {CLIENT_HELLO_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
    let worker = routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&name)
        .cloned()
        .ok_or_else(|| format!("no computation {name:?} on this host"))?;
    if worker
        .info
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .state
        != WorkerState::Serving
    {
        return Err(format!("the worker for {name} has ended"));
    }
    let Ok(_permit) = Arc::clone(&worker.connections).try_acquire_owned() else {
        return Err(format!(
            "{name} already has {MAX_CONNECTIONS_PER_COMPUTATION} connections; closing this one"
        ));
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
    let control = Arc::clone(&worker.control);
    // The send blocks if the worker's queue is full: off the async threads.
    tokio::task::spawn_blocking(move || {
        control.send(&HostMessage::Connection, Some(theirs.as_fd()))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("handing the connection to the worker for {name}: {e}"))?;
    ours.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut ours = tokio::net::UnixStream::from_std(ours).map_err(|e| e.to_string())?;
    ours.write_all(&hello).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    tokio::io::copy_bidirectional_with_sizes(
        &mut tcp,
        &mut ours,
        RELAY_BUFFER_BYTES,
        RELAY_BUFFER_BYTES,
    )
    .await
    .map_err(|e| format!("relaying for {name}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_raises_its_descriptor_limit_to_the_hard_limit() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let hard = getrlimit(Resource::Nofile).maximum;
        // As a shell with a default soft limit would start it.
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(256),
                maximum: hard,
            },
        )
        .unwrap();
        raise_descriptor_limit();
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
    }
}
