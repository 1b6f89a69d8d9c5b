//! Connecting: the runtime is verified before anything is sent, unknown certificates are
//! refused, and the failures a user meets (nothing listening, a dropped connection) are named.

use std::sync::Arc;

use covenant_attest::AttestedCertificateError;
use covenant_client::{AttestationFailure, Client, ClientError, NoProgress};
use covenant_runtime::api::{ConnectionError, PrincipalCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{self, Service, credentials, served, served_with, validate};

#[tokio::test]
async fn a_client_pinned_to_another_policy_refuses_the_server_before_sending_anything() {
    let s = served().await;
    // The server's verdicts on each connection, to see what reached it.
    let (verdicts_tx, mut verdicts) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = s.server.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (server, tx) = (server.clone(), verdicts_tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(server.serve_connection(socket).await);
            });
        }
    });
    let mut carol = s.connect(&s.carol).await;
    let before = carol.status().await.unwrap();

    // Alice holds a policy that differs in one bound: another hash.
    let mut other = s.policy.policy().clone();
    other.inputs[0].max_bytes += 1;
    let other = validate(&other);
    let err = Client::connect(&other, &s.alice.identity, &addr.to_string())
        .await
        .unwrap_err();
    match &err {
        ClientError::Attestation { host, reason } => {
            assert_eq!(host, &addr.to_string());
            assert!(
                matches!(
                    reason.attested_certificate_error(),
                    Some(AttestedCertificateError::PolicyHashMismatch { .. })
                ),
                "{reason:?}"
            );
        }
        other => panic!("expected an attestation failure, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("not the runtime this policy names"),
        "{message}"
    );
    assert!(message.contains("serves policy"), "{message}");
    assert!(message.contains(&other.hash().to_string()), "{message}");

    // The server saw a failed handshake (the client's alert), never a request...
    let verdict = tokio::time::timeout(std::time::Duration::from_secs(10), verdicts.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(verdict, Err(ConnectionError::Handshake(_))),
        "{verdict:?}"
    );
    // ... and nothing changed.
    assert_eq!(carol.status().await.unwrap(), before);
}

#[tokio::test]
async fn a_runtime_attested_by_another_ca_is_refused() {
    let s = served().await;
    let mut policy = s.policy.policy().clone();
    policy.attestation.ca_certificate = Service::new().ca.certificate_pem();
    let err = Client::connect(&validate(&policy), &s.alice.identity, &s.addr.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Attestation {
                reason: AttestationFailure::Certificate(
                    AttestedCertificateError::NotIssuedByCa { .. }
                ),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_certificate_the_policy_does_not_name_is_refused_before_connecting() {
    let s = served().await;
    let mallory = credentials("alice");
    let err = Client::connect(&s.policy, &mallory.identity, &s.addr.to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotAPrincipal), "{err:?}");
    assert!(
        err.to_string()
            .contains("not one of the policy's principals"),
        "{err}"
    );
}

#[tokio::test]
async fn a_runtime_that_does_not_know_our_certificate_refuses_it_in_the_handshake() {
    // A misdeployed runtime: attested for the policy alice holds, but enforcing one in which
    // alice's certificate is another's. The runtime's own check refuses her.
    let service = Service::new();
    let (alice, bob, carol) = (
        credentials("alice"),
        credentials("bob"),
        credentials("carol"),
    );
    let ours = validate(&support::policy(&service, [&alice, &bob, &carol]));
    let imposter = credentials("alice");
    let theirs = validate(&support::policy(&service, [&imposter, &bob, &carol]));
    let server = support::api_server(&service, &ours, &theirs);
    let addr = support::listen(server).await;

    let result = async {
        let mut client = Client::connect(&ours, &alice.identity, &addr.to_string()).await?;
        client.status().await
    }
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, ClientError::CertificateRefused { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("refused this client certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_naming_the_address() {
    let s = served().await;
    // A port that was free a moment ago.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = free.local_addr().unwrap().to_string();
    drop(free);
    let err = Client::connect(&s.policy, &s.alice.identity, &host)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Connect { host: h, .. } if *h == host),
        "{err:?}"
    );
    assert!(err.to_string().contains(&host), "{err}");
}

/// A TLS server with the runtime's attested identity that answers every request with the
/// start of `response` and then closes the connection.
async fn truncating_server(response: &'static [u8]) -> (support::Served, std::net::SocketAddr) {
    fake_runtime(response, false).await
}

/// A TLS server with the runtime's attested identity that answers the first request on each
/// connection with `response`; then, if `stale`, keeps the connection open and drops it
/// unanswered at the next request (a kept-alive connection that went stale), otherwise closes
/// it at once.
async fn fake_runtime(
    response: &'static [u8],
    stale: bool,
) -> (support::Served, std::net::SocketAddr) {
    let s = served().await;
    let service = Service::new();
    let mut policy = s.policy.policy().clone();
    policy.attestation.ca_certificate = service.ca.certificate_pem();
    let valid = validate(&policy);
    let (key, chain) = service.attested_key(&valid);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_client_cert_verifier(Arc::new(PrincipalCertVerifier::new(valid.clone())))
    .with_single_cert(
        chain.into_iter().map(CertificateDer::from).collect(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                // The request head (the requests used here have no body).
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(response).await;
                if stale {
                    let _ = tls.flush().await;
                    // The next request is read and the connection dropped without an answer.
                    let _ = tls.read(&mut buf).await;
                    return;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    let mut s = s;
    s.policy = valid;
    (s, addr)
}

#[tokio::test]
async fn a_server_that_closes_mid_answer_gives_a_disconnected_error() {
    let (s, addr) = truncating_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"computation\":",
    )
    .await;
    let mut client = Client::connect(&s.policy, &s.carol.identity, &addr.to_string())
        .await
        .unwrap();
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("connection") && message.contains(&addr.to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn a_download_cut_off_mid_body_is_an_error_not_a_short_file() {
    let (s, addr) = truncating_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncovenant-run: 1\r\ncovenant-commitment-salt: 0000000000000000000000000000000000000000000000000000000000000000\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    let mut client = Client::connect(&s.policy, &s.carol.identity, &addr.to_string())
        .await
        .unwrap();
    let mut out = Vec::new();
    let err = client
        .fetch("stdout", &mut out, &mut NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("download of stdout"), "{err}");
}

#[tokio::test]
async fn a_download_without_its_run_and_salt_is_a_protocol_error() {
    // The bytes alone cannot be checked against the receipt: the client refuses them.
    let (s, addr) = truncating_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    let mut client = Client::connect(&s.policy, &s.carol.identity, &addr.to_string())
        .await
        .unwrap();
    let mut out = Vec::new();
    let err = client
        .fetch("stdout", &mut out, &mut NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("salt"), "{err}");
    assert!(out.is_empty(), "nothing is written");
}

#[tokio::test]
async fn a_server_that_answers_garbage_is_a_protocol_error() {
    let (s, addr) = truncating_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\nnot api",
    )
    .await;
    let mut client = Client::connect(&s.policy, &s.carol.identity, &addr.to_string())
        .await
        .unwrap();
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn an_unusable_identity_is_named() {
    let err =
        covenant_client::Identity::from_pem(b"-----BEGIN CERTIFICATE-----\n", b"").unwrap_err();
    assert!(matches!(err, ClientError::Identity(_)), "{err:?}");
    let s = served_with(|_| {}).await;
    // alice's certificate with bob's key: refused locally by rustls or, at the latest, by
    // the runtime, which checks the handshake signature against alice's certificate.
    let mismatched =
        covenant_client::Identity::from_pem(s.alice.pem.as_bytes(), s.bob.key_pem.as_bytes())
            .unwrap();
    let result = async {
        let mut client = Client::connect(&s.policy, &mismatched, &s.addr.to_string()).await?;
        client.status().await
    }
    .await;
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Identity(_) | ClientError::CertificateRefused { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_runtime_that_misreports_a_stored_input_is_a_protocol_error() {
    let (s, addr) = truncating_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 109\r\n\r\n{\"path\":\"/input/a.csv\",\"bytes\":1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
    )
    .await;
    let mut client = Client::connect(&s.policy, &s.alice.identity, &addr.to_string())
        .await
        .unwrap();
    let err = client
        .provide_input("/input/a.csv", b"1".to_vec(), &mut NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn a_connection_closed_between_requests_is_reopened() {
    let status = r#"{"computation":"shared-patients","state":"ready","program_provided":true,"inputs":[],"runs_max":1,"runs":[],"rerun_consents":[],"close_agreed":[],"failure":null}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{status}",
        status.len()
    );
    let response: &'static [u8] = Box::leak(response.into_bytes().into_boxed_slice());
    // Closed after each answer; or kept open and dropped at the next request, unanswered.
    for stale in [false, true] {
        let (s, addr) = fake_runtime(response, stale).await;
        let mut client = Client::connect(&s.policy, &s.carol.identity, &addr.to_string())
            .await
            .unwrap();
        for _ in 0..3 {
            let status = client.status().await.unwrap();
            assert_eq!(status.state, covenant_client::State::Ready);
        }
        // A request that is not a GET is never sent twice: it may have been acted on.
        if stale {
            let err = client.close().await.unwrap_err();
            assert!(matches!(err, ClientError::Disconnected { .. }), "{err:?}");
        }
    }
}
