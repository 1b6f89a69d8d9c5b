//! Hostile input (issue 5, section 3): each is refused with a clear code and message, leaves an
//! audit entry saying so, and issues nothing.

use base64::Engine as _;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::extensions::{OID_COMPUTATION_ID, OID_POLICY_HASH};
use covenant_attest::pem::to_pem;
use covenant_attest::software::SoftwarePlatform;
use covenant_attest::wire::{AttestationRequest, ErrorBody, prepare_attestation};
use covenant_attest::{Digest, Measurement, Nonce, PlatformKind, RuntimeCsrRequest};
use covenant_attestation_service::admin::{self, RevocationTarget};
use covenant_attestation_service::http::MAX_ATTESTATION_BODY_BYTES;
use covenant_attestation_service::service::unix_ms;
use hyper::Method;

use crate::support::{COMPUTATION, Harness, MEASUREMENT, POLICY, backends, identity};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Sends `body` to `POST /v1/attestations` and checks the refusal, its audit entry, and that no
/// certificate was issued. Returns the message.
async fn assert_refused(h: &Harness, body: Vec<u8>, status: u16, code: &str) -> String {
    let before = h.counts().await;
    let (got_status, bytes) = h
        .client
        .raw(Method::POST, "/v1/attestations", body)
        .await
        .unwrap();
    let error: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{}: body {:?}: {e}",
            h.backend,
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        (got_status.as_u16(), error.error.code.as_str()),
        (status, code),
        "{}: {}",
        h.backend,
        error.error.message
    );
    assert!(!error.error.message.is_empty());
    let audit = h.last_audit().await;
    assert_eq!(
        (
            audit.action.as_str(),
            audit.outcome.as_str(),
            audit.code.as_str()
        ),
        ("attest", "refused", code),
        "{}",
        h.backend
    );
    assert_eq!(audit.detail, error.error.message);
    let after = h.counts().await;
    assert_eq!(
        after.certificates, before.certificates,
        "{}: a certificate was issued",
        h.backend
    );
    assert_eq!(after.audit_entries, before.audit_entries + 1);
    error.error.message
}

fn json(request: &AttestationRequest) -> Vec<u8> {
    serde_json::to_vec(request).unwrap()
}

/// The software evidence of a request the software platform made.
fn software(evidence: &mut covenant_attest::PlatformEvidence) -> &mut covenant_attest::Evidence {
    match evidence {
        covenant_attest::PlatformEvidence::Software(evidence) => evidence,
        covenant_attest::PlatformEvidence::Hardware(_) => panic!("software evidence expected"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signature() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, mut request) = h.request(h.nonce().await);
        let evidence = software(&mut request.evidence);
        let mut signature = B64.decode(&evidence.signature).unwrap();
        let i = signature.len() - 3;
        signature[i] ^= 0x40;
        evidence.signature = B64.encode(signature);
        let message = assert_refused(&h, json(&request), 403, "evidence-bad-signature").await;
        assert!(message.contains("signature"), "{message}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_platform() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (cert, key) = identity("stranger");
        let stranger = SoftwarePlatform::new(cert.as_bytes(), key.as_bytes(), MEASUREMENT).unwrap();
        let (_, request) =
            prepare_attestation(&stranger, POLICY, COMPUTATION, &[], h.nonce().await).unwrap();
        let message = assert_refused(&h, json(&request), 403, "unknown-platform").await;
        assert!(message.contains(&stranger.key_id().to_hex()), "{message}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_platform() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        admin::revoke(
            h.db(),
            &RevocationTarget::Platform("host-1".into()),
            "key leaked",
        )
        .await
        .unwrap();
        let (_, request) = h.request(h.nonce().await);
        let message = assert_refused(&h, json(&request), 403, "platform-revoked").await;
        assert!(message.contains("host-1"), "{message}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measurement_not_allowed() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (cert, key) = identity("host-2");
        admin::enroll_platform(h.db(), "host-2", PlatformKind::Software, cert.as_bytes())
            .await
            .unwrap();
        let other = Measurement::sha256([0x44; 32]);
        let platform = SoftwarePlatform::new(cert.as_bytes(), key.as_bytes(), other).unwrap();
        let (_, request) =
            prepare_attestation(&platform, POLICY, COMPUTATION, &[], h.nonce().await).unwrap();
        let message = assert_refused(&h, json(&request), 403, "measurement-not-allowed").await;
        assert!(
            message.contains(&other.to_hex()) && message.contains("host-2"),
            "{message}"
        );
        // A measurement allowed on another platform is not allowed on this one either; revoking
        // it on its own platform refuses it there too.
        admin::revoke(
            h.db(),
            &RevocationTarget::Measurement {
                platform: "host-1".into(),
                measurement: MEASUREMENT.to_hex(),
            },
            "rebuilt",
        )
        .await
        .unwrap();
        let (_, request) = h.request(h.nonce().await);
        assert_refused(&h, json(&request), 403, "measurement-not-allowed").await;
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_nonce() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, request) = h.request(h.nonce().await);
        h.client.attest(&request).await.unwrap();
        assert_refused(&h, json(&request), 409, "nonce-already-used").await;
        // Fresh evidence (new key) for the same used nonce is refused the same way.
        let (_, again) = h.request(request.evidence_nonce());
        assert_refused(&h, json(&again), 409, "nonce-already-used").await;
        assert_eq!(h.counts().await.certificates, 1);
        h.stop().await;
    }
}

trait EvidenceNonce {
    fn evidence_nonce(&self) -> Nonce;
}

impl EvidenceNonce for AttestationRequest {
    fn evidence_nonce(&self) -> Nonce {
        let covenant_attest::PlatformEvidence::Software(evidence) = &self.evidence else {
            panic!("software evidence expected");
        };
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(&evidence.claims).unwrap()).unwrap();
        claims["nonce"].as_str().unwrap().parse().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_unknown_nonces() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let nonce = Nonce::random().unwrap();
        let now = unix_ms(time::OffsetDateTime::now_utc());
        h.db()
            .insert_nonce(&nonce.to_hex(), now - 10 * 60_000, now - 5 * 60_000)
            .await
            .unwrap();
        let (_, request) = h.request(nonce);
        assert_refused(&h, json(&request), 403, "nonce-expired").await;
        let (_, request) = h.request(Nonce::random().unwrap());
        assert_refused(&h, json(&request), 403, "unknown-nonce").await;
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_issued_with_zero_lifetime_is_expired() {
    let config = covenant_attestation_service::ServiceConfig {
        nonce_lifetime: std::time::Duration::ZERO,
        ..Default::default()
    };
    let h = Harness::start_with("sqlite", config, false).await;
    let (_, request) = h.request(h.nonce().await);
    assert_refused(&h, json(&request), 403, "nonce-expired").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_binding_a_different_tls_key_than_the_csr() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, mut request) = h.request(h.nonce().await);
        let other_key = generate_tls_key().unwrap();
        let csr = RuntimeCsrRequest {
            policy_hash: POLICY,
            computation_id: COMPUTATION.into(),
            dns_names: vec![],
        }
        .build(&other_key)
        .unwrap();
        request.csr = to_pem("CERTIFICATE REQUEST", &csr);
        assert_refused(&h, json(&request), 400, "tls-key-mismatch").await;
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_hash_in_evidence_differs_from_the_csr() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (key, mut request) = h.request(h.nonce().await);
        let csr = RuntimeCsrRequest {
            policy_hash: Digest([0x66; 32]),
            computation_id: COMPUTATION.into(),
            dns_names: vec![],
        }
        .build(&key)
        .unwrap();
        request.csr = to_pem("CERTIFICATE REQUEST", &csr);
        let message = assert_refused(&h, json(&request), 400, "policy-hash-mismatch").await;
        assert!(
            message.contains(&POLICY.to_hex()) && message.contains(&"66".repeat(32)),
            "{message}"
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_oversized_bodies() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        assert_refused(
            &h,
            b"\x00\xff\xfegarbage".to_vec(),
            400,
            "malformed-request",
        )
        .await;
        assert_refused(&h, Vec::new(), 400, "malformed-request").await;
        let (_, request) = h.request(h.nonce().await);
        let whole = json(&request);
        assert_refused(
            &h,
            whole[..whole.len() / 2].to_vec(),
            400,
            "malformed-request",
        )
        .await;
        let mut with_extra: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        with_extra["extra"] = serde_json::json!(1);
        assert_refused(
            &h,
            serde_json::to_vec(&with_extra).unwrap(),
            400,
            "malformed-request",
        )
        .await;
        let mut oversized = whole.clone();
        oversized.resize(MAX_ATTESTATION_BODY_BYTES + 1, b' ');
        let message = assert_refused(&h, oversized, 413, "body-too-large").await;
        assert!(
            message.contains(&MAX_ATTESTATION_BODY_BYTES.to_string()),
            "{message}"
        );
        // The well-formed request was never processed, so its nonce still works.
        h.client.attest(&request).await.unwrap();
        // And the nonce endpoint takes no body.
        let (status, _) = h
            .client
            .raw(Method::POST, "/v1/nonces", vec![b'x'; 4096])
            .await
            .unwrap();
        assert_eq!(status, 413);
        assert_eq!(h.last_audit().await.code, "body-too-large");
        h.stop().await;
    }
}

fn der_octet_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csr_with_extensions_the_service_does_not_expect() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (key, mut request) = h.request(h.nonce().await);
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut id = vec![0x0c, COMPUTATION.len() as u8];
        id.extend_from_slice(COMPUTATION.as_bytes());
        params.custom_extensions = vec![
            rcgen::CustomExtension::from_oid_content(&OID_POLICY_HASH, der_octet_string(&POLICY.0)),
            rcgen::CustomExtension::from_oid_content(&OID_COMPUTATION_ID, id),
            rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 24],
                der_octet_string(b"x"),
            ),
        ];
        let csr = params.serialize_request(&key).unwrap();
        request.csr = csr.pem().unwrap();
        let message = assert_refused(&h, json(&request), 400, "csr-unexpected-extension").await;
        assert!(message.contains("1.3.6.1.5.5.7.1.24"), "{message}");
        // A CSR that is not a CSR at all.
        let (_, mut request) = h.request(h.nonce().await);
        request.csr =
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into();
        assert_refused(&h, json(&request), 400, "csr-refused").await;
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_claiming_a_hardware_platform_from_a_software_platform_key() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let (_, mut request) = h.request(h.nonce().await);
        software(&mut request.evidence).platform = PlatformKind::Sgx;
        assert_refused(&h, json(&request), 403, "evidence-refused").await;
        h.stop().await;
    }
}
