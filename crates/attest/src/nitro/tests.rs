//! Tests of the Nitro verifier: genuine documents (tests/vectors/nitro, see PROVENANCE.md
//! there), every single-byte mutation of them, a chain to another root, and a fuzz-style parser
//! test. Synthetic documents are signed under a test root (`crate::testing`), which only
//! `TrustAnchors::insecure_for_tests` (test builds only) can pin.

use base64::Engine as _;
use coset::{CoseSign1Builder, HeaderBuilder};
use time::macros::datetime;

use super::*;
use crate::anchors::AWS_NITRO_ROOT_PEM;
use crate::binding::report_data;
use crate::testing::{NitroTestCa, NitroTestLeaf};
use crate::{Digest, Nonce};

/// Real PCRs, 2022-10-13 (evervault test-data/beta).
const GENUINE: &[u8] =
    include_bytes!("../../tests/vectors/nitro/evervault-valid-attestation-doc-bytes");
/// Debug mode (PCRs all zeros), 2023-09-18, as base64 text.
const GENUINE_DEBUG_BASE64: &[u8] =
    include_bytes!("../../tests/vectors/nitro/evervault-valid-attestation-doc-base64");

/// PCR0 of [`GENUINE`]: the value the source's own tests (evervault/attestation-doc-validation)
/// expect for this document.
const GENUINE_PCR0: &str = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b";

const TODAY: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

fn debug_document() -> Vec<u8> {
    let text: Vec<u8> = GENUINE_DEBUG_BASE64
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The document's own timestamp (read without verifying).
fn timestamp_of(document: &[u8]) -> OffsetDateTime {
    let sign1 = decode_cose(document).unwrap_or_else(|e| panic!("{e}"));
    let payload = parse_payload(sign1.payload.as_deref().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(payload.timestamp_ms) * 1_000_000)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_genuine_document_verifies_at_its_timestamp_and_yields_its_pcr0() {
    let at = timestamp_of(GENUINE);
    assert_eq!(at.date(), time::macros::date!(2022 - 10 - 13));
    let claims = verify_document(GENUINE, at, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hex::encode(claims.pcr0()), GENUINE_PCR0);
    assert_eq!(
        claims.measurement().map(|m| m.to_hex()).as_deref(),
        Some(GENUINE_PCR0)
    );
    assert!(!claims.debug);
    assert_eq!(claims.verified_at, at);
    assert_eq!(claims.timestamp(), Some(at));
    assert!(claims.module_id.starts_with("i-"), "{}", claims.module_id);
    // It cannot carry our report data: the binding check refuses it.
    let expected = report_data(&Nonce([1; 32]), &Digest([2; 32]), &Digest([3; 32]), "c");
    assert!(matches!(
        claims.check_report_data(&expected),
        Err(NitroError::ReportDataMismatch { .. })
    ));
}

#[test]
fn the_debug_document_is_refused_unless_debug_is_allowed() {
    let document = debug_document();
    let at = timestamp_of(&document);
    assert_eq!(at.date(), time::macros::date!(2023 - 09 - 18));
    assert_eq!(
        verify_document(&document, at, false).err(),
        Some(NitroError::DebugMode)
    );
    let claims = verify_document(&document, at, true).unwrap_or_else(|e| panic!("{e}"));
    assert!(claims.debug);
    assert_eq!(claims.pcr0(), [0u8; 48]);
}

#[test]
fn genuine_documents_are_refused_as_expired_today_and_before_their_time() {
    for document in [GENUINE.to_vec(), debug_document()] {
        for at in [TODAY, timestamp_of(&document) - time::Duration::days(1)] {
            let refused = verify_document(&document, at, true).err();
            // The leaf is checked first: it lives about three hours, so it is the one named.
            assert!(
                matches!(
                    &refused,
                    Some(NitroError::CertificateNotValid { which, .. }) if which == "the leaf certificate"
                ),
                "{refused:?}"
            );
            assert!(
                refused
                    .map(|e| e.to_string())
                    .unwrap_or_default()
                    .contains("expired"),
            );
        }
    }
}

/// Every byte of the document (protected header, payload and signature) changed in turn: all
/// refused. The check runs where the document is otherwise valid (its timestamp, debug allowed).
#[test]
fn every_single_byte_change_is_refused() {
    for document in [GENUINE.to_vec(), debug_document()] {
        let at = timestamp_of(&document);
        assert!(verify_document(&document, at, true).is_ok());
        for i in 0..document.len() {
            let mut mutated = document.clone();
            if let Some(byte) = mutated.get_mut(i) {
                *byte ^= 0x01;
            }
            assert!(
                verify_document(&mutated, at, true).is_err(),
                "byte {i} (lowest bit flipped) of a {}-byte document was accepted",
                document.len()
            );
        }
        // And a byte appended or removed.
        let mut longer = document.clone();
        longer.push(0);
        assert!(verify_document(&longer, at, true).is_err());
        assert!(verify_document(&document[..document.len() - 1], at, true).is_err());
    }
}

// --- Synthetic documents under a test root (crate::testing) --------------------------------

/// A test root and intermediate, and one leaf under them (valid 2020 to 2049).
fn test_pki() -> (NitroTestCa, NitroTestLeaf) {
    let ca = NitroTestCa::generate();
    let leaf = ca.leaf(None);
    (ca, leaf)
}

/// Anchors pinning `ca`'s root instead of AWS's (the AMD and Intel roots are the pinned ones).
fn anchors_for(ca: &NitroTestCa) -> TrustAnchors {
    let pinned = TrustAnchors::pinned();
    TrustAnchors::insecure_for_tests(
        pinned.amd().to_vec(),
        pinned.intel_sgx_root_der().to_vec(),
        ca.root_pem.clone().into_bytes(),
    )
}

/// A document by `leaf` with `bundle`, PCR0 and user data, at the test timestamp.
fn synthetic_document(
    leaf: &NitroTestLeaf,
    bundle: &[Vec<u8>],
    pcr0: [u8; 48],
    user_data: Option<&[u8]>,
) -> Vec<u8> {
    leaf.document(bundle, pcr0, user_data, 1_700_000_000_000)
}

#[test]
fn a_chain_to_another_root_is_refused() {
    let (ca, leaf) = test_pki();
    let at = datetime!(2026-11-30 12:00 UTC);
    let document = synthetic_document(&leaf, &ca.bundle, [7; 48], None);
    // Well formed: under its own root (which only test anchors can pin) it verifies.
    let claims = verify_document_with(&anchors_for(&ca), &document, at, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claims.pcr0(), [7; 48]);
    // Against the pinned AWS root: refused, naming the root it ends at.
    let refused = verify_document(&document, at, false).err();
    assert!(
        matches!(&refused, Some(NitroError::UntrustedRoot { subject, .. }) if subject.contains("test root")),
        "{refused:?}"
    );
    // The genuine AWS root in front of a chain it did not sign: refused at the signature.
    let aws_root = crate::pem::certificate_from_pem(AWS_NITRO_ROOT_PEM, "root")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut spliced = ca.bundle.clone();
    spliced[0] = aws_root.to_vec();
    let document = synthetic_document(&leaf, &spliced, [7; 48], None);
    let refused = verify_document(&document, at, false).err();
    assert!(
        matches!(&refused, Some(NitroError::BadCertificate { which, .. }) if which == "cabundle[1]"),
        "{refused:?}"
    );
}

#[test]
fn the_report_data_binding_is_checked_against_user_data() {
    let (ca, leaf) = test_pki();
    let anchors = anchors_for(&ca);
    let at = datetime!(2026-11-30 12:00 UTC);
    let expected = report_data(&Nonce([1; 32]), &Digest([2; 32]), &Digest([3; 32]), "c");
    let document = synthetic_document(&leaf, &ca.bundle, [7; 48], Some(&expected));
    let claims =
        verify_document_with(&anchors, &document, at, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claims.check_report_data(&expected), Ok(()));
    let other = report_data(&Nonce([9; 32]), &Digest([2; 32]), &Digest([3; 32]), "c");
    assert!(matches!(
        claims.check_report_data(&other),
        Err(NitroError::ReportDataMismatch { .. })
    ));
    // A synthetic debug document (PCR0 zero) is refused the same way as a genuine one.
    let debug = synthetic_document(&leaf, &ca.bundle, [0; 48], Some(&expected));
    assert_eq!(
        verify_document_with(&anchors, &debug, at, false).err(),
        Some(NitroError::DebugMode)
    );
    // A signature by another key is refused.
    let (_, other_leaf) = test_pki();
    let forged = NitroTestLeaf {
        key: other_leaf.key,
        ..leaf
    };
    let document = synthetic_document(&forged, &ca.bundle, [7; 48], Some(&expected));
    assert_eq!(
        verify_document_with(&anchors, &document, at, false).err(),
        Some(NitroError::BadSignature)
    );
}

/// A small deterministic generator (xorshift64*), so the fuzz test needs no dependency and
/// replays the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap_or(0)
    }
}

#[test]
fn random_and_truncated_input_is_an_error_never_a_panic() {
    let at = timestamp_of(GENUINE);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Every truncation of both genuine documents.
    for document in [GENUINE.to_vec(), debug_document()] {
        for len in 0..document.len() {
            assert!(verify_document(&document[..len], at, true).is_err());
        }
    }
    // Random bytes, random lengths, and random bytes after a COSE-looking prefix.
    for round in 0..3000 {
        let len = rng.below(2048);
        let mut input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 && input.len() > 4 {
            input[..4].copy_from_slice(&[0x84, 0x44, 0xa1, 0x01]);
        }
        assert!(verify_document(&input, at, true).is_err());
    }
    // Several random changes at once to a genuine document.
    for _ in 0..1000 {
        let mut input = GENUINE.to_vec();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(input.len());
            // A non-zero XOR: the byte really changes.
            input[i] ^= 1 + (rng.next() % 255) as u8;
        }
        assert!(verify_document(&input, at, true).is_err());
    }
    // Deep nesting and huge declared lengths.
    assert!(verify_document(&vec![0x81; MAX_DOCUMENT_LEN], at, true).is_err());
    assert!(
        verify_document(
            &[0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            at,
            true
        )
        .is_err()
    );
    assert!(
        verify_document(
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            at,
            true
        )
        .is_err()
    );
    assert_eq!(
        verify_document(&vec![0; MAX_DOCUMENT_LEN + 1], at, true).err(),
        Some(NitroError::TooLarge(MAX_DOCUMENT_LEN + 1))
    );
}

/// The unprotected header is not signed: a field added there would not break the signature, so
/// it is refused by its own check, and so is a protected header with more than `alg`.
#[test]
fn headers_other_than_the_nsm_makes_are_refused() {
    let at = timestamp_of(GENUINE);
    let mut sign1 = decode_cose(GENUINE).unwrap_or_else(|e| panic!("{e}"));
    sign1.unprotected.key_id = b"anything".to_vec();
    let added = sign1.to_vec().unwrap_or_else(|e| panic!("{e}"));
    let refused = verify_document(&added, at, false).err();
    assert!(
        matches!(&refused, Some(NitroError::MalformedCose(m)) if m.contains("unprotected")),
        "{refused:?}"
    );

    let (ca, leaf) = test_pki();
    let anchors = anchors_for(&ca);
    let document = synthetic_document(&leaf, &ca.bundle, [7; 48], None);
    let mut sign1 = decode_cose(&document).unwrap_or_else(|e| panic!("{e}"));
    sign1.protected = coset::ProtectedHeader {
        original_data: None,
        header: HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES384)
            .key_id(b"k".to_vec())
            .build(),
    };
    let signed = CoseSign1Builder::new()
        .protected(sign1.protected.header.clone())
        .payload(sign1.payload.clone().unwrap_or_default())
        .create_signature(b"", |data| leaf.sign(data))
        .build()
        .to_vec()
        .unwrap_or_else(|e| panic!("{e}"));
    let refused = verify_document_with(&anchors, &signed, at, false).err();
    assert!(
        matches!(&refused, Some(NitroError::MalformedCose(m)) if m.contains("protected header")),
        "{refused:?}"
    );
    // A different algorithm is named as such.
    let mut sign1 = decode_cose(&document).unwrap_or_else(|e| panic!("{e}"));
    sign1.protected = coset::ProtectedHeader {
        original_data: None,
        header: HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .build(),
    };
    let es256 = sign1.to_vec().unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        verify_document_with(&anchors, &es256, at, false),
        Err(NitroError::UnsupportedAlgorithm(_))
    ));
}

/// The compiled-in root is the one AWS publishes (its SHA-256 fingerprint, as on AWS's
/// "Verifying the root of trust" page), valid to 2049.
#[test]
fn the_pinned_root_is_the_published_aws_root() {
    let der = crate::pem::certificate_from_pem(AWS_NITRO_ROOT_PEM, "root")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        Digest::of(der.as_ref()).to_hex(),
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    );
    let (_, cert) =
        x509_parser::parse_x509_certificate(der.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cert.validity().not_after.to_datetime().year(), 2049);
}
