//! Shared test fixtures: identities made the way `covenant identity new` makes them, a
//! platform, a CA, and a full issuance.

use rcgen::PublicKeyData as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use covenant_attest::ca::bind;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::software::{SoftwarePlatform, SoftwareVerifier};
use covenant_attest::{
    CertificateAuthority, CheckedCsr, Digest, EvidenceRequest, EvidenceVerifier, ExpectedRuntime,
    IssuedCertificate, Measurement, Nonce, PlatformEnrolment, PlatformKind, RuntimeCsrRequest,
};
use time::OffsetDateTime;

pub use covenant_test_support::{der_of, identity};

pub const MEASUREMENT: Measurement = Measurement::sha256([0x11; 32]);
pub const POLICY: Digest = Digest([0x22; 32]);
pub const COMPUTATION: &str = "computation-42";

pub struct Fixture {
    pub platform: SoftwarePlatform,
    pub enrolment: PlatformEnrolment,
    pub ca: CertificateAuthority,
}

impl Fixture {
    pub fn new() -> Self {
        let (cert_pem, key_pem) = identity("platform-1");
        let platform =
            SoftwarePlatform::new(cert_pem.as_bytes(), key_pem.as_bytes(), MEASUREMENT).unwrap();
        let enrolment = PlatformEnrolment {
            name: "platform-1".into(),
            kind: PlatformKind::Software,
            certificate_der: der_of(&cert_pem),
        };
        let ca = CertificateAuthority::generate("test CA", OffsetDateTime::now_utc()).unwrap();
        Self {
            platform,
            enrolment,
            ca,
        }
    }

    /// Runtime side: TLS key, CSR and evidence for the given policy/computation.
    pub fn runtime_request(
        &self,
        policy: Digest,
        computation: &str,
    ) -> (rcgen::KeyPair, Vec<u8>, covenant_attest::Evidence) {
        let key = generate_tls_key().unwrap();
        let csr = RuntimeCsrRequest {
            policy_hash: policy,
            computation_id: computation.into(),
            dns_names: vec!["runtime.example".into()],
        }
        .build(&key)
        .unwrap();
        let request = EvidenceRequest::new(
            policy,
            computation,
            &key.subject_public_key_info(),
            Nonce::random().unwrap(),
        )
        .unwrap();
        let evidence = self.platform.software_evidence(&request).unwrap();
        (key, csr, evidence)
    }

    /// The whole service-side path, returning the issued certificate and the runtime's key.
    pub fn issue(
        &self,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> (rcgen::KeyPair, IssuedCertificate) {
        let (key, csr, evidence) = self.runtime_request(POLICY, COMPUTATION);
        let verified = SoftwareVerifier.verify(&evidence, &self.enrolment).unwrap();
        let checked = CheckedCsr::parse(&csr).unwrap();
        let bound = bind(&verified, &checked).unwrap();
        (key, self.ca.issue_attested(&bound, now, lifetime).unwrap())
    }

    pub fn expected(&self) -> ExpectedRuntime {
        ExpectedRuntime {
            ca_certificate_der: self.ca.certificate_der().to_vec(),
            accepted_measurements: BTreeMap::from([(
                PlatformKind::Software,
                BTreeSet::from([MEASUREMENT]),
            )]),
            hardware_requirements: BTreeMap::new(),
            policy_hash: POLICY,
            computation_id: COMPUTATION.into(),
        }
    }
}

pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}
