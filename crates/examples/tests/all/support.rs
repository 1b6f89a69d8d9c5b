//! Fixtures: an attestation service minting the runtime's receipt key, each example's policy
//! built from its `policy.toml` with identities made on the fly, and the whole flow of one
//! computation (provide, run, fetch, verify).

use std::path::PathBuf;

use covenant_examples::Example;
use covenant_policy::{Policy, Strategy};
use covenant_runtime::{Computation, Principal, RunSummary, verify_receipt};
use covenant_sandbox::Outcome;
pub use covenant_test_support::{Service, identity, read_all, sha256_hex};
use time::OffsetDateTime;

/// The runtime measurement the examples' policies accept (their `"self"`).
pub const MEASUREMENT: [u8; 32] = covenant_test_support::MEASUREMENT_BYTES;

/// The directory `examples/NAME` of the repository.
pub fn example_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// The policy of example `name`, built from its `policy.toml` by the policy crate's source
/// builder. The files the source names are supplied as its parties would make them:
/// `ids/NAME.crt` a fresh identity for principal NAME, the program file `wasm`, and
/// `attestation/ca.crt` the service's CA certificate. `"self"` stands for [`MEASUREMENT`].
/// The source's fixed expiry is moved to a day from now, so the test does not rot.
pub fn build_policy(name: &str, service: &Service, wasm: &[u8]) -> Policy {
    let source = std::fs::read_to_string(example_dir(name).join("policy.toml")).unwrap();
    let ca_pem = service.ca.certificate_pem();
    let files = |path: &str| -> std::io::Result<Vec<u8>> {
        if let Some(principal) = path
            .strip_prefix("ids/")
            .and_then(|p| p.strip_suffix(".crt"))
        {
            Ok(identity(principal).0.into_bytes())
        } else if path == "attestation/ca.crt" {
            Ok(ca_pem.clone().into_bytes())
        } else if path.ends_with(".wasm") {
            Ok(wasm.to_vec())
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        }
    };
    let mut policy = covenant_policy::build(&source, &files, Some(MEASUREMENT))
        .unwrap_or_else(|e| panic!("examples/{name}/policy.toml does not build: {e}"));
    policy.expires =
        covenant_policy::format_utc(OffsetDateTime::now_utc() + time::Duration::days(1));
    policy
}

/// A finished run of one example.
pub struct Finished {
    pub computation: Computation,
    pub summary: RunSummary,
    pub example: Example,
    pub program: Vec<u8>,
    /// The commitment salt each input's provider got, by input path.
    pub input_salts: std::collections::BTreeMap<String, String>,
}

/// Runs `example` end to end on `strategy` under its own policy: the program provider
/// uploads the guest, each input's provider (as the policy says) its generated file, the
/// first run starter starts the run. Asserts that the example supplies exactly the inputs the
/// policy names and that the run exited with `expected_exit`.
pub fn run_example(example: Example, strategy: Strategy, expected_exit: u32) -> Finished {
    let program = covenant_guests::Guest::named(example.guest)
        .unwrap_or_else(|| panic!("no guest named {}", example.guest))
        .bytes();
    let service = Service::with_ca_name("examples CA");
    let mut policy = build_policy(example.name, &service, &program);
    assert_eq!(
        policy.execution.strategy,
        Strategy::Jit,
        "examples/{}/policy.toml should run on the jit strategy",
        example.name
    );
    policy.execution.strategy = strategy;
    let valid = covenant_policy::validate(&policy, OffsetDateTime::now_utc())
        .unwrap_or_else(|p| panic!("examples/{}/policy.toml invalid: {p:?}", example.name));
    let signer = service.signer(&valid);
    let mut c = Computation::new(valid, signer).unwrap();

    let mut named: Vec<&str> = policy.inputs.iter().map(|i| i.path.as_str()).collect();
    let mut generated: Vec<&str> = example.inputs.iter().map(|i| i.path).collect();
    named.sort_unstable();
    generated.sort_unstable();
    assert_eq!(named, generated, "the generator's inputs are the policy's");

    c.provide_program(&Principal::new(&policy.program.provider), &program)
        .unwrap();
    let mut input_salts = std::collections::BTreeMap::new();
    for input in &example.inputs {
        let provider = &policy
            .inputs
            .iter()
            .find(|i| i.path == input.path)
            .unwrap()
            .provider;
        let upload = c
            .begin_input(&Principal::new(provider), input.path)
            .unwrap();
        let written = upload.write(&input.bytes[..]).unwrap();
        input_salts.insert(input.path.to_owned(), written.salt_hex());
        c.finish_input(written).unwrap();
    }
    let summary = c.run(&Principal::new(&policy.runs.starters[0])).unwrap();
    assert_eq!(
        summary.record.outcome,
        Outcome::Exited(expected_exit),
        "{}: {:?}",
        example.name,
        summary.record
    );
    Finished {
        computation: c,
        summary,
        example,
        program,
        input_salts,
    }
}

impl Finished {
    /// The output `name` as every one of its readers fetches it; all of them get the same.
    pub fn fetch(&self, name: &str) -> Vec<u8> {
        let policy = self.computation.policy().policy();
        let output = policy
            .outputs
            .iter()
            .find(|o| o.path == name)
            .unwrap_or_else(|| panic!("the policy names no output {name}"));
        let mut seen: Option<Vec<u8>> = None;
        for reader in &output.readers {
            let bytes = read_all(
                self.computation
                    .fetch_output(&Principal::new(reader), name)
                    .unwrap(),
            );
            if let Some(first) = &seen {
                assert_eq!(first, &bytes, "readers of {name} got different bytes");
            }
            seen = Some(bytes);
        }
        seen.unwrap()
    }

    /// Checks the result file, the one-line summary on stdout and the receipt: it verifies
    /// against the policy and records the program, every input and the result by hash.
    pub fn check(&self) {
        let example = &self.example;
        let result = self.fetch(example.output);
        assert_eq!(
            String::from_utf8_lossy(&result),
            example.expected,
            "{}: the released result differs from the plain Rust answer",
            example.name
        );
        let stdout = String::from_utf8(self.fetch("stdout")).unwrap();
        assert_eq!(
            stdout.lines().count(),
            1,
            "{}: stdout {stdout:?}",
            example.name
        );

        let claims = verify_receipt(&self.summary.receipt, self.computation.policy())
            .unwrap()
            .claims;
        assert_eq!(claims.outcome, Outcome::Exited(0));
        assert_eq!(claims.program_sha256, sha256_hex(&self.program));
        assert_eq!(
            claims.policy_sha256,
            self.computation.policy().hash().to_hex()
        );
        // Each provider's salt opens the receipt's commitment to its input; each reader's
        // salt opens the commitment to the result.
        for input in &example.inputs {
            let salt = &self.input_salts[input.path];
            covenant_runtime::check_opening(&claims, input.path, salt, &input.bytes[..])
                .unwrap_or_else(|e| panic!("{}: {e}", example.name));
        }
        let policy = self.computation.policy().policy();
        let output = policy
            .outputs
            .iter()
            .find(|o| o.path == example.output)
            .unwrap();
        for reader in &output.readers {
            let fetched = self
                .computation
                .fetch_output(&Principal::new(reader), example.output)
                .unwrap();
            let salt = fetched.salt_hex();
            covenant_runtime::check_opening(&claims, example.output, &salt, fetched)
                .unwrap_or_else(|e| panic!("{}: {reader}: {e}", example.name));
        }
    }

    /// Every declared principal that is not a reader of `output` is refused it.
    pub fn assert_non_readers_refused(&self, output: &str) -> usize {
        let policy = self.computation.policy().policy();
        let readers = &policy
            .outputs
            .iter()
            .find(|o| o.path == output)
            .unwrap()
            .readers;
        let mut refused = 0;
        for principal in &policy.principals {
            if readers.contains(&principal.name) {
                continue;
            }
            let err = self
                .computation
                .fetch_output(&Principal::new(&principal.name), output)
                .map(read_all)
                .unwrap_err();
            assert_eq!(err.refusal().map(|r| r.rule()), Some("not-reader"), "{err}");
            refused += 1;
        }
        refused
    }
}
