//! Fixtures: an attestation service (CA + software platform), three principals whose keys the
//! test holds, the sum_inputs policy, and a served computation on a loopback listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use covenant_attest::ca::bind;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::software::{SoftwarePlatform, SoftwareVerifier};
use covenant_attest::{
    CertificateAuthority, CheckedCsr, Digest, EvidenceRequest, EvidenceVerifier, Measurement,
    Nonce, Platform, PlatformEnrolment, PlatformKind, RuntimeCsrRequest,
};
use covenant_client::{Client, Identity};
use covenant_policy::{
    Attestation, Execution, FormatTag, FormatVersion, Input, Output, Policy,
    Principal as PolicyPrincipal, Program, RerunConsent, Runs, Strategy, ValidPolicy,
};
use covenant_runtime::api::{ApiServer, ServerIdentity};
use covenant_runtime::{Computation, ReceiptSigner};
use rcgen::PublicKeyData as _;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tokio::net::TcpListener;

pub const MEASUREMENT: Measurement = Measurement::sha256([0x11; 32]);

pub const A_CSV: &[u8] = b"1,2,3\n4\n";
pub const B_CSV: &[u8] = b"10,20\n";

/// A principal's credentials: certificate PEM (for the policy) and the client identity.
pub struct Credentials {
    pub pem: String,
    pub key_pem: String,
    pub identity: Identity,
}

/// A self-signed P-256 certificate with CN = `name`, as `covenant identity new` makes one.
pub fn credentials(name: &str) -> Credentials {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    let identity =
        Identity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
    Credentials {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        identity,
    }
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
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "platform-1");
        let cert = params.self_signed(&key).unwrap();
        let platform = SoftwarePlatform::new(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            MEASUREMENT,
        )
        .unwrap();
        let enrolment = PlatformEnrolment {
            name: "platform-1".into(),
            kind: PlatformKind::Software,
            certificate_der: cert.der().to_vec(),
        };
        let ca = CertificateAuthority::generate("test CA", OffsetDateTime::now_utc()).unwrap();
        Service {
            ca,
            platform,
            enrolment,
        }
    }

    /// The runtime's attested key for `policy`: (PKCS#8 DER, chain DER end-entity first),
    /// certified through the whole service path.
    pub fn attested_key(&self, policy: &ValidPolicy) -> (Vec<u8>, Vec<Vec<u8>>) {
        let policy_hash = Digest(*policy.hash().as_bytes());
        let computation = policy.policy().computation.as_str();
        let key = generate_tls_key().unwrap();
        let csr = RuntimeCsrRequest {
            policy_hash,
            computation_id: computation.into(),
            dns_names: vec![computation.to_owned()],
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

/// The test policy around the sum_inputs guest: alice provides the program and
/// `/input/a.csv` and starts runs, bob provides `/input/b.csv`, carol reads
/// `/output/result.txt` and stdout, alice reads stderr.
pub fn policy(service: &Service, principals: [&Credentials; 3]) -> Policy {
    let now = OffsetDateTime::now_utc();
    let names = ["alice", "bob", "carol"];
    Policy {
        format: FormatTag,
        version: FormatVersion,
        computation: "shared-patients".into(),
        expires: covenant_policy::format_utc(now + time::Duration::days(1)),
        principals: names
            .iter()
            .zip(principals)
            .map(|(name, c)| PolicyPrincipal {
                name: (*name).into(),
                certificate: c.pem.clone(),
            })
            .collect(),
        program: Program {
            name: "sum_inputs".into(),
            sha256: sha256_hex(&sum_inputs()),
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
            strategy: Strategy::Interpreter,
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

/// A computation served on a loopback listener, with the keys of its three principals.
pub struct Served {
    pub policy: ValidPolicy,
    pub alice: Credentials,
    pub bob: Credentials,
    pub carol: Credentials,
    pub server: ApiServer,
    pub addr: SocketAddr,
}

impl Served {
    pub async fn connect(&self, who: &Credentials) -> Client {
        Client::connect(&self.policy, &who.identity, &self.addr.to_string())
            .await
            .unwrap()
    }
}

pub async fn served() -> Served {
    served_with(|_| {}).await
}

/// Serves the test policy after `edit`, attested by a fresh service.
pub async fn served_with(edit: impl FnOnce(&mut Policy)) -> Served {
    let service = Service::new();
    let (alice, bob, carol) = (
        credentials("alice"),
        credentials("bob"),
        credentials("carol"),
    );
    let mut policy = policy(&service, [&alice, &bob, &carol]);
    edit(&mut policy);
    let valid = validate(&policy);
    let server = api_server(&service, &valid, &valid);
    let addr = listen(server.clone()).await;
    Served {
        policy: valid,
        alice,
        bob,
        carol,
        server,
        addr,
    }
}

/// A server whose attested key was certified for `attested` and whose computation runs
/// `runs` (the same policy, except to stage a misconfigured runtime).
pub fn api_server(service: &Service, attested: &ValidPolicy, runs: &ValidPolicy) -> ApiServer {
    let (key, chain) = service.attested_key(attested);
    let signer = ReceiptSigner::new(&key, chain.clone()).unwrap();
    let computation = Computation::new(runs.clone(), signer).unwrap();
    ApiServer::new(computation, &ServerIdentity::new(key, chain)).unwrap()
}

/// Serves every connection to a loopback listener; returns its address.
pub async fn listen(server: ApiServer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
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
