//! The certificate signing request a runtime sends with its evidence, and the service's check
//! of it.
//!
//! The request carries the runtime's TLS public key (ECDSA P-256), asks for exactly two of our
//! extensions — policy hash and computation id, which must equal what the evidence binds — and
//! optionally a subjectAltName with DNS names (the names clients use as SNI). Anything else it
//! asks for is refused: the service, not the requester, decides what an attested certificate
//! says, and it adds the platform and measurement extensions itself from verified evidence.

use rustls_pki_types::DnsName;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME;
use x509_parser::prelude::{FromDer as _, ParsedCriAttribute, X509CertificationRequest};

use crate::extensions::{
    Known, computation_id_extension, decode_digest, decode_text, policy_hash_extension,
};
use crate::software::is_p256;
use crate::{AttestError, CsrError, Digest, check_computation_id};

/// The most DNS names a request may ask for. A runtime needs one or two; this stops a request
/// from making the service sign a certificate with thousands of names.
pub const MAX_CSR_DNS_NAMES: usize = 8;

/// The largest DER certificate signing request the service parses, in bytes. A P-256 request
/// with our extensions is well under 1 KiB.
pub const MAX_CSR_LEN: usize = 8 * 1024;

/// Makes the TLS key a runtime attests: ECDSA P-256, generated in memory.
///
/// # Errors
/// [`AttestError::Key`] if key generation fails.
pub fn generate_tls_key() -> Result<rcgen::KeyPair, AttestError> {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| AttestError::Key(e.to_string()))
}

/// What a runtime asks to have certified besides its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeCsrRequest {
    /// SHA-256 of the policy the runtime serves.
    pub policy_hash: Digest,
    /// The computation id.
    pub computation_id: String,
    /// DNS names for the subjectAltName (at most [`MAX_CSR_DNS_NAMES`]); may be empty.
    pub dns_names: Vec<String>,
}

impl RuntimeCsrRequest {
    /// Builds and signs the request (DER) with `key`, the runtime's TLS key.
    ///
    /// # Errors
    /// [`AttestError::InvalidComputationId`], or [`AttestError::Certificate`] if a DNS name is
    /// invalid or there are too many.
    pub fn build(&self, key: &rcgen::KeyPair) -> Result<Vec<u8>, AttestError> {
        check_computation_id(&self.computation_id)?;
        if self.dns_names.len() > MAX_CSR_DNS_NAMES {
            return Err(AttestError::Certificate(format!(
                "at most {MAX_CSR_DNS_NAMES} DNS names may be requested"
            )));
        }
        let mut params = rcgen::CertificateParams::new(self.dns_names.clone())
            .map_err(|e| AttestError::Certificate(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "covenant runtime");
        params.custom_extensions = vec![
            policy_hash_extension(&self.policy_hash),
            computation_id_extension(&self.computation_id),
        ];
        let csr = params
            .serialize_request(key)
            .map_err(|e| AttestError::Certificate(e.to_string()))?;
        Ok(csr.der().to_vec())
    }
}

/// A certificate signing request that passed every check: well-formed, self-signature valid,
/// P-256 key, only expected extensions, policy hash and computation id present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedCsr {
    spki_der: Vec<u8>,
    policy_hash: Digest,
    computation_id: String,
    dns_names: Vec<String>,
}

impl CheckedCsr {
    /// Parses and checks a DER request.
    ///
    /// # Errors
    /// A [`CsrError`] naming the check that failed.
    pub fn parse(der: &[u8]) -> Result<Self, CsrError> {
        if der.len() > MAX_CSR_LEN {
            return Err(CsrError::Malformed(format!(
                "longer than {MAX_CSR_LEN} bytes"
            )));
        }
        let (rest, csr) = X509CertificationRequest::from_der(der)
            .map_err(|e| CsrError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CsrError::Malformed(format!(
                "{} bytes after the request",
                rest.len()
            )));
        }
        csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
        let info = &csr.certification_request_info;
        if !is_p256(&info.subject_pki) {
            return Err(CsrError::UnsupportedKey);
        }
        let mut policy_hash = None;
        let mut computation_id = None;
        let mut dns_names: Option<Vec<String>> = None;
        for attribute in info.attributes() {
            let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
                return Err(CsrError::UnexpectedAttribute {
                    oid: attribute.oid.to_id_string(),
                });
            };
            for ext in &request.extensions {
                if ext.oid == OID_X509_EXT_SUBJECT_ALT_NAME {
                    if dns_names.is_some() {
                        return Err(CsrError::DuplicateExtension("subjectAltName"));
                    }
                    dns_names = Some(san_dns_names(ext.parsed_extension())?);
                    continue;
                }
                let Some(which) = Known::identify(&ext.oid) else {
                    return Err(CsrError::UnexpectedExtension {
                        oid: ext.oid.to_id_string(),
                    });
                };
                let bad = |reason: String| CsrError::BadExtension {
                    name: which.name(),
                    reason,
                };
                let fresh = match which {
                    Known::PolicyHash => {
                        let bytes = decode_digest(ext.value).map_err(bad)?;
                        policy_hash.replace(Digest(bytes)).is_none()
                    }
                    Known::ComputationId => {
                        let id = decode_text(ext.value).map_err(bad)?;
                        check_computation_id(&id).map_err(|e| bad(e.to_string()))?;
                        computation_id.replace(id).is_none()
                    }
                    // The service asserts these from verified evidence; a requester may not.
                    Known::Platform | Known::Measurement | Known::Hardware => {
                        return Err(CsrError::UnexpectedExtension {
                            oid: ext.oid.to_id_string(),
                        });
                    }
                };
                if !fresh {
                    return Err(CsrError::DuplicateExtension(which.name()));
                }
            }
        }
        Ok(Self {
            spki_der: info.subject_pki.raw.to_vec(),
            policy_hash: policy_hash.ok_or(CsrError::MissingExtension(Known::PolicyHash.name()))?,
            computation_id: computation_id
                .ok_or(CsrError::MissingExtension(Known::ComputationId.name()))?,
            dns_names: dns_names.unwrap_or_default(),
        })
    }

    /// The requester's public key, DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of [`CheckedCsr::spki_der`]: what evidence must bind.
    pub fn tls_public_key_sha256(&self) -> Digest {
        Digest::of(&self.spki_der)
    }

    /// The policy hash the request names.
    pub fn policy_hash(&self) -> &Digest {
        &self.policy_hash
    }

    /// The computation id the request names.
    pub fn computation_id(&self) -> &str {
        &self.computation_id
    }

    /// The DNS names requested for the subjectAltName.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }
}

fn san_dns_names(parsed: &ParsedExtension<'_>) -> Result<Vec<String>, CsrError> {
    let bad = |reason: String| CsrError::BadExtension {
        name: "subjectAltName",
        reason,
    };
    let ParsedExtension::SubjectAlternativeName(san) = parsed else {
        return Err(bad("cannot be parsed".into()));
    };
    if san.general_names.len() > MAX_CSR_DNS_NAMES {
        return Err(bad(format!("more than {MAX_CSR_DNS_NAMES} names")));
    }
    san.general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => DnsName::try_from(*dns)
                .map(|_| (*dns).to_owned())
                .map_err(|_| {
                    bad(format!(
                        "{:?} is not a valid DNS name",
                        dns.chars().take(64).collect::<String>()
                    ))
                }),
            other => Err(bad(format!("only DNS names may be requested, not {other}"))),
        })
        .collect()
}
