//! `covenant receipt verify`, through the real binary, on a receipt a real computation signed
//! in-process with a key certified the way the attestation service certifies one.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::path::Path;
use std::process::{Command, Output};

use covenant_policy::{Policy, Strategy};
use covenant_runtime::{Computation, Principal};
use covenant_test_support::{Service, sum_inputs_policy};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// The sum_inputs policy with one output (carol's `/output/result.txt`) and no fuel limit.
fn policy(service: &Service, program: &[u8]) -> Policy {
    let mut policy = sum_inputs_policy(&service.ca, program, Strategy::Interpreter);
    policy.outputs.truncate(1);
    policy.execution.fuel = None;
    policy
}

/// Runs the computation once, its receipt key certified by a fresh attestation service
/// through evidence, CSR and binding; writes `policy.json` and `receipt.jws` into `dir`, and
/// what carol fetched as `result.txt` with its salt as `result.salt`.
fn make_receipt(dir: &Path) -> Policy {
    let service = Service::new();
    let program = covenant_guests::SUM_INPUTS.bytes();
    let policy = policy(&service, &program);
    let valid = covenant_policy::validate(&policy, OffsetDateTime::now_utc()).unwrap();
    let signer = service.signer(&valid);
    let mut c = Computation::new(valid, signer).unwrap();
    c.provide_program(&Principal::new("alice"), &program)
        .unwrap();
    c.provide_input(&Principal::new("alice"), "/input/a.csv", &b"1,2"[..])
        .unwrap();
    c.provide_input(&Principal::new("bob"), "/input/b.csv", &b"3"[..])
        .unwrap();
    let receipt = c.run(&Principal::new("alice")).unwrap().receipt;
    std::fs::write(dir.join("receipt.jws"), receipt).unwrap();
    let mut fetched = c
        .fetch_output(&Principal::new("carol"), "/output/result.txt")
        .unwrap();
    std::fs::write(dir.join("result.salt"), fetched.salt_hex()).unwrap();
    let mut result = Vec::new();
    std::io::Read::read_to_end(&mut fetched, &mut result).unwrap();
    std::fs::write(dir.join("result.txt"), result).unwrap();
    std::fs::write(
        dir.join("policy.json"),
        covenant_policy::to_json_pretty(&policy).unwrap(),
    )
    .unwrap();
    policy
}

fn covenant(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the covenant binary runs")
}

#[test]
fn receipt_verify_accepts_a_genuine_receipt() {
    let dir = tempfile::tempdir().unwrap();
    make_receipt(dir.path());
    let out = covenant(
        &[
            "receipt",
            "verify",
            "--policy",
            "policy.json",
            "receipt.jws",
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("receipt valid: run 1 of computation \"sum-study\""),
        "{stdout}"
    );
    assert!(stdout.contains("exited with code 0"), "{stdout}");

    let out = covenant(
        &[
            "receipt",
            "verify",
            "--json",
            "--policy",
            "policy.json",
            "receipt.jws",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["valid"], true);
    assert_eq!(value["claims"]["run"], 1);
    assert_eq!(value["claims"]["outputs"][0]["status"], "written");
    // The receipt commits to the result; it does not disclose its hash.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(&hex::encode(Sha256::digest(b"6\n"))),
        "{text}"
    );
}

#[test]
fn receipt_verify_checks_a_fetched_output_with_its_salt() {
    let dir = tempfile::tempdir().unwrap();
    make_receipt(dir.path());
    let salt = std::fs::read_to_string(dir.path().join("result.salt")).unwrap();
    let file = "/output/result.txt=result.txt".to_owned();
    let salt_arg = format!("/output/result.txt={salt}");
    let verify = |file: &str, salt: &str| {
        covenant(
            &[
                "receipt",
                "verify",
                "--policy",
                "policy.json",
                "receipt.jws",
                "--file",
                file,
                "--salt",
                salt,
            ],
            dir.path(),
        )
    };
    // The salt read from a file (off the command line) works the same.
    let out = verify(&file, "/output/result.txt=@result.salt");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = verify(&file, &salt_arg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "checked  result.txt holds what the receipt committed to at /output/result.txt"
        ),
        "{stdout}"
    );
    // Other bytes, or a guessed salt, do not open the commitment: exit 2, naming the output.
    std::fs::write(dir.path().join("guess.txt"), "7\n").unwrap();
    let zero = format!("/output/result.txt={}", "00".repeat(32));
    for (file, salt) in [
        ("/output/result.txt=guess.txt", salt_arg.as_str()),
        (file.as_str(), zero.as_str()),
    ] {
        let out = verify(file, salt);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("/output/result.txt does not match the receipt"),
            "{stderr}"
        );
    }
    // A --file without its --salt is a usage error that says what to add.
    let out = covenant(
        &[
            "receipt",
            "verify",
            "--policy",
            "policy.json",
            "receipt.jws",
            "--file",
            &file,
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --salt /output/result.txt=HEX"));
}

#[test]
fn receipt_verify_refuses_a_tampered_receipt_and_another_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = make_receipt(dir.path());
    let receipt = std::fs::read_to_string(dir.path().join("receipt.jws")).unwrap();
    let (rest, sig) = receipt.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    std::fs::write(
        dir.path().join("tampered.jws"),
        format!("{rest}.{flipped}{}", &sig[1..]),
    )
    .unwrap();
    let out = covenant(
        &[
            "receipt",
            "verify",
            "--policy",
            "policy.json",
            "tampered.jws",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signature does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    policy.execution.timeout_ms += 1;
    std::fs::write(
        dir.path().join("other.json"),
        covenant_policy::to_json_pretty(&policy).unwrap(),
    )
    .unwrap();
    let out = covenant(
        &[
            "receipt",
            "verify",
            "--json",
            "--policy",
            "other.json",
            "receipt.jws",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["valid"], false);
    assert!(
        value["error"].as_str().unwrap().contains("policy"),
        "{value}"
    );
}
