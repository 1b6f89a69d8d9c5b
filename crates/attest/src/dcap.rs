//! Intel DCAP: the verifier of TDX quotes (versions 4 and 5) and SGX quotes (version 3).
//!
//! A quote is a TD report (written by the TDX module about a trust domain) or an enclave report
//! (written by the CPU about an SGX enclave) under a 48-byte header, signed (ECDSA P-256,
//! SHA-256) by an **attestation key**. The platform's Quoting Enclave (QE) made that key and
//! certified it in its own QE report, which the platform's **PCK** (Provisioning Certification
//! Key) signed. Intel's PCK Platform or Processor CA certified the PCK, and the **Intel SGX Root
//! CA** certified that CA. The root is pinned as bytes compiled in
//! (`crates/attest/roots/intel-sgx-root-ca.der`, provenance in `roots/PROVENANCE-intel.md`,
//! through [`TrustAnchors`]); a root that arrives with the evidence is never trusted.
//!
//! Whether a platform is patched is Intel's judgement, published as signed **collateral** that
//! the host fetches from a PCCS (Provisioning Certification Caching Service): the TCB info for
//! the platform's FMSPC (CPU family, model and platform configuration), the QE identity, the
//! root CA's and PCK CA's certificate revocation lists, and the certificate chains of their
//! signers. It is read here in the JSON shape the `dcap-qvl` crate reads (`QuoteCollateralV3`)
//! and trusted only as far as its signatures chain to the pinned root.
//!
//! The cryptographic checks are those of `dcap-qvl` (Phala Network, MIT; a Rust port of Intel's
//! Quote Verification Library), always given the root from [`TrustAnchors`]: this module never
//! calls an entry point of `dcap-qvl` that chooses its own built-in root. Around them,
//! [`verify_quote_with`] checks, in order, each failure with its own [`DcapError`]:
//!
//! 1. sizes, before anything is parsed: a quote of at most [`MAX_QUOTE_LEN`] bytes and
//!    collateral JSON of at most [`MAX_COLLATERAL_LEN`];
//! 2. the quote's layout ([`parse_quote`]): a TEE type of TDX (`0x81`) or SGX (`0`), a version
//!    this TEE has (TDX: 4 or 5; SGX: 3), a body of the TEE's kind, an authentication data
//!    length equal to what its fields take (in versions 4 and 5, certification data of type 6,
//!    the QE report's, exactly as long as its fields), and nothing but zero padding after it (so
//!    that no length can change); then an attestation key type of ECDSA P-256 and Intel's QE
//!    vendor id;
//! 3. the TEE is [`DcapOptions::expected_tee`], when one is given;
//! 4. the collateral is well formed and is for this quote: its TCB info is `TDX` (version 3) for
//!    a TDX quote or `SGX` (version 2 or 3) for an SGX quote, its QE identity `TD_QE` (version 2
//!    or 3) or `QE` (version 2); the PCK certificate chain is the quote's (certification data
//!    type 5), and the collateral's own copy of it, if it carries one (`dcap-qvl` would prefer
//!    it), is the same; the FMSPC and PCE id in the PCK certificate are those of the TCB info
//!    (`dcap-qvl` checks the FMSPC again; the PCE id only here); the PCK CRL's issuer chain is
//!    the PCK certificate's CA chain. Every chain (PCK, PCK CRL issuer, TCB info signer, QE
//!    identity signer) holds only certificates (no other PEM section, no text between them) and
//!    only its path, in order: each certificate issued by the next, the last the pinned root
//!    itself (byte for byte) or issued by it. So every byte of every certificate in the quote
//!    is checked in step 6; only the PEM line breaks carry nothing and are not;
//! 5. the collateral and certificates are current at the verification time `at`, a parameter:
//!    the TCB info's and QE identity's `issueDate` ≤ `at` ≤ `nextUpdate`, each CRL's
//!    `thisUpdate` ≤ `at` < `nextUpdate`, and every certificate of the PCK chain and of the TCB
//!    info and QE identity signers' chains, and the root itself, valid at `at`. `dcap-qvl`
//!    checks all of these again at the same instant (certificates and CRLs through its
//!    `webpki`); this step is here so that the error names what is stale;
//! 6. `dcap-qvl`'s verification at `at` with the pinned root: the root CA CRL signed by the root
//!    and not revoking it; the TCB info and QE identity signed by a certificate issued directly
//!    by the root, unrevoked; the PCK chain to the root, unrevoked (PCK CRL); the QE report
//!    signed by the PCK; the QE report data binding the attestation key and QE authentication
//!    data; the QE report matching the QE identity (MRSIGNER, ISVPRODID, masked MISCSELECT and
//!    ATTRIBUTES, not debug) and its ISVSVN rated by it; the quote's header and body signed by the
//!    attestation key; the platform's CPU SVN, PCE SVN (from the PCK certificate) and, for TDX,
//!    TEE TCB SVN matched to a level of the TCB info, the TDX module's signer and attributes
//!    matched to its identity in the TCB info; the platform's and QE's statuses converged
//!    (Revoked refused outright); then the TD attributes: debug refused unless
//!    [`DcapOptions::allow_debug`] (which also allows the other "TD under debug" bits,
//!    profiling), and always refused a migratable TD, reserved bits, `SEPT_VE_DISABLE` off, and
//!    service TDs; an SGX enclave in debug mode refused unless allowed;
//! 7. the TCB status is accepted by [`DcapOptions`]: `up-to-date` always, `revoked` never,
//!    anything else only when named ([`DcapOptions::accepted_tcb_statuses`]); the error names
//!    the status and Intel's advisory ids;
//! 8. debug, read by this module from the verified body: a TD with any bit of TD_ATTRIBUTES'
//!    first byte (the "TD under debug" group: DEBUG and the debug and profiling features), or
//!    an enclave with ATTRIBUTES.DEBUG (bit 1), refused unless
//!    [`DcapOptions::allow_debug`] (`dcap-qvl` refused it already in step 6; this does not
//!    depend on it).
//!
//! What it yields ([`VerifiedQuote`]): the TEE, the quote version, the TCB status and advisory
//! ids, the 64 bytes of report data, whether the TD or enclave is debuggable, and the TDX or
//! SGX measurements; [`VerifiedQuote::measurement`] is [`tdx_measurement`] (48 bytes: MRTD, the
//! host-set configuration registers and the RTMRs, hashed) or MRENCLAVE (32). It does
//! not decide whether the measurement is acceptable or what the report data must be: the caller
//! compares them with its policy and its binding.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use dcap_qvl::configs::RingConfig;
use dcap_qvl::quote::{AuthData, Quote, Report};
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::{QeIdentity, QuoteCollateralV3, QuotePolicy, TcbInfo};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::time::ASN1Time;

use crate::Measurement;
use crate::anchors::TrustAnchors;

/// The largest quote read, in bytes. A genuine quote is 4.6 to 5 KB, most of it the PCK
/// certificate chain (some tools hand it over in an 8 KB buffer padded with zeros); the bound
/// stops a hostile host from making the verifier parse and hash megabytes (`dcap-qvl` alone
/// would take each variable-length field up to 1 MiB).
pub const MAX_QUOTE_LEN: usize = 64 * 1024;

/// The largest collateral JSON read, in bytes. Genuine collateral is 14 to 19 KB, most of it the
/// hex-encoded PCK CRL, which grows as Intel revokes platforms: the bound leaves room for that
/// growth and stops a hostile host or PCCS from making the verifier parse, hex-decode and check
/// signatures over megabytes.
pub const MAX_COLLATERAL_LEN: usize = 1024 * 1024;

/// The quote header's length, in bytes.
const HEADER_LEN: usize = 48;
/// `tee_type` of an SGX quote.
const TEE_TYPE_SGX: u32 = 0x0000_0000;
/// `tee_type` of a TDX quote.
const TEE_TYPE_TDX: u32 = 0x0000_0081;
/// `att_key_type` of ECDSA P-256, the only attestation key type defined for these versions.
const ATTESTATION_KEY_ECDSA_P256: u16 = 2;
/// Certification data type 5: the PCK certificate chain, PEM.
const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Certification data type 6: the QE report certification data (quote versions 4 and 5).
const CERT_DATA_QE_REPORT: u16 = 6;
/// An ECDSA P-256 signature, `r || s`.
const SIGNATURE_LEN: usize = 64;
/// An ECDSA P-256 public key, `x || y`.
const ATTESTATION_KEY_LEN: usize = 64;
/// An SGX enclave report (the QE's).
const ENCLAVE_REPORT_LEN: usize = 384;
/// TD_ATTRIBUTES byte 0, the TUD ("TD under debug") group: bit 0 DEBUG (the host VMM can read
/// and write the TD's state and memory) and bits 1 to 7, debug and profiling features. A TD with
/// any of them set counts as debuggable.
const TD_ATTRIBUTES_TUD: u8 = 0xFF;
/// ATTRIBUTES.FLAGS bit 1: DEBUG (the enclave's memory is open to the debugger).
const SGX_ATTRIBUTES_DEBUG: u8 = 1 << 1;

/// The trusted execution environment a quote is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DcapTee {
    /// Intel TDX: a trust domain (a confidential virtual machine).
    Tdx,
    /// Intel SGX: an enclave.
    Sgx,
}

impl DcapTee {
    /// `TDX` or `SGX`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tdx => "TDX",
            Self::Sgx => "SGX",
        }
    }
}

impl fmt::Display for DcapTee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Intel's verdict on a platform's TCB (firmware, microcode, TDX module and QE versions and
/// configuration), converged over the platform and its Quoting Enclave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcbStatus {
    /// Patched to Intel's latest level. Always accepted.
    UpToDate,
    /// Patched, but software mitigations (named by the advisories) are needed in the TD or
    /// enclave.
    SwHardeningNeeded,
    /// Patched, but the platform's configuration (e.g. hyper-threading, memory integrity) is
    /// exposed to the advisories.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSwHardeningNeeded,
    /// Not patched to a level Intel still considers secure against the advisories.
    OutOfDate,
    /// Out of date, and its configuration needs changing too.
    OutOfDateConfigurationNeeded,
    /// TDX 1.5 only: the TD was launched on an out-of-date TCB, updated since; relaunching it is
    /// advised.
    TdRelaunchAdvised,
    /// [`TcbStatus::TdRelaunchAdvised`], with the configuration needing a change.
    TdRelaunchAdvisedConfigurationNeeded,
    /// Intel revoked this TCB: the platform's keys may be compromised. Never accepted.
    Revoked,
}

impl TcbStatus {
    /// Every status.
    pub const ALL: [TcbStatus; 9] = [
        Self::UpToDate,
        Self::SwHardeningNeeded,
        Self::ConfigurationNeeded,
        Self::ConfigurationAndSwHardeningNeeded,
        Self::OutOfDate,
        Self::OutOfDateConfigurationNeeded,
        Self::TdRelaunchAdvised,
        Self::TdRelaunchAdvisedConfigurationNeeded,
        Self::Revoked,
    ];

    /// Its name in policies and messages: `up-to-date`, `sw-hardening-needed`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "up-to-date",
            Self::SwHardeningNeeded => "sw-hardening-needed",
            Self::ConfigurationNeeded => "configuration-needed",
            Self::ConfigurationAndSwHardeningNeeded => "configuration-and-sw-hardening-needed",
            Self::OutOfDate => "out-of-date",
            Self::OutOfDateConfigurationNeeded => "out-of-date-configuration-needed",
            Self::TdRelaunchAdvised => "td-relaunch-advised",
            Self::TdRelaunchAdvisedConfigurationNeeded => {
                "td-relaunch-advised-configuration-needed"
            }
            Self::Revoked => "revoked",
        }
    }

    fn from_dcap_qvl(status: dcap_qvl::TcbStatus) -> Self {
        use dcap_qvl::TcbStatus as Q;
        match status {
            Q::UpToDate => Self::UpToDate,
            Q::SWHardeningNeeded => Self::SwHardeningNeeded,
            Q::ConfigurationNeeded => Self::ConfigurationNeeded,
            Q::ConfigurationAndSWHardeningNeeded => Self::ConfigurationAndSwHardeningNeeded,
            Q::OutOfDate => Self::OutOfDate,
            Q::OutOfDateConfigurationNeeded => Self::OutOfDateConfigurationNeeded,
            Q::TDRelaunchAdvised => Self::TdRelaunchAdvised,
            Q::TDRelaunchAdvisedConfigurationNeeded => Self::TdRelaunchAdvisedConfigurationNeeded,
            Q::Revoked => Self::Revoked,
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TCB status name that is not one of [`TcbStatus::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a TCB status (expected up-to-date, sw-hardening-needed, configuration-needed, \
     configuration-and-sw-hardening-needed, out-of-date, out-of-date-configuration-needed, \
     td-relaunch-advised, td-relaunch-advised-configuration-needed or revoked)"
)]
pub struct UnknownTcbStatus(pub String);

impl FromStr for TcbStatus {
    type Err = UnknownTcbStatus;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| UnknownTcbStatus(name.chars().take(64).collect()))
    }
}

/// What the caller accepts beyond the defaults (which accept only an up-to-date, non-debug
/// quote from either TEE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcapOptions {
    /// If set, the quote must be from this TEE.
    pub expected_tee: Option<DcapTee>,
    /// TCB statuses accepted besides [`TcbStatus::UpToDate`], which is always accepted.
    /// [`TcbStatus::Revoked`] is never accepted, even if named here.
    pub accepted_tcb_statuses: BTreeSet<TcbStatus>,
    /// Accept a debuggable TD or enclave (its memory is open to the host): only for
    /// development.
    pub allow_debug: bool,
}

impl Default for DcapOptions {
    fn default() -> Self {
        Self {
            expected_tee: None,
            accepted_tcb_statuses: BTreeSet::from([TcbStatus::UpToDate]),
            allow_debug: false,
        }
    }
}

impl DcapOptions {
    /// Whether `status` is accepted: up-to-date always, revoked never, others when named.
    pub fn accepts(&self, status: TcbStatus) -> bool {
        match status {
            TcbStatus::UpToDate => true,
            TcbStatus::Revoked => false,
            other => self.accepted_tcb_statuses.contains(&other),
        }
    }
}

/// What a verified TD report proves about the trust domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxClaims {
    /// MRTD: the measurement of the TD's initial contents (its firmware).
    pub mrtd: [u8; 48],
    /// RTMR0 to RTMR3: the run-time measurement registers (firmware configuration, kernel,
    /// command line and initrd, application).
    pub rtmrs: [[u8; 48]; 4],
    /// TD_ATTRIBUTES (bit 0: DEBUG; bit 28: SEPT_VE_DISABLE; bit 29: MIGRATABLE).
    pub td_attributes: [u8; 8],
    /// XFAM: the extended CPU features the TD may use.
    pub xfam: [u8; 8],
    /// MRSEAM: the measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// MRSIGNER_SEAM: the TDX module's signer (checked against the TCB info).
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// MRCONFIGID: set by the host at launch.
    pub mr_config_id: [u8; 48],
    /// MROWNER: set by the host at launch.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG: set by the host at launch.
    pub mr_owner_config: [u8; 48],
    /// TEE_TCB_SVN: the TDX module's security versions.
    pub tee_tcb_svn: [u8; 16],
    /// MRSERVICETD (TDX 1.5 bodies of quote version 5): the service TDs bound to the TD.
    pub mr_service_td: Option<[u8; 48]>,
}

/// What a verified enclave report proves about the enclave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgxClaims {
    /// MRENCLAVE: the measurement of the enclave's initial contents.
    pub mrenclave: [u8; 32],
    /// MRSIGNER: the SHA-256 of the key that signed the enclave.
    pub mrsigner: [u8; 32],
    /// ISVPRODID: the product id its signer gave it.
    pub isv_prod_id: u16,
    /// ISVSVN: the security version its signer gave it.
    pub isv_svn: u16,
    /// ATTRIBUTES: flags (byte 0 bit 1: DEBUG) and XFRM.
    pub attributes: [u8; 16],
    /// MISCSELECT.
    pub misc_select: u32,
    /// CPUSVN of the platform when the report was made.
    pub cpu_svn: [u8; 16],
}

/// What a verified quote proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedQuote {
    /// The TEE.
    pub tee: DcapTee,
    /// The quote version (TDX: 4 or 5; SGX: 3).
    pub quote_version: u16,
    /// Intel's converged TCB status (accepted by the options).
    pub tcb_status: TcbStatus,
    /// Intel's security advisories that apply to this platform (e.g. `INTEL-SA-00615`).
    pub advisory_ids: Vec<String>,
    /// REPORTDATA: the 64 bytes the TD or enclave asked to be bound.
    pub report_data: [u8; 64],
    /// Whether the TD or enclave is debuggable (only with [`DcapOptions::allow_debug`]).
    pub debug: bool,
    /// The verification time the collateral and certificates were checked at.
    pub verified_at: OffsetDateTime,
    /// The TD's claims, for a TDX quote.
    pub tdx: Option<TdxClaims>,
    /// The enclave's claims, for an SGX quote.
    pub sgx: Option<SgxClaims>,
}

/// Domain tag of Covenant's TDX measurement ([`tdx_measurement`]).
pub const TDX_MEASUREMENT_DOMAIN: &[u8] = b"covenant-tdx-measurement/1";

/// Covenant's measurement of a trust domain: SHA-384 over [`TDX_MEASUREMENT_DOMAIN`], a zero
/// byte, then MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG and RTMR0 to RTMR3 (48 bytes each, in
/// that order: bytes 136 to 520 of the TD report, as they stand in it).
///
/// MRTD alone covers only the TD's firmware: a VMM could boot any kernel behind the same
/// firmware and its quotes would carry the same MRTD. The RTMRs hold what the firmware and
/// kernel measured as they booted (RTMR1: the kernel; RTMR2: its command line and initrd;
/// RTMR3: what the guest extends), and MRCONFIGID, MROWNER and MROWNERCONFIG what the host set
/// at launch; pinning all of them pins the software the TD runs, as the SEV-SNP launch
/// measurement does with a measured direct boot.
pub fn tdx_measurement(
    mrtd: &[u8; 48],
    mr_config_id: &[u8; 48],
    mr_owner: &[u8; 48],
    mr_owner_config: &[u8; 48],
    rtmrs: &[[u8; 48]; 4],
) -> Measurement {
    use sha2::Digest as _;
    let mut hash = sha2::Sha384::new();
    hash.update(TDX_MEASUREMENT_DOMAIN);
    hash.update([0u8]);
    for register in [mrtd, mr_config_id, mr_owner, mr_owner_config]
        .into_iter()
        .chain(rtmrs.iter())
    {
        hash.update(register);
    }
    Measurement::sha384(hash.finalize().into())
}

impl TdxClaims {
    /// Covenant's measurement of this TD ([`tdx_measurement`]).
    pub fn measurement(&self) -> Measurement {
        tdx_measurement(
            &self.mrtd,
            &self.mr_config_id,
            &self.mr_owner,
            &self.mr_owner_config,
            &self.rtmrs,
        )
    }
}

impl VerifiedQuote {
    /// The measurement: [`tdx_measurement`] (48 bytes) for TDX, MRENCLAVE (32 bytes) for SGX (32 zero bytes
    /// for a value built by hand with neither claims).
    pub fn measurement(&self) -> Measurement {
        match (&self.tdx, &self.sgx) {
            (Some(tdx), _) => tdx.measurement(),
            (None, Some(sgx)) => Measurement::sha256(sgx.mrenclave),
            // Not constructed: verification fills the claims of the quote's TEE.
            (None, None) => Measurement::sha256([0; 32]),
        }
    }
}

/// What a quote says, unverified ([`parse_quote`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteSummary {
    /// The TEE.
    pub tee: DcapTee,
    /// The quote version.
    pub version: u16,
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// [`tdx_measurement`] (TDX) or MRENCLAVE (SGX).
    pub measurement: Measurement,
    /// Whether a debug bit is set (any of TD_ATTRIBUTES' first byte; ATTRIBUTES bit 1).
    pub debug: bool,
}

/// A DCAP quote or its collateral was refused; each variant names the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DcapError {
    /// The quote is larger than [`MAX_QUOTE_LEN`].
    #[error("the DCAP quote is {0} bytes; at most {MAX_QUOTE_LEN} are read")]
    QuoteTooLarge(usize),
    /// The collateral is larger than [`MAX_COLLATERAL_LEN`].
    #[error("the DCAP collateral is {0} bytes; at most {MAX_COLLATERAL_LEN} are read")]
    CollateralTooLarge(usize),
    /// The quote's header names neither TDX nor SGX.
    #[error("the quote's TEE type is {0:#x}, neither TDX (0x81) nor SGX (0)")]
    UnsupportedTeeType(u32),
    /// A quote version the TEE does not have, or this verifier does not read.
    #[error("{tee} quote version {version} is not supported (TDX: 4 or 5; SGX: 3)")]
    UnsupportedVersion {
        /// The TEE the header names.
        tee: DcapTee,
        /// The header's version.
        version: u16,
    },
    /// The quote cannot be parsed (truncated, inconsistent lengths, unknown body type).
    #[error("the quote is malformed: {0}")]
    QuoteMalformed(String),
    /// Bytes other than zero padding follow the quote's authentication data.
    #[error(
        "the quote has non-zero bytes after its end (offset {offset} of {len}): it was altered \
         or is not a quote"
    )]
    TrailingBytes {
        /// Where the quote's authentication data ends.
        offset: usize,
        /// The length received.
        len: usize,
    },
    /// The attestation key is not ECDSA P-256.
    #[error("the quote's attestation key type is {0}, not ECDSA P-256 (2)")]
    UnsupportedAttestationKeyType(u16),
    /// The quote was not made by Intel's Quoting Enclave.
    #[error("the quote's QE vendor id is {0}, not Intel's")]
    UnknownQeVendor(String),
    /// The quote is from another TEE than the caller expects.
    #[error("the quote is from {found}, but the policy expects {expected}")]
    TeeMismatch {
        /// What the caller expects.
        expected: DcapTee,
        /// What the quote says.
        found: DcapTee,
    },
    /// The collateral is not the JSON `dcap-qvl` reads, or a part of it cannot be parsed.
    #[error(
        "the DCAP collateral is malformed ({0}); it must be the JSON of dcap-qvl's \
         QuoteCollateralV3, as a PCCS serves it"
    )]
    CollateralMalformed(String),
    /// The collateral is for the other TEE.
    #[error(
        "the collateral is not for a {quote} quote: {found}; fetch the collateral for this \
         quote from the PCCS"
    )]
    CollateralTeeMismatch {
        /// The quote's TEE.
        quote: DcapTee,
        /// What the collateral holds instead.
        found: String,
    },
    /// The collateral's TCB info or QE identity has a version this verifier does not read.
    #[error("the collateral's {which} has version {version}, which is not supported")]
    UnsupportedCollateralVersion {
        /// `TCB info` or `QE identity`.
        which: &'static str,
        /// Its version.
        version: u8,
    },
    /// The collateral is for another platform.
    #[error(
        "the collateral is for another platform ({field} {collateral}, but the quote's PCK \
         certificate says {quote}); fetch the collateral for this platform's FMSPC from the PCCS"
    )]
    CollateralPlatformMismatch {
        /// `FMSPC` or `PCE id`.
        field: &'static str,
        /// In the quote's PCK certificate, hex.
        quote: String,
        /// In the collateral's TCB info.
        collateral: String,
    },
    /// The collateral carries a PCK certificate chain that is not the quote's.
    #[error(
        "the collateral's PCK certificate chain differs from the one in the quote; send the \
         collateral without it, or with the quote's"
    )]
    PckChainMismatch,
    /// The PCK certificate chain is missing, malformed, or lacks Intel's SGX extensions.
    #[error("the PCK certificate chain is unusable: {0}")]
    PckCertificate(String),
    /// The verification time cannot be used.
    #[error("the verification time {0} is before 1970")]
    InvalidTime(String),
    /// A part of the collateral is not current at the verification time.
    #[error(
        "the collateral's {which} is not current at {at} ({detail}); fetch current collateral \
         for this platform from the PCCS (or check the verifier's clock)"
    )]
    CollateralNotCurrent {
        /// `TCB info`, `QE identity`, `root CA CRL` or `PCK CRL`.
        which: String,
        /// The verification time.
        at: String,
        /// Its validity.
        detail: String,
    },
    /// A certificate is not valid at the verification time.
    #[error(
        "the {which} certificate {subject:?} is not valid at {at} (valid {not_before} to \
         {not_after}); fetch current collateral and certificates from the PCCS"
    )]
    CertificateNotValid {
        /// Which chain it is in (or `root`).
        which: &'static str,
        /// Its subject common name.
        subject: String,
        /// The verification time.
        at: String,
        /// Its notBefore.
        not_before: String,
        /// Its notAfter.
        not_after: String,
    },
    /// The root cannot be used (for the pinned root: a build defect).
    #[error("the Intel SGX Root CA certificate given to the verifier cannot be used: {0}")]
    RootCa(String),
    /// A CRL is malformed or not signed by its issuer.
    #[error(
        "a CRL in the collateral is malformed or not signed by its issuer: {0}; fetch the \
         collateral again from the PCCS"
    )]
    Crl(String),
    /// A certificate chain does not verify to the root.
    #[error(
        "a certificate chain (the PCK chain, or the TCB info or QE identity signer's) does not \
         verify to the Intel SGX Root CA: {0}; the quote or collateral is not Intel's, or not \
         for the root this verifier pins"
    )]
    CertificateChain(String),
    /// A certificate is revoked by Intel.
    #[error(
        "a certificate (the PCK, its CA, or a collateral signer) is revoked by Intel's CRL: {0}; \
         this platform cannot be trusted"
    )]
    CertificateRevoked(String),
    /// The TCB info or QE identity is not validly signed.
    #[error(
        "the collateral's {which} is not signed by its signer's certificate: {detail}; it was \
         altered, fetch it again from the PCCS"
    )]
    CollateralSignature {
        /// `TCB info` or `QE identity`.
        which: &'static str,
        /// `dcap-qvl`'s message.
        detail: String,
    },
    /// The QE report is not signed by the PCK.
    #[error("the Quoting Enclave's report is not signed by the PCK certificate's key: {0}")]
    QeReportSignature(String),
    /// The QE report does not certify the attestation key.
    #[error(
        "the Quoting Enclave's report does not certify the quote's attestation key and \
         authentication data: {0}"
    )]
    QeReportData(String),
    /// The QE does not match Intel's QE identity, or its version is below all its levels.
    #[error(
        "the Quoting Enclave does not match Intel's QE identity in the collateral: {0}; update \
         the platform's DCAP software (QE) or fetch current collateral"
    )]
    QeIdentityMismatch(String),
    /// The quote's header and body are not signed by its attestation key.
    #[error(
        "the quote's signature over its header and body does not verify with its attestation \
         key: the quote was altered ({0})"
    )]
    BadSignature(String),
    /// The platform's TCB matches no level of the TCB info.
    #[error(
        "the platform's TCB (CPU SVN, PCE SVN, TDX module SVNs) matches no level of Intel's TCB \
         info: {0}; update the platform's microcode, firmware and TDX module"
    )]
    NoMatchingTcbLevel(String),
    /// The TDX module does not match its identity in the TCB info.
    #[error(
        "the TDX module does not match Intel's TCB info: {0}; update the TDX module or fetch \
         current collateral"
    )]
    TdxModule(String),
    /// Intel revoked the platform's TCB.
    #[error(
        "the platform's TCB status is revoked (advisories: {}): its keys may be compromised; \
         no policy can accept it",
        advisories(.advisory_ids)
    )]
    TcbRevoked {
        /// Intel's advisory ids, where known.
        advisory_ids: Vec<String>,
    },
    /// The TCB status is not one the options accept.
    #[error(
        "the platform's TCB status is {status} (advisories: {}), which the policy does not \
         accept; update the platform, or accept {status} by name in the policy only after \
         reading those advisories and deciding they do not matter for these computations",
        advisories(.advisory_ids)
    )]
    TcbStatusNotAccepted {
        /// The status.
        status: TcbStatus,
        /// Intel's advisory ids.
        advisory_ids: Vec<String>,
    },
    /// The TD or enclave is debuggable and the caller does not allow it.
    #[error(
        "the {tee} {} runs in debug mode: its memory is open to the host; allow debug in the \
         policy only for development",
        if *.tee == DcapTee::Tdx { "trust domain" } else { "enclave" }
    )]
    DebugNotAllowed {
        /// The TEE.
        tee: DcapTee,
    },
    /// The TD's attributes are refused (profiling, migration, reserved bits, service TDs,
    /// `SEPT_VE_DISABLE` off).
    #[error("the trust domain's attributes are refused: {0}")]
    TdAttributes(String),
    /// Any other failure `dcap-qvl` reports; its message is kept.
    #[error("DCAP quote verification failed: {0}")]
    Verification(String),
}

fn advisories(ids: &[String]) -> String {
    if ids.is_empty() {
        "none named".to_owned()
    } else {
        ids.join(", ")
    }
}

/// A parsed quote: its layout checked, nothing verified.
struct ParsedQuote {
    tee: DcapTee,
    quote: Quote,
}

fn header_fields(quote: &[u8]) -> Result<(u16, u16, u32), DcapError> {
    let header = quote.get(..HEADER_LEN).ok_or_else(|| {
        DcapError::QuoteMalformed(format!(
            "it is {} bytes, shorter than a quote header ({HEADER_LEN})",
            quote.len()
        ))
    })?;
    let field = |at: usize, len: usize| header.get(at..at + len).unwrap_or_default();
    let u16_at = |at| {
        <[u8; 2]>::try_from(field(at, 2))
            .map(u16::from_le_bytes)
            .unwrap_or_default()
    };
    let tee_type = <[u8; 4]>::try_from(field(4, 4))
        .map(u32::from_le_bytes)
        .unwrap_or_default();
    Ok((u16_at(0), u16_at(2), tee_type))
}

/// Parses a quote and checks its layout: step 2 of the module documentation, without the key
/// type and vendor.
fn parse(quote: &[u8]) -> Result<ParsedQuote, DcapError> {
    if quote.len() > MAX_QUOTE_LEN {
        return Err(DcapError::QuoteTooLarge(quote.len()));
    }
    let (version, _, tee_type) = header_fields(quote)?;
    let tee = match tee_type {
        TEE_TYPE_TDX => DcapTee::Tdx,
        TEE_TYPE_SGX => DcapTee::Sgx,
        other => return Err(DcapError::UnsupportedTeeType(other)),
    };
    let version_ok = match tee {
        DcapTee::Tdx => matches!(version, 4 | 5),
        DcapTee::Sgx => version == 3,
    };
    if !version_ok {
        return Err(DcapError::UnsupportedVersion { tee, version });
    }
    let parsed = Quote::parse(quote).map_err(|e| DcapError::QuoteMalformed(format!("{e:#}")))?;
    let body_ok = match tee {
        DcapTee::Tdx => parsed.report.as_td10().is_some(),
        DcapTee::Sgx => parsed.report.as_sgx().is_some(),
    };
    if !body_ok {
        return Err(DcapError::QuoteMalformed(format!(
            "its header says {tee} but its body is another TEE's report"
        )));
    }
    // The parser read a 4-byte length after the signed part and that many bytes of
    // authentication data. Those must be exactly its fields (the parser does not check that it
    // used them all), and what follows may only be zero padding.
    let signed = parsed.signed_length();
    let auth_len = quote
        .get(signed..signed + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .and_then(|len| usize::try_from(len).ok())
        .ok_or_else(|| {
            DcapError::QuoteMalformed("it ends before its authentication data".into())
        })?;
    let end = signed
        .checked_add(4)
        .and_then(|n| n.checked_add(auth_len))
        .filter(|&end| end <= quote.len())
        .ok_or_else(|| {
            DcapError::QuoteMalformed("its authentication data runs past its end".into())
        })?;
    let used = auth_data_len(&parsed.auth_data)?;
    if used != auth_len {
        return Err(DcapError::QuoteMalformed(format!(
            "its authentication data length is {auth_len}, but its fields take {used} bytes"
        )));
    }
    if quote
        .get(end..)
        .is_some_and(|rest| rest.iter().any(|&b| b != 0))
    {
        return Err(DcapError::TrailingBytes {
            offset: end,
            len: quote.len(),
        });
    }
    Ok(ParsedQuote { tee, quote: parsed })
}

/// The length of the authentication data's fields, checking that a version-4 quote's outer
/// certification data is the QE report certification data (type 6) and exactly as long as it.
fn auth_data_len(auth_data: &AuthData) -> Result<usize, DcapError> {
    // QE report, its signature, the QE authentication data, then the certification data.
    let qe_part = |qe_auth: usize, certification: usize| {
        ENCLAVE_REPORT_LEN + SIGNATURE_LEN + 2 + qe_auth + 2 + 4 + certification
    };
    match auth_data {
        AuthData::V3(auth) => Ok(SIGNATURE_LEN
            + ATTESTATION_KEY_LEN
            + qe_part(
                auth.qe_auth_data.data.len(),
                auth.certification_data.body.data.len(),
            )),
        AuthData::V4(auth) => {
            let outer = &auth.certification_data;
            if outer.cert_type != CERT_DATA_QE_REPORT {
                return Err(DcapError::QuoteMalformed(format!(
                    "its certification data is of type {}, not the QE report's ({CERT_DATA_QE_REPORT})",
                    outer.cert_type
                )));
            }
            let inner = &auth.qe_report_data;
            let inner_len = qe_part(
                inner.qe_auth_data.data.len(),
                inner.certification_data.body.data.len(),
            );
            if outer.body.data.len() != inner_len {
                return Err(DcapError::QuoteMalformed(format!(
                    "its QE report certification data length is {}, but its fields take {inner_len} bytes",
                    outer.body.data.len()
                )));
            }
            Ok(SIGNATURE_LEN + ATTESTATION_KEY_LEN + 2 + 4 + inner_len)
        }
    }
}

fn report_data(report: &Report) -> [u8; 64] {
    match report {
        Report::SgxEnclave(r) => r.report_data,
        Report::TD10(r) => r.report_data,
        Report::TD15(r) => r.base.report_data,
        Report::TD15Ex(r) => r.base.base.report_data,
    }
}

fn tdx_claims(report: &Report) -> Option<TdxClaims> {
    let td = report.as_td10()?;
    Some(TdxClaims {
        mrtd: td.mr_td,
        rtmrs: [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3],
        td_attributes: td.td_attributes,
        xfam: td.xfam,
        mr_seam: td.mr_seam,
        mr_signer_seam: td.mr_signer_seam,
        seam_attributes: td.seam_attributes,
        mr_config_id: td.mr_config_id,
        mr_owner: td.mr_owner,
        mr_owner_config: td.mr_owner_config,
        tee_tcb_svn: td.tee_tcb_svn,
        mr_service_td: report.as_td15().map(|td15| td15.mr_service_td),
    })
}

fn sgx_claims(report: &Report) -> Option<SgxClaims> {
    let enclave = report.as_sgx()?;
    Some(SgxClaims {
        mrenclave: enclave.mr_enclave,
        mrsigner: enclave.mr_signer,
        isv_prod_id: enclave.isv_prod_id,
        isv_svn: enclave.isv_svn,
        attributes: enclave.attributes,
        misc_select: enclave.misc_select,
        cpu_svn: enclave.cpu_svn,
    })
}

/// Whether the report's DEBUG bit is set.
fn is_debug(report: &Report) -> bool {
    match (report.as_td10(), report.as_sgx()) {
        // The whole first byte is the TUD group ("TD under debug": DEBUG in bit 0, and the
        // profiling and other debug features in bits 1 to 7, which dcap-qvl admits with
        // DEBUG): any of them lets the host look inside the TD.
        (Some(td), _) => td.td_attributes[0] & TD_ATTRIBUTES_TUD != 0,
        (None, Some(enclave)) => enclave.attributes[0] & SGX_ATTRIBUTES_DEBUG != 0,
        (None, None) => false,
    }
}

/// Parses a quote without verifying anything: its TEE, version, report data, measurement and
/// debug bit. For tools and for the runtime's own quotes; a verifier uses [`verify_quote`].
///
/// # Errors
/// [`DcapError::QuoteTooLarge`], [`DcapError::UnsupportedTeeType`],
/// [`DcapError::UnsupportedVersion`], [`DcapError::QuoteMalformed`],
/// [`DcapError::TrailingBytes`].
pub fn parse_quote(quote: &[u8]) -> Result<QuoteSummary, DcapError> {
    let ParsedQuote { tee, quote } = parse(quote)?;
    let measurement = match (tdx_claims(&quote.report), sgx_claims(&quote.report)) {
        (Some(tdx), _) => tdx.measurement(),
        (None, Some(sgx)) => Measurement::sha256(sgx.mrenclave),
        (None, None) => {
            return Err(DcapError::QuoteMalformed("it has no report body".into()));
        }
    };
    Ok(QuoteSummary {
        tee,
        version: quote.header.version,
        report_data: report_data(&quote.report),
        measurement,
        debug: is_debug(&quote.report),
    })
}

/// The key under which a service may cache the collateral of `quote`: `dcap:<TEE>:<FMSPC>:<PCE
/// id>:<PCK CA>` (hex, upper case; the CA `processor` or `platform`), read from the quote's
/// PCK certificate **unverified**; `None` if the quote does not parse or carries no PCK chain. Intel's collateral is per TEE and platform
/// family (FMSPC) and PCE; collateral found under this key is verified with the quote like fresh
/// collateral, so a wrong key costs only a refusal.
pub fn collateral_cache_key(quote: &[u8]) -> Option<String> {
    let parsed = parse(quote).ok()?;
    if parsed.quote.inner_cert_type() != CERT_DATA_PCK_CHAIN {
        return None;
    }
    let pem = std::str::from_utf8(parsed.quote.inner_cert_data()).ok()?;
    let chain = pem_chain(pem).ok()?;
    let leaf = chain.first()?;
    let extension = dcap_qvl::intel::parse_pck_extension_with::<RingConfig>(leaf).ok()?;
    // The PCK CA (Processor or Platform) decides which PCK CRL the collateral carries: two
    // machines of one FMSPC under different CAs need different collateral.
    let (_, certificate) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let ca = certificate
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(|cn| {
            if cn.contains("Platform") {
                "platform"
            } else if cn.contains("Processor") {
                "processor"
            } else {
                "other"
            }
        })?;
    Some(format!(
        "dcap:{}:{}:{}:{ca}",
        parsed.tee,
        hex::encode_upper(extension.fmspc),
        hex::encode_upper(&extension.pce_id)
    ))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn asn1_time(t: ASN1Time) -> String {
    rfc3339(t.to_datetime())
}

/// The certificates of a PEM chain, in order. Outside its sections the text may hold only white
/// space and NULs, and every section must be a certificate: nothing another PEM parser (such as
/// `dcap-qvl`'s) could read differently.
fn pem_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut sections = 0usize;
    let mut inside = false;
    for line in pem.split('\n') {
        let line = line.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
        if inside {
            inside = !line.starts_with("-----END ");
        } else if line.starts_with("-----BEGIN ") {
            inside = true;
            sections += 1;
        } else if !line.is_empty() {
            return Err("it has text outside its PEM sections".into());
        }
    }
    if inside {
        return Err("a PEM section does not end".into());
    }
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if sections != chain.len() {
        return Err("it has a PEM section that is not a certificate".into());
    }
    Ok(chain)
}

/// The certificate chains of the quote and collateral, parsed and in order (step 4).
struct Chains {
    /// PCK certificate, its CA, maybe the root.
    pck: Vec<CertificateDer<'static>>,
    /// The TCB info signer, maybe the root.
    tcb_signer: Vec<CertificateDer<'static>>,
    /// The QE identity signer, maybe the root.
    qe_signer: Vec<CertificateDer<'static>>,
}

fn common_name(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("?")
        .chars()
        .take(64)
        .collect()
}

/// Checks that a chain is ordered and holds nothing but its path: each certificate is issued
/// (by name) by the next, and it ends in the root itself (byte for byte) or in a certificate
/// whose issuer is the root. So every byte of every certificate in it is checked when its path
/// is verified, and a copy of another root is refused.
fn check_chain_order(
    which: &str,
    chain: &[CertificateDer<'static>],
    root_der: &[u8],
) -> Result<(), DcapError> {
    let (_, root) = x509_parser::parse_x509_certificate(root_der)
        .map_err(|e| DcapError::RootCa(e.to_string()))?;
    let certificates = chain
        .iter()
        .map(|der| {
            x509_parser::parse_x509_certificate(der)
                .map(|(_, cert)| cert)
                .map_err(|e| match which {
                    "PCK chain" => DcapError::PckCertificate(format!("a certificate of it: {e}")),
                    _ => {
                        DcapError::CollateralMalformed(format!("a certificate of the {which}: {e}"))
                    }
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let misordered = |detail: String| DcapError::CertificateChain(format!("the {which}: {detail}"));
    for (i, (child, issuer)) in certificates
        .iter()
        .zip(certificates.iter().skip(1))
        .enumerate()
    {
        if child.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(misordered(format!(
                "its certificate {i} ({:?}) is not issued by the next one ({:?})",
                common_name(child),
                common_name(issuer)
            )));
        }
    }
    let (last_der, last) = chain
        .last()
        .zip(certificates.last())
        .ok_or_else(|| misordered("it has no certificate".into()))?;
    let ends_at_root = if last.subject().as_raw() == last.issuer().as_raw() {
        last_der.as_ref() == root_der
    } else {
        last.issuer().as_raw() == root.subject().as_raw()
    };
    if !ends_at_root {
        return Err(misordered(format!(
            "it ends at {:?}, not at the root this verifier pins",
            common_name(last)
        )));
    }
    Ok(())
}

/// A chain without its last certificate if that is the root.
fn without_root<'c>(
    chain: &'c [CertificateDer<'static>],
    root_der: &[u8],
) -> &'c [CertificateDer<'static>] {
    match chain.split_last() {
        Some((last, rest)) if last.as_ref() == root_der => rest,
        _ => chain,
    }
}

fn first_common_name(chain: &[CertificateDer<'static>]) -> String {
    chain
        .first()
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| common_name(&cert))
        .unwrap_or_else(|| "nothing".into())
}

/// Step 4: the collateral is for this quote. Returns its chains, for steps 5 and 6.
fn check_collateral_is_for_quote(
    parsed: &ParsedQuote,
    collateral: &QuoteCollateralV3,
    tcb_info: &TcbInfo,
    qe_identity: &QeIdentity,
    root_der: &[u8],
) -> Result<Chains, DcapError> {
    let tee = parsed.tee;
    let (tcb_id, tcb_versions, qe_id, qe_versions): (&str, &[u8], &str, &[u8]) = match tee {
        DcapTee::Tdx => ("TDX", &[3], "TD_QE", &[2, 3]),
        DcapTee::Sgx => ("SGX", &[2, 3], "QE", &[2]),
    };
    let id = |s: &str| s.chars().take(32).collect::<String>();
    if tcb_info.id != tcb_id {
        return Err(DcapError::CollateralTeeMismatch {
            quote: tee,
            found: format!("its TCB info is for {:?}", id(&tcb_info.id)),
        });
    }
    if qe_identity.id != qe_id {
        return Err(DcapError::CollateralTeeMismatch {
            quote: tee,
            found: format!("its QE identity is for {:?}", id(&qe_identity.id)),
        });
    }
    if !tcb_versions.contains(&tcb_info.version) {
        return Err(DcapError::UnsupportedCollateralVersion {
            which: "TCB info",
            version: tcb_info.version,
        });
    }
    if !qe_versions.contains(&qe_identity.version) {
        return Err(DcapError::UnsupportedCollateralVersion {
            which: "QE identity",
            version: qe_identity.version,
        });
    }

    // The PCK chain: the quote's, and the collateral's copy (which dcap-qvl prefers) the same.
    let quote_chain = if parsed.quote.inner_cert_type() == CERT_DATA_PCK_CHAIN {
        let pem = std::str::from_utf8(parsed.quote.inner_cert_data())
            .map_err(|_| DcapError::PckCertificate("the quote's chain is not PEM text".into()))?;
        Some(
            pem_chain(pem).map_err(|e| {
                DcapError::PckCertificate(format!("the quote's chain is not PEM: {e}"))
            })?,
        )
    } else {
        None
    };
    let collateral_chain = match &collateral.pck_certificate_chain {
        Some(pem) => Some(pem_chain(pem).map_err(|e| {
            DcapError::PckCertificate(format!("the collateral's chain is not PEM: {e}"))
        })?),
        None => None,
    };
    let pck = match (quote_chain, collateral_chain) {
        (Some(quote), Some(collateral)) if quote != collateral => {
            return Err(DcapError::PckChainMismatch);
        }
        (_, Some(chain)) | (Some(chain), None) => chain,
        (None, None) => {
            return Err(DcapError::PckCertificate(format!(
                "the quote carries no PCK certificate chain (certification data type {}) and the \
                 collateral none either",
                parsed.quote.inner_cert_type()
            )));
        }
    };
    check_chain_order("PCK chain", &pck, root_der)?;
    let leaf = pck
        .first()
        .ok_or_else(|| DcapError::PckCertificate("the chain has no certificate".into()))?;
    let extension = dcap_qvl::intel::parse_pck_extension_with::<RingConfig>(leaf)
        .map_err(|e| DcapError::PckCertificate(format!("its SGX extensions: {e:#}")))?;

    let fmspc = hex::decode(&tcb_info.fmspc).ok();
    if fmspc.as_deref() != Some(extension.fmspc.as_slice()) {
        return Err(DcapError::CollateralPlatformMismatch {
            field: "FMSPC",
            quote: hex::encode_upper(extension.fmspc),
            collateral: id(&tcb_info.fmspc),
        });
    }
    let pce_id = hex::decode(&tcb_info.pce_id).ok();
    if pce_id.as_deref() != Some(extension.pce_id.as_slice()) {
        return Err(DcapError::CollateralPlatformMismatch {
            field: "PCE id",
            quote: hex::encode_upper(&extension.pce_id),
            collateral: id(&tcb_info.pce_id),
        });
    }

    // The other chains: in order, and the PCK CRL's issuer that of the PCK certificate.
    let chain = |which: &str, pem: &str| {
        let chain = pem_chain(pem)
            .map_err(|e| DcapError::CollateralMalformed(format!("the {which} is not PEM: {e}")))?;
        check_chain_order(which, &chain, root_der)?;
        Ok::<_, DcapError>(chain)
    };
    let crl_issuer = chain("PCK CRL issuer chain", &collateral.pck_crl_issuer_chain)?;
    let pck_issuers = pck.get(1..).unwrap_or_default();
    if without_root(&crl_issuer, root_der) != without_root(pck_issuers, root_der) {
        return Err(DcapError::CollateralPlatformMismatch {
            field: "PCK CRL issuer",
            quote: first_common_name(pck_issuers),
            collateral: first_common_name(&crl_issuer),
        });
    }
    Ok(Chains {
        tcb_signer: chain("TCB info signer chain", &collateral.tcb_info_issuer_chain)?,
        qe_signer: chain(
            "QE identity signer chain",
            &collateral.qe_identity_issuer_chain,
        )?,
        pck,
    })
}

fn parse_date(which: &str, text: &str) -> Result<OffsetDateTime, DcapError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        DcapError::CollateralMalformed(format!(
            "{which} date {:?}: {e}",
            text.chars().take(40).collect::<String>()
        ))
    })
}

/// Step 5: the collateral and every certificate used are current at `at`.
fn check_current(
    collateral: &QuoteCollateralV3,
    tcb_info: &TcbInfo,
    qe_identity: &QeIdentity,
    chains: &Chains,
    root_der: &[u8],
    at: OffsetDateTime,
) -> Result<(), DcapError> {
    let not_current = |which: &str, detail: String| DcapError::CollateralNotCurrent {
        which: which.to_owned(),
        at: rfc3339(at),
        detail,
    };
    for (which, issued, next) in [
        ("TCB info", &tcb_info.issue_date, &tcb_info.next_update),
        (
            "QE identity",
            &qe_identity.issue_date,
            &qe_identity.next_update,
        ),
    ] {
        let (issued_at, next_at) = (parse_date(which, issued)?, parse_date(which, next)?);
        if at < issued_at || at > next_at {
            return Err(not_current(
                which,
                format!("issued {issued}, next update {next}"),
            ));
        }
    }
    for (which, der) in [
        ("root CA CRL", &collateral.root_ca_crl),
        ("PCK CRL", &collateral.pck_crl),
    ] {
        let (_, crl) = x509_parser::parse_x509_crl(der)
            .map_err(|e| DcapError::Crl(format!("the {which}: {e}")))?;
        let this_update = crl.last_update();
        let next_update = crl
            .next_update()
            .ok_or_else(|| DcapError::Crl(format!("the {which} has no nextUpdate")))?;
        let now = ASN1Time::from(at);
        if now < this_update || now >= next_update {
            return Err(not_current(
                which,
                format!(
                    "this update {}, next update {}",
                    asn1_time(this_update),
                    asn1_time(next_update)
                ),
            ));
        }
    }

    let root = [CertificateDer::from(root_der.to_vec())];
    for (which, certificates) in [
        ("root", root.as_slice()),
        ("PCK chain", chains.pck.as_slice()),
        ("TCB info signer chain", chains.tcb_signer.as_slice()),
        ("QE identity signer chain", chains.qe_signer.as_slice()),
    ] {
        for der in certificates {
            // Parsed before (step 4); the root only here.
            let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| match which {
                "root" => DcapError::RootCa(e.to_string()),
                _ => DcapError::CollateralMalformed(format!("the {which}: {e}")),
            })?;
            if !cert.validity().is_valid_at(ASN1Time::from(at)) {
                return Err(DcapError::CertificateNotValid {
                    which,
                    subject: common_name(&cert),
                    at: rfc3339(at),
                    not_before: asn1_time(cert.validity().not_before),
                    not_after: asn1_time(cert.validity().not_after),
                });
            }
        }
    }
    Ok(())
}

/// Maps a `dcap-qvl` failure (an `anyhow` chain, formatted with `{:#}`) to the variant of the
/// check it names. `dcap-qvl` has no error type but its messages, so this matches their text;
/// the tests with genuine and altered vectors pin the mapping of each check they reach.
fn classify(detail: String, tee: DcapTee, at: OffsetDateTime) -> DcapError {
    let has = |needle: &str| detail.contains(needle);
    if has("Failed to load root ca") {
        DcapError::RootCa(detail)
    } else if has("TCB status is invalid: Revoked") {
        DcapError::TcbRevoked {
            advisory_ids: Vec::new(),
        }
    } else if has("CertRevoked") {
        DcapError::CertificateRevoked(detail)
    } else if has("TCBInfo expired") || has("TCBInfo issue date") {
        DcapError::CollateralNotCurrent {
            which: "TCB info".into(),
            at: rfc3339(at),
            detail,
        }
    } else if has("QE Identity expired") || has("QE Identity issue date is in the future") {
        DcapError::CollateralNotCurrent {
            which: "QE identity".into(),
            at: rfc3339(at),
            detail,
        }
    } else if has("CrlExpired") {
        DcapError::CollateralNotCurrent {
            which: "CRL".into(),
            at: rfc3339(at),
            detail,
        }
    } else if has("Failed to parse root CA CRL")
        || has("Failed to parse PCK CRL")
        || has("UnknownRevocationStatus")
        || has("InvalidCrlSignature")
        || has("CRLs required")
    {
        DcapError::Crl(detail)
    } else if has("Signature is invalid for tcb_info") {
        DcapError::CollateralSignature {
            which: "TCB info",
            detail,
        }
    } else if has("Signature is invalid for qe_identity") {
        DcapError::CollateralSignature {
            which: "QE identity",
            detail,
        }
    } else if has("Failed to verify certificate chain")
        || has("Too many intermediate certificates")
        || has("must be issued directly by the root CA")
        || has("Certificate chain is too short for")
        || has("leaf certificate")
    {
        DcapError::CertificateChain(detail)
    } else if has("Unsupported DCAP PCK cert format")
        || has("PCK certificates")
        || has("Certificate chain is too short in quote")
        || has("Failed to parse PCK certificate")
    {
        DcapError::PckCertificate(detail)
    } else if has("Signature is invalid for qe_report") {
        DcapError::QeReportSignature(detail)
    } else if has("QE report hash mismatch") || has("Invalid QE auth data length") {
        DcapError::QeReportData(detail)
    } else if has("QE MRSIGNER")
        || has("QE ISVPRODID")
        || has("QE MISCSELECT")
        || has("QE ATTRIBUTES")
        || has("QE report validation failed")
        || has("QE ISVSVN")
        || has("in QE Identity")
        || has("Unsupported QE Identity")
    {
        DcapError::QeIdentityMismatch(detail)
    } else if has("ISV enclave report signature is invalid") || has("signed quote scope") {
        DcapError::BadSignature(detail)
    } else if has("TDX module") || has("tdxModule") {
        DcapError::TdxModule(detail)
    } else if has("No matching TCB level")
        || has("component count mismatch")
        || has("current TDX TCB")
    {
        DcapError::NoMatchingTcbLevel(detail)
    } else if has("non-TDX TCB info") || has("non-SGX TCB info") {
        DcapError::CollateralTeeMismatch {
            quote: tee,
            found: detail,
        }
    } else if has("Debug mode is enabled") {
        DcapError::DebugNotAllowed { tee }
    } else if has("TD profiling")
        || has("TD attributes")
        || has("TD migration")
        || has("SERVTD_EXT")
        || has("SEPT_VE_DISABLE")
        || has("MR service TD")
    {
        DcapError::TdAttributes(detail)
    } else if has("Failed to decode TcbInfo") || has("Failed to decode QeIdentity") {
        DcapError::CollateralMalformed(detail)
    } else if has("Failed to decode quote") || has("Failed to decode QE report") {
        DcapError::QuoteMalformed(detail)
    } else {
        DcapError::Verification(detail)
    }
}

/// Verifies a DCAP quote (TDX v4/v5, SGX v3) with its collateral (the JSON of dcap-qvl's
/// `QuoteCollateralV3`) at time `at`, against the pinned Intel SGX Root CA. See the module
/// documentation for the checks.
///
/// # Errors
/// A [`DcapError`] naming the first check that failed.
pub fn verify_quote(
    quote: &[u8],
    collateral_json: &[u8],
    at: OffsetDateTime,
    options: &DcapOptions,
) -> Result<VerifiedQuote, DcapError> {
    verify_quote_with(&TrustAnchors::pinned(), quote, collateral_json, at, options)
}

/// [`verify_quote`] against the Intel SGX Root CA of `anchors` (the pinned one, except in
/// tests: `TrustAnchors::insecure_for_tests`).
///
/// # Errors
/// A [`DcapError`] naming the first check that failed.
pub fn verify_quote_with(
    anchors: &TrustAnchors,
    quote: &[u8],
    collateral_json: &[u8],
    at: OffsetDateTime,
    options: &DcapOptions,
) -> Result<VerifiedQuote, DcapError> {
    // 1. Sizes.
    if quote.len() > MAX_QUOTE_LEN {
        return Err(DcapError::QuoteTooLarge(quote.len()));
    }
    if collateral_json.len() > MAX_COLLATERAL_LEN {
        return Err(DcapError::CollateralTooLarge(collateral_json.len()));
    }

    // 2. The quote's layout, key type and vendor.
    let parsed = parse(quote)?;
    let tee = parsed.tee;
    let header = parsed.quote.header;
    if header.attestation_key_type != ATTESTATION_KEY_ECDSA_P256 {
        return Err(DcapError::UnsupportedAttestationKeyType(
            header.attestation_key_type,
        ));
    }
    if header.qe_vendor_id != dcap_qvl::INTEL_QE_VENDOR_ID {
        return Err(DcapError::UnknownQeVendor(hex::encode(header.qe_vendor_id)));
    }

    // 3. The TEE.
    if let Some(expected) = options.expected_tee
        && expected != tee
    {
        return Err(DcapError::TeeMismatch {
            expected,
            found: tee,
        });
    }

    // 4. The collateral, for this quote.
    let collateral: QuoteCollateralV3 = serde_json::from_slice(collateral_json)
        .map_err(|e| DcapError::CollateralMalformed(e.to_string()))?;
    let tcb_info: TcbInfo = serde_json::from_str(&collateral.tcb_info)
        .map_err(|e| DcapError::CollateralMalformed(format!("its TCB info: {e}")))?;
    let qe_identity: QeIdentity = serde_json::from_str(&collateral.qe_identity)
        .map_err(|e| DcapError::CollateralMalformed(format!("its QE identity: {e}")))?;
    let root_der = anchors.intel_sgx_root_der();
    let chains =
        check_collateral_is_for_quote(&parsed, &collateral, &tcb_info, &qe_identity, root_der)?;

    // 5. Current at `at`.
    let now_secs =
        u64::try_from(at.unix_timestamp()).map_err(|_| DcapError::InvalidTime(rfc3339(at)))?;
    check_current(&collateral, &tcb_info, &qe_identity, &chains, root_der, at)?;

    // 6. dcap-qvl, with our root and our time. The pass-through policy only returns the claims:
    //    the TCB status is judged below.
    let claims = QuoteVerifier::<RingConfig>::new_with_config(root_der.to_vec())
        .allow_debug(options.allow_debug)
        .verify_with_policy(
            quote,
            collateral,
            now_secs,
            &QuotePolicy::claims_only(now_secs),
        )
        .map_err(|e| classify(format!("{e:#}"), tee, at))?;

    // 7. The TCB status.
    let tcb_status = TcbStatus::from_dcap_qvl(claims.tcb.status);
    let advisory_ids = claims.tcb.advisory_ids;
    if tcb_status == TcbStatus::Revoked {
        return Err(DcapError::TcbRevoked { advisory_ids });
    }
    if !options.accepts(tcb_status) {
        return Err(DcapError::TcbStatusNotAccepted {
            status: tcb_status,
            advisory_ids,
        });
    }

    // 8. Debug, from the verified body.
    let report = claims.report;
    let debug = is_debug(&report);
    if debug && !options.allow_debug {
        return Err(DcapError::DebugNotAllowed { tee });
    }

    let (tdx, sgx) = (tdx_claims(&report), sgx_claims(&report));
    if tdx.is_some() != (tee == DcapTee::Tdx) || sgx.is_some() != (tee == DcapTee::Sgx) {
        return Err(DcapError::QuoteMalformed(format!(
            "its verified body is not a {tee} report"
        )));
    }
    Ok(VerifiedQuote {
        tee,
        quote_version: claims.header.version,
        tcb_status,
        advisory_ids,
        report_data: report_data(&report),
        debug,
        verified_at: at,
        tdx,
        sgx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcb_status_names_round_trip_through_from_str_display_and_serde() {
        for status in TcbStatus::ALL {
            assert_eq!(status.as_str().parse::<TcbStatus>(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<TcbStatus>(&json).unwrap(), status);
        }
        assert!("UpToDate".parse::<TcbStatus>().is_err());
        assert!("".parse::<TcbStatus>().is_err());
    }

    #[test]
    fn up_to_date_is_always_accepted_and_revoked_never() {
        let none = DcapOptions {
            accepted_tcb_statuses: BTreeSet::new(),
            ..DcapOptions::default()
        };
        assert!(none.accepts(TcbStatus::UpToDate));
        let all = DcapOptions {
            accepted_tcb_statuses: TcbStatus::ALL.into_iter().collect(),
            ..DcapOptions::default()
        };
        assert!(!all.accepts(TcbStatus::Revoked));
        assert!(all.accepts(TcbStatus::OutOfDate));
        assert!(!DcapOptions::default().accepts(TcbStatus::SwHardeningNeeded));
    }

    /// Whether an error is the expected one.
    type Check = fn(&DcapError) -> bool;

    #[test]
    fn dcap_qvl_messages_map_to_their_checks() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let tdx = DcapTee::Tdx;
        let cases: &[(&str, Check)] = &[
            ("Failed to load root ca: BadDer", |e| {
                matches!(e, DcapError::RootCa(_))
            }),
            ("TCB status is invalid: Revoked", |e| {
                matches!(e, DcapError::TcbRevoked { .. })
            }),
            ("Failed to verify certificate chain: CertRevoked", |e| {
                matches!(e, DcapError::CertificateRevoked(_))
            }),
            ("Failed to verify certificate chain: UnknownIssuer", |e| {
                matches!(e, DcapError::CertificateChain(_))
            }),
            ("Failed to parse PCK CRL: BadDer", |e| {
                matches!(e, DcapError::Crl(_))
            }),
            (
                "Signature is invalid for tcb_info in quote_collateral",
                |e| {
                    matches!(
                        e,
                        DcapError::CollateralSignature {
                            which: "TCB info",
                            ..
                        }
                    )
                },
            ),
            (
                "Signature is invalid for qe_identity in quote_collateral",
                |e| {
                    matches!(
                        e,
                        DcapError::CollateralSignature {
                            which: "QE identity",
                            ..
                        }
                    )
                },
            ),
            ("Signature is invalid for qe_report in quote", |e| {
                matches!(e, DcapError::QeReportSignature(_))
            }),
            ("QE report hash mismatch", |e| {
                matches!(e, DcapError::QeReportData(_))
            }),
            ("QE MRSIGNER mismatch: expected A, got B", |e| {
                matches!(e, DcapError::QeIdentityMismatch(_))
            }),
            ("ISV enclave report signature is invalid", |e| {
                matches!(e, DcapError::BadSignature(_))
            }),
            ("No matching TCB level found", |e| {
                matches!(e, DcapError::NoMatchingTcbLevel(_))
            }),
            (
                "TDX module TCB level check: TDX module ISVSVN 1 is below minimum",
                |e| matches!(e, DcapError::TdxModule(_)),
            ),
            ("Debug mode is enabled", |e| {
                matches!(e, DcapError::DebugNotAllowed { tee: DcapTee::Tdx })
            }),
            ("SEPT_VE_DISABLE is not enabled", |e| {
                matches!(e, DcapError::TdAttributes(_))
            }),
            ("TCBInfo expired", |e| {
                matches!(e, DcapError::CollateralNotCurrent { .. })
            }),
            ("something new", |e| matches!(e, DcapError::Verification(_))),
        ];
        for (message, expected) in cases {
            let error = classify((*message).to_owned(), tdx, at);
            assert!(expected(&error), "{message}: {error:?}");
        }
    }

    const TDX_QUOTE: &[u8] = include_bytes!("../tests/vectors/tdx/dcap-qvl-tdx_quote");
    const TDX_COLLATERAL: &[u8] =
        include_bytes!("../tests/vectors/tdx/dcap-qvl-tdx_quote_collateral.json");
    const INSIDE: OffsetDateTime = time::macros::datetime!(2025-07-01 00:00 UTC);

    fn anchors_with_intel_root(root_der: Vec<u8>) -> TrustAnchors {
        TrustAnchors::insecure_for_tests(Vec::new(), root_der, Vec::new())
    }

    #[test]
    fn the_root_of_the_anchors_is_the_one_checked_against() {
        let options = DcapOptions::default();
        // The pinned root's bytes, passed as a test root: accepted.
        let same = anchors_with_intel_root(crate::anchors::INTEL_SGX_ROOT_CA_DER.to_vec());
        verify_quote_with(&same, TDX_QUOTE, TDX_COLLATERAL, INSIDE, &options).unwrap();
        // Another root: refused, by this module and by dcap-qvl itself (which must not fall
        // back on its built-in copy of Intel's root).
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let refused = verify_quote_with(
            &anchors_with_intel_root(other.clone()),
            TDX_QUOTE,
            TDX_COLLATERAL,
            INSIDE,
            &options,
        );
        assert!(
            matches!(refused, Err(DcapError::CertificateChain(_))),
            "{refused:?}"
        );
        let collateral: QuoteCollateralV3 = serde_json::from_slice(TDX_COLLATERAL).unwrap();
        let now = u64::try_from(INSIDE.unix_timestamp()).unwrap();
        for root in [other, crate::anchors::INTEL_SGX_ROOT_CA_DER.to_vec()] {
            let accepted = QuoteVerifier::<RingConfig>::new_with_config(root.clone())
                .verify_with_policy(
                    TDX_QUOTE,
                    collateral.clone(),
                    now,
                    &QuotePolicy::claims_only(now),
                )
                .is_ok();
            assert_eq!(accepted, root == crate::anchors::INTEL_SGX_ROOT_CA_DER);
        }
        // Bytes that are not a certificate.
        let refused = verify_quote_with(
            &anchors_with_intel_root(b"not a certificate".to_vec()),
            TDX_QUOTE,
            TDX_COLLATERAL,
            INSIDE,
            &options,
        );
        assert!(matches!(refused, Err(DcapError::RootCa(_))), "{refused:?}");
    }
}
