//! The attestation service's certificate authority: a P-256 key and a self-signed CA
//! certificate (the `ca.crt` a policy names). It issues two kinds of certificate:
//!
//! - **attested certificates** for runtimes' TLS keys, only from a [`BoundRequest`] (verified
//!   evidence that agrees with a checked signing request), short-lived
//!   ([`DEFAULT_ATTESTED_CERTIFICATE_LIFETIME`]), carrying the claims as extensions
//!   ([`crate::extensions`]);
//! - a TLS server certificate for the service's own HTTPS endpoint.

use std::time::Duration;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::extensions::attested_extensions;
use crate::{AttestError, AttestedClaims, BindingError, CheckedCsr, Digest, VerifiedEvidence};

/// How long an attested certificate is valid by default: one hour. Short, because the software
/// platform's evidence is only as good as the moment it was taken, and because a revoked
/// platform's certificates then die on their own within the hour.
pub const DEFAULT_ATTESTED_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The longest lifetime the CA will put on an attested certificate: one day. Stops a
/// misconfiguration from issuing certificates that outlive any revocation.
pub const MAX_ATTESTED_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How far back `notBefore` is set, to tolerate clients whose clocks run a little slow.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

/// How long the CA certificate made by [`CertificateAuthority::generate`] is valid: ten years.
pub const CA_CERTIFICATE_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Verified evidence and a checked signing request that describe the same runtime: same TLS
/// key, same policy hash, same computation id. Made only by [`bind`]; the CA issues attested
/// certificates only from one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundRequest {
    platform_name: String,
    claims: AttestedClaims,
    tls_public_key_sha256: Digest,
    spki_der: Vec<u8>,
    dns_names: Vec<String>,
}

impl BoundRequest {
    /// The claims the certificate will carry.
    pub fn claims(&self) -> &AttestedClaims {
        &self.claims
    }

    /// The enrolled platform's name.
    pub fn platform_name(&self) -> &str {
        &self.platform_name
    }

    /// SHA-256 of the TLS key being certified.
    pub fn tls_public_key_sha256(&self) -> Digest {
        self.tls_public_key_sha256
    }
}

/// Checks that `evidence` and `csr` describe the same runtime.
///
/// # Errors
/// A [`BindingError`] naming the first disagreement: TLS key, policy hash, computation id.
pub fn bind(evidence: &VerifiedEvidence, csr: &CheckedCsr) -> Result<BoundRequest, BindingError> {
    let claims = evidence.claims();
    let request_key = csr.tls_public_key_sha256();
    if claims.tls_public_key_sha256 != request_key {
        return Err(BindingError::TlsKeyMismatch {
            evidence: claims.tls_public_key_sha256,
            request: request_key,
        });
    }
    if claims.policy_hash != *csr.policy_hash() {
        return Err(BindingError::PolicyHashMismatch {
            evidence: claims.policy_hash,
            request: *csr.policy_hash(),
        });
    }
    if claims.computation_id != csr.computation_id() {
        return Err(BindingError::ComputationIdMismatch {
            evidence: claims.computation_id.clone(),
            request: csr.computation_id().to_owned(),
        });
    }
    Ok(BoundRequest {
        platform_name: evidence.platform_name().to_owned(),
        claims: AttestedClaims {
            platform: claims.platform,
            measurement: claims.measurement,
            policy_hash: claims.policy_hash,
            computation_id: claims.computation_id.clone(),
            hardware: evidence.hardware().cloned(),
        },
        tls_public_key_sha256: request_key,
        spki_der: csr.spki_der().to_vec(),
        dns_names: csr.dns_names().to_vec(),
    })
}

/// A certificate the CA issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// Serial number, lowercase hex (16 bytes, positive).
    pub serial: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate, PEM.
    pub pem: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// The service's certificate authority.
pub struct CertificateAuthority {
    key: rcgen::KeyPair,
    certificate_der: CertificateDer<'static>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is never printed.
        f.debug_struct("CertificateAuthority")
            .field("certificate", &Digest::of(&self.certificate_der))
            .finish_non_exhaustive()
    }
}

fn cert_error(e: impl std::fmt::Display) -> AttestError {
    AttestError::Certificate(e.to_string())
}

fn random_serial() -> Result<rcgen::SerialNumber, AttestError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AttestError::Random)?;
    // Positive and without a leading zero byte, so the DER INTEGER is exactly 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

impl CertificateAuthority {
    /// A new CA: a fresh P-256 key and a self-signed certificate with `common_name`, valid from
    /// `now` minus [`CLOCK_SKEW_ALLOWANCE`] for [`CA_CERTIFICATE_LIFETIME`].
    ///
    /// # Errors
    /// [`AttestError::Key`] or [`AttestError::Certificate`].
    pub fn generate(common_name: &str, now: OffsetDateTime) -> Result<Self, AttestError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| AttestError::Key(e.to_string()))?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - CLOCK_SKEW_ALLOWANCE;
        params.not_after = now + CA_CERTIFICATE_LIFETIME;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(cert_error)?;
        Ok(Self {
            key,
            certificate_der: cert.der().clone(),
        })
    }

    /// Loads a CA from its certificate and PKCS#8 key, both PEM.
    ///
    /// # Errors
    /// [`AttestError::Pem`], [`AttestError::Key`] (not P-256, or not the certificate's key),
    /// [`AttestError::Certificate`].
    pub fn from_pem(certificate_pem: &[u8], key_pem: &[u8]) -> Result<Self, AttestError> {
        let certificate_der = crate::pem::certificate_from_pem(certificate_pem, "CA certificate")?;
        let key_der = crate::pem::pkcs8_key_from_pem(key_pem, "CA key")?;
        let key =
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key_der, &rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| AttestError::Key(format!("CA key is not a P-256 PKCS#8 key: {e}")))?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&certificate_der).map_err(cert_error)?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(AttestError::Key(
                "the CA key does not match the CA certificate".into(),
            ));
        }
        if !parsed.is_ca() {
            return Err(AttestError::Certificate(
                "the CA certificate is not a CA certificate".into(),
            ));
        }
        Ok(Self {
            key,
            certificate_der,
        })
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &CertificateDer<'static> {
        &self.certificate_der
    }

    /// The CA certificate, PEM: the contents of `ca.crt`.
    pub fn certificate_pem(&self) -> String {
        crate::pem::to_pem("CERTIFICATE", &self.certificate_der)
    }

    /// The CA's private key, PKCS#8 PEM. A secret: write it only to a file only the service
    /// can read.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn issuer(&self) -> Result<rcgen::Issuer<'_, &rcgen::KeyPair>, AttestError> {
        rcgen::Issuer::from_ca_cert_der(&self.certificate_der, &self.key).map_err(cert_error)
    }

    /// Issues an attested certificate for a bound request, valid from `now` minus
    /// [`CLOCK_SKEW_ALLOWANCE`] to `now` plus `lifetime` (capped at
    /// [`MAX_ATTESTED_CERTIFICATE_LIFETIME`]).
    ///
    /// # Errors
    /// [`AttestError::Certificate`] if signing fails; [`AttestError::Random`].
    pub fn issue_attested(
        &self,
        request: &BoundRequest,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<IssuedCertificate, AttestError> {
        let lifetime = lifetime.min(MAX_ATTESTED_CERTIFICATE_LIFETIME);
        let mut params =
            rcgen::CertificateParams::new(request.dns_names.clone()).map_err(cert_error)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "covenant attested runtime");
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.custom_extensions =
            attested_extensions(&request.claims).map_err(AttestError::Certificate)?;
        self.sign(params, &request.spki_der, now, lifetime)
    }

    /// Issues a TLS server certificate for the service's own HTTPS endpoint, for `names` (DNS
    /// names or IP addresses) and the P-256 public key `spki_der`, valid for `lifetime`.
    ///
    /// # Errors
    /// [`AttestError::Certificate`] if a name is invalid or signing fails.
    pub fn issue_server_certificate(
        &self,
        names: &[String],
        spki_der: &[u8],
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<IssuedCertificate, AttestError> {
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(cert_error)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "covenant attestation service");
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        self.sign(params, spki_der, now, lifetime)
    }

    fn sign(
        &self,
        mut params: rcgen::CertificateParams,
        spki_der: &[u8],
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<IssuedCertificate, AttestError> {
        let serial = random_serial()?;
        let serial_hex = hex::encode(serial.to_bytes());
        params.serial_number = Some(serial);
        // X.509 times have whole seconds; truncate so the stored times equal the certificate's.
        let now = now.replace_nanosecond(0).map_err(cert_error)?;
        params.not_before = now - CLOCK_SKEW_ALLOWANCE;
        params.not_after = now + lifetime;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der).map_err(cert_error)?;
        let cert = params
            .signed_by(&public_key, &self.issuer()?)
            .map_err(cert_error)?;
        Ok(IssuedCertificate {
            serial: serial_hex,
            der: cert.der().to_vec(),
            pem: cert.pem(),
            not_before: params.not_before,
            not_after: params.not_after,
        })
    }
}
