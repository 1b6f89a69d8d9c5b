//! Issuance under concurrency: one certificate per nonce, and 200 attestations at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use covenant_attestation_service::ClientError;

use crate::support::{Harness, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_submissions_of_one_nonce_get_exactly_one_certificate() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        const ROUNDS: usize = 20;
        for _ in 0..ROUNDS {
            let nonce = h.nonce().await;
            // Two different runtimes' requests (different keys) racing for the same nonce.
            let (_, first) = h.request(nonce);
            let (_, second) = h.request(nonce);
            let (a, b) = tokio::join!(h.client.attest(&first), h.client.attest(&second));
            let results = [a, b];
            let won = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(won, 1, "{backend}: {results:?}");
            let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
            assert!(
                matches!(lost, ClientError::Refused { status: 409, code, .. } if code == "nonce-already-used"),
                "{backend}: {lost}"
            );
        }
        let counts = h.counts().await;
        assert_eq!(counts.certificates, ROUNDS as i64, "{backend}");
        assert_eq!(counts.used_nonces, ROUNDS as i64, "{backend}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_attestations_all_succeed_on_sqlite() {
    const N: usize = 200;
    let h = Arc::new(Harness::start("sqlite").await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        let h = h.clone();
        tasks.spawn(async move {
            let nonce = h.client.nonce().await?.nonce;
            let (key, request) = h.request(nonce);
            let response = h.client.attest(&request).await?;
            covenant_attest::wire::accept_attestation_response(&key, &response).unwrap();
            Ok::<_, ClientError>(response.serial)
        });
    }
    let mut serials = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        serials.insert(joined.unwrap().unwrap());
    }
    assert_eq!(serials.len(), N);

    // The database agrees: one used nonce and one certificate per attestation, every request
    // audited, every issuance audited with its serial.
    let counts = h.counts().await;
    assert_eq!(counts.nonces, N as i64);
    assert_eq!(counts.used_nonces, N as i64);
    assert_eq!(counts.certificates, N as i64);
    let setup = 3; // init, enroll-platform, allow-measurement
    assert_eq!(counts.audit_entries, (setup + 2 * N) as i64);
    let audit = h.db().audit_log(10_000).await.unwrap();
    let issued: BTreeSet<String> = audit
        .iter()
        .filter(|e| e.action == "attest" && e.outcome == "ok")
        .filter_map(|e| e.serial.clone())
        .collect();
    assert_eq!(issued, serials);
    assert!(audit.iter().all(|e| e.outcome == "ok"));
    for serial in serials.iter().take(5) {
        assert!(h.db().certificate(serial).await.unwrap().is_some());
    }
    Arc::into_inner(h).unwrap().stop().await;
}
