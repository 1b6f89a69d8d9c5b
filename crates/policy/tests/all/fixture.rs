//! The example policy, built from `docs/policy-example/policy.toml` with identities made here.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use covenant_policy::{Policy, ValidPolicy};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use time::OffsetDateTime;
use time::macros::datetime;

/// The annotated example source, exactly as committed.
pub const EXAMPLE_SOURCE: &str = include_str!("../../../../docs/policy-example/policy.toml");

/// The sample data the example pins by SHA-256.
pub const EXAMPLE_DATA_A: &[u8] = include_bytes!("../../../../docs/policy-example/data/a.csv");

/// "Now" for every test: before the example's expiry (2027-06-01), after the certificates'
/// start.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// What `"self"` resolves to in these tests.
pub const SELF_MEASUREMENT: [u8; 32] = [0x5e; 32];

/// The smallest valid WebAssembly module: magic and version.
pub const WASM: &[u8] = b"\0asm\x01\0\0\0";

/// A self-signed P-256 certificate with CN = `name`, valid 2020–2040, as PEM.
pub fn identity(name: &str) -> String {
    certificate(
        name,
        false,
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2040, 1, 1),
    )
}

/// A certificate with chosen CA flag and validity.
pub fn certificate(
    name: &str,
    ca: bool,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> String {
    let key = KeyPair::generate().expect("P-256 key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.not_before = not_before;
    params.not_after = not_after;
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params
        .self_signed(&key)
        .expect("self-signed certificate")
        .pem()
}

/// The files the example refers to, made once per test binary so every test sees the same
/// certificates (and therefore the same policy hash).
pub static FILES: LazyLock<BTreeMap<String, Vec<u8>>> = LazyLock::new(|| {
    let mut files = BTreeMap::new();
    for name in ["hospital-a", "hospital-b", "researcher"] {
        files.insert(format!("ids/{name}.crt"), identity(name).into_bytes());
    }
    let ca = certificate(
        "Covenant attestation CA",
        true,
        rcgen::date_time_ymd(2020, 1, 1),
        rcgen::date_time_ymd(2040, 1, 1),
    );
    files.insert("attestation/ca.crt".to_owned(), ca.into_bytes());
    files.insert("psi.wasm".to_owned(), WASM.to_vec());
    files
});

/// Builds a source against [`FILES`].
pub fn build(source: &str) -> Result<Policy, covenant_policy::BuildError> {
    covenant_policy::build(source, &*FILES, Some(SELF_MEASUREMENT))
}

/// The example, built.
pub fn example() -> Policy {
    build(EXAMPLE_SOURCE).expect("the example builds")
}

/// The example, built and validated at [`NOW`].
pub fn valid_example() -> ValidPolicy {
    covenant_policy::validate(&example(), NOW).expect("the example is valid")
}

/// Every problem (as `path: message` lines) after `edit` is applied to the example.
pub fn problems_after(edit: impl FnOnce(&mut Policy)) -> Vec<String> {
    let mut policy = example();
    edit(&mut policy);
    match covenant_policy::validate(&policy, NOW) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .as_slice()
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

/// The example as a JSON value.
pub fn example_value() -> serde_json::Value {
    serde_json::to_value(example()).expect("serialises")
}
