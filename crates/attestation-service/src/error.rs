//! Errors of the attestation service, and how each reaches the peer.
//!
//! # Error policy
//!
//! - **Refusals** are the caller's fault: a body that is too large, not JSON or not the right
//!   shape; a bad CSR; evidence that does not verify; an unknown or revoked platform; a
//!   measurement not allowed; a nonce that is unknown, used or expired; evidence and CSR that
//!   disagree; a computation that already has a live instance; an end statement that does not
//!   verify; an unknown certificate serial. Each becomes a **4xx** response whose JSON body
//!   names a stable `code` and a `message` saying exactly what was wrong. Telling the caller is
//!   safe: everything in the message is about the caller's own input or about public facts
//!   (which measurements are allowed is published in the policy anyway). Each is written to the
//!   audit log with outcome `refused`.
//! - **Internal errors** are ours: the database is unreachable, a query fails, signing fails.
//!   Each becomes a **500** with a generic body (`code: internal`) — the caller cannot fix it
//!   and the detail (SQL, paths) is none of its business — and the detail goes to the service
//!   log (`tracing::error!`) and to the audit log with outcome `error`.
//! - Overload is a **503** (`too-many-nonces`) with its message: the caller may retry later. It
//!   is audited as `refused`.
//!
//! The mapping lives in one place: [`ServiceError::status`] and [`ServiceError::code`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use covenant_attest::wire::{ErrorBody, ErrorDetail};
use covenant_attest::{
    BindingError, CsrError, Digest, EvidenceError, InstanceEndError, Measurement,
};

/// Everything that can go wrong in the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The request body is larger than the endpoint accepts.
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The endpoint's limit.
        limit: usize,
    },
    /// The request body could not be read or parsed.
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    /// The certificate signing request was refused.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// The evidence was refused by its verifier.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// No enrolled platform has the key that signed the evidence.
    #[error("no enrolled platform has key {key_id}")]
    UnknownPlatform {
        /// The key id the evidence names.
        key_id: Digest,
    },
    /// No unrevoked hardware platform of the evidence's kind is enrolled.
    #[error(
        "no {kind} platform is enrolled at this attestation service; its administrator enrols \
         one with `covenant attestation-service enroll-platform --kind {kind} NAME`"
    )]
    HardwarePlatformNotEnrolled {
        /// The evidence's platform kind.
        kind: covenant_attest::PlatformKind,
    },
    /// The platform was revoked.
    #[error("platform {name:?} is revoked")]
    PlatformRevoked {
        /// The platform's name.
        name: String,
    },
    /// The measurement is not allowed for the platform.
    #[error("measurement {measurement} is not allowed for platform {platform:?}")]
    MeasurementNotAllowed {
        /// The platform's name.
        platform: String,
        /// The measurement.
        measurement: Measurement,
    },
    /// The nonce was never issued (or was purged long after it expired).
    #[error("unknown nonce")]
    UnknownNonce,
    /// The nonce has already been used.
    #[error("the nonce has already been used")]
    NonceAlreadyUsed,
    /// The nonce has expired.
    #[error("the nonce has expired")]
    NonceExpired,
    /// Evidence and CSR disagree.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// The computation (computation id and policy hash) already has a live attested
    /// instance: a second would fork it.
    #[error(
        "computation {computation_id:?} with policy hash {policy_hash} already has a live \
         attested instance (certificate {serial}, valid until {not_after}); a second instance \
         would fork the computation, so none is certified. It is freed when that instance's \
         runtime reports its end (its computation closed or its host stopped it), when its \
         certificate expires, or when the service's operator, having checked that its worker \
         is gone, revokes it: `covenant attestation-service revoke --certificate {serial} \
         --reason ...`"
    )]
    InstanceAlreadyLive {
        /// The computation id.
        computation_id: String,
        /// The policy hash, hex.
        policy_hash: String,
        /// The live instance's certificate serial.
        serial: String,
        /// When that certificate expires, RFC 3339.
        not_after: String,
    },
    /// An end statement was refused.
    #[error(transparent)]
    InstanceEnd(#[from] InstanceEndError),
    /// Too many nonces are outstanding.
    #[error("too many outstanding nonces; try again later")]
    TooManyNonces,
    /// No certificate has this serial.
    #[error("no certificate has serial {0:?}")]
    UnknownCertificate(String),
    /// No such endpoint.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// An administrative command was given bad input (CLI only; never over HTTP).
    #[error("{0}")]
    InvalidInput(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Something else of ours failed (signing, encoding, files).
    #[error("internal: {0}")]
    Internal(String),
}

impl ServiceError {
    /// Whether this is a refusal (a 4xx, or the 503 of too many outstanding nonces) rather
    /// than an internal error of ours.
    pub fn is_refusal(&self) -> bool {
        !self.is_internal()
    }

    /// Whether this is an internal error: a 500 whose detail stays in our logs.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Database(_) | Self::Migration(_) | Self::Internal(_)
        )
    }

    /// The HTTP status this error becomes.
    pub fn status(&self) -> StatusCode {
        use ServiceError as E;
        match self {
            E::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            E::MalformedRequest(_) | E::Csr(_) | E::Binding(_) | E::InvalidInput(_) => {
                StatusCode::BAD_REQUEST
            }
            E::InstanceEnd(InstanceEndError::BadSignature { .. }) => StatusCode::FORBIDDEN,
            E::InstanceEnd(_) => StatusCode::BAD_REQUEST,
            E::Evidence(EvidenceError::Malformed(_) | EvidenceError::UnsupportedFormat(_)) => {
                StatusCode::BAD_REQUEST
            }
            E::Evidence(_)
            | E::UnknownPlatform { .. }
            | E::HardwarePlatformNotEnrolled { .. }
            | E::PlatformRevoked { .. }
            | E::MeasurementNotAllowed { .. }
            | E::UnknownNonce
            | E::NonceExpired => StatusCode::FORBIDDEN,
            E::NonceAlreadyUsed | E::InstanceAlreadyLive { .. } => StatusCode::CONFLICT,
            E::UnknownCertificate(_) | E::NotFound(_) => StatusCode::NOT_FOUND,
            E::TooManyNonces => StatusCode::SERVICE_UNAVAILABLE,
            E::Database(_) | E::Migration(_) | E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code in the response body and the audit log.
    pub fn code(&self) -> &'static str {
        use ServiceError as E;
        match self {
            E::BodyTooLarge { .. } => "body-too-large",
            E::MalformedRequest(_) => "malformed-request",
            E::Csr(CsrError::UnexpectedExtension { .. } | CsrError::UnexpectedAttribute { .. }) => {
                "csr-unexpected-extension"
            }
            E::Csr(CsrError::BadSignature) => "csr-bad-signature",
            E::Csr(_) => "csr-refused",
            E::Evidence(EvidenceError::BadSignature) => "evidence-bad-signature",
            E::Evidence(EvidenceError::UnsupportedPlatform(_)) => "unsupported-platform",
            E::Evidence(EvidenceError::Malformed(_) | EvidenceError::UnsupportedFormat(_)) => {
                "evidence-malformed"
            }
            E::Evidence(EvidenceError::Hardware { .. }) => "hardware-evidence-refused",
            E::Evidence(EvidenceError::MissingEndorsement { .. }) => "endorsement-missing",
            E::Evidence(EvidenceError::ReportDataMismatch { .. }) => "report-data-mismatch",
            E::Evidence(EvidenceError::Requirement(_)) => "hardware-requirement-not-met",
            E::Evidence(_) => "evidence-refused",
            E::UnknownPlatform { .. } | E::HardwarePlatformNotEnrolled { .. } => "unknown-platform",
            E::PlatformRevoked { .. } => "platform-revoked",
            E::MeasurementNotAllowed { .. } => "measurement-not-allowed",
            E::UnknownNonce => "unknown-nonce",
            E::NonceAlreadyUsed => "nonce-already-used",
            E::NonceExpired => "nonce-expired",
            E::Binding(BindingError::TlsKeyMismatch { .. }) => "tls-key-mismatch",
            E::Binding(BindingError::PolicyHashMismatch { .. }) => "policy-hash-mismatch",
            E::Binding(BindingError::ComputationIdMismatch { .. }) => "computation-id-mismatch",
            E::Binding(_) => "binding-mismatch",
            E::InstanceAlreadyLive { .. } => "instance-already-live",
            E::InstanceEnd(InstanceEndError::BadSignature { .. }) => "end-statement-bad-signature",
            E::InstanceEnd(InstanceEndError::Mismatch { .. }) => "end-statement-mismatch",
            E::InstanceEnd(_) => "end-statement-malformed",
            E::TooManyNonces => "too-many-nonces",
            E::UnknownCertificate(_) => "unknown-certificate",
            E::NotFound(_) => "not-found",
            E::InvalidInput(_) => "invalid-input",
            E::Database(_) | E::Migration(_) | E::Internal(_) => "internal",
        }
    }

    /// The message the peer sees: the error itself for refusals, a generic sentence for
    /// internal errors.
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            "internal error; the details are in the service's log".to_owned()
        } else {
            self.to_string()
        }
    }

    /// The JSON body the peer sees.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.public_message(),
            },
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        if self.is_internal() {
            tracing::error!(error = %self, "internal error");
        }
        (self.status(), axum::Json(self.body())).into_response()
    }
}
