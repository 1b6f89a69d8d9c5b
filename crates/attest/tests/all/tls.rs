//! The verifier inside a real rustls TLS 1.3 handshake on loopback.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use covenant_attest::{AttestedCertificateError, AttestedServerVerifier, Digest, ExpectedRuntime};
use rustls::crypto::ring::default_provider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use time::OffsetDateTime;

use crate::support::{Fixture, POLICY};

/// Serves one connection with the given certificate and key, echoing what it reads.
fn serve_once(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (u16, std::thread::JoinHandle<()>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        let mut buffer = [0u8; 4];
        // A refused handshake ends here with an error; that is the client's business.
        if tls.read_exact(&mut buffer).is_ok() {
            let _ = tls.write_all(&buffer);
            let _ = tls.flush();
        }
    });
    (port, handle)
}

fn connect(port: u16, expected: ExpectedRuntime) -> Result<Vec<u8>, std::io::Error> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AttestedServerVerifier::new(expected)))
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("runtime.example").unwrap().to_owned();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(b"ping")?;
    tls.flush()?;
    let mut reply = vec![0u8; 4];
    tls.read_exact(&mut reply)?;
    Ok(reply)
}

fn runtime_server(fx: &Fixture) -> (u16, std::thread::JoinHandle<()>) {
    let (key, issued) = fx.issue(OffsetDateTime::now_utc(), Duration::from_secs(3600));
    let chain = vec![
        CertificateDer::from(issued.der),
        fx.ca.certificate_der().clone(),
    ];
    serve_once(
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

#[test]
fn a_client_completes_a_tls13_handshake_with_an_attested_runtime() {
    let fx = Fixture::new();
    let (port, server) = runtime_server(&fx);
    assert_eq!(connect(port, fx.expected()).unwrap(), b"ping");
    server.join().unwrap();
}

#[test]
fn a_client_expecting_another_policy_aborts_the_handshake_with_the_reason() {
    let fx = Fixture::new();
    let (port, server) = runtime_server(&fx);
    let mut expected = fx.expected();
    expected.policy_hash = Digest([0x55; 32]);
    let error = connect(port, expected).unwrap_err();
    let rustls_error = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap();
    let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = rustls_error
    else {
        panic!("unexpected error {rustls_error:?}");
    };
    let reason = other.0.downcast_ref::<AttestedCertificateError>().unwrap();
    assert_eq!(
        *reason,
        AttestedCertificateError::PolicyHashMismatch {
            expected: Digest([0x55; 32]),
            found: POLICY
        }
    );
    server.join().unwrap();
}
