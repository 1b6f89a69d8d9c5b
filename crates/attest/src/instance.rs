//! Instances: one attested runtime of one computation, and how it ends.
//!
//! An **instance** is one runtime (one worker process) attested for one computation: one
//! TLS key, one attested certificate. The attestation service issues at most one live
//! certificate per computation id and policy hash, so that a host cannot fork a computation
//! into two runtimes that each accept uploads and runs (`docs/attestation.md`, "One instance
//! per computation"). Clients and receipts name an instance by its **fingerprint**
//! ([`instance_fingerprint`]): the SHA-256 of the attested certificate's DER
//! SubjectPublicKeyInfo — the service's `tls_key_sha256` for that certificate.
//!
//! When its computation closes (or its host stops it), the runtime signs an **end
//! statement** ([`InstanceEndSigner`]) with its attested key: "computation C, policy hash H,
//! certificate serial S, ended at T, because R". The untrusted host relays it to the
//! service, which checks it against the certificate it issued ([`verify_instance_end`]) and
//! marks the instance ended, so that the computation can be attested again. The host cannot
//! make one: only the runtime holds the key.
//!
//! The statement is a JWS in compact serialisation (RFC 7515), ES256 (ECDSA P-256, SHA-256,
//! the signature as the 64-byte `r || s`), protected header
//! `{"alg":"ES256","typ":"covenant-instance-end+jws"}`, payload the JSON of [`InstanceEnd`].
//! No certificate travels with it: the service looks up the one it issued by serial.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::{AttestError, AttestedClaims, Digest};

/// The `format` of every end statement's payload.
pub const INSTANCE_END_FORMAT: &str = "covenant-instance-end/1";

/// The JWS `typ` header of an end statement. A receipt (`covenant-receipt+jws`), signed by
/// the same key, can never pass for one.
pub const INSTANCE_END_TYP: &str = "covenant-instance-end+jws";

/// The longest end statement read, in bytes. A real one is under 600 bytes (a serial, a
/// policy hash, a computation id of at most 256 bytes, a signature); the cap stops a hostile
/// caller from making the service decode and parse large documents.
pub const MAX_INSTANCE_END_BYTES: usize = 4096;

/// Why an instance ended, as its runtime says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// Every principal closed the computation; its data is gone.
    Closed,
    /// The host told the runtime to stop; its data is gone with it.
    Stopped,
}

impl EndReason {
    /// The reason as the statement spells it: `closed` or `stopped`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signed content of an end statement. Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceEnd {
    /// Always [`INSTANCE_END_FORMAT`].
    pub format: String,
    /// The computation id of the instance's certificate.
    pub computation_id: String,
    /// The policy hash of the instance's certificate.
    pub policy_hash: Digest,
    /// The instance's certificate serial, lowercase hex.
    pub serial: String,
    /// Why it ended.
    pub reason: EndReason,
    /// When it ended by the runtime's clock, Unix milliseconds.
    pub ended_at_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: String,
}

/// An end statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceEndError {
    /// Not a compact JWS of this format, too large, or claims that do not parse.
    #[error("the end statement is malformed: {0}")]
    Malformed(String),
    /// The signature does not verify with the certificate's key.
    #[error("the end statement's signature does not verify with the key of certificate {serial}")]
    BadSignature {
        /// The certificate's serial.
        serial: String,
    },
    /// The statement names another computation, policy or serial than the certificate.
    #[error(
        "the end statement names {what} {statement}, but certificate {serial} has {certificate}"
    )]
    Mismatch {
        /// Which claim.
        what: &'static str,
        /// The certificate's serial.
        serial: String,
        /// The certificate's value.
        certificate: String,
        /// The statement's value.
        statement: String,
    },
}

/// The fingerprint of the instance an attested certificate certifies: SHA-256 of its DER
/// SubjectPublicKeyInfo (the same value as the service's `tls_key_sha256`, and as
/// [`crate::platform::certificate_key_id`]). Clients pin it; receipts name it.
///
/// # Errors
/// [`AttestError::Certificate`] if the certificate cannot be parsed.
pub fn instance_fingerprint(certificate_der: &[u8]) -> Result<Digest, AttestError> {
    crate::platform::certificate_key_id(certificate_der)
}

/// A certificate's serial, lowercase hex, as the service records it.
fn serial_hex(cert: &X509Certificate<'_>) -> String {
    hex::encode(cert.raw_serial())
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err("bytes after the certificate".into());
    }
    Ok(cert)
}

/// The runtime's side: signs its own end statement with its attested key. Made once the
/// runtime holds its certificate (every claim is read from it), used once at the end.
/// `Debug` never shows the key.
pub struct InstanceEndSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    computation_id: String,
    policy_hash: Digest,
    serial: String,
}

impl std::fmt::Debug for InstanceEndSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceEndSigner")
            .field("computation_id", &self.computation_id)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl InstanceEndSigner {
    /// A signer from the runtime's attested key (PKCS#8 P-256 DER) and its attested
    /// certificate (DER), whose computation id, policy hash and serial the statement names.
    ///
    /// # Errors
    /// [`AttestError::Key`] if the key is not a P-256 PKCS#8 key or not the certificate's;
    /// [`AttestError::Certificate`] if the certificate cannot be parsed or lacks the attested
    /// extensions.
    pub fn new(pkcs8_der: &[u8], certificate_der: &[u8]) -> Result<Self, AttestError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8_der, &rng)
            .map_err(|_| AttestError::Key("the instance key is not a P-256 PKCS#8 key".into()))?;
        let cert = parse_certificate(certificate_der)
            .map_err(|e| AttestError::Certificate(format!("the instance's certificate: {e}")))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err(AttestError::Key(
                "the instance key is not the key of its attested certificate".into(),
            ));
        }
        let claims = AttestedClaims::from_certificate(&cert)
            .map_err(|e| AttestError::Certificate(e.to_string()))?;
        Ok(Self {
            key,
            rng,
            computation_id: claims.computation_id,
            policy_hash: claims.policy_hash,
            serial: serial_hex(&cert),
        })
    }

    /// The serial of the certificate the statement names.
    #[must_use]
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Signs "this instance ended at `now`, because `reason`".
    ///
    /// # Errors
    /// [`AttestError::Encoding`] if signing fails.
    pub fn sign(&self, reason: EndReason, now: OffsetDateTime) -> Result<String, AttestError> {
        let header = Header {
            alg: "ES256".into(),
            typ: INSTANCE_END_TYP.into(),
        };
        let claims = InstanceEnd {
            format: INSTANCE_END_FORMAT.into(),
            computation_id: self.computation_id.clone(),
            policy_hash: self.policy_hash,
            serial: self.serial.clone(),
            reason,
            ended_at_ms: i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
        };
        let encode = |e: serde_json::Error| AttestError::Encoding(e.to_string());
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(encode)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(encode)?)
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| AttestError::Encoding("signing the end statement failed".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// The three parts of a compact JWS within [`MAX_INSTANCE_END_BYTES`].
fn split(statement: &str) -> Result<(&str, &str, &str), InstanceEndError> {
    let malformed = |m: &str| InstanceEndError::Malformed(m.to_owned());
    let statement = statement.trim_end();
    if statement.len() > MAX_INSTANCE_END_BYTES {
        return Err(InstanceEndError::Malformed(format!(
            "longer than {MAX_INSTANCE_END_BYTES} bytes"
        )));
    }
    let mut parts = statement.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok((header, payload, signature)),
        _ => Err(malformed(
            "a compact JWS has exactly three dot-separated parts",
        )),
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(
    part: &str,
    what: &str,
) -> Result<T, InstanceEndError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| InstanceEndError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| InstanceEndError::Malformed(format!("the {what} is not valid: {e}")))
}

/// The claims of an end statement **without verifying anything**: for finding the
/// certificate to verify it against (its serial). Never act on them; use
/// [`verify_instance_end`].
///
/// # Errors
/// [`InstanceEndError::Malformed`].
pub fn unverified_instance_end(statement: &str) -> Result<InstanceEnd, InstanceEndError> {
    let (_, payload, _) = split(statement)?;
    decode_json(payload, "payload")
}

/// Verifies an end statement against the attested certificate (DER) it claims to end: the
/// header is ES256 with the end statement's `typ`; the signature verifies with the
/// certificate's key; the payload is of [`INSTANCE_END_FORMAT`] and names the certificate's
/// serial, computation id and policy hash.
///
/// # Errors
/// [`InstanceEndError`] naming the first failed check.
pub fn verify_instance_end(
    statement: &str,
    certificate_der: &[u8],
) -> Result<InstanceEnd, InstanceEndError> {
    let malformed = |m: &str| InstanceEndError::Malformed(m.to_owned());
    let (header_b64, payload_b64, signature_b64) = split(statement)?;
    let header: Header = decode_json(header_b64, "header")?;
    if header.alg != "ES256" {
        return Err(malformed("the algorithm is not ES256"));
    }
    if header.typ != INSTANCE_END_TYP {
        return Err(malformed("the type is not a Covenant end statement"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed("the signature is not base64url"))?;
    let cert = parse_certificate(certificate_der)
        .map_err(|e| InstanceEndError::Malformed(format!("the certificate: {e}")))?;
    let serial = serial_hex(&cert);
    let statement = statement.trim_end();
    let signing_input = &statement[..header_b64.len() + 1 + payload_b64.len()];
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_FIXED,
        cert.public_key().subject_public_key.data.as_ref(),
    )
    .verify(signing_input.as_bytes(), &signature)
    .map_err(|_| InstanceEndError::BadSignature {
        serial: serial.clone(),
    })?;
    let claims: InstanceEnd = decode_json(payload_b64, "payload")?;
    if claims.format != INSTANCE_END_FORMAT {
        return Err(InstanceEndError::Malformed(format!(
            "format {:?}; this build reads {INSTANCE_END_FORMAT}",
            claims.format.chars().take(80).collect::<String>()
        )));
    }
    let attested = AttestedClaims::from_certificate(&cert)
        .map_err(|e| InstanceEndError::Malformed(format!("the certificate: {e}")))?;
    let check = |what, certificate: String, statement: &str| {
        if certificate == statement {
            Ok(())
        } else {
            Err(InstanceEndError::Mismatch {
                what,
                serial: serial.clone(),
                certificate,
                statement: statement.chars().take(300).collect(),
            })
        }
    };
    check("serial", serial.clone(), &claims.serial)?;
    check(
        "computation",
        attested.computation_id.clone(),
        &claims.computation_id,
    )?;
    check(
        "policy hash",
        attested.policy_hash.to_hex(),
        &claims.policy_hash.to_hex(),
    )?;
    Ok(claims)
}
