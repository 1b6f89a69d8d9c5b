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
    for strategy in STRATEGIES {
        // 1 MiB into the result file under a 1 KiB limit. (A large input bound sizes the file
        // system so that the guest can store it: the file system's quota is not the limit.)
        let (_s, mut c, _) = attacker(strategy, &["write", "/output/result.txt", "1048576"], |p| {
            p.execution.max_output_bytes = 1024;
            p.inputs[0].max_bytes = 2 << 20;
        });
        let summary = c.run(&alice()).unwrap();
        assert_eq!(
            summary.record.outcome,
            Outcome::Trapped(TrapKind::OutputLimit),
            "{strategy:?}: {:?}",
            summary.record
        );
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
    let before = c.stored_bytes().unwrap();
    let err = c.finish_input(written).unwrap_err();
    assert_eq!(err.refusal().map(|r| r.rule()), Some("wrong-state"));
    assert!(c.stored_bytes().unwrap() <= before - B_CSV.len() as u64);
    assert_eq!(c.status(&bob()).unwrap().inputs[1].provided, Some(false));
}
