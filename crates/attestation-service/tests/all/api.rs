//! The API's happy paths, on each database.

use std::collections::{BTreeMap, BTreeSet};

use covenant_attest::wire::{CertificateState, accept_attestation_response};
use covenant_attest::{ExpectedRuntime, PlatformKind, verify_attested_certificate};
use covenant_attestation_service::ClientError;
use hyper::Method;

use crate::support::{COMPUTATION, Harness, MEASUREMENT, POLICY, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_is_attested_and_its_certificate_satisfies_a_client() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let nonce = h.nonce().await;
        let (key, request) = h.request(nonce);
        let response = h.client.attest(&request).await.unwrap();
        let chain = accept_attestation_response(&key, &response).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1], *h.service.ca().certificate_der());

        let expected = ExpectedRuntime {
            ca_certificate_der: h.service.ca().certificate_der().to_vec(),
            accepted_measurements: BTreeMap::from([(
                PlatformKind::Software,
                BTreeSet::from([MEASUREMENT]),
            )]),
            hardware_requirements: BTreeMap::new(),
            policy_hash: POLICY,
            computation_id: COMPUTATION.into(),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = verify_attested_certificate(&expected, &chain[0], now).unwrap();
        assert_eq!(claims.measurement, MEASUREMENT);

        let status = h.client.certificate_status(&response.serial).await.unwrap();
        assert_eq!(status.status, CertificateState::Valid, "{backend}");
        assert_eq!(status.policy_hash, POLICY.to_hex());
        assert_eq!(status.computation_id, COMPUTATION);

        let audit = h.db().audit_log(10).await.unwrap();
        let actions: Vec<_> = audit
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("init", "ok"),
                ("enroll-platform", "ok"),
                ("allow-measurement", "ok"),
                ("nonce", "ok"),
                ("attest", "ok"),
                ("certificate-status", "ok")
            ],
            "{backend}"
        );
        assert_eq!(audit[4].serial.as_deref(), Some(response.serial.as_str()));
        assert!(
            audit[4].detail.contains(&MEASUREMENT.to_hex()),
            "{}",
            audit[4].detail
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_serials_and_paths_are_404_and_audited() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let error = h.client.certificate_status("abcdef").await.unwrap_err();
        assert!(
            matches!(&error, ClientError::Refused { status: 404, code, .. } if code == "unknown-certificate"),
            "{error}"
        );
        assert_eq!(h.last_audit().await.outcome, "refused");

        let (status, _) = h
            .client
            .raw(Method::GET, "/v1/certificates/not-hex!", Vec::new())
            .await
            .unwrap();
        assert_eq!(status, 404);

        let (status, body) = h
            .client
            .raw(Method::GET, "/admin/secrets", Vec::new())
            .await
            .unwrap();
        assert_eq!(status, 404);
        assert!(String::from_utf8_lossy(&body).contains("not-found"));
        let last = h.last_audit().await;
        assert_eq!(
            (last.action.as_str(), last.outcome.as_str()),
            ("unknown-endpoint", "refused")
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_certificate_is_served_as_pem() {
    let h = Harness::start("sqlite").await;
    let (status, body) = h
        .client
        .raw(Method::GET, "/v1/ca-certificate", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, 200);
    let on_disk = std::fs::read(h.dir.path().join("service/ca.crt")).unwrap();
    assert_eq!(body.as_ref(), on_disk.as_slice());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_outstanding_nonces_is_a_503_and_audited_as_refused() {
    let config = covenant_attestation_service::ServiceConfig {
        max_outstanding_nonces: 2,
        ..Default::default()
    };
    let h = Harness::start_with("sqlite", config, false).await;
    h.nonce().await;
    h.nonce().await;
    let error = h.client.nonce().await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Refused { status: 503, code, .. } if code == "too-many-nonces"),
        "{error}"
    );
    let last = h.last_audit().await;
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("nonce", "refused")
    );
    assert_eq!(h.counts().await.nonces, 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_is_a_generic_500_that_leaks_nothing() {
    let h = Harness::start("sqlite").await;
    // The database goes away under the service.
    h.db().close().await;
    let error = h.client.nonce().await.unwrap_err();
    let ClientError::Refused {
        status,
        code,
        message,
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!((*status, code.as_str()), (500, "internal"));
    assert!(message.contains("service's log"), "{message}");
    assert!(
        !message.to_lowercase().contains("pool") && !message.contains("sqlite"),
        "{message}"
    );
    h.stop().await;
}
