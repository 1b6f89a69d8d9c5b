//! The rule matrix: every (principal, action, state) of the test policy, allowed or refused
//! with the rule the table names. Refusals must change nothing.
//!
//! The policy (see `support::policy`): alice provides the program and `/input/a.csv` and
//! starts runs; bob provides `/input/b.csv`; carol reads `/output/result.txt` and stdout;
//! alice reads stderr; `runs.max = 1`, `rerun_consent = all`. mallory is not a principal.

use covenant_policy::Strategy;
use covenant_runtime::{Computation, PendingRun, Principal, RuntimeError, State};

use crate::support::*;

const OK: &str = "ok";

#[derive(Clone, Copy, Debug)]
enum Act {
    ProvideProgram,
    ProvideA,
    ProvideB,
    Run,
    FetchResult,
    FetchStdout,
    FetchStderr,
    Status,
    ConsentRerun,
    Close,
}

const STATES: [State; 5] = [
    State::Provisioning,
    State::Ready,
    State::Running,
    State::Finished,
    State::Closed,
];

/// (action, who holds the role it needs (None: every principal), the rule a principal without
/// the role breaks, then per state in `STATES` order what a holder gets).
type Row = (
    Act,
    Option<&'static [&'static str]>,
    &'static str,
    [&'static str; 5],
);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    //                                                        Provisioning   Ready                       Running                     Finished                    Closed
    (Act::ProvideProgram, Some(&["alice"]), "not-program-provider", [OK, "program-already-provided", "program-already-provided", "program-already-provided", "wrong-state"]),
    (Act::ProvideA,       Some(&["alice"]), "not-input-provider",   [OK, "input-already-provided",   "wrong-state",              "wrong-state",              "wrong-state"]),
    (Act::ProvideB,       Some(&["bob"]),   "not-input-provider",   [OK, "input-already-provided",   "wrong-state",              "wrong-state",              "wrong-state"]),
    (Act::Run,            Some(&["alice"]), "not-starter",          ["program-missing", OK,          "wrong-state",              "consent-missing",          "wrong-state"]),
    (Act::FetchResult,    Some(&["carol"]), "not-reader",           ["wrong-state", "wrong-state",   "wrong-state",              OK,                         "wrong-state"]),
    (Act::FetchStdout,    Some(&["carol"]), "not-reader",           ["wrong-state", "wrong-state",   "wrong-state",              OK,                         "wrong-state"]),
    (Act::FetchStderr,    Some(&["alice"]), "not-reader",           ["wrong-state", "wrong-state",   "wrong-state",              OK,                         "wrong-state"]),
    (Act::Status,         None,             "",                     [OK, OK,                         OK,                         OK,                         OK]),
    (Act::ConsentRerun,   None,             "",                     ["wrong-state", "wrong-state",   "wrong-state",              OK,                         "wrong-state"]),
    (Act::Close,          None,             "",                     [OK, OK,                         "wrong-state",              OK,                         "wrong-state"]),
];

fn act(c: &mut Computation, who: &Principal, action: Act) -> Result<(), RuntimeError> {
    match action {
        Act::ProvideProgram => c.provide_program(who, &sum_inputs()),
        Act::ProvideA => c.provide_input(who, "/input/a.csv", A_CSV),
        Act::ProvideB => c.provide_input(who, "/input/b.csv", B_CSV),
        Act::Run => c.run(who).map(drop),
        Act::FetchResult => c
            .fetch_output(who, "/output/result.txt")
            .map(|r| drop(read_all(r))),
        Act::FetchStdout => c.fetch_output(who, "stdout").map(|r| drop(read_all(r))),
        Act::FetchStderr => c.fetch_output(who, "stderr").map(|r| drop(read_all(r))),
        Act::Status => c.status(who).map(drop),
        Act::ConsentRerun => c.consent_rerun(who).map(drop),
        Act::Close => c.close(who).map(drop),
    }
}

/// A computation in `state`; for `Running`, the run it is in the middle of.
fn in_state(service: &Service, program: &[u8], state: State) -> (Computation, Option<PendingRun>) {
    let p = policy(service, program, Strategy::Interpreter);
    let mut c = computation_for(service, &p);
    let mut pending = None;
    match state {
        State::Provisioning => {}
        State::Ready => provision(&mut c),
        State::Running => {
            provision(&mut c);
            pending = Some(c.start_run(&alice()).unwrap());
        }
        State::Finished => {
            provision(&mut c);
            c.run(&alice()).unwrap();
        }
        State::Closed => {
            provision(&mut c);
            c.run(&alice()).unwrap();
            for who in [alice(), bob(), carol()] {
                c.close(&who).unwrap();
            }
        }
        State::Failed => unreachable!("not in the matrix"),
    }
    assert_eq!(c.state(), state);
    (c, pending)
}

#[test]
fn every_principal_action_and_state() {
    let service = Service::new();
    let program = sum_inputs();
    let mut checked = 0;
    for (action, holders, role_rule, per_state) in TABLE {
        for (state, holder_gets) in STATES.iter().zip(per_state) {
            for name in ["alice", "bob", "carol", "mallory"] {
                let expected = if name == "mallory" {
                    "unknown-principal"
                } else if holders.is_some_and(|h| !h.contains(&name)) {
                    role_rule
                } else {
                    holder_gets
                };
                let (mut c, pending) = in_state(&service, &program, *state);
                let who = Principal::new(name);
                let context = format!("{name} {action:?} in {state}");
                if expected == OK {
                    if let Err(e) = act(&mut c, &who, *action) {
                        panic!("{context}: expected ok, got {e}");
                    }
                } else {
                    let before = snapshot(&c);
                    match act(&mut c, &who, *action) {
                        Ok(()) => panic!("{context}: expected {expected}, got ok"),
                        Err(e) => assert_eq!(
                            e.refusal().map(|r| r.rule()),
                            Some(expected),
                            "{context}: {e}"
                        ),
                    }
                    assert_eq!(
                        snapshot(&c),
                        before,
                        "{context}: the refusal changed something"
                    );
                }
                if let Some(pending) = pending {
                    c.finish_run(pending.execute()).unwrap();
                    assert_eq!(c.state(), State::Finished, "{context}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, TABLE.len() * STATES.len() * 4);
}
