//! `covenant attestation verify-evidence`, through the real binary, on a genuine AWS Nitro
//! attestation document (crates/attest/tests/vectors/nitro, see PROVENANCE.md there).

use std::path::PathBuf;
use std::process::{Command, Output};

/// The genuine document with real PCRs: its timestamp is 2022-10-13T08:58:02.136Z, and its
/// leaf certificate lives about three hours around it.
const NITRO_AT: &str = "2022-10-13T09:00:00Z";
/// Its PCR0.
const NITRO_PCR0: &str = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b";

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/tests/vectors/nitro")
        .join(name)
}

fn covenant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .output()
        .expect("the covenant binary runs")
}

fn verify(file: &str, extra: &[&str]) -> Output {
    let path = vector(file);
    let mut args = vec![
        "attestation",
        "verify-evidence",
        "--platform",
        "nitro",
        "--evidence",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    covenant(&args)
}

#[test]
fn attestation_verify_evidence_nitro_genuine_document() {
    // Valid at its own time: exit 0 with PCR0 as the measurement.
    let out = verify("evervault-valid-attestation-doc-bytes", &["--at", NITRO_AT]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("platform: nitro"), "{stdout}");
    assert!(
        stdout.contains(&format!("measurement: {NITRO_PCR0}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("checked at: {NITRO_AT}")),
        "{stdout}"
    );

    // As JSON.
    let out = verify(
        "evervault-valid-attestation-doc-bytes",
        &["--at", NITRO_AT, "--json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["platform"], "nitro");
    assert_eq!(json["measurement"], NITRO_PCR0);
    assert!(json["report_data"].is_string());
    assert_eq!(json["checked_at"], NITRO_AT);

    // Today (and at any time after its leaf expired): exit 4, naming the expiry.
    for at in ["2026-11-30T12:00:00Z", "2022-10-14T19:00:00Z"] {
        let out = verify("evervault-valid-attestation-doc-bytes", &["--at", at]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("does not verify"), "{stderr}");
        assert!(stderr.contains("leaf certificate"), "{stderr}");
        assert!(stderr.contains("expired"), "{stderr}");
    }
}

#[test]
fn attestation_verify_evidence_nitro_debug_document_and_bad_input() {
    // The base64 vector is a debug-mode document of 2023-09-18 (timestamp 15:03:30Z): refused
    // without --allow-debug, shown with it.
    let at = ["--at", "2023-09-18T15:05:00Z"];
    let out = verify(
        "evervault-valid-attestation-doc-base64",
        &[at[0], at[1], "--allow-debug", "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["debug"], true);
    assert_eq!(json["measurement"], "0".repeat(96));
    let out = verify("evervault-valid-attestation-doc-base64", &at);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("debug mode"), "{stderr}");

    // Not a document at all: exit 4 with the reason.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"\x84\x01\x02").unwrap();
    let out = covenant(&[
        "attestation",
        "verify-evidence",
        "--platform",
        "nitro",
        "--evidence",
        junk.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("COSE_Sign1"), "{stderr}");
}
