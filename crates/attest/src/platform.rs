//! Platforms produce evidence; verifiers check it.
//!
//! Evidence travels as an [`Evidence`] envelope: the platform kind, the id of the key that
//! signed, the signed claims as the exact bytes that were signed (base64 of a JSON object,
//! [`EvidenceClaims`]) and the signature. Signing exact bytes means no canonicalisation is
//! needed: the verifier checks the signature over the bytes it received and only then parses
//! them.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{AttestError, Digest, EvidenceError, Measurement, Nonce, check_computation_id};

/// Format tag of the software [`Evidence`] envelope this version writes and reads.
pub const EVIDENCE_FORMAT: &str = "covenant-evidence/1";
/// Format tag of the signed [`EvidenceClaims`] this version writes and reads.
pub const CLAIMS_FORMAT: &str = "covenant-evidence-claims/1";
/// The largest signed claims object a verifier decodes, in bytes (after base64). Claims are a
/// few hundred bytes; this stops hostile evidence from making the service parse megabytes.
pub const MAX_CLAIMS_LEN: usize = 4096;
/// The largest signature a verifier decodes, in bytes (after base64). A DER ECDSA P-256
/// signature is at most 72 bytes; hardware quotes are larger and get their own field later.
pub const MAX_SIGNATURE_LEN: usize = 512;

/// The kind of isolation a runtime runs in: the software platform, the four hardware platforms
/// with verifiers, and two reserved so that policies, certificates and the database can name
/// them already.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PlatformKind {
    /// No hardware isolation: a process on a host whose operating system is trusted. For
    /// development, tests and hosts without a TEE.
    Software,
    /// Intel SGX enclaves (DCAP quotes, [`crate::dcap`]).
    Sgx,
    /// Arm TrustZone with OP-TEE (reserved: no verifier).
    #[serde(rename = "trustzone")]
    TrustZone,
    /// A virtual machine isolated by the seL4 hypervisor (reserved: no verifier).
    Sel4,
    /// AWS Nitro Enclaves ([`crate::nitro`]).
    Nitro,
    /// AMD SEV-SNP confidential VMs ([`crate::sev_snp`]).
    SevSnp,
    /// Intel TDX trust domains (DCAP quotes, [`crate::dcap`]).
    Tdx,
}

impl PlatformKind {
    /// Every kind, in a fixed order.
    pub const ALL: [PlatformKind; 7] = [
        Self::Software,
        Self::Sgx,
        Self::TrustZone,
        Self::Sel4,
        Self::Nitro,
        Self::SevSnp,
        Self::Tdx,
    ];

    /// The name used in JSON, certificates, the database and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Sgx => "sgx",
            Self::TrustZone => "trustzone",
            Self::Sel4 => "sel4",
            Self::Nitro => "nitro",
            Self::SevSnp => "sev-snp",
            Self::Tdx => "tdx",
        }
    }

    /// Whether evidence from this kind is only as trustworthy as the host operating system.
    /// True for [`PlatformKind::Software`] only.
    pub const fn trusts_host_os(self) -> bool {
        matches!(self, Self::Software)
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform kind name that is not one of [`PlatformKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform kind {0:?} (known: software, sgx, trustzone, sel4, nitro, sev-snp, tdx)")]
pub struct UnknownPlatformKind(pub String);

impl FromStr for PlatformKind {
    type Err = UnknownPlatformKind;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownPlatformKind(text.chars().take(64).collect()))
    }
}

/// What a runtime asks its platform to bind into evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceRequest {
    /// SHA-256 of the canonical policy the runtime serves.
    pub policy_hash: Digest,
    /// The computation id from that policy.
    pub computation_id: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo of the runtime's TLS key.
    pub tls_public_key_sha256: Digest,
    /// The nonce the attestation service handed out.
    pub nonce: Nonce,
}

impl EvidenceRequest {
    /// Builds a request from the TLS key's DER SubjectPublicKeyInfo (hashed here).
    ///
    /// # Errors
    /// [`AttestError::InvalidComputationId`] if the id is not acceptable
    /// (see [`check_computation_id`]).
    pub fn new(
        policy_hash: Digest,
        computation_id: &str,
        tls_public_key_spki_der: &[u8],
        nonce: Nonce,
    ) -> Result<Self, AttestError> {
        check_computation_id(computation_id)?;
        Ok(Self {
            policy_hash,
            computation_id: computation_id.to_owned(),
            tls_public_key_sha256: Digest::of(tls_public_key_spki_der),
            nonce,
        })
    }
}

/// The claims a platform signs. Every field is bound by the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceClaims {
    /// Always [`CLAIMS_FORMAT`].
    pub format: String,
    /// The platform kind.
    pub platform: PlatformKind,
    /// What a relying party must trust for these claims to hold, in plain words. For the
    /// software platform: [`crate::software::SOFTWARE_TRUST_STATEMENT`].
    pub trust: String,
    /// The runtime's measurement.
    pub measurement: Measurement,
    /// SHA-256 of the policy the runtime serves.
    pub policy_hash: Digest,
    /// The computation id.
    pub computation_id: String,
    /// SHA-256 of the runtime's TLS key (DER SubjectPublicKeyInfo).
    pub tls_public_key_sha256: Digest,
    /// The service's nonce.
    pub nonce: Nonce,
}

/// Evidence as it travels from the runtime through the (untrusted) host to the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Always [`EVIDENCE_FORMAT`].
    pub format: String,
    /// The platform kind; must equal the one inside the signed claims.
    pub platform: PlatformKind,
    /// SHA-256 of the DER SubjectPublicKeyInfo of the key that signed: for the software
    /// platform, the enrolled platform key. The service finds the enrolled platform by it.
    pub signer_key_id: Digest,
    /// Base64 (standard alphabet, padded) of the signed claims, a JSON [`EvidenceClaims`].
    pub claims: String,
    /// Base64 of the signature over the claims bytes (for the software platform: DER ECDSA
    /// P-256 with SHA-256).
    pub signature: String,
}

impl Evidence {
    /// The claims bytes and signature bytes, decoded and bounded
    /// ([`MAX_CLAIMS_LEN`], [`MAX_SIGNATURE_LEN`]).
    ///
    /// # Errors
    /// [`EvidenceError::UnsupportedFormat`] or [`EvidenceError::Malformed`].
    pub fn decoded_parts(&self) -> Result<(Vec<u8>, Vec<u8>), EvidenceError> {
        if self.format != EVIDENCE_FORMAT {
            return Err(EvidenceError::UnsupportedFormat(
                self.format.chars().take(64).collect(),
            ));
        }
        let engine = &base64::engine::general_purpose::STANDARD;
        // Check the encoded lengths first so nothing large is ever decoded.
        if self.claims.len() > MAX_CLAIMS_LEN.div_ceil(3) * 4 {
            return Err(EvidenceError::Malformed(format!(
                "claims longer than {MAX_CLAIMS_LEN} bytes"
            )));
        }
        if self.signature.len() > MAX_SIGNATURE_LEN.div_ceil(3) * 4 {
            return Err(EvidenceError::Malformed(format!(
                "signature longer than {MAX_SIGNATURE_LEN} bytes"
            )));
        }
        let claims = engine
            .decode(&self.claims)
            .map_err(|e| EvidenceError::Malformed(format!("claims are not base64: {e}")))?;
        let signature = engine
            .decode(&self.signature)
            .map_err(|e| EvidenceError::Malformed(format!("signature is not base64: {e}")))?;
        Ok((claims, signature))
    }

    /// Parses signed claims bytes. Call only after the signature over them has verified.
    pub(crate) fn parse_claims(&self, bytes: &[u8]) -> Result<EvidenceClaims, EvidenceError> {
        let claims: EvidenceClaims = serde_json::from_slice(bytes)
            .map_err(|e| EvidenceError::Malformed(format!("claims: {e}")))?;
        if claims.format != CLAIMS_FORMAT {
            return Err(EvidenceError::UnsupportedFormat(
                claims.format.chars().take(64).collect(),
            ));
        }
        if claims.platform != self.platform {
            return Err(EvidenceError::ClaimsEnvelopeMismatch {
                claims: claims.platform,
                envelope: self.platform,
            });
        }
        check_computation_id(&claims.computation_id)
            .map_err(|e| EvidenceError::Malformed(e.to_string()))?;
        Ok(claims)
    }
}

/// Format tag of [`HardwareEvidence`].
pub const HARDWARE_EVIDENCE_FORMAT: &str = "covenant-hardware-evidence/1";
/// The largest report, quote or document a verifier decodes, in bytes (after base64). An
/// SEV-SNP report is 1184 bytes, a TDX quote with its PCK chain about 5 KiB, a Nitro document
/// at most 16 KiB; this stops hostile evidence from making the service decode megabytes.
pub const MAX_HARDWARE_EVIDENCE_LEN: usize = 32 * 1024;
/// The most endorsements one piece of hardware evidence may carry. SEV-SNP needs one (the VCEK
/// or VLEK), DCAP one (the collateral), Nitro none; a verifier takes no more.
pub const MAX_ENDORSEMENTS: usize = 1;
/// The largest endorsement a verifier decodes, in bytes (after base64). DCAP collateral (TCB
/// info, QE identity, CRLs and their chains) is about 20 KiB; a certificate a few KiB.
pub const MAX_ENDORSEMENT_LEN: usize = 64 * 1024;

/// Evidence from a hardware platform (SEV-SNP, TDX, SGX, Nitro) as it travels from the runtime
/// through the (untrusted) host to the service.
///
/// The hardware signs one 64-byte report data field; the runtime puts there
/// [`crate::binding::report_data`] over the four values below, which travel in the clear. The
/// verifier recomputes the report data from them and requires equality, so none of them can be
/// changed without the hardware's signature failing to cover it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareEvidence {
    /// Always [`HARDWARE_EVIDENCE_FORMAT`].
    pub format: String,
    /// The platform kind: `sev-snp`, `tdx`, `sgx` or `nitro`.
    pub platform: PlatformKind,
    /// SHA-256 of the policy the runtime serves.
    pub policy_hash: Digest,
    /// The computation id.
    pub computation_id: String,
    /// SHA-256 of the runtime's TLS key (DER SubjectPublicKeyInfo).
    pub tls_public_key_sha256: Digest,
    /// The service's nonce.
    pub nonce: Nonce,
    /// Base64 (standard alphabet, padded) of the raw evidence: the SEV-SNP attestation report,
    /// the DCAP quote, or the Nitro COSE_Sign1 document.
    pub evidence: String,
    /// Base64 of each endorsement supplied alongside: the VCEK or VLEK certificate (SEV-SNP),
    /// the collateral JSON (DCAP). They come from the host or a vendor's service and are
    /// trusted only as far as their signatures chain to a pinned root.
    #[serde(default)]
    pub endorsements: Vec<String>,
}

impl HardwareEvidence {
    /// The raw evidence and endorsements, decoded and bounded ([`MAX_HARDWARE_EVIDENCE_LEN`],
    /// [`MAX_ENDORSEMENTS`], [`MAX_ENDORSEMENT_LEN`]), after checking the format, that the
    /// platform is a hardware kind and that the computation id is acceptable.
    ///
    /// # Errors
    /// [`EvidenceError::UnsupportedFormat`] or [`EvidenceError::Malformed`].
    pub fn decoded_parts(&self) -> Result<(Vec<u8>, Vec<Vec<u8>>), EvidenceError> {
        if self.format != HARDWARE_EVIDENCE_FORMAT {
            return Err(EvidenceError::UnsupportedFormat(
                self.format.chars().take(64).collect(),
            ));
        }
        if self.platform.trusts_host_os() {
            return Err(EvidenceError::Malformed(format!(
                "hardware evidence names platform {}, which is not a hardware platform",
                self.platform
            )));
        }
        check_computation_id(&self.computation_id)
            .map_err(|e| EvidenceError::Malformed(e.to_string()))?;
        if self.endorsements.len() > MAX_ENDORSEMENTS {
            return Err(EvidenceError::Malformed(format!(
                "{} endorsements; at most {MAX_ENDORSEMENTS} are accepted",
                self.endorsements.len()
            )));
        }
        let evidence = decode_bounded(&self.evidence, MAX_HARDWARE_EVIDENCE_LEN, "evidence")?;
        let endorsements = self
            .endorsements
            .iter()
            .map(|e| decode_bounded(e, MAX_ENDORSEMENT_LEN, "endorsement"))
            .collect::<Result<_, _>>()?;
        Ok((evidence, endorsements))
    }

    /// The report data this evidence must carry: [`crate::binding::report_data`] over its
    /// nonce, TLS key hash, policy hash and computation id.
    pub fn expected_report_data(&self) -> [u8; crate::binding::REPORT_DATA_LEN] {
        crate::binding::report_data(
            &self.nonce,
            &self.tls_public_key_sha256,
            &self.policy_hash,
            &self.computation_id,
        )
    }
}

/// Base64 text decoded, refusing (before decoding) anything that would exceed `max` bytes.
fn decode_bounded(text: &str, max: usize, what: &str) -> Result<Vec<u8>, EvidenceError> {
    if text.len() > max.div_ceil(3) * 4 {
        return Err(EvidenceError::Malformed(format!(
            "{what} longer than {max} bytes"
        )));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| EvidenceError::Malformed(format!("{what} is not base64: {e}")))
}

/// Evidence of either family, as a [`Platform`] produces it and an attestation request carries
/// it. On the wire it is one JSON object; its `format` says which.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PlatformEvidence {
    /// Software evidence, signed by an enrolled platform key.
    Software(Evidence),
    /// Hardware evidence, signed by the hardware.
    Hardware(HardwareEvidence),
}

impl PlatformEvidence {
    /// The platform kind it claims.
    pub fn platform(&self) -> PlatformKind {
        match self {
            Self::Software(e) => e.platform,
            Self::Hardware(e) => e.platform,
        }
    }
}

impl<'de> Deserialize<'de> for PlatformEvidence {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let format = value
            .get("format")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| D::Error::custom("evidence has no \"format\" string"))?;
        match format {
            EVIDENCE_FORMAT => serde_json::from_value(value)
                .map(Self::Software)
                .map_err(D::Error::custom),
            HARDWARE_EVIDENCE_FORMAT => serde_json::from_value(value)
                .map(Self::Hardware)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "unknown evidence format {:?} (known: {EVIDENCE_FORMAT}, {HARDWARE_EVIDENCE_FORMAT})",
                other.chars().take(64).collect::<String>()
            ))),
        }
    }
}

impl From<Evidence> for PlatformEvidence {
    fn from(evidence: Evidence) -> Self {
        Self::Software(evidence)
    }
}

impl From<HardwareEvidence> for PlatformEvidence {
    fn from(evidence: HardwareEvidence) -> Self {
        Self::Hardware(evidence)
    }
}

/// Something that can attest the runtime it runs: knows its kind and measurement, and signs
/// claims binding a request.
///
/// A runtime holds one `Platform` and calls [`Platform::evidence`] once per attestation, after
/// getting a nonce from the service and making its TLS key.
pub trait Platform: Send + Sync {
    /// The platform kind.
    fn kind(&self) -> PlatformKind;

    /// The measurement of the running runtime, as this platform sees it.
    fn measurement(&self) -> Measurement;

    /// Produces evidence binding `request` to this platform and measurement.
    ///
    /// # Errors
    /// [`AttestError`] if the platform cannot sign.
    fn evidence(&self, request: &EvidenceRequest) -> Result<PlatformEvidence, AttestError>;
}

/// A platform the attestation service has enrolled: its name (chosen by the service's
/// administrator), kind and certificate (for the software platform: the platform key's
/// self-signed certificate, as `covenant identity new` writes it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformEnrolment {
    /// The administrator's name for it.
    pub name: String,
    /// Its kind.
    pub kind: PlatformKind,
    /// Its certificate, DER.
    pub certificate_der: Vec<u8>,
}

impl PlatformEnrolment {
    /// SHA-256 of the certificate's DER SubjectPublicKeyInfo: the key id evidence names in
    /// [`Evidence::signer_key_id`].
    ///
    /// # Errors
    /// [`EvidenceError::BadEnrolment`] if the certificate cannot be parsed.
    pub fn key_id(&self) -> Result<Digest, EvidenceError> {
        certificate_key_id(&self.certificate_der)
            .map_err(|e| EvidenceError::BadEnrolment(e.to_string()))
    }
}

/// SHA-256 of a certificate's DER SubjectPublicKeyInfo.
///
/// # Errors
/// [`AttestError::Certificate`] if it cannot be parsed.
pub fn certificate_key_id(certificate_der: &[u8]) -> Result<Digest, AttestError> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate_der)
        .map_err(|e| AttestError::Certificate(e.to_string()))?;
    Ok(Digest::of(cert.public_key().raw))
}

/// Evidence whose signature and format a verifier has checked. Only verifiers in this crate can
/// make one, so holding one proves the check ran (the rustls proof-token pattern); the CA issues
/// attested certificates only from it.
///
/// What it does **not** prove: that the nonce is fresh and unused, or that the measurement is
/// one the service accepts. Those are the service's database checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvidence {
    platform_name: String,
    claims: EvidenceClaims,
    hardware: Option<crate::hardware::HardwareClaims>,
}

impl VerifiedEvidence {
    pub(crate) fn new(platform_name: String, claims: EvidenceClaims) -> Self {
        Self {
            platform_name,
            claims,
            hardware: None,
        }
    }

    pub(crate) fn new_hardware(
        platform_name: String,
        claims: EvidenceClaims,
        hardware: crate::hardware::HardwareClaims,
    ) -> Self {
        Self {
            platform_name,
            claims,
            hardware: Some(hardware),
        }
    }

    /// What the hardware said about itself (debug, TCB, …); `None` for software evidence.
    pub fn hardware(&self) -> Option<&crate::hardware::HardwareClaims> {
        self.hardware.as_ref()
    }

    /// The enrolled platform's name.
    pub fn platform_name(&self) -> &str {
        &self.platform_name
    }

    /// The verified claims.
    pub fn claims(&self) -> &EvidenceClaims {
        &self.claims
    }
}

/// Checks evidence of one platform kind against an enrolled platform.
pub trait EvidenceVerifier: Send + Sync {
    /// The kind this verifier handles.
    fn kind(&self) -> PlatformKind;

    /// Verifies `evidence` as coming from `enrolment`.
    ///
    /// # Errors
    /// An [`EvidenceError`] naming the failed check.
    fn verify(
        &self,
        evidence: &Evidence,
        enrolment: &PlatformEnrolment,
    ) -> Result<VerifiedEvidence, EvidenceError>;
}

/// The verifier of software evidence ([`Evidence`]) for a platform kind. Hardware evidence
/// travels as [`HardwareEvidence`] and is verified by [`crate::hardware::verify_hardware`].
///
/// # Errors
/// [`EvidenceError::UnsupportedPlatform`] for every kind but [`PlatformKind::Software`]
/// (software evidence claiming a hardware kind is refused).
pub fn verifier_for(kind: PlatformKind) -> Result<&'static dyn EvidenceVerifier, EvidenceError> {
    match kind {
        PlatformKind::Software => Ok(&crate::software::SoftwareVerifier),
        other => Err(EvidenceError::UnsupportedPlatform(other)),
    }
}
