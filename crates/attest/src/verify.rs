//! The client side: is this server certificate an attested certificate for the runtime I
//! expect?
//!
//! [`verify_attested_certificate`] checks, in this order, and each failure has its own
//! [`AttestedCertificateError`] variant:
//!
//! 1. the certificate is issued by the expected CA (issuer name and signature) — otherwise
//!    [`AttestedCertificateError::NotIssuedByCa`] ("chain to another CA");
//! 2. both the CA and the certificate are inside their validity periods;
//! 3. the four Covenant extensions are present and well-formed;
//! 4. the measurement is one the client accepts for that platform kind;
//! 5. on a hardware platform, the hardware claims (debug, TCB status, migration agent, SGX
//!    signer) meet the client's [`HardwareRequirements`] for that platform — the strictest
//!    default where the client names none;
//! 6. the policy hash equals the client's;
//! 7. the computation id equals the client's.
//!
//! Attested certificates are issued directly by the service's CA, so the chain is exactly the
//! end-entity certificate plus the CA certificate the client already holds; intermediates sent
//! by the server are ignored. The server *name* is not checked: what identifies the runtime is
//! the computation id and policy hash, which are checked; the name is only used by the
//! untrusted host to route the connection.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::extensions::ExtensionError;
use crate::hardware::{HardwareRequirements, RequirementError};
use crate::{AttestedClaims, Digest, Measurement, PlatformKind};

/// What a client expects of the runtime it connects to. Built from the policy by its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedRuntime {
    /// The attestation service's CA certificate (DER), as the policy names it.
    pub ca_certificate_der: Vec<u8>,
    /// For each platform kind, the measurements the policy accepts. A kind absent from the map
    /// is not accepted at all.
    pub accepted_measurements: BTreeMap<PlatformKind, BTreeSet<Measurement>>,
    /// For each hardware platform kind, what its hardware claims must meet beyond the
    /// measurement. A kind absent from the map gets [`HardwareRequirements::default`], the
    /// strictest.
    pub hardware_requirements: BTreeMap<PlatformKind, HardwareRequirements>,
    /// SHA-256 of the policy (its canonical form), as the client computed it.
    pub policy_hash: Digest,
    /// The policy's computation id.
    pub computation_id: String,
}

/// Why a server certificate is not an acceptable attested certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestedCertificateError {
    /// The expected CA certificate itself cannot be used.
    #[error("the attestation service's CA certificate cannot be used: {0}")]
    BadCaCertificate(String),
    /// The presented certificate cannot be parsed.
    #[error("the server's certificate is malformed: {0}")]
    Malformed(String),
    /// The certificate was not issued by the expected CA (another CA, or a bad signature).
    #[error(
        "the server's certificate was not issued by the attestation service named in the policy \
         (it names issuer {issuer:?}): {reason}"
    )]
    NotIssuedByCa {
        /// The issuer the certificate names.
        issuer: String,
        /// Name mismatch or signature failure.
        reason: &'static str,
    },
    /// The CA certificate is outside its validity period.
    #[error("the attestation service's CA certificate is not valid now")]
    CaNotValidNow,
    /// The certificate is not valid yet.
    #[error("the server's attested certificate is not valid until {not_before} (now is {now})")]
    NotYetValid {
        /// Start of validity, Unix seconds.
        not_before: i64,
        /// Now, Unix seconds.
        now: i64,
    },
    /// The certificate has expired.
    #[error("the server's attested certificate expired at {not_after} (now is {now})")]
    Expired {
        /// End of validity, Unix seconds.
        not_after: i64,
        /// Now, Unix seconds.
        now: i64,
    },
    /// The attestation extensions are missing or malformed.
    #[error("the server's certificate is not an attested certificate: {0}")]
    Extension(ExtensionError),
    /// The policy accepts no measurement for this platform kind.
    #[error("the server runs on platform {platform}, which the policy does not accept")]
    PlatformNotAccepted {
        /// The certificate's platform kind.
        platform: PlatformKind,
    },
    /// The measurement is not one the policy accepts for the platform.
    #[error(
        "the server's measurement {measurement} is not one the policy accepts for platform {platform}"
    )]
    MeasurementNotAccepted {
        /// The certificate's platform kind.
        platform: PlatformKind,
        /// The certificate's measurement.
        measurement: Measurement,
    },
    /// The hardware's claims do not meet the client's requirements.
    #[error("the server's hardware is not acceptable: {0}")]
    Requirement(RequirementError),
    /// The certificate is for another policy.
    #[error("the server serves policy {found}, not this policy ({expected})")]
    PolicyHashMismatch {
        /// The client's policy hash.
        expected: Digest,
        /// The certificate's.
        found: Digest,
    },
    /// The certificate is for another computation.
    #[error("the server runs computation {found:?}, not {expected:?}")]
    ComputationIdMismatch {
        /// The client's computation id.
        expected: String,
        /// The certificate's.
        found: String,
    },
}

fn parse_whole(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the certificate", rest.len()));
    }
    Ok(cert)
}

/// Checks `end_entity_der` against `expected` at time `now` (Unix seconds) and returns the
/// claims it carries.
///
/// # Errors
/// An [`AttestedCertificateError`] naming the first check that failed (see the module docs for
/// the order).
pub fn verify_attested_certificate(
    expected: &ExpectedRuntime,
    end_entity_der: &[u8],
    now: i64,
) -> Result<AttestedClaims, AttestedCertificateError> {
    use AttestedCertificateError as E;
    let ca = parse_whole(&expected.ca_certificate_der).map_err(E::BadCaCertificate)?;
    let cert = parse_whole(end_entity_der).map_err(E::Malformed)?;
    let issuer = || cert.issuer().to_string();
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(E::NotIssuedByCa {
            issuer: issuer(),
            reason: "the issuer name differs",
        });
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| E::NotIssuedByCa {
            issuer: issuer(),
            reason: "the CA's signature does not verify",
        })?;
    let ca_validity = ca.validity();
    if now < ca_validity.not_before.timestamp() || now > ca_validity.not_after.timestamp() {
        return Err(E::CaNotValidNow);
    }
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(E::NotYetValid {
            not_before: validity.not_before.timestamp(),
            now,
        });
    }
    if now > validity.not_after.timestamp() {
        return Err(E::Expired {
            not_after: validity.not_after.timestamp(),
            now,
        });
    }
    let claims = AttestedClaims::from_certificate(&cert).map_err(E::Extension)?;
    let accepted =
        expected
            .accepted_measurements
            .get(&claims.platform)
            .ok_or(E::PlatformNotAccepted {
                platform: claims.platform,
            })?;
    if !accepted.contains(&claims.measurement) {
        return Err(E::MeasurementNotAccepted {
            platform: claims.platform,
            measurement: claims.measurement,
        });
    }
    if let Some(hardware) = &claims.hardware {
        let strictest = HardwareRequirements::default();
        expected
            .hardware_requirements
            .get(&claims.platform)
            .unwrap_or(&strictest)
            .check(claims.platform, hardware)
            .map_err(E::Requirement)?;
    }
    if claims.policy_hash != expected.policy_hash {
        return Err(E::PolicyHashMismatch {
            expected: expected.policy_hash,
            found: claims.policy_hash,
        });
    }
    if claims.computation_id != expected.computation_id {
        return Err(E::ComputationIdMismatch {
            expected: expected.computation_id.clone(),
            found: claims.computation_id,
        });
    }
    Ok(claims)
}

/// A rustls server-certificate verifier that accepts exactly the attested certificates
/// [`verify_attested_certificate`] accepts, and verifies TLS 1.3 handshake signatures with
/// rustls' ring provider. TLS 1.2 is refused: Covenant connections are TLS 1.3 only.
///
/// Use it with `ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
/// .dangerous().with_custom_certificate_verifier(Arc::new(verifier))`. When it refuses a
/// certificate, the handshake fails with `rustls::Error::InvalidCertificate(CertificateError::
/// Other(..))` whose inner error is the [`AttestedCertificateError`] (downcast to read it).
#[derive(Debug)]
pub struct AttestedServerVerifier {
    expected: ExpectedRuntime,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AttestedServerVerifier {
    /// A verifier for `expected`.
    pub fn new(expected: ExpectedRuntime) -> Self {
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        Self {
            expected,
            algorithms,
        }
    }

    /// What this verifier expects.
    pub fn expected(&self) -> &ExpectedRuntime {
        &self.expected
    }
}

impl ServerCertVerifier for AttestedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        verify_attested_certificate(&self.expected, end_entity, now)
            .map(|_| ServerCertVerified::assertion())
            .map_err(|e| {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
            })
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "Covenant attested connections require TLS 1.3; the server negotiated TLS 1.2".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
