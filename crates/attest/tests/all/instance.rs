//! Instances: the fingerprint clients pin, and the end statement a runtime signs with its
//! attested key, which verifies against its own certificate only.

use std::time::Duration;

use covenant_attest::instance::{INSTANCE_END_TYP, unverified_instance_end};
use covenant_attest::{
    AttestError, EndReason, InstanceEndError, InstanceEndSigner, instance_fingerprint,
    verify_instance_end,
};
use rcgen::PublicKeyData as _;
use time::OffsetDateTime;

use crate::support::{COMPUTATION, Fixture, POLICY};

#[test]
fn the_fingerprint_is_the_sha256_of_the_certified_key() {
    let f = Fixture::new();
    let (key, issued) = f.issue(OffsetDateTime::now_utc(), Duration::from_secs(3600));
    let fingerprint = instance_fingerprint(&issued.der).unwrap();
    assert_eq!(
        fingerprint,
        covenant_attest::Digest::of(&key.subject_public_key_info())
    );
    assert!(instance_fingerprint(b"not a certificate").is_err());
}

#[test]
fn an_end_statement_verifies_against_its_own_certificate_only() {
    let f = Fixture::new();
    let now = OffsetDateTime::now_utc();
    let (key, issued) = f.issue(now, Duration::from_secs(3600));
    let (other_key, other) = f.issue(now, Duration::from_secs(3600));
    let signer = InstanceEndSigner::new(&key.serialize_der(), &issued.der).unwrap();
    assert_eq!(signer.serial(), issued.serial);
    let statement = signer.sign(EndReason::Closed, now).unwrap();

    let claims = verify_instance_end(&statement, &issued.der).unwrap();
    assert_eq!(claims.serial, issued.serial);
    assert_eq!(claims.computation_id, COMPUTATION);
    assert_eq!(claims.policy_hash, POLICY);
    assert_eq!(claims.reason, EndReason::Closed);
    assert_eq!(unverified_instance_end(&statement).unwrap(), claims);
    let header = statement.split('.').next().unwrap();
    assert!(
        String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap()
        )
        .unwrap()
        .contains(INSTANCE_END_TYP)
    );

    // Against another instance's certificate: its key did not sign it.
    assert!(matches!(
        verify_instance_end(&statement, &other.der),
        Err(InstanceEndError::BadSignature { serial }) if serial == other.serial
    ));
    // A signer needs the certificate's own key.
    assert!(matches!(
        InstanceEndSigner::new(&other_key.serialize_der(), &issued.der),
        Err(AttestError::Key(_))
    ));
    // A flipped signature byte, a truncated statement, garbage.
    let (rest, signature) = statement.rsplit_once('.').unwrap();
    let mut flipped = signature.as_bytes().to_vec();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{rest}.{}", String::from_utf8(flipped).unwrap());
    assert!(matches!(
        verify_instance_end(&flipped, &issued.der),
        Err(InstanceEndError::BadSignature { .. })
    ));
    for bad in [rest, "", "a.b.c.d", &"x".repeat(5000)] {
        assert!(
            matches!(
                verify_instance_end(bad, &issued.der),
                Err(InstanceEndError::Malformed(_))
            ),
            "{bad:.40}"
        );
    }
}
