//! Issuance under concurrency: one certificate per nonce, one live instance per computation,
//! and 200 attestations at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use covenant_attestation_service::ClientError;
use covenant_attestation_service::service::unix_ms;

use crate::support::{Harness, POLICY, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_submissions_of_one_nonce_get_exactly_one_certificate() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        const ROUNDS: usize = 20;
        for round in 0..ROUNDS {
            let nonce = h.nonce().await;
            // Two different runtimes' requests (different keys) racing for the same nonce; a
            // computation per round, so that only the nonce decides.
            let computation = format!("computation-{round}");
            let (_, first) = h.request_for(nonce, &computation);
            let (_, second) = h.request_for(nonce, &computation);
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
    for i in 0..N {
        let h = h.clone();
        tasks.spawn(async move {
            let nonce = h.client.nonce().await?.nonce;
            let (key, request) = h.request_for(nonce, &format!("computation-{i}"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attestations_of_one_computation_get_exactly_one_certificate() {
    for backend in backends() {
        let h = Arc::new(Harness::start(backend).await);
        const ROUNDS: usize = 10;
        const RACERS: usize = 6;
        for round in 0..ROUNDS {
            // Several runtimes (each with its own nonce and key) for one computation at once:
            // the forking host's race.
            let computation = format!("forked-{round}");
            let mut requests = Vec::new();
            for _ in 0..RACERS {
                requests.push(h.request_for(h.nonce().await, &computation).1);
            }
            let mut tasks = tokio::task::JoinSet::new();
            for request in requests {
                let h = h.clone();
                tasks.spawn(async move { h.client.attest(&request).await });
            }
            let mut won = Vec::new();
            let mut lost = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                match joined.unwrap() {
                    Ok(response) => won.push(response.serial),
                    Err(e) => lost.push(e),
                }
            }
            assert_eq!(won.len(), 1, "{backend} round {round}: {won:?} {lost:?}");
            for error in &lost {
                assert!(
                    matches!(error, ClientError::Refused { status: 409, code, message }
                        if code == "instance-already-live" && message.contains(&won[0])),
                    "{backend}: {error}"
                );
            }
            let now = unix_ms(time::OffsetDateTime::now_utc());
            let live = h
                .db()
                .live_instance(&computation, &POLICY.to_hex(), now)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(live.serial, won[0], "{backend}");
        }
        let counts = h.counts().await;
        assert_eq!(counts.certificates, ROUNDS as i64, "{backend}");
        assert_eq!(counts.used_nonces, (ROUNDS * RACERS) as i64, "{backend}");
        let audit = h.db().audit_log(10_000).await.unwrap();
        let refused = audit
            .iter()
            .filter(|e| e.action == "attest" && e.code == "instance-already-live")
            .count();
        assert_eq!(refused, ROUNDS * (RACERS - 1), "{backend}");
        Arc::into_inner(h).unwrap().stop().await;
    }
}
