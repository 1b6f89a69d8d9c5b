//! `covenant attestation verify-evidence --platform tdx|sgx`, through the real binary, on
//! Phala's genuine DCAP quotes and collateral (crates/attest/tests/vectors/{tdx,sgx}, see
//! PROVENANCE.md there); and the hardware options of `attestation-service enroll-platform` and
//! `serve --platform`.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Inside the validity of both collaterals.
const INSIDE: &str = "2025-07-01T00:00:00Z";
/// Covenant's measurement of the TDX quote's TD (MRTD, the configuration registers and the
/// RTMRs, hashed) and MRENCLAVE/MRSIGNER of the SGX quote (computed independently, as
/// `crates/attest/tests/all/dcap.rs` does).
const TDX_MEASUREMENT: &str = "8a0bd4ce1954b7092c89f190e19a538bf6df47c3599decd4ced7431f102779f808cb96080b0f6ebedb23887e2a829ef5";
const SGX_MRENCLAVE: &str = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";
const SGX_MRSIGNER: &str = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6";

fn vector(dir: &str, name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/tests/vectors")
        .join(dir)
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn covenant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .output()
        .expect("the covenant binary runs")
}

fn verify(platform: &str, dir: &str, quote: &str, extra: &[&str]) -> Output {
    let quote = vector(dir, quote);
    let collateral = vector(dir, &format!("{}_collateral.json", dir_quote(dir)));
    let mut args = vec![
        "attestation",
        "verify-evidence",
        "--platform",
        platform,
        "--evidence",
        &quote,
        "--endorsement",
        &collateral,
    ];
    args.extend_from_slice(extra);
    covenant(&args)
}

fn dir_quote(dir: &str) -> &'static str {
    if dir == "tdx" {
        "dcap-qvl-tdx_quote"
    } else {
        "dcap-qvl-sgx_quote"
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn attestation_verify_evidence_tdx_genuine_quote() {
    let out = verify(
        "tdx",
        "tdx",
        "dcap-qvl-tdx_quote",
        &["--at", INSIDE, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["platform"], "tdx");
    assert_eq!(json["measurement"], TDX_MEASUREMENT);
    assert_eq!(
        json["details"]["mrtd"],
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(json["details"]["tcb_status"], "up-to-date");
    assert_eq!(json["report_data"].as_str().unwrap().len(), 128);

    // Today its collateral has expired: exit 4, naming what is stale.
    let out = verify(
        "tdx",
        "tdx",
        "dcap-qvl-tdx_quote",
        &["--at", "2026-11-30T12:00:00Z"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("does not verify"), "{}", text(&out));

    // As SGX: the quote is TDX, refused as the wrong TEE.
    let out = verify("sgx", "tdx", "dcap-qvl-tdx_quote", &["--at", INSIDE]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
}

#[test]
fn attestation_verify_evidence_sgx_status_is_refused_until_named() {
    let out = verify("sgx", "sgx", "dcap-qvl-sgx_quote", &["--at", INSIDE]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    for needle in [
        "configuration-and-sw-hardening-needed",
        "INTEL-SA-00289",
        "INTEL-SA-00615",
    ] {
        assert!(said.contains(needle), "{said}");
    }
    let out = verify(
        "sgx",
        "sgx",
        "dcap-qvl-sgx_quote",
        &[
            "--at",
            INSIDE,
            "--accept-tcb-status",
            "configuration-and-sw-hardening-needed",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["measurement"], SGX_MRENCLAVE);
    assert_eq!(json["details"]["mrsigner"], SGX_MRSIGNER);

    // An unknown status name, and the option on a platform without TCB statuses: refused
    // before anything is verified.
    let out = verify(
        "sgx",
        "sgx",
        "dcap-qvl-sgx_quote",
        &["--at", INSIDE, "--accept-tcb-status", "fine"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let nitro = vector("nitro", "evervault-valid-attestation-doc-bytes");
    let out = covenant(&[
        "attestation",
        "verify-evidence",
        "--platform",
        "nitro",
        "--evidence",
        &nitro,
        "--accept-tcb-status",
        "out-of-date",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("tdx and sgx only"), "{}", text(&out));

    // No collateral: the refusal says what to give.
    let quote = vector("sgx", "dcap-qvl-sgx_quote");
    let out = covenant(&[
        "attestation",
        "verify-evidence",
        "--platform",
        "sgx",
        "--evidence",
        &quote,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("collateral"), "{}", text(&out));
}

#[test]
fn enroll_platform_takes_hardware_kinds_with_their_rules_and_no_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let svc = dir.path().join("svc");
    let svc = svc.to_str().unwrap();
    let out = covenant(&["attestation-service", "init", "--dir", svc]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = covenant(&[
        "attestation-service",
        "enroll-platform",
        "--dir",
        svc,
        "--kind",
        "tdx",
        "--accept-tcb-status",
        "sw-hardening-needed",
        "tdx-1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("allow-measurement tdx-1"),
        "{}",
        text(&out)
    );
    let out = covenant(&[
        "attestation-service",
        "allow-measurement",
        "--dir",
        svc,
        "tdx-1",
        TDX_MEASUREMENT,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Refused, each with its reason and exit 2: a second live TDX platform; a rule for another
    // kind; revoked; a certificate for hardware; hardware rules for software; a 32-byte
    // measurement for TDX.
    let refusals: [&[&str]; 6] = [
        &["enroll-platform", "--dir", svc, "--kind", "tdx", "tdx-2"],
        &[
            "enroll-platform",
            "--dir",
            svc,
            "--kind",
            "nitro",
            "--allow-migration-agent",
            "n",
        ],
        &[
            "enroll-platform",
            "--dir",
            svc,
            "--kind",
            "sgx",
            "--accept-tcb-status",
            "revoked",
            "s",
        ],
        &[
            "enroll-platform",
            "--dir",
            svc,
            "--kind",
            "sev-snp",
            "snp",
            "some.crt",
        ],
        &[
            "enroll-platform",
            "--dir",
            svc,
            "--allow-debug",
            "soft",
            "some.crt",
        ],
        &["allow-measurement", "--dir", svc, "tdx-1", &"ab".repeat(32)],
    ];
    for args in refusals {
        let mut full = vec!["attestation-service"];
        full.extend_from_slice(args);
        let out = covenant(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("error"), "{args:?}: {}", text(&out));
    }
}

#[test]
fn serve_refuses_mixed_platform_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, b"{}").unwrap();
    let policy = policy.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--platform", "sev-snp", "--platform-key", "k.key"],
            "software platform",
        ),
        (
            &["--endorsement", "c.json", "--platform-key", "k.key"],
            "--endorsement",
        ),
        (&[], "--platform-key"),
    ];
    for (args, needle) in cases {
        let mut full = vec!["serve", "--policy", policy];
        full.extend_from_slice(args);
        let out = covenant(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
    }
    let out = covenant(&["serve", "--policy", policy, "--platform", "sgx"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("software, sev-snp or tdx"),
        "{}",
        text(&out)
    );
}
