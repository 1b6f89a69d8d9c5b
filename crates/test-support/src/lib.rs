//! Test fixtures shared by Covenant's test suites, one implementation each: principal
//! identities made the way `covenant identity new` makes them, an attestation service (a test
//! CA and one enrolled software platform) certifying the runtime's key for a policy through the
//! whole service path, the sum_inputs test policy, a served computation on loopback (directly,
//! or behind a relay like the host's), and small helpers.
//!
//! Only for tests: it is never published and nothing outside `tests/` depends on it.
#![forbid(unsafe_code)]
// Test fixtures: a fixture that cannot be built is a broken test, and panicking says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

pub mod hardware;

use covenant_attest::ca::bind;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::software::{SoftwarePlatform, SoftwareVerifier};
use covenant_attest::{
    CertificateAuthority, CheckedCsr, Digest, EvidenceRequest, EvidenceVerifier, Measurement,
    Nonce, PlatformEnrolment, PlatformKind, RuntimeCsrRequest,
};
use covenant_policy::{
    Attestation, Execution, FormatTag, FormatVersion, Input, Output, Policy,
    Principal as PolicyPrincipal, Program, RerunConsent, Runs, Strategy, ValidPolicy,
};
use covenant_runtime::ReceiptSigner;
use covenant_runtime::api::ApiServer;
use rcgen::PublicKeyData as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// The software platform's runtime measurement, as raw SHA-256 bytes.
pub const MEASUREMENT_BYTES: [u8; 32] = [0x11; 32];

/// The measurement the [`Service`]'s platform reports and the test policies accept.
pub const MEASUREMENT: Measurement = Measurement::sha256(MEASUREMENT_BYTES);

/// A principal's identity: a self-signed P-256 certificate and its key, in every form the
/// tests hand out.
pub struct PrincipalIdentity {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

/// A self-signed P-256 certificate with CN = `name` (and no other subject attribute), as
/// `covenant identity new` makes one.
pub fn principal_identity(name: &str) -> PrincipalIdentity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    PrincipalIdentity {
        certificate_pem: cert.pem(),
        certificate_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
        key_der: key.serialize_der(),
    }
}

/// [`principal_identity`] as (certificate PEM, PKCS#8 key PEM).
pub fn identity(name: &str) -> (String, String) {
    let id = principal_identity(name);
    (id.certificate_pem, id.key_pem)
}

/// The DER of the first certificate in `pem`.
pub fn der_of(pem: &str) -> Vec<u8> {
    covenant_attest::pem::certificate_from_pem(pem.as_bytes(), "test")
        .unwrap()
        .to_vec()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Everything `r` yields.
pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

/// An attestation service: its CA and one enrolled software platform ("platform-1",
/// measuring [`MEASUREMENT`]).
pub struct Service {
    /// The service's CA, which issues the attested certificates.
    pub ca: CertificateAuthority,
    platform: SoftwarePlatform,
    enrolment: PlatformEnrolment,
}

impl Default for Service {
    fn default() -> Self {
        Self::new()
    }
}

impl Service {
    /// A service whose CA is named "test CA".
    pub fn new() -> Self {
        Self::with_ca_name("test CA")
    }

    /// A service whose CA is named `ca_name`.
    pub fn with_ca_name(ca_name: &str) -> Self {
        let (cert_pem, key_pem) = identity("platform-1");
        let platform =
            SoftwarePlatform::new(cert_pem.as_bytes(), key_pem.as_bytes(), MEASUREMENT).unwrap();
        let enrolment = PlatformEnrolment {
            name: "platform-1".into(),
            kind: PlatformKind::Software,
            certificate_der: der_of(&cert_pem),
        };
        let ca = CertificateAuthority::generate(ca_name, OffsetDateTime::now_utc()).unwrap();
        Service {
            ca,
            platform,
            enrolment,
        }
    }

    /// The runtime's receipt key for `policy`, certified through the whole service path
    /// (see [`Service::attested_key`]).
    pub fn signer(&self, policy: &ValidPolicy) -> ReceiptSigner {
        let (key, chain) = self.attested_key(policy);
        ReceiptSigner::new(&key, chain).unwrap()
    }

    /// The runtime's attested key for `policy`, its certificate naming `COMPUTATION.example`:
    /// (PKCS#8 DER, chain DER end-entity first).
    pub fn attested_key(&self, policy: &ValidPolicy) -> (Vec<u8>, Vec<Vec<u8>>) {
        let computation = &policy.policy().computation;
        self.attested_key_named(policy, &format!("{computation}.example"))
    }

    /// The runtime's attested key for `policy`, its certificate naming `dns_name`, certified
    /// through the whole service path: evidence from the platform, verified, bound to the
    /// key's CSR, issued by the CA for an hour. Returns (PKCS#8 DER, chain DER end-entity
    /// first).
    pub fn attested_key_named(
        &self,
        policy: &ValidPolicy,
        dns_name: &str,
    ) -> (Vec<u8>, Vec<Vec<u8>>) {
        let policy_hash = Digest(*policy.hash().as_bytes());
        let computation = policy.policy().computation.as_str();
        let key = generate_tls_key().unwrap();
        let csr = RuntimeCsrRequest {
            policy_hash,
            computation_id: computation.into(),
            dns_names: vec![dns_name.to_owned()],
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
        let evidence = self.platform.software_evidence(&request).unwrap();
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

/// The sum_inputs test policy for computation "sum-study", attested by `ca` and expiring in a
/// day: alice, bob and carol (each with a fresh identity) where alice provides `program` and
/// `/input/a.csv` and starts the one run, bob provides `/input/b.csv`, carol reads
/// `/output/result.txt` and stdout, alice reads stderr; 64 MiB, 10^10 fuel, 10 s, 1 MiB of
/// output, no clock, no randomness.
pub fn sum_inputs_policy(ca: &CertificateAuthority, program: &[u8], strategy: Strategy) -> Policy {
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
            ca_certificate: ca.certificate_pem(),
            measurements: BTreeMap::from([("software".into(), vec![MEASUREMENT.to_hex()])]),
            appraisal: BTreeMap::new(),
        },
    }
}

/// `policy` validated now; panics with the problems if it is invalid.
pub fn validate(policy: &Policy) -> ValidPolicy {
    covenant_policy::validate(policy, OffsetDateTime::now_utc())
        .unwrap_or_else(|p| panic!("test policy invalid: {p:?}"))
}

/// Serves every connection to a loopback listener on a spawned task; returns its address.
/// Must be called inside a Tokio runtime.
pub async fn listen(server: ApiServer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let _ = server.serve_connection(socket).await;
            });
        }
    });
    addr
}

/// The buffer of each direction of a relayed connection, as the host's
/// (`covenant_host::RELAY_BUFFER_BYTES`).
const RELAY_BUFFER_BYTES: usize = 256 << 10;

/// Serves every connection to a loopback listener the way `covenant serve` does: the runtime
/// on one end of a Unix socket pair, the bytes copied both ways by `copy_bidirectional` (as
/// the host's relay), and the connection dropped as soon as either direction fails. What a
/// client sees when the runtime stops reading early (a refused upload) is then what it sees
/// through the host. Returns the address; must be called inside a Tokio runtime.
pub async fn listen_relayed(server: ApiServer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (mut ours, theirs) = tokio::net::UnixStream::pair().unwrap();
            let server = server.clone();
            tokio::spawn(async move {
                let _ = server.serve_connection(theirs).await;
            });
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut tcp,
                    &mut ours,
                    RELAY_BUFFER_BYTES,
                    RELAY_BUFFER_BYTES,
                )
                .await;
            });
        }
    });
    addr
}
