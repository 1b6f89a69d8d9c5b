//! Administration: enrolment, reference values and revocation, each audited.

use covenant_attest::PlatformKind;
use covenant_attest::wire::CertificateState;
use covenant_attestation_service::ServiceError;
use covenant_attestation_service::admin::{self, RevocationTarget};

use crate::support::{Harness, MEASUREMENT, backends, identity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_certificate_a_measurement_or_a_platform_shows_in_status() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let mut serials = Vec::new();
        for i in 0..3 {
            // Three computations: the service certifies one live instance per computation.
            let (_, request) = h.request_for(h.nonce().await, &format!("computation-{i}"));
            serials.push(h.client.attest(&request).await.unwrap().serial);
        }
        admin::revoke(
            h.db(),
            &RevocationTarget::Certificate(serials[0].to_uppercase()),
            "test",
        )
        .await
        .unwrap();
        let status = h.client.certificate_status(&serials[0]).await.unwrap();
        assert_eq!(status.status, CertificateState::Revoked, "{backend}");
        assert_eq!(status.revocation_reason.as_deref(), Some("test"));
        assert_eq!(
            h.client
                .certificate_status(&serials[1])
                .await
                .unwrap()
                .status,
            CertificateState::Valid
        );

        let revoked = admin::revoke(
            h.db(),
            &RevocationTarget::Measurement {
                platform: "host-1".into(),
                measurement: MEASUREMENT.to_hex(),
            },
            "vulnerable build",
        )
        .await
        .unwrap();
        assert_eq!(revoked, 2, "{backend}");
        let status = h.client.certificate_status(&serials[2]).await.unwrap();
        assert_eq!(status.status, CertificateState::Revoked);
        assert!(
            status
                .revocation_reason
                .unwrap()
                .contains("vulnerable build")
        );

        // Revoking twice is refused, and audited as refused.
        let again = admin::revoke(
            h.db(),
            &RevocationTarget::Certificate(serials[0].clone()),
            "again",
        )
        .await;
        assert!(matches!(again, Err(ServiceError::InvalidInput(_))));
        let last = h.last_audit().await;
        assert_eq!(
            (last.action.as_str(), last.outcome.as_str()),
            ("revoke-certificate", "refused")
        );

        assert_eq!(
            admin::revoke(
                h.db(),
                &RevocationTarget::Platform("host-1".into()),
                "retired"
            )
            .await
            .unwrap(),
            0
        );
        assert!(
            h.db()
                .platform_by_name("host-1")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_refuses_duplicates_bad_names_and_unusable_certificates() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let pem = h.platform_certificate_pem.clone();
        // Same key under another name.
        let duplicate =
            admin::enroll_platform(h.db(), "host-9", PlatformKind::Software, pem.as_bytes()).await;
        assert!(
            matches!(duplicate, Err(ServiceError::InvalidInput(m)) if m.contains("already enrolled")),
            "{backend}"
        );
        let (other, _) = identity("x");
        // Same name, another key.
        assert!(
            admin::enroll_platform(h.db(), "host-1", PlatformKind::Software, other.as_bytes())
                .await
                .is_err()
        );
        assert!(
            admin::enroll_platform(
                h.db(),
                "bad name!",
                PlatformKind::Software,
                other.as_bytes()
            )
            .await
            .is_err()
        );
        assert!(
            admin::enroll_platform(h.db(), "host-3", PlatformKind::Sgx, other.as_bytes())
                .await
                .is_err()
        );
        assert!(
            admin::enroll_platform(h.db(), "host-3", PlatformKind::Software, b"not pem")
                .await
                .is_err()
        );
        let p384 = {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
            rcgen::CertificateParams::new(Vec::<String>::new())
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .pem()
        };
        let refused =
            admin::enroll_platform(h.db(), "host-3", PlatformKind::Software, p384.as_bytes()).await;
        assert!(matches!(refused, Err(ServiceError::InvalidInput(m)) if m.contains("P-256")));
        let last = h.last_audit().await;
        assert_eq!(
            (last.action.as_str(), last.outcome.as_str()),
            ("enroll-platform", "refused")
        );
        // Measurements: bad hex, unknown platform.
        assert!(
            admin::allow_measurement(h.db(), "host-1", "xyz")
                .await
                .is_err()
        );
        assert!(
            admin::allow_measurement(h.db(), "nobody", &MEASUREMENT.to_hex())
                .await
                .is_err()
        );
        assert!(
            !admin::allow_measurement(h.db(), "host-1", &MEASUREMENT.to_hex())
                .await
                .unwrap()
        );
        h.stop().await;
    }
}
