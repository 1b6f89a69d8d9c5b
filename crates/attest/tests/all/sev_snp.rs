//! The SEV-SNP verifier against genuine reports (`tests/vectors/sev-snp/`, see PROVENANCE.md
//! there).

use covenant_attest::TrustAnchors;
use covenant_attest::sev_snp::{
    AmdProduct, AttestationReport, EndorsementKind, MAX_ENDORSEMENT_BYTES, REPORT_LEN, SIGNED_LEN,
    SevSnpError, SevSnpOptions, verify_report, verify_report_with,
};
use time::OffsetDateTime;
use time::macros::datetime;

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/sev-snp/",
            $name
        ))
        .as_slice()
    };
}

const TRUSTEE_REPORT: &[u8] = vector!("trustee-test-report.bin");
const TRUSTEE_VCEK: &[u8] = vector!("trustee-test-vcek.der");
const TRUSTEE_VCEK_INVALID_LEGACY: &[u8] = vector!("trustee-test-vcek-invalid-legacy.der");
const TRUSTEE_VCEK_INVALID_NEW: &[u8] = vector!("trustee-test-vcek-invalid-new.der");
const TRUSTEE_VLEK_REPORT: &[u8] = vector!("trustee-test-vlek-report.bin");
const TRUSTEE_VLEK: &[u8] = vector!("trustee-test-vlek.der");
const OAK_REPORT: &[u8] = vector!("oak-milan-oc-release-report.bin");
const OAK_VCEK: &[u8] = vector!("oak-milan-oc-release-vcek.der");
const VIRTEE_REPORT_HEX: &[u8] = vector!("virtee-report-milan.hex");
const VIRTEE_VCEK: &[u8] = vector!("virtee-vcek-milan.der");

/// Today, for this test suite: the VLEK (valid to 2025-12-10) has expired; the VCEKs have not.
const TODAY: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);
/// An instant inside every certificate's validity (the VLEK's is 2024-12-10 to 2025-12-10).
const INSIDE_ALL: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);

fn virtee_report() -> Vec<u8> {
    let text: String = std::str::from_utf8(VIRTEE_REPORT_HEX)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    hex::decode(text).unwrap()
}

struct Genuine {
    name: &'static str,
    report: Vec<u8>,
    endorsement: &'static [u8],
    kind: EndorsementKind,
    measurement: &'static str,
}

fn genuine() -> Vec<Genuine> {
    vec![
        Genuine {
            name: "trustee VCEK",
            report: TRUSTEE_REPORT.to_vec(),
            endorsement: TRUSTEE_VCEK,
            kind: EndorsementKind::Vcek,
            measurement: "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c",
        },
        Genuine {
            name: "trustee VLEK",
            report: TRUSTEE_VLEK_REPORT.to_vec(),
            endorsement: TRUSTEE_VLEK,
            kind: EndorsementKind::Vlek,
            measurement: "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0",
        },
        Genuine {
            name: "oak Milan",
            report: OAK_REPORT.to_vec(),
            endorsement: OAK_VCEK,
            kind: EndorsementKind::Vcek,
            measurement: "195b01b74976a1faba13bd85eaf787958f0a46e6dddd45c5bdbf8673522777842b8057ae5d866b75416efb62012deaa3",
        },
        Genuine {
            name: "virtee Milan",
            report: virtee_report(),
            endorsement: VIRTEE_VCEK,
            kind: EndorsementKind::Vcek,
            measurement: "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
        },
    ]
}

fn verify(report: &[u8], endorsement: &[u8], at: OffsetDateTime) -> Result<(), SevSnpError> {
    verify_report(report, endorsement, at, &SevSnpOptions::default()).map(|_| ())
}

#[test]
fn each_genuine_report_verifies_and_yields_its_measurement() {
    for vector in genuine() {
        let verified = verify_report(
            &vector.report,
            vector.endorsement,
            INSIDE_ALL,
            &SevSnpOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        assert_eq!(verified.product, AmdProduct::Milan, "{}", vector.name);
        assert_eq!(verified.endorsement, vector.kind, "{}", vector.name);
        assert_eq!(
            verified.measurement().to_hex(),
            vector.measurement,
            "{}",
            vector.name
        );
        assert_eq!(
            verified.report_data().as_slice(),
            &vector.report[0x50..0x90],
            "{}",
            vector.name
        );
        assert_eq!(verified.verified_at, INSIDE_ALL);
        // PEM endorsements are read as well as DER.
        let pem = covenant_attest::pem::to_pem("CERTIFICATE", vector.endorsement);
        verify(&vector.report, pem.as_bytes(), INSIDE_ALL)
            .unwrap_or_else(|e| panic!("{} (PEM): {e}", vector.name));
    }
}

#[test]
fn verify_report_with_the_pinned_anchors_is_verify_report() {
    let anchors = TrustAnchors::pinned();
    for vector in genuine() {
        // Accepted (inside every validity), refused (the VLEK has expired today) and refused
        // with another report's endorsement: the same answer either way.
        for (endorsement, at) in [
            (vector.endorsement, INSIDE_ALL),
            (vector.endorsement, TODAY),
            (OAK_VCEK, INSIDE_ALL),
        ] {
            let options = SevSnpOptions::default();
            assert_eq!(
                verify_report_with(&anchors, &vector.report, endorsement, at, &options),
                verify_report(&vector.report, endorsement, at, &options),
                "{}",
                vector.name
            );
        }
    }
}

#[test]
fn the_vcek_reports_still_verify_today() {
    for vector in genuine()
        .into_iter()
        .filter(|v| v.kind == EndorsementKind::Vcek)
    {
        verify(&vector.report, vector.endorsement, TODAY)
            .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
    }
}

#[test]
fn the_vlek_report_is_refused_today_and_accepted_before_its_vlek_expired() {
    verify(TRUSTEE_VLEK_REPORT, TRUSTEE_VLEK, INSIDE_ALL).unwrap();
    verify(
        TRUSTEE_VLEK_REPORT,
        TRUSTEE_VLEK,
        datetime!(2025-12-10 22:14 UTC),
    )
    .unwrap();
    let refused = verify(TRUSTEE_VLEK_REPORT, TRUSTEE_VLEK, TODAY).unwrap_err();
    assert!(
        matches!(&refused, SevSnpError::CertificateNotValid { which, .. } if which == "Milan VLEK"),
        "{refused}"
    );
    // Before it was issued, too.
    let early = verify(
        TRUSTEE_VLEK_REPORT,
        TRUSTEE_VLEK,
        datetime!(2024-01-01 0:00 UTC),
    );
    assert!(
        matches!(early, Err(SevSnpError::CertificateNotValid { .. })),
        "{early:?}"
    );
}

#[test]
fn a_vcek_report_is_refused_before_its_vcek_was_issued() {
    // The trustee VCEK is valid from 2023-01-24.
    let refused = verify(TRUSTEE_REPORT, TRUSTEE_VCEK, datetime!(2023-01-01 0:00 UTC));
    assert!(
        matches!(&refused, Err(SevSnpError::CertificateNotValid { which, .. }) if which == "Milan VCEK"),
        "{refused:?}"
    );
}

#[test]
fn the_invalid_vceks_are_refused() {
    for (name, vcek) in [
        ("legacy", TRUSTEE_VCEK_INVALID_LEGACY),
        ("new", TRUSTEE_VCEK_INVALID_NEW),
    ] {
        for vector in genuine() {
            // Their hwID is 00 01 .. 3f and AMD's ASK did not sign them.
            let refused = verify(&vector.report, vcek, INSIDE_ALL);
            let expected = match vector.kind {
                EndorsementKind::Vcek => {
                    matches!(&refused, Err(SevSnpError::ChainSignature(which)) if which == "Milan VCEK")
                }
                EndorsementKind::Vlek => {
                    matches!(refused, Err(SevSnpError::EndorsementKindMismatch { .. }))
                }
            };
            assert!(expected, "{name} with {}: {refused:?}", vector.name);
        }
    }
}

#[test]
fn a_vcek_for_another_chip_or_tcb_is_refused() {
    let all = genuine();
    for report in &all {
        for other in &all {
            if report.name == other.name {
                continue;
            }
            let refused = verify(&report.report, other.endorsement, INSIDE_ALL).unwrap_err();
            assert!(
                matches!(
                    refused,
                    SevSnpError::BadSignature(_) | SevSnpError::EndorsementKindMismatch { .. }
                ),
                "{} with the endorsement of {}: {refused}",
                report.name,
                other.name
            );
        }
    }
}

#[test]
fn every_single_byte_change_to_a_report_is_refused() {
    for vector in genuine() {
        assert_eq!(vector.report.len(), REPORT_LEN);
        for position in 0..REPORT_LEN {
            for flip in [0x01u8, 0x80] {
                let mut changed = vector.report.clone();
                changed[position] ^= flip;
                let refused = verify(&changed, vector.endorsement, INSIDE_ALL);
                assert!(
                    refused.is_err(),
                    "{}: byte {position:#x} ^ {flip:#x} accepted",
                    vector.name
                );
                // A change to the signed body or the signature fails the signature check (or,
                // for a field the parser reads first, the parser).
                if position < SIGNED_LEN + 144 {
                    assert!(
                        matches!(
                            refused,
                            Err(SevSnpError::BadSignature(_)
                                | SevSnpError::SignatureOutOfRange
                                | SevSnpError::UnsupportedVersion(_)
                                | SevSnpError::UnsupportedSignatureAlgorithm(_)
                                | SevSnpError::NoSigningKey(_)
                                | SevSnpError::EndorsementKindMismatch { .. })
                        ),
                        "{}: byte {position:#x}: {refused:?}",
                        vector.name
                    );
                }
            }
        }
    }
}

#[test]
fn a_changed_endorsement_is_refused() {
    // Every byte of the VCEK: a change breaks its parsing, its algorithm or its chain
    // signature.
    for (report, endorsement) in [
        (TRUSTEE_REPORT, TRUSTEE_VCEK),
        (TRUSTEE_VLEK_REPORT, TRUSTEE_VLEK),
        (OAK_REPORT, OAK_VCEK),
    ] {
        for position in 0..endorsement.len() {
            let mut changed = endorsement.to_vec();
            changed[position] ^= 0x01;
            assert!(
                verify(report, &changed, INSIDE_ALL).is_err(),
                "{} byte {position}",
                endorsement.len()
            );
        }
    }
    let mut too_large = TRUSTEE_VCEK.to_vec();
    too_large.resize(MAX_ENDORSEMENT_BYTES + 1, 0);
    assert!(matches!(
        verify(TRUSTEE_REPORT, &too_large, INSIDE_ALL),
        Err(SevSnpError::EndorsementTooLarge(_))
    ));
}

#[test]
fn a_root_sent_as_the_endorsement_is_not_trusted() {
    let ark = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/roots/amd-ark-milan.pem"
    ));
    let ask = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/roots/amd-ask-milan.pem"
    ));
    for cert in [ark.as_slice(), ask.as_slice()] {
        assert!(matches!(
            verify(TRUSTEE_REPORT, cert, INSIDE_ALL),
            Err(SevSnpError::EndorsementKindMismatch { .. })
        ));
    }
}

/// A small deterministic generator (xorshift64*), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn the_parser_returns_errors_never_panics_on_random_and_truncated_input() {
    let mut rng = Rng(0x5e55_1011_cafe_f00d);
    // Every truncation and extension of a genuine report.
    for len in 0..=REPORT_LEN + 16 {
        let mut bytes = TRUSTEE_REPORT.to_vec();
        bytes.resize(len, 0);
        let parsed = AttestationReport::parse(&bytes);
        assert_eq!(parsed.is_ok(), len == REPORT_LEN, "length {len}");
        if len != REPORT_LEN {
            assert!(verify(&bytes, TRUSTEE_VCEK, INSIDE_ALL).is_err());
        }
    }
    // Random reports of the right length (half of them with a plausible header), and random
    // lengths.
    for round in 0..2000 {
        let mut bytes = rng.bytes(REPORT_LEN);
        if round % 2 == 0 {
            bytes[0..4].copy_from_slice(&[2 + (round % 4 == 0) as u8, 0, 0, 0]);
            bytes[0x34..0x38].copy_from_slice(&[1, 0, 0, 0]);
            bytes[0x48..0x4c].copy_from_slice(&[0, 0, 0, 0]);
        }
        let _ = AttestationReport::parse(&bytes);
        assert!(verify(&bytes, TRUSTEE_VCEK, INSIDE_ALL).is_err());
        let len = (rng.next() % 3000) as usize;
        let bytes = rng.bytes(len);
        assert!(AttestationReport::parse(&bytes).is_err() || len == REPORT_LEN);
    }
    // Random and truncated endorsements with a genuine report.
    for len in (0..TRUSTEE_VCEK.len()).step_by(3) {
        assert!(verify(TRUSTEE_REPORT, &TRUSTEE_VCEK[..len], INSIDE_ALL).is_err());
    }
    for _ in 0..500 {
        let len = (rng.next() % 2048) as usize;
        let mut bytes = rng.bytes(len);
        if len > 2 {
            bytes[0] = 0x30;
        }
        assert!(verify(TRUSTEE_REPORT, &bytes, INSIDE_ALL).is_err());
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            String::from_utf8_lossy(&rng.bytes(len % 200))
        );
        assert!(verify(TRUSTEE_REPORT, pem.as_bytes(), INSIDE_ALL).is_err());
    }
}
