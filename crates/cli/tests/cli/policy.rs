//! `covenant policy build|check|hash` and `covenant measurement`, driven through the real binary
//! on the annotated example source (`docs/policy-example/policy.toml`) with identities made here.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const EXAMPLE_SOURCE: &str = include_str!("../../../../docs/policy-example/policy.toml");
const EXAMPLE_EXPIRES: &str = "expires = \"2027-06-01T00:00:00Z\"";
const WASM: &[u8] = b"\0asm\x01\0\0\0";

fn covenant(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the covenant binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn certificate(name: &str, ca: bool) -> String {
    let key = KeyPair::generate().expect("P-256 key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params.self_signed(&key).expect("certificate").pem()
}

/// A directory holding the example source (its expiry moved a year past today, so the test
/// does not age) and every file it refers to.
fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("ids")).expect("ids");
    std::fs::create_dir_all(root.join("attestation")).expect("attestation");
    for name in ["hospital-a", "hospital-b", "researcher"] {
        std::fs::write(
            root.join(format!("ids/{name}.crt")),
            certificate(name, false),
        )
        .expect("write");
    }
    std::fs::write(
        root.join("attestation/ca.crt"),
        certificate("Covenant attestation CA", true),
    )
    .expect("write");
    std::fs::write(root.join("psi.wasm"), WASM).expect("write");
    let expires = OffsetDateTime::now_utc() + time::Duration::days(365);
    let expires = covenant_policy::format_utc(expires.replace_nanosecond(0).expect("valid"));
    assert!(EXAMPLE_SOURCE.contains(EXAMPLE_EXPIRES));
    let source = EXAMPLE_SOURCE.replace(EXAMPLE_EXPIRES, &format!("expires = \"{expires}\""));
    std::fs::write(root.join("policy.toml"), source).expect("write");
    dir
}

/// Builds the example in `dir` into `policy.json`.
fn build(dir: &Path) -> PathBuf {
    let output = covenant(
        &["policy", "build", "policy.toml", "-o", "policy.json"],
        dir,
    );
    assert!(output.status.success(), "build failed: {}", stderr(&output));
    dir.join("policy.json")
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    edit(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).expect("json")).expect("write");
}

#[test]
fn measurement_is_sha256_of_the_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = covenant(&["measurement"], dir.path());
    assert!(output.status.success());
    let binary = std::fs::read(env!("CARGO_BIN_EXE_covenant")).expect("read the binary");
    assert_eq!(
        stdout(&output),
        format!("{}\n", hex::encode(Sha256::digest(binary)))
    );
}

#[test]
fn build_check_hash_round_trip() {
    let dir = example_dir();
    let output = covenant(
        &["policy", "build", "policy.toml", "-o", "policy.json"],
        dir.path(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let hash_line = stdout(&output)
        .lines()
        .find_map(|l| l.strip_prefix("policy hash ").map(str::to_owned));
    let built_hash = hash_line.expect("build prints the hash");

    // `hash` prints the hash alone.
    let output = covenant(&["policy", "hash", "policy.json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{built_hash}\n"));

    // `check` summarises and ends with the same hash.
    let output = covenant(&["policy", "check", "policy.json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = stdout(&output);
    for expected in [
        "computation  hospital-study",
        "  principal   program provider  data provider  result reader  run starter",
        "  hospital-a  -                 yes            yes",
        "  researcher  yes               -              yes            yes",
        "  /input/a.csv        from hospital-a, required, at most 100 MiB (104857600 bytes), pinned to sha256 1b472aa4",
        "  /input/b.csv        from hospital-b, required, at most 64 MiB (67108864 bytes)",
        "  /output/result.txt  read by researcher, hospital-a, hospital-b",
        "  stdout              read by researcher",
        "  memory      256 MiB (268435456 bytes)",
        "  timeout     1m",
        "  fuel        10000000000",
        "  clock       denied",
        "  random      allowed",
        "(this covenant build)",
        &format!("  sha256    {}", hex::encode(Sha256::digest(WASM))),
        "CN=hospital-b, until ",
    ] {
        assert!(
            summary.contains(expected),
            "missing {expected:?} in:\n{summary}"
        );
    }
    assert!(
        summary.ends_with(&format!("policy hash  {built_hash}\n")),
        "{summary}"
    );

    // "self" became the output of `covenant measurement`.
    let measurement = stdout(&covenant(&["measurement"], dir.path()));
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("policy.json")).expect("read"))
            .expect("json");
    assert_eq!(
        value["attestation"]["measurements"]["software"][0],
        measurement.trim()
    );
}

#[test]
fn hash_ignores_formatting() {
    let dir = example_dir();
    let path = build(dir.path());
    let pretty = stdout(&covenant(&["policy", "hash", "policy.json"], dir.path()));
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    std::fs::write(
        dir.path().join("compact.json"),
        serde_json::to_string(&value).expect("json"),
    )
    .expect("write");
    let compact = stdout(&covenant(&["policy", "hash", "compact.json"], dir.path()));
    assert_eq!(pretty, compact);
    assert_eq!(pretty.trim().len(), 64);
}

#[test]
fn check_lists_every_problem_and_exits_2() {
    let dir = example_dir();
    let path = build(dir.path());
    edit_json(&path, |v| {
        v["inputs"][1]["provider"] = "hospital-c".into();
        v["execution"]["timeout_ms"] = 0.into();
    });
    let output = covenant(&["policy", "check", "policy.json"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    assert_eq!(
        stderr(&output),
        "error: policy.json is not a valid policy (2 problems):\n  \
         inputs[1].provider: \"hospital-c\" is not a declared principal; declared principals are hospital-a, hospital-b, researcher\n  \
         execution.timeout_ms: 0 is out of bounds; use 1 to 86400000 milliseconds (24h)\n"
    );
}

#[test]
fn check_json_for_scripts() {
    let dir = example_dir();
    let path = build(dir.path());
    let output = covenant(&["policy", "check", "--json", "policy.json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["valid"], true);
    assert_eq!(
        report["hash"],
        stdout(&covenant(&["policy", "hash", "policy.json"], dir.path())).trim()
    );
    assert_eq!(
        report["roles"]["researcher"],
        serde_json::json!(["program provider", "result reader", "run starter"])
    );
    let program = report["capabilities"]
        .as_array()
        .expect("list")
        .last()
        .expect("program entry")
        .clone();
    assert_eq!(program["subject"], "program");
    assert_eq!(
        program["grants"][0],
        serde_json::json!({"resource": {"file": "/input/a.csv"}, "rights": ["read"], "phase": "during-run"})
    );

    edit_json(&path, |v| v["runs"]["max"] = 0.into());
    let output = covenant(&["policy", "check", "--json", "policy.json"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        report,
        serde_json::json!({"valid": false, "problems": [{"path": "runs.max", "message": "0 is out of bounds; use 1 to 1000"}]})
    );
}

#[test]
fn check_at_a_time_after_expiry_fails() {
    let dir = example_dir();
    build(dir.path());
    let output = covenant(
        &[
            "policy",
            "check",
            "--at",
            "2100-01-01T00:00:00Z",
            "policy.json",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("\n  expires: "),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("is in the past (now is 2100-01-01T00:00:00Z)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_fields_and_broken_json_are_refused() {
    let dir = example_dir();
    let path = build(dir.path());
    edit_json(&path, |v| v["program"]["entry"] = "main".into());
    for command in ["check", "hash"] {
        let output = covenant(&["policy", command, "policy.json"], dir.path());
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(
            stderr(&output).starts_with(
                "error: policy.json is not a valid policy: program.entry: unknown field `entry`"
            ),
            "{command}: {}",
            stderr(&output)
        );
    }
    std::fs::write(&path, "{").expect("write");
    let output = covenant(&["policy", "hash", "policy.json"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not valid policy JSON"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_files_are_operational_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = covenant(&["policy", "hash", "nothing.json"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: cannot read nothing.json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn build_lists_every_source_problem_and_writes_nothing() {
    let dir = example_dir();
    std::fs::remove_file(dir.path().join("ids/hospital-b.crt")).expect("remove");
    let source = std::fs::read_to_string(dir.path().join("policy.toml")).expect("read");
    std::fs::write(
        dir.path().join("policy.toml"),
        source.replace("timeout = \"60s\"", "timeout = \"60\""),
    )
    .expect("write");
    let output = covenant(&["policy", "build", "policy.toml"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with("error: cannot build a policy from policy.toml (2 problems):\n"),
        "{message}"
    );
    assert!(
        message.contains(
            "\n  principals.hospital-b.certificate: cannot read \"ids/hospital-b.crt\": "
        ),
        "{message}"
    );
    assert!(
        message.contains("\n  execution.timeout: \"60\" has no unit"),
        "{message}"
    );
    assert!(!dir.path().join("policy.json").exists());
}

#[test]
fn build_refuses_an_invalid_policy() {
    let dir = example_dir();
    let source = std::fs::read_to_string(dir.path().join("policy.toml")).expect("read");
    let source = source.replace("provider = \"hospital-b\"", "provider = \"hospital-c\"");
    std::fs::write(dir.path().join("policy.toml"), source).expect("write");
    let output = covenant(&["policy", "build", "policy.toml"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("error: the policy built from policy.toml is not valid (1 problem):\n  inputs[1].provider: \"hospital-c\" is not a declared principal"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("policy.json").exists());
}

#[test]
fn build_writes_next_to_the_source_or_to_stdout() {
    let dir = example_dir();
    std::fs::create_dir(dir.path().join("out")).expect("mkdir");
    // Paths in the source are relative to the source file, not to the working directory.
    let output = covenant(
        &["policy", "build", "../policy.toml"],
        &dir.path().join("out"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        dir.path().join("policy.json").exists(),
        "default output: the source's path with .json"
    );
    let output = covenant(&["policy", "build", "policy.toml", "-o", "-"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read(dir.path().join("policy.json")).expect("read");
    assert_eq!(
        output.stdout, written,
        "the same certificates and program give the same JSON"
    );
    assert!(stderr(&output).starts_with("policy hash "));
}

#[test]
fn identities_from_covenant_identity_new_build_a_valid_policy() {
    let dir = example_dir();
    std::fs::remove_dir_all(dir.path().join("ids")).expect("remove the rcgen identities");
    for name in ["hospital-a", "hospital-b", "researcher"] {
        let output = covenant(&["identity", "new", name, "--dir", "ids"], dir.path());
        assert!(
            output.status.success(),
            "identity new {name}: {}",
            stderr(&output)
        );
    }
    build(dir.path());
    let output = covenant(&["policy", "check", "policy.json"], dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("  researcher  CN=researcher, until "),
        "{}",
        stdout(&output)
    );
}
