//! The whole computation with three parties: two data providers and a reader.

use covenant_policy::Strategy;
use covenant_runtime::{State, verify_receipt};
use covenant_sandbox::Outcome;

use crate::support::*;

fn full_flow(strategy: Strategy) {
    let (_service, mut c) = setup(strategy, |_| {});
    assert_eq!(c.state(), State::Provisioning);
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    assert_eq!(c.state(), State::Provisioning);
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    assert_eq!(c.state(), State::Provisioning);
    let status = c.status(&carol()).unwrap();
    assert!(status.program_provided);
    assert_eq!(status.inputs[0].provided, Some(true));
    assert_eq!(status.inputs[1].provided, Some(false));
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    assert_eq!(c.state(), State::Ready);

    let summary = c.run(&alice()).unwrap();
    assert_eq!(c.state(), State::Finished);
    assert_eq!(
        summary.record.outcome,
        Outcome::Exited(0),
        "{:?}",
        summary.record
    );
    assert_eq!(summary.record.run, 1);
    assert!(summary.record.fuel_used > 0);

    // 1+2+3+4 + 10+20 = 40.
    assert_eq!(
        read_all(c.fetch_output(&carol(), "/output/result.txt").unwrap()),
        b"40\n"
    );
    assert_eq!(
        read_all(c.fetch_output(&carol(), "stdout").unwrap()),
        b"sum=40\n"
    );
    assert_eq!(read_all(c.fetch_output(&alice(), "stderr").unwrap()), b"");

    // Every party sees the outcome.
    for who in [alice(), bob(), carol()] {
        let status = c.status(&who).unwrap();
        assert_eq!(status.state, State::Finished);
        assert_eq!(status.runs.len(), 1);
        assert_eq!(status.runs[0].outcome, Outcome::Exited(0));
    }

    // The receipt verifies against the policy and says what happened.
    let receipts = c.receipts(&bob()).unwrap();
    assert_eq!(receipts, vec![summary.receipt.clone()]);
    let verified = verify_receipt(&summary.receipt, c.policy()).unwrap();
    let claims = verified.claims;
    assert_eq!(claims.run, 1);
    assert_eq!(claims.engine, strategy.as_str());
    assert_eq!(claims.program_sha256, sha256_hex(&sum_inputs()));
    assert_eq!(claims.policy_sha256, c.policy().hash().to_hex());
    assert_eq!(claims.outcome, Outcome::Exited(0));
    assert_eq!(claims.fuel_used, summary.record.fuel_used);
    // Neither input is pinned: the receipt commits to them and discloses neither hash nor
    // size; each provider's salt opens its own.
    let inputs: Vec<_> = claims
        .inputs
        .iter()
        .map(|i| (i.path.as_str(), i.sha256.clone(), i.bytes))
        .collect();
    assert_eq!(
        inputs,
        vec![("/input/a.csv", None, None), ("/input/b.csv", None, None)]
    );
    // Every output is written and committed to; each reader's bytes and salt open it.
    for (reader, output, bytes) in [
        (carol(), "/output/result.txt", &b"40\n"[..]),
        (carol(), "stdout", b"sum=40\n"),
        (alice(), "stderr", b""),
    ] {
        let receipt_output = claims.outputs.iter().find(|o| o.path == output).unwrap();
        assert_eq!(
            receipt_output.status,
            covenant_runtime::OutputStatus::Written
        );
        let fetched = c.fetch_output(&reader, output).unwrap();
        assert_eq!(fetched.run(), 1);
        let salt = fetched.salt_hex();
        covenant_runtime::check_opening(&claims, output, &salt, bytes).unwrap();
        assert!(
            covenant_runtime::check_opening(&claims, output, &salt, &b"41\n"[..]).is_err(),
            "other bytes must not open {output}"
        );
    }
    let outputs: Vec<_> = summary.record.outputs.iter().map(|o| o.status).collect();
    assert_eq!(outputs, [covenant_runtime::OutputStatus::Written; 3]);

    // Closing needs everyone; then the data is gone.
    assert!(!c.close(&alice()).unwrap().complete);
    assert!(!c.close(&bob()).unwrap().complete);
    assert_eq!(c.state(), State::Finished);
    assert!(c.close(&carol()).unwrap().complete);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.stored_bytes().unwrap(), 0);
    let err = c.fetch_output(&carol(), "/output/result.txt").unwrap_err();
    assert_eq!(err.refusal().map(|r| r.rule()), Some("wrong-state"));
    let status = c.status(&carol()).unwrap();
    assert!(!status.program_provided);
    assert!(status.inputs.iter().all(|i| i.provided == Some(false)));
    // Receipts outlive the data.
    assert_eq!(c.receipts(&carol()).unwrap().len(), 1);
}

#[test]
fn three_parties_jit() {
    full_flow(Strategy::Jit);
}

#[test]
fn three_parties_interpreter() {
    full_flow(Strategy::Interpreter);
}

#[test]
fn status_is_answered_while_running() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    provision(&mut c);
    let pending = c.start_run(&alice()).unwrap();
    assert_eq!(c.status(&bob()).unwrap().state, State::Running);
    let executed = pending.execute();
    c.finish_run(executed).unwrap();
    assert_eq!(c.state(), State::Finished);
}

#[test]
fn an_abandoned_run_fails_the_computation_and_says_why() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    provision(&mut c);
    let pending = c.start_run(&alice()).unwrap();
    // Another run's number changes nothing.
    assert!(c.abandon_run(pending.run() + 1, "not this one").is_err());
    assert_eq!(c.state(), State::Running);
    c.abandon_run(pending.run(), "the task running it panicked")
        .unwrap();
    let status = c.status(&carol()).unwrap();
    assert_eq!(status.state, State::Failed);
    // Principals get a code and a sentence; the internal reason is for the operator's log.
    let failure = status.failure.unwrap();
    assert_eq!(failure.code, covenant_runtime::FailureCode::RunAbandoned);
    assert!(
        failure.message.contains("run 1 stopped without a result"),
        "{failure:?}"
    );
    assert!(!failure.message.contains("panicked"), "{failure:?}");
    // The program was provided, and status says so in this state too.
    assert!(status.program_provided);
    // The executed run arrives too late: it is refused and the computation stays Failed.
    assert!(c.finish_run(pending.execute()).is_err());
    assert_eq!(c.state(), State::Failed);
}

#[test]
fn inputs_may_arrive_before_the_program() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    assert_eq!(c.state(), State::Provisioning);
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    assert_eq!(c.state(), State::Ready);
}

#[test]
fn rerun_after_every_consent_and_within_max() {
    // runs.max = 2: the second run needs no consent; the third needs everyone's.
    let (_s, mut c) = setup(Strategy::Interpreter, |p| p.runs.max = 2);
    provision(&mut c);
    c.run(&alice()).unwrap();
    let second = c.run(&alice()).unwrap();
    assert_eq!(second.record.run, 2);
    assert_eq!(
        read_all(c.fetch_output(&carol(), "/output/result.txt").unwrap()),
        b"40\n"
    );
    assert_refused(&mut c, "consent-missing", |c| c.run(&alice()));
    assert!(!c.consent_rerun(&alice()).unwrap().complete);
    assert!(!c.consent_rerun(&bob()).unwrap().complete);
    assert_refused(&mut c, "consent-missing", |c| c.run(&alice()));
    let done = c.consent_rerun(&carol()).unwrap();
    assert!(done.complete);
    assert_eq!(c.state(), State::Ready);
    let third = c.run(&alice()).unwrap();
    assert_eq!(third.record.run, 3);
    assert_eq!(c.receipts(&carol()).unwrap().len(), 3);
    let claims = verify_receipt(&third.receipt, c.policy()).unwrap().claims;
    assert_eq!(claims.run, 3);
}

#[test]
fn a_program_whose_initial_memory_is_over_the_limit_is_refused_at_upload() {
    let (_s, mut c) = setup(Strategy::Jit, |p| p.execution.max_memory_bytes = 64 << 10);
    let before = c.state();
    let err = c.provide_program(&alice(), &sum_inputs()).unwrap_err();
    assert_eq!(
        err.refusal().map(covenant_runtime::Refusal::rule),
        Some("program-not-loadable"),
        "{err}"
    );
    assert!(
        err.to_string().contains("exceeds the memory limit"),
        "{err}"
    );
    assert_eq!(c.state(), before);
}

#[test]
fn inputs_are_accepted_while_the_program_compiles_and_a_second_upload_loses() {
    let (_s, mut c) = setup(Strategy::Jit, |_| {});
    // Two uploads of the program pass their checks; the compile runs without the computation.
    let first = c.begin_program(&alice(), sum_inputs()).unwrap();
    let second = c.begin_program(&alice(), sum_inputs()).unwrap();
    assert_refused(&mut c, "not-program-provider", |c| {
        c.begin_program(&bob(), sum_inputs()).map(drop)
    });
    // Meanwhile the inputs arrive.
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    assert_eq!(c.state(), State::Provisioning);
    let (first, second) = (first.compile().unwrap(), second.compile().unwrap());
    c.finish_program(first).unwrap();
    assert_eq!(c.state(), State::Ready);
    assert_refused(&mut c, "program-already-provided", |c| {
        c.finish_program(second)
    });
    assert_eq!(c.state(), State::Ready);
    c.run(&alice()).unwrap();
    assert_eq!(
        read_all(c.fetch_output(&carol(), "/output/result.txt").unwrap()),
        b"40\n"
    );
}
