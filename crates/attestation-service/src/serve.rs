//! Serving the API over plain HTTP or HTTPS (TLS 1.3, with a server certificate the service's
//! own CA issues, so clients verify it with the same `ca.crt` the policy names).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use covenant_attest::CertificateAuthority;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::{AttestationService, ServiceError, http};

/// How long a client may take to complete a TLS handshake. Stops slow or silent clients from
/// holding a handshake slot forever.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most TLS handshakes in progress at once. Each costs a task and some memory; this bounds
/// what a flood of half-open connections can take.
pub const MAX_CONCURRENT_TLS_HANDSHAKES: usize = 256;

/// How long the service's own HTTPS certificate is valid: 30 days. It is made fresh at every
/// start, so a restart renews it.
pub const SERVER_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The default names on the service's HTTPS certificate.
pub const DEFAULT_TLS_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A rustls server configuration (TLS 1.3 only, ring provider) with a fresh P-256 key and a
/// certificate for `names` issued by `ca`.
///
/// # Errors
/// [`ServiceError::Internal`] if key generation or issuance fails (for example an invalid name).
pub fn tls_config(
    ca: &CertificateAuthority,
    names: &[String],
) -> Result<Arc<rustls::ServerConfig>, ServiceError> {
    use rcgen::PublicKeyData as _;
    let internal =
        |e: &dyn std::fmt::Display| ServiceError::Internal(format!("HTTPS certificate: {e}"));
    let key = covenant_attest::csr::generate_tls_key().map_err(|e| internal(&e))?;
    let issued = ca
        .issue_server_certificate(
            names,
            &key.subject_public_key_info(),
            OffsetDateTime::now_utc(),
            SERVER_CERTIFICATE_LIFETIME,
        )
        .map_err(|e| internal(&e))?;
    let chain = vec![
        CertificateDer::from(issued.der),
        ca.certificate_der().clone(),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| internal(&e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| internal(&e))?;
    Ok(Arc::new(config))
}

/// A listener whose connections are TLS streams. Handshakes run in their own tasks (at most
/// [`MAX_CONCURRENT_TLS_HANDSHAKES`], each within [`TLS_HANDSHAKE_TIMEOUT`]) so a slow client
/// never delays another's.
struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    fn new(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_TLS_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                // Stop accepting as soon as the server drops this listener (shutdown).
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = sender.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let handshake_sender = sender.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = handshake_sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local_addr, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task only ends when this listener is dropped; never reached while
            // serving, but wait forever rather than spin if it does.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// Serves `service` on `listener` until `shutdown` completes: plain HTTP if `tls` is `None`,
/// HTTPS otherwise (see [`tls_config`]).
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    service: Arc<AttestationService>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = http::router(service);
    match tls {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            let listener = TlsListener::new(listener, TlsAcceptor::from(config))?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
