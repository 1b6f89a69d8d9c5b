//! Error types. Each refusal has its own variant so that callers (the service's audit log, a
//! client's error message) can say exactly which check failed.

use std::path::PathBuf;

use crate::{Digest, PlatformKind};

/// An operation on keys, certificates or files failed (not a refusal of someone's input).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// PEM text did not hold what it should.
    #[error("{what}: not valid PEM ({reason})")]
    Pem {
        /// What was being read, e.g. "platform certificate".
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// A key could not be loaded or used.
    #[error("key: {0}")]
    Key(String),
    /// A certificate could not be parsed, built or signed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A computation id is not acceptable.
    #[error("invalid computation id: {0}")]
    InvalidComputationId(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Evidence could not be encoded.
    #[error("encoding evidence: {0}")]
    Encoding(String),
    /// The configfs-tsm report interface refused a request or misbehaved.
    #[error("configfs-tsm: {0}")]
    Tsm(#[from] crate::tsm::TsmError),
}

/// Evidence was refused by a verifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The evidence is not in a format this version understands.
    #[error("unsupported evidence format {0:?}")]
    UnsupportedFormat(String),
    /// No verifier exists (yet) for this platform kind.
    #[error("no verifier for platform kind {0}")]
    UnsupportedPlatform(PlatformKind),
    /// The evidence names a different platform kind than the enrolled platform has.
    #[error("evidence is for platform kind {evidence} but the enrolled platform is {enrolled}")]
    PlatformKindMismatch {
        /// Kind named in the evidence.
        evidence: PlatformKind,
        /// Kind of the enrolled platform.
        enrolled: PlatformKind,
    },
    /// The evidence names a signing key other than the enrolled platform's.
    #[error("evidence is signed by key {evidence}, not the enrolled platform key {enrolled}")]
    SignerMismatch {
        /// Key id named in the evidence.
        evidence: Digest,
        /// Key id of the enrolled platform.
        enrolled: Digest,
    },
    /// The signature does not verify with the enrolled platform key.
    #[error("the evidence signature does not verify with the enrolled platform key")]
    BadSignature,
    /// The evidence or its claims could not be decoded.
    #[error("malformed evidence: {0}")]
    Malformed(String),
    /// The signed claims disagree with the unsigned envelope around them.
    #[error("the signed claims say platform {claims} but the envelope says {envelope}")]
    ClaimsEnvelopeMismatch {
        /// Kind in the signed claims.
        claims: PlatformKind,
        /// Kind in the envelope.
        envelope: PlatformKind,
    },
    /// The enrolled platform's certificate is unusable (not a P-256 key), or its requirements
    /// cannot be read.
    #[error("the enrolled platform is unusable: {0}")]
    BadEnrolment(String),
    /// The hardware platform's verifier refused the evidence: the reason names the check.
    #[error("the {platform} evidence does not verify: {reason}")]
    Hardware {
        /// The platform.
        platform: PlatformKind,
        /// Which check failed, in the platform verifier's words.
        reason: String,
    },
    /// Hardware evidence came without the endorsement its platform needs, and none is cached.
    #[error(
        "the {platform} evidence came without {what}, and the service has none cached for it; \
         supply it alongside the evidence"
    )]
    MissingEndorsement {
        /// The platform.
        platform: PlatformKind,
        /// What is missing.
        what: String,
    },
    /// The hardware signed other report data than the envelope's values hash to: the nonce, TLS
    /// key, policy hash or computation id in the envelope is not what the hardware attested.
    #[error(
        "the {platform} evidence's report data is not the hash of its nonce, TLS key, policy \
         hash and computation id"
    )]
    ReportDataMismatch {
        /// The platform.
        platform: PlatformKind,
    },
    /// The hardware's claims do not meet the enrolled platform's requirements.
    #[error("{0}")]
    Requirement(crate::hardware::RequirementError),
}

/// A certificate signing request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Not a DER (or PEM) PKCS#10 request.
    #[error("malformed certificate signing request: {0}")]
    Malformed(String),
    /// The request's self-signature does not verify.
    #[error("the certificate signing request's signature does not verify")]
    BadSignature,
    /// The key is not an ECDSA P-256 key.
    #[error("the certificate signing request's key is not an ECDSA P-256 key")]
    UnsupportedKey,
    /// The request asks for an extension the service does not expect.
    #[error("the certificate signing request asks for an unexpected extension {oid}")]
    UnexpectedExtension {
        /// Dotted OID of the extension.
        oid: String,
    },
    /// The request carries an attribute other than the extension request.
    #[error("the certificate signing request carries an unexpected attribute {oid}")]
    UnexpectedAttribute {
        /// Dotted OID of the attribute.
        oid: String,
    },
    /// A required extension is missing.
    #[error("the certificate signing request lacks the {0} extension")]
    MissingExtension(&'static str),
    /// An extension appears twice.
    #[error("the certificate signing request has the {0} extension twice")]
    DuplicateExtension(&'static str),
    /// An extension's value is malformed.
    #[error("the certificate signing request's {name} extension is malformed: {reason}")]
    BadExtension {
        /// Which extension.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The evidence and the certificate signing request do not describe the same runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The evidence binds a different TLS key than the one in the request.
    #[error("the evidence binds TLS key {evidence} but the signing request is for key {request}")]
    TlsKeyMismatch {
        /// SHA-256 of the key bound in the evidence.
        evidence: Digest,
        /// SHA-256 of the key in the request.
        request: Digest,
    },
    /// The evidence's policy hash differs from the request's.
    #[error("the evidence binds policy {evidence} but the signing request names policy {request}")]
    PolicyHashMismatch {
        /// Policy hash in the evidence.
        evidence: Digest,
        /// Policy hash in the request.
        request: Digest,
    },
    /// The evidence's computation id differs from the request's.
    #[error(
        "the evidence binds computation {evidence:?} but the signing request names {request:?}"
    )]
    ComputationIdMismatch {
        /// Computation id in the evidence.
        evidence: String,
        /// Computation id in the request.
        request: String,
    },
}
