//! Signing requests: what the service accepts, what it refuses, and the binding to evidence.

use covenant_attest::ca::bind;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::extensions::{OID_COMPUTATION_ID, OID_MEASUREMENT, OID_POLICY_HASH};
use covenant_attest::software::SoftwareVerifier;
use covenant_attest::{
    BindingError, CheckedCsr, CsrError, Digest, EvidenceRequest, EvidenceVerifier, Nonce,
    RuntimeCsrRequest,
};
use rcgen::PublicKeyData as _;

use crate::support::{COMPUTATION, Fixture, POLICY};

fn octet_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

fn utf8(text: &str) -> Vec<u8> {
    let mut out = vec![0x0c, text.len() as u8];
    out.extend_from_slice(text.as_bytes());
    out
}

/// A CSR with exactly the given custom extensions.
fn csr_with(extensions: Vec<rcgen::CustomExtension>, key: &rcgen::KeyPair) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.custom_extensions = extensions;
    params.serialize_request(key).unwrap().der().to_vec()
}

fn ours() -> Vec<rcgen::CustomExtension> {
    vec![
        rcgen::CustomExtension::from_oid_content(&OID_POLICY_HASH, octet_string(&POLICY.0)),
        rcgen::CustomExtension::from_oid_content(&OID_COMPUTATION_ID, utf8(COMPUTATION)),
    ]
}

#[test]
fn a_runtime_request_parses_with_its_claims() {
    let key = generate_tls_key().unwrap();
    let der = RuntimeCsrRequest {
        policy_hash: POLICY,
        computation_id: COMPUTATION.into(),
        dns_names: vec!["a.example".into(), "b.example".into()],
    }
    .build(&key)
    .unwrap();
    let csr = CheckedCsr::parse(&der).unwrap();
    assert_eq!(*csr.policy_hash(), POLICY);
    assert_eq!(csr.computation_id(), COMPUTATION);
    assert_eq!(csr.dns_names(), ["a.example", "b.example"]);
    assert_eq!(
        csr.tls_public_key_sha256(),
        Digest::of(&key.subject_public_key_info())
    );
}

#[test]
fn a_request_with_an_unexpected_extension_is_refused() {
    let key = generate_tls_key().unwrap();
    let mut extensions = ours();
    extensions.push(rcgen::CustomExtension::from_oid_content(
        &[1, 2, 3, 4, 5],
        octet_string(b"x"),
    ));
    assert_eq!(
        CheckedCsr::parse(&csr_with(extensions, &key)),
        Err(CsrError::UnexpectedExtension {
            oid: "1.2.3.4.5".into()
        })
    );
}

#[test]
fn a_request_asking_for_key_usages_is_refused() {
    let key = generate_tls_key().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.custom_extensions = ours();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let der = params.serialize_request(&key).unwrap().der().to_vec();
    assert!(matches!(
        CheckedCsr::parse(&der),
        Err(CsrError::UnexpectedExtension { .. })
    ));
}

#[test]
fn a_request_asserting_its_own_measurement_is_refused() {
    let key = generate_tls_key().unwrap();
    let mut extensions = ours();
    extensions.push(rcgen::CustomExtension::from_oid_content(
        &OID_MEASUREMENT,
        octet_string(&[0; 32]),
    ));
    assert!(matches!(
        CheckedCsr::parse(&csr_with(extensions, &key)),
        Err(CsrError::UnexpectedExtension { .. })
    ));
}

#[test]
fn a_request_without_a_computation_id_is_refused() {
    let key = generate_tls_key().unwrap();
    let extensions = vec![ours().remove(0)];
    assert_eq!(
        CheckedCsr::parse(&csr_with(extensions, &key)),
        Err(CsrError::MissingExtension("computation id"))
    );
}

#[test]
fn a_malformed_policy_hash_extension_is_refused() {
    let key = generate_tls_key().unwrap();
    let extensions = vec![
        rcgen::CustomExtension::from_oid_content(&OID_POLICY_HASH, octet_string(&[1; 31])),
        rcgen::CustomExtension::from_oid_content(&OID_COMPUTATION_ID, utf8(COMPUTATION)),
    ];
    assert!(matches!(
        CheckedCsr::parse(&csr_with(extensions, &key)),
        Err(CsrError::BadExtension {
            name: "policy hash",
            ..
        })
    ));
}

#[test]
fn garbage_truncated_and_tampered_requests_are_refused() {
    let key = generate_tls_key().unwrap();
    let der = csr_with(ours(), &key);
    assert!(matches!(
        CheckedCsr::parse(b"not a csr"),
        Err(CsrError::Malformed(_))
    ));
    assert!(matches!(
        CheckedCsr::parse(&der[..der.len() / 2]),
        Err(CsrError::Malformed(_))
    ));
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(
        CheckedCsr::parse(&trailing),
        Err(CsrError::Malformed(_))
    ));
    // Change the computation id's last character inside the signed part.
    let position = der
        .windows(COMPUTATION.len())
        .position(|w| w == COMPUTATION.as_bytes())
        .unwrap();
    let mut tampered = der;
    tampered[position + COMPUTATION.len() - 1] ^= 0x01;
    assert_eq!(CheckedCsr::parse(&tampered), Err(CsrError::BadSignature));
}

#[test]
fn a_non_p256_key_is_refused() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    assert_eq!(
        CheckedCsr::parse(&csr_with(ours(), &key)),
        Err(CsrError::UnsupportedKey)
    );
}

#[test]
fn evidence_for_another_tls_key_does_not_bind() {
    let fx = Fixture::new();
    let (_, _, evidence) = fx.runtime_request(POLICY, COMPUTATION);
    let other_key = generate_tls_key().unwrap();
    let csr = CheckedCsr::parse(&csr_with(ours(), &other_key)).unwrap();
    let verified = SoftwareVerifier.verify(&evidence, &fx.enrolment).unwrap();
    assert!(matches!(
        bind(&verified, &csr),
        Err(BindingError::TlsKeyMismatch { .. })
    ));
}

#[test]
fn evidence_for_another_policy_or_computation_does_not_bind() {
    let fx = Fixture::new();
    let key = generate_tls_key().unwrap();
    let csr = CheckedCsr::parse(&csr_with(ours(), &key)).unwrap();
    let evidence_for = |policy: Digest, computation: &str| {
        let request = EvidenceRequest::new(
            policy,
            computation,
            &key.subject_public_key_info(),
            Nonce::random().unwrap(),
        )
        .unwrap();
        SoftwareVerifier
            .verify(
                &fx.platform.software_evidence(&request).unwrap(),
                &fx.enrolment,
            )
            .unwrap()
    };
    assert!(matches!(
        bind(&evidence_for(Digest([9; 32]), COMPUTATION), &csr),
        Err(BindingError::PolicyHashMismatch { .. })
    ));
    assert!(matches!(
        bind(&evidence_for(POLICY, "another"), &csr),
        Err(BindingError::ComputationIdMismatch { .. })
    ));
    assert!(bind(&evidence_for(POLICY, COMPUTATION), &csr).is_ok());
}
