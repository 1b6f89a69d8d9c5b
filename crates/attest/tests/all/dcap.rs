//! The Intel DCAP verifier against genuine quotes and collateral (`tests/vectors/tdx/` and
//! `tests/vectors/sgx/`, see PROVENANCE.md there).

use std::collections::BTreeSet;

use covenant_attest::TrustAnchors;
use covenant_attest::dcap::{
    DcapError, DcapOptions, DcapTee, MAX_COLLATERAL_LEN, MAX_QUOTE_LEN, TcbStatus,
    collateral_cache_key, parse_quote, verify_quote, verify_quote_with,
};
use time::OffsetDateTime;
use time::macros::datetime;

macro_rules! vector {
    ($dir:literal, $name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/",
            $dir,
            "/",
            $name
        ))
        .as_slice()
    };
}

const TDX_QUOTE: &[u8] = vector!("tdx", "dcap-qvl-tdx_quote");
const TDX_COLLATERAL: &[u8] = vector!("tdx", "dcap-qvl-tdx_quote_collateral.json");
const TDX_OUTDATED_QUOTE: &[u8] = vector!("tdx", "dcap-qvl-tdx_quote_outdated");
const TDX_OUTDATED_COLLATERAL: &[u8] =
    vector!("tdx", "dcap-qvl-tdx_quote_outdated_collateral.json");
const TDX_QUOTE_HEX: &[u8] = vector!("tdx", "dcap-qvl-tdx-quote.hex");
const TAPPD_QUOTE_HEX: &[u8] = vector!("tdx", "dcap-qvl-quote-from-tappd.hex");
const OAK_TDX_QUOTE: &[u8] = vector!("tdx", "oak-tdx-oc-quote.bin");
const SGX_QUOTE: &[u8] = vector!("sgx", "dcap-qvl-sgx_quote");
const SGX_COLLATERAL: &[u8] = vector!("sgx", "dcap-qvl-sgx_quote_collateral.json");

/// Inside the validity of the TDX and SGX collateral: the latest issue among their parts is
/// 2025-06-19T10:56:11Z (SGX TCB info), the earliest expiry 2025-07-19T10:00:35Z (TDX PCK CRL).
const INSIDE_2025: OffsetDateTime = datetime!(2025-07-01 00:00 UTC);
/// Inside the validity of the outdated TDX quote's collateral (2026-02-18T10:58:51Z to
/// 2026-03-20T10:41:15Z).
const INSIDE_2026: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);
/// Today, for this test suite: every vector's collateral has expired.
const TODAY: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

/// MRTD of the genuine TDX quote, read independently (Python) from bytes 184..232.
const TDX_MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
/// Covenant's measurement of that TD (`dcap::tdx_measurement`), computed independently (Python):
/// `sha384(b"covenant-tdx-measurement/1\0" + body[136:520])`, the body starting at byte 48.
const TDX_MEASUREMENT: &str = "8a0bd4ce1954b7092c89f190e19a538bf6df47c3599decd4ced7431f102779f808cb96080b0f6ebedb23887e2a829ef5";
/// REPORTDATA of the genuine TDX quote, bytes 568..632.
const TDX_REPORT_DATA: &str = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20";
/// MRENCLAVE and MRSIGNER of the genuine SGX quote, bytes 112..144 and 176..208.
const SGX_MRENCLAVE: &str = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb";
const SGX_MRSIGNER: &str = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6";

fn verify(quote: &[u8], collateral: &[u8], at: OffsetDateTime) -> Result<(), DcapError> {
    verify_quote(quote, collateral, at, &DcapOptions::default()).map(|_| ())
}

fn accepting(statuses: &[TcbStatus]) -> DcapOptions {
    DcapOptions {
        accepted_tcb_statuses: statuses.iter().copied().collect(),
        ..DcapOptions::default()
    }
}

fn from_hex_text(text: &[u8]) -> Vec<u8> {
    let text: String = std::str::from_utf8(text)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    hex::decode(text.strip_prefix("0x").unwrap_or(&text)).unwrap()
}

#[test]
fn the_genuine_tdx_quote_verifies_inside_its_collateral_validity_and_yields_its_mrtd() {
    let options = DcapOptions {
        expected_tee: Some(DcapTee::Tdx),
        ..DcapOptions::default()
    };
    let verified = verify_quote(TDX_QUOTE, TDX_COLLATERAL, INSIDE_2025, &options).unwrap();
    assert_eq!(verified.tee, DcapTee::Tdx);
    assert_eq!(verified.quote_version, 4);
    assert_eq!(verified.tcb_status, TcbStatus::UpToDate);
    assert!(
        verified.advisory_ids.is_empty(),
        "{:?}",
        verified.advisory_ids
    );
    assert_eq!(verified.measurement().to_hex(), TDX_MEASUREMENT);
    assert_eq!(verified.measurement().as_bytes().len(), 48);
    assert_eq!(hex::encode(verified.report_data), TDX_REPORT_DATA);
    assert_eq!(verified.report_data.as_slice(), &TDX_QUOTE[568..632]);
    assert!(!verified.debug);
    assert_eq!(verified.verified_at, INSIDE_2025);
    assert!(verified.sgx.is_none());
    let tdx = verified.tdx.as_ref().unwrap();
    assert_eq!(hex::encode(tdx.mrtd), TDX_MRTD);
    assert_eq!(tdx.td_attributes, [0, 0, 0, 0x10, 0, 0, 0, 0]);
    assert_eq!(tdx.mr_seam.as_slice(), &TDX_QUOTE[64..112]);
    for (i, rtmr) in tdx.rtmrs.iter().enumerate() {
        assert_eq!(rtmr.as_slice(), &TDX_QUOTE[376 + 48 * i..424 + 48 * i]);
    }
    assert_eq!(tdx.mr_service_td, None);
    // The pinned root is the one `verify_quote` uses; allowing debug changes nothing here.
    let with_pinned = verify_quote_with(
        &TrustAnchors::pinned(),
        TDX_QUOTE,
        TDX_COLLATERAL,
        INSIDE_2025,
        &options,
    )
    .unwrap();
    assert_eq!(with_pinned, verified);
    let allow_debug = DcapOptions {
        allow_debug: true,
        ..options
    };
    assert_eq!(
        verify_quote(TDX_QUOTE, TDX_COLLATERAL, INSIDE_2025, &allow_debug).unwrap(),
        verified
    );
}

#[test]
fn the_tdx_collateral_is_current_exactly_between_its_latest_issue_and_earliest_expiry() {
    // Latest issue: the QE identity, 2025-06-19T10:32:27Z.
    verify(
        TDX_QUOTE,
        TDX_COLLATERAL,
        datetime!(2025-06-19 10:32:27 UTC),
    )
    .unwrap();
    let early = verify(
        TDX_QUOTE,
        TDX_COLLATERAL,
        datetime!(2025-06-19 10:32:26 UTC),
    );
    assert!(
        matches!(&early, Err(DcapError::CollateralNotCurrent { which, .. }) if which == "QE identity"),
        "{early:?}"
    );
    // Earliest expiry: the PCK CRL's nextUpdate, 2025-07-19T10:00:35Z (a CRL is stale from its
    // nextUpdate on).
    verify(
        TDX_QUOTE,
        TDX_COLLATERAL,
        datetime!(2025-07-19 10:00:34 UTC),
    )
    .unwrap();
    let late = verify(
        TDX_QUOTE,
        TDX_COLLATERAL,
        datetime!(2025-07-19 10:00:35 UTC),
    );
    assert!(
        matches!(&late, Err(DcapError::CollateralNotCurrent { which, .. }) if which == "PCK CRL"),
        "{late:?}"
    );
    // Before 1970 there is nothing to check against.
    assert!(matches!(
        verify(
            TDX_QUOTE,
            TDX_COLLATERAL,
            datetime!(1969-12-31 23:59:59 UTC)
        ),
        Err(DcapError::InvalidTime(_))
    ));
}

#[test]
fn the_sgx_quote_is_refused_by_default_naming_its_status_and_advisories() {
    let refused = verify(SGX_QUOTE, SGX_COLLATERAL, INSIDE_2025).unwrap_err();
    match &refused {
        DcapError::TcbStatusNotAccepted {
            status,
            advisory_ids,
        } => {
            assert_eq!(*status, TcbStatus::ConfigurationAndSwHardeningNeeded);
            assert!(advisory_ids.contains(&"INTEL-SA-00289".to_owned()));
            assert!(advisory_ids.contains(&"INTEL-SA-00615".to_owned()));
        }
        other => panic!("{other:?}"),
    }
    let message = refused.to_string();
    for needle in [
        "configuration-and-sw-hardening-needed",
        "INTEL-SA-00289",
        "INTEL-SA-00615",
    ] {
        assert!(message.contains(needle), "{message}");
    }
    // Naming another status does not accept it.
    assert!(matches!(
        verify_quote(
            SGX_QUOTE,
            SGX_COLLATERAL,
            INSIDE_2025,
            &accepting(&[TcbStatus::SwHardeningNeeded, TcbStatus::ConfigurationNeeded])
        ),
        Err(DcapError::TcbStatusNotAccepted { .. })
    ));
}

#[test]
fn the_sgx_quote_is_accepted_when_its_status_is_named_and_yields_mrenclave_and_mrsigner() {
    let options = DcapOptions {
        expected_tee: Some(DcapTee::Sgx),
        ..accepting(&[TcbStatus::ConfigurationAndSwHardeningNeeded])
    };
    let verified = verify_quote(SGX_QUOTE, SGX_COLLATERAL, INSIDE_2025, &options).unwrap();
    assert_eq!(verified.tee, DcapTee::Sgx);
    assert_eq!(verified.quote_version, 3);
    assert_eq!(
        verified.tcb_status,
        TcbStatus::ConfigurationAndSwHardeningNeeded
    );
    assert_eq!(verified.measurement().to_hex(), SGX_MRENCLAVE);
    assert_eq!(verified.measurement().as_bytes().len(), 32);
    let sgx = verified.sgx.as_ref().unwrap();
    assert_eq!(hex::encode(sgx.mrenclave), SGX_MRENCLAVE);
    assert_eq!(hex::encode(sgx.mrsigner), SGX_MRSIGNER);
    assert_eq!((sgx.isv_prod_id, sgx.isv_svn), (0, 0));
    assert_eq!(sgx.attributes[0] & 0x02, 0);
    assert!(!verified.debug);
    assert!(verified.tdx.is_none());
    assert_eq!(&verified.report_data[..13], b"Hello, world!");
    assert!(verified.report_data[13..].iter().all(|&b| b == 0));
}

#[test]
fn the_outdated_tdx_quote_is_refused_whatever_the_policy_accepts() {
    let all_but_revoked: Vec<_> = TcbStatus::ALL
        .into_iter()
        .filter(|s| *s != TcbStatus::Revoked)
        .collect();
    for options in [DcapOptions::default(), accepting(&all_but_revoked)] {
        let refused = verify_quote(
            TDX_OUTDATED_QUOTE,
            TDX_OUTDATED_COLLATERAL,
            INSIDE_2026,
            &options,
        );
        assert!(
            matches!(refused, Err(DcapError::NoMatchingTcbLevel(_))),
            "{refused:?}"
        );
    }
    // It parses: a TDX 1.5 body in a version-5 quote.
    let summary = parse_quote(TDX_OUTDATED_QUOTE).unwrap();
    assert_eq!((summary.tee, summary.version), (DcapTee::Tdx, 5));
}

#[test]
fn naming_revoked_does_not_accept_it() {
    let options = accepting(&TcbStatus::ALL);
    assert!(options.accepted_tcb_statuses.contains(&TcbStatus::Revoked));
    assert!(!options.accepts(TcbStatus::Revoked));
    // And the genuine quotes still verify under it.
    verify_quote(SGX_QUOTE, SGX_COLLATERAL, INSIDE_2025, &options).unwrap();
}

#[test]
fn collateral_for_another_tee_or_platform_is_refused() {
    for (quote, collateral, at, expected) in [
        (TDX_QUOTE, SGX_COLLATERAL, INSIDE_2025, "tee"),
        (SGX_QUOTE, TDX_COLLATERAL, INSIDE_2025, "tee"),
        (SGX_QUOTE, TDX_OUTDATED_COLLATERAL, INSIDE_2026, "tee"),
        (TDX_QUOTE, TDX_OUTDATED_COLLATERAL, INSIDE_2026, "fmspc"),
        (TDX_OUTDATED_QUOTE, TDX_COLLATERAL, INSIDE_2025, "fmspc"),
    ] {
        let refused = verify(quote, collateral, at);
        let ok = match expected {
            "tee" => matches!(refused, Err(DcapError::CollateralTeeMismatch { .. })),
            _ => matches!(
                &refused,
                Err(DcapError::CollateralPlatformMismatch { field: "FMSPC", .. })
            ),
        };
        assert!(ok, "{expected}: {refused:?}");
    }
    let message = verify(TDX_QUOTE, TDX_OUTDATED_COLLATERAL, INSIDE_2026)
        .unwrap_err()
        .to_string();
    assert!(message.contains("another platform"), "{message}");
    assert!(message.contains("B0C06F000000") && message.contains("90C06F000000"));
}

#[test]
fn every_vector_is_refused_today_because_its_tcb_info_has_expired() {
    let all = accepting(&TcbStatus::ALL);
    for (quote, collateral) in [
        (TDX_QUOTE, TDX_COLLATERAL),
        (TDX_OUTDATED_QUOTE, TDX_OUTDATED_COLLATERAL),
        (SGX_QUOTE, SGX_COLLATERAL),
    ] {
        let refused = verify_quote(quote, collateral, TODAY, &all);
        assert!(
            matches!(&refused, Err(DcapError::CollateralNotCurrent { which, .. }) if which == "TCB info"),
            "{refused:?}"
        );
    }
}

#[test]
fn a_quote_from_another_tee_than_expected_is_refused() {
    for (quote, collateral, expected, found) in [
        (TDX_QUOTE, TDX_COLLATERAL, DcapTee::Sgx, DcapTee::Tdx),
        (SGX_QUOTE, SGX_COLLATERAL, DcapTee::Tdx, DcapTee::Sgx),
    ] {
        let options = DcapOptions {
            expected_tee: Some(expected),
            ..accepting(&[TcbStatus::ConfigurationAndSwHardeningNeeded])
        };
        assert_eq!(
            verify_quote(quote, collateral, INSIDE_2025, &options),
            Err(DcapError::TeeMismatch { expected, found })
        );
    }
}

/// The region of a quote a byte is in, and the errors a change to it may give.
fn expected_for(tee: DcapTee, position: usize, error: &DcapError) -> bool {
    use DcapError as E;
    // (TDX v4 | SGX v3) body end, then the authentication data: length (4), signature (64),
    // attestation key (64), then for SGX the QE report (384) and its signature (64), for TDX the
    // certification data header (6) and then the QE report and its signature.
    let body_end = match tee {
        DcapTee::Tdx => 632,
        DcapTee::Sgx => 432,
    };
    let qe_report = match tee {
        DcapTee::Tdx => body_end + 4 + 128 + 6,
        DcapTee::Sgx => body_end + 4 + 128,
    };
    match position {
        0..2 => matches!(error, E::UnsupportedVersion { .. } | E::QuoteMalformed(_)),
        2..4 => matches!(error, E::UnsupportedAttestationKeyType(_)),
        4..8 => matches!(error, E::UnsupportedTeeType(_)),
        12..28 => matches!(error, E::UnknownQeVendor(_)),
        p if p < body_end => matches!(error, E::BadSignature(_)),
        p if p < body_end + 4 => matches!(error, E::QuoteMalformed(_)),
        p if p < body_end + 4 + 64 => matches!(error, E::BadSignature(_)),
        p if p < body_end + 4 + 128 => matches!(error, E::QeReportData(_)),
        p if p < qe_report => matches!(error, E::QuoteMalformed(_)),
        p if p < qe_report + 384 + 64 => matches!(error, E::QeReportSignature(_)),
        _ => true,
    }
}

#[test]
fn single_byte_changes_to_the_signed_quote_and_its_signatures_are_refused() {
    for (tee, quote, collateral, options) in [
        (
            DcapTee::Tdx,
            TDX_QUOTE,
            TDX_COLLATERAL,
            DcapOptions::default(),
        ),
        (
            DcapTee::Sgx,
            SGX_QUOTE,
            SGX_COLLATERAL,
            accepting(&[TcbStatus::ConfigurationAndSwHardeningNeeded]),
        ),
    ] {
        verify_quote(quote, collateral, INSIDE_2025, &options).unwrap();
        let qe_report_end = match tee {
            DcapTee::Tdx => 632 + 4 + 128 + 6 + 384 + 64,
            DcapTee::Sgx => 432 + 4 + 128 + 384 + 64,
        };
        // Every byte of the header, the body (measurement and report data included), the
        // signature, the attestation key, the QE report and its signature: its lowest bit, and
        // its highest in every third byte.
        for position in 0..qe_report_end {
            let flips: &[u8] = if position % 3 == 0 {
                &[0x01, 0x80]
            } else {
                &[0x01]
            };
            for &flip in flips {
                let mut changed = quote.to_vec();
                changed[position] ^= flip;
                let refused = verify_quote(&changed, collateral, INSIDE_2025, &options)
                    .expect_err(&format!("{tee} byte {position} ^ {flip:#x} accepted"));
                assert!(
                    expected_for(tee, position, &refused),
                    "{tee} byte {position} ^ {flip:#x}: {refused:?}"
                );
            }
        }
    }
}

#[test]
fn every_byte_of_the_quotes_is_bound_but_pem_line_breaks_and_a_non_zero_tail_is_refused() {
    // The rest, after what the test above covers: the certification data (a change breaks a
    // certificate, its PEM or a length). Only the PEM line breaks (and the NUL after the last
    // one) carry nothing: a parser may read them differently, and the certificates they frame
    // are unchanged.
    for (quote, collateral, options, covered) in [
        (
            TDX_QUOTE,
            TDX_COLLATERAL,
            DcapOptions::default(),
            632 + 4 + 128 + 6 + 384 + 64,
        ),
        (
            SGX_QUOTE,
            SGX_COLLATERAL,
            accepting(&[TcbStatus::ConfigurationAndSwHardeningNeeded]),
            432 + 4 + 128 + 384 + 64,
        ),
    ] {
        let mut accepted = Vec::new();
        for position in covered..quote.len() {
            let mut changed = quote.to_vec();
            changed[position] ^= 0x01;
            if verify_quote(&changed, collateral, INSIDE_2025, &options).is_ok()
                && !matches!(quote[position], b'\n' | 0)
            {
                accepted.push(position);
            }
        }
        assert!(
            accepted.is_empty(),
            "{} bytes: accepted changes at {accepted:?}",
            quote.len()
        );
        let mut appended = quote.to_vec();
        appended.extend([0u8; 16]);
        verify_quote(&appended, collateral, INSIDE_2025, &options).unwrap();
        appended.push(1);
        assert!(matches!(
            verify_quote(&appended, collateral, INSIDE_2025, &options),
            Err(DcapError::TrailingBytes { .. })
        ));
    }
}

#[test]
fn oversized_quotes_and_collateral_are_refused_before_parsing() {
    let mut quote = TDX_QUOTE.to_vec();
    quote.resize(MAX_QUOTE_LEN + 1, 0);
    assert_eq!(
        verify(&quote, TDX_COLLATERAL, INSIDE_2025),
        Err(DcapError::QuoteTooLarge(MAX_QUOTE_LEN + 1))
    );
    assert_eq!(
        parse_quote(&quote),
        Err(DcapError::QuoteTooLarge(MAX_QUOTE_LEN + 1))
    );
    let mut collateral = TDX_COLLATERAL.to_vec();
    collateral.resize(MAX_COLLATERAL_LEN + 1, b' ');
    assert_eq!(
        verify(TDX_QUOTE, &collateral, INSIDE_2025),
        Err(DcapError::CollateralTooLarge(MAX_COLLATERAL_LEN + 1))
    );
    // Padding up to the bound is read (zeros after a quote, white space after JSON).
    let mut quote = TDX_QUOTE.to_vec();
    quote.resize(MAX_QUOTE_LEN, 0);
    verify(&quote, TDX_COLLATERAL, INSIDE_2025).unwrap();
}

#[test]
fn a_changed_collateral_is_refused() {
    let json: serde_json::Value = serde_json::from_slice(TDX_COLLATERAL).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut changed = json.clone();
        changed[field] = value;
        serde_json::to_vec(&changed).unwrap()
    };
    let text = |field: &str| json[field].as_str().unwrap().to_owned();
    // The signed TCB info and QE identity, one character changed.
    let tcb_info = text("tcb_info").replacen(
        "\"tcbEvaluationDataNumber\":",
        "\"tcbEvaluationDataNumber\":1",
        1,
    );
    assert_ne!(tcb_info, text("tcb_info"));
    let refused = verify(TDX_QUOTE, &with("tcb_info", tcb_info.into()), INSIDE_2025);
    assert!(
        matches!(
            refused,
            Err(DcapError::CollateralSignature {
                which: "TCB info",
                ..
            })
        ),
        "{refused:?}"
    );
    let qe_identity = text("qe_identity").replacen("\"isvprodid\":", "\"isvprodid\": ", 1);
    assert_ne!(qe_identity, text("qe_identity"));
    let refused = verify(
        TDX_QUOTE,
        &with("qe_identity", qe_identity.into()),
        INSIDE_2025,
    );
    assert!(
        matches!(
            refused,
            Err(DcapError::CollateralSignature {
                which: "QE identity",
                ..
            })
        ),
        "{refused:?}"
    );
    // The signatures.
    for field in ["tcb_info_signature", "qe_identity_signature"] {
        let mut signature = hex::decode(text(field)).unwrap();
        signature[10] ^= 1;
        let refused = verify(
            TDX_QUOTE,
            &with(field, hex::encode(signature).into()),
            INSIDE_2025,
        );
        assert!(
            matches!(refused, Err(DcapError::CollateralSignature { .. })),
            "{field}: {refused:?}"
        );
    }
    // The CRLs: every byte of the root CA CRL (signed by the pinned root) and a sample of the
    // PCK CRL's.
    for (field, step) in [("root_ca_crl", 1), ("pck_crl", 7)] {
        let crl = hex::decode(text(field)).unwrap();
        for position in (0..crl.len()).step_by(step) {
            let mut changed = crl.clone();
            changed[position] ^= 0x01;
            let refused = verify(
                TDX_QUOTE,
                &with(field, hex::encode(changed).into()),
                INSIDE_2025,
            );
            assert!(refused.is_err(), "{field} byte {position} accepted");
        }
    }
    // A PCK chain in the collateral that is not the quote's.
    let other_chain = {
        let quote = SGX_QUOTE;
        let start = quote.windows(11).position(|w| w == b"-----BEGIN ").unwrap();
        String::from_utf8(quote[start..].to_vec())
            .unwrap()
            .trim_end_matches('\0')
            .to_owned()
    };
    assert_eq!(
        verify(
            TDX_QUOTE,
            &with("pck_certificate_chain", other_chain.into()),
            INSIDE_2025
        ),
        Err(DcapError::PckChainMismatch)
    );
    // The quote's own chain in the collateral is accepted.
    let own_chain = {
        let start = TDX_QUOTE
            .windows(11)
            .position(|w| w == b"-----BEGIN ")
            .unwrap();
        String::from_utf8(TDX_QUOTE[start..4936].to_vec())
            .unwrap()
            .trim_end_matches('\0')
            .to_owned()
    };
    verify(
        TDX_QUOTE,
        &with("pck_certificate_chain", own_chain.into()),
        INSIDE_2025,
    )
    .unwrap();
}

#[test]
fn the_parsing_only_vectors_parse() {
    // The measurement is Covenant's (MRTD, the configuration registers and the RTMRs, hashed;
    // computed independently with Python); the MRTD is in the comment beside it.
    for (name, quote, measurement, report_data) in [
        (
            "dcap-qvl-tdx-quote.hex",
            from_hex_text(TDX_QUOTE_HEX),
            // MRTD 7ba9e262ce6979087e34632603f354dd8f8a870f5947d116af8114db6c9d0d74c48bec4280e5b4f4a37025a10905bb29
            "b5ce01b9c8aac646895386c3d5eb48aec44db9a77aaad7ca9ef48d850a811d1ffffbe2d54e882e19d27dd32f31f2d318",
            "7148f47ef58b475fce69b386e2d6b4c964a9533cc328ea8e544db66612a5174698d006951cefa8fd4450e884300638e567e22f9a012ef5754aa6a9d9564fcd8a",
        ),
        (
            "dcap-qvl-quote-from-tappd.hex",
            from_hex_text(TAPPD_QUOTE_HEX),
            // MRTD c68518a0ebb42136c12b2275164f8c72f25fa9a34392228687ed6e9caeb9c0f1dbd895e9cf475121c029dc47e70e91fd
            "5479a25e13b85dd8ac5cd6258416c9ad1a19e8626669373955849a99af894f59916a2e5420da0a0d3558a78cf68d86b5",
            "7668c6b4eafb62301c72714ecc7d90ce9a0e04b52dc117720df2047b0a59f1dbd937243eef1410a3cdc524aad66d4554b4f18b54da2fc0608dac40d6dea5f1d4",
        ),
        (
            "oak-tdx-oc-quote.bin",
            OAK_TDX_QUOTE.to_vec(),
            // MRTD 7b5ee9a304d036f963dbd194c329cb2524817ee91bcf1cff23efe88a25af827c11e04cbf264ae401e5b17fc2e18736be
            "86f8c3ba98d8103eadf3f2db15937bdd94a6c74461ecdcc9dd9ec8823ac0008c4c0dd9c13616c16cd7c59e83e7bfeba2",
            &"0".repeat(128),
        ),
        (
            "dcap-qvl-tdx_quote",
            TDX_QUOTE.to_vec(),
            TDX_MEASUREMENT,
            TDX_REPORT_DATA,
        ),
    ] {
        let summary = parse_quote(&quote).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary.tee, DcapTee::Tdx, "{name}");
        assert_eq!(summary.version, 4, "{name}");
        assert_eq!(summary.measurement.to_hex(), measurement, "{name}");
        assert_eq!(hex::encode(summary.report_data), report_data, "{name}");
        assert!(!summary.debug, "{name}");
        // They come without collateral. The two dcap-qvl ones are from a platform of the
        // genuine quote's FMSPC with an older TCB, which its collateral no longer lists; oak's
        // is from another platform.
        let with_tdx_collateral = verify(&quote, TDX_COLLATERAL, INSIDE_2025);
        let expected = match name {
            "oak-tdx-oc-quote.bin" => matches!(
                &with_tdx_collateral,
                Err(DcapError::CollateralPlatformMismatch { field: "FMSPC", quote, .. })
                    if quote == "00806F050000"
            ),
            "dcap-qvl-tdx_quote" => with_tdx_collateral.is_ok(),
            _ => matches!(with_tdx_collateral, Err(DcapError::NoMatchingTcbLevel(_))),
        };
        assert!(expected, "{name}: {with_tdx_collateral:?}");
    }
    let sgx = parse_quote(SGX_QUOTE).unwrap();
    assert_eq!(
        collateral_cache_key(SGX_QUOTE).as_deref(),
        Some("dcap:SGX:00A067110000:0000:processor")
    );
    assert_eq!(
        collateral_cache_key(TDX_QUOTE).as_deref(),
        Some("dcap:TDX:B0C06F000000:0000:platform")
    );
    assert_eq!(
        collateral_cache_key(OAK_TDX_QUOTE).as_deref(),
        Some("dcap:TDX:00806F050000:0000:platform")
    );
    assert_eq!(collateral_cache_key(&TDX_QUOTE[..600]), None);
    assert_eq!((sgx.tee, sgx.version), (DcapTee::Sgx, 3));
    assert_eq!(sgx.measurement.to_hex(), SGX_MRENCLAVE);
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

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The collateral JSON with its hex fields in lowercase: what carries meaning.
fn normalized(json: &[u8]) -> Option<serde_json::Value> {
    let mut value: serde_json::Value = serde_json::from_slice(json).ok()?;
    for field in [
        "root_ca_crl",
        "pck_crl",
        "tcb_info_signature",
        "qe_identity_signature",
    ] {
        if let Some(hex) = value.get(field).and_then(|v| v.as_str()) {
            value[field] = hex.to_lowercase().into();
        }
    }
    Some(value)
}

#[test]
fn random_and_truncated_quotes_and_collateral_give_errors_never_panics() {
    let mut rng = Rng(0xdca9_7d11_5e55_f00d);
    let options = accepting(&TcbStatus::ALL);
    // Every truncation of the genuine quotes (the TDX one ends at 4936; zeros follow).
    for (quote, end) in [
        (TDX_QUOTE, 4936),
        (SGX_QUOTE, 4600),
        (TDX_OUTDATED_QUOTE, 5006),
    ] {
        for len in 0..quote.len() {
            assert_eq!(
                parse_quote(&quote[..len]).is_ok(),
                len >= end,
                "length {len}"
            );
            if len < end {
                assert!(
                    verify_quote(&quote[..len], TDX_COLLATERAL, INSIDE_2025, &options).is_err()
                );
            }
        }
    }
    // Random quotes: with a genuine header (so that the parser goes deeper), with a genuine
    // header and body, and fully random, of random lengths.
    for round in 0..3000 {
        let base = [TDX_QUOTE, SGX_QUOTE, TDX_OUTDATED_QUOTE][round % 3];
        let keep = [0, 48, 640][rng.below(3)].min(base.len());
        let len = rng.below(6000);
        let mut quote = base[..keep.min(len)].to_vec();
        quote.extend(rng.bytes(len.saturating_sub(quote.len())));
        let _ = parse_quote(&quote);
        assert!(verify_quote(&quote, TDX_COLLATERAL, INSIDE_2025, &options).is_err());
    }
    // Genuine quotes with a few random bytes changed anywhere.
    for _ in 0..300 {
        let mut quote = TDX_QUOTE.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(quote.len());
            quote[at] = rng.next() as u8;
        }
        if quote != TDX_QUOTE {
            assert!(verify_quote(&quote, TDX_COLLATERAL, INSIDE_2025, &options).is_err());
        }
    }
    // Truncated collateral, random collateral, and genuine collateral with random bytes changed.
    for collateral in [TDX_COLLATERAL, SGX_COLLATERAL] {
        for len in (0..collateral.len()).step_by(13) {
            assert!(verify_quote(TDX_QUOTE, &collateral[..len], INSIDE_2025, &options).is_err());
        }
    }
    const REPLACEMENTS: &[u8] = b"0123456789abcdefABCDEF{}[]\":, \\x";
    for _ in 0..300 {
        let len = rng.below(4000);
        let random = rng.bytes(len);
        assert!(verify_quote(TDX_QUOTE, &random, INSIDE_2025, &options).is_err());
        let mut collateral = TDX_COLLATERAL.to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(collateral.len());
            collateral[at] = REPLACEMENTS[rng.below(REPLACEMENTS.len())];
        }
        // A change of a hex digit's case or of white space between JSON tokens changes no
        // signed byte; anything else must be refused.
        let same = normalized(&collateral).is_some_and(|v| Some(v) == normalized(TDX_COLLATERAL));
        if !same {
            assert!(
                verify_quote(TDX_QUOTE, &collateral, INSIDE_2025, &options).is_err(),
                "{}",
                String::from_utf8_lossy(&collateral)
            );
        }
    }
}

#[test]
fn the_options_default_to_up_to_date_only_and_no_debug() {
    let options = DcapOptions::default();
    assert_eq!(options.expected_tee, None);
    assert_eq!(
        options.accepted_tcb_statuses,
        BTreeSet::from([TcbStatus::UpToDate])
    );
    assert!(!options.allow_debug);
    assert_eq!(
        "configuration-and-sw-hardening-needed".parse::<TcbStatus>(),
        Ok(TcbStatus::ConfigurationAndSwHardeningNeeded)
    );
}
