//! A hostile program inside a computation, on both engines: it cannot change an input (by a
//! link, a rename, a symlink or in place), cannot get an over-limit output released, and
//! nothing it leaves at an output's path puts the runtime in `Failed`.
//!
//! The program is `fs_attack` (`guests/programs/src/bin/fs_attack.rs`); the policy's program
//! arguments choose the attack.

use covenant_policy::{Policy, Strategy};
use covenant_runtime::{Computation, OutputStatus, State, check_opening, verify_receipt};
use covenant_sandbox::{Outcome, TrapKind};

use crate::support::*;

const STRATEGIES: [Strategy; 2] = [Strategy::Jit, Strategy::Interpreter];

/// A computation running `fs_attack ARGS...` under the test policy (edited), provisioned,
/// with the salt alice got for `/input/a.csv`.
fn attacker(
    strategy: Strategy,
    args: &[&str],
    edit: impl FnOnce(&mut Policy),
) -> (Service, Computation, String) {
    let service = Service::new();
    let program = covenant_guests::FS_ATTACK.bytes();
    let mut p = policy(&service, &program, strategy);
    p.program.name = "fs_attack".into();
    p.program.args = args.iter().map(|a| (*a).to_owned()).collect();
    edit(&mut p);
    let mut c = computation_for(&service, &p);
    c.provide_program(&alice(), &program).unwrap();
    let upload = c.begin_input(&alice(), "/input/a.csv").unwrap();
    let written = upload.write(A_CSV).unwrap();
    let salt = written.salt_hex();
    c.finish_input(written).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    (service, c, salt)
}

/// What carol reads on stdout, or the refusal's rule.
fn stdout_of(c: &Computation) -> String {
    match c.fetch_output(&carol(), "stdout") {
        Ok(r) => String::from_utf8(read_all(r)).unwrap(),
        Err(e) => format!("refused: {}", e.refusal().map_or("?", |r| r.rule())),
    }
}

#[test]
fn a_guest_cannot_change_an_input_by_link_rename_symlink_or_in_place() {
    // Each attack, and the answer the guest reports for its decisive step.
    let attacks: [(&[&str], &str); 4] = [
        (
            &["link", "/input/a.csv", "/output/result.txt"],
            "link: errno 75 (EXDEV)",
        ),
        (
            &["rename", "/input/a.csv", "/output/result.txt"],
            "rename: errno 76 (ENOTCAPABLE)",
        ),
        (
            &["symlink", "../input/a.csv", "/output/result.txt"],
            "write through the symlink: errno 76 (ENOTCAPABLE)",
        ),
        (
            &["write-input", "/input/a.csv"],
            "rename over it: errno 76 (ENOTCAPABLE)",
        ),
    ];
    for strategy in STRATEGIES {
        for (args, answer) in attacks {
            let (_s, mut c, salt) = attacker(strategy, args, |p| p.runs.max = 2);
            let summary = c.run(&alice()).unwrap();
            let what = format!(
                "{strategy:?} {args:?}: {:?}\n{}",
                summary.record,
                stdout_of(&c)
            );
            // The run is the guest's outcome, and the runtime still serves: no Failed.
            assert_eq!(c.state(), State::Finished, "{what}");
            assert!(c.status(&bob()).unwrap().failure.is_none(), "{what}");
            // The receipt was signed, so the runtime found the input's hash unchanged after
            // the run; and alice's salt opens the receipt's commitment with her original bytes.
            let claims = verify_receipt(&summary.receipt, c.policy()).unwrap().claims;
            check_opening(&claims, "/input/a.csv", &salt, A_CSV)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let said = stdout_of(&c);
            assert!(said.contains(answer), "{what}");
            assert!(!said.contains("TAMPERED"), "{what}");
            if args[0] == "write-input" {
                assert!(
                    !said.contains(": ok"),
                    "{what}: an in-place change succeeded"
                );
            }
            // Nothing but the program's own outputs can be fetched: no output is the input.
            if let Ok(r) = c.fetch_output(&carol(), "/output/result.txt") {
                assert_ne!(
                    read_all(r),
                    A_CSV,
                    "{what}: the input was released as an output"
                );
            }
            // A second run sees the same input: its receipt commits to the same bytes.
            let again = c.run(&alice()).unwrap();
            let claims = verify_receipt(&again.receipt, c.policy()).unwrap().claims;
            check_opening(&claims, "/input/a.csv", &salt, A_CSV)
                .unwrap_or_else(|e| panic!("{what}, run 2: {e}"));
        }
    }
}

#[test]
fn an_output_over_the_limit_is_released_to_no_reader() {
    // 1 MiB into the result file under a 1 KiB limit, then an exit, or a trap instead (a
    // guest that dodges a check made only on exits). (A large input bound sizes the file
    // system so that the guest can store it: the file system's quota is not the limit.)
    let cases = [
        ("write", Outcome::Trapped(TrapKind::OutputLimit)),
        ("write-then-abort", Outcome::Trapped(TrapKind::Unreachable)),
    ];
    for strategy in STRATEGIES {
        for (action, outcome) in cases {
            let (_s, mut c, _) =
                attacker(strategy, &[action, "/output/result.txt", "1048576"], |p| {
                    p.execution.max_output_bytes = 1024;
                    p.inputs[0].max_bytes = 2 << 20;
                });
            let summary = c.run(&alice()).unwrap();
            assert_eq!(
                summary.record.outcome, outcome,
                "{strategy:?} {action}: {:?}",
                summary.record
            );
            // The size written is for the operator's log, not for every principal.
            let detail = summary.record.detail.clone().unwrap_or_default();
            assert!(!detail.contains("1048576"), "{detail}");
            assert_eq!(c.state(), State::Finished);
            // No output of the run, file or stream, to any of its readers.
            for (reader, output) in [
                (carol(), "/output/result.txt"),
                (carol(), "stdout"),
                (alice(), "stderr"),
            ] {
                assert_refused(&mut c, "output-withheld", |c| {
                    c.fetch_output(&reader, output)
                });
            }
            let statuses: Vec<_> = summary.record.outputs.iter().map(|o| o.status).collect();
            assert_eq!(statuses, [OutputStatus::Withheld; 3], "{strategy:?}");
            let claims = verify_receipt(&summary.receipt, c.policy()).unwrap().claims;
            assert!(
                claims
                    .outputs
                    .iter()
                    .all(|o| o.status == OutputStatus::Withheld && o.commitment.is_none()),
                "{claims:?}"
            );
        }
    }
}

#[test]
fn nested_output_directories_are_refused_when_the_computation_is_set_up() {
    // A program allowed to write /out could replace /out/alice with a link.
    let service = Service::new();
    let mut p = policy(&service, &sum_inputs(), Strategy::Interpreter);
    p.outputs[0].path = "/out/summary.txt".into();
    p.outputs[1].path = "/out/alice/share.txt".into();
    let valid = validate(&p);
    let signer = service.signer(&valid);
    let err = Computation::new(valid, signer).unwrap_err();
    assert!(
        matches!(err, covenant_runtime::SetupError::Layout(ref m) if m.contains("/out/alice is inside output directory /out")),
        "{err}"
    );
}

#[test]
fn streams_over_the_limit_release_nothing_either() {
    // The sandbox stops a stdout flood itself; the runtime withholds the files too.
    let service = Service::new();
    let program = covenant_guests::STDOUT_FLOOD.bytes();
    let mut p = policy(&service, &program, Strategy::Interpreter);
    p.execution.max_output_bytes = 4096;
    let mut c = computation_for(&service, &p);
    c.provide_program(&alice(), &program).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
    let summary = c.run(&alice()).unwrap();
    assert_eq!(
        summary.record.outcome,
        Outcome::Trapped(TrapKind::OutputLimit)
    );
    assert_refused(&mut c, "output-withheld", |c| {
        c.fetch_output(&carol(), "stdout")
    });
}

#[test]
fn whatever_a_guest_leaves_at_an_output_is_its_outcome_not_a_runtime_failure() {
    let cases: [(&[&str], OutputStatus); 3] = [
        (&["mkdir", "/output/result.txt"], OutputStatus::Directory),
        (
            &["symlink-output", "../input/a.csv", "/output/result.txt"],
            OutputStatus::Symlink,
        ),
        (&["mkdir", "/output/elsewhere"], OutputStatus::Missing),
    ];
    for strategy in STRATEGIES {
        for (args, status) in &cases {
            let (_s, mut c, _) = attacker(strategy, args, |p| p.runs.max = 2);
            let what = format!("{strategy:?} {args:?}");
            let summary = c.run(&alice()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(summary.record.outcome, Outcome::Exited(0), "{what}");
            assert_eq!(summary.record.outputs[0].status, *status, "{what}");
            assert_eq!(c.state(), State::Finished, "{what}");
            // Status says what is true in this state: the program was provided, no failure.
            let seen = c.status(&bob()).unwrap();
            assert!(seen.program_provided && seen.failure.is_none(), "{what}");
            assert_eq!(seen.runs[0].outputs[0].status, *status, "{what}");
            // The reader is refused by the output's own rule, naming what is there.
            assert_refused(&mut c, "output-not-written", |c| {
                c.fetch_output(&carol(), "/output/result.txt")
            });
            let claims = verify_receipt(&summary.receipt, c.policy()).unwrap().claims;
            assert_eq!(claims.outputs[0].status, *status, "{what}");
            assert_eq!(claims.outputs[0].commitment, None, "{what}");
            // The next run starts from the inputs alone: what the guest left is cleared.
            let again = c
                .run(&alice())
                .unwrap_or_else(|e| panic!("{what}, run 2: {e}"));
            assert_eq!(again.record.outputs[0].status, *status, "{what}, run 2");
        }
    }
}

#[test]
fn an_upload_in_flight_during_a_run_is_invisible_to_the_guest_and_costs_it_nothing() {
    // Inputs at the top level give the program read access to `/`: the upload in flight must
    // still not be there, and the guest's quota must not shrink by its size.
    let service = Service::new();
    let program = covenant_guests::FS_ATTACK.bytes();
    let mut p = policy(&service, &program, Strategy::Interpreter);
    p.program.name = "fs_attack".into();
    // Where the bytes would be if the runtime staged them in the run's file system: beside
    // the inputs, or in a directory of its own (this and earlier designs).
    p.program.args = [
        "read",
        "/a.csv",
        "/b.csv",
        "/.covenant-staging/1",
        "/uploads/1",
        "/1",
    ]
    .map(String::from)
    .to_vec();
    p.inputs[0].path = "/a.csv".into();
    p.inputs[1].path = "/b.csv".into();
    p.inputs[1].required = false;
    let mut c = computation_for(&service, &p);
    c.provide_program(&alice(), &program).unwrap();
    c.provide_input(&alice(), "/a.csv", A_CSV).unwrap();
    let stored = c.stored_bytes().unwrap();
    // Bob's upload is written whole (not yet accepted) when alice starts the run.
    let secret = b"BOBS-UPLOAD-IN-FLIGHT\n".repeat(40);
    let upload = c.begin_input(&bob(), "/b.csv").unwrap();
    let written = upload.write(&secret[..]).unwrap();
    assert_eq!(
        c.stored_bytes().unwrap(),
        stored,
        "staging is not the run's file system"
    );
    assert!(c.staged_bytes().unwrap() >= secret.len() as u64);
    let summary = c.run(&alice()).unwrap();
    let said = stdout_of(&c);
    assert!(
        said.contains("/a.csv contains"),
        "the guest reads from /: {said}"
    );
    assert!(!said.contains("BOBS-UPLOAD"), "{said}");
    assert!(said.contains("read /b.csv: errno 44 (ENOENT)"), "{said}");
    // The run's output count is its own: bob's bytes did not push it over the limit.
    assert_eq!(summary.record.outcome, Outcome::Exited(0));
    drop(written);
}

#[test]
fn another_providers_upload_neither_delays_nor_shows_in_a_run() {
    // b is optional: the computation is Ready without it.
    let (_s, mut c) = setup(Strategy::Interpreter, |p| p.inputs[1].required = false);
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    assert_eq!(c.state(), State::Ready);
    // Bob's upload is under way: alice's run is neither refused nor told about it.
    let upload = c.begin_input(&bob(), "/input/b.csv").unwrap();
    let written = upload.write(B_CSV).unwrap();
    let summary = c.run(&alice()).unwrap();
    // The program did not see the staged bytes: sum_inputs fails on the missing b.csv.
    assert_eq!(summary.record.outcome, Outcome::Exited(1));
    let stderr = String::from_utf8(read_all(c.fetch_output(&alice(), "stderr").unwrap())).unwrap();
    assert!(stderr.contains("/input/b.csv"), "{stderr}");
    let claims = verify_receipt(&summary.receipt, c.policy()).unwrap().claims;
    assert_eq!(
        claims.inputs.len(),
        1,
        "only the accepted input is in the receipt"
    );
    // Bob's upload, finished after the run started, is refused by the state rule, and its
    // staged bytes are gone.
    let (stored, staged) = (c.stored_bytes().unwrap(), c.staged_bytes().unwrap());
    assert!(staged >= B_CSV.len() as u64);
    let err = c.finish_input(written).unwrap_err();
    assert_eq!(err.refusal().map(|r| r.rule()), Some("wrong-state"));
    assert_eq!(c.stored_bytes().unwrap(), stored);
    assert!(c.staged_bytes().unwrap() <= staged - B_CSV.len() as u64);
    assert_eq!(c.status(&bob()).unwrap().inputs[1].provided, Some(false));
}
