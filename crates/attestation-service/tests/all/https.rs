//! The API over HTTPS with a certificate from the service's own CA.

use covenant_attestation_service::{AttestationClient, ClientError, ServiceConfig};

use crate::support::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_works_over_https_and_a_client_trusting_another_ca_is_refused() {
    let h = Harness::start_with("sqlite", ServiceConfig::default(), true).await;
    let (_, request) = h.request(h.nonce().await);
    let response = h.client.attest(&request).await.unwrap();
    assert_eq!(response.certificate_chain.len(), 2);

    let url = format!("{:?}", h.client);
    assert!(url.contains("https: true"), "{url}");
    let port = url
        .split("localhost:")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let other =
        covenant_attest::CertificateAuthority::generate("other", time::OffsetDateTime::now_utc())
            .unwrap();
    let stranger = AttestationClient::new(
        &format!("https://localhost:{port}"),
        Some(other.certificate_der()),
    )
    .unwrap();
    let error = stranger.nonce().await.unwrap_err();
    assert!(matches!(error, ClientError::Io(_)), "{error}");
    assert!(AttestationClient::new(&format!("https://localhost:{port}"), None).is_err());
    h.stop().await;
}
