//! `covenant client` through the real binary, for what needs no server — the checks of the
//! local files, the command line, and an address where nothing listens — and, against the
//! runtime's API served in this process, uploads the policy rules out. (The end-to-end flow
//! through `covenant serve` is in `serve.rs`.)
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use covenant_attest::{CertificateAuthority, Measurement};
use covenant_policy::{
    Attestation, Execution, FormatTag, FormatVersion, Input, Output as PolicyOutput, Policy,
    Principal as PolicyPrincipal, Program, RerunConsent, Runs, Strategy,
};
use covenant_runtime::api::{ApiServer, ServerIdentity};
use covenant_runtime::{Computation, ReceiptSigner};
use time::OffsetDateTime;

/// A directory with `alice.crt`/`alice.key` (made by `covenant identity new`), `mallory.*`
/// (not in the policy) and `policy.json` naming alice as the only principal.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in ["alice", "mallory"] {
            let out = covenant(&["identity", "new", name, "--dir", "."], dir.path(), &[]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let alice_pem = std::fs::read_to_string(dir.path().join("alice.crt")).unwrap();
        let ca = CertificateAuthority::generate("test CA", OffsetDateTime::now_utc()).unwrap();
        let policy = Policy {
            format: FormatTag,
            version: FormatVersion,
            computation: "shared-patients".into(),
            expires: covenant_policy::format_utc(
                OffsetDateTime::now_utc() + time::Duration::days(1),
            ),
            principals: vec![PolicyPrincipal {
                name: "alice".into(),
                certificate: alice_pem,
            }],
            program: Program {
                name: "sum".into(),
                sha256: "ab".repeat(32),
                provider: "alice".into(),
                args: vec![],
                env: BTreeMap::new(),
            },
            inputs: vec![Input {
                path: "/input/a.csv".into(),
                provider: "alice".into(),
                sha256: None,
                max_bytes: 1024,
                required: true,
            }],
            outputs: vec![PolicyOutput {
                path: "stdout".into(),
                readers: vec!["alice".into()],
            }],
            runs: Runs {
                starters: vec!["alice".into()],
                max: 1,
                rerun_consent: RerunConsent::All,
            },
            execution: Execution {
                strategy: Strategy::Interpreter,
                max_memory_bytes: 64 << 20,
                fuel: None,
                timeout_ms: 10_000,
                max_output_bytes: 1 << 20,
                clock: false,
                random: false,
            },
            attestation: Attestation {
                service: "http://127.0.0.1:3010".into(),
                ca_certificate: ca.certificate_pem(),
                measurements: BTreeMap::from([(
                    "software".into(),
                    vec![Measurement::sha256([0x11; 32]).to_hex()],
                )]),
                appraisal: BTreeMap::new(),
            },
        };
        std::fs::write(
            dir.path().join("policy.json"),
            covenant_policy::to_json_pretty(&policy).unwrap(),
        )
        .unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `covenant client` as `who` against `host`, with `rest` after the common options.
    fn client(&self, who: &str, host: &str, rest: &[&str]) -> Output {
        let mut args = vec![
            "client".to_owned(),
            "--policy".into(),
            "policy.json".into(),
            "--cert".into(),
            format!("{who}.crt"),
            "--key".into(),
            format!("{who}.key"),
            "--host".into(),
            host.into(),
        ];
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        covenant(&args, self.dir.path(), &[])
    }
}

fn covenant(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_covenant"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("COVENANT_HOST");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An address on which nothing listens (a port that was free a moment ago).
fn nothing_listening() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

#[test]
fn client_with_nothing_listening_exits_1_naming_the_address() {
    let f = Fixture::new();
    let host = nothing_listening();
    let out = f.client("alice", &host, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the Covenant host at {host}")),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // The same through COVENANT_HOST, and with --json an error document on stdout.
    let host = nothing_listening();
    let out = covenant(
        &[
            "client",
            "--policy",
            "policy.json",
            "--cert",
            "alice.crt",
            "--key",
            "alice.key",
            "--json",
            "status",
        ],
        f.dir.path(),
        &[("COVENANT_HOST", &host)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&host), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], "unreachable");
    assert!(doc["message"].as_str().unwrap().contains(&host), "{doc}");
}

#[test]
fn client_with_a_missing_or_invalid_certificate_or_key_says_which() {
    let f = Fixture::new();
    let host = nothing_listening();
    std::fs::remove_file(f.path("mallory.key")).unwrap();
    let out = f.client("mallory", &host, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read the key mallory.key"),
        "{}",
        stderr(&out)
    );

    std::fs::write(f.path("alice.key"), "not a key\n").unwrap();
    let out = f.client("alice", &host, &["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("alice.key") && err.contains("not a PEM private key"),
        "{err}"
    );

    std::fs::write(f.path("alice.crt"), "-----BEGIN NONSENSE-----\n").unwrap();
    let out = f.client("alice", &host, &["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a PEM certificate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn client_with_a_certificate_the_policy_does_not_name_is_refused_before_connecting() {
    let f = Fixture::new();
    let out = f.client("mallory", &nothing_listening(), &["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not one of the policy's principals"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn client_with_a_malformed_policy_exits_2_naming_the_file() {
    let f = Fixture::new();
    std::fs::write(f.path("policy.json"), "{\"format\": \"covenant-policy\"").unwrap();
    let out = f.client("alice", &nothing_listening(), &["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("policy.json is not a valid policy"),
        "{}",
        stderr(&out)
    );

    std::fs::remove_file(f.path("policy.json")).unwrap();
    let out = f.client("alice", &nothing_listening(), &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read the policy"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn client_json_fetch_to_stdout_is_refused_as_usage() {
    let f = Fixture::new();
    let out = f.client(
        "alice",
        &nothing_listening(),
        &["--json", "fetch", "stdout"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("-o FILE"), "{}", stderr(&out));
}

#[test]
fn client_help_lists_the_actions_and_exit_codes() {
    let out = covenant(&["client", "--help"], Path::new("."), &[]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for action in [
        "status",
        "provide-program",
        "provide-input",
        "run",
        "fetch",
        "receipt",
        "consent-rerun",
        "close",
    ] {
        assert!(
            help.contains(&format!("  {action} ")),
            "{action} missing from:\n{help}"
        );
    }
    assert!(
        help.contains("127.0.0.1:7443") && help.contains("COVENANT_HOST"),
        "{help}"
    );
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("3 refused by the runtime"), "{help}");
    assert!(
        flat.contains("4 the server is not the runtime the policy names"),
        "{help}"
    );

    // An unknown action is a usage error (clap: 2).
    let out = covenant(
        &[
            "client", "--policy", "p", "--cert", "c", "--key", "k", "dance",
        ],
        Path::new("."),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A computation served in this process on loopback — the runtime's real API over TLS,
/// attested by a test service, behind a relay like `covenant serve`'s host
/// (`covenant_test_support::listen_relayed`) — for the sum_inputs policy (`policy.json` in its
/// directory)
/// naming alice, bob and carol as `covenant identity new` made them: alice provides the
/// program and `/input/a.csv`, bob `/input/b.csv`, each at most 1 KiB.
struct Served {
    dir: tempfile::TempDir,
    addr: String,
    /// Serves the computation until dropped.
    _runtime: tokio::runtime::Runtime,
}

impl Served {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let service = covenant_test_support::Service::new();
        let program = covenant_guests::SUM_INPUTS.bytes();
        let mut policy =
            covenant_test_support::sum_inputs_policy(&service.ca, &program, Strategy::Interpreter);
        for principal in &mut policy.principals {
            let name = principal.name.clone();
            let out = covenant(&["identity", "new", &name, "--dir", "."], dir.path(), &[]);
            assert!(out.status.success(), "{}", stderr(&out));
            principal.certificate =
                std::fs::read_to_string(dir.path().join(format!("{name}.crt"))).unwrap();
        }
        std::fs::write(
            dir.path().join("policy.json"),
            covenant_policy::to_json_pretty(&policy).unwrap(),
        )
        .unwrap();
        let valid = covenant_test_support::validate(&policy);
        let (key, chain) = service.attested_key_named(&valid, &policy.computation);
        let signer = ReceiptSigner::new(&key, chain.clone()).unwrap();
        let computation = Computation::new(valid, signer).unwrap();
        let server = ApiServer::new(computation, &ServerIdentity::new(key, chain)).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let addr = runtime
            .block_on(covenant_test_support::listen_relayed(server))
            .to_string();
        Served {
            dir,
            addr,
            _runtime: runtime,
        }
    }

    /// `covenant client` as `who` with `rest` after the common options.
    fn command(&self, who: &str, rest: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_covenant"));
        command
            .args(["client", "--policy", "policy.json"])
            .args([
                "--cert",
                &format!("{who}.crt"),
                "--key",
                &format!("{who}.key"),
            ])
            .args(["--host", &self.addr])
            .args(rest)
            .current_dir(self.dir.path())
            .env_remove("COVENANT_HOST");
        command
    }

    fn client(&self, who: &str, rest: &[&str]) -> Output {
        self.command(who, rest).output().unwrap()
    }

    /// `covenant client` as `who` reading `/dev/stdin`, fed `bytes` by a thread (until the
    /// client stops reading).
    fn client_fed(&self, who: &str, rest: &[&str], bytes: Vec<u8>) -> Output {
        let mut child = self
            .command(who, rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    }
}

#[test]
fn client_refuses_an_input_over_its_bound_before_sending_and_reports_the_runtimes_refusal_mid_stream()
 {
    let s = Served::new();
    let status = |s: &Served| {
        let out = s.client("carol", &["--json", "status"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = status(&s);

    // A 1 GiB file (sparse) against max_bytes 1024: refused before sending, exit 3, the rule
    // and the numbers named.
    let big = s.dir.path().join("big.csv");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = s.client("bob", &["provide-input", "/input/b.csv", "big.csv"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    for part in [
        "input-too-large",
        "big.csv is 1073741824 bytes",
        "max_bytes for /input/b.csv is 1024",
        "nothing was sent",
        "Send at most 1024 bytes",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    assert!(!err.contains("connection"), "{err}");
    let out = s.client(
        "bob",
        &["--json", "provide-input", "/input/b.csv", "big.csv"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&doc["error"], &doc["rule"], &doc["sent"]),
        (&json("refused"), &json("input-too-large"), &json(false)),
        "{doc}"
    );

    // 64 MiB on stdin, whose size no one knows beforehand: the runtime refuses part-way, and
    // the principal sees that refusal, not a reset connection.
    let out = s.client_fed(
        "bob",
        &["provide-input", "/input/b.csv", "/dev/stdin"],
        vec![b'7'; 64 << 20],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the runtime refused (413 input-too-large)"),
        "{err}"
    );
    assert!(!err.contains("connection"), "{err}");

    // Nothing was stored and nothing changed for the others; the input goes through whole.
    assert_eq!(status(&s), before);
    std::fs::write(s.dir.path().join("b.csv"), "10,20\n").unwrap();
    let out = s.client("bob", &["provide-input", "/input/b.csv", "b.csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("input /input/b.csv: 6 bytes stored"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn json(value: impl Into<serde_json::Value>) -> serde_json::Value {
    value.into()
}

#[test]
fn client_refuses_a_program_the_policy_does_not_pin_before_sending() {
    let s = Served::new();
    std::fs::write(
        s.dir.path().join("hello.wasm"),
        covenant_guests::HELLO.bytes(),
    )
    .unwrap();
    let out = s.client("alice", &["provide-program", "hello.wasm"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    let pinned = covenant_test_support::sha256_hex(&covenant_guests::SUM_INPUTS.bytes());
    for part in [
        "program-hash-mismatch",
        "hello.wasm has SHA-256",
        &pinned,
        "nothing was sent",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }

    std::fs::write(
        s.dir.path().join("sum.wasm"),
        covenant_guests::SUM_INPUTS.bytes(),
    )
    .unwrap();
    let out = s.client("alice", &["provide-program", "sum.wasm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
