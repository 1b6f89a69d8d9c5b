//! The policy hash: unchanged by formatting and key order, changed by any change of meaning,
//! and equal to what an independent RFC 8785 implementation computes.

use std::collections::BTreeSet;

use covenant_policy::{
    Policy, PolicyHash, RerunConsent, Strategy, canonical_json, parse, to_json_pretty,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fixture::{example, identity, valid_example};

/// Writes JSON with every object's keys in reverse order, odd whitespace and escaped ASCII:
/// the same document to a machine, a very different file to `diff`.
fn reformatted(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("\n\t{} :\r\n  {}", escaped(k), reformatted(v)))
                .collect();
            format!("{{ {} }}", entries.join(" ,"))
        }
        Value::Array(items) => {
            format!(
                "[ {} ]",
                items
                    .iter()
                    .map(reformatted)
                    .collect::<Vec<_>>()
                    .join(" ,\n")
            )
        }
        Value::String(text) => escaped(text),
        other => other.to_string(),
    }
}

/// A JSON string with every character written as a `\uXXXX` escape.
fn escaped(text: &str) -> String {
    let mut out = String::from("\"");
    for unit in text.encode_utf16() {
        out.push_str(&format!("\\u{unit:04X}"));
    }
    out.push('"');
    out
}

fn hash(policy: &Policy) -> PolicyHash {
    PolicyHash::of(policy).expect("hashable")
}

#[test]
fn reformatted_and_reordered_copy_hashes_the_same() {
    let policy = example();
    let pretty = to_json_pretty(&policy).expect("serialises");
    let value: Value = serde_json::from_str(&pretty).expect("json");
    let copy = reformatted(&value);
    assert_ne!(copy, pretty);
    assert!(
        copy.find("\"\\u0076\\u0065\\u0072\\u0073\\u0069\\u006F\\u006E\"")
            < copy.find("\"\\u0066\\u006F"),
        "version now precedes format"
    );
    let reparsed = parse(copy.as_bytes()).expect("the reformatted copy parses");
    assert_eq!(reparsed, policy);
    assert_eq!(hash(&reparsed), hash(&policy));
    assert_eq!(hash(&policy), valid_example().hash());
}

#[test]
fn hash_is_sha256_of_the_canonical_file() {
    // What a party without Covenant computes: sha256(jcs(policy.json)), here with the
    // independent serde_jcs implementation over the raw file.
    let policy = example();
    let file = to_json_pretty(&policy).expect("serialises");
    let value: Value = serde_json::from_str(&file).expect("json");
    let theirs = serde_jcs::to_string(&value).expect("jcs");
    assert_eq!(canonical_json(&value).expect("canonical"), theirs);
    assert_eq!(
        hash(&policy).as_bytes(),
        &<[u8; 32]>::from(Sha256::digest(theirs.as_bytes()))
    );
}

#[test]
fn each_single_semantic_edit_changes_the_hash() {
    type Edit = fn(&mut Policy);
    let edits: Vec<(&str, Edit)> = vec![
        ("computation", |p| p.computation.push('2')),
        ("expires", |p| p.expires = "2027-06-01T00:00:01Z".to_owned()),
        ("principal name", |p| {
            p.principals[0].name = "hospital-x".to_owned()
        }),
        ("principal certificate", |p| {
            p.principals[0].certificate = identity("hospital-a")
        }),
        ("principal order", |p| p.principals.swap(0, 1)),
        ("extra principal", |p| {
            let mut extra = p.principals[0].clone();
            extra.name = "auditor".to_owned();
            p.principals.push(extra);
        }),
        ("program name", |p| p.program.name = "psi2.wasm".to_owned()),
        ("program hash", |p| p.program.sha256 = "00".repeat(32)),
        ("program provider", |p| {
            p.program.provider = "hospital-a".to_owned()
        }),
        ("program args", |p| p.program.args.push("--fast".to_owned())),
        ("program env", |p| {
            p.program.env.insert("MODE".to_owned(), "strict".to_owned());
        }),
        ("input path", |p| {
            p.inputs[0].path = "/input/c.csv".to_owned()
        }),
        ("input provider", |p| {
            p.inputs[0].provider = "hospital-b".to_owned()
        }),
        ("input hash removed", |p| p.inputs[0].sha256 = None),
        ("input hash added", |p| {
            p.inputs[1].sha256 = Some("11".repeat(32))
        }),
        ("input size", |p| p.inputs[0].max_bytes += 1),
        ("input optional", |p| p.inputs[1].required = false),
        ("input order", |p| p.inputs.swap(0, 1)),
        ("input removed", |p| {
            p.inputs.pop();
        }),
        ("output path", |p| {
            p.outputs[0].path = "/output/other.txt".to_owned()
        }),
        ("output stream", |p| p.outputs[1].path = "stderr".to_owned()),
        ("reader removed", |p| {
            p.outputs[0].readers.pop();
        }),
        ("reader order", |p| p.outputs[0].readers.swap(0, 1)),
        ("starter", |p| p.runs.starters.push("hospital-a".to_owned())),
        ("runs max", |p| p.runs.max = 2),
        ("rerun consent", |p| {
            p.runs.rerun_consent = RerunConsent::Never
        }),
        ("strategy", |p| p.execution.strategy = Strategy::Interpreter),
        ("memory", |p| p.execution.max_memory_bytes += 65536),
        ("fuel", |p| p.execution.fuel = Some(1)),
        ("no fuel", |p| p.execution.fuel = None),
        ("timeout", |p| p.execution.timeout_ms += 1),
        ("output limit", |p| p.execution.max_output_bytes -= 1),
        ("clock", |p| p.execution.clock = true),
        ("random", |p| p.execution.random = false),
        ("service", |p| {
            p.attestation.service = "http://127.0.0.1:3011".to_owned()
        }),
        ("ca", |p| {
            p.attestation.ca_certificate = p.principals[0].certificate.clone()
        }),
        ("measurement", |p| {
            p.attestation
                .measurements
                .insert("software".to_owned(), vec!["00".repeat(32)]);
        }),
        ("platform", |p| {
            p.attestation
                .measurements
                .insert("sgx".to_owned(), vec!["00".repeat(32)]);
        }),
    ];
    let original = example();
    let mut seen = BTreeSet::from([hash(&original)]);
    for (what, edit) in edits {
        let mut edited = original.clone();
        edit(&mut edited);
        assert_ne!(edited, original, "{what}: the edit must change the policy");
        assert!(
            seen.insert(hash(&edited)),
            "{what}: the hash did not change (or collided)"
        );
    }
}

#[test]
fn appraisal_rules_are_absent_from_the_canonical_form_until_used_and_then_change_the_hash() {
    let policy = example();
    let canonical = covenant_policy::canonical_policy(&policy).expect("canonical");
    assert!(
        !canonical.contains("appraisal"),
        "a policy without hardware rules keeps the hash it had before they existed"
    );
    let mut strict = policy.clone();
    strict
        .attestation
        .measurements
        .insert("sev-snp".into(), vec!["0f".repeat(48)]);
    let mut lenient = strict.clone();
    lenient.attestation.appraisal.insert(
        "sev-snp".into(),
        covenant_policy::Appraisal {
            allow_debug: true,
            ..covenant_policy::Appraisal::default()
        },
    );
    assert_ne!(hash(&strict), hash(&lenient));
    let reparsed =
        parse(&to_json_pretty(&lenient).expect("serialises").into_bytes()).expect("parses");
    assert_eq!(reparsed, lenient);
}
