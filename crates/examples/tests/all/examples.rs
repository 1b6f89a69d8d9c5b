//! Each example end to end, checked against its plain Rust answer.

use covenant_examples::{edit_distance, generate, linear_regression, shamir};
use covenant_policy::Strategy;
use covenant_runtime::Principal;

use crate::support::*;

/// Runs example `name` with data from `seed` on `strategy` and checks everything it releases.
fn check(name: &str, seed: u64, strategy: Strategy) -> Finished {
    let example = generate(name, seed).unwrap();
    let finished = run_example(example, strategy, 0);
    finished.check();
    finished
}

#[test]
fn private_set_intersection_jit() {
    let finished = check("private-set-intersection", 1, Strategy::Jit);
    // The planted overlap is about 300 patients; generated data must make the count non-trivial.
    let shared: usize = finished.example.expected.trim().parse().unwrap();
    assert!((250..=300).contains(&shared), "{shared}");
}

#[test]
fn private_set_intersection_interpreter() {
    check("private-set-intersection", 2, Strategy::Interpreter);
}

#[test]
fn intersection_sum_jit() {
    let finished = check("intersection-sum", 1, Strategy::Jit);
    assert!(finished.example.expected.starts_with("count="));
    assert_ne!(finished.example.expected, "count=0\nsum=0\n");
}

#[test]
fn linear_regression_jit() {
    let seed = 3;
    let finished = check("linear-regression", seed, Strategy::Jit);
    // Independently of the formula: the fit finds the line the points were scattered around.
    let (slope, intercept) = linear_regression::planted(seed);
    let fit = String::from_utf8(finished.fetch(linear_regression::OUTPUT)).unwrap();
    let value = |key: &str| -> f64 {
        fit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!((value("slope=") - slope).abs() < 0.02, "{fit} vs {slope}");
    assert!(
        (value("intercept=") - intercept).abs() < 0.5,
        "{fit} vs {intercept}"
    );
}

#[test]
fn macd_jit_and_only_the_fund_reads_it() {
    let finished = check("macd", 4, Strategy::Jit);
    // The vendor provided the program but reads nothing: neither the result nor stdout.
    assert_eq!(
        finished.assert_non_readers_refused(covenant_examples::macd::OUTPUT),
        1
    );
    assert_eq!(finished.assert_non_readers_refused("stdout"), 1);
    let err = finished
        .computation
        .fetch_output(&Principal::new("vendor"), "/input/prices.csv")
        .map(read_all)
        .unwrap_err();
    assert_eq!(
        err.refusal().map(|r| r.rule()),
        Some("unknown-output"),
        "{err}"
    );
}

#[test]
fn edit_distance_jit() {
    let finished = check("edit-distance", 5, Strategy::Jit);
    let distance: usize = finished.example.expected.trim().parse().unwrap();
    assert!((1..=edit_distance::EDITS).contains(&distance), "{distance}");
}

#[test]
fn shamir_jit_and_interpreter() {
    for (seed, strategy) in [(6, Strategy::Jit), (7, Strategy::Interpreter)] {
        let finished = check("shamir", seed, strategy);
        // The planted secret, not just the same interpolation done twice.
        let secret = String::from_utf8(finished.fetch(shamir::OUTPUT)).unwrap();
        assert_eq!(secret, format!("{}\n", shamir::secret(seed)));
        // Only the heir reads the secret; the three custodians are refused it.
        assert_eq!(finished.assert_non_readers_refused(shamir::OUTPUT), 3);
    }
}

#[test]
fn malformed_input_fails_cleanly() {
    // Two custodians holding the same x: the program reports it and exits 1, no panic (a
    // panic would be a trap, not exit 1), and writes no secret.
    let mut example = generate("shamir", 8).unwrap();
    let first = example.inputs[0].bytes.clone();
    example.inputs[1].bytes = first;
    let finished = run_example(example, Strategy::Jit, 1);
    let err = finished
        .computation
        .fetch_output(&Principal::new("heir"), shamir::OUTPUT)
        .map(read_all)
        .unwrap_err();
    assert_eq!(
        err.refusal().map(|r| r.rule()),
        Some("output-not-written"),
        "{err}"
    );

    // Points that are not numbers: linear regression exits 1 too.
    let mut example = generate("linear-regression", 9).unwrap();
    example.inputs[1].bytes = b"1.0,2.0\nthree,4\n".to_vec();
    run_example(example, Strategy::Jit, 1);
}

#[test]
fn generators_are_deterministic() {
    for name in covenant_examples::NAMES {
        assert_eq!(generate(name, 11), generate(name, 11), "{name}");
        assert_ne!(generate(name, 11), generate(name, 12), "{name}");
    }
    assert!(generate("no-such-example", 1).is_none());
}

#[test]
fn every_example_directory_has_a_policy_and_readme() {
    for name in covenant_examples::NAMES {
        let dir = example_dir(name);
        for file in ["policy.toml", "README.md"] {
            assert!(
                dir.join(file).is_file(),
                "examples/{name}/{file} is missing"
            );
        }
    }
}
