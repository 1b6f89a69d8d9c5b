//! A small HTTP(S) client for the service's API, for the host (which relays a runtime's
//! evidence and its end statement), the benchmark and the tests. One connection per call: attestation is rare (once
//! per worker) and this keeps the client free of pooling state.

use std::sync::Arc;
use std::time::Duration;

use covenant_attest::wire::{
    AttestationRequest, AttestationResponse, CertificateStatus, ErrorBody, InstanceEndRequest,
    InstanceEndResponse, NonceResponse,
};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The largest response body the client reads, in bytes. Stops a hostile or broken server from
/// making the client buffer without bound.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// How long one call may take, connect to last byte. Stops a silent or trickling server from
/// holding the caller (a host launching workers) forever.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A call to the service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://HOST:PORT` or `https://HOST:PORT` (an optional trailing `/`).
    #[error("bad service URL {0:?}: expected http://HOST:PORT or https://HOST:PORT")]
    BadUrl(String),
    /// An `https` URL was given without the CA certificate to verify the service with.
    #[error("an https service URL needs the service's CA certificate")]
    MissingCaCertificate,
    /// Connecting or talking failed.
    #[error("talking to the attestation service: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// The call took longer than [`CALL_TIMEOUT`].
    #[error("the attestation service did not answer within {CALL_TIMEOUT:?}")]
    Timeout,
    /// The service refused or failed the request.
    #[error("the attestation service answered {status}: {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code from the body.
        code: String,
        /// The message from the body.
        message: String,
    },
    /// The response is not what the API documents.
    #[error("unexpected response from the attestation service: {0}")]
    BadResponse(String),
}

/// A client for one service.
#[derive(Clone)]
pub struct AttestationClient {
    authority: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for AttestationClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationClient")
            .field("authority", &self.authority)
            .field("https", &self.tls.is_some())
            .finish()
    }
}

impl AttestationClient {
    /// A client for `url`. For `https://` URLs, `ca_certificate_der` is the service's CA
    /// certificate, the only root trusted (TLS 1.3, ring provider).
    ///
    /// # Errors
    /// [`ClientError::BadUrl`], [`ClientError::MissingCaCertificate`], or
    /// [`ClientError::Http`] if the CA certificate cannot be used.
    pub fn new(url: &str, ca_certificate_der: Option<&[u8]>) -> Result<Self, ClientError> {
        let bad = || ClientError::BadUrl(url.chars().take(200).collect());
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(bad());
        }
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => return Err(bad()),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tls = if https {
            let ca = ca_certificate_der.ok_or(ClientError::MissingCaCertificate)?;
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls_pki_types::CertificateDer::from(ca.to_vec()))
                .map_err(|e| {
                    ClientError::Http(format!("the CA certificate cannot be used: {e}"))
                })?;
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClientError::Http(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = ServerName::try_from(host.to_owned()).map_err(|_| bad())?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            authority: authority.to_owned(),
            tls,
        })
    }

    /// `POST /v1/nonces`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn nonce(&self) -> Result<NonceResponse, ClientError> {
        self.call_json(Method::POST, "/v1/nonces", None).await
    }

    /// `POST /v1/attestations`.
    ///
    /// # Errors
    /// [`ClientError`]; a refusal is [`ClientError::Refused`] with the service's code.
    pub async fn attest(
        &self,
        request: &AttestationRequest,
    ) -> Result<AttestationResponse, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Http(e.to_string()))?;
        self.call_json(Method::POST, "/v1/attestations", Some(body))
            .await
    }

    /// `POST /v1/instance-ends`: relays a runtime's end statement.
    ///
    /// # Errors
    /// [`ClientError`]; a refusal is [`ClientError::Refused`] with the service's code.
    pub async fn end_instance(&self, statement: &str) -> Result<InstanceEndResponse, ClientError> {
        let request = InstanceEndRequest {
            statement: statement.to_owned(),
        };
        let body = serde_json::to_vec(&request).map_err(|e| ClientError::Http(e.to_string()))?;
        self.call_json(Method::POST, "/v1/instance-ends", Some(body))
            .await
    }

    /// `GET /v1/certificates/{serial}`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn certificate_status(&self, serial: &str) -> Result<CertificateStatus, ClientError> {
        if !serial.bytes().all(|b| b.is_ascii_hexdigit()) || serial.is_empty() {
            return Err(ClientError::BadResponse("a serial is hex digits".into()));
        }
        self.call_json(Method::GET, &format!("/v1/certificates/{serial}"), None)
            .await
    }

    /// Sends raw bytes to `path` and returns the status and body. For tests of hostile input.
    ///
    /// # Errors
    /// [`ClientError`] for transport failures (not for non-2xx statuses).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        tokio::time::timeout(CALL_TIMEOUT, self.exchange(method, path, body))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.raw(method, path, body.unwrap_or_default()).await?;
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => (body.error.code, body.error.message),
                Err(_) => (
                    "unknown".to_owned(),
                    String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                ),
            };
            return Err(ClientError::Refused {
                status: status.as_u16(),
                code,
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let tcp = TcpStream::connect(&self.authority).await?;
        tcp.set_nodelay(true)?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        match &self.tls {
            None => send(TokioIo::new(tcp), request).await,
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await?;
                send(TokioIo::new(tls), request).await
            }
        }
    }
}

async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), ClientError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| ClientError::BadResponse(format!("reading the body: {e}")))?
        .to_bytes();
    drop(sender);
    driver.abort();
    Ok((status, body))
}
