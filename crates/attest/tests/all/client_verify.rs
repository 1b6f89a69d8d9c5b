//! The client's check of an attested certificate: accepted when everything matches, and each
//! mismatch refused with its own error and message.

use rcgen::PublicKeyData as _;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use covenant_attest::ca::MAX_ATTESTED_CERTIFICATE_LIFETIME;
use covenant_attest::csr::generate_tls_key;
use covenant_attest::extensions::ExtensionError;
use covenant_attest::{
    AttestedCertificateError as E, CertificateAuthority, DEFAULT_ATTESTED_CERTIFICATE_LIFETIME,
    Digest, Measurement, PlatformKind, verify_attested_certificate,
};
use time::OffsetDateTime;

use crate::support::{COMPUTATION, Fixture, MEASUREMENT, POLICY, now_unix};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_fresh_attested_certificate_is_accepted_with_its_claims() {
    let fx = Fixture::new();
    let (key, issued) = fx.issue(
        OffsetDateTime::now_utc(),
        DEFAULT_ATTESTED_CERTIFICATE_LIFETIME,
    );
    let claims = verify_attested_certificate(&fx.expected(), &issued.der, now_unix()).unwrap();
    assert_eq!(claims.platform, PlatformKind::Software);
    assert_eq!(claims.measurement, MEASUREMENT);
    assert_eq!(claims.policy_hash, POLICY);
    assert_eq!(claims.computation_id, COMPUTATION);
    // The certificate is for the runtime's key, and valid for the default hour.
    let (_, parsed) = x509_parser::parse_x509_certificate(&issued.der).unwrap();
    assert_eq!(
        parsed.public_key().raw,
        key.subject_public_key_info().as_slice()
    );
    assert_eq!(
        (issued.not_after - OffsetDateTime::now_utc()).whole_minutes(),
        59
    );
    assert_eq!(
        parsed.validity().not_after.timestamp(),
        issued.not_after.unix_timestamp()
    );
}

fn refusal(
    fx: &Fixture,
    der: &[u8],
    edit: impl FnOnce(&mut covenant_attest::ExpectedRuntime),
) -> E {
    let mut expected = fx.expected();
    edit(&mut expected);
    verify_attested_certificate(&expected, der, now_unix()).unwrap_err()
}

#[test]
fn each_client_side_refusal_has_its_own_error_and_message() {
    let fx = Fixture::new();
    let (_, good) = fx.issue(OffsetDateTime::now_utc(), HOUR);
    let mut messages = Vec::new();

    // Chain to another CA, even one with the same name.
    let impostor_ca = CertificateAuthority::generate("test CA", OffsetDateTime::now_utc()).unwrap();
    let other = refusal(&fx, &good.der, |e| {
        e.ca_certificate_der = impostor_ca.certificate_der().to_vec()
    });
    assert!(
        matches!(other, E::NotIssuedByCa { reason, .. } if reason.contains("signature")),
        "{other}"
    );
    messages.push(other.to_string());
    let renamed_ca =
        CertificateAuthority::generate("another CA", OffsetDateTime::now_utc()).unwrap();
    let renamed = refusal(&fx, &good.der, |e| {
        e.ca_certificate_der = renamed_ca.certificate_der().to_vec()
    });
    assert!(
        matches!(renamed, E::NotIssuedByCa { reason, .. } if reason.contains("name")),
        "{renamed}"
    );

    // Expired: issued two hours ago for one hour.
    let (_, old) = fx.issue(OffsetDateTime::now_utc() - 2 * HOUR, HOUR);
    let expired = refusal(&fx, &old.der, |_| {});
    assert!(matches!(expired, E::Expired { .. }), "{expired}");
    messages.push(expired.to_string());

    // Not yet valid.
    let (_, future) = fx.issue(OffsetDateTime::now_utc() + 2 * HOUR, HOUR);
    let early = refusal(&fx, &future.der, |_| {});
    assert!(matches!(early, E::NotYetValid { .. }), "{early}");
    messages.push(early.to_string());

    // Wrong measurement.
    let measurement = refusal(&fx, &good.der, |e| {
        e.accepted_measurements.insert(
            PlatformKind::Software,
            BTreeSet::from([Measurement::sha256([0x99; 32])]),
        );
    });
    assert_eq!(
        measurement,
        E::MeasurementNotAccepted {
            platform: PlatformKind::Software,
            measurement: MEASUREMENT
        }
    );
    messages.push(measurement.to_string());

    // A platform kind the policy does not accept at all.
    let platform = refusal(&fx, &good.der, |e| {
        e.accepted_measurements =
            BTreeMap::from([(PlatformKind::Sgx, BTreeSet::from([MEASUREMENT]))]);
    });
    assert_eq!(
        platform,
        E::PlatformNotAccepted {
            platform: PlatformKind::Software
        }
    );
    messages.push(platform.to_string());

    // Wrong policy hash.
    let policy = refusal(&fx, &good.der, |e| e.policy_hash = Digest([0x77; 32]));
    assert_eq!(
        policy,
        E::PolicyHashMismatch {
            expected: Digest([0x77; 32]),
            found: POLICY
        }
    );
    messages.push(policy.to_string());

    // Wrong computation id.
    let computation = refusal(&fx, &good.der, |e| e.computation_id = "another".into());
    assert_eq!(
        computation,
        E::ComputationIdMismatch {
            expected: "another".into(),
            found: COMPUTATION.into()
        }
    );
    messages.push(computation.to_string());

    let distinct: BTreeSet<_> = messages
        .iter()
        .map(|m| m.split(':').next().unwrap_or(m).to_owned())
        .collect();
    assert_eq!(distinct.len(), messages.len(), "{messages:#?}");
}

#[test]
fn a_certificate_from_the_right_ca_without_attestation_extensions_is_refused() {
    let fx = Fixture::new();
    let key = generate_tls_key().unwrap();
    let plain = fx
        .ca
        .issue_server_certificate(
            &["runtime.example".into()],
            &key.subject_public_key_info(),
            OffsetDateTime::now_utc(),
            HOUR,
        )
        .unwrap();
    let error = verify_attested_certificate(&fx.expected(), &plain.der, now_unix()).unwrap_err();
    assert_eq!(error, E::Extension(ExtensionError::Missing("platform")));
}

#[test]
fn garbage_certificates_are_refused_as_malformed() {
    let fx = Fixture::new();
    assert!(matches!(
        verify_attested_certificate(&fx.expected(), b"garbage", now_unix()),
        Err(E::Malformed(_))
    ));
    let (_, good) = fx.issue(OffsetDateTime::now_utc(), HOUR);
    let truncated = &good.der[..good.der.len() - 10];
    assert!(matches!(
        verify_attested_certificate(&fx.expected(), truncated, now_unix()),
        Err(E::Malformed(_))
    ));
}

#[test]
fn lifetimes_are_capped() {
    let fx = Fixture::new();
    let now = OffsetDateTime::now_utc();
    let (_, issued) = fx.issue(now, Duration::from_secs(365 * 24 * 3600));
    let lifetime = issued.not_after - now.replace_nanosecond(0).unwrap();
    assert_eq!(
        lifetime.whole_seconds() as u64,
        MAX_ATTESTED_CERTIFICATE_LIFETIME.as_secs()
    );
}

#[test]
fn the_ca_round_trips_through_pem_and_refuses_a_foreign_key() {
    let fx = Fixture::new();
    let reloaded = CertificateAuthority::from_pem(
        fx.ca.certificate_pem().as_bytes(),
        fx.ca.key_pem().as_bytes(),
    )
    .unwrap();
    assert_eq!(reloaded.certificate_der(), fx.ca.certificate_der());
    let other = CertificateAuthority::generate("other", OffsetDateTime::now_utc()).unwrap();
    assert!(
        CertificateAuthority::from_pem(
            fx.ca.certificate_pem().as_bytes(),
            other.key_pem().as_bytes()
        )
        .is_err()
    );
    assert!(!format!("{:?}", fx.ca).contains("PRIVATE"));
}

#[test]
fn a_48_byte_measurement_travels_through_evidence_and_certificate() {
    use covenant_attest::ca::bind;
    use covenant_attest::software::{SoftwarePlatform, SoftwareVerifier};
    use covenant_attest::{CheckedCsr, EvidenceVerifier as _, Nonce};

    let fx = Fixture::new();
    let (cert, key) = crate::support::identity("platform-1");
    let long = Measurement::sha384([0x7e; 48]);
    let platform = SoftwarePlatform::new(cert.as_bytes(), key.as_bytes(), long).unwrap();
    let enrolment = covenant_attest::PlatformEnrolment {
        name: "p".into(),
        kind: PlatformKind::Software,
        certificate_der: crate::support::der_of(&cert),
    };
    let (_, request) = covenant_attest::wire::prepare_attestation(
        &platform,
        POLICY,
        COMPUTATION,
        &[],
        Nonce::random().unwrap(),
    )
    .unwrap();
    let covenant_attest::PlatformEvidence::Software(evidence) = &request.evidence else {
        panic!("the software platform made hardware evidence");
    };
    let verified = SoftwareVerifier.verify(evidence, &enrolment).unwrap();
    let csr_der = covenant_attest::pem::csr_from_pem(request.csr.as_bytes(), "csr").unwrap();
    let bound = bind(&verified, &CheckedCsr::parse(&csr_der).unwrap()).unwrap();
    let issued = fx
        .ca
        .issue_attested(&bound, OffsetDateTime::now_utc(), HOUR)
        .unwrap();
    let mut expected = fx.expected();
    expected
        .accepted_measurements
        .insert(PlatformKind::Software, BTreeSet::from([long]));
    let claims = verify_attested_certificate(&expected, &issued.der, now_unix()).unwrap();
    assert_eq!(claims.measurement, long);
    assert_eq!(claims.measurement.as_bytes().len(), 48);
}
