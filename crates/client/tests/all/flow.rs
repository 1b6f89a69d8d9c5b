//! The whole computation through the client: three principals provision, run, fetch, verify
//! the receipt and close; refusals arrive as `ClientError::Refused` with their rule.

use covenant_client::{ClientError, NoProgress, RunResult, State, Upload};
use covenant_runtime::verify_receipt;

use crate::support::{A_CSV, B_CSV, served, sha256_hex, sum_inputs};

#[tokio::test]
async fn three_principals_provision_run_fetch_verify_the_receipt_and_close() {
    let s = served().await;
    let mut alice = s.connect(&s.alice).await;
    let mut bob = s.connect(&s.bob).await;
    let mut carol = s.connect(&s.carol).await;

    let status = carol.status().await.unwrap();
    assert_eq!(status.computation, "shared-patients");
    assert_eq!(status.state, State::Provisioning);
    assert!(!status.program_provided);

    alice
        .provide_program(sum_inputs(), &mut NoProgress)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a_path = dir.path().join("a.csv");
    std::fs::write(&a_path, A_CSV).unwrap();
    let received = alice
        .provide_input("/input/a.csv", a_path.as_path(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(received.path, "/input/a.csv");
    assert_eq!(received.bytes, A_CSV.len() as u64);
    assert_eq!(received.sha256, sha256_hex(A_CSV));
    bob.provide_input("/input/b.csv", B_CSV.to_vec(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(carol.status().await.unwrap().state, State::Ready);

    let RunResult::Finished { record, receipt } = alice.run(true).await.unwrap() else {
        panic!("run(wait = true) must answer with the finished run");
    };
    assert_eq!(record.run, 1);
    assert_eq!(record.outcome, covenant_sandbox::Outcome::Exited(0));

    let mut result = Vec::new();
    let fetched = carol
        .fetch("/output/result.txt", &mut result, &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, result.len() as u64);
    assert_eq!(fetched.run, 1);
    let mut stdout = Vec::new();
    carol
        .fetch("stdout", &mut stdout, &mut NoProgress)
        .await
        .unwrap();
    assert!(!stdout.is_empty());

    let receipts = bob.receipts().await.unwrap();
    assert_eq!(receipts, vec![receipt.clone()]);
    let verified = verify_receipt(&receipts[0], &s.policy).unwrap();
    assert_eq!(verified.claims.run, 1);
    // The reader's salt opens the receipt's commitment to what it fetched; the provider's
    // opens the commitment to its input.
    covenant_runtime::check_opening(
        &verified.claims,
        "/output/result.txt",
        &fetched.salt,
        result.as_slice(),
    )
    .unwrap();
    covenant_runtime::check_opening(&verified.claims, "/input/a.csv", &received.salt, A_CSV)
        .unwrap();
    assert_eq!(String::from_utf8(result).unwrap().trim(), "40");

    for client in [&mut alice, &mut bob] {
        let agreement = client.close().await.unwrap();
        assert!(!agreement.complete);
    }
    let agreement = carol.close().await.unwrap();
    assert!(
        agreement.complete && agreement.missing.is_empty(),
        "{agreement:?}"
    );
    assert_eq!(carol.status().await.unwrap().state, State::Closed);
}

#[tokio::test]
async fn a_detached_run_answers_at_once_and_finishes_in_status() {
    let s = served().await;
    let mut alice = s.connect(&s.alice).await;
    let mut bob = s.connect(&s.bob).await;
    alice
        .provide_program(sum_inputs(), &mut NoProgress)
        .await
        .unwrap();
    alice
        .provide_input("/input/a.csv", A_CSV.to_vec(), &mut NoProgress)
        .await
        .unwrap();
    bob.provide_input("/input/b.csv", B_CSV.to_vec(), &mut NoProgress)
        .await
        .unwrap();
    let started = alice.run(false).await.unwrap();
    assert!(
        matches!(
            started,
            RunResult::Started {
                run: 1,
                state: State::Running | State::Finished
            }
        ),
        "{started:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = bob.status().await.unwrap();
        if status.state != State::Running {
            assert_eq!(status.state, State::Finished, "{status:?}");
            assert_eq!(status.runs.len(), 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The run is over and runs.max is 1: a second one needs everyone's consent.
    let err = alice.run(true).await.unwrap_err();
    assert_eq!(err.rule(), Some("consent-missing"), "{err}");
    let agreement = bob.consent_rerun().await.unwrap();
    assert!(!agreement.complete);
    assert!(
        agreement.missing.contains(&"alice".to_owned()),
        "{agreement:?}"
    );
}

#[tokio::test]
async fn a_refused_action_is_a_refusal_with_its_rule_and_the_client_carries_on() {
    let s = served().await;
    let mut alice = s.connect(&s.alice).await;
    let mut bob = s.connect(&s.bob).await;
    let mut carol = s.connect(&s.carol).await;

    let err = bob
        .provide_program(sum_inputs(), &mut NoProgress)
        .await
        .unwrap_err();
    match &err {
        ClientError::Refused {
            status,
            rule,
            message,
        } => {
            assert_eq!((*status, rule.as_str()), (403, "not-program-provider"));
            assert!(!message.is_empty());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(err.to_string().contains("not-program-provider"), "{err}");

    // Over the input's bound (1 KiB) from a file: refused before it is sent (limits.rs).
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.csv");
    std::fs::write(&big, vec![b'1'; 1 << 20]).unwrap();
    let err = bob
        .provide_input("/input/b.csv", Upload::File(big), &mut NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("input-too-large"), "{err}");
    let err = carol.run(true).await.unwrap_err();
    assert_eq!(err.rule(), Some("not-starter"), "{err}");
    let err = carol
        .fetch("stdout", &mut Vec::new(), &mut NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("wrong-state"), "{err}");
    let err = alice
        .provide_input("/input/nope.csv", b"1".to_vec(), &mut NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("unknown-input"), "{err}");

    // The same clients go on working (reconnecting where the runtime closed the connection).
    let received = bob
        .provide_input("/input/b.csv", B_CSV.to_vec(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(received.sha256, sha256_hex(B_CSV));
    let status = carol.status().await.unwrap();
    assert_eq!(status.inputs[1].provided, Some(true));
    assert_eq!(status.state, State::Provisioning);
}
