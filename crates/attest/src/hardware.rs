//! Hardware evidence, end to end: [`verify_hardware`] turns a [`HardwareEvidence`] envelope into
//! [`VerifiedEvidence`] for the CA, and [`HardwareClaims`] is what an attested certificate then
//! says about the hardware, for a client to appraise against its policy
//! ([`HardwareRequirements::check`]).
//!
//! [`verify_hardware`] checks, in order:
//!
//! 1. the envelope ([`HardwareEvidence::decoded_parts`]): its format, a hardware platform kind, an
//!    acceptable computation id, and every part within its size limit;
//! 2. the platform's own verifier, with the roots in the given [`TrustAnchors`] and the time of
//!    verification as a parameter:
//!    - SEV-SNP: [`crate::sev_snp::verify_report_with`], with exactly one endorsement (the VCEK
//!      or VLEK certificate);
//!    - TDX and SGX: [`crate::dcap::verify_quote_with`], with exactly one endorsement (the
//!      collateral JSON), the quote's TEE type required to be the platform's;
//!    - Nitro: [`crate::nitro::verify_document_with`], with no endorsement;
//!
//!    each given the debug, migration-agent and TCB-status rules of the [`HardwareRequirements`];
//! 3. the report data: the hardware-signed 64 bytes equal [`crate::binding::report_data`] over
//!    the envelope's nonce, TLS key hash, policy hash and computation id — so those four values,
//!    which travel in the clear, are exactly the ones the hardware signed;
//! 4. the remaining [`HardwareRequirements`] (the SGX signer and product id).
//!
//! It does not check that the nonce is fresh or that the measurement is allowed: those are the
//! attestation service's database checks, as for software evidence.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::anchors::TrustAnchors;
use crate::platform::CLAIMS_FORMAT;
use crate::{
    EvidenceClaims, EvidenceError, HardwareEvidence, Measurement, PlatformKind, VerifiedEvidence,
};

/// The longest [`HardwareClaims`] an attested certificate may carry, in bytes of JSON. They are
/// a few hundred bytes; this stops a malformed certificate from making a client parse more.
pub const MAX_HARDWARE_CLAIMS_LEN: usize = 2048;

/// The most advisory ids kept in [`HardwareClaims`]; Intel lists a handful per TCB level.
pub const MAX_ADVISORY_IDS: usize = 32;

/// What a relying party trusts when it accepts evidence from each hardware platform, in plain
/// words: carried in the verified claims ([`EvidenceClaims::trust`]). Everything inside the
/// confidential machine is trusted too (`docs/threat-model.md`).
pub const fn trust_statement(kind: PlatformKind) -> &'static str {
    match kind {
        PlatformKind::SevSnp => {
            "AMD SEV-SNP: trusts AMD (its secure processor, firmware and the keys behind the \
             pinned ARK) and the guest the launch measurement covers; not the hypervisor or \
             the machine's operator"
        }
        PlatformKind::Tdx => {
            "Intel TDX: trusts Intel (the CPU, the TDX module, the quoting enclave and the keys \
             behind the pinned SGX Root CA) and what its measurement covers (firmware, kernel, \
             command line, initrd); not the VMM"
        }
        PlatformKind::Sgx => {
            "Intel SGX: trusts Intel (the CPU, the quoting enclave and the keys behind the \
             pinned SGX Root CA) and the enclave's contents; not the host operating system"
        }
        PlatformKind::Nitro => {
            "AWS Nitro Enclaves: trusts AWS (the Nitro hypervisor and the keys behind the \
             pinned Nitro root) and the enclave image's contents; not the parent instance"
        }
        PlatformKind::Software => crate::software::SOFTWARE_TRUST_STATEMENT,
        PlatformKind::TrustZone | PlatformKind::Sel4 => "no verifier for this platform",
    }
}

/// What the hardware said about itself beyond the measurement, as verified. An attested
/// certificate for a hardware platform carries it (extension
/// [`crate::extensions::OID_HARDWARE`]); a client checks it against its policy with
/// [`HardwareRequirements::check`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareClaims {
    /// Whether the hardware lets the host debug the runtime (read and change its memory):
    /// SEV-SNP guest policy DEBUG, TDX TD_ATTRIBUTES.DEBUG, SGX ATTRIBUTES.DEBUG, or a Nitro
    /// document in debug mode.
    pub debug: bool,
    /// The platform's TCB, for people: for SEV-SNP the reported TCB (`bl=…,tee=…,snp=…,ucode=…`),
    /// for DCAP the TCB status, for Nitro empty (AWS does not report one).
    pub tcb: String,
    /// DCAP only: the TCB status (`up-to-date`, `sw-hardening-needed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcb_status: Option<String>,
    /// DCAP only: the Intel security advisories that apply to this TCB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisory_ids: Vec<String>,
    /// SEV-SNP only: whether the guest policy allows a migration agent (which can read the
    /// guest's memory when it moves it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migration_agent: bool,
    /// SGX only: MRSIGNER, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgx_mrsigner: Option<String>,
    /// SGX only: the enclave's ISV product id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgx_isv_prod_id: Option<u16>,
}

/// What a relying party requires of hardware evidence beyond its measurement: the attestation
/// service per enrolled platform, a client per platform in its policy. The default is the
/// strictest: no debug, no migration agent, only an up-to-date TCB, any signer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareRequirements {
    /// Accept a runtime the host can debug. Only ever for development.
    #[serde(default)]
    pub allow_debug: bool,
    /// SEV-SNP: accept a guest policy that allows a migration agent.
    #[serde(default)]
    pub allow_migration_agent: bool,
    /// DCAP: TCB statuses accepted besides `up-to-date`, by name ([`crate::dcap::TcbStatus`]).
    #[serde(default)]
    pub accepted_tcb_statuses: BTreeSet<String>,
    /// SGX: the MRSIGNER the enclave must have, lowercase hex (32 bytes).
    #[serde(default)]
    pub sgx_mrsigner: Option<String>,
    /// SGX: the ISV product id the enclave must have.
    #[serde(default)]
    pub sgx_isv_prod_id: Option<u16>,
}

/// Hardware claims that a [`HardwareRequirements`] does not accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequirementError {
    /// Debugging is enabled and not allowed.
    #[error(
        "the {platform} runtime runs with debugging enabled, so its host can read its memory; \
         allow it only for development (allow_debug)"
    )]
    Debug {
        /// The platform.
        platform: PlatformKind,
    },
    /// The SEV-SNP guest policy allows a migration agent, and that is not allowed.
    #[error("the SEV-SNP guest policy allows a migration agent, which is not allowed")]
    MigrationAgent,
    /// The DCAP TCB status is not accepted.
    #[error(
        "the {platform} TCB status is {status} (advisories: {advisories}); accept it by name \
         (accepted_tcb_statuses) only after reading those advisories"
    )]
    TcbStatus {
        /// The platform.
        platform: PlatformKind,
        /// The status.
        status: String,
        /// The advisories, comma-separated, or `none`.
        advisories: String,
    },
    /// A DCAP certificate without a TCB status.
    #[error("the {platform} claims carry no TCB status")]
    NoTcbStatus {
        /// The platform.
        platform: PlatformKind,
    },
    /// The SGX signer differs.
    #[error("the SGX enclave is signed by MRSIGNER {found}, not {expected}")]
    SgxSigner {
        /// Required.
        expected: String,
        /// Found (or `none`).
        found: String,
    },
    /// The SGX product id differs.
    #[error("the SGX enclave's product id is {found}, not {expected}")]
    SgxProductId {
        /// Required.
        expected: u16,
        /// Found (or `none`).
        found: String,
    },
}

/// The TCB status that is always accepted.
pub const UP_TO_DATE: &str = "up-to-date";

/// The Intel TCB statuses a relying party may accept besides [`UP_TO_DATE`], by name.
/// `revoked` is never acceptable. (`covenant-policy` keeps the same list for policies; a test in
/// `covenant-runtime` checks the two agree.)
pub const ACCEPTABLE_TCB_STATUSES: [&str; 7] = [
    "sw-hardening-needed",
    "configuration-needed",
    "configuration-and-sw-hardening-needed",
    "out-of-date",
    "out-of-date-configuration-needed",
    "td-relaunch-advised",
    "td-relaunch-advised-configuration-needed",
];

impl HardwareRequirements {
    /// Whether these rules make sense for platform `kind`: each rule applies to it, every
    /// accepted TCB status is one that may be accepted, and an SGX signer is 64 lowercase hex
    /// digits. The service checks this when a platform is enrolled.
    ///
    /// # Errors
    /// A sentence naming the first rule that does not apply or is malformed.
    pub fn check_applies_to(&self, kind: PlatformKind) -> Result<(), String> {
        if self.allow_migration_agent && kind != PlatformKind::SevSnp {
            return Err("allow_migration_agent applies to sev-snp only".into());
        }
        let dcap = matches!(kind, PlatformKind::Tdx | PlatformKind::Sgx);
        if !dcap && !self.accepted_tcb_statuses.is_empty() {
            return Err("accepted TCB statuses apply to tdx and sgx only".into());
        }
        if let Some(status) = self
            .accepted_tcb_statuses
            .iter()
            .find(|s| !ACCEPTABLE_TCB_STATUSES.contains(&s.as_str()))
        {
            return Err(format!(
                "TCB status {status:?} cannot be accepted; acceptable: {} (up-to-date always is)",
                ACCEPTABLE_TCB_STATUSES.join(", ")
            ));
        }
        if kind != PlatformKind::Sgx
            && (self.sgx_mrsigner.is_some() || self.sgx_isv_prod_id.is_some())
        {
            return Err("the SGX signer and product id apply to sgx only".into());
        }
        if let Some(signer) = &self.sgx_mrsigner
            && !(signer.len() == 64
                && signer
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            return Err(format!(
                "MRSIGNER {signer:?} is not 64 lowercase hex digits"
            ));
        }
        Ok(())
    }

    /// Whether `claims`, from `platform`, meet these requirements.
    ///
    /// # Errors
    /// The [`RequirementError`] of the first requirement not met.
    pub fn check(
        &self,
        platform: PlatformKind,
        claims: &HardwareClaims,
    ) -> Result<(), RequirementError> {
        if claims.debug && !self.allow_debug {
            return Err(RequirementError::Debug { platform });
        }
        if claims.migration_agent && !self.allow_migration_agent {
            return Err(RequirementError::MigrationAgent);
        }
        if matches!(platform, PlatformKind::Tdx | PlatformKind::Sgx) {
            let status = claims
                .tcb_status
                .as_deref()
                .ok_or(RequirementError::NoTcbStatus { platform })?;
            if status != UP_TO_DATE && !self.accepted_tcb_statuses.contains(status) {
                return Err(RequirementError::TcbStatus {
                    platform,
                    status: status.to_owned(),
                    advisories: advisories_text(&claims.advisory_ids),
                });
            }
        }
        if let Some(expected) = &self.sgx_mrsigner
            && claims.sgx_mrsigner.as_ref() != Some(expected)
        {
            return Err(RequirementError::SgxSigner {
                expected: expected.clone(),
                found: claims.sgx_mrsigner.clone().unwrap_or_else(|| "none".into()),
            });
        }
        if let Some(expected) = self.sgx_isv_prod_id
            && claims.sgx_isv_prod_id != Some(expected)
        {
            return Err(RequirementError::SgxProductId {
                expected,
                found: claims
                    .sgx_isv_prod_id
                    .map_or_else(|| "none".into(), |id| id.to_string()),
            });
        }
        Ok(())
    }
}

fn advisories_text(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// Verifies hardware evidence at time `at` against `anchors` and the requirements of the
/// enrolled platform `platform_name`; see the [module documentation](self) for every check.
/// The [`VerifiedEvidence`] it returns carries the claims (with a `trust` statement saying
/// what a relying party trusts) and the [`HardwareClaims`].
///
/// # Errors
/// [`EvidenceError::Malformed`] for the envelope, [`EvidenceError::Hardware`] naming the
/// platform's failed check, [`EvidenceError::ReportDataMismatch`],
/// [`EvidenceError::Requirement`], [`EvidenceError::UnsupportedPlatform`].
pub fn verify_hardware(
    evidence: &HardwareEvidence,
    platform_name: &str,
    requirements: &HardwareRequirements,
    anchors: &TrustAnchors,
    at: OffsetDateTime,
) -> Result<VerifiedEvidence, EvidenceError> {
    let (raw, endorsements) = evidence.decoded_parts()?;
    let platform = evidence.platform;
    let failed = |reason: String| EvidenceError::Hardware { platform, reason };
    let one_endorsement = |what: &str| match endorsements.as_slice() {
        [one] => Ok(one.as_slice()),
        [] => Err(EvidenceError::MissingEndorsement {
            platform,
            what: what.to_owned(),
        }),
        more => Err(EvidenceError::Malformed(format!(
            "{} endorsements; {platform} evidence takes exactly one ({what})",
            more.len()
        ))),
    };
    let (measurement, report_data, hardware): (Measurement, [u8; 64], HardwareClaims) =
        match platform {
            PlatformKind::SevSnp => {
                let endorsement = one_endorsement("the VCEK or VLEK certificate")?;
                let options = crate::sev_snp::SevSnpOptions {
                    allow_debug: requirements.allow_debug,
                    allow_migration_agent: requirements.allow_migration_agent,
                    // The runtime asks for its report at VMPL 0 (configfs-tsm's default for a
                    // guest without an SVSM); a report from a less privileged level comes from
                    // code that does not control the guest.
                    required_vmpl: Some(0),
                };
                let verified =
                    crate::sev_snp::verify_report_with(anchors, &raw, endorsement, at, &options)
                        .map_err(|e| failed(e.to_string()))?;
                let claims = HardwareClaims {
                    debug: verified.report.debug_allowed(),
                    tcb: sev_snp_tcb_text(&verified.reported_tcb),
                    migration_agent: verified.report.migration_agent_allowed(),
                    ..HardwareClaims::default()
                };
                (verified.measurement(), *verified.report_data(), claims)
            }
            PlatformKind::Tdx | PlatformKind::Sgx => {
                let collateral = one_endorsement("the DCAP collateral JSON")?;
                let tee = if platform == PlatformKind::Tdx {
                    crate::dcap::DcapTee::Tdx
                } else {
                    crate::dcap::DcapTee::Sgx
                };
                let accepted_tcb_statuses = requirements
                    .accepted_tcb_statuses
                    .iter()
                    .map(|name| name.parse())
                    .collect::<Result<_, _>>()
                    .map_err(|e: crate::dcap::UnknownTcbStatus| {
                        EvidenceError::BadEnrolment(e.to_string())
                    })?;
                let options = crate::dcap::DcapOptions {
                    expected_tee: Some(tee),
                    accepted_tcb_statuses,
                    allow_debug: requirements.allow_debug,
                };
                let verified =
                    crate::dcap::verify_quote_with(anchors, &raw, collateral, at, &options)
                        .map_err(|e| failed(e.to_string()))?;
                let status = verified.tcb_status.to_string();
                let claims = HardwareClaims {
                    debug: verified.debug,
                    tcb: status.clone(),
                    tcb_status: Some(status),
                    advisory_ids: verified
                        .advisory_ids
                        .iter()
                        .take(MAX_ADVISORY_IDS)
                        .cloned()
                        .collect(),
                    sgx_mrsigner: verified.sgx.as_ref().map(|s| hex::encode(s.mrsigner)),
                    sgx_isv_prod_id: verified.sgx.as_ref().map(|s| s.isv_prod_id),
                    ..HardwareClaims::default()
                };
                (verified.measurement(), verified.report_data, claims)
            }
            PlatformKind::Nitro => {
                if !endorsements.is_empty() {
                    return Err(EvidenceError::Malformed(
                        "Nitro evidence takes no endorsement: its certificates are inside it"
                            .into(),
                    ));
                }
                let verified =
                    crate::nitro::verify_document_with(anchors, &raw, at, requirements.allow_debug)
                        .map_err(|e| failed(e.to_string()))?;
                let measurement = verified
                    .measurement()
                    .ok_or_else(|| failed("the document has no PCR0".into()))?;
                let report_data: [u8; 64] = verified
                    .user_data
                    .as_deref()
                    .and_then(|data| data.try_into().ok())
                    .ok_or_else(|| {
                        failed("the document's user_data is not 64 bytes of report data".into())
                    })?;
                let claims = HardwareClaims {
                    debug: verified.debug,
                    ..HardwareClaims::default()
                };
                (measurement, report_data, claims)
            }
            other => return Err(EvidenceError::UnsupportedPlatform(other)),
        };
    if report_data != evidence.expected_report_data() {
        return Err(EvidenceError::ReportDataMismatch { platform });
    }
    requirements
        .check(platform, &hardware)
        .map_err(EvidenceError::Requirement)?;
    Ok(VerifiedEvidence::new_hardware(
        platform_name.to_owned(),
        EvidenceClaims {
            format: CLAIMS_FORMAT.into(),
            platform,
            trust: trust_statement(platform).into(),
            measurement,
            policy_hash: evidence.policy_hash,
            computation_id: evidence.computation_id.clone(),
            tls_public_key_sha256: evidence.tls_public_key_sha256,
            nonce: evidence.nonce,
        },
        hardware,
    ))
}

/// An SEV-SNP TCB for people: `bl=3,tee=0,snp=8,ucode=115`, with `fmc=…` first on Turin.
fn sev_snp_tcb_text(tcb: &crate::sev_snp::TcbVersion) -> String {
    let fmc = tcb.fmc.map(|v| format!("fmc={v},")).unwrap_or_default();
    format!(
        "{fmc}bl={},tee={},snp={},ucode={}",
        tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    )
}

/// The key under which the service caches the endorsement `raw` evidence needs, read from the
/// evidence **unverified** (the cached endorsement is verified with the evidence like a fresh
/// one, so a wrong key only costs a refusal):
///
/// - SEV-SNP reports signed by a VCEK: `vcek:<chip id>:<reported TCB>` (hex), because a VCEK
///   is derived from exactly those two;
/// - DCAP quotes: `dcap:<TEE>:<FMSPC>:<PCE id>:<PCK CA>` (see
///   [`crate::dcap::collateral_cache_key`]),
///   because Intel's collateral is per platform family;
/// - anything else (VLEK-signed reports, Nitro, unparsable evidence): none.
pub fn endorsement_cache_key(platform: PlatformKind, raw: &[u8]) -> Option<String> {
    match platform {
        PlatformKind::SevSnp => {
            let report = crate::sev_snp::AttestationReport::parse(raw).ok()?;
            (report.signing_key().ok()? == crate::sev_snp::EndorsementKind::Vcek
                && !report.chip_id_masked())
            .then(|| {
                format!(
                    "vcek:{}:{}",
                    hex::encode(report.chip_id),
                    hex::encode(report.reported_tcb)
                )
            })
        }
        PlatformKind::Tdx | PlatformKind::Sgx => crate::dcap::collateral_cache_key(raw),
        _ => None,
    }
}
