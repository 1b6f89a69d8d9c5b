//! The JSON bodies of the attestation service's HTTP API (documented in
//! `docs/attestation-api.md`). They live here, not in the service crate, so that a runtime —
//! which depends on this crate only — can build a request and read a response.
//!
//! The runtime side of one attestation, in order:
//!
//! 1. the host asks the service for a nonce (`POST /v1/nonces` → [`NonceResponse`]) and hands
//!    it to the runtime;
//! 2. the runtime calls [`prepare_attestation`] with its [`Platform`]: it makes a fresh TLS key
//!    and returns it with an [`AttestationRequest`] (evidence plus CSR);
//! 3. the host relays the request (`POST /v1/attestations` → [`AttestationResponse`]) and hands
//!    the response back;
//! 4. the runtime calls [`accept_attestation_response`], which checks the certificate is for its
//!    key and returns the chain to serve TLS with.

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::csr::{RuntimeCsrRequest, generate_tls_key};
use crate::{AttestError, Digest, EvidenceRequest, Nonce, Platform, PlatformEvidence};

/// `POST /v1/nonces` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonceResponse {
    /// The nonce, 64 hex digits. Good for one attestation.
    pub nonce: Nonce,
    /// When it expires, RFC 3339 UTC.
    pub expires_at: String,
}

/// `POST /v1/attestations` request body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationRequest {
    /// The runtime's evidence, software or hardware (its `format` says which).
    pub evidence: PlatformEvidence,
    /// The runtime's certificate signing request, PEM (`CERTIFICATE REQUEST`).
    pub csr: String,
}

/// `POST /v1/attestations` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationResponse {
    /// The certificate's serial number, hex.
    pub serial: String,
    /// The chain, PEM: the attested certificate first, then the service's CA certificate.
    pub certificate_chain: Vec<String>,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
}

/// The status of an issued certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateState {
    /// Within its validity period and not revoked.
    Valid,
    /// Past its `notAfter`.
    Expired,
    /// Revoked by the service's administrator (directly, or by revoking its platform or
    /// measurement).
    Revoked,
}

/// `GET /v1/certificates/{serial}` response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateStatus {
    /// Serial number, hex.
    pub serial: String,
    /// Its state now.
    pub status: CertificateState,
    /// Platform kind.
    pub platform: String,
    /// Measurement, hex.
    pub measurement: String,
    /// Policy hash, hex.
    pub policy_hash: String,
    /// Computation id.
    pub computation_id: String,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// When it was revoked, RFC 3339 UTC, if it was.
    pub revoked_at: Option<String>,
    /// Why, if it was.
    pub revocation_reason: Option<String>,
    /// When its instance ended, RFC 3339 UTC, if it has: its runtime reported its end
    /// (`POST /v1/instance-ends`), or the certificate was found expired when its computation
    /// was attested again. An ended instance no longer holds its computation.
    pub ended_at: Option<String>,
    /// How it ended, if it has.
    pub end_reason: Option<String>,
}

/// `POST /v1/instance-ends` request body: a runtime's end statement, relayed by its host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceEndRequest {
    /// The statement, a compact JWS signed with the instance's attested key
    /// ([`crate::instance`]).
    pub statement: String,
}

/// `POST /v1/instance-ends` response: the instance is ended (now, or it was already).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceEndResponse {
    /// The instance's certificate serial, hex.
    pub serial: String,
    /// Its computation id.
    pub computation_id: String,
    /// Its policy hash, hex.
    pub policy_hash: String,
    /// When the service recorded its end, RFC 3339 UTC (the first time, if it was sent
    /// twice).
    pub ended_at: String,
    /// How it ended, as recorded.
    pub end_reason: String,
}

/// The body of every refusal and error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable code, e.g. `measurement-not-allowed`.
    pub code: String,
    /// What was wrong.
    pub message: String,
}

/// Step 2 of an attestation (runtime side): makes a fresh P-256 TLS key, a CSR for it naming
/// `policy_hash` and `computation_id` (and `dns_names` as subjectAltName), and evidence from
/// `platform` binding all of it to `nonce`.
///
/// Returns the key (keep it inside the runtime) and the request body to send.
///
/// # Errors
/// [`AttestError`] if the computation id or a DNS name is invalid or the platform cannot sign.
pub fn prepare_attestation(
    platform: &dyn Platform,
    policy_hash: Digest,
    computation_id: &str,
    dns_names: &[String],
    nonce: Nonce,
) -> Result<(rcgen::KeyPair, AttestationRequest), AttestError> {
    use rcgen::PublicKeyData as _;
    let key = generate_tls_key()?;
    let csr = RuntimeCsrRequest {
        policy_hash,
        computation_id: computation_id.to_owned(),
        dns_names: dns_names.to_vec(),
    }
    .build(&key)?;
    let request = EvidenceRequest::new(
        policy_hash,
        computation_id,
        &key.subject_public_key_info(),
        nonce,
    )?;
    let evidence = platform.evidence(&request)?;
    Ok((
        key,
        AttestationRequest {
            evidence,
            csr: crate::pem::to_pem("CERTIFICATE REQUEST", &csr),
        },
    ))
}

/// Step 4 of an attestation (runtime side): checks that the response's first certificate is for
/// `key` and returns the chain, DER, ready for a rustls `ServerConfig`.
///
/// # Errors
/// [`AttestError::Certificate`] if the chain is empty, unparsable or for another key.
pub fn accept_attestation_response(
    key: &rcgen::KeyPair,
    response: &AttestationResponse,
) -> Result<Vec<CertificateDer<'static>>, AttestError> {
    use rcgen::PublicKeyData as _;
    let chain = response
        .certificate_chain
        .iter()
        .map(|pem| crate::pem::certificate_from_pem(pem.as_bytes(), "attested certificate chain"))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = chain.first().ok_or_else(|| {
        AttestError::Certificate("the attestation response has no certificate".into())
    })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| AttestError::Certificate(format!("attested certificate: {e}")))?;
    if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(AttestError::Certificate(
            "the attested certificate is for another key than this runtime's".into(),
        ));
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_for(key: &rcgen::KeyPair) -> AttestationResponse {
        let cert = rcgen::CertificateParams::new(vec!["computation".to_owned()])
            .and_then(|params| params.self_signed(key))
            .map(|cert| cert.pem());
        AttestationResponse {
            serial: "01".into(),
            certificate_chain: vec![cert.unwrap_or_default()],
            not_before: "2026-01-01T00:00:00Z".into(),
            not_after: "2026-01-02T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_certificate_for_another_key_is_refused() {
        let ours = generate_tls_key().unwrap_or_else(|e| panic!("{e}"));
        let theirs = generate_tls_key().unwrap_or_else(|e| panic!("{e}"));
        assert!(accept_attestation_response(&ours, &response_for(&ours)).is_ok());
        let err = accept_attestation_response(&ours, &response_for(&theirs))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("for another key"), "{err}");
        let mut empty = response_for(&ours);
        empty.certificate_chain.clear();
        assert!(accept_attestation_response(&ours, &empty).is_err());
    }
}
