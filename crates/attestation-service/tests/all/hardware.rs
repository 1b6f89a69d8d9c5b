//! Hardware attestation through the service, end to end, for every platform the test hardware
//! makes evidence for (SEV-SNP, Nitro, TDX, SGX): nonce → evidence in its exact format (signed
//! under test roots that only this service is given) → certificate with the hardware claims →
//! a client's check of it against a policy. And every refusal on the way: each names its
//! check, is audited, and issues nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use covenant_attest::hardware::HardwareRequirements;
use covenant_attest::testing::{TEST_SGX_MRSIGNER, TestHardware};
use covenant_attest::verify::AttestedCertificateError;
use covenant_attest::wire::{AttestationRequest, accept_attestation_response, prepare_attestation};
use covenant_attest::{
    ExpectedRuntime, Nonce, PlatformEvidence, PlatformKind, TrustAnchors,
    verify_attested_certificate,
};
use covenant_attestation_service::{ClientError, admin};
use covenant_test_support::hardware::{TEST_HARDWARE_KINDS, TestPlatform, hardware_measurement};

use crate::support::{Harness, POLICY, backends};

/// A service with test roots and one hardware platform of `kind` enrolled under `requirements`
/// with the test hardware's measurement for `kind` allowed ([`hardware_measurement`]).
async fn harness(
    backend: &'static str,
    hardware: &TestHardware,
    kind: PlatformKind,
    requirements: &HardwareRequirements,
) -> Harness {
    let h = Harness::start_with_anchors(backend, hardware.anchors()).await;
    let name = format!("{kind}-1");
    admin::enroll_hardware_platform(h.db(), &name, kind, requirements)
        .await
        .unwrap();
    admin::allow_measurement(h.db(), &name, &hardware_measurement(kind).to_hex())
        .await
        .unwrap();
    h
}

fn attestation_request(
    platform: &TestPlatform,
    nonce: Nonce,
    computation: &str,
) -> (rcgen::KeyPair, AttestationRequest) {
    prepare_attestation(platform, POLICY, computation, &[], nonce).unwrap()
}

fn expected(h: &Harness, kind: PlatformKind, computation: &str) -> ExpectedRuntime {
    ExpectedRuntime {
        ca_certificate_der: h.service.ca().certificate_der().to_vec(),
        accepted_measurements: BTreeMap::from([(
            kind,
            BTreeSet::from([hardware_measurement(kind)]),
        )]),
        hardware_requirements: BTreeMap::new(),
        policy_hash: POLICY,
        computation_id: computation.into(),
    }
}

/// The refusal's code, after checking it was a refusal.
fn refusal(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    match result {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardware_evidence_is_attested_and_the_certificate_carries_its_claims() {
    let hardware = Arc::new(TestHardware::new());
    for backend in backends() {
        for kind in TEST_HARDWARE_KINDS {
            let h = harness(backend, &hardware, kind, &HardwareRequirements::default()).await;
            let platform = TestPlatform::new(Arc::clone(&hardware), kind);
            let (key, request) = attestation_request(&platform, h.nonce().await, "c-1");
            let response = h.client.attest(&request).await.unwrap();
            let chain = accept_attestation_response(&key, &response).unwrap();
            let claims =
                verify_attested_certificate(&expected(&h, kind, "c-1"), &chain[0], now()).unwrap();
            assert_eq!(claims.platform, kind, "{backend}");
            assert_eq!(claims.measurement, hardware_measurement(kind));
            let hardware_claims = claims.hardware.expect("hardware claims");
            assert!(!hardware_claims.debug);
            match kind {
                // The test chip's reported TCB (see covenant_attest::testing).
                PlatformKind::SevSnp => assert!(
                    hardware_claims.tcb.starts_with("bl="),
                    "{hardware_claims:?}"
                ),
                // The test collateral's only TCB level.
                PlatformKind::Tdx | PlatformKind::Sgx => assert_eq!(
                    hardware_claims.tcb_status.as_deref(),
                    Some("up-to-date"),
                    "{kind}"
                ),
                _ => {}
            }
            // The enclave's signer, for an SGX policy to require.
            assert_eq!(
                hardware_claims.sgx_mrsigner,
                (kind == PlatformKind::Sgx).then(|| hex::encode(TEST_SGX_MRSIGNER)),
                "{kind}"
            );
            let audit = h.last_audit().await;
            assert_eq!(
                (audit.action.as_str(), audit.outcome.as_str()),
                ("attest", "ok")
            );
            assert!(
                audit.detail.contains("hardware: debug false"),
                "{}",
                audit.detail
            );
            assert!(
                audit.detail.contains("VERIFIED AGAINST TEST ROOTS"),
                "a service on test roots says so in every decision: {}",
                audit.detail
            );
            h.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pinned_roots_refuse_evidence_signed_under_test_roots() {
    let hardware = Arc::new(TestHardware::new());
    for kind in TEST_HARDWARE_KINDS {
        // A production service: pinned roots.
        let h = Harness::start_with_anchors("sqlite", TrustAnchors::pinned()).await;
        admin::enroll_hardware_platform(h.db(), "hw", kind, &HardwareRequirements::default())
            .await
            .unwrap();
        admin::allow_measurement(h.db(), "hw", &hardware_measurement(kind).to_hex())
            .await
            .unwrap();
        let platform = TestPlatform::new(Arc::clone(&hardware), kind);
        let before = h.counts().await;
        let (_, request) = attestation_request(&platform, h.nonce().await, "c-1");
        assert_eq!(
            refusal(h.client.attest(&request).await),
            "hardware-evidence-refused",
            "{kind}"
        );
        assert_eq!(h.counts().await.certificates, before.certificates);
        let audit = h.last_audit().await;
        assert_eq!(audit.outcome, "refused");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_binding_is_refused_whichever_value_the_host_changes() {
    let hardware = Arc::new(TestHardware::new());
    for kind in TEST_HARDWARE_KINDS {
        let h = harness("sqlite", &hardware, kind, &HardwareRequirements::default()).await;
        let platform = TestPlatform::new(Arc::clone(&hardware), kind);
        // The host changes each of the values the hardware bound, in the clear envelope.
        for change in 0..4 {
            let (_, mut request) = attestation_request(&platform, h.nonce().await, "c-1");
            let PlatformEvidence::Hardware(evidence) = &mut request.evidence else {
                panic!("hardware evidence expected");
            };
            match change {
                0 => evidence.policy_hash.0[0] ^= 1,
                1 => evidence.tls_public_key_sha256.0[0] ^= 1,
                // Another fresh nonce of the service's, in place of the one the hardware bound.
                2 => evidence.nonce = h.nonce().await,
                _ => evidence.computation_id.push('x'),
            }
            assert_eq!(
                refusal(h.client.attest(&request).await),
                "report-data-mismatch",
                "{kind}, change {change}"
            );
        }
        // Hardware that signed other report data (a report made for another request).
        let mut forged = platform.clone();
        forged.signed_report_data = Some([7; 64]);
        let (_, request) = attestation_request(&forged, h.nonce().await, "c-1");
        assert_eq!(
            refusal(h.client.attest(&request).await),
            "report-data-mismatch"
        );
        assert_eq!(h.counts().await.certificates, 0);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_hardware_is_refused_unless_both_the_service_and_the_client_allow_it() {
    let hardware = Arc::new(TestHardware::new());
    for kind in TEST_HARDWARE_KINDS {
        let mut debug = TestPlatform::new(Arc::clone(&hardware), kind);
        debug.debug = true;
        // The service's rules refuse it.
        let h = harness("sqlite", &hardware, kind, &HardwareRequirements::default()).await;
        let (_, request) = attestation_request(&debug, h.nonce().await, "c-1");
        let code = refusal(h.client.attest(&request).await);
        assert!(
            code == "hardware-evidence-refused" || code == "hardware-requirement-not-met",
            "{kind}: {code}"
        );
        h.stop().await;

        // A service that allows debugging issues a certificate saying so, and a client whose
        // policy does not allow it refuses the certificate.
        let allow = HardwareRequirements {
            allow_debug: true,
            ..HardwareRequirements::default()
        };
        let h = harness("sqlite", &hardware, kind, &allow).await;
        if kind == PlatformKind::Nitro {
            // A debug-mode Nitro document has all-zero PCRs: that is its measurement.
            admin::allow_measurement(h.db(), &format!("{kind}-1"), &"00".repeat(48))
                .await
                .unwrap();
        }
        let (key, request) = attestation_request(&debug, h.nonce().await, "c-1");
        let response = h.client.attest(&request).await.unwrap();
        let chain = accept_attestation_response(&key, &response).unwrap();
        let mut expected = expected(&h, kind, "c-1");
        expected.accepted_measurements.insert(
            kind,
            BTreeSet::from([covenant_attest::Platform::measurement(&debug)]),
        );
        let refused = verify_attested_certificate(&expected, &chain[0], now()).unwrap_err();
        assert!(
            matches!(refused, AttestedCertificateError::Requirement(_)),
            "{kind}: {refused}"
        );
        expected.hardware_requirements.insert(kind, allow.clone());
        let claims = verify_attested_certificate(&expected, &chain[0], now()).unwrap();
        assert!(claims.hardware.unwrap().debug);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endorsement_is_cached_and_evidence_without_one_uses_the_cache() {
    let hardware = Arc::new(TestHardware::new());
    // The platforms with an endorsement: SEV-SNP's VCEK (cached per chip and TCB), TDX's and
    // SGX's collateral (cached per TEE, FMSPC and PCE id).
    for kind in [PlatformKind::SevSnp, PlatformKind::Tdx, PlatformKind::Sgx] {
        let h = harness("sqlite", &hardware, kind, &HardwareRequirements::default()).await;
        let mut bare = TestPlatform::new(Arc::clone(&hardware), kind);
        bare.with_endorsement = false;
        // Nothing cached yet: the refusal says what is missing.
        let (_, request) = attestation_request(&bare, h.nonce().await, "c-1");
        assert_eq!(
            refusal(h.client.attest(&request).await),
            "endorsement-missing",
            "{kind}"
        );
        // Evidence with its endorsement verifies, and the endorsement is cached...
        let full = TestPlatform::new(Arc::clone(&hardware), kind);
        let (_, request) = attestation_request(&full, h.nonce().await, "c-1");
        h.client.attest(&request).await.unwrap();
        // ...so evidence from the same platform without it verifies too.
        let (_, request) = attestation_request(&bare, h.nonce().await, "c-2");
        h.client
            .attest(&request)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(h.counts().await.certificates, 2, "{kind}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_attestation_that_succeeds_caches_its_endorsement() {
    let hardware = Arc::new(TestHardware::new());
    for kind in [PlatformKind::SevSnp, PlatformKind::Tdx] {
        let h = harness("sqlite", &hardware, kind, &HardwareRequirements::default()).await;
        let full = TestPlatform::new(Arc::clone(&hardware), kind);
        let mut bare = full.clone();
        bare.with_endorsement = false;
        // Evidence whose endorsement verifies, but which fails a later check: a nonce the
        // service never issued, and a forged binding. Neither caches its endorsement.
        let (_, request) = attestation_request(&full, Nonce::random().unwrap(), "c-1");
        assert_eq!(
            refusal(h.client.attest(&request).await),
            "unknown-nonce",
            "{kind}"
        );
        let mut forged = full.clone();
        forged.signed_report_data = Some([9; 64]);
        let (_, request) = attestation_request(&forged, h.nonce().await, "c-1");
        assert_eq!(
            refusal(h.client.attest(&request).await),
            "report-data-mismatch",
            "{kind}"
        );
        let (_, request) = attestation_request(&bare, h.nonce().await, "c-1");
        assert_eq!(
            refusal(h.client.attest(&request).await),
            "endorsement-missing",
            "{kind}: a failed attestation left its endorsement in the cache"
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sev_snp_report_from_another_vmpl_than_0_is_refused() {
    let hardware = Arc::new(TestHardware::new());
    let h = harness(
        "sqlite",
        &hardware,
        PlatformKind::SevSnp,
        &HardwareRequirements::default(),
    )
    .await;
    let mut platform = TestPlatform::new(Arc::clone(&hardware), PlatformKind::SevSnp);
    platform.vmpl = 1;
    let (_, request) = attestation_request(&platform, h.nonce().await, "c-1");
    match h.client.attest(&request).await {
        Err(ClientError::Refused { code, message, .. }) => {
            assert_eq!(code, "hardware-evidence-refused");
            assert!(message.contains("VMPL"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    platform.vmpl = 0;
    let (_, request) = attestation_request(&platform, h.nonce().await, "c-1");
    h.client.attest(&request).await.unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_carrying_its_own_pck_chain_verifies_but_is_not_cached_for_others() {
    use base64::Engine as _;
    let engine = &base64::engine::general_purpose::STANDARD;
    let hardware = Arc::new(TestHardware::new());
    let h = harness(
        "sqlite",
        &hardware,
        PlatformKind::Tdx,
        &HardwareRequirements::default(),
    )
    .await;
    let full = TestPlatform::new(Arc::clone(&hardware), PlatformKind::Tdx);
    let (_, mut request) = attestation_request(&full, h.nonce().await, "c-1");
    let PlatformEvidence::Hardware(evidence) = &mut request.evidence else {
        panic!("hardware evidence expected");
    };
    // The collateral names the quote's own PCK chain: it verifies for this machine only.
    let mut collateral: serde_json::Value =
        serde_json::from_slice(&engine.decode(&evidence.endorsements[0]).unwrap()).unwrap();
    collateral["pck_certificate_chain"] = serde_json::Value::String(
        String::from_utf8(covenant_attest::testing::TEST_PCK_CHAIN_PEM.to_vec()).unwrap(),
    );
    evidence.endorsements = vec![engine.encode(collateral.to_string())];
    h.client.attest(&request).await.unwrap();
    // So it is not what the next host without collateral gets.
    let mut bare = full.clone();
    bare.with_endorsement = false;
    let (_, request) = attestation_request(&bare, h.nonce().await, "c-2");
    assert_eq!(
        refusal(h.client.attest(&request).await),
        "endorsement-missing"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardware_enrolment_refuses_what_cannot_apply_and_a_second_live_platform_per_kind() {
    let hardware = TestHardware::new();
    let h = Harness::start_with_anchors("sqlite", hardware.anchors()).await;
    let default = HardwareRequirements::default();
    // Not a hardware kind.
    for kind in [PlatformKind::Software, PlatformKind::TrustZone] {
        assert!(
            admin::enroll_hardware_platform(h.db(), "x", kind, &default)
                .await
                .is_err()
        );
    }
    // A software platform cannot be enrolled as hardware and the other way round.
    let (pem, _) = crate::support::identity("x");
    assert!(
        admin::enroll_platform(h.db(), "x", PlatformKind::SevSnp, pem.as_bytes())
            .await
            .is_err()
    );
    // Rules for another kind.
    let wrong = [
        (
            PlatformKind::Nitro,
            HardwareRequirements {
                allow_migration_agent: true,
                ..default.clone()
            },
        ),
        (
            PlatformKind::SevSnp,
            HardwareRequirements {
                accepted_tcb_statuses: BTreeSet::from(["out-of-date".to_owned()]),
                ..default.clone()
            },
        ),
        (
            PlatformKind::Tdx,
            HardwareRequirements {
                accepted_tcb_statuses: BTreeSet::from(["revoked".to_owned()]),
                ..default.clone()
            },
        ),
        (
            PlatformKind::Tdx,
            HardwareRequirements {
                sgx_isv_prod_id: Some(1),
                ..default.clone()
            },
        ),
        (
            PlatformKind::Sgx,
            HardwareRequirements {
                sgx_mrsigner: Some("AB".repeat(32)),
                ..default.clone()
            },
        ),
    ];
    for (kind, rules) in wrong {
        let refused = admin::enroll_hardware_platform(h.db(), "x", kind, &rules).await;
        assert!(refused.is_err(), "{kind} {rules:?}");
    }
    // One live platform per hardware kind; another after the first is revoked.
    admin::enroll_hardware_platform(h.db(), "snp-a", PlatformKind::SevSnp, &default)
        .await
        .unwrap();
    let second = admin::enroll_hardware_platform(h.db(), "snp-b", PlatformKind::SevSnp, &default)
        .await
        .unwrap_err();
    assert!(second.to_string().contains("revoke"), "{second}");
    // A measurement of the wrong length for the kind.
    assert!(
        admin::allow_measurement(h.db(), "snp-a", &"11".repeat(32))
            .await
            .is_err()
    );
    admin::revoke(
        h.db(),
        &admin::RevocationTarget::Platform("snp-a".into()),
        "retired",
    )
    .await
    .unwrap();
    admin::enroll_hardware_platform(h.db(), "snp-b", PlatformKind::SevSnp, &default)
        .await
        .unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardware_evidence_of_a_kind_not_enrolled_or_a_measurement_not_allowed_is_refused() {
    let hardware = Arc::new(TestHardware::new());
    let h = harness(
        "sqlite",
        &hardware,
        PlatformKind::SevSnp,
        &HardwareRequirements::default(),
    )
    .await;
    let nitro = TestPlatform::new(Arc::clone(&hardware), PlatformKind::Nitro);
    let (_, request) = attestation_request(&nitro, h.nonce().await, "c-1");
    assert_eq!(refusal(h.client.attest(&request).await), "unknown-platform");

    admin::enroll_hardware_platform(
        h.db(),
        "nitro-1",
        PlatformKind::Nitro,
        &HardwareRequirements::default(),
    )
    .await
    .unwrap();
    let (_, request) = attestation_request(&nitro, h.nonce().await, "c-1");
    assert_eq!(
        refusal(h.client.attest(&request).await),
        "measurement-not-allowed"
    );
    assert_eq!(h.counts().await.certificates, 0);
    h.stop().await;
}
