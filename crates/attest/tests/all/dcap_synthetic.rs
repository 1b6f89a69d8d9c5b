//! The DCAP verifier on synthetic TDX quotes carrying our own report data, under a test root
//! (`tests/keys/dcap/`, made by `generate.py` there): the production verifier, unchanged, with
//! the root a test chooses (`TrustAnchors::insecure_for_tests`, behind the
//! `insecure-test-roots` feature, which the dev-dependency on `covenant-test-support` turns
//! on). The same quotes are refused under the pinned root.

use covenant_attest::dcap::{DcapError, DcapOptions, verify_quote};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use time::OffsetDateTime;
use time::macros::datetime;

macro_rules! key_file {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/keys/dcap/",
            $name
        ))
        .as_slice()
    };
}

const PCK_CHAIN_PEM: &[u8] = key_file!("pck-chain.pem");
const COLLATERAL: &[u8] = key_file!("collateral.json");
const ATTESTATION_KEY_PKCS8: &[u8] = key_file!("attestation-key.pk8");
const QE_AUTH_DATA: &[u8] = key_file!("qe-auth-data.bin");
const QE_REPORT: &[u8] = key_file!("qe-report.bin");
const QE_REPORT_SIGNATURE: &[u8] = key_file!("qe-report-signature.bin");

/// Inside the synthetic collateral's validity (2025-01-01 to 2045-01-01).
const AT: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

/// Intel's QE vendor id, which the verifier requires in the header.
const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
];
/// TD_ATTRIBUTES with SEPT_VE_DISABLE (bit 28), as a production TD has.
const TD_ATTRIBUTES: [u8; 8] = [0, 0, 0, 0x10, 0, 0, 0, 0];

/// What a synthetic TD report says.
struct Td {
    report_data: [u8; 64],
    mrtd: [u8; 48],
    td_attributes: [u8; 8],
}

impl Td {
    fn new(report_data: [u8; 64]) -> Self {
        Self {
            report_data,
            mrtd: [0x4d; 48],
            td_attributes: TD_ATTRIBUTES,
        }
    }
}

/// A TDX quote, version 4, with the TD report `td`, signed by the fixed attestation key, with
/// the fixed QE report certifying that key and the synthetic PCK chain.
fn tdx_quote(td: &Td) -> Vec<u8> {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        ATTESTATION_KEY_PKCS8,
        &rng,
    )
    .unwrap();
    let mut quote = Vec::new();
    // Header: version 4, ECDSA P-256 attestation key, TDX, QE and PCE SVN, vendor, user data.
    quote.extend(4u16.to_le_bytes());
    quote.extend(2u16.to_le_bytes());
    quote.extend(0x81u32.to_le_bytes());
    quote.extend([0u8; 4]);
    quote.extend(INTEL_QE_VENDOR_ID);
    quote.extend([0u8; 20]);
    // TD report (TDX 1.0): TEE_TCB_SVN, MRSEAM, MRSIGNERSEAM (zero, as the TCB info's TDX
    // module), SEAMATTRIBUTES, TDATTRIBUTES, XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG,
    // RTMR0..3, REPORTDATA.
    quote.extend([0u8; 16]);
    quote.extend([0x5e; 48]);
    quote.extend([0u8; 48]);
    quote.extend([0u8; 8]);
    quote.extend(td.td_attributes);
    quote.extend([0xe7, 0x02, 0x06, 0, 0, 0, 0, 0]);
    quote.extend(td.mrtd);
    quote.extend([0u8; 48 * 3]);
    for rtmr in 0..4u8 {
        quote.extend([rtmr; 48]);
    }
    quote.extend(td.report_data);
    assert_eq!(quote.len(), 48 + 584);

    let signature = key.sign(&rng, &quote).unwrap();
    let mut qe_certification = Vec::new();
    qe_certification.extend(QE_REPORT);
    qe_certification.extend(QE_REPORT_SIGNATURE);
    qe_certification.extend(u16::try_from(QE_AUTH_DATA.len()).unwrap().to_le_bytes());
    qe_certification.extend(QE_AUTH_DATA);
    qe_certification.extend(5u16.to_le_bytes());
    qe_certification.extend(u32::try_from(PCK_CHAIN_PEM.len()).unwrap().to_le_bytes());
    qe_certification.extend(PCK_CHAIN_PEM);
    let mut auth = Vec::new();
    auth.extend(signature.as_ref());
    // The public key without its SEC 1 prefix (0x04): x || y.
    auth.extend(&key.public_key().as_ref()[1..]);
    auth.extend(6u16.to_le_bytes());
    auth.extend(u32::try_from(qe_certification.len()).unwrap().to_le_bytes());
    auth.extend(qe_certification);
    quote.extend(u32::try_from(auth.len()).unwrap().to_le_bytes());
    quote.extend(auth);
    quote
}

fn our_report_data() -> [u8; 64] {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(b"covenant synthetic report data!!");
    data[32..].copy_from_slice(&[0xa5; 32]);
    data
}

#[test]
fn a_synthetic_quote_is_refused_under_the_pinned_root() {
    let quote = tdx_quote(&Td::new(our_report_data()));
    let summary = covenant_attest::dcap::parse_quote(&quote).unwrap();
    assert_eq!(summary.report_data, our_report_data());
    // Its chains end at the test root, which is not the pinned Intel SGX Root CA.
    let refused = verify_quote(&quote, COLLATERAL, AT, &DcapOptions::default());
    assert!(
        matches!(refused, Err(DcapError::CertificateChain(_))),
        "{refused:?}"
    );
}

#[cfg(feature = "insecure-test-roots")]
mod under_the_test_root {
    use covenant_attest::TrustAnchors;
    use covenant_attest::dcap::{DcapError, DcapOptions, DcapTee, TcbStatus, verify_quote_with};

    use super::*;

    const ROOT_DER: &[u8] = key_file!("root-ca.der");

    fn test_anchors() -> TrustAnchors {
        TrustAnchors::insecure_for_tests(Vec::new(), ROOT_DER.to_vec(), Vec::new())
    }

    fn verify(
        quote: &[u8],
        options: &DcapOptions,
    ) -> Result<covenant_attest::dcap::VerifiedQuote, DcapError> {
        verify_quote_with(&test_anchors(), quote, COLLATERAL, AT, options)
    }

    #[test]
    fn a_synthetic_quote_with_our_report_data_verifies() {
        let anchors = test_anchors();
        assert!(!anchors.is_pinned());
        let td = Td::new(our_report_data());
        let verified = verify(&tdx_quote(&td), &DcapOptions::default()).unwrap();
        assert_eq!(verified.tee, DcapTee::Tdx);
        assert_eq!(verified.quote_version, 4);
        assert_eq!(verified.tcb_status, TcbStatus::UpToDate);
        assert_eq!(verified.report_data, our_report_data());
        assert_eq!(verified.measurement().as_bytes(), td.mrtd.as_slice());
        assert!(!verified.debug);
        let tdx = verified.tdx.unwrap();
        assert_eq!(tdx.rtmrs[3], [3; 48]);
        // Any report data: each quote is signed afresh.
        for byte in [0u8, 0x7f, 0xff] {
            let verified = verify(&tdx_quote(&Td::new([byte; 64])), &DcapOptions::default());
            assert_eq!(verified.unwrap().report_data, [byte; 64]);
        }
    }

    #[test]
    fn a_synthetic_quote_changed_after_signing_is_refused() {
        let quote = tdx_quote(&Td::new(our_report_data()));
        for position in [8, 40, 48 + 136, 48 + 520, 48 + 583] {
            let mut changed = quote.clone();
            changed[position] ^= 1;
            assert!(
                matches!(
                    verify(&changed, &DcapOptions::default()),
                    Err(DcapError::BadSignature(_))
                ),
                "byte {position}"
            );
        }
    }

    #[test]
    fn a_debug_td_is_refused_unless_allowed() {
        let mut td = Td::new(our_report_data());
        td.td_attributes[0] |= 0x01;
        let quote = tdx_quote(&td);
        assert_eq!(
            verify(&quote, &DcapOptions::default()),
            Err(DcapError::DebugNotAllowed { tee: DcapTee::Tdx })
        );
        let allow_debug = DcapOptions {
            allow_debug: true,
            ..DcapOptions::default()
        };
        let verified = verify(&quote, &allow_debug).unwrap();
        assert!(verified.debug);
        assert!(covenant_attest::dcap::parse_quote(&quote).unwrap().debug);
    }

    #[test]
    fn other_refused_td_attributes_are_refused_even_with_debug_allowed() {
        let allow_debug = DcapOptions {
            allow_debug: true,
            ..DcapOptions::default()
        };
        // MIGRATABLE (bit 29); SEPT_VE_DISABLE (bit 28) off; a reserved bit (1).
        for attributes in [
            [0, 0, 0, 0x30, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0x02, 0, 0, 0x10, 0, 0, 0, 0],
        ] {
            let mut td = Td::new(our_report_data());
            td.td_attributes = attributes;
            let refused = verify(&tdx_quote(&td), &allow_debug);
            assert!(
                matches!(refused, Err(DcapError::TdAttributes(_))),
                "{attributes:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn the_synthetic_collateral_is_checked_at_the_given_time() {
        let quote = tdx_quote(&Td::new(our_report_data()));
        for at in [
            datetime!(2024-12-31 23:59:59 UTC),
            datetime!(2045-01-01 00:00:00 UTC),
        ] {
            let refused = verify_quote_with(
                &test_anchors(),
                &quote,
                COLLATERAL,
                at,
                &DcapOptions::default(),
            );
            assert!(
                matches!(refused, Err(DcapError::CollateralNotCurrent { .. })),
                "{at}: {refused:?}"
            );
        }
    }
}
