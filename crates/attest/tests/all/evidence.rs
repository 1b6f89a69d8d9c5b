//! Software-platform evidence: produced, verified, and refused when anything is off.

use base64::Engine as _;
use covenant_attest::software::{
    SOFTWARE_TRUST_STATEMENT, SoftwarePlatform, SoftwareVerifier, measure_current_executable,
    measure_file,
};
use covenant_attest::{
    Digest, EvidenceError, EvidenceRequest, EvidenceVerifier, Nonce, PlatformEnrolment,
    PlatformKind, verifier_for,
};
use rcgen::PublicKeyData as _;

use crate::support::{COMPUTATION, Fixture, MEASUREMENT, POLICY, der_of, identity};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[test]
fn evidence_verifies_and_says_it_trusts_the_host_os() {
    let fx = Fixture::new();
    let (key, _, evidence) = fx.runtime_request(POLICY, COMPUTATION);
    let verified = SoftwareVerifier.verify(&evidence, &fx.enrolment).unwrap();
    let claims = verified.claims();
    assert_eq!(verified.platform_name(), "platform-1");
    assert_eq!(claims.platform, PlatformKind::Software);
    assert_eq!(claims.measurement, MEASUREMENT);
    assert_eq!(claims.policy_hash, POLICY);
    assert_eq!(claims.computation_id, COMPUTATION);
    assert_eq!(
        claims.tls_public_key_sha256,
        Digest::of(&key.subject_public_key_info())
    );
    assert_eq!(claims.trust, SOFTWARE_TRUST_STATEMENT);
    assert!(
        claims.trust.contains("host operating system"),
        "{}",
        claims.trust
    );
    // The plain-words statement is in the signed bytes themselves, not only in our types.
    let raw = String::from_utf8(B64.decode(&evidence.claims).unwrap()).unwrap();
    assert!(raw.contains("host operating system"), "{raw}");
}

#[test]
fn a_flipped_signature_byte_is_refused() {
    let fx = Fixture::new();
    let (_, _, mut evidence) = fx.runtime_request(POLICY, COMPUTATION);
    let mut signature = B64.decode(&evidence.signature).unwrap();
    let last = signature.len() - 2;
    signature[last] ^= 0x01;
    evidence.signature = B64.encode(signature);
    assert_eq!(
        SoftwareVerifier.verify(&evidence, &fx.enrolment),
        Err(EvidenceError::BadSignature)
    );
}

#[test]
fn claims_changed_after_signing_are_refused() {
    let fx = Fixture::new();
    let (_, _, mut evidence) = fx.runtime_request(POLICY, COMPUTATION);
    let raw = String::from_utf8(B64.decode(&evidence.claims).unwrap()).unwrap();
    let forged = raw.replace(&MEASUREMENT.to_hex(), &"33".repeat(32));
    assert_ne!(raw, forged);
    evidence.claims = B64.encode(forged);
    assert_eq!(
        SoftwareVerifier.verify(&evidence, &fx.enrolment),
        Err(EvidenceError::BadSignature)
    );
}

#[test]
fn evidence_from_another_platform_key_is_refused() {
    let fx = Fixture::new();
    let (_, _, evidence) = fx.runtime_request(POLICY, COMPUTATION);
    let (other_cert, _) = identity("platform-2");
    let other = PlatformEnrolment {
        name: "platform-2".into(),
        kind: PlatformKind::Software,
        certificate_der: der_of(&other_cert),
    };
    assert!(matches!(
        SoftwareVerifier.verify(&evidence, &other),
        Err(EvidenceError::SignerMismatch { .. })
    ));
}

#[test]
fn evidence_signed_by_another_key_but_naming_the_enrolled_one_is_refused() {
    let fx = Fixture::new();
    let (cert, key) = identity("impostor");
    let impostor = SoftwarePlatform::new(cert.as_bytes(), key.as_bytes(), MEASUREMENT).unwrap();
    let request =
        EvidenceRequest::new(POLICY, COMPUTATION, b"key", Nonce::random().unwrap()).unwrap();
    let mut evidence = impostor.software_evidence(&request).unwrap();
    evidence.signer_key_id = fx.enrolment.key_id().unwrap();
    assert_eq!(
        SoftwareVerifier.verify(&evidence, &fx.enrolment),
        Err(EvidenceError::BadSignature)
    );
}

#[test]
fn software_evidence_has_a_verifier_only_for_the_software_platform() {
    for kind in PlatformKind::ALL {
        let result = verifier_for(kind);
        if kind == PlatformKind::Software {
            assert_eq!(result.unwrap().kind(), PlatformKind::Software);
        } else {
            assert_eq!(result.err(), Some(EvidenceError::UnsupportedPlatform(kind)));
        }
        assert_eq!(kind.as_str().parse::<PlatformKind>().unwrap(), kind);
        assert_eq!(kind.trusts_host_os(), kind == PlatformKind::Software);
    }
}

#[test]
fn an_envelope_naming_another_platform_kind_is_refused() {
    let fx = Fixture::new();
    let (_, _, mut evidence) = fx.runtime_request(POLICY, COMPUTATION);
    evidence.platform = PlatformKind::Sgx;
    assert!(matches!(
        SoftwareVerifier.verify(&evidence, &fx.enrolment),
        Err(EvidenceError::PlatformKindMismatch { .. })
    ));
}

#[test]
fn oversized_and_non_base64_parts_are_refused_before_decoding() {
    let fx = Fixture::new();
    let (_, _, evidence) = fx.runtime_request(POLICY, COMPUTATION);
    let mut big = evidence.clone();
    big.claims = "A".repeat(1 << 20);
    assert!(matches!(
        SoftwareVerifier.verify(&big, &fx.enrolment),
        Err(EvidenceError::Malformed(_))
    ));
    let mut garbage = evidence.clone();
    garbage.signature = "!!!not base64!!!".into();
    assert!(matches!(
        SoftwareVerifier.verify(&garbage, &fx.enrolment),
        Err(EvidenceError::Malformed(_))
    ));
    let mut format = evidence;
    format.format = "covenant-evidence/99".into();
    assert!(matches!(
        SoftwareVerifier.verify(&format, &fx.enrolment),
        Err(EvidenceError::UnsupportedFormat(_))
    ));
}

#[test]
fn a_platform_key_that_does_not_match_its_certificate_is_refused() {
    let (cert, _) = identity("a");
    let (_, other_key) = identity("b");
    let error =
        SoftwarePlatform::new(cert.as_bytes(), other_key.as_bytes(), MEASUREMENT).unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");
}

#[test]
fn measurement_is_the_sha256_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runtime");
    let content = vec![0xabu8; 200_000];
    std::fs::write(&path, &content).unwrap();
    assert_eq!(
        measure_file(&path).unwrap().as_bytes(),
        Digest::of(&content).as_bytes()
    );
    // The current executable measures the same twice and differs from the file above.
    let me = measure_current_executable().unwrap();
    assert_eq!(me, measure_current_executable().unwrap());
    assert_ne!(me.as_bytes(), Digest::of(&content).as_bytes());
}

#[test]
fn computation_ids_are_bounded_and_free_of_control_characters() {
    let nonce = Nonce::random().unwrap();
    assert!(EvidenceRequest::new(POLICY, "", b"k", nonce).is_err());
    assert!(EvidenceRequest::new(POLICY, &"x".repeat(257), b"k", nonce).is_err());
    assert!(EvidenceRequest::new(POLICY, "a\nb", b"k", nonce).is_err());
    assert!(EvidenceRequest::new(POLICY, &"x".repeat(256), b"k", nonce).is_ok());
}
