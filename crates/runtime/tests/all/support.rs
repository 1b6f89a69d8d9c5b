//! Fixtures: three principals, a policy around a guest, an attested receipt key minted the way
//! the attestation service mints one.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use covenant_attest::ca::bind;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::software::{SoftwarePlatform, SoftwareVerifier};
use covenant_attest::{
    CertificateAuthority, CheckedCsr, Digest, EvidenceRequest, EvidenceVerifier, Measurement,
    Nonce, Platform, PlatformEnrolment, PlatformKind, RuntimeCsrRequest,
};
use covenant_policy::{
    Attestation, Execution, FormatTag, FormatVersion, Input, Output, Policy,
    Principal as PolicyPrincipal, Program, RerunConsent, Runs, Strategy, ValidPolicy,
};
use covenant_runtime::{Computation, Principal, ReceiptSigner};
use rcgen::PublicKeyData as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

pub const MEASUREMENT: Measurement = Measurement::sha256([0x11; 32]);

pub const A_CSV: &[u8] = b"1,2,3\n4\n";
pub const B_CSV: &[u8] = b"10,20\n";

pub fn alice() -> Principal {
    Principal::new("alice")
}
pub fn bob() -> Principal {
    Principal::new("bob")
}
pub fn carol() -> Principal {
    Principal::new("carol")
}
pub fn mallory() -> Principal {
    Principal::new("mallory")
}

/// A self-signed P-256 certificate with CN = `name`: (certificate PEM, key PEM).
pub fn identity(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An attestation service: its CA and one enrolled software platform.
pub struct Service {
    pub ca: CertificateAuthority,
    platform: SoftwarePlatform,
    enrolment: PlatformEnrolment,
}

impl Service {
    pub fn new() -> Self {
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
        let ca = CertificateAuthority::generate("test CA", OffsetDateTime::now_utc()).unwrap();
        Service {
            ca,
            platform,
            enrolment,
        }
    }

    /// The runtime's receipt key for `policy`, certified through the whole service path.
    pub fn signer(&self, policy: &ValidPolicy) -> ReceiptSigner {
        let (key, chain) = self.attested_key(policy);
        ReceiptSigner::new(&key, chain).unwrap()
    }

    /// The runtime's attested key for `policy`: (PKCS#8 DER, chain DER end-entity first).
    pub fn attested_key(&self, policy: &ValidPolicy) -> (Vec<u8>, Vec<Vec<u8>>) {
        let policy_hash = Digest(*policy.hash().as_bytes());
        let computation = policy.policy().computation.as_str();
        let key = generate_tls_key().unwrap();
        let csr = RuntimeCsrRequest {
            policy_hash,
            computation_id: computation.into(),
            dns_names: vec![format!("{computation}.example")],
        }
        .build(&key)
        .unwrap();
        let request = EvidenceRequest::new(
            policy_hash,
            computation,
            &key.subject_public_key_info(),
            Nonce::random().unwrap(),
        )
        .unwrap();
        let evidence = self.platform.evidence(&request).unwrap();
        let verified = SoftwareVerifier.verify(&evidence, &self.enrolment).unwrap();
        let bound = bind(&verified, &CheckedCsr::parse(&csr).unwrap()).unwrap();
        let issued = self
            .ca
            .issue_attested(&bound, OffsetDateTime::now_utc(), Duration::from_secs(3600))
            .unwrap();
        (
            key.serialize_der(),
            vec![issued.der, self.ca.certificate_der().to_vec()],
        )
    }
}

/// The test policy: alice provides the program and `/input/a.csv` and starts runs, bob
/// provides `/input/b.csv`, carol reads `/output/result.txt` and stdout, alice reads stderr.
pub fn policy(service: &Service, program: &[u8], strategy: Strategy) -> Policy {
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
            sha256: sha256_hex(program),
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
        outputs: vec![
            Output {
                path: "/output/result.txt".into(),
                readers: vec!["carol".into()],
            },
            Output {
                path: "stdout".into(),
                readers: vec!["carol".into()],
            },
            Output {
                path: "stderr".into(),
                readers: vec!["alice".into()],
            },
        ],
        runs: Runs {
            starters: vec!["alice".into()],
            max: 1,
            rerun_consent: RerunConsent::All,
        },
        execution: Execution {
            strategy,
            max_memory_bytes: 64 << 20,
            fuel: Some(10_000_000_000),
            timeout_ms: 10_000,
            max_output_bytes: 1 << 20,
            clock: false,
            random: false,
        },
        attestation: Attestation {
            service: "http://127.0.0.1:3010".into(),
            ca_certificate: service.ca.certificate_pem(),
            measurements: BTreeMap::from([("software".into(), vec![MEASUREMENT.to_hex()])]),
        },
    }
}

pub fn validate(policy: &Policy) -> ValidPolicy {
    covenant_policy::validate(policy, OffsetDateTime::now_utc())
        .unwrap_or_else(|p| panic!("test policy invalid: {p:?}"))
}

pub fn sum_inputs() -> Vec<u8> {
    covenant_guests::SUM_INPUTS.bytes()
}

/// A computation for `policy` with a fresh service.
pub fn computation_for(service: &Service, policy: &Policy) -> Computation {
    let valid = validate(policy);
    let signer = service.signer(&valid);
    Computation::new(valid, signer).unwrap()
}

/// The standard setup: the sum_inputs guest on `strategy`, after `edit`.
pub fn setup(strategy: Strategy, edit: impl FnOnce(&mut Policy)) -> (Service, Computation) {
    let service = Service::new();
    let mut p = policy(&service, &sum_inputs(), strategy);
    edit(&mut p);
    let c = computation_for(&service, &p);
    (service, c)
}

/// Provides program and both inputs.
pub fn provision(c: &mut Computation) {
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
}

pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

/// Everything observable about a computation, to show that a refusal changed nothing: the
/// status each principal sees, stored bytes, receipts, and every output each reader can fetch.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    statuses: Vec<covenant_runtime::Status>,
    stored_bytes: u64,
    receipts: usize,
    outputs: Vec<Result<Vec<u8>, String>>,
}

pub fn snapshot(c: &Computation) -> Snapshot {
    let everyone = [alice(), bob(), carol()];
    let mut outputs = Vec::new();
    for who in &everyone {
        for out in ["/output/result.txt", "stdout", "stderr"] {
            outputs.push(
                c.fetch_output(who, out)
                    .map(read_all)
                    .map_err(|e| e.to_string()),
            );
        }
    }
    Snapshot {
        statuses: everyone.iter().map(|p| c.status(p).unwrap()).collect(),
        stored_bytes: c.stored_bytes().unwrap(),
        receipts: c.receipts(&alice()).unwrap().len(),
        outputs,
    }
}

/// Asserts that `op` is refused with rule `rule` and leaves `c` exactly as it was.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    c: &mut Computation,
    rule: &str,
    op: impl FnOnce(&mut Computation) -> Result<T, covenant_runtime::RuntimeError>,
) {
    let before = snapshot(c);
    let result = op(c);
    match &result {
        Err(e) => assert_eq!(
            e.refusal().map(|r| r.rule()),
            Some(rule),
            "expected refusal {rule}, got {e}"
        ),
        Ok(v) => panic!("expected refusal {rule}, got Ok({v:?})"),
    }
    assert_eq!(
        snapshot(c),
        before,
        "a refusal ({rule}) changed the computation"
    );
}

/// A reader that yields `good` and then fails, like a client that disconnects mid-upload.
pub struct FailingReader {
    pub good: Vec<u8>,
    pub pos: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos < self.good.len() {
            let n = buf.len().min(self.good.len() - self.pos);
            buf[..n].copy_from_slice(&self.good[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            ))
        }
    }
}
