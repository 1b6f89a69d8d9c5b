//! Attacks that need no network: each is refused by the rule it breaks and changes nothing,
//! or (for a hostile guest) ends as a reported outcome with the runtime still serving.

use covenant_policy::{RerunConsent, Strategy};
use covenant_runtime::State;
use covenant_sandbox::{Outcome, TrapKind};

use crate::support::*;

#[test]
fn wrong_program_hash_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    let other = covenant_guests::HELLO.bytes();
    assert_refused(&mut c, "program-hash-mismatch", |c| {
        c.provide_program(&alice(), &other)
    });
    // The right program is still accepted afterwards.
    c.provide_program(&alice(), &sum_inputs()).unwrap();
}

#[test]
fn program_from_a_data_provider_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    assert_refused(&mut c, "not-program-provider", |c| {
        c.provide_program(&bob(), &sum_inputs())
    });
    assert_refused(&mut c, "unknown-principal", |c| {
        c.provide_program(&mallory(), &sum_inputs())
    });
}

#[test]
fn a_second_program_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    assert_refused(&mut c, "program-already-provided", |c| {
        c.provide_program(&alice(), &sum_inputs())
    });
    assert_refused(&mut c, "program-already-provided", |c| {
        c.provide_program(&alice(), &covenant_guests::HELLO.bytes())
    });
}

#[test]
fn input_from_the_wrong_provider_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    assert_refused(&mut c, "not-input-provider", |c| {
        c.provide_input(&alice(), "/input/b.csv", B_CSV)
    });
    assert_refused(&mut c, "not-input-provider", |c| {
        c.provide_input(&carol(), "/input/a.csv", A_CSV)
    });
    assert_refused(&mut c, "unknown-input", |c| {
        c.provide_input(&bob(), "/input/c.csv", B_CSV)
    });
}

#[test]
fn input_twice_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    assert_refused(&mut c, "input-already-provided", |c| {
        c.provide_input(&bob(), "/input/b.csv", &b"99"[..])
    });
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.run(&alice()).unwrap();
    // The first upload is what the program saw.
    assert_eq!(
        read_all(c.fetch_output(&carol(), "/output/result.txt").unwrap()),
        b"40\n"
    );
}

#[test]
fn input_over_its_bound_is_refused_and_absent() {
    let (_s, mut c) = setup(Strategy::Interpreter, |p| p.inputs[1].max_bytes = 8);
    let before = snapshot(&c);
    let err = c
        .provide_input(&bob(), "/input/b.csv", &b"1,2,3,4,5"[..])
        .unwrap_err();
    assert_eq!(err.refusal().map(|r| r.rule()), Some("input-too-large"));
    assert_eq!(snapshot(&c), before);
    // Exactly at the bound is fine.
    c.provide_input(&bob(), "/input/b.csv", &b"1,2,3,44"[..])
        .unwrap();
}

#[test]
fn input_with_a_wrong_pinned_hash_is_refused_and_resendable() {
    let (_s, mut c) = setup(Strategy::Interpreter, |p| {
        p.inputs[0].sha256 = Some(sha256_hex(A_CSV))
    });
    let before = snapshot(&c);
    let err = c
        .provide_input(&alice(), "/input/a.csv", &b"6,6,6"[..])
        .unwrap_err();
    assert_eq!(err.refusal().map(|r| r.rule()), Some("input-hash-mismatch"));
    assert_eq!(snapshot(&c), before);
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
}

#[test]
fn a_reader_failing_mid_stream_leaves_the_input_absent_and_resendable() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    provision_program_and_a(&mut c);
    let before = snapshot(&c);
    let failing = FailingReader {
        good: b"10,".to_vec(),
        pos: 0,
    };
    let err = c
        .provide_input(&bob(), "/input/b.csv", failing)
        .unwrap_err();
    assert_eq!(
        err.refusal().map(|r| r.rule()),
        Some("upload-interrupted"),
        "{err}"
    );
    assert_eq!(snapshot(&c), before);
    assert_eq!(c.state(), State::Provisioning);
    assert_refused(&mut c, "inputs-missing", |c| c.run(&alice()));
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    assert_eq!(c.state(), State::Ready);
    c.run(&alice()).unwrap();
    assert_eq!(
        read_all(c.fetch_output(&carol(), "/output/result.txt").unwrap()),
        b"40\n"
    );
}

fn provision_program_and_a(c: &mut covenant_runtime::Computation) {
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
}

#[test]
fn run_before_inputs_are_complete_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    assert_refused(&mut c, "program-missing", |c| c.run(&alice()));
    provision_program_and_a(&mut c);
    assert_refused(&mut c, "inputs-missing", |c| c.run(&alice()));
    let err = c.run(&alice()).unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(&covenant_runtime::Refusal::InputsMissing {
            paths: vec!["/input/b.csv".into()]
        })
    );
}

#[test]
fn run_by_a_non_starter_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    provision(&mut c);
    assert_refused(&mut c, "not-starter", |c| c.run(&bob()));
    assert_refused(&mut c, "not-starter", |c| c.run(&carol()));
}

#[test]
fn fetch_by_a_non_reader_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    provision(&mut c);
    c.run(&alice()).unwrap();
    for who in [alice(), bob()] {
        assert_refused(&mut c, "not-reader", |c| {
            c.fetch_output(&who, "/output/result.txt")
        });
        assert_refused(&mut c, "not-reader", |c| c.fetch_output(&who, "stdout"));
    }
    assert_refused(&mut c, "not-reader", |c| c.fetch_output(&carol(), "stderr"));
    assert_refused(&mut c, "unknown-output", |c| {
        c.fetch_output(&carol(), "/input/a.csv")
    });
    assert_refused(&mut c, "unknown-principal", |c| {
        c.fetch_output(&mallory(), "stdout")
    });
}

#[test]
fn fetch_before_the_run_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    assert_refused(&mut c, "wrong-state", |c| {
        c.fetch_output(&carol(), "/output/result.txt")
    });
    provision(&mut c);
    assert_refused(&mut c, "wrong-state", |c| {
        c.fetch_output(&carol(), "/output/result.txt")
    });
    assert_refused(&mut c, "wrong-state", |c| {
        c.fetch_output(&carol(), "stdout")
    });
}

#[test]
fn rerun_without_every_consent_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    provision(&mut c);
    c.run(&alice()).unwrap();
    assert_refused(&mut c, "consent-missing", |c| c.run(&alice()));
    c.consent_rerun(&alice()).unwrap();
    c.consent_rerun(&carol()).unwrap();
    assert_refused(&mut c, "consent-missing", |c| c.run(&alice()));
    let err = c.run(&alice()).unwrap_err();
    assert_eq!(
        err.refusal(),
        Some(&covenant_runtime::Refusal::ConsentMissing {
            missing: vec!["bob".into()]
        })
    );
    assert_refused(&mut c, "unknown-principal", |c| c.consent_rerun(&mallory()));
}

#[test]
fn no_rerun_when_the_policy_says_never() {
    let (_s, mut c) = setup(Strategy::Interpreter, |p| {
        p.runs.rerun_consent = RerunConsent::Never
    });
    provision(&mut c);
    c.run(&alice()).unwrap();
    assert_refused(&mut c, "runs-exhausted", |c| c.run(&alice()));
    assert_refused(&mut c, "consent-not-applicable", |c| {
        c.consent_rerun(&alice())
    });
}

#[test]
fn a_trapping_guest_is_an_outcome_and_the_runtime_still_serves() {
    // `recurse` overflows its stack.
    let service = Service::new();
    let program = covenant_guests::RECURSE.bytes();
    let mut p = policy(&service, &program, Strategy::Interpreter);
    p.runs.max = 2;
    let mut c = computation_for(&service, &p);
    c.provide_program(&alice(), &program).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    let summary = c.run(&alice()).unwrap();
    assert_eq!(
        summary.record.outcome,
        Outcome::Trapped(TrapKind::StackOverflow),
        "{:?}",
        summary.record
    );
    assert_eq!(c.state(), State::Finished);
    for who in [alice(), bob(), carol()] {
        assert_eq!(
            c.status(&who).unwrap().runs[0].outcome,
            Outcome::Trapped(TrapKind::StackOverflow)
        );
    }
    // The output file was never written: refused by its own rule.
    assert_refused(&mut c, "output-not-written", |c| {
        c.fetch_output(&carol(), "/output/result.txt")
    });
    let claims = covenant_runtime::verify_receipt(&summary.receipt, c.policy())
        .unwrap()
        .claims;
    assert_eq!(claims.outcome, Outcome::Trapped(TrapKind::StackOverflow));
    assert_eq!(
        claims.outputs[0].status,
        covenant_runtime::OutputStatus::Missing
    );
    assert_eq!(claims.outputs[0].commitment, None);
    // And the runtime still serves: another run, same outcome, run number 2.
    let again = c.run(&alice()).unwrap();
    assert_eq!(again.record.run, 2);
}

#[test]
fn a_guest_out_of_fuel_is_reported() {
    let service = Service::new();
    let program = covenant_guests::SPIN.bytes();
    let mut p = policy(&service, &program, Strategy::Jit);
    p.execution.fuel = Some(1_000_000);
    let mut c = computation_for(&service, &p);
    c.provide_program(&alice(), &program).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    let summary = c.run(&alice()).unwrap();
    assert_eq!(
        summary.record.outcome,
        Outcome::Trapped(TrapKind::OutOfFuel)
    );
    assert_eq!(c.status(&carol()).unwrap().state, State::Finished);
}

#[test]
fn a_layout_letting_the_program_write_an_input_is_refused() {
    let service = Service::new();
    let mut p = policy(&service, &sum_inputs(), Strategy::Interpreter);
    p.outputs[0].path = "/input/result.txt".into();
    let valid = validate(&p);
    let signer = service.signer(&valid);
    let err = covenant_runtime::Computation::new(valid, signer).unwrap_err();
    assert!(
        matches!(err, covenant_runtime::SetupError::Layout(_)),
        "{err}"
    );
}

#[test]
fn an_expired_policy_allows_no_provisioning_runs_or_releases() {
    let service = Service::new();
    let mut p = policy(&service, &sum_inputs(), Strategy::Interpreter);
    let now = time::OffsetDateTime::now_utc();
    p.expires = covenant_policy::format_utc(now - time::Duration::minutes(1));
    // Valid when it was agreed (two minutes ago), expired now.
    let valid = covenant_policy::validate(&p, now - time::Duration::minutes(2)).unwrap();
    let signer = service.signer(&valid);
    let mut c = covenant_runtime::Computation::new(valid, signer).unwrap();
    assert_refused(&mut c, "policy-expired", |c| {
        c.provide_program(&alice(), &sum_inputs())
    });
    assert_refused(&mut c, "policy-expired", |c| {
        c.provide_input(&bob(), "/input/b.csv", B_CSV)
    });
    assert_refused(&mut c, "policy-expired", |c| c.run(&alice()));
    assert_refused(&mut c, "policy-expired", |c| {
        c.fetch_output(&carol(), "stdout")
    });
    assert_refused(&mut c, "unknown-principal", |c| c.run(&mallory()));
    // Parties can still look and end it.
    assert_eq!(c.status(&carol()).unwrap().state, State::Provisioning);
    for who in [alice(), bob(), carol()] {
        c.close(&who).unwrap();
    }
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn a_second_upload_of_an_input_under_way_is_refused_until_the_first_ends() {
    let (_s, mut c) = setup(Strategy::Interpreter, |_| {});
    let first = c.begin_input(&bob(), "/input/b.csv").unwrap();
    assert_eq!(first.path(), "/input/b.csv");
    assert_refused(&mut c, "upload-in-progress", |c| {
        c.provide_input(&bob(), "/input/b.csv", B_CSV)
    });
    // The client went away before sending anything: the reservation ends with the upload.
    drop(first);
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
}

#[test]
fn an_upload_finished_after_the_computation_moved_on_is_refused() {
    let (_s, mut c) = setup(Strategy::Interpreter, |p| p.inputs[1].required = false);
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    let upload = c.begin_input(&bob(), "/input/b.csv").unwrap();
    let written = upload.write(B_CSV).unwrap();
    for who in [alice(), bob(), carol()] {
        c.close(&who).unwrap();
    }
    let err = c.finish_input(written).unwrap_err();
    assert_eq!(err.refusal().map(|r| r.rule()), Some("wrong-state"));
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.stored_bytes().unwrap(), 0);
}

/// A computation with `program` as its program on `strategy`, limits edited, provisioned.
fn provisioned_with(
    program: &[u8],
    strategy: Strategy,
    edit: impl FnOnce(&mut covenant_policy::Policy),
) -> covenant_runtime::Computation {
    let service = Service::new();
    let mut p = policy(&service, program, strategy);
    edit(&mut p);
    let mut c = computation_for(&service, &p);
    c.provide_program(&alice(), program).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    c
}

#[test]
fn the_policys_wall_time_limit_stops_a_spinning_guest() {
    for strategy in [Strategy::Jit, Strategy::Interpreter] {
        let mut c = provisioned_with(&covenant_guests::SPIN.bytes(), strategy, |p| {
            p.execution.fuel = None;
            p.execution.timeout_ms = 200;
        });
        let summary = c.run(&alice()).unwrap();
        assert_eq!(
            summary.record.outcome,
            Outcome::Trapped(TrapKind::Timeout),
            "{strategy:?}"
        );
        assert_eq!(c.state(), State::Finished);
    }
}

#[test]
fn the_policys_memory_limit_stops_a_memory_bomb() {
    for strategy in [Strategy::Jit, Strategy::Interpreter] {
        let mut c = provisioned_with(&covenant_guests::ALLOC_FOREVER.bytes(), strategy, |p| {
            p.execution.max_memory_bytes = 4 << 20;
        });
        let summary = c.run(&alice()).unwrap();
        assert!(
            summary.record.peak_memory_bytes <= 4 << 20,
            "{strategy:?}: {:?}",
            summary.record
        );
        assert_eq!(
            summary.record.outcome,
            Outcome::Trapped(TrapKind::MemoryLimit),
            "{strategy:?}"
        );
        assert_eq!(c.state(), State::Finished);
    }
}

#[test]
fn computations_and_runs_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<covenant_runtime::Computation>();
    send::<covenant_runtime::PendingRun>();
    send::<covenant_runtime::ExecutedRun>();
    send::<covenant_runtime::InputUpload>();
    send::<covenant_runtime::WrittenInput>();
}
