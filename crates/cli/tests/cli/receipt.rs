//! `covenant receipt verify`, through the real binary, on a receipt a real computation signed
//! in-process with a key certified the way the attestation service certifies one.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use covenant_attest::ca::bind;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::software::{SoftwarePlatform, SoftwareVerifier};
use covenant_attest::{
    CertificateAuthority, CheckedCsr, Digest, EvidenceRequest, EvidenceVerifier, Measurement,
    Nonce, Platform, PlatformEnrolment, PlatformKind, RuntimeCsrRequest,
};
use covenant_policy::{
    Attestation, Execution, FormatTag, FormatVersion, Input, Output as PolicyOutput, Policy,
    Principal as PolicyPrincipal, Program, RerunConsent, Runs, Strategy,
};
use covenant_runtime::{Computation, Principal, ReceiptSigner};
use rcgen::PublicKeyData as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

const MEASUREMENT: Measurement = Measurement::sha256([0x11; 32]);

fn identity(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn policy(ca: &CertificateAuthority, program: &[u8]) -> Policy {
    let now = OffsetDateTime::now_utc();
    Policy {
        format: FormatTag,
        version: FormatVersion,
        computation: "sum-study".into(),
        expires: covenant_policy::format_utc(now + time::Duration::days(1)),
        principals: ["alice", "bob", "carol"]
            .into_iter()
            .map(|name| PolicyPrincipal {
                name: name.into(),
                certificate: identity(name).0,
            })
            .collect(),
        program: Program {
            name: "sum_inputs".into(),
            sha256: hex::encode(Sha256::digest(program)),
            provider: "alice".into(),
            args: vec![],
            env: BTreeMap::new(),
        },
        inputs: vec![
            Input {
                path: "/input/a.csv".into(),
                provider: "alice".into(),
                sha256: None,
                max_bytes: 1024,
                required: true,
            },
            Input {
                path: "/input/b.csv".into(),
                provider: "bob".into(),
                sha256: None,
                max_bytes: 1024,
                required: true,
            },
        ],
        outputs: vec![PolicyOutput {
            path: "/output/result.txt".into(),
            readers: vec!["carol".into()],
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
            measurements: BTreeMap::from([("software".into(), vec![MEASUREMENT.to_hex()])]),
        },
    }
}

/// A receipt key for `policy`, certified by `ca` through evidence, CSR and binding.
fn signer(ca: &CertificateAuthority, policy: &covenant_policy::ValidPolicy) -> ReceiptSigner {
    let (cert_pem, key_pem) = identity("platform-1");
    let platform =
        SoftwarePlatform::new(cert_pem.as_bytes(), key_pem.as_bytes(), MEASUREMENT).unwrap();
    let enrolment = PlatformEnrolment {
        name: "platform-1".into(),
        kind: PlatformKind::Software,
        certificate_der: covenant_attest::pem::certificate_from_pem(cert_pem.as_bytes(), "t")
            .unwrap()
            .to_vec(),
    };
    let policy_hash = Digest(*policy.hash().as_bytes());
    let key = generate_tls_key().unwrap();
    let csr = RuntimeCsrRequest {
        policy_hash,
        computation_id: "sum-study".into(),
        dns_names: vec!["sum-study.example".into()],
    }
    .build(&key)
    .unwrap();
    let request = EvidenceRequest::new(
        policy_hash,
        "sum-study",
        &key.subject_public_key_info(),
        Nonce::random().unwrap(),
    )
    .unwrap();
    let evidence = platform.evidence(&request).unwrap();
    let verified = SoftwareVerifier.verify(&evidence, &enrolment).unwrap();
    let bound = bind(&verified, &CheckedCsr::parse(&csr).unwrap()).unwrap();
    let issued = ca
        .issue_attested(&bound, OffsetDateTime::now_utc(), Duration::from_secs(3600))
        .unwrap();
    ReceiptSigner::new(
        &key.serialize_der(),
        vec![issued.der, ca.certificate_der().to_vec()],
    )
    .unwrap()
}

/// Runs the computation once; writes `policy.json` and `receipt.jws` into `dir`.
fn make_receipt(dir: &Path) -> Policy {
    let ca = CertificateAuthority::generate("test CA", OffsetDateTime::now_utc()).unwrap();
    let program = covenant_guests::SUM_INPUTS.bytes();
    let policy = policy(&ca, &program);
    let valid = covenant_policy::validate(&policy, OffsetDateTime::now_utc()).unwrap();
    let signer = signer(&ca, &valid);
    let mut c = Computation::new(valid, signer).unwrap();
    c.provide_program(&Principal::new("alice"), &program)
        .unwrap();
    c.provide_input(&Principal::new("alice"), "/input/a.csv", &b"1,2"[..])
        .unwrap();
    c.provide_input(&Principal::new("bob"), "/input/b.csv", &b"3"[..])
        .unwrap();
    let receipt = c.run(&Principal::new("alice")).unwrap().receipt;
    std::fs::write(dir.join("receipt.jws"), receipt).unwrap();
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
    assert_eq!(
        value["claims"]["outputs"][0]["sha256"],
        hex::encode(Sha256::digest(b"6\n"))
    );
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
