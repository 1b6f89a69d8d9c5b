//! `covenant demo` through the real binary: every directory under `examples/` runs end to end
//! (identities, attestation service, host and hardened worker, principals over TLS, receipt),
//! and the README's main command is a demo that works.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn covenant(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the covenant binary runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs one demo in `dir` and checks what a user relies on: exit 0, the result checked
/// against plain Rust, the receipt verified, the worker closed cleanly, the files left.
fn assert_demo_runs(example: &str, cwd: &Path) {
    let output = covenant(&["demo", example, "--dir", example], cwd);
    let all = text(&output);
    assert!(output.status.success(), "covenant demo {example}:\n{all}");
    for expected in [
        "It equals the answer computed in plain Rust from the same data.",
        "verifies against the policy",
        "Closed: every principal closed the computation",
    ] {
        assert!(
            all.contains(expected),
            "covenant demo {example} did not say {expected:?}:\n{all}"
        );
    }
    let dir = cwd.join(example);
    for file in [
        "policy.toml",
        "policy.json",
        "receipt.jws",
        "result.txt",
        "COMMANDS.md",
    ] {
        assert!(dir.join(file).is_file(), "{example}: no {file}");
    }
    // The receipt it left verifies with the ordinary command, offline.
    let verify = covenant(
        &[
            "receipt",
            "verify",
            "--policy",
            "policy.json",
            "receipt.jws",
        ],
        &dir,
    );
    assert!(verify.status.success(), "{example}: {}", text(&verify));
    // No worker outlives the demo.
    let policy = dir.join("policy.json");
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let running = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !running
            .lines()
            .any(|l| l.contains("worker") && l.contains(policy.to_str().unwrap())),
        "{example}: a worker is still running"
    );
}

#[test]
fn every_example_directory_runs_as_a_demo() {
    let mut examples: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    examples.sort();
    assert!(examples.len() >= 6, "examples/ has {examples:?}");
    let cwd = tempfile::tempdir().unwrap();
    for example in &examples {
        assert_demo_runs(example, cwd.path());
    }
}

/// The README's main command, between its `<!-- main-command -->` markers, is
/// `cargo run ... -p covenant -- ARGS`; ARGS run here with the binary under test.
#[test]
fn the_readme_main_command_is_a_demo_that_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme
        .split("<!-- main-command -->")
        .nth(1)
        .expect("README.md has a <!-- main-command --> block");
    let command = block
        .lines()
        .find(|l| l.contains("cargo run"))
        .expect("the main command is a cargo run");
    let args: Vec<&str> = command
        .split(" -- ")
        .nth(1)
        .expect("cargo run ... -- ARGS")
        .split_whitespace()
        .collect();
    assert_eq!(
        args.first(),
        Some(&"demo"),
        "the main command is `covenant demo`: {command}"
    );
    let cwd = tempfile::tempdir().unwrap();
    let output = covenant(&args, cwd.path());
    assert!(output.status.success(), "{command}:\n{}", text(&output));
    assert!(text(&output).contains("It equals the answer computed in plain Rust"));
}

#[test]
fn an_unknown_example_is_refused_with_the_list() {
    let cwd = tempfile::tempdir().unwrap();
    let output = covenant(&["demo", "no-such-example"], cwd.path());
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let all = text(&output);
    assert!(
        all.contains("private-set-intersection") && all.contains("shamir"),
        "{all}"
    );
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "it made files"
    );
}

#[test]
fn a_directory_the_demo_did_not_make_is_left_alone() {
    let cwd = tempfile::tempdir().unwrap();
    let mine = cwd.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    let output = covenant(&["demo", "macd", "--dir", "mine"], cwd.path());
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("was not made by `covenant demo`"));
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);
}
