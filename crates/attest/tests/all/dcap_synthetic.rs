//! The DCAP verifier on synthetic TDX and SGX quotes carrying our own report data, made by
//! `covenant_attest::testing::TestHardware` under its test Intel root (fixtures in
//! `tests/keys/dcap/`, made by `generate.py` there): the production verifier, unchanged, with
//! the root a test chooses (`TestHardware::anchors`, a `TrustAnchors::insecure_for_tests`,
//! behind the `insecure-test-roots` feature, which the dev-dependency on
//! `covenant-test-support` turns on). The same quotes are refused under the pinned root.

use covenant_attest::dcap::{
    DcapError, DcapOptions, DcapTee, TcbStatus, VerifiedQuote, parse_quote, verify_quote,
    verify_quote_with,
};
use covenant_attest::testing::{
    TEST_DCAP_VALID_FROM, TEST_DCAP_VALID_UNTIL, TEST_SGX_ISV_PROD_ID, TEST_SGX_MRSIGNER,
    TEST_TD_ATTRIBUTES, TestHardware,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// Inside the synthetic collateral's validity (2025-01-01 to 2049-12-31).
const AT: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

const MRTD: [u8; 48] = [0x4d; 48];
const MRENCLAVE: [u8; 32] = [0x6e; 32];

fn our_report_data() -> [u8; 64] {
    let mut data = [0u8; 64];
    data[..32].copy_from_slice(b"covenant synthetic report data!!");
    data[32..].copy_from_slice(&[0xa5; 32]);
    data
}

fn allow_debug() -> DcapOptions {
    DcapOptions {
        allow_debug: true,
        ..DcapOptions::default()
    }
}

fn verify(
    hw: &TestHardware,
    (quote, collateral): &(Vec<u8>, Vec<u8>),
    options: &DcapOptions,
) -> Result<VerifiedQuote, DcapError> {
    verify_quote_with(&hw.anchors(), quote, collateral, AT, options)
}

#[test]
fn a_synthetic_quote_is_refused_under_the_pinned_root() {
    let hw = TestHardware::new();
    for (quote, collateral) in [
        hw.tdx_quote(&our_report_data(), &MRTD, false),
        hw.sgx_quote(&our_report_data(), &MRENCLAVE, false),
    ] {
        let summary = parse_quote(&quote).unwrap();
        assert_eq!(summary.report_data, our_report_data());
        // Its chains end at the test root, which is not the pinned Intel SGX Root CA.
        let refused = verify_quote(&quote, &collateral, AT, &DcapOptions::default());
        assert!(
            matches!(refused, Err(DcapError::CertificateChain(_))),
            "{:?}: {refused:?}",
            summary.tee
        );
    }
}

#[test]
fn a_synthetic_quote_with_our_report_data_verifies() {
    let hw = TestHardware::new();
    assert!(!hw.anchors().is_pinned());
    let verified = verify(
        &hw,
        &hw.tdx_quote(&our_report_data(), &MRTD, false),
        &DcapOptions::default(),
    )
    .unwrap();
    assert_eq!(verified.tee, DcapTee::Tdx);
    assert_eq!(verified.quote_version, 4);
    assert_eq!(verified.tcb_status, TcbStatus::UpToDate);
    assert_eq!(verified.report_data, our_report_data());
    assert!(!verified.debug);
    let tdx = verified.tdx.clone().unwrap();
    assert_eq!(tdx.mrtd, MRTD);
    // The measurement is MRTD with the configuration registers and the RTMRs (a TD booting
    // another kernel behind the same firmware measures differently).
    assert_eq!(
        verified.measurement(),
        covenant_attest::testing::test_tdx_measurement(&MRTD)
    );
    assert_ne!(verified.measurement().as_bytes(), MRTD.as_slice());
    assert_eq!(tdx.td_attributes, TEST_TD_ATTRIBUTES);
    assert_eq!(tdx.rtmrs[3], [3; 48]);
    // Any report data: each quote is signed afresh.
    for byte in [0u8, 0x7f, 0xff] {
        let verified = verify(
            &hw,
            &hw.tdx_quote(&[byte; 64], &MRTD, false),
            &DcapOptions::default(),
        );
        assert_eq!(verified.unwrap().report_data, [byte; 64]);
    }
}

#[test]
fn a_synthetic_sgx_quote_with_our_report_data_verifies() {
    let hw = TestHardware::new();
    let verified = verify(
        &hw,
        &hw.sgx_quote(&our_report_data(), &MRENCLAVE, false),
        &DcapOptions::default(),
    )
    .unwrap();
    assert_eq!(verified.tee, DcapTee::Sgx);
    assert_eq!(verified.quote_version, 3);
    assert_eq!(verified.tcb_status, TcbStatus::UpToDate);
    assert_eq!(verified.report_data, our_report_data());
    assert_eq!(verified.measurement().as_bytes(), MRENCLAVE.as_slice());
    assert!(!verified.debug);
    assert!(verified.tdx.is_none());
    let sgx = verified.sgx.unwrap();
    assert_eq!(sgx.mrenclave, MRENCLAVE);
    assert_eq!(sgx.mrsigner, TEST_SGX_MRSIGNER);
    assert_eq!(sgx.isv_prod_id, TEST_SGX_ISV_PROD_ID);
}

#[test]
fn the_collateral_of_one_tee_is_refused_for_the_other() {
    let hw = TestHardware::new();
    let (tdx, tdx_collateral) = hw.tdx_quote(&our_report_data(), &MRTD, false);
    let (sgx, sgx_collateral) = hw.sgx_quote(&our_report_data(), &MRENCLAVE, false);
    for (quote, collateral) in [(tdx, sgx_collateral), (sgx, tdx_collateral)] {
        let refused = verify(&hw, &(quote, collateral), &DcapOptions::default());
        assert!(
            matches!(refused, Err(DcapError::CollateralTeeMismatch { .. })),
            "{refused:?}"
        );
    }
    // And a quote of the other TEE than expected is refused before its collateral is read.
    let expect_sgx = DcapOptions {
        expected_tee: Some(DcapTee::Sgx),
        ..DcapOptions::default()
    };
    assert_eq!(
        verify(
            &hw,
            &hw.tdx_quote(&our_report_data(), &MRTD, false),
            &expect_sgx
        ),
        Err(DcapError::TeeMismatch {
            expected: DcapTee::Sgx,
            found: DcapTee::Tdx
        })
    );
}

#[test]
fn a_synthetic_quote_changed_after_signing_is_refused() {
    let hw = TestHardware::new();
    // In the header: the QE SVN and the user data. TDX: MRTD, the report data's first and last
    // bytes. SGX: MRENCLAVE, ISVPRODID, the report data's last byte.
    let (tdx, tdx_collateral) = hw.tdx_quote(&our_report_data(), &MRTD, false);
    let (sgx, sgx_collateral) = hw.sgx_quote(&our_report_data(), &MRENCLAVE, false);
    for (quote, collateral, positions) in [
        (tdx, tdx_collateral, [8, 40, 48 + 136, 48 + 520, 48 + 583]),
        (sgx, sgx_collateral, [8, 40, 48 + 64, 48 + 256, 48 + 383]),
    ] {
        for position in positions {
            let mut changed = quote.clone();
            changed[position] ^= 1;
            let refused = verify(&hw, &(changed, collateral.clone()), &DcapOptions::default());
            assert!(
                matches!(refused, Err(DcapError::BadSignature(_))),
                "byte {position}: {refused:?}"
            );
        }
    }
}

#[test]
fn a_debug_td_or_enclave_is_refused_unless_allowed() {
    let hw = TestHardware::new();
    for (tee, evidence) in [
        (DcapTee::Tdx, hw.tdx_quote(&our_report_data(), &MRTD, true)),
        (
            DcapTee::Sgx,
            hw.sgx_quote(&our_report_data(), &MRENCLAVE, true),
        ),
    ] {
        assert_eq!(
            verify(&hw, &evidence, &DcapOptions::default()),
            Err(DcapError::DebugNotAllowed { tee })
        );
        let verified = verify(&hw, &evidence, &allow_debug()).unwrap();
        assert!(verified.debug);
        assert!(parse_quote(&evidence.0).unwrap().debug);
    }
}

#[test]
fn other_refused_td_attributes_are_refused_even_with_debug_allowed() {
    let hw = TestHardware::new();
    // MIGRATABLE (bit 29); SEPT_VE_DISABLE (bit 28) off; a reserved bit (1).
    for attributes in [
        [0, 0, 0, 0x30, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0x02, 0, 0, 0x10, 0, 0, 0, 0],
    ] {
        let evidence = hw.tdx_quote_with_attributes(&our_report_data(), &MRTD, attributes);
        let refused = verify(&hw, &evidence, &allow_debug());
        assert!(
            matches!(refused, Err(DcapError::TdAttributes(_))),
            "{attributes:?}: {refused:?}"
        );
    }
}

#[test]
fn the_synthetic_collateral_is_checked_at_the_given_time() {
    let hw = TestHardware::new();
    for (quote, collateral) in [
        hw.tdx_quote(&our_report_data(), &MRTD, false),
        hw.sgx_quote(&our_report_data(), &MRENCLAVE, false),
    ] {
        let anchors = hw.anchors();
        let options = DcapOptions::default();
        // Valid now and for years.
        for at in [
            TEST_DCAP_VALID_FROM,
            OffsetDateTime::now_utc(),
            datetime!(2049-12-30 23:59:59 UTC),
        ] {
            verify_quote_with(&anchors, &quote, &collateral, at, &options)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
        }
        for at in [
            TEST_DCAP_VALID_FROM - time::Duration::SECOND,
            TEST_DCAP_VALID_UNTIL,
        ] {
            let refused = verify_quote_with(&anchors, &quote, &collateral, at, &options);
            assert!(
                matches!(refused, Err(DcapError::CollateralNotCurrent { .. })),
                "{at}: {refused:?}"
            );
        }
    }
}

#[test]
fn the_tdx_measurement_changes_with_every_register_not_only_mrtd() {
    // A VMM that boots another kernel, initrd or command line behind the same firmware keeps
    // MRTD but changes an RTMR; one that sets MRCONFIGID or MROWNER changes those. Each
    // changes the measurement a policy pins.
    let zero = [0u8; 48];
    let base = covenant_attest::dcap::tdx_measurement(&MRTD, &zero, &zero, &zero, &[zero; 4]);
    for register in 0..8 {
        let mut registers = [[0u8; 48]; 8];
        registers[0] = MRTD;
        registers[register][47] ^= 1;
        let [mrtd, config, owner, owner_config, r0, r1, r2, r3] = registers;
        let changed = covenant_attest::dcap::tdx_measurement(
            &mrtd,
            &config,
            &owner,
            &owner_config,
            &[r0, r1, r2, r3],
        );
        assert_ne!(changed, base, "register {register}");
    }
}

#[test]
fn any_td_under_debug_bit_counts_as_debug() {
    // TD_ATTRIBUTES byte 0 is the "TD under debug" group: DEBUG (bit 0) and the debug and
    // profiling features beside it. A TD with any of them is debuggable: refused by default,
    // and reported as `debug` when debugging is allowed, so that a strict client refuses it.
    let hw = TestHardware::new();
    for bit in [0x01u8, 0x10, 0x20, 0x40] {
        let mut attributes = TEST_TD_ATTRIBUTES;
        attributes[0] |= bit;
        let quote = hw.tdx_quote_with_attributes(&our_report_data(), &MRTD, attributes);
        assert!(
            verify(&hw, &quote, &DcapOptions::default()).is_err(),
            "bit {bit:#x} accepted without allow_debug"
        );
        let verified = verify(&hw, &quote, &allow_debug())
            .unwrap_or_else(|e| panic!("bit {bit:#x} with debugging allowed: {e}"));
        assert!(verified.debug, "bit {bit:#x} accepted as not debug");
    }
}
