//! The HTTPS API of one computation: HTTP/1.1 (hyper) over TLS 1.3 (rustls, ring) with
//! mandatory client certificates, over any byte stream.
//!
//! [`ApiServer::serve_connection`] takes a connected byte stream (a TCP socket, a relayed
//! socket, an in-process `tokio::io::duplex`), runs the TLS handshake — refusing any client
//! whose certificate is not exactly one of the policy's principals' — maps the peer
//! certificate to a [`Principal`] (a [`Caller`]), and then answers requests as that caller.
//! Every handler takes the [`Caller`] first; the computation checks role and state.
//!
//! Endpoints (documented in `docs/api.openapi.yaml`): `GET /v1/status`, `PUT /v1/program`,
//! `PUT /v1/inputs/{path}`, `POST /v1/run`, `GET /v1/outputs/{path|stdout|stderr}`,
//! `GET /v1/receipts`, `POST /v1/consent-rerun`, `POST /v1/close`. Inputs are streamed into
//! the computation as they arrive; outputs are streamed out. Errors: see [`error`].
//!
//! What it does not do: accept sockets, route by SNI, or attest (the host does).

pub mod error;
pub mod tls;

use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use error::{ApiError, ErrorBody, error_response};
pub use tls::{PrincipalCertVerifier, ServerIdentity};

use crate::{Computation, Principal};

/// The largest program upload accepted. The program is held whole in memory to hash and
/// compile it, so this stops a program provider (or a client posing as one before the role
/// check) from exhausting the runtime's memory with one request.
pub const MAX_PROGRAM_BYTES: usize = 64 << 20;

/// How long a client may take to complete the TLS handshake. Stops a connection that opens
/// and stalls (slowloris) from holding a task and a socket forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Body chunks buffered between the network and the blocking writer of an input upload (or
/// the blocking reader of an output download). Bounds the memory one transfer holds beyond
/// the computation's own copy, whatever the speed difference between network and file system.
pub const TRANSFER_CHANNEL_CHUNKS: usize = 8;

/// Bytes read from an output per chunk of a download.
pub const DOWNLOAD_CHUNK_BYTES: usize = 64 << 10;

/// After an upload is refused before its body was read whole, at most this many more bytes
/// of it are read and thrown away before the connection is closed. Reading on lets the
/// client's writes in flight land, so that it reads the refusal instead of a connection reset
/// (a socket closed with unread data is reset, and the client's next write then fails before
/// it has read the answer). The bound stops a client, any principal, from making the runtime
/// receive and decrypt an endless body after it was told no: beyond it the connection is
/// closed. A client reads the refusal one round trip after it was sent, so this covers the
/// bytes in flight on a fast, distant link (1 Gbit/s over 130 ms) plus the sockets' buffers.
pub const REFUSED_BODY_DRAIN_BYTES: u64 = 16 << 20;

/// The time bound of the same draining: however slowly a refused client trickles its body,
/// the task reading it and its connection are released after this long (a client that stalls
/// mid-body cannot hold them, slowloris-style).
pub const REFUSED_BODY_DRAIN_TIME: Duration = Duration::from_secs(5);

/// Connections one server serves at once; beyond it, a new connection is closed at once (and
/// the server carries on). Each connection holds a descriptor and a task: the bound keeps a
/// flood of connections (the host relays any well-formed ClientHello, before any client is
/// authenticated) from exhausting the worker's descriptors (`covenant-host`'s
/// `WORKER_MAX_DESCRIPTORS`, 1024: this leaves half for the engine, the control channel and
/// connections queued on it) and with them the computation. Principals need a few each.
pub const MAX_CONNECTIONS: usize = 512;

/// Connections in their TLS handshake at once (not yet authenticated). A new connection beyond
/// it takes the place of the *oldest* one still in its handshake, which is closed. An
/// unauthenticated stranger who opens connections and never completes a handshake would
/// otherwise hold each for [`HANDSHAKE_TIMEOUT`], and 64 stalled connections renewed every 10 s
/// would lock every principal out. With eviction, a principal's handshake is lost only if 64
/// newer connections arrive while it runs (a flood of more than 640 connections a second
/// against a 100 ms handshake), and the flood holds at most this many slots of
/// [`MAX_CONNECTIONS`].
pub const MAX_HANDSHAKES: usize = 64;

/// Connections one principal may hold at once, after its handshake; one more is closed at once.
/// Without it, one principal (any reader, say) could hold all of [`MAX_CONNECTIONS`] open and
/// idle and keep every other principal from connecting. A client needs one or a few.
pub const MAX_CONNECTIONS_PER_PRINCIPAL: usize = 32;

/// The connections in their handshake, oldest first: each one's number and the signal that
/// tells it to give its place to a newer connection.
type PendingHandshakes = std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>;

/// The response header of `GET /v1/outputs/{output}` naming the run that wrote the output.
pub const RUN_HEADER: &str = "covenant-run";

/// The response header of `GET /v1/outputs/{output}` carrying the salt (hex) of the receipt's
/// commitment to the output, so that its reader can check the bytes against the receipt.
pub const SALT_HEADER: &str = "covenant-commitment-salt";

/// Why a connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The TLS handshake failed (for example an unknown client certificate) or timed out.
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    /// The handshake completed but the peer certificate names no principal (cannot happen
    /// with [`PrincipalCertVerifier`]; checked again so that nothing relies on it).
    #[error("the client certificate names no principal of this computation")]
    NoPrincipal,
    /// HTTP failed after the handshake.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The connection was closed: the server already serves [`MAX_CONNECTIONS`] connections,
    /// or it was the oldest of [`MAX_HANDSHAKES`] still in their handshake when another
    /// arrived.
    #[error("too many connections ({0}); this one is closed")]
    Busy(&'static str),
}

/// Why an [`ApiServer`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiSetupError {
    /// The TLS configuration was refused (a key that is not the certificate's, a bad chain).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The caller of a request: the principal whose policy certificate the client presented in
/// the TLS handshake. Only [`ApiServer::serve_connection`] makes one, from the verified peer
/// certificate, so a handler holding a `Caller` knows who is asking.
#[derive(Debug, Clone)]
pub struct Caller(Principal);

impl Caller {
    /// The principal.
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

/// The HTTPS server of one computation. Cheap to clone; clones serve the same computation.
#[derive(Clone)]
pub struct ApiServer {
    computation: Arc<Mutex<Computation>>,
    tls: tokio_rustls::TlsAcceptor,
    /// Becomes `true` once the computation is closed (see [`ApiServer::closed`]).
    closed: Arc<tokio::sync::watch::Sender<bool>>,
    /// [`MAX_CONNECTIONS`] permits, one per connection being served.
    connections: Arc<tokio::sync::Semaphore>,
    /// The connections in their handshake, oldest first (at most [`MAX_HANDSHAKES`]), each
    /// with the signal that tells it to give its place to a newer one.
    handshakes: Arc<Mutex<PendingHandshakes>>,
    /// Numbers the handshakes, to find one's own entry in `handshakes`.
    next_handshake: Arc<std::sync::atomic::AtomicU64>,
    /// Connections each principal holds ([`MAX_CONNECTIONS_PER_PRINCIPAL`]).
    per_principal: Arc<Mutex<std::collections::HashMap<String, usize>>>,
}

/// One connection counted against its principal; uncounted when dropped.
struct PrincipalConnection {
    counts: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    principal: String,
}

impl PrincipalConnection {
    /// Counts a connection for `principal`, or `None` if it holds the most it may.
    fn take(
        counts: &Arc<Mutex<std::collections::HashMap<String, usize>>>,
        principal: &str,
    ) -> Option<Self> {
        let mut map = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let held = map.entry(principal.to_owned()).or_default();
        if *held >= MAX_CONNECTIONS_PER_PRINCIPAL {
            return None;
        }
        *held += 1;
        Some(PrincipalConnection {
            counts: Arc::clone(counts),
            principal: principal.to_owned(),
        })
    }
}

impl Drop for PrincipalConnection {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = map.get_mut(&self.principal) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                map.remove(&self.principal);
            }
        }
    }
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").finish_non_exhaustive()
    }
}

impl ApiServer {
    /// A server for `computation`, presenting `identity` (the runtime's attested key).
    ///
    /// # Errors
    /// [`ApiSetupError::Tls`] if rustls refuses the identity.
    pub fn new(computation: Computation, identity: &ServerIdentity) -> Result<Self, ApiSetupError> {
        let config = tls::server_config(computation.policy().clone(), identity)?;
        Ok(ApiServer {
            computation: Arc::new(Mutex::new(computation)),
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            closed: Arc::new(tokio::sync::watch::channel(false).0),
            connections: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
            handshakes: Arc::default(),
            next_handshake: Arc::default(),
            per_principal: Arc::default(),
        })
    }

    /// Resolves once every principal has agreed to close the computation (its data is then
    /// gone). The worker process waits on this to exit.
    pub async fn closed(&self) {
        let mut receiver = self.closed.subscribe();
        // The sender lives as long as `self`, so `wait_for` can only end by seeing `true`.
        let _ = receiver.wait_for(|closed| *closed).await;
    }

    /// Serves one client connection over `io` until the client closes it: the TLS handshake
    /// (within [`HANDSHAKE_TIMEOUT`]), the caller's principal from its certificate, then HTTP.
    ///
    /// # Errors
    /// [`ConnectionError::Busy`] past [`MAX_CONNECTIONS`] (the connection is dropped at once),
    /// when newer connections took this one's place among the [`MAX_HANDSHAKES`], or past the
    /// principal's [`MAX_CONNECTIONS_PER_PRINCIPAL`] (dropped after the handshake); [`ConnectionError::Handshake`] for a refused or failed handshake
    /// (an unknown client certificate among them); [`ConnectionError::Http`] if HTTP fails
    /// afterwards.
    pub async fn serve_connection<IO>(&self, io: IO) -> Result<(), ConnectionError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Taken without waiting: a connection over the bound is closed at once (dropping `io`),
        // so a flood costs the server nothing it holds on to.
        let Ok(_serving) = Arc::clone(&self.connections).try_acquire_owned() else {
            return Err(ConnectionError::Busy("MAX_CONNECTIONS"));
        };
        // A place among the handshakes, taking the oldest one's if they are all taken.
        let id = self
            .next_handshake
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evicted = Arc::new(tokio::sync::Notify::new());
        {
            let mut pending = self
                .handshakes
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.len() >= MAX_HANDSHAKES
                && let Some((_, oldest)) = pending.pop_front()
            {
                // Stored if the oldest is not waiting yet: it gives up as soon as it looks.
                oldest.notify_one();
            }
            pending.push_back((id, Arc::clone(&evicted)));
        }
        let accepted = tokio::select! {
            accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.tls.accept(io)) => Some(accepted),
            () = evicted.notified() => None,
        };
        self.handshakes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(other, _)| *other != id);
        let Some(accepted) = accepted else {
            return Err(ConnectionError::Busy(
                "MAX_HANDSHAKES: a newer connection took this one's place",
            ));
        };
        let stream = accepted
            .map_err(|_| {
                ConnectionError::Handshake(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client did not complete the handshake in time",
                ))
            })?
            .map_err(ConnectionError::Handshake)?;
        // Authorisation, first: the verified peer certificate names the caller.
        let caller = {
            let (_, session) = stream.get_ref();
            let der = session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .ok_or(ConnectionError::NoPrincipal)?;
            let principal = lock(&self.computation)
                .principal_for_certificate(der.as_ref())
                .ok_or(ConnectionError::NoPrincipal)?;
            Caller(principal)
        };
        let Some(_counted) =
            PrincipalConnection::take(&self.per_principal, caller.principal().name())
        else {
            return Err(ConnectionError::Busy("MAX_CONNECTIONS_PER_PRINCIPAL"));
        };
        let server = self.clone();
        let service = hyper::service::service_fn(move |request| {
            let server = server.clone();
            let caller = caller.clone();
            async move { Ok::<_, std::convert::Infallible>(server.respond(&caller, request).await) }
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await?;
        Ok(())
    }

    async fn respond(&self, caller: &Caller, request: Request<Incoming>) -> Response<ApiBody> {
        match self.route(caller, request).await {
            Ok(response) => response,
            Err(err) => {
                let (status, body) = error_response(&err);
                json_response(status, &body)
            }
        }
    }

    async fn route(
        &self,
        caller: &Caller,
        request: Request<Incoming>,
    ) -> Result<Response<ApiBody>, ApiError> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        match (&method, path.as_str()) {
            (&Method::GET, "/v1/status") => self.status(caller),
            (&Method::PUT, "/v1/program") => {
                let waits = expects_continue(&request);
                self.provide_program(caller, request.into_body(), waits)
                    .await
            }
            (&Method::POST, "/v1/run") => {
                let detach = match request.uri().query() {
                    None | Some("") | Some("detach=false") => false,
                    Some("detach=true") => true,
                    Some(other) => {
                        return Err(ApiError::BadQuery {
                            query: other.to_owned(),
                            expected: "nothing or `detach=true`",
                        });
                    }
                };
                self.run(caller, detach).await
            }
            (&Method::GET, "/v1/receipts") => self.receipts(caller),
            (&Method::POST, "/v1/consent-rerun") => self.consent_rerun(caller),
            (&Method::POST, "/v1/close") => self.close(caller),
            (&Method::PUT, p) if p.starts_with("/v1/inputs/") => {
                let guest = percent_decode(&p["/v1/inputs/".len()..])?;
                let waits = expects_continue(&request);
                self.provide_input(caller, &guest, request.into_body(), waits)
                    .await
            }
            (&Method::GET, p) if p.starts_with("/v1/outputs/") => {
                let output = percent_decode(&p["/v1/outputs/".len()..])?;
                self.fetch_output(caller, &output).await
            }
            _ => Err(ApiError::NoRoute {
                method: method.to_string(),
                path,
            }),
        }
    }

    /// `GET /v1/status`.
    fn status(&self, caller: &Caller) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation: any principal (the computation checks the caller is one).
        let status = lock(&self.computation).status(caller.principal())?;
        Ok(json_response(StatusCode::OK, &status))
    }

    /// `PUT /v1/program`. `waits`: the client sent `Expect: 100-continue` (see
    /// [`discard_unread`]).
    async fn provide_program(
        &self,
        caller: &Caller,
        mut body: Incoming,
        waits: bool,
    ) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation first, before any byte of the body is read: the program provider
        // only, in a state that takes the program (the computation checks). No one else can
        // make the runtime buffer an upload. The lock is held for the check only.
        let admitted = lock(&self.computation).admit_program(caller.principal());
        let slot = match admitted {
            Ok(slot) => slot,
            Err(refusal) => {
                discard_unread(body, waits);
                return Err(refusal.into());
            }
        };
        // Even the provider's upload is capped while it is collected.
        let mut wasm = Vec::new();
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.len() > MAX_PROGRAM_BYTES.saturating_sub(wasm.len()) {
                        discard_unread(body, false);
                        return Err(ApiError::ProgramTooLarge {
                            limit: MAX_PROGRAM_BYTES,
                        });
                    }
                    wasm.extend_from_slice(&data);
                }
                Some(Err(e)) => return Err(ApiError::BadBody(e.to_string())),
            }
        }
        let computation = Arc::clone(&self.computation);
        let caller = caller.clone();
        // Hashing and compiling take a while: off the async threads, and the compile without
        // the computation's lock, so that inputs and status are answered meanwhile. The caller
        // and state are checked again (begin_program, finish_program): they may have changed
        // while the body arrived.
        tokio::task::spawn_blocking(move || {
            let pending = lock(&computation).begin_program(caller.principal(), wasm)?;
            let compiled = pending.compile()?;
            let finished = lock(&computation).finish_program(compiled);
            // The next upload of the program may start only once this one is in or out.
            drop(slot);
            finished
        })
        .await
        .map_err(|e| ApiError::Task(e.to_string()))??;
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "accepted": true }),
        ))
    }

    /// `PUT /v1/inputs/{path}`. `waits`: the client sent `Expect: 100-continue` (see
    /// [`discard_unread`]).
    async fn provide_input(
        &self,
        caller: &Caller,
        path: &str,
        mut body: Incoming,
        waits: bool,
    ) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation: only the input's provider, checked (with the state) by begin_input
        // before any byte of the body is read.
        let begun = lock(&self.computation).begin_input(caller.principal(), path);
        let upload = match begun {
            Ok(upload) => upload,
            Err(refusal) => {
                discard_unread(body, waits);
                return Err(refusal.into());
            }
        };
        let (tx, rx) = mpsc::channel::<UploadChunk>(TRANSFER_CHANNEL_CHUNKS);
        let writer = tokio::task::spawn_blocking(move || {
            upload.write(ChannelReader {
                rx,
                current: Bytes::new(),
                ended: false,
            })
        });
        // Feed the body to the writer; stop as soon as the writer has stopped (over the
        // bound, or the file system failed), even while the client is not sending: its
        // verdict is the answer. If this handler is dropped (the client went away), the
        // channel closes without `End` and the writer sees an interrupted upload.
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                () = tx.closed() => break,
            };
            let item = match frame {
                None => UploadChunk::End,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => UploadChunk::Data(data),
                    Err(_trailers) => continue,
                },
                Some(Err(e)) => UploadChunk::Failed(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    e.to_string(),
                )),
            };
            let last = !matches!(item, UploadChunk::Data(_));
            if tx.send(item).await.is_err() || last {
                break;
            }
        }
        drop(tx);
        let written = match writer.await.map_err(|e| ApiError::Task(e.to_string()))? {
            Ok(written) => written,
            Err(refusal) => {
                // Refused or failed part-way (over max_bytes, a hash mismatch, the file
                // system): the client may still be sending.
                discard_unread(body, false);
                return Err(refusal.into());
            }
        };
        let bytes = written.bytes();
        let sha256 = hex::encode(written.sha256());
        // The commitment's salt goes to the provider alone, in this answer.
        let (salt, commitment) = (written.salt_hex(), written.commitment().to_owned());
        lock(&self.computation).finish_input(written)?;
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({
                "path": path,
                "bytes": bytes,
                "sha256": sha256,
                "salt": salt,
                "commitment": commitment,
            }),
        ))
    }

    /// `POST /v1/run`: starts a run and answers when it has finished, or at once with
    /// `202 Accepted` and the run's number if `detach` (the outcome then shows in `status`).
    async fn run(&self, caller: &Caller, detach: bool) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation: a run starter only, checked (with the state) by start_run.
        let pending = lock(&self.computation).start_run(caller.principal())?;
        let run = pending.run();
        // The guest runs without the lock, so status stays answerable meanwhile. The run is
        // finished in a blocking task of its own: if the client goes away and this handler is
        // dropped, the computation still leaves `Running` and the receipt is still signed.
        let computation = Arc::clone(&self.computation);
        let task = tokio::task::spawn_blocking(move || {
            let executed = pending.execute();
            lock(&computation).finish_run(executed)
        });
        // If the task dies without finishing the run (a panic in the engine), the computation
        // must not stay `Running` forever: it fails, and says why.
        let computation = Arc::clone(&self.computation);
        let finished = async move {
            match task.await {
                Ok(result) => result.map_err(ApiError::from),
                Err(e) => {
                    let reason = format!("the runtime task running it failed: {e}");
                    if let Err(abandon) = lock(&computation).abandon_run(run, &reason) {
                        tracing::error!(run, error = %abandon, "could not abandon a failed run");
                    }
                    Err(ApiError::Task(e.to_string()))
                }
            }
        };
        if detach {
            tokio::spawn(async move {
                if let Err(e) = finished.await {
                    tracing::error!(run, error = %e, "a detached run failed");
                }
            });
            return Ok(json_response(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "run": run, "state": "running" }),
            ));
        }
        let summary = finished.await?;
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "record": summary.record, "receipt": summary.receipt }),
        ))
    }

    /// `GET /v1/outputs/{output}`: streamed.
    async fn fetch_output(
        &self,
        caller: &Caller,
        output: &str,
    ) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation: the output's readers only, checked (with the state) by fetch_output.
        let mut reader = lock(&self.computation).fetch_output(caller.principal(), output)?;
        let (run, salt) = (reader.run(), reader.salt_hex());
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(TRANSFER_CHANNEL_CHUNKS);
        let name = output.to_owned();
        // An async task, not a blocking thread: the output is in memory, so a read is a short
        // copy, and a reader that stops reading parks only this task (cheap) on the channel,
        // never one of the blocking threads that runs, uploads and compiles need.
        tokio::spawn(async move {
            loop {
                let mut buf = vec![0u8; DOWNLOAD_CHUNK_BYTES];
                let item = match reader.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(Bytes::from(buf))
                    }
                    Err(e) => {
                        tracing::error!(output = %name, error = %e, "reading an output failed");
                        Err(e)
                    }
                };
                let failed = item.is_err();
                // A send error means the client went away: stop reading.
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let mut response = Response::new(ApiBody::Stream(rx));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/octet-stream"),
        );
        // What the reader needs to check these bytes against the run's receipt: which run, and
        // the salt of the receipt's commitment (for this output's readers only).
        headers.insert(RUN_HEADER, hyper::header::HeaderValue::from(run));
        if let Ok(value) = hyper::header::HeaderValue::from_str(&salt) {
            headers.insert(SALT_HEADER, value);
        }
        Ok(response)
    }

    /// `GET /v1/receipts`.
    fn receipts(&self, caller: &Caller) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation: any principal (checked by the computation).
        let receipts = lock(&self.computation).receipts(caller.principal())?;
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "receipts": receipts }),
        ))
    }

    /// `POST /v1/consent-rerun`.
    fn consent_rerun(&self, caller: &Caller) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation: any principal, in Finished after runs.max runs (the computation).
        let agreement = lock(&self.computation).consent_rerun(caller.principal())?;
        Ok(json_response(StatusCode::OK, &agreement))
    }

    /// `POST /v1/close`.
    fn close(&self, caller: &Caller) -> Result<Response<ApiBody>, ApiError> {
        // Authorisation: any principal, not while running (the computation).
        let agreement = lock(&self.computation).close(caller.principal())?;
        if lock(&self.computation).state() == crate::State::Closed {
            self.closed.send_replace(true);
        }
        Ok(json_response(StatusCode::OK, &agreement))
    }
}

/// The computation's lock. A panic while it was held cannot leave the computation half
/// changed in a way the checks rely on (each operation changes state last), so a poisoned
/// lock is taken over rather than turning every later request into a panic.
fn lock(computation: &Mutex<Computation>) -> MutexGuard<'_, Computation> {
    computation.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the client sent `Expect: 100-continue`: it then waits for a go-ahead before it
/// sends the body, and a refusal answered before any byte was read reaches it without one.
fn expects_continue(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Throws away the rest of a refused request's body on a task of its own, within
/// [`REFUSED_BODY_DRAIN_BYTES`] and [`REFUSED_BODY_DRAIN_TIME`], while the refusal is sent:
/// the connection stays open until the client has stopped sending (and so has read the
/// refusal), the bound is reached, or the client goes away. Nothing is kept. A client that
/// waits for `100 Continue` (`waiting`) and whose body was never asked for is sending
/// nothing: polling the body would ask for it, so it is left alone and hyper answers the
/// refusal without the go-ahead.
fn discard_unread(mut body: Incoming, waiting: bool) {
    if waiting || body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let drained = tokio::time::timeout(REFUSED_BODY_DRAIN_TIME, async {
            let mut left = REFUSED_BODY_DRAIN_BYTES;
            // Ends at the end of the body, an error (the client went away) or the bound.
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    match left.checked_sub(n) {
                        Some(rest) if rest > 0 => left = rest,
                        _ => return false,
                    }
                }
            }
            true
        })
        .await;
        if !matches!(drained, Ok(true)) {
            tracing::debug!("a refused client kept sending past the drain bound; closing");
        }
        // Dropping the body part-read makes hyper close the connection.
    });
}

/// A response body: a whole JSON document or a streamed download.
#[derive(Debug)]
pub enum ApiBody {
    /// A complete body.
    Full(Full<Bytes>),
    /// Chunks from a blocking reader.
    Stream(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ApiBody::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|never| match never {}))),
            ApiBody::Stream(rx) => rx
                .poll_recv(cx)
                .map(|item| item.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ApiBody::Full(full) => full.is_end_stream(),
            ApiBody::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ApiBody::Full(full) => full.size_hint(),
            ApiBody::Stream(_) => SizeHint::default(),
        }
    }
}

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<ApiBody> {
    let bytes = match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "serialising a response failed");
            br#"{"error":"internal","message":"the runtime failed to complete the request"}"#
                .to_vec()
        }
    };
    let mut response = Response::new(ApiBody::Full(Full::new(Bytes::from(bytes))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// What the network side of an upload hands the blocking writer.
enum UploadChunk {
    /// More bytes.
    Data(Bytes),
    /// The body ended normally.
    End,
    /// Reading the body failed.
    Failed(std::io::Error),
}

/// A blocking [`Read`] over the chunks an async task sends: the bridge from a streamed
/// request body to [`crate::InputUpload::write`]. Only an explicit `End` is end of input; a
/// failure, or a channel closed without `End` (the handler was dropped), is a read error, so
/// a partial upload is never mistaken for a whole one.
struct ChannelReader {
    rx: mpsc::Receiver<UploadChunk>,
    current: Bytes,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(UploadChunk::Data(chunk)) => self.current = chunk,
                Some(UploadChunk::End) => self.ended = true,
                Some(UploadChunk::Failed(e)) => return Err(e),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the request ended before its body",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        buf[..n].copy_from_slice(&chunk);
        Ok(n)
    }
}

/// Decodes `%XX` escapes; refuses malformed escapes and non-UTF-8 results.
fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ApiError::BadPathEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| ApiError::BadPathEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ApiError::BadPathEncoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::BadPathEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_of(items: Vec<UploadChunk>) -> ChannelReader {
        let (tx, rx) = mpsc::channel(items.len().max(1));
        for item in items {
            assert!(tx.try_send(item).is_ok());
        }
        ChannelReader {
            rx,
            current: Bytes::new(),
            ended: false,
        }
    }

    #[test]
    fn the_upload_bridge_ends_only_at_an_explicit_end() {
        let mut whole = Vec::new();
        reader_of(vec![
            UploadChunk::Data(Bytes::from_static(b"ab")),
            UploadChunk::Data(Bytes::new()),
            UploadChunk::Data(Bytes::from_static(b"c")),
            UploadChunk::End,
        ])
        .read_to_end(&mut whole)
        .unwrap();
        assert_eq!(whole, b"abc");

        // A channel closed without End (the handler was dropped) is not a whole upload.
        let mut partial = Vec::new();
        let err = reader_of(vec![UploadChunk::Data(Bytes::from_static(b"ab"))])
            .read_to_end(&mut partial)
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    }

    #[test]
    fn percent_decoding_accepts_escapes_and_refuses_malformed_ones() {
        assert_eq!(percent_decode("%2Finput%2Fa.csv").unwrap(), "/input/a.csv");
        assert_eq!(percent_decode("stdout").unwrap(), "stdout");
        assert!(percent_decode("%2").is_err());
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}
