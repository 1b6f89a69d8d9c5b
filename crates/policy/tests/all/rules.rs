//! Every validation rule: a policy that breaks it, and the exact message that explains it.
//! Each test breaks one rule of the (valid) example and expects exactly that one problem,
//! so a rule that fires too eagerly shows up as an extra line.

use covenant_policy::bounds::{MAX_FUEL, MAX_INPUTS, MAX_PRINCIPALS};
use covenant_policy::{Input, Policy, Principal};

use crate::fixture::{FILES, certificate, identity, problems_after, valid_example};

/// Asserts that `edit` makes the example fail with exactly `expected`.
fn assert_problems(edit: impl FnOnce(&mut Policy), expected: &[&str]) {
    let problems = problems_after(edit);
    assert_eq!(
        problems,
        expected,
        "\nproblems found:\n{}",
        problems.join("\n")
    );
}

/// Asserts that `edit` makes the example fail, with `expected` among the problems.
fn assert_has_problem(edit: impl FnOnce(&mut Policy), expected: &str) {
    let problems = problems_after(edit);
    assert!(
        problems.iter().any(|p| p == expected),
        "missing {expected:?} in:\n{}",
        problems.join("\n")
    );
}

fn file(path: &str) -> String {
    String::from_utf8(FILES[path].clone()).expect("PEM is UTF-8")
}

fn add_principal(policy: &mut Policy, name: &str, certificate: String) {
    policy.principals.push(Principal {
        name: name.to_owned(),
        certificate,
    });
}

const DECLARED: &str = "declared principals are hospital-a, hospital-b, researcher";

#[test]
fn the_example_is_valid() {
    let valid = valid_example();
    assert_eq!(valid.policy().computation, "hospital-study");
}

#[test]
fn every_problem_is_listed_not_just_the_first() {
    assert_problems(
        |p| {
            p.computation = String::new();
            p.inputs[1].provider = "hospital-c".to_owned();
            p.outputs[0].readers.push("mallory".to_owned());
            p.execution.timeout_ms = 0;
        },
        &[
            "computation: is empty; give the computation an id like \"hospital-study\"",
            &format!("inputs[1].provider: \"hospital-c\" is not a declared principal; {DECLARED}"),
            &format!("outputs[0].readers[3]: \"mallory\" is not a declared principal; {DECLARED}"),
            "execution.timeout_ms: 0 is out of bounds; use 1 to 86400000 milliseconds (24h)",
        ],
    );
}

// --- computation and expiry ---------------------------------------------------------------

#[test]
fn computation_must_be_a_dns_label() {
    assert_problems(
        |p| p.computation = "Hospital Study".to_owned(),
        &[
            "computation: \"Hospital Study\" is not a valid id; use 1 to 63 lowercase letters, digits \
           and hyphens, not starting or ending with a hyphen, like \"hospital-study\"",
        ],
    );
}

#[test]
fn expiry_must_be_rfc3339() {
    assert_problems(
        |p| p.expires = "next year".to_owned(),
        &[
            "expires: \"next year\" is not an RFC 3339 time; write a UTC time like \"2027-06-01T00:00:00Z\"",
        ],
    );
}

#[test]
fn expiry_must_be_written_in_utc() {
    assert_problems(
        |p| p.expires = "2027-06-01T02:00:00+02:00".to_owned(),
        &[
            "expires: \"2027-06-01T02:00:00+02:00\" must be written in UTC, in whole seconds, as \"2027-06-01T00:00:00Z\"",
        ],
    );
    assert_problems(
        |p| p.expires = "2027-06-01T00:00:00.5Z".to_owned(),
        &[
            "expires: \"2027-06-01T00:00:00.5Z\" must be written in UTC, in whole seconds, as \"2027-06-01T00:00:00Z\"",
        ],
    );
}

#[test]
fn expiry_must_be_in_the_future() {
    assert_problems(
        |p| p.expires = "2026-01-01T00:00:00Z".to_owned(),
        &[
            "expires: 2026-01-01T00:00:00Z is in the past (now is 2026-06-01T12:00:00Z); choose a later time",
        ],
    );
}

// --- principals -----------------------------------------------------------------------------

#[test]
fn at_least_one_principal() {
    assert_has_problem(
        |p| p.principals.clear(),
        "principals: no principals; a policy needs at least one",
    );
    assert_has_problem(
        |p| p.principals.clear(),
        "program.provider: \"researcher\" is not a declared principal; no principals are declared",
    );
}

#[test]
fn at_most_max_principals() {
    let count = MAX_PRINCIPALS + 1;
    assert_has_problem(
        |p| {
            for index in p.principals.len()..count {
                add_principal(p, &format!("p{index}"), identity("x"));
            }
        },
        &format!("principals: {count} principals; at most {MAX_PRINCIPALS} are allowed"),
    );
}

#[test]
fn principal_names_well_formed() {
    assert_problems(
        |p| add_principal(p, "-auditor", identity("auditor")),
        &[
            "principals[3].name: \"-auditor\" is not a valid principal name; use 1 to 64 letters, \
           digits, '.', '_' or '-', starting with a letter or digit",
        ],
    );
}

#[test]
fn principal_names_unique() {
    assert_problems(
        |p| add_principal(p, "hospital-a", identity("hospital-a")),
        &[
            "principals[3].name: \"hospital-a\" is declared twice (also principals[0]); principal names must be unique",
        ],
    );
}

#[test]
fn principal_certificates_unique() {
    assert_problems(
        |p| add_principal(p, "auditor", file("ids/hospital-a.crt")),
        &[
            "principals[3].certificate: the same certificate as principals[0] (\"hospital-a\"); each \
           principal needs its own certificate",
        ],
    );
}

#[test]
fn certificate_must_be_pem() {
    assert_problems(
        |p| p.principals[0].certificate = "not a certificate".to_owned(),
        &[
            "principals[0].certificate: is not a PEM certificate; expected one PEM block \"-----BEGIN CERTIFICATE-----\"",
        ],
    );
}

#[test]
fn certificate_must_be_one_block() {
    assert_problems(
        |p| {
            p.principals[0].certificate = format!("{}{}", file("ids/hospital-a.crt"), identity("x"))
        },
        &[
            "principals[0].certificate: holds 2 PEM blocks; expected one PEM block \"-----BEGIN CERTIFICATE-----\"",
        ],
    );
}

#[test]
fn certificate_block_must_be_a_certificate() {
    assert_problems(
        |p| {
            p.principals[0].certificate =
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned()
        },
        &[
            "principals[0].certificate: is a PEM \"PRIVATE KEY\" block; expected one PEM block \"-----BEGIN CERTIFICATE-----\"",
        ],
    );
}

#[test]
fn certificate_must_parse_as_x509() {
    let problems = problems_after(|p| {
        p.principals[1].certificate =
            "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n".to_owned()
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("principals[1].certificate: is not a valid X.509 certificate ("),
        "{problems:?}"
    );
}

#[test]
fn certificate_must_not_be_expired() {
    let expired = certificate(
        "old",
        false,
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2025, 1, 1),
    );
    assert_problems(
        |p| p.principals[2].certificate = expired,
        &[
            "principals[2].certificate: expired on 2025-01-01T00:00:00Z (now is 2026-06-01T12:00:00Z); use a current certificate",
        ],
    );
}

#[test]
fn certificate_must_already_be_valid() {
    let future = certificate(
        "new",
        false,
        rcgen::date_time_ymd(2027, 1, 1),
        rcgen::date_time_ymd(2030, 1, 1),
    );
    assert_problems(
        |p| p.principals[2].certificate = future,
        &[
            "principals[2].certificate: is not valid before 2027-01-01T00:00:00Z (now is 2026-06-01T12:00:00Z); \
           check the clock of the machine that made it",
        ],
    );
}

// --- program --------------------------------------------------------------------------------

#[test]
fn program_needs_a_file_name() {
    assert_problems(
        |p| p.program.name = String::new(),
        &["program.name: is empty; name the program, e.g. after its file"],
    );
    assert_problems(
        |p| p.program.name = "bin/psi.wasm".to_owned(),
        &[
            "program.name: \"bin/psi.wasm\" is not a file name; use at most 255 bytes without '/' or NUL",
        ],
    );
}

#[test]
fn program_hash_is_64_lowercase_hex() {
    assert_problems(
        |p| p.program.sha256 = "abc".to_owned(),
        &[
            "program.sha256: \"abc\" is not a SHA-256; expected 64 lowercase hex digits, found 3 characters",
        ],
    );
    let upper = crate::fixture::example().program.sha256.to_uppercase();
    assert_problems(
        |p| p.program.sha256 = upper.clone(),
        &[&format!(
            "program.sha256: {upper:?} is not a SHA-256; write the hex digits in lowercase"
        )],
    );
}

#[test]
fn program_provider_is_declared() {
    assert_problems(
        |p| p.program.provider = "hospital-c".to_owned(),
        &[&format!(
            "program.provider: \"hospital-c\" is not a declared principal; {DECLARED}"
        )],
    );
}

#[test]
fn program_args_and_env_are_passable() {
    assert_problems(
        |p| p.program.args = vec!["ok".to_owned(), "a\0b".to_owned()],
        &["program.args[1]: contains a NUL byte, which WASI cannot pass"],
    );
    assert_problems(
        |p| {
            p.program.env.insert("A=B".to_owned(), "x".to_owned());
        },
        &[
            "program.env.A=B: \"A=B\" is not a variable name; use a non-empty name without '=' or NUL",
        ],
    );
    assert_problems(
        |p| {
            p.program.env.insert("MODE".to_owned(), "a\0".to_owned());
        },
        &["program.env.MODE: the value contains a NUL byte, which WASI cannot pass"],
    );
    assert_problems(
        |p| p.program.args = vec![String::new(); 1025],
        &["program.args: 1025 arguments; at most 1024 are allowed"],
    );
    assert_problems(
        |p| p.program.args = vec!["x".repeat(70_000)],
        &["program: name, args and env take 70010 bytes; at most 65536 are allowed"],
    );
}

// --- inputs ---------------------------------------------------------------------------------

#[test]
fn input_paths_absolute() {
    assert_problems(
        |p| p.inputs[0].path = "input/a.csv".to_owned(),
        &["inputs[0].path: \"input/a.csv\" is not absolute; write \"/input/a.csv\""],
    );
}

#[test]
fn input_paths_normalised() {
    assert_problems(
        |p| p.inputs[0].path = "/input/./x/../a.csv".to_owned(),
        &["inputs[0].path: \"/input/./x/../a.csv\" is not normalised; write \"/input/a.csv\""],
    );
    assert_problems(
        |p| p.inputs[0].path = "/input/".to_owned(),
        &["inputs[0].path: \"/input/\" is not normalised; write \"/input\""],
    );
}

#[test]
fn input_provider_is_declared() {
    assert_problems(
        |p| p.inputs[1].provider = "hospital-c".to_owned(),
        &[&format!(
            "inputs[1].provider: \"hospital-c\" is not a declared principal; {DECLARED}"
        )],
    );
}

#[test]
fn input_hash_when_given_is_64_lowercase_hex() {
    assert_problems(
        |p| p.inputs[1].sha256 = Some("x".repeat(64)),
        &[&format!(
            "inputs[1].sha256: {:?} is not a SHA-256; expected 64 lowercase hex digits, found 64 characters",
            "x".repeat(64)
        )],
    );
}

#[test]
fn input_size_bound_within_limits() {
    assert_problems(
        |p| p.inputs[0].max_bytes = 0,
        &[
            "inputs[0].max_bytes: 0 is out of bounds; use 1 to 17179869184 bytes (16 GiB (17179869184 bytes))",
        ],
    );
    assert_problems(
        |p| p.inputs[0].max_bytes = 17_179_869_185,
        &[
            "inputs[0].max_bytes: 17179869185 is out of bounds; use 1 to 17179869184 bytes (16 GiB (17179869184 bytes))",
        ],
    );
}

#[test]
fn at_most_max_inputs() {
    assert_has_problem(
        |p| {
            p.inputs = (0..=MAX_INPUTS)
                .map(|i| Input {
                    path: format!("/input/{i}"),
                    provider: "hospital-a".to_owned(),
                    sha256: None,
                    max_bytes: 1,
                    required: false,
                })
                .collect();
        },
        &format!(
            "inputs: {} inputs; at most {MAX_INPUTS} are allowed",
            MAX_INPUTS + 1
        ),
    );
}

// --- outputs --------------------------------------------------------------------------------

#[test]
fn at_least_one_output() {
    assert_problems(
        |p| p.outputs.clear(),
        &[
            "outputs: no outputs; a computation needs at least one (a path, \"stdout\" or \"stderr\") with readers",
        ],
    );
}

#[test]
fn output_paths_absolute_or_a_stream() {
    assert_problems(
        |p| p.outputs[1].path = "STDOUT".to_owned(),
        &[
            "outputs[1].path: \"STDOUT\" is not absolute; write \"/STDOUT\" (or use \"stdout\" or \"stderr\")",
        ],
    );
    assert_problems(
        |p| p.outputs[0].path = "/output//result.txt".to_owned(),
        &[
            "outputs[0].path: \"/output//result.txt\" is not normalised; write \"/output/result.txt\" (or use \"stdout\" or \"stderr\")",
        ],
    );
}

#[test]
fn every_output_has_a_reader() {
    assert_problems(
        |p| p.outputs[1].readers.clear(),
        &[&format!(
            "outputs[1].readers: is empty; list at least one reader ({DECLARED})"
        )],
    );
}

#[test]
fn output_readers_declared_and_listed_once() {
    assert_problems(
        |p| {
            p.outputs[1].readers = vec![
                "researcher".to_owned(),
                "eve".to_owned(),
                "researcher".to_owned(),
            ]
        },
        &[
            &format!("outputs[1].readers[1]: \"eve\" is not a declared principal; {DECLARED}"),
            "outputs[1].readers[2]: \"researcher\" is listed twice",
        ],
    );
}

// --- paths across inputs and outputs --------------------------------------------------------

#[test]
fn paths_distinct() {
    assert_problems(
        |p| p.inputs[1].path = "/input/a.csv".to_owned(),
        &[
            "inputs[1].path: \"/input/a.csv\" is also inputs[0].path; every input and output needs its own path",
        ],
    );
    assert_problems(
        |p| p.outputs[0].path = "/input/b.csv".to_owned(),
        &[
            "outputs[0].path: \"/input/b.csv\" is also inputs[1].path; every input and output needs its own path",
        ],
    );
    assert_problems(
        |p| p.outputs[0].path = "stdout".to_owned(),
        &[
            "outputs[1].path: \"stdout\" is also outputs[0].path; every input and output needs its own path",
        ],
    );
}

#[test]
fn no_path_inside_another() {
    assert_problems(
        |p| p.outputs[0].path = "/input/a.csv/result.txt".to_owned(),
        &[
            "outputs[0].path: \"/input/a.csv/result.txt\" is inside inputs[0].path \"/input/a.csv\", which is a file; choose a path outside it",
        ],
    );
    assert_problems(
        |p| p.outputs[0].path = "/input".to_owned(),
        &[
            "outputs[0].path: \"/input\" contains inputs[0].path \"/input/a.csv\", so it cannot be a file; choose another path",
            "outputs[0].path: \"/input\" contains inputs[1].path \"/input/b.csv\", so it cannot be a file; choose another path",
        ],
    );
}

// --- runs -----------------------------------------------------------------------------------

#[test]
fn run_starters_declared_present_and_once() {
    assert_problems(
        |p| p.runs.starters.clear(),
        &[&format!(
            "runs.starters: is empty; list at least one principal who may start a run ({DECLARED})"
        )],
    );
    assert_problems(
        |p| {
            p.runs.starters = vec![
                "researcher".to_owned(),
                "researcher".to_owned(),
                "x".to_owned(),
            ]
        },
        &[
            "runs.starters[1]: \"researcher\" is listed twice",
            &format!("runs.starters[2]: \"x\" is not a declared principal; {DECLARED}"),
        ],
    );
}

#[test]
fn run_count_within_bounds() {
    assert_problems(
        |p| p.runs.max = 0,
        &["runs.max: 0 is out of bounds; use 1 to 1000"],
    );
    assert_problems(
        |p| p.runs.max = 1001,
        &["runs.max: 1001 is out of bounds; use 1 to 1000"],
    );
}

// --- execution limits -----------------------------------------------------------------------

#[test]
fn memory_limit_within_wasm32() {
    let message = |n: u64| {
        format!(
            "execution.max_memory_bytes: {n} is out of bounds; use 65536 (64 KiB) to 4294967296 (4 GiB, all of wasm32)"
        )
    };
    assert_problems(|p| p.execution.max_memory_bytes = 0, &[&message(0)]);
    assert_problems(
        |p| p.execution.max_memory_bytes = (4 << 30) + 65536,
        &[&message((4 << 30) + 65536)],
    );
    assert!(problems_after(|p| p.execution.max_memory_bytes = 4 << 30).is_empty());
    assert!(problems_after(|p| p.execution.max_memory_bytes = 65536).is_empty());
}

#[test]
fn memory_limit_in_whole_pages() {
    assert_problems(
        |p| p.execution.max_memory_bytes = 100_000,
        &[
            "execution.max_memory_bytes: 100000 is not a whole number of 64 KiB wasm pages; use 131072 (128 KiB (131072 bytes))",
        ],
    );
}

#[test]
fn fuel_within_bounds() {
    assert_problems(
        |p| p.execution.fuel = Some(0),
        &["execution.fuel: 0 is out of bounds; use 1 to 10000000000000, or leave fuel out"],
    );
    assert_problems(
        |p| p.execution.fuel = Some(MAX_FUEL + 1),
        &[
            "execution.fuel: 10000000000001 is out of bounds; use 1 to 10000000000000, or leave fuel out",
        ],
    );
    assert!(problems_after(|p| p.execution.fuel = None).is_empty());
}

#[test]
fn timeout_within_bounds() {
    assert_problems(
        |p| p.execution.timeout_ms = 86_400_001,
        &["execution.timeout_ms: 86400001 is out of bounds; use 1 to 86400000 milliseconds (24h)"],
    );
}

#[test]
fn output_limit_within_bounds() {
    assert_problems(
        |p| p.execution.max_output_bytes = (4 << 30) + 1,
        &[
            "execution.max_output_bytes: 4294967297 is out of bounds; use 0 to 4294967296 bytes (4 GiB (4294967296 bytes))",
        ],
    );
    assert!(problems_after(|p| p.execution.max_output_bytes = 0).is_empty());
}

// --- attestation ----------------------------------------------------------------------------

#[test]
fn attestation_service_is_an_http_url() {
    assert_problems(
        |p| p.attestation.service = "127.0.0.1:3010".to_owned(),
        &[
            "attestation.service: \"127.0.0.1:3010\" is not an http:// or https:// URL; write e.g. \"https://attestation.example:3010\"",
        ],
    );
}

#[test]
fn attestation_ca_parses() {
    assert_problems(
        |p| p.attestation.ca_certificate = String::new(),
        &[
            "attestation.ca_certificate: is not a PEM certificate; expected one PEM block \"-----BEGIN CERTIFICATE-----\"",
        ],
    );
}

#[test]
fn attestation_ca_is_a_ca_and_current() {
    assert_problems(
        |p| p.attestation.ca_certificate = file("ids/researcher.crt"),
        &[
            "attestation.ca_certificate: CN=researcher is not a CA certificate (no basicConstraints cA=true); \
           give the attestation service's CA certificate, not a leaf",
        ],
    );
    let expired = certificate(
        "ca",
        true,
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2026, 1, 1),
    );
    assert_problems(
        |p| p.attestation.ca_certificate = expired,
        &[
            "attestation.ca_certificate: expired on 2026-01-01T00:00:00Z (now is 2026-06-01T12:00:00Z); use a current certificate",
        ],
    );
}

#[test]
fn at_least_one_measurement() {
    assert_problems(
        |p| p.attestation.measurements.clear(),
        &[
            "attestation.measurements: no accepted measurements; list at least one, e.g. software = [the output of `covenant measurement`]",
        ],
    );
}

#[test]
fn measurement_platforms_known() {
    assert_problems(
        |p| {
            p.attestation
                .measurements
                .insert("sev".to_owned(), vec!["ab".repeat(48)]);
        },
        &[
            "attestation.measurements.sev: unknown platform \"sev\"; known platforms are software, sgx, sev-snp, tdx, nitro, trustzone, sel4",
        ],
    );
}

#[test]
fn measurements_well_formed_for_their_platform() {
    assert_problems(
        |p| {
            p.attestation
                .measurements
                .insert("sgx".to_owned(), vec!["ab".repeat(48)]);
        },
        &[&format!(
            "attestation.measurements.sgx[0]: {:?} is not an SGX MRENCLAVE (32 bytes); expected 64 lowercase hex digits, found 96 characters",
            "ab".repeat(48)
        )],
    );
    assert_problems(
        |p| {
            p.attestation
                .measurements
                .insert("sev-snp".to_owned(), vec!["ab".repeat(32)]);
        },
        &[&format!(
            "attestation.measurements.sev-snp[0]: {:?} is not an SEV-SNP launch measurement (48 bytes); expected 96 lowercase hex digits, found 64 characters",
            "ab".repeat(32)
        )],
    );
    assert_problems(
        |p| {
            p.attestation
                .measurements
                .insert("nitro".to_owned(), vec!["AB".repeat(48)]);
        },
        &[&format!(
            "attestation.measurements.nitro[0]: {:?} is not a Nitro PCR0 (48 bytes); write the hex digits in lowercase",
            "AB".repeat(48)
        )],
    );
    // Every platform accepts a value of its own length.
    assert!(
        problems_after(|p| {
            for (name, bytes) in [
                ("sgx", 32),
                ("sev-snp", 48),
                ("tdx", 48),
                ("nitro", 48),
                ("trustzone", 32),
                ("sel4", 32),
            ] {
                p.attestation
                    .measurements
                    .insert(name.to_owned(), vec!["0f".repeat(bytes)]);
            }
        })
        .is_empty()
    );
}

#[test]
fn measurements_listed_once_and_lists_not_empty() {
    assert_problems(
        |p| {
            let software = p
                .attestation
                .measurements
                .get_mut("software")
                .expect("software");
            software.push(software[0].clone());
        },
        &[&format!(
            "attestation.measurements.software[1]: {:?} is listed twice",
            "5e".repeat(32)
        )],
    );
    assert_problems(
        |p| {
            p.attestation
                .measurements
                .insert("tdx".to_owned(), Vec::new());
        },
        &["attestation.measurements.tdx: is empty; list measurements or leave the platform out"],
    );
    assert_problems(
        |p| {
            p.attestation.measurements.insert(
                "sel4".to_owned(),
                (0..65).map(|i: u32| format!("{:064x}", i)).collect(),
            );
        },
        &["attestation.measurements.sel4: 65 measurements; at most 64 per platform are allowed"],
    );
}

/// The policy with a measurement on each hardware platform, plus `rules` for `platform`.
fn with_appraisal(p: &mut Policy, platform: &str, rules: covenant_policy::Appraisal) {
    for (name, bytes) in [("sgx", 32), ("sev-snp", 48), ("tdx", 48), ("nitro", 48)] {
        p.attestation
            .measurements
            .insert(name.to_owned(), vec!["0f".repeat(bytes)]);
    }
    p.attestation.appraisal.insert(platform.to_owned(), rules);
}

#[test]
fn appraisal_rules_apply_to_their_platforms_only() {
    use covenant_policy::Appraisal;
    // Every rule on the platform it is for.
    assert!(
        problems_after(|p| {
            with_appraisal(
                p,
                "sev-snp",
                Appraisal {
                    allow_debug: true,
                    allow_migration_agent: true,
                    ..Appraisal::default()
                },
            );
            with_appraisal(
                p,
                "sgx",
                Appraisal {
                    accepted_tcb_statuses: vec!["sw-hardening-needed".into()],
                    sgx_mrsigner: Some("ab".repeat(32)),
                    sgx_isv_prod_id: Some(3),
                    ..Appraisal::default()
                },
            );
        })
        .is_empty()
    );
    let migration = Appraisal {
        allow_migration_agent: true,
        ..Appraisal::default()
    };
    assert_problems(
        |p| with_appraisal(p, "tdx", migration),
        &["attestation.appraisal.tdx.allow_migration_agent: applies to sev-snp only"],
    );
    let statuses = Appraisal {
        accepted_tcb_statuses: vec!["out-of-date".into()],
        ..Appraisal::default()
    };
    assert_problems(
        |p| with_appraisal(p, "nitro", statuses),
        &[
            "attestation.appraisal.nitro.accepted_tcb_statuses: applies to tdx and sgx only (Intel TCB statuses)",
        ],
    );
    let signer = Appraisal {
        sgx_mrsigner: Some("ab".repeat(32)),
        ..Appraisal::default()
    };
    assert_problems(
        |p| with_appraisal(p, "tdx", signer),
        &["attestation.appraisal.tdx: sgx_mrsigner and sgx_isv_prod_id apply to sgx only"],
    );
    assert_problems(
        |p| with_appraisal(p, "software", Appraisal::default()),
        &[
            "attestation.appraisal.software: the software platform has no hardware to appraise; leave it out",
        ],
    );
    assert_problems(
        |p| {
            p.attestation
                .appraisal
                .insert("sev".into(), Appraisal::default());
        },
        &[
            "attestation.appraisal.sev: unknown platform \"sev\"; known platforms are software, sgx, sev-snp, tdx, nitro, trustzone, sel4",
        ],
    );
    // Rules for a platform the policy accepts no measurement of.
    assert_problems(
        |p| {
            p.attestation
                .appraisal
                .insert("tdx".into(), Appraisal::default());
        },
        &[
            "attestation.appraisal.tdx: rules for tdx, but attestation.measurements lists no tdx measurement; add one or leave these rules out",
        ],
    );
}

#[test]
fn appraisal_tcb_statuses_are_known_never_revoked_and_listed_once() {
    use covenant_policy::Appraisal;
    let rules = Appraisal {
        accepted_tcb_statuses: vec![
            "up-to-date".into(),
            "revoked".into(),
            "OutOfDate".into(),
            "configuration-needed".into(),
            "configuration-needed".into(),
        ],
        sgx_mrsigner: Some("AB".repeat(32)),
        ..Appraisal::default()
    };
    assert_problems(
        |p| with_appraisal(p, "sgx", rules),
        &[
            "attestation.appraisal.sgx.accepted_tcb_statuses[0]: up-to-date is always accepted; leave it out",
            "attestation.appraisal.sgx.accepted_tcb_statuses[1]: a revoked TCB is never accepted: its keys may be in an attacker's hands",
            "attestation.appraisal.sgx.accepted_tcb_statuses[2]: unknown TCB status \"OutOfDate\"; known: sw-hardening-needed, configuration-needed, configuration-and-sw-hardening-needed, out-of-date, out-of-date-configuration-needed, td-relaunch-advised, td-relaunch-advised-configuration-needed",
            "attestation.appraisal.sgx.accepted_tcb_statuses[4]: \"configuration-needed\" is listed twice",
            &format!(
                "attestation.appraisal.sgx.sgx_mrsigner: {:?} is not an MRSIGNER: expected 64 lowercase hex digits",
                "AB".repeat(32)
            ),
        ],
    );
}
