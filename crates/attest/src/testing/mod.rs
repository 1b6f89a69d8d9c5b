//! Synthetic hardware evidence under test roots. **For tests only.**
//!
//! Genuine evidence cannot carry the report data a test chooses, so tests make evidence in each
//! platform's exact format, carrying their report data, signed under roots of their own, and
//! check it with the production verifiers unchanged, with only the roots different
//! ([`TestHardware::anchors`], a [`TrustAnchors::insecure_for_tests`]):
//!
//! - SEV-SNP ([`TestHardware::sev_snp_report`]): a version-3 Milan attestation report, 1184
//!   bytes, signed (ECDSA P-384, SHA-384) by a test VCEK whose certificate chains through a test
//!   ASK to a test ARK, both RSA-4096 with RSASSA-PSS as AMD's are. The chain and the VCEK's
//!   private key are fixed files made once by a script
//!   (`crates/attest/tests/keys/sev-snp/`, see its README): ring cannot make RSA keys and rcgen
//!   cannot sign with RSASSA-PSS. The VCEK carries AMD's TCB and hwID extensions for
//!   [`TEST_REPORTED_TCB`] and [`TEST_CHIP_ID`], which every report made here names.
//!   [`TestHardware::sev_snp_certificate_table`] is the certificate table a host hands the
//!   guest with it (what configfs-tsm's `auxblob` holds).
//! - AWS Nitro ([`TestHardware::nitro_document`]): a COSE_Sign1 attestation document as the
//!   Nitro Security Module makes it, signed by a P-384 leaf valid for three hours from its
//!   timestamp, under an intermediate and a root made (with rcgen) for each [`TestHardware`].
//! - Intel DCAP ([`TestHardware::tdx_quote`], [`TestHardware::sgx_quote`]): a TDX quote
//!   (version 4) or an SGX quote (version 3), signed by a test attestation key that a test QE
//!   report certifies, signed in turn by a test PCK whose certificate (with Intel's SGX
//!   extensions) chains through a test PCK CA to a test root ([`TEST_INTEL_ROOT_DER`]); and
//!   the collateral JSON for its TEE, signed under the same root and valid from 2025 to 2049.
//!   Keys, certificates, QE reports and collateral are fixed files made once by a script
//!   (`crates/attest/tests/keys/dcap/generate.py`); only the quote is made for each call.
//!
//! This module exists only in this crate's unit tests and with the `insecure-test-roots`
//! feature, which only the workspace's `[dev-dependencies]` turn on; it can never be in a
//! release build (see [`crate::anchors`]). Its functions panic when a fixture cannot be made:
//! that is a defect of the test, not a refusal of input.

use std::borrow::Cow;
use std::fmt::Display;

use coset::cbor::value::Value;
use coset::{CborSerializable as _, CoseSign1Builder, HeaderBuilder, iana};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P384_SHA384,
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::anchors::{AmdAnchor, TrustAnchors};
use crate::sev_snp::{self, AmdProduct};

mod dcap;

pub use dcap::{
    TEST_DCAP_VALID_FROM, TEST_DCAP_VALID_UNTIL, TEST_INTEL_ROOT_DER, TEST_PCK_CHAIN_PEM,
    TEST_SGX_ATTRIBUTES, TEST_SGX_COLLATERAL, TEST_SGX_ISV_PROD_ID, TEST_SGX_ISV_SVN,
    TEST_SGX_MRSIGNER, TEST_TD_ATTRIBUTES, TEST_TD_CONFIG_REGISTERS, TEST_TD_RTMRS,
    TEST_TDX_COLLATERAL, test_tdx_measurement,
};

/// The test AMD Root Key certificate (`ARK-Milan-TEST`), PEM. Not AMD's.
pub const TEST_ARK_PEM: &[u8] = include_bytes!("../../tests/keys/sev-snp/ark.pem");
/// The test AMD SEV Key certificate (`SEV-Milan-TEST`), PEM. Not AMD's.
pub const TEST_ASK_PEM: &[u8] = include_bytes!("../../tests/keys/sev-snp/ask.pem");
/// The test VCEK certificate, DER: what [`TestHardware::sev_snp_report`] returns beside each
/// report.
pub const TEST_VCEK_DER: &[u8] = include_bytes!("../../tests/keys/sev-snp/vcek.der");
/// The test VCEK's private key, PKCS#8 DER. Public on purpose: it is a test key.
const TEST_VCEK_KEY_PKCS8: &[u8] = include_bytes!("../../tests/keys/sev-snp/vcek-key.pk8");

/// The test chip's `CHIP_ID`: the bytes `c0 c1 … ff`, as the test VCEK's hwID says.
pub const TEST_CHIP_ID: [u8; 64] = {
    let mut id = [0u8; 64];
    let mut i = 0;
    while i < id.len() {
        id[i] = 0xC0 + i as u8;
        i += 1;
    }
    id
};
/// The test chip's TCB as a Milan `TCB_VERSION` (little-endian bytes): bootloader 4, TEE 0,
/// SNP 22, microcode 213, as the test VCEK's TCB extensions say.
pub const TEST_REPORTED_TCB: [u8; 8] = [4, 0, 0, 0, 0, 0, 22, 213];

// Report fields the verifier does not read (SEV-SNP firmware ABI, "ATTESTATION_REPORT
// Structure"); filled as firmware fills them.
const OFF_CURRENT_TCB: usize = 0x38;
const OFF_REPORT_ID: usize = 0x140;
const OFF_REPORT_ID_MA: usize = 0x160;
const OFF_CPUID_STEP: usize = 0x18A;
const OFF_COMMITTED_TCB: usize = 0x1E0;
const OFF_CURRENT_VERSION: usize = 0x1E8;
const OFF_COMMITTED_VERSION: usize = 0x1EC;
const OFF_LAUNCH_TCB: usize = 0x1F0;
/// `PLATFORM_INFO` bit 0: SMT enabled, as on most hosts.
const PLATFORM_INFO_SMT_EN: u64 = 1;
/// Firmware version 1.55, build 21 (build, minor, major, reserved).
const FIRMWARE_VERSION: [u8; 4] = [21, 55, 1, 0];
/// Milan: CPUID model 0x01, stepping 1 (EPYC 7003, B1).
const MILAN_MODEL: u8 = 0x01;
const MILAN_STEPPING: u8 = 0x01;

/// How long a test Nitro leaf certificate is valid from its document's timestamp: three hours,
/// as AWS's are.
const NITRO_LEAF_LIFETIME: time::Duration = time::Duration::hours(3);
/// The validity of the test Nitro root and intermediate.
const NITRO_CA_NOT_BEFORE: OffsetDateTime = datetime!(2020-01-01 0:00 UTC);
const NITRO_CA_NOT_AFTER: OffsetDateTime = datetime!(2049-12-31 23:59:59 UTC);

/// The value of a fixture step, or a panic naming it (a broken fixture is a test defect).
fn fixture<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("test fixture: {what}: {e}"))
}

/// Test hardware: a test AMD chip and a test Intel platform (fixed, see the module
/// documentation) and a test Nitro PKI (new for each value). Evidence it makes verifies only
/// against [`TestHardware::anchors`].
pub struct TestHardware {
    vcek_key: EcdsaKeyPair,
    /// The DCAP attestation key, which signs TDX and SGX quotes.
    dcap_key: EcdsaKeyPair,
    nitro: NitroTestCa,
    rng: SystemRandom,
}

impl std::fmt::Debug for TestHardware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHardware").finish_non_exhaustive()
    }
}

impl Default for TestHardware {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHardware {
    /// Loads the test VCEK key and DCAP attestation key and makes a test Nitro root and
    /// intermediate.
    ///
    /// # Panics
    /// If a fixture cannot be loaded or made (a defect of the test build).
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let vcek_key = fixture(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, TEST_VCEK_KEY_PKCS8, &rng),
            "test VCEK key",
        );
        let dcap_key = fixture(
            EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                dcap::ATTESTATION_KEY_PKCS8,
                &rng,
            ),
            "test DCAP attestation key",
        );
        Self {
            vcek_key,
            dcap_key,
            nitro: NitroTestCa::generate(),
            rng,
        }
    }

    /// The roots this test hardware's evidence chains to: the test AMD Milan ARK and ASK (no
    /// ASVK: there is no test VLEK), the test Intel root ([`TEST_INTEL_ROOT_DER`]) and this
    /// value's test Nitro root. **Not** [`TrustAnchors::pinned`]: the production verifiers
    /// (`verify_report`, `verify_document`, `verify_quote`) refuse everything made here.
    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors::insecure_for_tests(
            vec![AmdAnchor {
                product: AmdProduct::Milan,
                ark_pem: Cow::Borrowed(TEST_ARK_PEM),
                ask_pem: Cow::Borrowed(TEST_ASK_PEM),
                asvk_pem: None,
            }],
            TEST_INTEL_ROOT_DER.to_vec(),
            self.nitro.root_pem.clone().into_bytes(),
        )
    }

    /// An SEV-SNP attestation report (version 3, Milan, [`sev_snp::REPORT_LEN`] bytes) carrying
    /// `report_data`, `measurement` and the guest `policy`, requested at VMPL 0, naming the
    /// test chip ([`TEST_CHIP_ID`], [`TEST_REPORTED_TCB`]), signed by the test VCEK; and the
    /// test VCEK certificate (DER, [`TEST_VCEK_DER`]).
    ///
    /// # Panics
    /// If signing fails (the system random number generator failed).
    pub fn sev_snp_report(
        &self,
        report_data: &[u8; 64],
        measurement: &[u8; 48],
        policy: u64,
    ) -> (Vec<u8>, Vec<u8>) {
        self.sev_snp_report_at_vmpl(report_data, measurement, policy, 0)
    }

    /// [`TestHardware::sev_snp_report`] requested at VMPL `vmpl`.
    ///
    /// # Panics
    /// If signing fails (the system random number generator failed).
    pub fn sev_snp_report_at_vmpl(
        &self,
        report_data: &[u8; 64],
        measurement: &[u8; 48],
        policy: u64,
        vmpl: u32,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut report = vec![0u8; sev_snp::REPORT_LEN];
        let mut put = |offset: usize, bytes: &[u8]| {
            report[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        put(sev_snp::OFF_VERSION, &3u32.to_le_bytes());
        put(sev_snp::OFF_POLICY, &policy.to_le_bytes());
        put(sev_snp::OFF_VMPL, &vmpl.to_le_bytes());
        put(
            sev_snp::OFF_SIG_ALGO,
            &sev_snp::SIG_ALGO_ECDSA_P384_SHA384.to_le_bytes(),
        );
        put(OFF_CURRENT_TCB, &TEST_REPORTED_TCB);
        put(
            sev_snp::OFF_PLATFORM_INFO,
            &PLATFORM_INFO_SMT_EN.to_le_bytes(),
        );
        // KEY_INFO 0: signed by the VCEK, chip id not masked, no author key.
        put(sev_snp::OFF_KEY_INFO, &0u32.to_le_bytes());
        put(sev_snp::OFF_REPORT_DATA, report_data);
        put(sev_snp::OFF_MEASUREMENT, measurement);
        // A report id derived from the report data, so that two reports differ as real ones do;
        // no migration agent (REPORT_ID_MA all ones).
        put(OFF_REPORT_ID, &report_data[..32]);
        put(OFF_REPORT_ID_MA, &[0xFF; 32]);
        put(sev_snp::OFF_REPORTED_TCB, &TEST_REPORTED_TCB);
        put(sev_snp::OFF_CPUID_FAM, &[sev_snp::CPU_FAMILY_ZEN3_ZEN4]);
        put(sev_snp::OFF_CPUID_MOD, &[MILAN_MODEL]);
        put(OFF_CPUID_STEP, &[MILAN_STEPPING]);
        put(sev_snp::OFF_CHIP_ID, &TEST_CHIP_ID);
        put(OFF_COMMITTED_TCB, &TEST_REPORTED_TCB);
        put(OFF_CURRENT_VERSION, &FIRMWARE_VERSION);
        put(OFF_COMMITTED_VERSION, &FIRMWARE_VERSION);
        put(OFF_LAUNCH_TCB, &TEST_REPORTED_TCB);

        // ring signs as big-endian r || s; the report holds each little-endian, zero-extended
        // to 72 bytes (the rest of the signature field stays zero).
        let signature = fixture(
            self.vcek_key
                .sign(&self.rng, &report[..sev_snp::SIGNED_LEN]),
            "signing the report",
        );
        let (r, s) = signature.as_ref().split_at(sev_snp::P384_SCALAR_LEN);
        for (component, field) in [(r, 0), (s, sev_snp::SIG_COMPONENT_LEN)] {
            let start = sev_snp::OFF_SIGNATURE + field;
            for (i, byte) in component.iter().rev().enumerate() {
                report[start + i] = *byte;
            }
        }
        (report, TEST_VCEK_DER.to_vec())
    }

    /// The SEV-SNP certificate table a host hands its guest beside a report (GHCB
    /// specification, "SNP Extended Guest Request"; what configfs-tsm's `auxblob` holds): the
    /// test VCEK, ASK and ARK (DER), each named by its GUID, then the all-zero terminating
    /// entry, then the certificates.
    pub fn sev_snp_certificate_table(&self) -> Vec<u8> {
        let der = |pem: &[u8], what: &str| {
            fixture(crate::pem::certificate_from_pem(pem, what), what).to_vec()
        };
        certificate_table(&[
            (crate::tsm::SEV_CERT_GUID_VCEK, TEST_VCEK_DER.to_vec()),
            (crate::tsm::SEV_CERT_GUID_ASK, der(TEST_ASK_PEM, "test ASK")),
            (crate::tsm::SEV_CERT_GUID_ARK, der(TEST_ARK_PEM, "test ARK")),
        ])
    }

    /// An AWS Nitro attestation document (untagged COSE_Sign1, ES384) as the Nitro Security
    /// Module makes it, with `user_data`, PCR0 `pcr0` (PCR1 and PCR2 fixed, the other PCRs of
    /// the 16 zero) and timestamp `at`, signed by a new leaf valid from `at` for three hours,
    /// under this value's test intermediate and root. With `debug`, every PCR is zero (`pcr0`
    /// is ignored), as in a document from an enclave started in debug mode.
    ///
    /// # Panics
    /// If `at` is before 1970 or a fixture cannot be made.
    pub fn nitro_document(
        &self,
        user_data: &[u8],
        pcr0: &[u8; 48],
        debug: bool,
        at: OffsetDateTime,
    ) -> Vec<u8> {
        let leaf = self.nitro.leaf(Some((
            at - time::Duration::minutes(1),
            at + NITRO_LEAF_LIFETIME,
        )));
        let timestamp_ms = fixture(
            u64::try_from(at.unix_timestamp_nanos() / 1_000_000),
            "timestamp before 1970",
        );
        let pcr0 = if debug { [0; 48] } else { *pcr0 };
        leaf.document(&self.nitro.bundle, pcr0, Some(user_data), timestamp_ms)
    }
}

/// A certificate table (GHCB specification): 24-byte entries (GUID, offset, length, both
/// little-endian `u32`, the offset from the table's start), an all-zero entry, the data.
pub(crate) fn certificate_table(entries: &[([u8; 16], Vec<u8>)]) -> Vec<u8> {
    const ENTRY_LEN: usize = 24;
    let mut offset = (entries.len() + 1) * ENTRY_LEN;
    let mut table = Vec::new();
    let mut data = Vec::new();
    for (guid, bytes) in entries {
        table.extend_from_slice(guid);
        table.extend_from_slice(&fixture(u32::try_from(offset), "table offset").to_le_bytes());
        table.extend_from_slice(&fixture(u32::try_from(bytes.len()), "entry length").to_le_bytes());
        data.extend_from_slice(bytes);
        offset += bytes.len();
    }
    table.extend_from_slice(&[0; ENTRY_LEN]);
    table.extend_from_slice(&data);
    table
}

/// A test Nitro PKI: a root and one intermediate (P-384, rcgen), valid 2020 to 2049.
pub(crate) struct NitroTestCa {
    intermediate_params: CertificateParams,
    intermediate_key: KeyPair,
    /// The root, PEM: what test anchors pin.
    pub(crate) root_pem: String,
    /// The `cabundle` of a document: the root and the intermediate, DER.
    pub(crate) bundle: Vec<Vec<u8>>,
}

/// A test Nitro leaf certificate (DER) and its key.
pub(crate) struct NitroTestLeaf {
    pub(crate) der: Vec<u8>,
    pub(crate) key: EcdsaKeyPair,
}

fn p384_key() -> KeyPair {
    fixture(KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384), "P-384 key")
}

fn named_params(common_name: &str) -> CertificateParams {
    let mut params = fixture(
        CertificateParams::new(Vec::<String>::new()),
        "certificate parameters",
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "TEST ONLY - not AWS");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = NITRO_CA_NOT_BEFORE;
    params.not_after = NITRO_CA_NOT_AFTER;
    params
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = named_params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl NitroTestCa {
    /// A new root (`Covenant test root (not AWS)`) and intermediate.
    pub(crate) fn generate() -> Self {
        let root_key = p384_key();
        let root_params = ca_params("Covenant test root (not AWS)");
        let root = fixture(root_params.self_signed(&root_key), "test root");
        let intermediate_key = p384_key();
        let intermediate_params = ca_params("Covenant test intermediate (not AWS)");
        let intermediate = fixture(
            intermediate_params.signed_by(
                &intermediate_key,
                &Issuer::from_params(&root_params, &root_key),
            ),
            "test intermediate",
        );
        Self {
            root_pem: root.pem(),
            bundle: vec![root.der().to_vec(), intermediate.der().to_vec()],
            intermediate_params,
            intermediate_key,
        }
    }

    /// A new leaf under the intermediate, valid `validity` (default: as the CA, 2020 to 2049).
    pub(crate) fn leaf(&self, validity: Option<(OffsetDateTime, OffsetDateTime)>) -> NitroTestLeaf {
        let key = p384_key();
        let mut params = named_params("Covenant test enclave (not AWS)");
        if let Some((not_before, not_after)) = validity {
            params.not_before = not_before;
            params.not_after = not_after;
        }
        let issuer = Issuer::from_params(&self.intermediate_params, &self.intermediate_key);
        let cert = fixture(params.signed_by(&key, &issuer), "test leaf");
        let signer = fixture(
            EcdsaKeyPair::from_pkcs8(
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                &key.serialize_der(),
                &SystemRandom::new(),
            ),
            "test leaf key",
        );
        NitroTestLeaf {
            der: cert.der().to_vec(),
            key: signer,
        }
    }
}

impl NitroTestLeaf {
    /// An ES384 signature (fixed-length `r || s`, as COSE wants) over `data`.
    pub(crate) fn sign(&self, data: &[u8]) -> Vec<u8> {
        fixture(self.key.sign(&SystemRandom::new(), data), "ES384 signature")
            .as_ref()
            .to_vec()
    }

    /// A document with `bundle` as its `cabundle`, PCR0 `pcr0` (PCR1 and PCR2 fixed unless
    /// PCR0 is zero, when every PCR is zero as in debug mode; PCR3 to PCR15 zero), `user_data`
    /// and `timestamp_ms`, signed by this leaf.
    pub(crate) fn document(
        &self,
        bundle: &[Vec<u8>],
        pcr0: [u8; 48],
        user_data: Option<&[u8]>,
        timestamp_ms: u64,
    ) -> Vec<u8> {
        let debug = pcr0 == [0; 48];
        let pcrs = (0u8..16)
            .map(|index| {
                let value = match index {
                    0 => pcr0.to_vec(),
                    1 | 2 if !debug => vec![index; 48],
                    _ => vec![0; 48],
                };
                (Value::Integer(index.into()), Value::Bytes(value))
            })
            .collect();
        let text = |s: &str| Value::Text(s.into());
        let payload = Value::Map(vec![
            (text("module_id"), text("i-test-enc0")),
            (text("digest"), text("SHA384")),
            (text("timestamp"), Value::Integer(timestamp_ms.into())),
            (text("pcrs"), Value::Map(pcrs)),
            (text("certificate"), Value::Bytes(self.der.clone())),
            (
                text("cabundle"),
                Value::Array(bundle.iter().cloned().map(Value::Bytes).collect()),
            ),
            (text("public_key"), Value::Null),
            (
                text("user_data"),
                user_data.map_or(Value::Null, |d| Value::Bytes(d.to_vec())),
            ),
            (text("nonce"), Value::Null),
        ]);
        let mut payload_bytes = Vec::new();
        fixture(
            coset::cbor::ser::into_writer(&payload, &mut payload_bytes),
            "CBOR payload",
        );
        fixture(
            CoseSign1Builder::new()
                .protected(
                    HeaderBuilder::new()
                        .algorithm(iana::Algorithm::ES384)
                        .build(),
                )
                .payload(payload_bytes)
                .create_signature(b"", |data| self.sign(data))
                .build()
                .to_vec(),
            "COSE_Sign1",
        )
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::nitro::{NitroError, verify_document, verify_document_with};
    use crate::sev_snp::{
        EndorsementKind, SevSnpError, SevSnpOptions, verify_report, verify_report_with,
    };

    const AT: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    #[test]
    fn the_test_anchors_are_not_the_pinned_ones() {
        let anchors = TestHardware::new().anchors();
        assert!(!anchors.is_pinned());
        assert_ne!(anchors, TrustAnchors::pinned());
        assert_eq!(anchors.intel_sgx_root_der(), TEST_INTEL_ROOT_DER);
        assert_ne!(
            anchors.intel_sgx_root_der(),
            crate::anchors::INTEL_SGX_ROOT_CA_DER
        );
    }

    #[test]
    fn a_synthetic_sev_snp_report_verifies_under_the_test_roots_only() {
        let hw = TestHardware::new();
        let report_data: [u8; 64] = std::array::from_fn(|i| i as u8);
        let measurement = [0x5A; 48];
        let policy = 0x3_0000;
        let (report, vcek) = hw.sev_snp_report(&report_data, &measurement, policy);
        assert_eq!(report.len(), sev_snp::REPORT_LEN);
        assert_eq!(vcek, TEST_VCEK_DER);
        let verified =
            verify_report_with(&hw.anchors(), &report, &vcek, AT, &SevSnpOptions::default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verified.report_data(), &report_data);
        assert_eq!(
            verified.measurement(),
            crate::Measurement::sha384(measurement)
        );
        assert_eq!(verified.product, AmdProduct::Milan);
        assert_eq!(verified.endorsement, EndorsementKind::Vcek);
        assert_eq!(verified.report.policy, policy);
        assert_eq!(verified.report.chip_id, TEST_CHIP_ID);
        assert_eq!(verified.report.reported_tcb, TEST_REPORTED_TCB);
        // Valid 2025 to 2049, as the test chain is.
        for at in [
            datetime!(2024-12-31 23:59 UTC),
            datetime!(2050-01-01 0:00 UTC),
        ] {
            assert!(matches!(
                verify_report_with(&hw.anchors(), &report, &vcek, at, &SevSnpOptions::default()),
                Err(SevSnpError::CertificateNotValid { .. })
            ));
        }
        // The pinned verifier does not know the test ASK.
        let refused = verify_report(&report, &vcek, AT, &SevSnpOptions::default());
        assert!(
            matches!(
                &refused,
                Err(SevSnpError::UnknownIssuer { kind: EndorsementKind::Vcek, issuer: "ASK", name })
                    if name == "SEV-Milan-TEST"
            ),
            "{refused:?}"
        );
        // Any change to the signed part is refused: the signature really covers it.
        let mut changed = report.clone();
        changed[sev_snp::OFF_REPORT_DATA] ^= 1;
        assert_eq!(
            verify_report_with(
                &hw.anchors(),
                &changed,
                &vcek,
                AT,
                &SevSnpOptions::default()
            )
            .err(),
            Some(SevSnpError::BadSignature(EndorsementKind::Vcek))
        );
    }

    #[test]
    fn the_guest_policy_of_a_synthetic_report_is_checked() {
        let hw = TestHardware::new();
        let debug_policy = 0x3_0000 | 1 << 19;
        let (report, vcek) = hw.sev_snp_report(&[1; 64], &[2; 48], debug_policy);
        assert_eq!(
            verify_report_with(&hw.anchors(), &report, &vcek, AT, &SevSnpOptions::default()).err(),
            Some(SevSnpError::DebugNotAllowed(debug_policy))
        );
    }

    #[test]
    fn the_certificate_table_holds_the_test_chain() {
        let table = TestHardware::new().sev_snp_certificate_table();
        let entries = crate::tsm::parse_certificate_table(&table).unwrap_or_else(|e| panic!("{e}"));
        let guids: Vec<_> = entries.iter().map(|e| e.guid).collect();
        assert_eq!(
            guids,
            [
                crate::tsm::SEV_CERT_GUID_VCEK,
                crate::tsm::SEV_CERT_GUID_ASK,
                crate::tsm::SEV_CERT_GUID_ARK
            ]
        );
        assert_eq!(entries[0].data, TEST_VCEK_DER);
    }

    #[test]
    fn a_synthetic_nitro_document_verifies_under_the_test_root_only() {
        let hw = TestHardware::new();
        let user_data = [0x42; 64];
        let pcr0 = [0x17; 48];
        let document = hw.nitro_document(&user_data, &pcr0, false, AT);
        let claims = verify_document_with(&hw.anchors(), &document, AT, false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.user_data.as_deref(), Some(user_data.as_slice()));
        assert_eq!(claims.pcr0(), pcr0);
        assert_eq!(claims.measurement(), Some(crate::Measurement::sha384(pcr0)));
        assert_eq!(claims.timestamp(), Some(AT));
        assert!(!claims.debug);
        assert_eq!(claims.check_report_data(&user_data), Ok(()));
        // The leaf lives three hours from the timestamp, as AWS's do.
        assert!(matches!(
            verify_document_with(&hw.anchors(), &document, AT + time::Duration::hours(4), false),
            Err(NitroError::CertificateNotValid { which, .. }) if which == "the leaf certificate"
        ));
        // The pinned verifier refuses the test root, naming it.
        let refused = verify_document(&document, AT, false).err();
        assert!(
            matches!(&refused, Some(NitroError::UntrustedRoot { subject, .. }) if subject.contains("test root")),
            "{refused:?}"
        );
        // Another test hardware's root is not this one's.
        assert!(matches!(
            verify_document_with(&TestHardware::new().anchors(), &document, AT, false),
            Err(NitroError::UntrustedRoot { .. })
        ));
    }

    #[test]
    fn a_synthetic_debug_document_is_refused_unless_debug_is_allowed() {
        let hw = TestHardware::new();
        let document = hw.nitro_document(&[1; 64], &[0x17; 48], true, AT);
        assert_eq!(
            verify_document_with(&hw.anchors(), &document, AT, false).err(),
            Some(NitroError::DebugMode)
        );
        let claims = verify_document_with(&hw.anchors(), &document, AT, true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(claims.debug);
        assert!(claims.pcrs.values().all(|pcr| pcr.iter().all(|&b| b == 0)));
    }
}
