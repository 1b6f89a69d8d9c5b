//! The bodies of Covenant's fuzz targets: one function per target, over the fuzzer's bytes.
//!
//! Each is what a libFuzzer target in `fuzz/fuzz_targets/` calls, and what
//! `tests/corpus.rs` calls on every input saved under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`, so that the ordinary test suite keeps every past finding fixed
//! without a fuzzer. A target **panics** only when an oracle is broken (a property that must
//! hold for every input); any other outcome — an error for hostile input, included — is fine.
//!
//! Targets (see `docs/fuzzing.md`):
//! - [`policy_json`]: parse, validate and hash a policy; a valid policy's hash equals the hash
//!   of its re-serialisation, which parses back to the same policy.
//! - [`policy_source`]: build a policy from TOML source text.
//! - [`evidence`]: every hardware evidence parser and verifier (SEV-SNP report, Nitro document,
//!   DCAP quote and collateral, the SEV-SNP certificate table, the evidence envelope).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use covenant_attest::{PlatformEvidence, TrustAnchors};
use time::OffsetDateTime;

/// A fixed instant for every time-dependent check, so that a saved input replays the same.
fn fixed_time() -> OffsetDateTime {
    // 2026-01-01T00:00:00Z.
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Names of every target, as `fuzz/fuzz_targets/<name>.rs` and the corpus directories spell
/// them.
pub const TARGETS: [&str; 3] = ["policy_json", "policy_source", "evidence"];

/// Runs target `name` on `data`. Panics on an unknown name (a defect of the caller).
pub fn run(name: &str, data: &[u8]) {
    match name {
        "policy_json" => policy_json(data),
        "policy_source" => policy_source(data),
        "evidence" => evidence(data),
        other => panic!("no fuzz target named {other:?}"),
    }
}

/// Parse, validate and hash a policy. Oracle: the hash of a policy that parses is the hash of
/// its pretty re-serialisation, which parses back to an equal policy.
pub fn policy_json(data: &[u8]) {
    let Ok(policy) = covenant_policy::parse(data) else {
        return;
    };
    let _ = covenant_policy::validate(&policy, fixed_time());
    let Ok(hash) = covenant_policy::PolicyHash::of(&policy) else {
        return;
    };
    let Ok(pretty) = covenant_policy::to_json_pretty(&policy) else {
        panic!("a parsed policy does not serialise");
    };
    let reparsed = match covenant_policy::parse(pretty.as_bytes()) {
        Ok(reparsed) => reparsed,
        Err(e) => panic!("a parsed policy's own serialisation does not parse: {e}"),
    };
    assert_eq!(
        reparsed, policy,
        "the re-serialised policy parses differently"
    );
    assert_eq!(
        covenant_policy::PolicyHash::of(&reparsed).ok(),
        Some(hash),
        "the hash changed across re-serialisation"
    );
}

/// Build a policy from TOML source, with no files and no self measurement.
pub fn policy_source(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if let Ok(policy) = covenant_policy::build(text, &files, None) {
        // What the builder makes must be a policy the JSON parser reads back the same.
        if let Ok(json) = covenant_policy::to_json_pretty(&policy) {
            let reparsed = covenant_policy::parse(json.as_bytes());
            assert!(
                matches!(&reparsed, Ok(p) if *p == policy),
                "a built policy does not survive its own JSON: {reparsed:?}"
            );
        }
    }
}

/// Every hardware evidence parser and verifier, on the same bytes: the first byte chooses how
/// the rest is split between evidence and endorsement. Oracle: none panics, and nothing
/// verifies against the pinned roots (the fuzzer cannot forge a vendor's signature).
pub fn evidence(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(selector).saturating_mul(rest.len()) / 256;
    let (evidence, endorsement) = rest.split_at(split.min(rest.len()));
    let at = fixed_time();

    let _ = covenant_attest::sev_snp::AttestationReport::parse(rest);
    let sev = covenant_attest::sev_snp::verify_report(
        evidence,
        endorsement,
        at,
        &covenant_attest::sev_snp::SevSnpOptions::default(),
    );
    assert!(
        sev.is_err(),
        "fuzzed SEV-SNP evidence verified against AMD's roots"
    );

    let nitro = covenant_attest::nitro::verify_document(rest, at, true);
    assert!(
        nitro.is_err(),
        "a fuzzed Nitro document verified against AWS's root"
    );

    let _ = covenant_attest::dcap::parse_quote(rest);
    let _ = covenant_attest::dcap::collateral_cache_key(rest);
    let dcap = covenant_attest::dcap::verify_quote(
        evidence,
        endorsement,
        at,
        &covenant_attest::dcap::DcapOptions::default(),
    );
    assert!(
        dcap.is_err(),
        "a fuzzed DCAP quote verified against Intel's root"
    );

    let _ = covenant_attest::tsm::parse_certificate_table(rest);
    let _ = covenant_attest::hardware::endorsement_cache_key(
        covenant_attest::PlatformKind::SevSnp,
        rest,
    );

    if let Ok(PlatformEvidence::Hardware(hardware)) = serde_json::from_slice(rest) {
        let _ = hardware.decoded_parts();
        let verified = covenant_attest::hardware::verify_hardware(
            &hardware,
            "fuzz",
            &covenant_attest::hardware::HardwareRequirements::default(),
            &TrustAnchors::pinned(),
            at,
        );
        assert!(verified.is_err(), "fuzzed hardware evidence verified");
    }
}
