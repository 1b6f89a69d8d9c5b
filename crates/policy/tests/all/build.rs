//! The TOML source: round trip source → JSON → model, defaults, and build errors.

use std::collections::BTreeMap;

use covenant_policy::{
    BuildError, Policy, RerunConsent, Strategy, certificate_der, parse, pem_certificate,
    to_json_pretty,
};
use sha2::{Digest, Sha256};

use crate::fixture::{
    EXAMPLE_DATA_A, EXAMPLE_SOURCE, FILES, SELF_MEASUREMENT, WASM, build, example,
};

/// Problems of a source that parses but does not build, as lines.
fn build_problems(
    source: &str,
    files: &BTreeMap<String, Vec<u8>>,
    measurement: Option<[u8; 32]>,
) -> Vec<String> {
    match covenant_policy::build(source, files, measurement) {
        Err(BuildError::Problems(problems)) => problems
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect(),
        other => panic!("expected build problems, got {other:?}"),
    }
}

#[test]
fn example_builds_into_the_expected_policy() {
    let policy = example();
    assert_eq!(policy.computation, "hospital-study");
    assert_eq!(policy.expires, "2027-06-01T00:00:00Z");
    let names: Vec<&str> = policy.principals.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hospital-a", "hospital-b", "researcher"]);
    for principal in &policy.principals {
        let file = String::from_utf8(FILES[&format!("ids/{}.crt", principal.name)].clone())
            .expect("utf-8");
        let der = certificate_der(&file).expect("fixture certificate");
        assert_eq!(principal.certificate, pem_certificate(&der));
    }
    assert_eq!(policy.program.name, "psi.wasm");
    assert_eq!(policy.program.sha256, hex::encode(Sha256::digest(WASM)));
    assert_eq!(policy.program.provider, "researcher");
    assert!(policy.program.args.is_empty() && policy.program.env.is_empty());
    assert_eq!(policy.inputs[0].path, "/input/a.csv");
    assert_eq!(policy.inputs[0].max_bytes, 100 << 20);
    assert!(policy.inputs[0].required);
    assert_eq!(policy.inputs[1].max_bytes, 64 << 20, "default size bound");
    assert!(policy.inputs[1].required, "inputs are required by default");
    assert_eq!(policy.inputs[1].sha256, None);
    assert_eq!(policy.outputs[1].path, "stdout");
    assert_eq!(
        policy.outputs[0].readers,
        ["researcher", "hospital-a", "hospital-b"]
    );
    assert_eq!(policy.runs.starters, ["researcher"]);
    assert_eq!(policy.runs.max, 1);
    assert_eq!(policy.runs.rerun_consent, RerunConsent::All);
    assert_eq!(policy.execution.strategy, Strategy::Jit);
    assert_eq!(policy.execution.max_memory_bytes, 256 << 20);
    assert_eq!(policy.execution.fuel, Some(10_000_000_000));
    assert_eq!(policy.execution.timeout_ms, 60_000);
    assert_eq!(policy.execution.max_output_bytes, 64 << 20);
    assert!(!policy.execution.clock && policy.execution.random);
    assert_eq!(policy.attestation.service, "http://127.0.0.1:3010");
    assert!(
        policy
            .attestation
            .ca_certificate
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    assert_eq!(
        policy.attestation.measurements["software"],
        [hex::encode(SELF_MEASUREMENT)]
    );
}

#[test]
fn example_pins_the_shipped_sample_data() {
    let policy = example();
    assert_eq!(
        policy.inputs[0].sha256.as_deref(),
        Some(hex::encode(Sha256::digest(EXAMPLE_DATA_A)).as_str())
    );
}

#[test]
fn round_trip_source_json_model() {
    let built = example();
    let json = to_json_pretty(&built).expect("serialises");
    let parsed = parse(json.as_bytes()).expect("the written JSON parses");
    assert_eq!(parsed, built);
    assert_eq!(
        to_json_pretty(&parsed).expect("serialises"),
        json,
        "writing is deterministic"
    );
    // Sizes and durations are integers with their unit in the name.
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["execution"]["max_memory_bytes"], 268_435_456);
    assert_eq!(value["execution"]["timeout_ms"], 60_000);
    assert_eq!(value["inputs"][0]["max_bytes"], 104_857_600);
    assert_eq!(value["format"], "covenant-policy");
    assert_eq!(value["version"], 1);
    assert!(
        value["inputs"][1].get("sha256").is_none(),
        "absent, not null"
    );
}

#[test]
fn principal_order_in_the_source_does_not_matter() {
    let reordered = EXAMPLE_SOURCE.replace(
        "hospital-a = { certificate = \"ids/hospital-a.crt\" }\nhospital-b = { certificate = \"ids/hospital-b.crt\" }\nresearcher = { certificate = \"ids/researcher.crt\" }",
        "researcher = { certificate = \"ids/researcher.crt\" }\nhospital-b = { certificate = \"ids/hospital-b.crt\" }\nhospital-a = { certificate = \"ids/hospital-a.crt\" }",
    );
    assert_ne!(reordered, EXAMPLE_SOURCE);
    assert_eq!(build(&reordered).expect("builds"), example());
}

const MINIMAL: &str = r#"
computation = "tiny"
expires = 2027-01-01T00:00:00Z
[principals]
alice = { certificate = "ids/hospital-a.crt" }
[program]
file = "psi.wasm"
provider = "alice"
[[outputs]]
path = "stdout"
readers = ["alice"]
[runs]
starters = ["alice"]
[attestation]
service = "https://attest.example"
ca_certificate = "attestation/ca.crt"
measurements = { software = ["self"] }
"#;

#[test]
fn defaults_fill_what_the_source_leaves_out() {
    let policy: Policy = build(MINIMAL).expect("builds");
    assert_eq!(
        policy.expires, "2027-01-01T00:00:00Z",
        "a TOML datetime is accepted"
    );
    assert!(policy.inputs.is_empty());
    assert_eq!(policy.runs.max, 1);
    assert_eq!(policy.runs.rerun_consent, RerunConsent::All);
    assert_eq!(policy.execution.strategy, Strategy::Jit);
    assert_eq!(policy.execution.max_memory_bytes, 256 << 20);
    assert_eq!(policy.execution.fuel, None);
    assert_eq!(policy.execution.timeout_ms, 60_000);
    assert_eq!(policy.execution.max_output_bytes, 64 << 20);
    assert!(!policy.execution.clock && !policy.execution.random);
    covenant_policy::validate(&policy, crate::fixture::NOW).expect("the minimal policy is valid");
}

#[test]
fn unreadable_and_unusable_files_are_all_listed() {
    let mut files = FILES.clone();
    files.remove("ids/hospital-b.crt");
    files.insert("psi.wasm".to_owned(), b"(module)".to_vec());
    files.insert(
        "attestation/ca.crt".to_owned(),
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec(),
    );
    files.insert("ids/researcher.crt".to_owned(), vec![0xff, 0xfe]);
    assert_eq!(
        build_problems(EXAMPLE_SOURCE, &files, Some(SELF_MEASUREMENT)),
        [
            "principals.hospital-b.certificate: cannot read \"ids/hospital-b.crt\": entity not found",
            "principals.researcher.certificate: \"ids/researcher.crt\" is not a PEM text file (it is not UTF-8)",
            "program.file: \"psi.wasm\" is not a WebAssembly binary module (it does not start with \\0asm)",
            "attestation.ca_certificate: \"attestation/ca.crt\" is a PEM \"PUBLIC KEY\" block; expected one PEM block \"-----BEGIN CERTIFICATE-----\"",
        ]
    );
}

#[test]
fn human_units_are_checked_with_their_source_key() {
    let source = EXAMPLE_SOURCE
        .replace("max_bytes = \"100MiB\"", "max_bytes = \"100mb\"")
        .replace("max_memory = \"256MiB\"", "max_memory = \"256\"")
        .replace("timeout = \"60s\"", "timeout = \"1 day\"")
        .replace("max_output = \"64MiB\"", "max_output = \"1.5GiB\"");
    assert_eq!(
        build_problems(&source, &FILES, Some(SELF_MEASUREMENT)),
        [
            "inputs[0].max_bytes: \"100mb\" has unknown unit \"mb\"; write one of B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000)",
            "execution.max_memory: \"256\" has no unit; write one of B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000), like \"64MiB\"",
            "execution.max_output: \"1.5GiB\" is not a whole number; use a smaller unit instead, like \"64MiB\"",
            "execution.timeout: \"1 day\" has unknown unit \"day\"; write one of ms, s, m, h",
        ]
    );
}

#[test]
fn self_needs_a_measurement_and_the_software_platform() {
    assert_eq!(
        build_problems(EXAMPLE_SOURCE, &FILES, None),
        [
            "attestation.measurements.software[0]: \"self\" stands for this build's runtime measurement, and none was given"
        ]
    );
    let source = EXAMPLE_SOURCE.replace(
        "software = [\"self\"]",
        "software = [\"self\"]\nsgx = [\"self\"]",
    );
    assert_eq!(
        build_problems(&source, &FILES, Some(SELF_MEASUREMENT)),
        [
            "attestation.measurements.sgx[0]: \"self\" stands for this build's software measurement; it cannot be used for platform \"sgx\""
        ]
    );
}

#[test]
fn explicit_measurements_pass_through() {
    let digest = "ab".repeat(32);
    let source = EXAMPLE_SOURCE.replace(
        "software = [\"self\"]",
        &format!("software = [\"self\", \"{digest}\"]"),
    );
    let policy = build(&source).expect("builds");
    assert_eq!(
        policy.attestation.measurements["software"],
        [hex::encode(SELF_MEASUREMENT), digest]
    );
}

#[test]
fn unknown_source_keys_are_errors() {
    let source = EXAMPLE_SOURCE.replace("clock = false", "clock = false\nclocks = true");
    let error = build(&source).expect_err("unknown key");
    let message = error.to_string();
    assert!(matches!(error, BuildError::Toml(_)));
    assert!(message.contains("unknown field `clocks`"), "{message}");
    assert!(
        message.contains("line"),
        "the message points at the line: {message}"
    );
}

#[test]
fn wrongly_typed_source_values_are_errors() {
    let source = EXAMPLE_SOURCE.replace("strategy = \"jit\"", "strategy = \"aot\"");
    let message = build(&source).expect_err("bad strategy").to_string();
    assert!(
        message.contains("unknown variant `aot`, expected `jit` or `interpreter`"),
        "{message}"
    );
    let source = EXAMPLE_SOURCE.replace("expires = \"2027-06-01T00:00:00Z\"", "expires = 2027");
    let problems = build_problems(&source, &FILES, Some(SELF_MEASUREMENT));
    assert_eq!(
        problems,
        ["expires: expected a time like \"2027-06-01T00:00:00Z\", found integer"]
    );
}

#[test]
fn certificate_files_are_normalised() {
    let mut files = FILES.clone();
    let original = String::from_utf8(files["ids/hospital-a.crt"].clone()).expect("utf-8");
    let messy = format!(
        "Bag Attributes: from some tool\r\n{}",
        original.replace('\n', "\r\n")
    );
    files.insert("ids/hospital-a.crt".to_owned(), messy.into_bytes());
    let policy =
        covenant_policy::build(EXAMPLE_SOURCE, &files, Some(SELF_MEASUREMENT)).expect("builds");
    assert_eq!(policy, example());
}

#[test]
fn hardware_appraisal_rules_pass_from_the_source_and_unknown_rules_are_errors() {
    let mrtd = "cd".repeat(48);
    let source = EXAMPLE_SOURCE.replace(
        "software = [\"self\"]",
        &format!(
            "software = [\"self\"]\ntdx = [\"{mrtd}\"]\n\n[attestation.appraisal.tdx]\n\
             accepted_tcb_statuses = [\"sw-hardening-needed\"]\nallow_debug = false"
        ),
    );
    let policy = build(&source).expect("builds");
    assert_eq!(
        policy.attestation.appraisal["tdx"].accepted_tcb_statuses,
        ["sw-hardening-needed"]
    );
    assert!(!policy.attestation.appraisal["tdx"].allow_debug);

    let typo = source.replace("allow_debug = false", "allow_debugging = true");
    let message = build(&typo).expect_err("unknown rule").to_string();
    assert!(message.contains("allow_debugging"), "{message}");
}
