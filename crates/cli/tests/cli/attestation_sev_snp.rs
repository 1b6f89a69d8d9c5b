//! `covenant attestation verify-evidence --platform sev-snp` on a genuine report and its VLEK
//! (`crates/attest/tests/vectors/sev-snp/`).

use std::process::{Command, Output};

fn vector(name: &str) -> String {
    format!(
        "{}/../attest/tests/vectors/sev-snp/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn verify_vlek_report(at: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args([
            "attestation",
            "verify-evidence",
            "--platform",
            "sev-snp",
            "--evidence",
            &vector("trustee-test-vlek-report.bin"),
            "--endorsement",
            &vector("trustee-test-vlek.der"),
            "--at",
            at,
            "--json",
        ])
        .output()
        .unwrap()
}

#[test]
fn sev_snp_report_verifies_while_its_vlek_is_valid_and_is_refused_after() {
    let ok = verify_vlek_report("2025-06-01T00:00:00Z");
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert_eq!(ok.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["platform"], "sev-snp");
    assert_eq!(
        json["measurement"],
        "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0"
    );
    assert_eq!(json["report_data"].as_str().map(str::len), Some(128));
    assert_eq!(json["details"]["signed_by"], "VLEK");
    assert_eq!(json["details"]["product"], "Milan");

    // The VLEK expired on 2025-12-10.
    let refused = verify_vlek_report("2026-11-30T12:00:00Z");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("Milan VLEK is not valid at"), "{stderr}");
}
