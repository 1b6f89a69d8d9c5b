//! `covenant attestation-service …` driven through the real binary: init, enrolment, reference
//! values, a real attestation against `serve` on loopback, revocation and the audit log.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use covenant_attest::software::SoftwarePlatform;
use covenant_attest::wire::prepare_attestation;
use covenant_attest::{Digest, Measurement};
use covenant_attestation_service::AttestationClient;

fn covenant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .output()
        .expect("the covenant binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `DIR/NAME.crt` and `DIR/NAME.key` as `covenant identity new` writes them.
fn identity(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = covenant_test_support::identity(name);
    std::fs::write(dir.join(format!("{name}.crt")), &cert).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), &key).unwrap();
    (cert, key)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on an ephemeral loopback port and returns it with its URL.
fn serve(dir: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args([
            "attestation-service",
            "serve",
            "--dir",
            dir,
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (Server(child), url)
}

#[test]
fn a_service_is_initialised_administered_and_attests_a_runtime() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("svc");
    let dir = dir.to_str().unwrap();

    let init = covenant(&["attestation-service", "init", "--dir", dir]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    assert!(text(&init.stdout).contains("ca.crt"));
    let again = covenant(&["attestation-service", "init", "--dir", dir]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("already exists"));

    let (cert, key) = identity(temp.path(), "host-1");
    let cert_path = temp.path().join("host-1.crt");
    let enroll = covenant(&[
        "attestation-service",
        "enroll-platform",
        "--dir",
        dir,
        "host-1",
        cert_path.to_str().unwrap(),
    ]);
    assert!(enroll.status.success(), "{}", text(&enroll.stderr));
    let key_path = temp.path().join("host-1.key");
    let not_a_cert = covenant(&[
        "attestation-service",
        "enroll-platform",
        "--dir",
        dir,
        "host-2",
        key_path.to_str().unwrap(),
    ]);
    assert_eq!(
        not_a_cert.status.code(),
        Some(2),
        "{}",
        text(&not_a_cert.stderr)
    );

    let measurement = Measurement::sha256([0x5a; 32]).to_hex();
    let bad = covenant(&[
        "attestation-service",
        "allow-measurement",
        "--dir",
        dir,
        "host-1",
        "not-hex",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let unknown = covenant(&[
        "attestation-service",
        "allow-measurement",
        "--dir",
        dir,
        "nobody",
        &measurement,
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    let allow = covenant(&[
        "attestation-service",
        "allow-measurement",
        "--dir",
        dir,
        "host-1",
        &measurement,
    ]);
    assert!(allow.status.success(), "{}", text(&allow.stderr));

    let (server, url) = serve(dir);
    let platform = SoftwarePlatform::new(
        cert.as_bytes(),
        key.as_bytes(),
        Measurement::sha256([0x5a; 32]),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let serial = runtime.block_on(async {
        let client = AttestationClient::new(&url, None).unwrap();
        let nonce = client.nonce().await.unwrap().nonce;
        let (_, request) =
            prepare_attestation(&platform, Digest([1; 32]), "c-1", &[], nonce).unwrap();
        client.attest(&request).await.unwrap().serial
    });
    drop(server);

    let revoke = covenant(&[
        "attestation-service",
        "revoke",
        "--dir",
        dir,
        "--certificate",
        &serial,
        "--reason",
        "test",
    ]);
    assert!(revoke.status.success(), "{}", text(&revoke.stderr));
    let none = covenant(&["attestation-service", "revoke", "--dir", dir]);
    assert_eq!(none.status.code(), Some(2));

    let audit = covenant(&["attestation-service", "audit", "--dir", dir, "--json"]);
    assert!(audit.status.success(), "{}", text(&audit.stderr));
    let entries: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let summary: Vec<(String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |action: &str, outcome: &str| (action.to_owned(), outcome.to_owned());
    assert_eq!(
        summary,
        [
            expect("init", "ok"),
            expect("enroll-platform", "ok"),
            expect("enroll-platform", "refused"),
            expect("allow-measurement", "refused"),
            expect("allow-measurement", "refused"),
            expect("allow-measurement", "ok"),
            expect("nonce", "ok"),
            expect("attest", "ok"),
            expect("revoke-certificate", "ok"),
        ]
    );
    let table = covenant(&["attestation-service", "audit", "--dir", dir]);
    assert!(
        text(&table.stdout).contains(&serial),
        "{}",
        text(&table.stdout)
    );
}

#[test]
fn commands_on_an_uninitialised_directory_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_str().unwrap();
    for args in [
        vec!["attestation-service", "audit", "--dir", dir],
        vec!["attestation-service", "serve", "--dir", dir],
        vec![
            "attestation-service",
            "allow-measurement",
            "--dir",
            dir,
            "p",
            &"0".repeat(64),
        ],
    ] {
        let output = covenant(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains("init"),
            "{}",
            text(&output.stderr)
        );
    }
}

#[test]
fn the_measurement_command_agrees_with_the_software_platform() {
    let output = covenant(&["measurement"]);
    assert!(output.status.success());
    let printed = text(&output.stdout).trim().to_owned();
    let measured =
        covenant_attest::software::measure_file(Path::new(env!("CARGO_BIN_EXE_covenant"))).unwrap();
    assert_eq!(printed, measured.to_hex());
}
