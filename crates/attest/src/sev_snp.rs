//! AMD SEV-SNP: the verifier of an attestation report (SEV-SNP firmware ABI, `MSG_REPORT_RSP`).
//!
//! A report is 1184 bytes written and signed by the AMD Secure Processor of one chip. It is
//! signed (ECDSA P-384, SHA-384) by a **VCEK**, a key derived from the chip's secret and its TCB
//! (firmware versions), or by a **VLEK**, a key AMD provisions to a cloud provider. The VCEK is
//! certified by the product's **ASK**, the VLEK by its **ASVK**, both by the product's **ARK**
//! (RSA-4096, RSASSA-PSS with SHA-384). The ARKs, ASKs and the ASVK are pinned as bytes
//! compiled in ([`TrustAnchors::pinned`], from `crates/attest/roots/`, provenance in
//! `roots/PROVENANCE-amd.md`); a root or intermediate that arrives with the evidence is never
//! trusted. The endorsement certificate (VCEK or VLEK) comes from outside (the host, AMD's key
//! distribution service) and is trusted only as far as its chain to a pinned ARK proves.
//!
//! [`verify_report`] checks against the pinned roots; [`verify_report_with`] runs the same
//! checks against the roots of a [`TrustAnchors`] (tests use it with test roots, to check
//! synthetic reports that carry report data of their choosing: `crate::testing`). Both check,
//! in order, each failure with its own [`SevSnpError`]:
//!
//! 1. the report: exactly [`REPORT_LEN`] bytes, version 2 or 3, signature algorithm ECDSA
//!    P-384 with SHA-384, the signing-key field naming a VCEK or a VLEK;
//! 2. the endorsement: at most [`MAX_ENDORSEMENT_BYTES`], DER or PEM X.509, subject `SEV-VCEK`
//!    or `SEV-VLEK` as the report's signing-key field says, issued by a pinned ASK (VCEK) or
//!    ASVK (VLEK) whose ARK is pinned: each signature in ARK → ASK/ASVK → VCEK/VLEK verified
//!    (RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48), each certificate valid at the verification
//!    time, which is a parameter;
//! 3. the report's signature over its first [`SIGNED_LEN`] bytes, with the endorsement's P-384
//!    key; the unsigned rest of the signature field must be zero, so that no byte of a report
//!    can change without it being refused;
//! 4. the endorsement's TCB extensions (bootloader, TEE, SNP, microcode; FMC on Turin) equal the
//!    report's `REPORTED_TCB`, and a VCEK's hwID equals the report's `CHIP_ID` (as Confidential
//!    Containers' trustee checks); a version-3 report's CPU family matches the product;
//! 5. the guest policy: debugging and a migration agent refused unless
//!    [`SevSnpOptions`] allows them; the VMPL, if the caller requires one.
//!
//! What it yields ([`VerifiedSevSnpReport`]): the launch measurement (48 bytes), `REPORT_DATA`
//! (64 bytes), `HOST_DATA`, the policy, VMPL, TCB, chip id and which product and key signed.
//! It does not decide whether the measurement is acceptable or what the report data must be:
//! the caller compares them with its policy and its binding.
//!
//! The parsing and checks are written here with `ring` and `x509-parser` (which the crate
//! already uses) rather than with the `sev` crate: see `docs/attestation.md`.

use ring::signature::{ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384, UnparsedPublicKey};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_NIST_HASH_SHA384, Oid};
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::time::ASN1Time;

use crate::Measurement;
use crate::anchors::TrustAnchors;

/// The length of an attestation report, in bytes (ABI spec, table "ATTESTATION_REPORT").
pub const REPORT_LEN: usize = 1184;
/// The signed part of a report: bytes `0x000..0x2A0`; the signature follows.
pub const SIGNED_LEN: usize = 0x2A0;
/// The oldest report version accepted. Version 1 predates the fields the checks rely on.
pub const MIN_REPORT_VERSION: u32 = 2;
/// The newest report version accepted: versions whose layout this parser has been checked
/// against real reports. A newer version may move fields; it is refused rather than misread.
pub const MAX_REPORT_VERSION: u32 = 3;
/// The largest endorsement (VCEK/VLEK certificate, DER or PEM) read, in bytes. Real ones are
/// about 1.4 KB (DER); the bound stops a hostile host from making the verifier parse megabytes.
pub const MAX_ENDORSEMENT_BYTES: usize = 16 * 1024;

/// `SIGNATURE_ALGO` value for ECDSA P-384 with SHA-384, the only one defined.
pub(crate) const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Bytes of each of `R` and `S` in the report (little-endian, zero-extended).
pub(crate) const SIG_COMPONENT_LEN: usize = 72;
/// Bytes of a P-384 scalar.
pub(crate) const P384_SCALAR_LEN: usize = 48;

// Offsets in the report (SEV-SNP firmware ABI, "ATTESTATION_REPORT Structure").
pub(crate) const OFF_VERSION: usize = 0x00;
const OFF_GUEST_SVN: usize = 0x04;
pub(crate) const OFF_POLICY: usize = 0x08;
pub(crate) const OFF_VMPL: usize = 0x30;
pub(crate) const OFF_SIG_ALGO: usize = 0x34;
pub(crate) const OFF_PLATFORM_INFO: usize = 0x40;
pub(crate) const OFF_KEY_INFO: usize = 0x48;
pub(crate) const OFF_REPORT_DATA: usize = 0x50;
pub(crate) const OFF_MEASUREMENT: usize = 0x90;
const OFF_HOST_DATA: usize = 0xC0;
pub(crate) const OFF_REPORTED_TCB: usize = 0x180;
pub(crate) const OFF_CPUID_FAM: usize = 0x188;
pub(crate) const OFF_CPUID_MOD: usize = 0x189;
pub(crate) const OFF_CHIP_ID: usize = 0x1A0;
pub(crate) const OFF_SIGNATURE: usize = SIGNED_LEN;

// Guest policy bits.
const POLICY_MIGRATE_MA: u64 = 1 << 18;
const POLICY_DEBUG: u64 = 1 << 19;

// KEY_INFO (offset 0x48): bit 1 MASK_CHIP_ID, bits 2..4 SIGNING_KEY (0 VCEK, 1 VLEK, 7 none).
const KEY_INFO_MASK_CHIP_ID: u32 = 1 << 1;
const SIGNING_KEY_VCEK: u32 = 0;
const SIGNING_KEY_VLEK: u32 = 1;

// CPUID extended family in version-3 reports.
pub(crate) const CPU_FAMILY_ZEN3_ZEN4: u8 = 0x19;
const CPU_FAMILY_ZEN5: u8 = 0x1A;

/// id-mgf1 (RFC 8017), the only mask generation function AMD's certificates use.
const OID_MGF1: &[u64] = &[1, 2, 840, 113549, 1, 1, 8];

// AMD's VCEK/VLEK extensions (AMD "Versioned Chip Endorsement Key" specification).
const OID_AMD_BL_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1];
const OID_AMD_TEE_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 2];
const OID_AMD_SNP_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 3];
const OID_AMD_UCODE_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 8];
const OID_AMD_FMC_SPL: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 9];
const OID_AMD_HW_ID: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 4];
/// Bytes of a chip id (the report's `CHIP_ID`, the VCEK's hwID).
const CHIP_ID_LEN: usize = 64;

/// An AMD EPYC product line with its own ARK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AmdProduct {
    /// EPYC 7003 (Zen 3).
    Milan,
    /// EPYC 9004/8004 (Zen 4; also Bergamo and Siena).
    Genoa,
    /// EPYC 9005 (Zen 5).
    Turin,
}

impl AmdProduct {
    /// Every product with pinned roots.
    pub const ALL: [AmdProduct; 3] = [Self::Milan, Self::Genoa, Self::Turin];

    /// Its name, as AMD's certificates spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Milan => "Milan",
            Self::Genoa => "Genoa",
            Self::Turin => "Turin",
        }
    }

    /// Whether its TCB_VERSION has the Turin layout (with an FMC field).
    const fn turin_tcb_layout(self) -> bool {
        matches!(self, Self::Turin)
    }

    const fn cpu_family(self) -> u8 {
        match self {
            Self::Milan | Self::Genoa => CPU_FAMILY_ZEN3_ZEN4,
            Self::Turin => CPU_FAMILY_ZEN5,
        }
    }
}

impl std::fmt::Display for AmdProduct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of key signed a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndorsementKind {
    /// Versioned Chip Endorsement Key: derived from one chip's secret and TCB; certified by the
    /// product's ASK.
    Vcek,
    /// Versioned Loaded Endorsement Key: provisioned by AMD to a cloud provider; certified by
    /// the product's ASVK.
    Vlek,
}

impl EndorsementKind {
    /// `VCEK` or `VLEK`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
        }
    }
}

impl std::fmt::Display for EndorsementKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TCB version: the security patch levels of the firmware components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcbVersion {
    /// FMC SPL (Turin only).
    pub fmc: Option<u8>,
    /// Bootloader SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes a little-endian `TCB_VERSION` in the layout of `product`.
    fn decode(raw: [u8; 8], product: AmdProduct) -> Self {
        let [b0, b1, b2, b3, _, _, b6, b7] = raw;
        if product.turin_tcb_layout() {
            Self {
                fmc: Some(b0),
                bootloader: b1,
                tee: b2,
                snp: b3,
                microcode: b7,
            }
        } else {
            Self {
                fmc: None,
                bootloader: b0,
                tee: b1,
                snp: b6,
                microcode: b7,
            }
        }
    }
}

/// A parsed attestation report. Parsing checks the layout only; nothing in it is trusted until
/// [`verify_report`] has checked its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationReport {
    /// `VERSION` (2 or 3).
    pub version: u32,
    /// `GUEST_SVN`.
    pub guest_svn: u32,
    /// `POLICY`: the guest policy the VM was launched with.
    pub policy: u64,
    /// `VMPL` the report was requested at.
    pub vmpl: u32,
    /// `PLATFORM_INFO`.
    pub platform_info: u64,
    /// `KEY_INFO` (author key, chip id masking, signing key).
    pub key_info: u32,
    /// `REPORT_DATA`: the 64 bytes the guest asked to be bound.
    pub report_data: [u8; 64],
    /// `MEASUREMENT`: the launch measurement.
    pub measurement: [u8; 48],
    /// `HOST_DATA`: 32 bytes the host set at launch.
    pub host_data: [u8; 32],
    /// `REPORTED_TCB`, raw: the TCB the VCEK was derived from.
    pub reported_tcb: [u8; 8],
    /// `CPUID_FAM_ID` (version 3; zero in version 2).
    pub cpuid_family: u8,
    /// `CPUID_MOD_ID` (version 3; zero in version 2).
    pub cpuid_model: u8,
    /// `CHIP_ID` (zero if masked).
    pub chip_id: [u8; 64],
    /// `SIGNATURE.R`, little-endian.
    signature_r: [u8; SIG_COMPONENT_LEN],
    /// `SIGNATURE.S`, little-endian.
    signature_s: [u8; SIG_COMPONENT_LEN],
    /// Whether the rest of the signature field (unsigned, reserved) is all zero.
    signature_reserved_zero: bool,
    /// The signed bytes.
    signed: Vec<u8>,
}

fn array<const N: usize>(bytes: &[u8], offset: usize) -> Result<[u8; N], SevSnpError> {
    bytes
        .get(offset..offset + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(SevSnpError::ReportLength(bytes.len()))
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32, SevSnpError> {
    array::<4>(bytes, offset).map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], offset: usize) -> Result<u64, SevSnpError> {
    array::<8>(bytes, offset).map(u64::from_le_bytes)
}

impl AttestationReport {
    /// Parses a report: its length, version and signature algorithm.
    ///
    /// # Errors
    /// [`SevSnpError::ReportLength`], [`SevSnpError::UnsupportedVersion`],
    /// [`SevSnpError::UnsupportedSignatureAlgorithm`].
    pub fn parse(bytes: &[u8]) -> Result<Self, SevSnpError> {
        if bytes.len() != REPORT_LEN {
            return Err(SevSnpError::ReportLength(bytes.len()));
        }
        let version = u32_at(bytes, OFF_VERSION)?;
        if !(MIN_REPORT_VERSION..=MAX_REPORT_VERSION).contains(&version) {
            return Err(SevSnpError::UnsupportedVersion(version));
        }
        let sig_algo = u32_at(bytes, OFF_SIG_ALGO)?;
        if sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(SevSnpError::UnsupportedSignatureAlgorithm(sig_algo));
        }
        let (cpuid_family, cpuid_model) = if version >= 3 {
            (
                array::<1>(bytes, OFF_CPUID_FAM)?[0],
                array::<1>(bytes, OFF_CPUID_MOD)?[0],
            )
        } else {
            (0, 0)
        };
        let reserved = bytes
            .get(OFF_SIGNATURE + 2 * SIG_COMPONENT_LEN..)
            .ok_or(SevSnpError::ReportLength(bytes.len()))?;
        Ok(Self {
            version,
            guest_svn: u32_at(bytes, OFF_GUEST_SVN)?,
            policy: u64_at(bytes, OFF_POLICY)?,
            vmpl: u32_at(bytes, OFF_VMPL)?,
            platform_info: u64_at(bytes, OFF_PLATFORM_INFO)?,
            key_info: u32_at(bytes, OFF_KEY_INFO)?,
            report_data: array(bytes, OFF_REPORT_DATA)?,
            measurement: array(bytes, OFF_MEASUREMENT)?,
            host_data: array(bytes, OFF_HOST_DATA)?,
            reported_tcb: array(bytes, OFF_REPORTED_TCB)?,
            cpuid_family,
            cpuid_model,
            chip_id: array(bytes, OFF_CHIP_ID)?,
            signature_r: array(bytes, OFF_SIGNATURE)?,
            signature_s: array(bytes, OFF_SIGNATURE + SIG_COMPONENT_LEN)?,
            signature_reserved_zero: reserved.iter().all(|&b| b == 0),
            signed: bytes
                .get(..SIGNED_LEN)
                .ok_or(SevSnpError::ReportLength(bytes.len()))?
                .to_vec(),
        })
    }

    /// The key the report says signed it (`KEY_INFO.SIGNING_KEY`).
    ///
    /// # Errors
    /// [`SevSnpError::NoSigningKey`] for any value but VCEK (0) and VLEK (1).
    pub fn signing_key(&self) -> Result<EndorsementKind, SevSnpError> {
        match (self.key_info >> 2) & 0b111 {
            SIGNING_KEY_VCEK => Ok(EndorsementKind::Vcek),
            SIGNING_KEY_VLEK => Ok(EndorsementKind::Vlek),
            other => Err(SevSnpError::NoSigningKey(other)),
        }
    }

    /// Whether the guest policy allows debugging (the hypervisor can read and write the
    /// guest's memory).
    pub const fn debug_allowed(&self) -> bool {
        self.policy & POLICY_DEBUG != 0
    }

    /// Whether the guest policy allows a migration agent (which can export the guest's memory).
    pub const fn migration_agent_allowed(&self) -> bool {
        self.policy & POLICY_MIGRATE_MA != 0
    }

    /// Whether `CHIP_ID` was masked (zeroed) at the guest's request.
    pub const fn chip_id_masked(&self) -> bool {
        self.key_info & KEY_INFO_MASK_CHIP_ID != 0
    }

    /// The signature as ring's fixed encoding: big-endian `r || s`, 48 bytes each.
    fn signature_fixed(&self) -> Result<Vec<u8>, SevSnpError> {
        let mut fixed = Vec::with_capacity(2 * P384_SCALAR_LEN);
        for component in [&self.signature_r, &self.signature_s] {
            let (low, high) = component.split_at(P384_SCALAR_LEN);
            if high.iter().any(|&b| b != 0) {
                return Err(SevSnpError::SignatureOutOfRange);
            }
            fixed.extend(low.iter().rev());
        }
        Ok(fixed)
    }
}

/// What the caller allows beyond the defaults (which refuse a debuggable or migratable guest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SevSnpOptions {
    /// Accept a guest whose policy allows debugging. Such a guest's memory is open to the
    /// hypervisor: only for development.
    pub allow_debug: bool,
    /// Accept a guest whose policy allows a migration agent.
    pub allow_migration_agent: bool,
    /// If set, the report must have been requested at this VMPL (0 is the most privileged).
    pub required_vmpl: Option<u32>,
}

/// What a verified report proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSevSnpReport {
    /// The product whose pinned ARK the endorsement chains to.
    pub product: AmdProduct,
    /// Which key signed.
    pub endorsement: EndorsementKind,
    /// The verification time the certificates were checked at.
    pub verified_at: OffsetDateTime,
    /// The reported TCB, decoded for the product (equal to the endorsement's).
    pub reported_tcb: TcbVersion,
    /// The report itself (signature verified).
    pub report: AttestationReport,
}

impl VerifiedSevSnpReport {
    /// The launch measurement, 48 bytes.
    pub fn measurement(&self) -> Measurement {
        Measurement::sha384(self.report.measurement)
    }

    /// `REPORT_DATA`, 64 bytes.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.report.report_data
    }
}

/// An SEV-SNP report or its endorsement was refused; each variant names the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SevSnpError {
    /// Not a report: wrong length.
    #[error("an SEV-SNP report is {REPORT_LEN} bytes; this is {0}")]
    ReportLength(usize),
    /// A report version this parser does not read.
    #[error(
        "SEV-SNP report version {0} is not supported (only {MIN_REPORT_VERSION} to {MAX_REPORT_VERSION})"
    )]
    UnsupportedVersion(u32),
    /// A signature algorithm other than ECDSA P-384 with SHA-384.
    #[error("SEV-SNP report signature algorithm {0} is not ECDSA P-384 with SHA-384 (1)")]
    UnsupportedSignatureAlgorithm(u32),
    /// The report names no VCEK or VLEK as its signer.
    #[error("the SEV-SNP report's signing key field is {0}, neither a VCEK (0) nor a VLEK (1)")]
    NoSigningKey(u32),
    /// The endorsement is larger than [`MAX_ENDORSEMENT_BYTES`].
    #[error("the endorsement certificate is {0} bytes; at most {MAX_ENDORSEMENT_BYTES} are read")]
    EndorsementTooLarge(usize),
    /// The endorsement is not an X.509 certificate.
    #[error("the endorsement is not a DER or PEM X.509 certificate: {0}")]
    EndorsementMalformed(String),
    /// The endorsement is not a VCEK or VLEK, or not the kind the report names.
    #[error(
        "the endorsement certificate is {found}, but the report says it is signed by a {expected}"
    )]
    EndorsementKindMismatch {
        /// What the report's signing-key field says.
        expected: EndorsementKind,
        /// The endorsement's subject common name.
        found: String,
    },
    /// No pinned ASK/ASVK issued the endorsement.
    #[error("the {kind} was not issued by any pinned AMD {issuer} (its issuer is {name:?})")]
    UnknownIssuer {
        /// The endorsement kind.
        kind: EndorsementKind,
        /// `ASK` or `ASVK`.
        issuer: &'static str,
        /// The endorsement's issuer common name.
        name: String,
    },
    /// A signature in the chain does not verify.
    #[error("certificate chain: the {0} signature does not verify with its issuer's key")]
    ChainSignature(String),
    /// A certificate in the chain has the wrong signature algorithm.
    #[error("certificate chain: the {which} is not signed with RSASSA-PSS/SHA-384: {reason}")]
    ChainAlgorithm {
        /// Which certificate.
        which: String,
        /// What is wrong.
        reason: String,
    },
    /// A certificate in the chain is not valid at the verification time.
    #[error(
        "certificate chain: the {which} is not valid at {at} (valid {not_before} to {not_after})"
    )]
    CertificateNotValid {
        /// Which certificate.
        which: String,
        /// The verification time.
        at: String,
        /// Its notBefore.
        not_before: String,
        /// Its notAfter.
        not_after: String,
    },
    /// A pinned root could not be loaded (a build defect).
    #[error("pinned AMD root {0} cannot be read")]
    PinnedRoot(String),
    /// The endorsement's key is not ECDSA P-384.
    #[error("the {0} key is not an ECDSA P-384 key")]
    EndorsementKey(EndorsementKind),
    /// A signature component is not below 2^384.
    #[error("the SEV-SNP report signature's R or S does not fit in 48 bytes")]
    SignatureOutOfRange,
    /// The unsigned, reserved part of the signature field is not zero.
    #[error("the SEV-SNP report's reserved signature bytes are not zero")]
    SignatureReservedNotZero,
    /// The report's signature does not verify with the endorsement's key.
    #[error("the SEV-SNP report's signature does not verify with the {0} key")]
    BadSignature(EndorsementKind),
    /// An AMD extension is missing from, repeated in, or malformed in the endorsement.
    #[error("the {kind}'s {extension} extension is missing, repeated or malformed")]
    Extension {
        /// The endorsement kind.
        kind: EndorsementKind,
        /// Which extension.
        extension: &'static str,
    },
    /// A TCB component differs between report and endorsement.
    #[error(
        "TCB mismatch: the report's {component} SPL is {report} but the {kind} is for {certificate}"
    )]
    TcbMismatch {
        /// The endorsement kind.
        kind: EndorsementKind,
        /// Which component.
        component: &'static str,
        /// In the report's REPORTED_TCB.
        report: u8,
        /// In the endorsement.
        certificate: u8,
    },
    /// The VCEK is for another chip.
    #[error("the VCEK is for another chip: its hwID differs from the report's CHIP_ID")]
    ChipIdMismatch,
    /// A VCEK-signed report with its chip id masked cannot be tied to its VCEK.
    #[error("the report's CHIP_ID is masked, so it cannot be matched with the VCEK's hwID")]
    ChipIdMasked,
    /// The report's CPU family is not the endorsement's product.
    #[error("the report's CPU family {family:#x} is not that of {product}")]
    ProductMismatch {
        /// CPUID family in the report.
        family: u8,
        /// The product the endorsement chains to.
        product: AmdProduct,
    },
    /// The guest policy allows debugging and the caller does not.
    #[error("the guest policy allows debugging (policy {0:#x}): its memory is open to the host")]
    DebugNotAllowed(u64),
    /// The guest policy allows a migration agent and the caller does not.
    #[error("the guest policy allows a migration agent (policy {0:#x})")]
    MigrationAgentNotAllowed(u64),
    /// The report was requested at another VMPL than the caller requires.
    #[error("the report was requested at VMPL {report}; VMPL {required} is required")]
    VmplMismatch {
        /// The report's VMPL.
        report: u32,
        /// The required VMPL.
        required: u32,
    },
}

/// Reads an endorsement: DER, or PEM with a `CERTIFICATE` block.
///
/// # Errors
/// [`SevSnpError::EndorsementTooLarge`], [`SevSnpError::EndorsementMalformed`].
pub fn endorsement_der(bytes: &[u8]) -> Result<Vec<u8>, SevSnpError> {
    if bytes.len() > MAX_ENDORSEMENT_BYTES {
        return Err(SevSnpError::EndorsementTooLarge(bytes.len()));
    }
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        CertificateDer::from_pem_slice(bytes)
            .map(|der| der.to_vec())
            .map_err(|e| SevSnpError::EndorsementMalformed(format!("PEM: {e}")))
    } else {
        Ok(bytes.to_vec())
    }
}

fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    let mut names = cert.subject().iter_common_name();
    let first = names.next()?.as_str().ok()?.to_owned();
    names.next().is_none().then_some(first)
}

fn issuer_common_name(cert: &X509Certificate<'_>) -> String {
    cert.issuer()
        .iter_common_name()
        .next()
        .and_then(|n| n.as_str().ok())
        .unwrap_or("?")
        .chars()
        .take(64)
        .collect()
}

fn pinned(pem: &[u8], what: &str) -> Result<CertificateDer<'static>, SevSnpError> {
    CertificateDer::from_pem_slice(pem).map_err(|_| SevSnpError::PinnedRoot(what.to_owned()))
}

fn parse_pinned<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, SevSnpError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|_| SevSnpError::PinnedRoot(what.to_owned()))
}

fn check_valid_at(
    cert: &X509Certificate<'_>,
    which: &str,
    at: OffsetDateTime,
) -> Result<(), SevSnpError> {
    if cert.validity().is_valid_at(ASN1Time::from(at)) {
        Ok(())
    } else {
        Err(SevSnpError::CertificateNotValid {
            which: which.to_owned(),
            at: at.to_string(),
            not_before: cert.validity().not_before.to_string(),
            not_after: cert.validity().not_after.to_string(),
        })
    }
}

/// The header length and total length of the DER element at the start of `bytes`.
fn der_element(bytes: &[u8]) -> Option<(usize, usize)> {
    let (header, length) = match *bytes.get(1)? {
        short if short < 0x80 => (2, usize::from(short)),
        0x81 => (3, usize::from(*bytes.get(2)?)),
        0x82 => (
            4,
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
        ),
        _ => return None,
    };
    Some((header, header.checked_add(length)?))
}

/// The DER of the signed signature algorithm (in the TBS part) and of the unsigned outer one.
/// The parser is lenient with the unsigned field, so the two are compared as bytes: no byte
/// of an accepted endorsement can change.
fn signature_algorithms_der<'c>(cert: &'c X509Certificate<'_>) -> Option<(&'c [u8], &'c [u8])> {
    let full = cert.as_raw();
    let tbs = cert.tbs_certificate.as_ref();
    let (outer_header, _) = der_element(full)?;
    let outer_alg = full.get(outer_header + tbs.len()..)?;
    let (_, outer_len) = der_element(outer_alg)?;
    // TBS: SEQUENCE { [0] version (optional), serial INTEGER, signature AlgorithmIdentifier, ..}
    let (tbs_header, _) = der_element(tbs)?;
    let mut rest = tbs.get(tbs_header..)?;
    if rest.first() == Some(&0xa0) {
        rest = rest.get(der_element(rest)?.1..)?;
    }
    rest = rest.get(der_element(rest)?.1..)?;
    let (_, inner_len) = der_element(rest)?;
    Some((rest.get(..inner_len)?, outer_alg.get(..outer_len)?))
}

/// Checks that `child` names `issuer` and carries its RSASSA-PSS/SHA-384 signature.
fn check_issued_by(
    child: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    which: &str,
) -> Result<(), SevSnpError> {
    let algorithm = |reason: &str| SevSnpError::ChainAlgorithm {
        which: which.to_owned(),
        reason: reason.to_owned(),
    };
    // The outer algorithm is not signed: it must be the signed one in the TBS certificate,
    // whose parameters are then checked.
    if child.signature_algorithm != child.tbs_certificate.signature
        || signature_algorithms_der(child).is_none_or(|(inner, outer)| inner != outer)
    {
        return Err(algorithm(
            "its outer signature algorithm differs from the signed one",
        ));
    }
    match SignatureAlgorithm::try_from(&child.tbs_certificate.signature) {
        Ok(SignatureAlgorithm::RSASSA_PSS(params)) => {
            if *params.hash_algorithm_oid() != OID_NIST_HASH_SHA384 {
                return Err(algorithm("its hash is not SHA-384"));
            }
            let mgf = params
                .mask_gen_algorithm()
                .map_err(|_| algorithm("its mask generation function is malformed"))?;
            let mgf1 = Oid::from(OID_MGF1).map_err(|_| algorithm("MGF1"))?;
            if mgf.mgf != mgf1 || mgf.hash != OID_NIST_HASH_SHA384 {
                return Err(algorithm("its MGF1 hash is not SHA-384"));
            }
            if params.salt_length() != 48 {
                return Err(algorithm("its salt is not 48 bytes"));
            }
            if params.trailer_field() != 1 {
                return Err(algorithm("its trailer field is not 1"));
            }
        }
        _ => return Err(algorithm("another algorithm")),
    }
    if child.signature_value.unused_bits != 0 {
        return Err(algorithm("its signature BIT STRING has unused bits"));
    }
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(SevSnpError::ChainSignature(format!(
            "{which} (issuer name differs)"
        )));
    }
    UnparsedPublicKey::new(
        &RSA_PSS_2048_8192_SHA384,
        issuer.public_key().subject_public_key.data.as_ref(),
    )
    .verify(
        child.tbs_certificate.as_ref(),
        child.signature_value.data.as_ref(),
    )
    .map_err(|_| SevSnpError::ChainSignature(which.to_owned()))
}

/// The ASVK of `product` out of a PEM bundle (trustee ships the Milan ASVK with its ASK and ARK):
/// the certificate whose subject common name is `SEV-VLEK-<product>`.
fn asvk_der(bundle_pem: &[u8], product: AmdProduct) -> Option<CertificateDer<'static>> {
    let expected = format!("SEV-VLEK-{product}");
    CertificateDer::pem_slice_iter(bundle_pem)
        .filter_map(Result::ok)
        .find(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .is_some_and(|(_, c)| common_name(&c).as_deref() == Some(expected.as_str()))
        })
}

/// Checks the chain ARK → ASK (or ASVK) → endorsement for the product of `anchors` whose
/// ASK/ASVK issued `endorsement`, at `at`. Returns the product.
fn check_chain(
    endorsement: &X509Certificate<'_>,
    kind: EndorsementKind,
    anchors: &TrustAnchors,
    at: OffsetDateTime,
) -> Result<AmdProduct, SevSnpError> {
    let issuer_label = match kind {
        EndorsementKind::Vcek => "ASK",
        EndorsementKind::Vlek => "ASVK",
    };
    for anchor in anchors.amd() {
        let product = anchor.product;
        let intermediate_der = match (kind, anchor.asvk_pem.as_deref()) {
            (EndorsementKind::Vcek, _) => pinned(&anchor.ask_pem, "ASK")?,
            (EndorsementKind::Vlek, Some(bundle)) => asvk_der(bundle, product)
                .ok_or_else(|| SevSnpError::PinnedRoot(format!("{product} ASVK")))?,
            (EndorsementKind::Vlek, None) => continue,
        };
        let intermediate = parse_pinned(&intermediate_der, issuer_label)?;
        if intermediate.subject().as_raw() != endorsement.issuer().as_raw() {
            continue;
        }
        let ark_der = pinned(&anchor.ark_pem, "ARK")?;
        let ark = parse_pinned(&ark_der, "ARK")?;
        let name = |what: &str| format!("{product} {what}");
        check_issued_by(&ark, &ark, &name("ARK"))?;
        check_issued_by(&intermediate, &ark, &name(issuer_label))?;
        check_issued_by(endorsement, &intermediate, &name(kind.as_str()))?;
        check_valid_at(&ark, &name("ARK"), at)?;
        check_valid_at(&intermediate, &name(issuer_label), at)?;
        check_valid_at(endorsement, &name(kind.as_str()), at)?;
        return Ok(product);
    }
    Err(SevSnpError::UnknownIssuer {
        kind,
        issuer: issuer_label,
        name: issuer_common_name(endorsement),
    })
}

/// The value of a unique extension, or an error naming it.
fn extension_value<'a>(
    cert: &'a X509Certificate<'_>,
    arcs: &[u64],
    kind: EndorsementKind,
    extension: &'static str,
) -> Result<&'a [u8], SevSnpError> {
    let missing = SevSnpError::Extension { kind, extension };
    let oid = Oid::from(arcs).map_err(|_| missing.clone())?;
    match cert.tbs_certificate.get_extension_unique(&oid) {
        Ok(Some(ext)) => Ok(ext.value),
        _ => Err(missing),
    }
}

/// A DER INTEGER in 0..=255 (AMD's SPL extensions).
fn spl_extension(
    cert: &X509Certificate<'_>,
    arcs: &[u64],
    kind: EndorsementKind,
    extension: &'static str,
) -> Result<u8, SevSnpError> {
    let malformed = SevSnpError::Extension { kind, extension };
    match extension_value(cert, arcs, kind, extension)? {
        [0x02, 1, value] if *value < 0x80 => Ok(*value),
        [0x02, 2, 0, value] if *value >= 0x80 => Ok(*value),
        _ => Err(malformed),
    }
}

/// The VCEK's hwID: 64 raw bytes (older VCEKs) or a DER OCTET STRING of 64 bytes, as trustee
/// reads it.
fn hw_id(cert: &X509Certificate<'_>) -> Result<[u8; CHIP_ID_LEN], SevSnpError> {
    let kind = EndorsementKind::Vcek;
    let malformed = SevSnpError::Extension {
        kind,
        extension: "hwID",
    };
    let value = extension_value(cert, OID_AMD_HW_ID, kind, "hwID")?;
    let bytes = match value {
        raw if raw.len() == CHIP_ID_LEN => raw,
        [0x04, 0x40, rest @ ..] if rest.len() == CHIP_ID_LEN => rest,
        _ => return Err(malformed),
    };
    <[u8; CHIP_ID_LEN]>::try_from(bytes).map_err(|_| malformed)
}

fn check_tcb(
    endorsement: &X509Certificate<'_>,
    kind: EndorsementKind,
    tcb: TcbVersion,
) -> Result<(), SevSnpError> {
    let mut components = vec![
        ("bootloader", OID_AMD_BL_SPL, tcb.bootloader),
        ("TEE", OID_AMD_TEE_SPL, tcb.tee),
        ("SNP", OID_AMD_SNP_SPL, tcb.snp),
        ("microcode", OID_AMD_UCODE_SPL, tcb.microcode),
    ];
    if let Some(fmc) = tcb.fmc {
        components.push(("FMC", OID_AMD_FMC_SPL, fmc));
    }
    for (component, arcs, report) in components {
        let certificate = spl_extension(endorsement, arcs, kind, component)?;
        if certificate != report {
            return Err(SevSnpError::TcbMismatch {
                kind,
                component,
                report,
                certificate,
            });
        }
    }
    Ok(())
}

/// Checks the guest policy and VMPL of a (signature-verified) report against `options`.
pub(crate) fn check_policy(
    report: &AttestationReport,
    options: &SevSnpOptions,
) -> Result<(), SevSnpError> {
    if report.debug_allowed() && !options.allow_debug {
        return Err(SevSnpError::DebugNotAllowed(report.policy));
    }
    if report.migration_agent_allowed() && !options.allow_migration_agent {
        return Err(SevSnpError::MigrationAgentNotAllowed(report.policy));
    }
    if let Some(required) = options.required_vmpl
        && report.vmpl != required
    {
        return Err(SevSnpError::VmplMismatch {
            report: report.vmpl,
            required,
        });
    }
    Ok(())
}

/// Verifies an SEV-SNP attestation report with its VCEK or VLEK certificate (DER or PEM) at
/// time `at`, against the pinned AMD roots ([`TrustAnchors::pinned`]). See the module
/// documentation for the checks.
///
/// # Errors
/// A [`SevSnpError`] naming the first check that failed.
pub fn verify_report(
    report_bytes: &[u8],
    endorsement: &[u8],
    at: OffsetDateTime,
    options: &SevSnpOptions,
) -> Result<VerifiedSevSnpReport, SevSnpError> {
    verify_report_with(
        &TrustAnchors::pinned(),
        report_bytes,
        endorsement,
        at,
        options,
    )
}

/// [`verify_report`] against the AMD roots of `anchors`: the same checks, only the roots the
/// chain must end in differ. Production callers pass [`TrustAnchors::pinned`]; other anchors
/// exist only in tests (`TrustAnchors::insecure_for_tests`, see [`crate::anchors`]).
///
/// # Errors
/// A [`SevSnpError`] naming the first check that failed.
pub fn verify_report_with(
    anchors: &TrustAnchors,
    report_bytes: &[u8],
    endorsement: &[u8],
    at: OffsetDateTime,
    options: &SevSnpOptions,
) -> Result<VerifiedSevSnpReport, SevSnpError> {
    let report = AttestationReport::parse(report_bytes)?;
    let kind = report.signing_key()?;
    let endorsement_der = endorsement_der(endorsement)?;
    let (_, endorsement) = x509_parser::parse_x509_certificate(&endorsement_der)
        .map_err(|e| SevSnpError::EndorsementMalformed(e.to_string()))?;
    let expected_cn = match kind {
        EndorsementKind::Vcek => "SEV-VCEK",
        EndorsementKind::Vlek => "SEV-VLEK",
    };
    let found = common_name(&endorsement).unwrap_or_default();
    if found != expected_cn {
        return Err(SevSnpError::EndorsementKindMismatch {
            expected: kind,
            found: found.chars().take(64).collect(),
        });
    }
    let product = check_chain(&endorsement, kind, anchors, at)?;

    // The report's signature.
    let spki = endorsement.public_key();
    if !crate::der::is_ecdsa_p384_key(spki) {
        return Err(SevSnpError::EndorsementKey(kind));
    }
    let signature = report.signature_fixed()?;
    if !report.signature_reserved_zero {
        return Err(SevSnpError::SignatureReservedNotZero);
    }
    UnparsedPublicKey::new(
        &ECDSA_P384_SHA384_FIXED,
        spki.subject_public_key.data.as_ref(),
    )
    .verify(&report.signed, &signature)
    .map_err(|_| SevSnpError::BadSignature(kind))?;

    // The endorsement is for this TCB (and, for a VCEK, this chip and product).
    if report.version >= 3 && report.cpuid_family != product.cpu_family() {
        return Err(SevSnpError::ProductMismatch {
            family: report.cpuid_family,
            product,
        });
    }
    let reported_tcb = TcbVersion::decode(report.reported_tcb, product);
    check_tcb(&endorsement, kind, reported_tcb)?;
    if kind == EndorsementKind::Vcek {
        if report.chip_id_masked() {
            return Err(SevSnpError::ChipIdMasked);
        }
        if hw_id(&endorsement)? != report.chip_id {
            return Err(SevSnpError::ChipIdMismatch);
        }
    }

    check_policy(&report, options)?;
    Ok(VerifiedSevSnpReport {
        product,
        endorsement: kind,
        verified_at: at,
        reported_tcb,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_chain_verifies_and_names_its_product() {
        let anchors = TrustAnchors::pinned();
        assert!(anchors.is_pinned());
        let products: Vec<_> = anchors.amd().iter().map(|a| a.product).collect();
        assert_eq!(products, AmdProduct::ALL);
        for anchor in anchors.amd() {
            let product = anchor.product;
            let ark_der = pinned(&anchor.ark_pem, "ARK").unwrap();
            let ark = parse_pinned(&ark_der, "ARK").unwrap();
            let ask_der = pinned(&anchor.ask_pem, "ASK").unwrap();
            let ask = parse_pinned(&ask_der, "ASK").unwrap();
            assert_eq!(common_name(&ark).unwrap(), format!("ARK-{product}"));
            assert_eq!(common_name(&ask).unwrap(), format!("SEV-{product}"));
            check_issued_by(&ark, &ark, "ARK").unwrap();
            check_issued_by(&ask, &ark, "ASK").unwrap();
            // Swapped roles are refused.
            assert!(check_issued_by(&ark, &ask, "ARK").is_err());
        }
        let milan = &anchors.amd()[0];
        assert_eq!(milan.product, AmdProduct::Milan);
        let bundle_pem = milan.asvk_pem.as_deref().unwrap();
        let milan_asvk = asvk_der(bundle_pem, AmdProduct::Milan).unwrap();
        let asvk = parse_pinned(&milan_asvk, "ASVK").unwrap();
        let ark_der = pinned(&milan.ark_pem, "ARK").unwrap();
        let ark = parse_pinned(&ark_der, "ARK").unwrap();
        check_issued_by(&asvk, &ark, "ASVK").unwrap();
        // The bundle's ARK and ASK are the pinned Milan ones.
        let bundle: Vec<_> = CertificateDer::pem_slice_iter(bundle_pem)
            .map(Result::unwrap)
            .collect();
        assert_eq!(bundle.len(), 3);
        assert!(bundle.contains(&ark_der));
        assert!(bundle.contains(&pinned(&milan.ask_pem, "ASK").unwrap()));
        // Only Milan has a pinned ASVK; the bundle holds no Genoa one.
        assert!(anchors.amd()[1..].iter().all(|a| a.asvk_pem.is_none()));
        assert_eq!(asvk_der(bundle_pem, AmdProduct::Genoa), None);
    }

    fn report_with_policy(policy: u64, vmpl: u32) -> AttestationReport {
        let mut bytes = vec![0u8; REPORT_LEN];
        bytes[OFF_VERSION] = 2;
        bytes[OFF_SIG_ALGO] = 1;
        bytes[OFF_POLICY..OFF_POLICY + 8].copy_from_slice(&policy.to_le_bytes());
        bytes[OFF_VMPL..OFF_VMPL + 4].copy_from_slice(&vmpl.to_le_bytes());
        AttestationReport::parse(&bytes).unwrap()
    }

    #[test]
    fn debug_and_migration_agent_are_refused_unless_allowed() {
        let plain = report_with_policy(0x30000, 0);
        check_policy(&plain, &SevSnpOptions::default()).unwrap();
        let debug = report_with_policy(0x30000 | POLICY_DEBUG, 0);
        assert_eq!(
            check_policy(&debug, &SevSnpOptions::default()),
            Err(SevSnpError::DebugNotAllowed(0x30000 | POLICY_DEBUG))
        );
        let allow_debug = SevSnpOptions {
            allow_debug: true,
            ..SevSnpOptions::default()
        };
        check_policy(&debug, &allow_debug).unwrap();
        let ma = report_with_policy(0x30000 | POLICY_MIGRATE_MA, 0);
        assert!(matches!(
            check_policy(&ma, &allow_debug),
            Err(SevSnpError::MigrationAgentNotAllowed(_))
        ));
        let allow_ma = SevSnpOptions {
            allow_migration_agent: true,
            ..SevSnpOptions::default()
        };
        check_policy(&ma, &allow_ma).unwrap();
        let vmpl1 = report_with_policy(0x30000, 1);
        let vmpl0 = SevSnpOptions {
            required_vmpl: Some(0),
            ..SevSnpOptions::default()
        };
        assert_eq!(
            check_policy(&vmpl1, &vmpl0),
            Err(SevSnpError::VmplMismatch {
                report: 1,
                required: 0
            })
        );
    }

    const TRUSTEE_REPORT: &[u8] =
        include_bytes!("../tests/vectors/sev-snp/trustee-test-report.bin");
    const TRUSTEE_VCEK: &[u8] = include_bytes!("../tests/vectors/sev-snp/trustee-test-vcek.der");

    #[test]
    fn the_tcb_and_chip_id_checks_compare_the_vcek_with_the_report() {
        let report = AttestationReport::parse(TRUSTEE_REPORT).unwrap();
        let (_, vcek) = x509_parser::parse_x509_certificate(TRUSTEE_VCEK).unwrap();
        let kind = EndorsementKind::Vcek;
        let tcb = TcbVersion::decode(report.reported_tcb, AmdProduct::Milan);
        check_tcb(&vcek, kind, tcb).unwrap();
        assert_eq!(hw_id(&vcek).unwrap(), report.chip_id);
        for (component, changed) in [
            (
                "bootloader",
                TcbVersion {
                    bootloader: tcb.bootloader + 1,
                    ..tcb
                },
            ),
            (
                "TEE",
                TcbVersion {
                    tee: tcb.tee + 1,
                    ..tcb
                },
            ),
            (
                "SNP",
                TcbVersion {
                    snp: tcb.snp + 1,
                    ..tcb
                },
            ),
            (
                "microcode",
                TcbVersion {
                    microcode: tcb.microcode - 1,
                    ..tcb
                },
            ),
        ] {
            assert!(matches!(
                check_tcb(&vcek, kind, changed),
                Err(SevSnpError::TcbMismatch { component: c, .. }) if c == component
            ));
        }
        // A Turin TCB needs the FMC extension, which a Milan VCEK lacks.
        assert!(matches!(
            check_tcb(
                &vcek,
                kind,
                TcbVersion {
                    fmc: Some(0),
                    ..tcb
                }
            ),
            Err(SevSnpError::Extension {
                extension: "FMC",
                ..
            })
        ));
    }

    #[test]
    fn the_hw_id_is_read_raw_and_as_an_octet_string() {
        let expected: Vec<u8> = (0..64).collect();
        for der in [
            include_bytes!("../tests/vectors/sev-snp/trustee-test-vcek-invalid-legacy.der")
                .as_slice(),
            include_bytes!("../tests/vectors/sev-snp/trustee-test-vcek-invalid-new.der").as_slice(),
        ] {
            let (_, vcek) = x509_parser::parse_x509_certificate(der).unwrap();
            assert_eq!(hw_id(&vcek).unwrap().as_slice(), expected.as_slice());
        }
    }

    #[test]
    fn turin_tcb_has_its_own_layout() {
        let raw = [1, 2, 3, 4, 0, 0, 7, 8];
        assert_eq!(
            TcbVersion::decode(raw, AmdProduct::Milan),
            TcbVersion {
                fmc: None,
                bootloader: 1,
                tee: 2,
                snp: 7,
                microcode: 8
            }
        );
        assert_eq!(
            TcbVersion::decode(raw, AmdProduct::Turin),
            TcbVersion {
                fmc: Some(1),
                bootloader: 2,
                tee: 3,
                snp: 4,
                microcode: 8
            }
        );
    }
}
