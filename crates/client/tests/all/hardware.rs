//! The whole flow on hardware, for each platform Covenant can make test evidence of: the
//! attestation service's nonce → SEV-SNP, Nitro, TDX or SGX evidence in its exact format
//! carrying the runtime's report data, signed under test roots (the service is given them; the
//! production verifier code runs unchanged) → the attested certificate with the hardware claims
//! → each principal's TLS handshake, which checks them against the policy → a computation and
//! its receipt.

use std::net::SocketAddr;
use std::sync::Arc;

use covenant_attest::hardware::HardwareRequirements;
use covenant_attest::testing::TestHardware;
use covenant_attest::wire::{accept_attestation_response, prepare_attestation};
use covenant_attest::{Digest, Measurement, Platform as _, PlatformKind};
use covenant_attestation_service::{
    AttestationClient, AttestationService, ServiceConfig, ServiceDir, admin,
};
use covenant_client::{Client, ClientError, NoProgress, RunResult};
use covenant_policy::{Appraisal, Policy, Strategy, ValidPolicy};
use covenant_runtime::api::{ApiServer, ServerIdentity};
use covenant_runtime::{Computation, ReceiptSigner, verify_receipt};
use covenant_test_support::hardware::{TEST_HARDWARE_KINDS, TestPlatform, hardware_measurement};

use crate::support::{A_CSV, B_CSV, Credentials, credentials, listen, sum_inputs, validate};

/// A running attestation service on loopback with test roots and one hardware platform of
/// `kind` enrolled under `rules`, `measurement` allowed.
struct RunningService {
    service: Arc<AttestationService>,
    client: AttestationClient,
    _dir: tempfile::TempDir,
}

async fn service(
    hardware: &TestHardware,
    kind: PlatformKind,
    measurement: Measurement,
    rules: &HardwareRequirements,
) -> RunningService {
    let dir = tempfile::tempdir().unwrap();
    let (ca, db) = ServiceDir::new(dir.path().join("service"))
        .init(None)
        .await
        .unwrap();
    admin::enroll_hardware_platform(&db, "hw-1", kind, rules)
        .await
        .unwrap();
    admin::allow_measurement(&db, "hw-1", &measurement.to_hex())
        .await
        .unwrap();
    let ca_der = ca.certificate_der().to_vec();
    let service = Arc::new(
        AttestationService::new(db, ca, ServiceConfig::default())
            .with_trust_anchors(hardware.anchors()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(covenant_attestation_service::serve(
        listener,
        Arc::clone(&service),
        None,
        std::future::pending(),
    ));
    let client = AttestationClient::new(&url, Some(&ca_der)).unwrap();
    RunningService {
        service,
        client,
        _dir: dir,
    }
}

/// The sum_inputs policy attested by `service`, accepting only `kind` with `measurement`.
fn policy(
    service: &RunningService,
    kind: PlatformKind,
    measurement: Measurement,
    principals: [&Credentials; 3],
) -> Policy {
    let mut policy = covenant_test_support::sum_inputs_policy(
        service.service.ca(),
        &sum_inputs(),
        Strategy::Interpreter,
    );
    policy.computation = "hardware-study".into();
    for (p, c) in policy.principals.iter_mut().zip(principals) {
        p.certificate = c.pem.clone();
    }
    policy.attestation.measurements =
        [(kind.as_str().to_owned(), vec![measurement.to_hex()])].into();
    policy
}

/// A runtime for `policy` on `platform`, attested by `service` through its HTTP API, served on
/// loopback.
async fn attested_runtime(
    service: &RunningService,
    platform: &TestPlatform,
    policy: &ValidPolicy,
) -> Result<SocketAddr, covenant_attestation_service::ClientError> {
    let computation = policy.policy().computation.clone();
    let nonce = service.client.nonce().await?.nonce;
    let (key, request) = prepare_attestation(
        platform,
        Digest(*policy.hash().as_bytes()),
        &computation,
        std::slice::from_ref(&computation),
        nonce,
    )
    .unwrap();
    let response = service.client.attest(&request).await?;
    let chain: Vec<Vec<u8>> = accept_attestation_response(&key, &response)
        .unwrap()
        .iter()
        .map(|c| c.to_vec())
        .collect();
    let key_der = key.serialize_der();
    let signer = ReceiptSigner::new(&key_der, chain.clone()).unwrap();
    let computation = Computation::new(policy.clone(), signer).unwrap();
    let server = ApiServer::new(computation, &ServerIdentity::new(key_der, chain)).unwrap();
    Ok(listen(server).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_computation_runs_on_attested_hardware_and_its_receipt_names_the_hardware() {
    let hardware = Arc::new(TestHardware::new());
    for kind in TEST_HARDWARE_KINDS {
        let measurement = hardware_measurement(kind);
        let service = service(
            &hardware,
            kind,
            measurement,
            &HardwareRequirements::default(),
        )
        .await;
        let (alice, bob, carol) = (
            credentials("alice"),
            credentials("bob"),
            credentials("carol"),
        );
        let policy = validate(&policy(&service, kind, measurement, [&alice, &bob, &carol]));
        let platform = TestPlatform::new(Arc::clone(&hardware), kind);
        let addr = attested_runtime(&service, &platform, &policy)
            .await
            .unwrap()
            .to_string();
        // Each principal's handshake checks the certificate: platform, measurement, hardware
        // claims against the policy (strict by default), policy hash, computation.
        let mut alice_client = Client::connect(&policy, &alice.identity, &addr)
            .await
            .unwrap();
        let mut bob_client = Client::connect(&policy, &bob.identity, &addr)
            .await
            .unwrap();
        let mut carol_client = Client::connect(&policy, &carol.identity, &addr)
            .await
            .unwrap();
        alice_client
            .provide_program(sum_inputs(), &mut NoProgress)
            .await
            .unwrap();
        alice_client
            .provide_input("/input/a.csv", A_CSV.to_vec(), &mut NoProgress)
            .await
            .unwrap();
        bob_client
            .provide_input("/input/b.csv", B_CSV.to_vec(), &mut NoProgress)
            .await
            .unwrap();
        let RunResult::Finished { receipt, .. } = alice_client.run(true).await.unwrap() else {
            panic!("the run should finish");
        };
        let mut result = Vec::new();
        carol_client
            .fetch("/output/result.txt", &mut result, &mut NoProgress)
            .await
            .unwrap();
        assert_eq!(String::from_utf8(result).unwrap().trim(), "40", "{kind}");
        let verified = verify_receipt(&receipt, &policy).unwrap();
        assert_eq!(verified.runtime.platform, kind);
        assert_eq!(verified.runtime.measurement, measurement);
        let claims = verified
            .runtime
            .hardware
            .expect("hardware claims in the certificate");
        assert!(!claims.debug);
        if matches!(kind, PlatformKind::Tdx | PlatformKind::Sgx) {
            assert_eq!(claims.tcb_status.as_deref(), Some("up-to-date"), "{kind}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_refuses_debuggable_hardware_unless_the_policy_allows_it() {
    let hardware = Arc::new(TestHardware::new());
    for kind in TEST_HARDWARE_KINDS {
        // Hardware that lets its host debug the runtime: SEV-SNP guest policy DEBUG, a Nitro
        // enclave in debug mode (whose PCRs, so its measurement, are all zero), TDX
        // TD_ATTRIBUTES.DEBUG, SGX ATTRIBUTES.DEBUG.
        let mut debug = TestPlatform::new(Arc::clone(&hardware), kind);
        debug.debug = true;
        let measurement = debug.measurement();
        // A lenient service: it issues certificates to debuggable runtimes (saying so).
        let lenient = HardwareRequirements {
            allow_debug: true,
            ..HardwareRequirements::default()
        };
        let service = service(&hardware, kind, measurement, &lenient).await;
        let (alice, bob, carol) = (
            credentials("alice"),
            credentials("bob"),
            credentials("carol"),
        );

        // The parties' policy does not allow debugging: no principal connects.
        let strict = validate(&policy(&service, kind, measurement, [&alice, &bob, &carol]));
        let addr = attested_runtime(&service, &debug, &strict)
            .await
            .unwrap()
            .to_string();
        match Client::connect(&strict, &alice.identity, &addr).await {
            Err(ClientError::Attestation { reason, .. }) => {
                assert!(reason.to_string().contains("debugging"), "{kind}: {reason}");
            }
            other => panic!(
                "{kind}: expected an attestation refusal, got {:?}",
                other.err()
            ),
        }

        // A policy that allows it (for development) connects.
        let mut allowing = policy(&service, kind, measurement, [&alice, &bob, &carol]);
        allowing.computation = "hardware-study-debug".into();
        allowing.attestation.appraisal.insert(
            kind.as_str().into(),
            Appraisal {
                allow_debug: true,
                ..Appraisal::default()
            },
        );
        let allowing = validate(&allowing);
        let addr = attested_runtime(&service, &debug, &allowing)
            .await
            .unwrap()
            .to_string();
        let client = Client::connect(&allowing, &alice.identity, &addr)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        drop(client);
    }
}
