//! The Covenant client library for principals.
//!
//! A [`Client`] connects to a Covenant host over TCP and speaks TLS 1.3 with the principal's
//! client certificate. The SNI is the policy's computation id (the untrusted host routes by
//! it). The server's certificate is checked by
//! [`covenant_attest::AttestedServerVerifier`] built from the policy
//! ([`covenant_runtime::expected_runtime`]): its chain must end at the policy's attestation
//! CA, its measurement must be one the policy accepts, and its policy hash must equal ours.
//! TLS 1.3 verifies the server before the client's certificate or any request goes out, so a
//! server that is not the runtime the policy names never receives anything
//! ([`ClientError::Attestation`]). Then it calls the computation's HTTP/1.1 API
//! (`docs/api.md`): uploads are streamed from their files, downloads streamed to a writer,
//! and a [`Progress`] hook reports transfers. An upload the policy already rules out (a file
//! over the input's `max_bytes`, or not the SHA-256 the policy pins) is refused before any of
//! it is sent ([`ClientError::PolicyRefuses`]); a refusal the runtime sends part-way through an
//! upload is read and returned as such ([`ClientError::Refused`]), not as a lost connection.
//!
//! A client keeps to one **instance** of the computation: the attested runtime it first
//! completed a handshake with, named by the fingerprint of its attested key
//! ([`covenant_attest::instance_fingerprint`]). If the connection is lost and the host then
//! routes the client to another instance (a second runtime attested for the same policy: a
//! fork, or a restart), the client refuses it before sending a request
//! ([`ClientError::InstanceChanged`]). [`Client::connect_to_instance`] carries the instance
//! over from an earlier session, and [`InstancePin`] keeps it in a small file beside the
//! policy, as `covenant client` does.
//!
//! What it does not do: print anything, retry a refused request, or verify receipts (use
//! [`covenant_runtime::verify_receipt`] with the same policy).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod error;
mod instance;
mod progress;

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use covenant_attest::{AttestedCertificateError, AttestedServerVerifier, Digest};
use covenant_policy::ValidPolicy;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub use covenant_runtime::{Agreement, InputStatus, RunRecord, State, Status};
pub use error::{AttestationFailure, ClientError};
pub use instance::{
    INSTANCE_PIN_FORMAT, INSTANCE_PIN_SUFFIX, InstancePin, MAX_INSTANCE_PIN_BYTES, PinChange,
    PinnedInstance,
};
pub use progress::{NoProgress, Progress};

use body::{ClientBody, UploadChunk};

/// The address `covenant serve` listens on by default, and so the default host.
pub const DEFAULT_HOST: &str = "127.0.0.1:7443";

/// How long reaching the host and completing the TLS handshake may take. Stops a client
/// from hanging on a host that accepts and then says nothing.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Bytes read from a file per chunk of an upload.
pub const UPLOAD_CHUNK_BYTES: usize = 256 << 10;

/// Upload chunks in flight between the file reader and the connection: with
/// [`UPLOAD_CHUNK_BYTES`], bounds what an upload holds in memory (1 MiB), whatever the file's
/// size.
pub const UPLOAD_CHANNEL_CHUNKS: usize = 4;

/// The largest JSON answer accepted (status, receipts). Stops a misbehaving server from
/// making the client hold an unbounded body; outputs are streamed and not bounded by this.
pub const MAX_JSON_RESPONSE_BYTES: usize = 16 << 20;

/// A principal's TLS client identity: its certificate (as the policy names it) and private
/// key. `Debug` never shows the key.
pub struct Identity {
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificate_bytes", &self.certificate.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            certificate: self.certificate.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// The identity from PEM: the certificate (the first `CERTIFICATE` block) and the private
    /// key (PKCS#8, SEC1 or PKCS#1), as `covenant identity new` writes them.
    ///
    /// # Errors
    /// [`ClientError::Identity`] if either holds no such block.
    pub fn from_pem(certificate_pem: &[u8], key_pem: &[u8]) -> Result<Self, ClientError> {
        let certificate = CertificateDer::from_pem_slice(certificate_pem).map_err(|e| {
            ClientError::Identity(format!("the certificate is not a PEM certificate ({e})"))
        })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            ClientError::Identity(format!("the key is not a PEM private key ({e})"))
        })?;
        Ok(Identity { certificate, key })
    }

    /// The identity from DER: the certificate and a PKCS#8 private key.
    #[must_use]
    pub fn from_der(certificate_der: Vec<u8>, pkcs8_der: Vec<u8>) -> Self {
        Identity {
            certificate: CertificateDer::from(certificate_der),
            key: PrivateKeyDer::Pkcs8(pkcs8_der.into()),
        }
    }

    /// The certificate, DER.
    #[must_use]
    pub fn certificate_der(&self) -> &[u8] {
        self.certificate.as_ref()
    }
}

/// What to upload: a file (streamed, never read whole) or bytes in memory.
#[derive(Debug, Clone)]
pub enum Upload {
    /// A file, read in [`UPLOAD_CHUNK_BYTES`] chunks as the connection takes them.
    File(PathBuf),
    /// Bytes already in memory.
    Bytes(Bytes),
}

impl From<&Path> for Upload {
    fn from(path: &Path) -> Self {
        Upload::File(path.to_owned())
    }
}

impl From<PathBuf> for Upload {
    fn from(path: PathBuf) -> Self {
        Upload::File(path)
    }
}

impl From<Vec<u8>> for Upload {
    fn from(bytes: Vec<u8>) -> Self {
        Upload::Bytes(Bytes::from(bytes))
    }
}

impl From<Bytes> for Upload {
    fn from(bytes: Bytes) -> Self {
        Upload::Bytes(bytes)
    }
}

/// The runtime's answer to an input upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct InputReceived {
    /// The input's guest path.
    pub path: String,
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of what was stored, hex: compare with your file's.
    pub sha256: String,
    /// The salt of the receipts' commitment to this input, hex: for its provider alone, to
    /// check the input against a receipt (`covenant receipt verify --file`).
    pub salt: String,
    /// The commitment receipts carry for this input.
    pub commitment: String,
}

/// What [`Client::fetch`] received besides the bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fetched {
    /// Bytes written.
    pub bytes: u64,
    /// The run that wrote the output.
    pub run: u32,
    /// The salt of the run's receipt's commitment to the output, hex: with the bytes, it
    /// opens the commitment (`covenant_runtime::check_opening`).
    pub salt: String,
}

/// The runtime's answer to `run`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum RunResult {
    /// The run ended (`run(wait = true)`): its public record and its signed receipt.
    Finished {
        /// The run's record.
        record: RunRecord,
        /// The receipt, a compact JWS: verify it with
        /// [`covenant_runtime::verify_receipt`].
        receipt: String,
    },
    /// The run started and goes on (`run(wait = false)`): its outcome shows in
    /// [`Client::status`].
    Started {
        /// The run's number.
        run: u32,
        /// The state (`running`).
        state: State,
    },
}

#[derive(serde::Deserialize)]
struct Finished {
    record: RunRecord,
    receipt: String,
}

#[derive(serde::Deserialize)]
struct Started {
    run: u32,
    state: State,
}

#[derive(serde::Deserialize)]
struct Receipts {
    receipts: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ProgramAccepted {
    accepted: bool,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

/// An open HTTP/1.1 connection over verified TLS.
struct Connection {
    sender: SendRequest<ClientBody>,
    driver: tokio::task::JoinHandle<()>,
    /// Whether any response has arrived on it: before the first, a TLS alert is the
    /// runtime refusing our certificate (TLS 1.3 checks it after the client's handshake
    /// has finished).
    answered: bool,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A principal's connection to one computation's runtime.
///
/// Calls take `&mut self`: one request at a time. If the connection is lost (or ends after an
/// upload the runtime refused part-way), the next call reconnects, verifying the runtime
/// again — and that it is the same instance ([`ClientError::InstanceChanged`] otherwise).
pub struct Client {
    host: String,
    server_name: ServerName<'static>,
    computation: String,
    tls: Arc<rustls::ClientConfig>,
    connection: Option<Connection>,
    /// The policy the runtime was verified against: uploads are checked against it before
    /// they are sent.
    policy: ValidPolicy,
    /// The principal the policy names for our certificate.
    principal: String,
    /// The instance this client keeps to: the one it was told to expect, or else the first
    /// it completed a handshake with. Every connection, reconnections included, must be to
    /// it.
    instance: Option<Digest>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("computation", &self.computation)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the runtime of `policy`'s computation through the host at `host`
    /// (`address:port` or `name:port`) as `identity`: TCP, then the TLS 1.3 handshake in
    /// which the runtime's attested certificate is verified against the policy, all within
    /// [`CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// [`ClientError::NotAPrincipal`] if the policy does not name `identity`'s certificate
    /// (checked before connecting); [`ClientError::Identity`] for a key rustls cannot use or
    /// that is not the certificate's; [`ClientError::Connect`] if the host cannot be reached;
    /// [`ClientError::Attestation`] if the server is not the runtime the policy names;
    /// [`ClientError::Disconnected`] if the host drops the connection during the handshake.
    pub async fn connect(
        policy: &ValidPolicy,
        identity: &Identity,
        host: &str,
    ) -> Result<Client, ClientError> {
        Self::connect_to_instance(policy, identity, host, None).await
    }

    /// Connects as [`Client::connect`] does, to the instance `instance` (the fingerprint of
    /// its attested key, [`Client::instance`] of an earlier session, or
    /// [`InstancePin::instance`]): another instance of the computation is refused right after
    /// the handshake, before any request is sent. With `None`, the first instance reached is
    /// the one the client keeps to.
    ///
    /// # Errors
    /// As [`Client::connect`]; [`ClientError::InstanceChanged`] if the runtime is another
    /// instance than `instance`.
    pub async fn connect_to_instance(
        policy: &ValidPolicy,
        identity: &Identity,
        host: &str,
        instance: Option<Digest>,
    ) -> Result<Client, ClientError> {
        let principal = policy
            .principal_with_certificate(identity.certificate_der())
            .ok_or(ClientError::NotAPrincipal)?
            .to_owned();
        let expected = covenant_runtime::expected_runtime(policy)
            .map_err(|e| ClientError::Policy(e.to_string()))?;
        let computation = policy.policy().computation.clone();
        let server_name = ServerName::try_from(computation.clone()).map_err(|e| {
            ClientError::Policy(format!(
                "the computation id {computation:?} is not a DNS name ({e})"
            ))
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClientError::Identity(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AttestedServerVerifier::new(expected)))
            .with_client_auth_cert(vec![identity.certificate.clone()], identity.key.clone_key())
            .map_err(|e| ClientError::Identity(format!("rustls refuses it: {e}")))?;
        let mut tls = tls;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut client = Client {
            host: host.to_owned(),
            server_name,
            computation,
            tls: Arc::new(tls),
            connection: None,
            policy: policy.clone(),
            principal,
            instance,
        };
        let (connection, instance) = client.open().await?;
        client.connection = Some(connection);
        client.instance = Some(instance);
        Ok(client)
    }

    /// The instance this client keeps to: the fingerprint of the attested key of the runtime
    /// it is connected to (SHA-256 of its certificate's SubjectPublicKeyInfo). Receipts name
    /// it too (`instance`).
    #[must_use]
    pub fn instance(&self) -> Option<Digest> {
        self.instance
    }

    /// The host address this client connects to.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP and the verified TLS handshake, then the check that the runtime is the instance
    /// this client keeps to (if it keeps to one yet), then the HTTP/1.1 handshake. Returns the
    /// connection and the instance.
    async fn open(&self) -> Result<(Connection, Digest), ClientError> {
        let handshake = async {
            let tcp =
                TcpStream::connect(&self.host)
                    .await
                    .map_err(|source| ClientError::Connect {
                        host: self.host.clone(),
                        source,
                    })?;
            // Small requests and answers: do not wait to fill segments.
            let _ = tcp.set_nodelay(true);
            tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| self.handshake_error(&e))
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| ClientError::Connect {
                host: self.host.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no TLS session within {} s", CONNECT_TIMEOUT.as_secs()),
                ),
            })??;
        let found = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| ClientError::Protocol("the runtime sent no certificate".into()))
            .and_then(|leaf| {
                covenant_attest::instance_fingerprint(leaf)
                    .map_err(|e| ClientError::Protocol(format!("the runtime's certificate: {e}")))
            })?;
        if let Some(expected) = self.instance
            && expected != found
        {
            return Err(ClientError::InstanceChanged {
                host: self.host.clone(),
                expected: expected.to_hex(),
                found: found.to_hex(),
            });
        }
        tracing::debug!(host = %self.host, computation = %self.computation, instance = %found, "runtime attested");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Protocol(format!("HTTP/1.1 handshake: {e}")))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection to the runtime ended");
            }
        });
        Ok((
            Connection {
                sender,
                driver,
                answered: false,
            },
            found,
        ))
    }

    /// Classifies a failed TLS handshake: the verifier's refusal, another TLS failure, or a
    /// dropped connection.
    fn handshake_error(&self, err: &std::io::Error) -> ClientError {
        let host = self.host.clone();
        match err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(cert_err)) => {
                let reason = match attested_reason(cert_err) {
                    Some(e) => AttestationFailure::Certificate(e),
                    None => {
                        AttestationFailure::Tls(rustls::Error::InvalidCertificate(cert_err.clone()))
                    }
                };
                ClientError::Attestation { host, reason }
            }
            Some(other) => {
                ClientError::Protocol(format!("the TLS handshake with {host} failed: {other}"))
            }
            None => ClientError::Disconnected {
                host,
                during: "the TLS handshake".into(),
                detail: format!(
                    "{err} (is the computation {:?} served there?)",
                    self.computation
                ),
            },
        }
    }

    /// An open connection, reconnecting (and so re-verifying) if the last one was lost.
    async fn connection(&mut self) -> Result<&mut Connection, ClientError> {
        let usable = match &mut self.connection {
            Some(c) => !c.sender.is_closed() && c.sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.connection = None;
            tracing::debug!(host = %self.host, "reconnecting to the runtime");
            let (connection, _) = self.open().await?;
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| ClientError::Protocol("no connection".into()))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: ClientBody,
    ) -> Result<Request<ClientBody>, ClientError> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.computation.as_str())
            .body(body)
            .map_err(|e| ClientError::Protocol(format!("building the request {path}: {e}")))
    }

    /// Maps a failed exchange to an error: the runtime refusing our certificate (an alert
    /// before any answer), or a lost connection.
    fn exchange_error(&self, answered: bool, err: &hyper::Error, during: &str) -> ClientError {
        if let Some(rustls::Error::AlertReceived(alert)) = find_rustls_error(err)
            && !answered
        {
            return ClientError::CertificateRefused {
                host: self.host.clone(),
                alert: format!("{alert:?}"),
            };
        }
        let mut detail = err.to_string();
        let mut cut_off = false;
        let mut source = err.source();
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            cut_off |= s
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof);
            source = s.source();
        }
        if cut_off {
            // rustls's wording ("peer closed connection without sending TLS close_notify")
            // says what happened on the wire, not what it means here.
            detail = "the connection was cut without a TLS close; the runtime's worker may \
                      have stopped (the host's log says why)"
                .to_owned();
        }
        ClientError::Disconnected {
            host: self.host.clone(),
            during: during.to_owned(),
            detail,
        }
    }

    /// Sends a request with an empty body; returns the response whatever its status.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        during: &str,
    ) -> Result<Response<Incoming>, ClientError> {
        let mut request = self.request(method.clone(), path, ClientBody::Empty)?;
        let mut retried = false;
        loop {
            let connection = self.connection().await?;
            // Whether this connection has carried an exchange already: a kept-alive
            // connection the host or runtime closed meanwhile fails only on use.
            let reused = connection.answered;
            match connection.sender.try_send_request(request).await {
                Ok(response) => {
                    connection.answered = true;
                    return Ok(response);
                }
                Err(mut e) => {
                    self.connection = None;
                    // Once, on a new connection (verified afresh): a request hyper did not
                    // send, or a GET (it changes nothing) on a connection that went stale.
                    let again = match e.take_message() {
                        Some(unsent) => Some(unsent),
                        None if method == Method::GET && reused => {
                            Some(self.request(method.clone(), path, ClientBody::Empty)?)
                        }
                        None => None,
                    };
                    match again {
                        Some(next) if !retried => {
                            tracing::debug!(error = %e.error(), path, "retrying on a new connection");
                            retried = true;
                            request = next;
                        }
                        _ => return Err(self.exchange_error(reused, e.error(), during)),
                    }
                }
            }
        }
    }

    /// Reads a JSON answer, or the error the runtime sent.
    async fn json<T: DeserializeOwned>(
        &mut self,
        response: Response<Incoming>,
        during: &str,
    ) -> Result<T, ClientError> {
        let answer = self.read_answer(response, during).await?;
        decode(&answer, during)
    }

    /// Reads an answer whole (at most [`MAX_JSON_RESPONSE_BYTES`]).
    async fn read_answer(
        &mut self,
        response: Response<Incoming>,
        during: &str,
    ) -> Result<Answer, ClientError> {
        let status = response.status();
        match Limited::new(response.into_body(), MAX_JSON_RESPONSE_BYTES)
            .collect()
            .await
        {
            Ok(collected) => Ok(Answer {
                status,
                body: collected.to_bytes(),
            }),
            Err(e) => {
                self.connection = None;
                if e.is::<http_body_util::LengthLimitError>() {
                    return Err(ClientError::Protocol(format!(
                        "the answer to {during} is larger than {MAX_JSON_RESPONSE_BYTES} bytes"
                    )));
                }
                Err(match e.downcast::<hyper::Error>() {
                    Ok(e) => self.exchange_error(true, &e, during),
                    Err(e) => ClientError::Disconnected {
                        host: self.host.clone(),
                        during: during.to_owned(),
                        detail: e.to_string(),
                    },
                })
            }
        }
    }

    /// `GET /v1/status`: the computation's state as every principal may see it.
    ///
    /// # Errors
    /// Any [`ClientError`]; [`ClientError::Refused`] if the runtime refuses.
    pub async fn status(&mut self) -> Result<Status, ClientError> {
        let response = self.send(Method::GET, "/v1/status", "status").await?;
        self.json(response, "status").await
    }

    /// `PUT /v1/program`: uploads the program module (streamed from a file, or bytes). The
    /// runtime checks its SHA-256 against the policy and loads it.
    ///
    /// If the policy names us as the program provider, the module is checked first, before
    /// anything is sent: its size against the runtime's cap
    /// ([`covenant_runtime::api::MAX_PROGRAM_BYTES`]) and its SHA-256 against the policy's
    /// (a file is read once more for that). A pipe or device cannot be checked before it is
    /// read; the runtime checks it.
    ///
    /// # Errors
    /// [`ClientError::Io`] if the file cannot be read; [`ClientError::PolicyRefuses`] with rule
    /// `program-too-large` or `program-hash-mismatch` (nothing sent);
    /// [`ClientError::Refused`] with rule `not-program-provider`, `program-hash-mismatch`,
    /// `program-already-provided`, `program-too-large`, ...
    pub async fn provide_program(
        &mut self,
        program: impl Into<Upload>,
        progress: &mut dyn Progress,
    ) -> Result<(), ClientError> {
        let program = program.into();
        self.check_program(&program).await?;
        let (answer, _) = self
            .upload(
                "/v1/program".to_owned(),
                program,
                "the program upload",
                progress,
            )
            .await?;
        let accepted: ProgramAccepted = decode(&answer, "the program upload")?;
        if accepted.accepted {
            Ok(())
        } else {
            Err(ClientError::Protocol(
                "the runtime answered 200 but did not accept the program".into(),
            ))
        }
    }

    /// `PUT /v1/inputs/{guest_path}`: uploads an input, streamed from a file (or bytes) in
    /// [`UPLOAD_CHUNK_BYTES`] chunks; at most [`UPLOAD_CHANNEL_CHUNKS`] chunks are in memory.
    /// The answer carries the bytes stored and their SHA-256.
    ///
    /// If the policy names us as the input's provider, the upload is checked first, before
    /// anything is sent: its size against the input's `max_bytes`, then, if the policy pins
    /// the input's SHA-256, its hash (a file is read once more for that; only files within
    /// `max_bytes` are). A pipe or device (`/dev/stdin`) has no size before it is read; the
    /// runtime checks it as it arrives, and its refusal part-way is returned as
    /// [`ClientError::Refused`].
    ///
    /// # Errors
    /// [`ClientError::Io`] if the file cannot be read (the upload is then aborted, and the
    /// runtime discards it); [`ClientError::PolicyRefuses`] with rule `input-too-large` or
    /// `input-hash-mismatch` (nothing sent); [`ClientError::Refused`] with rule
    /// `not-input-provider`, `input-too-large`, `input-hash-mismatch`,
    /// `input-already-provided`, ...
    pub async fn provide_input(
        &mut self,
        guest_path: &str,
        input: impl Into<Upload>,
        progress: &mut dyn Progress,
    ) -> Result<InputReceived, ClientError> {
        let input = input.into();
        self.check_input(guest_path, &input).await?;
        let path = format!("/v1/inputs/{}", percent_encode(guest_path));
        let during = format!("the upload of {guest_path}");
        let (answer, sent) = self.upload(path, input, &during, progress).await?;
        let received: InputReceived = decode(&answer, &during)?;
        // The runtime's account of what it stored must be what we sent.
        match sent {
            Some(sent) if sent.bytes == received.bytes && sent.sha256 == received.sha256 => {
                Ok(received)
            }
            Some(sent) => Err(ClientError::Protocol(format!(
                "the runtime says it stored {} bytes with SHA-256 {} for {guest_path}, but \
                 {} bytes with SHA-256 {} were sent",
                received.bytes, received.sha256, sent.bytes, sent.sha256
            ))),
            None => Err(ClientError::Protocol(format!(
                "the runtime accepted {guest_path} before the whole upload was sent"
            ))),
        }
    }

    /// Refuses, before anything is sent, a program the policy rules out (see
    /// [`Client::provide_program`]).
    async fn check_program(&self, program: &Upload) -> Result<(), ClientError> {
        let pinned = &self.policy.policy().program;
        // Someone else's upload is the runtime's to refuse, by role, before it reads a byte.
        if pinned.provider != self.principal {
            return Ok(());
        }
        let what = describe(program);
        let cap = u64::try_from(covenant_runtime::api::MAX_PROGRAM_BYTES).unwrap_or(u64::MAX);
        if let Some(size) = known_size(program).await?
            && size > cap
        {
            return Err(ClientError::PolicyRefuses {
                rule: "program-too-large",
                message: format!(
                    "{what} is {size} bytes, but the runtime takes programs of at most {cap} \
                     bytes, so it would refuse it; nothing was sent. Check that this is the \
                     module whose SHA-256 the policy pins ({})",
                    pinned.sha256
                ),
            });
        }
        if let Some(found) = sha256_of(program).await?
            && found != pinned.sha256
        {
            return Err(ClientError::PolicyRefuses {
                rule: "program-hash-mismatch",
                message: format!(
                    "{what} has SHA-256 {found}, but the policy pins {} for the program, so \
                     the runtime would refuse it; nothing was sent. Send the module the policy \
                     pins (compare `sha256sum` of your file with program.sha256 in the policy)",
                    pinned.sha256
                ),
            });
        }
        Ok(())
    }

    /// Refuses, before anything is sent, an input the policy rules out (see
    /// [`Client::provide_input`]).
    async fn check_input(&self, guest_path: &str, input: &Upload) -> Result<(), ClientError> {
        // An undeclared input or someone else's is the runtime's to refuse (unknown-input,
        // not-input-provider), before it reads a byte.
        let Some(declared) = self
            .policy
            .policy()
            .inputs
            .iter()
            .find(|i| i.path == guest_path && i.provider == self.principal)
        else {
            return Ok(());
        };
        let what = describe(input);
        let max = declared.max_bytes;
        if let Some(size) = known_size(input).await?
            && size > max
        {
            return Err(ClientError::PolicyRefuses {
                rule: "input-too-large",
                message: format!(
                    "{what} is {size} bytes, but the policy's max_bytes for {guest_path} is \
                     {max}, so the runtime would refuse it; nothing was sent. Send at most {max} \
                     bytes (a larger bound needs a new policy that every principal agrees to)"
                ),
            });
        }
        if let Some(expected) = &declared.sha256
            && let Some(found) = sha256_of(input).await?
            && found != *expected
        {
            return Err(ClientError::PolicyRefuses {
                rule: "input-hash-mismatch",
                message: format!(
                    "{what} has SHA-256 {found}, but the policy pins {expected} for \
                     {guest_path}, so the runtime would refuse it; nothing was sent. Send \
                     exactly the data the policy pins"
                ),
            });
        }
        Ok(())
    }

    /// Streams `source` as the body of a `PUT` and reads the runtime's answer whole. Chunks
    /// are read as the connection takes them and reported to `progress`. The body ends only
    /// after the last chunk; if reading fails (or this future is dropped), the body is
    /// aborted, so the runtime never mistakes part of a file for the whole.
    ///
    /// The runtime may answer before the body has ended (a refusal part-way: over the
    /// bound, or before it read anything). The answer is then read whole before the body is
    /// abandoned: abandoning it ends the connection, which could cut the answer off. The
    /// runtime reads on and discards for a while after such a refusal, so that the writes in
    /// flight land and its answer is not lost to a connection reset.
    async fn upload(
        &mut self,
        path: String,
        source: Upload,
        during: &str,
        progress: &mut dyn Progress,
    ) -> Result<(Answer, Option<Sent>), ClientError> {
        // Open the file first: a missing file is reported before anything is sent.
        let (reader, total) = match source {
            Upload::File(file_path) => {
                let file =
                    tokio::fs::File::open(&file_path)
                        .await
                        .map_err(|source| ClientError::Io {
                            context: "cannot read",
                            path: file_path.clone(),
                            source,
                        })?;
                let total = file
                    .metadata()
                    .await
                    .ok()
                    .filter(std::fs::Metadata::is_file)
                    .map(|m| m.len());
                (Source::File(file, file_path), total)
            }
            Upload::Bytes(bytes) => {
                let total = u64::try_from(bytes.len()).ok();
                (Source::Bytes(bytes), total)
            }
        };
        let (tx, rx) = mpsc::channel(UPLOAD_CHANNEL_CHUNKS);
        let request = self.request(Method::PUT, &path, ClientBody::Stream(rx))?;
        let connection = self.connection().await?;
        let answered = connection.answered;
        let response = connection.sender.send_request(request);
        progress.started(total);
        let (result, sent) = {
            let feed = feed(reader, tx, &mut *progress);
            tokio::pin!(response);
            tokio::pin!(feed);
            let mut sent = None;
            let ended = loop {
                tokio::select! {
                    // The feed finishes in the same poll in which it hands over the end of
                    // the body, so a runtime that has read the whole body finds it finished.
                    response = &mut response => break match response {
                        Ok(response) => Ended::Answered(response),
                        Err(e) => Ended::Lost(e),
                    },
                    fed = &mut feed, if sent.is_none() => {
                        match fed {
                            Ok(fed) => sent = Some(fed),
                            Err(e) => break Ended::Unreadable(e),
                        }
                    }
                }
            };
            let result = match ended {
                Ended::Answered(response) => {
                    if let Some(c) = self.connection.as_mut() {
                        c.answered = true;
                    }
                    // The feed is still alive (no longer polled): the body is not abandoned
                    // before the answer is in.
                    self.read_answer(response, during).await
                }
                Ended::Lost(e) => Err(self.exchange_error(answered, &e, during)),
                Ended::Unreadable(e) => Err(e),
            };
            (result, sent.flatten())
        };
        progress.finished();
        if result.is_err() || sent.is_none() {
            // Lost, or answered before the whole body went out (the body is now aborted):
            // this connection is finished.
            self.connection = None;
        }
        Ok((result?, sent))
    }

    /// `POST /v1/run`: starts the run. With `wait`, answers when it has ended, with its
    /// record and receipt ([`RunResult::Finished`]); without, at once
    /// ([`RunResult::Started`]), and the outcome shows in [`Client::status`].
    ///
    /// # Errors
    /// [`ClientError::Refused`] with rule `not-starter`, `program-missing`,
    /// `inputs-missing`, `wrong-state`, `runs-exhausted`, ...
    pub async fn run(&mut self, wait: bool) -> Result<RunResult, ClientError> {
        if wait {
            let response = self.send(Method::POST, "/v1/run", "the run").await?;
            let finished: Finished = self.json(response, "the run").await?;
            Ok(RunResult::Finished {
                record: finished.record,
                receipt: finished.receipt,
            })
        } else {
            let response = self
                .send(Method::POST, "/v1/run?detach=true", "starting the run")
                .await?;
            let started: Started = self.json(response, "starting the run").await?;
            Ok(RunResult::Started {
                run: started.run,
                state: started.state,
            })
        }
    }

    /// `GET /v1/outputs/{output}`: streams an output (a guest path, `stdout` or `stderr`) to
    /// `writer` as it arrives, and flushes it. Returns the bytes written, the run, and the
    /// salt that checks them against that run's receipt.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with rule `not-reader`, `wrong-state`, `unknown-output`,
    /// `output-not-written`, `output-withheld`; [`ClientError::Protocol`] if the answer lacks
    /// the run or the salt; [`ClientError::Io`] if `writer` fails;
    /// [`ClientError::Disconnected`] if the download is cut off (what was written is then
    /// incomplete).
    pub async fn fetch(
        &mut self,
        output: &str,
        writer: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &mut dyn Progress,
    ) -> Result<Fetched, ClientError> {
        let path = format!("/v1/outputs/{}", percent_encode(output));
        let during = format!("the download of {output}");
        let response = self.send(Method::GET, &path, &during).await?;
        if !response.status().is_success() {
            // An error answer is JSON; `json` turns it into the runtime's error.
            return Err(self
                .json::<serde_json::Value>(response, &during)
                .await
                .err()
                .unwrap_or_else(|| ClientError::Protocol(format!("{during} failed"))));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let run = header(covenant_runtime::api::RUN_HEADER).and_then(|v| v.parse::<u32>().ok());
        let salt = header(covenant_runtime::api::SALT_HEADER);
        let (Some(run), Some(salt)) = (run, salt) else {
            self.connection = None;
            return Err(ClientError::Protocol(format!(
                "{during}: the runtime did not say which run wrote it or send the salt that \
                 checks it against the receipt"
            )));
        };
        let total = hyper::body::Body::size_hint(response.body()).exact();
        progress.started(total);
        let mut body = response.into_body();
        let mut written: u64 = 0;
        let result = loop {
            match body.frame().await {
                None => break Ok(()),
                Some(Err(e)) => break Err(self.exchange_error(true, &e, &during)),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Err(source) = writer.write_all(&data).await {
                        break Err(ClientError::Io {
                            context: "cannot write the output to",
                            path: PathBuf::from(output),
                            source,
                        });
                    }
                    let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    written = written.saturating_add(n);
                    progress.advanced(n);
                }
            }
        };
        progress.finished();
        if let Err(e) = result {
            // The rest of the body may still be on the wire: this connection is done.
            self.connection = None;
            return Err(e);
        }
        writer.flush().await.map_err(|source| ClientError::Io {
            context: "cannot write the output to",
            path: PathBuf::from(output),
            source,
        })?;
        Ok(Fetched {
            bytes: written,
            run,
            salt,
        })
    }

    /// `GET /v1/receipts`: every receipt signed so far, oldest first (compact JWS; verify
    /// with [`covenant_runtime::verify_receipt`]).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn receipts(&mut self) -> Result<Vec<String>, ClientError> {
        let response = self.send(Method::GET, "/v1/receipts", "receipts").await?;
        let receipts: Receipts = self.json(response, "receipts").await?;
        Ok(receipts.receipts)
    }

    /// `POST /v1/consent-rerun`: agrees to one more run.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with rule `consent-not-applicable`, `wrong-state`, ...
    pub async fn consent_rerun(&mut self) -> Result<Agreement, ClientError> {
        let response = self
            .send(Method::POST, "/v1/consent-rerun", "the re-run consent")
            .await?;
        self.json(response, "the re-run consent").await
    }

    /// `POST /v1/close`: agrees to end the computation; when every principal has, its data
    /// is wiped.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with rule `wrong-state` (while a run is going on), ...
    pub async fn close(&mut self) -> Result<Agreement, ClientError> {
        let response = self.send(Method::POST, "/v1/close", "closing").await?;
        self.json(response, "closing").await
    }
}

/// How an upload's exchange ended.
enum Ended {
    /// The runtime answered (perhaps before the body had ended).
    Answered(Response<Incoming>),
    /// The connection failed before an answer.
    Lost(hyper::Error),
    /// The upload's file could not be read (the body was aborted).
    Unreadable(ClientError),
}

/// An answer read whole.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

/// An answer's JSON document, or the error the runtime sent.
fn decode<T: DeserializeOwned>(answer: &Answer, during: &str) -> Result<T, ClientError> {
    if !answer.status.is_success() {
        return Err(error_from(answer.status, &answer.body));
    }
    serde_json::from_slice(&answer.body).map_err(|e| {
        ClientError::Protocol(format!(
            "the answer to {during} is not what the API documents: {e}"
        ))
    })
}

/// How an upload is named in messages.
fn describe(upload: &Upload) -> String {
    match upload {
        Upload::File(path) => path.display().to_string(),
        Upload::Bytes(_) => "the upload".to_owned(),
    }
}

/// An upload's size if it is known before reading it: a regular file's length or the
/// bytes'. A pipe or device (`/dev/stdin`) has none.
///
/// # Errors
/// [`ClientError::Io`] if the file cannot be opened.
async fn known_size(upload: &Upload) -> Result<Option<u64>, ClientError> {
    match upload {
        Upload::Bytes(bytes) => Ok(u64::try_from(bytes.len()).ok()),
        Upload::File(path) => {
            let metadata = tokio::fs::metadata(path)
                .await
                .map_err(|source| ClientError::Io {
                    context: "cannot read",
                    path: path.clone(),
                    source,
                })?;
            Ok(metadata.is_file().then_some(metadata.len()))
        }
    }
}

/// An upload's SHA-256 (hex), if it can be known without consuming it: the bytes', or a
/// regular file's, read through once (in [`UPLOAD_CHUNK_BYTES`] chunks, never whole). A pipe
/// or device has none: it is not even opened, since opening a FIFO here would take its
/// writer's data (or its end) from the upload.
///
/// # Errors
/// [`ClientError::Io`] if the file cannot be read.
async fn sha256_of(upload: &Upload) -> Result<Option<String>, ClientError> {
    let path = match upload {
        Upload::Bytes(bytes) => return Ok(Some(hex::encode(Sha256::digest(bytes)))),
        Upload::File(path) => path,
    };
    let unreadable = |source| ClientError::Io {
        context: "cannot read",
        path: path.clone(),
        source,
    };
    if !tokio::fs::metadata(path)
        .await
        .map_err(unreadable)?
        .is_file()
    {
        return Ok(None);
    }
    let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; UPLOAD_CHUNK_BYTES];
    loop {
        let n = file.read(&mut buf).await.map_err(unreadable)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Some(hex::encode(hasher.finalize())))
}

/// Where an upload's bytes come from.
enum Source {
    File(tokio::fs::File, PathBuf),
    Bytes(Bytes),
}

/// What an upload sent, whole: to compare with the runtime's account.
struct Sent {
    bytes: u64,
    sha256: String,
}

/// Hands `source` to the body in chunks, then the explicit end, and returns what was sent.
/// On a read error the body is aborted (an `Err` chunk) and the error returned. If the
/// connection stops taking chunks (the runtime answered early), feeding stops quietly with
/// `None`: the answer says why.
async fn feed(
    source: Source,
    tx: mpsc::Sender<UploadChunk>,
    progress: &mut dyn Progress,
) -> Result<Option<Sent>, ClientError> {
    let mut hasher = Sha256::new();
    let mut bytes_sent: u64 = 0;
    match source {
        Source::Bytes(mut bytes) => {
            while !bytes.is_empty() {
                let chunk = bytes.split_to(bytes.len().min(UPLOAD_CHUNK_BYTES));
                let n = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                hasher.update(&chunk);
                if tx.send(UploadChunk::Data(chunk)).await.is_err() {
                    return Ok(None);
                }
                bytes_sent = bytes_sent.saturating_add(n);
                progress.advanced(n);
            }
        }
        Source::File(mut file, path) => loop {
            let mut buf = vec![0u8; UPLOAD_CHUNK_BYTES];
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(source) => {
                    let _ = tx
                        .send(UploadChunk::Failed(std::io::Error::new(
                            source.kind(),
                            "reading the upload failed",
                        )))
                        .await;
                    return Err(ClientError::Io {
                        context: "cannot read",
                        path,
                        source,
                    });
                }
            };
            buf.truncate(n);
            hasher.update(&buf);
            if tx.send(UploadChunk::Data(Bytes::from(buf))).await.is_err() {
                return Ok(None);
            }
            let n = u64::try_from(n).unwrap_or(u64::MAX);
            bytes_sent = bytes_sent.saturating_add(n);
            progress.advanced(n);
        },
    }
    if tx.send(UploadChunk::End).await.is_err() {
        return Ok(None);
    }
    Ok(Some(Sent {
        bytes: bytes_sent,
        sha256: hex::encode(hasher.finalize()),
    }))
}

/// The runtime's error answer as a [`ClientError`].
fn error_from(status: StatusCode, body: &[u8]) -> ClientError {
    let Ok(ErrorBody { error, message }) = serde_json::from_slice::<ErrorBody>(body) else {
        return ClientError::Protocol(format!(
            "HTTP {status} without the API's error body: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    };
    if status.is_server_error() {
        ClientError::Runtime {
            status: status.as_u16(),
            message,
        }
    } else {
        ClientError::Refused {
            status: status.as_u16(),
            rule: error,
            message,
        }
    }
}

/// The [`AttestedCertificateError`] inside a rustls certificate error, if the verifier
/// produced it.
fn attested_reason(err: &rustls::CertificateError) -> Option<AttestedCertificateError> {
    match err {
        rustls::CertificateError::Other(other) => {
            other.0.downcast_ref::<AttestedCertificateError>().cloned()
        }
        _ => None,
    }
}

/// The rustls error somewhere in `err`'s source chain (hyper wraps I/O errors, which wrap
/// rustls errors).
fn find_rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(found) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Percent-encodes a path parameter: every byte but the unreserved ones (RFC 3986), so `/`
/// becomes `%2F` as the API expects (`/v1/inputs/%2Finput%2Fa.csv`).
#[must_use]
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_encoded_as_the_api_decodes_them() {
        assert_eq!(percent_encode("/input/a.csv"), "%2Finput%2Fa.csv");
        assert_eq!(percent_encode("stdout"), "stdout");
        assert_eq!(percent_encode("/in put/é?#"), "%2Fin%20put%2F%C3%A9%3F%23");
    }

    #[test]
    fn error_answers_become_refusals_or_runtime_failures() {
        let refused = error_from(
            StatusCode::FORBIDDEN,
            br#"{"error":"not-reader","message":"carol only"}"#,
        );
        assert!(
            matches!(&refused, ClientError::Refused { status: 403, rule, .. } if rule == "not-reader"),
            "{refused:?}"
        );
        let failed = error_from(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"internal","message":"see the log"}"#,
        );
        assert!(
            matches!(failed, ClientError::Runtime { status: 500, .. }),
            "{failed:?}"
        );
        let garbage = error_from(StatusCode::BAD_GATEWAY, b"<html>");
        assert!(matches!(garbage, ClientError::Protocol(_)), "{garbage:?}");
    }

    #[test]
    fn pem_that_is_not_a_certificate_or_key_is_an_identity_error() {
        let err = Identity::from_pem(b"not pem", b"not pem").unwrap_err();
        assert!(matches!(err, ClientError::Identity(_)), "{err:?}");
    }
}
