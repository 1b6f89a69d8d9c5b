//! Synthetic Intel DCAP quotes under a test root: TDX quotes (version 4, a TDX 1.0 TD report)
//! and SGX quotes (version 3, an enclave report), in the exact layout [`crate::dcap`] reads,
//! each signed afresh by the fixed test attestation key, with the fixed QE report that
//! certifies that key and the test PCK chain; and the collateral JSON for each TEE.
//!
//! The keys, certificates, QE reports and collateral are fixed files made by one script,
//! `crates/attest/tests/keys/dcap/generate.py` (its documentation says what each holds): ring
//! cannot sign certificates with Intel's SGX extensions, and the collateral is JSON signed over
//! its exact text. They are valid from [`TEST_DCAP_VALID_FROM`] to [`TEST_DCAP_VALID_UNTIL`]
//! (the root to 2050), so tests can verify quotes at the current time for years. The platform
//! is the one the test PCK certificate names (FMSPC `C0FFEE000000`, PCE id `0000`), and the
//! collateral's only TCB level is that platform's, `UpToDate`.

use ring::signature::KeyPair as _;
use time::OffsetDateTime;
use time::macros::datetime;

use super::{TestHardware, fixture};

/// The test Intel root (`Covenant Test SGX Root CA`), DER: what [`TestHardware::anchors`] pins
/// instead of the Intel SGX Root CA. Not Intel's.
pub const TEST_INTEL_ROOT_DER: &[u8] = include_bytes!("../../tests/keys/dcap/root-ca.der");
/// The test PCK certificate chain (PCK certificate, PCK CA, root), PEM: what every quote made
/// here carries (certification data type 5).
pub const TEST_PCK_CHAIN_PEM: &[u8] = include_bytes!("../../tests/keys/dcap/pck-chain.pem");
/// The collateral (dcap-qvl's `QuoteCollateralV3` JSON) for TDX quotes made here: a `TDX` TCB
/// info and a `TD_QE` identity.
pub const TEST_TDX_COLLATERAL: &[u8] = include_bytes!("../../tests/keys/dcap/collateral-tdx.json");
/// The collateral for SGX quotes made here: an `SGX` TCB info and a `QE` identity.
pub const TEST_SGX_COLLATERAL: &[u8] = include_bytes!("../../tests/keys/dcap/collateral-sgx.json");
/// The test attestation key, PKCS#8 DER (ECDSA P-256). Not secret: it is a test key.
pub(super) const ATTESTATION_KEY_PKCS8: &[u8] =
    include_bytes!("../../tests/keys/dcap/attestation-key.pk8");
const QE_AUTH_DATA: &[u8] = include_bytes!("../../tests/keys/dcap/qe-auth-data.bin");
const TDX_QE_REPORT: &[u8] = include_bytes!("../../tests/keys/dcap/qe-report-tdx.bin");
const TDX_QE_REPORT_SIGNATURE: &[u8] =
    include_bytes!("../../tests/keys/dcap/qe-report-signature-tdx.bin");
const SGX_QE_REPORT: &[u8] = include_bytes!("../../tests/keys/dcap/qe-report-sgx.bin");
const SGX_QE_REPORT_SIGNATURE: &[u8] =
    include_bytes!("../../tests/keys/dcap/qe-report-signature-sgx.bin");

/// When the test collateral and certificates (but the root) become valid: its `issueDate`.
pub const TEST_DCAP_VALID_FROM: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
/// When they stop being valid: the collateral's `nextUpdate`, the CRLs' and certificates' end.
pub const TEST_DCAP_VALID_UNTIL: OffsetDateTime = datetime!(2049-12-31 0:00 UTC);

/// TD_ATTRIBUTES of a TD made here: SEPT_VE_DISABLE (bit 28) only, as a production TD has.
/// [`TestHardware::tdx_quote`] adds DEBUG (bit 0) for a debug TD.
pub const TEST_TD_ATTRIBUTES: [u8; 8] = [0, 0, 0, 0x10, 0, 0, 0, 0];
/// TD_ATTRIBUTES bit 0: DEBUG.
const TD_ATTRIBUTES_DEBUG: u8 = 1;
/// MRCONFIGID, MROWNER and MROWNERCONFIG of a TD made here: distinct and not zero, so that a
/// test notices if two of them were swapped anywhere they are read.
pub const TEST_TD_CONFIG_REGISTERS: [[u8; 48]; 3] = [[0xc1; 48], [0xc2; 48], [0xc3; 48]];
/// RTMR0 to RTMR3 of a TD made here: RTMRn is all n.
pub const TEST_TD_RTMRS: [[u8; 48]; 4] = [[0; 48], [1; 48], [2; 48], [3; 48]];

/// Covenant's measurement ([`crate::dcap::tdx_measurement`]) of a TD made here with `mrtd`.
pub fn test_tdx_measurement(mrtd: &[u8; 48]) -> crate::Measurement {
    let [config_id, owner, owner_config] = &TEST_TD_CONFIG_REGISTERS;
    crate::dcap::tdx_measurement(mrtd, config_id, owner, owner_config, &TEST_TD_RTMRS)
}
/// The MRSIGNER of every SGX enclave made here.
pub const TEST_SGX_MRSIGNER: [u8; 32] = [0x3c; 32];
/// The ISVPRODID of every SGX enclave made here.
pub const TEST_SGX_ISV_PROD_ID: u16 = 7;
/// The ISVSVN of every SGX enclave made here.
pub const TEST_SGX_ISV_SVN: u16 = 1;
/// The enclave's ATTRIBUTES: flags INIT (bit 0) and MODE64BIT (bit 2), XFRM x87 and SSE.
/// [`TestHardware::sgx_quote`] adds DEBUG (flags bit 1) for a debug enclave.
pub const TEST_SGX_ATTRIBUTES: [u8; 16] = [0x05, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0];
/// ATTRIBUTES.FLAGS bit 1: DEBUG.
const SGX_ATTRIBUTES_DEBUG: u8 = 1 << 1;

/// Intel's QE vendor id, which the verifier requires in the header.
const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9A, 0x72, 0x33, 0xF7, 0x9C, 0x4C, 0xA9, 0x94, 0x0A, 0x0D, 0xB3, 0x95, 0x7F, 0x06, 0x07,
];
/// The header's attestation key type: ECDSA P-256.
const ATTESTATION_KEY_ECDSA_P256: u16 = 2;
/// The header's QE SVN and PCE SVN: the test QE's ISVSVN and the test PCK's PCESVN.
const QE_SVN: u16 = 4;
const PCE_SVN: u16 = 11;
/// Certification data type 5: the PCK certificate chain.
const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Certification data type 6: the QE report certification data (quote version 4).
const CERT_DATA_QE_REPORT: u16 = 6;
/// The lengths of a quote header, a TDX 1.0 TD report and an SGX enclave report.
const HEADER_LEN: usize = 48;
const TD_REPORT_LEN: usize = 584;
const ENCLAVE_REPORT_LEN: usize = 384;

/// A little-endian length field of a quote.
fn len_u16(bytes: &[u8]) -> [u8; 2] {
    fixture(u16::try_from(bytes.len()), "a 16-bit length").to_le_bytes()
}

fn len_u32(bytes: &[u8]) -> [u8; 4] {
    fixture(u32::try_from(bytes.len()), "a 32-bit length").to_le_bytes()
}

/// A quote header: `version`, ECDSA P-256, `tee_type`, the QE and PCE SVNs, Intel's QE vendor
/// id, no user data.
fn header(version: u16, tee_type: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend(version.to_le_bytes());
    header.extend(ATTESTATION_KEY_ECDSA_P256.to_le_bytes());
    header.extend(tee_type.to_le_bytes());
    header.extend(QE_SVN.to_le_bytes());
    header.extend(PCE_SVN.to_le_bytes());
    header.extend(INTEL_QE_VENDOR_ID);
    header.extend([0u8; 20]);
    header
}

/// The QE report certification data: the QE report, its signature by the PCK, the QE
/// authentication data and the PCK chain (type 5). In a version-3 quote it follows the
/// attestation key directly; in a version-4 quote it is the body of certification data type 6.
fn qe_certification(qe_report: &[u8], qe_report_signature: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend(qe_report);
    data.extend(qe_report_signature);
    data.extend(len_u16(QE_AUTH_DATA));
    data.extend(QE_AUTH_DATA);
    data.extend(CERT_DATA_PCK_CHAIN.to_le_bytes());
    data.extend(len_u32(TEST_PCK_CHAIN_PEM));
    data.extend(TEST_PCK_CHAIN_PEM);
    data
}

impl TestHardware {
    /// A TDX quote (version 4, a TDX 1.0 TD report) carrying `report_data` and MRTD `mrtd`,
    /// TD_ATTRIBUTES [`TEST_TD_ATTRIBUTES`] with DEBUG set if `debug`, signed by the test
    /// attestation key with the test QE report and PCK chain; and the TDX collateral JSON
    /// ([`TEST_TDX_COLLATERAL`]). It verifies against [`TestHardware::anchors`] from
    /// [`TEST_DCAP_VALID_FROM`] to [`TEST_DCAP_VALID_UNTIL`], with status `UpToDate`.
    ///
    /// # Panics
    /// If signing fails (the system random number generator failed).
    pub fn tdx_quote(
        &self,
        report_data: &[u8; 64],
        mrtd: &[u8; 48],
        debug: bool,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut attributes = TEST_TD_ATTRIBUTES;
        if debug {
            attributes[0] |= TD_ATTRIBUTES_DEBUG;
        }
        self.tdx_quote_with_attributes(report_data, mrtd, attributes)
    }

    /// [`TestHardware::tdx_quote`] with the TD_ATTRIBUTES `td_attributes` exactly (to test the
    /// verifier's refusal of migratable TDs, reserved bits and the like).
    ///
    /// # Panics
    /// If signing fails.
    pub fn tdx_quote_with_attributes(
        &self,
        report_data: &[u8; 64],
        mrtd: &[u8; 48],
        td_attributes: [u8; 8],
    ) -> (Vec<u8>, Vec<u8>) {
        // TD report (TDX 1.0): TEE_TCB_SVN (zero, as the TCB info's only level), MRSEAM,
        // MRSIGNERSEAM and SEAMATTRIBUTES (zero, as the TCB info's TDX module), TDATTRIBUTES,
        // XFAM, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3 (RTMRn all n), REPORTDATA.
        let mut body = Vec::with_capacity(TD_REPORT_LEN);
        body.extend([0u8; 16]);
        body.extend([0x5e; 48]);
        body.extend([0u8; 48]);
        body.extend([0u8; 8]);
        body.extend(td_attributes);
        body.extend([0xe7, 0x02, 0x06, 0, 0, 0, 0, 0]);
        body.extend(mrtd);
        for register in TEST_TD_CONFIG_REGISTERS.iter().chain(&TEST_TD_RTMRS) {
            body.extend(register);
        }
        body.extend(report_data);
        assert_eq!(body.len(), TD_REPORT_LEN);

        // Version 4: the signature, the attestation key, then certification data of type 6
        // holding the QE report certification data.
        let qe = qe_certification(TDX_QE_REPORT, TDX_QE_REPORT_SIGNATURE);
        let mut certification = Vec::new();
        certification.extend(CERT_DATA_QE_REPORT.to_le_bytes());
        certification.extend(len_u32(&qe));
        certification.extend(qe);
        let quote = self.signed_quote(header(4, 0x81), &body, &certification);
        (quote, TEST_TDX_COLLATERAL.to_vec())
    }

    /// An SGX quote (version 3) of an enclave with MRENCLAVE `mrenclave` carrying
    /// `report_data`, signed by [`TEST_SGX_MRSIGNER`] as product [`TEST_SGX_ISV_PROD_ID`]
    /// version [`TEST_SGX_ISV_SVN`], ATTRIBUTES [`TEST_SGX_ATTRIBUTES`] with DEBUG set if
    /// `debug`; signed by the test attestation key with the test SGX QE report and PCK chain;
    /// and the SGX collateral JSON ([`TEST_SGX_COLLATERAL`]). It verifies against
    /// [`TestHardware::anchors`] from [`TEST_DCAP_VALID_FROM`] to [`TEST_DCAP_VALID_UNTIL`],
    /// with status `UpToDate`.
    ///
    /// # Panics
    /// If signing fails.
    pub fn sgx_quote(
        &self,
        report_data: &[u8; 64],
        mrenclave: &[u8; 32],
        debug: bool,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut attributes = TEST_SGX_ATTRIBUTES;
        if debug {
            attributes[0] |= SGX_ATTRIBUTES_DEBUG;
        }
        // Enclave report: CPUSVN (the test platform's, all 2), MISCSELECT, reserved,
        // ATTRIBUTES (at 48), MRENCLAVE (64), reserved, MRSIGNER (128), reserved, ISVPRODID
        // (256), ISVSVN (258), reserved, REPORTDATA (320).
        let mut body = vec![0u8; ENCLAVE_REPORT_LEN];
        let mut put = |offset: usize, bytes: &[u8]| {
            body[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(0, &[2; 16]);
        put(48, &attributes);
        put(64, mrenclave);
        put(128, &TEST_SGX_MRSIGNER);
        put(256, &TEST_SGX_ISV_PROD_ID.to_le_bytes());
        put(258, &TEST_SGX_ISV_SVN.to_le_bytes());
        put(320, report_data);

        // Version 3: the signature, the attestation key, then the QE report certification data.
        let certification = qe_certification(SGX_QE_REPORT, SGX_QE_REPORT_SIGNATURE);
        let quote = self.signed_quote(header(3, 0), &body, &certification);
        (quote, TEST_SGX_COLLATERAL.to_vec())
    }

    /// `header || body`, then the authentication data: its length, the attestation key's
    /// signature over `header || body`, the key (x || y), and `certification`.
    fn signed_quote(&self, header: Vec<u8>, body: &[u8], certification: &[u8]) -> Vec<u8> {
        let mut quote = header;
        quote.extend(body);
        let signature = fixture(self.dcap_key.sign(&self.rng, &quote), "signing the quote");
        let mut auth = Vec::new();
        auth.extend(signature.as_ref());
        // The public key without its SEC 1 prefix (0x04).
        auth.extend(&self.dcap_key.public_key().as_ref()[1..]);
        auth.extend(certification);
        quote.extend(len_u32(&auth));
        quote.extend(auth);
        quote
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcap::{DcapOptions, DcapTee, TcbStatus, parse_quote, verify_quote_with};

    const AT: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    #[test]
    fn synthetic_tdx_and_sgx_quotes_verify_under_the_test_anchors() {
        let hw = TestHardware::new();
        let anchors = hw.anchors();
        let report_data: [u8; 64] = std::array::from_fn(|i| i as u8);
        let (quote, collateral) = hw.tdx_quote(&report_data, &[0x4d; 48], false);
        let verified =
            verify_quote_with(&anchors, &quote, &collateral, AT, &DcapOptions::default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (verified.tee, verified.quote_version, verified.tcb_status),
            (DcapTee::Tdx, 4, TcbStatus::UpToDate)
        );
        assert_eq!(verified.report_data, report_data);
        assert_eq!(verified.tdx.as_ref().map(|td| td.mrtd), Some([0x4d; 48]));
        assert_eq!(verified.measurement(), test_tdx_measurement(&[0x4d; 48]));

        let (quote, collateral) = hw.sgx_quote(&report_data, &[0x6e; 32], false);
        let verified =
            verify_quote_with(&anchors, &quote, &collateral, AT, &DcapOptions::default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (verified.tee, verified.quote_version, verified.tcb_status),
            (DcapTee::Sgx, 3, TcbStatus::UpToDate)
        );
        assert_eq!(verified.report_data, report_data);
        assert_eq!(
            verified.measurement(),
            crate::Measurement::sha256([0x6e; 32])
        );
        let sgx = verified.sgx.unwrap_or_else(|| panic!("SGX claims"));
        assert_eq!(
            (sgx.mrsigner, sgx.isv_prod_id, sgx.isv_svn),
            (TEST_SGX_MRSIGNER, TEST_SGX_ISV_PROD_ID, TEST_SGX_ISV_SVN)
        );
    }

    #[test]
    fn the_collateral_cache_key_names_each_tee_and_the_test_platform() {
        let hw = TestHardware::new();
        let (tdx, _) = hw.tdx_quote(&[1; 64], &[2; 48], false);
        let (sgx, _) = hw.sgx_quote(&[1; 64], &[2; 32], false);
        assert_eq!(
            crate::dcap::collateral_cache_key(&tdx).as_deref(),
            Some("dcap:TDX:C0FFEE000000:0000:processor")
        );
        assert_eq!(
            crate::dcap::collateral_cache_key(&sgx).as_deref(),
            Some("dcap:SGX:C0FFEE000000:0000:processor")
        );
    }

    #[test]
    fn the_debug_flag_sets_each_tees_debug_bit() {
        let hw = TestHardware::new();
        for debug in [false, true] {
            let (tdx, _) = hw.tdx_quote(&[1; 64], &[2; 48], debug);
            let (sgx, _) = hw.sgx_quote(&[1; 64], &[2; 32], debug);
            for quote in [tdx, sgx] {
                let summary = parse_quote(&quote).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(summary.debug, debug);
            }
        }
    }
}
