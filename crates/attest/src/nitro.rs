//! AWS Nitro Enclaves: verification of an attestation document.
//!
//! A Nitro attestation document is a COSE_Sign1 structure (RFC 9052; CBOR), signed with ES384 by
//! a per-enclave leaf certificate that chains, through the `cabundle` the document carries, to
//! the AWS Nitro Enclaves root. [`verify_document`] checks against the pinned root;
//! [`verify_document_with`] runs the same checks against the Nitro root of a [`TrustAnchors`]
//! (tests use it with a test root: `crate::testing`). Both check, in order (each failure is its
//! own [`NitroError`]):
//!
//! 1. size within [`MAX_DOCUMENT_LEN`]; a COSE_Sign1 (tagged or not) with an attached payload,
//!    a protected header holding only `alg` ES384 and an empty unprotected header (as the Nitro
//!    Security Module makes them);
//! 2. the payload is the CBOR map AWS documents (`module_id`, `digest` = `SHA384`, `timestamp`,
//!    `pcrs`, `certificate`, `cabundle`, `public_key`, `user_data`, `nonce`; no other key, no key
//!    twice), each field of the right type and within its size limit;
//! 3. `cabundle[0]` is, byte for byte, the AWS Nitro root pinned in this crate
//!    ([`crate::anchors::AWS_NITRO_ROOT_PEM`]; its SHA-256 fingerprint, as AWS publishes it, is
//!    `64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B`,
//!    valid from 2019-10-28 to 2049-10-28): the root that arrives with the document is never
//!    trusted on its own;
//! 4. each further certificate of the bundle, then the leaf (`certificate`), is signed by the one
//!    before it, names it as issuer, and every issuer is a CA (basic constraints, path length,
//!    key usage);
//! 5. every certificate of the chain, the root included, is valid at the **verification time**
//!    the caller gives (never the clock of this machine implicitly);
//! 6. the leaf's key is ECDSA P-384 and the COSE signature verifies with it over the exact bytes
//!    received (ring's `ECDSA_P384_SHA384_FIXED`);
//! 7. PCR0 is present and 48 bytes; a document whose PCR0 is all zeros (debug mode: the enclave
//!    was started with `--debug-mode`, and its memory can be read by the parent instance) is
//!    refused unless the caller allows debug.
//!
//! Only then are the claims ([`NitroClaims`]) returned: PCR0 as the measurement, every PCR, and
//! `user_data`, `nonce` and `public_key` as the enclave chose them. Binding to one attestation is
//! a separate check, [`NitroClaims::check_report_data`]: `user_data` must equal
//! [`crate::binding::report_data`] of the attestation's nonce, TLS key, policy and computation.
//! It is separate so that genuine documents published by others (which cannot carry our report
//! data) can be verified by tests with everything else checked.

use std::collections::BTreeMap;
use std::fmt;

use coset::cbor::value::Value;
use coset::{CborSerializable as _, CoseSign1, TaggedCborSerializable as _, iana};
use ring::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::time::ASN1Time;

use crate::Measurement;
use crate::anchors::TrustAnchors;
use crate::binding::REPORT_DATA_LEN;

/// The largest attestation document accepted, in bytes. Genuine documents are 4–7 KiB (a leaf
/// and three or four intermediates, up to 1 KiB each). Stops hostile evidence from making the
/// verifier decode megabytes of CBOR.
pub const MAX_DOCUMENT_LEN: usize = 16 * 1024;
/// The most certificates accepted in `cabundle` (the root and intermediates; AWS uses a root and
/// three intermediates). Stops a long chain from costing one signature check per entry.
pub const MAX_CABUNDLE_LEN: usize = 8;
/// The largest certificate accepted, in bytes (AWS documents: 1 to 1024). Stops oversized
/// certificates from reaching the X.509 parser.
pub const MAX_CERTIFICATE_LEN: usize = 1024;
/// The most PCRs accepted (AWS documents: 1 to 32, indices 0 to 31). Stops a map of thousands of
/// entries.
pub const MAX_PCRS: usize = 32;
/// The largest `user_data` or `nonce` accepted, in bytes (AWS documents: 512). Bounds what the
/// enclave can make the verifier copy and print.
pub const MAX_USER_DATA_LEN: usize = 512;
/// The largest `public_key` accepted, in bytes (AWS documents: 1 to 1024).
pub const MAX_PUBLIC_KEY_LEN: usize = 1024;
/// The longest `module_id` accepted, in bytes. Bounds a string that is printed and stored.
pub const MAX_MODULE_ID_LEN: usize = 256;
/// The length of a SHA-384 PCR, in bytes: the only digest AWS uses.
pub const PCR_LEN: usize = 48;

/// A refusal of a Nitro attestation document, naming the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NitroError {
    /// The document is larger than [`MAX_DOCUMENT_LEN`].
    #[error("the attestation document is {0} bytes; at most {MAX_DOCUMENT_LEN} are accepted")]
    TooLarge(usize),
    /// The COSE_Sign1 envelope could not be decoded.
    #[error("not a COSE_Sign1 attestation document: {0}")]
    MalformedCose(String),
    /// The protected header does not name ES384.
    #[error("the document's signature algorithm is {0}, not ES384")]
    UnsupportedAlgorithm(String),
    /// The payload (the attestation document proper) could not be decoded or has a bad field.
    #[error("malformed attestation document: {0}")]
    MalformedPayload(String),
    /// A certificate of the chain could not be parsed or is unfit for its place.
    #[error("{which}: {reason}")]
    BadCertificate {
        /// Which certificate (`cabundle[1]`, `the leaf certificate`, ...).
        which: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `cabundle[0]` is not the pinned AWS Nitro root.
    #[error(
        "the certificate chain does not end at the pinned AWS Nitro Enclaves root \
         (cabundle[0] is {subject:?}, SHA-256 {sha256})"
    )]
    UntrustedRoot {
        /// Subject of the root the document carries, or why it could not be read.
        subject: String,
        /// SHA-256 (hex) of that root's DER.
        sha256: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("{which} is not signed by {issuer}")]
    ChainSignature {
        /// The certificate.
        which: String,
        /// Its supposed issuer.
        issuer: String,
    },
    /// A certificate is not valid at the verification time.
    #[error(
        "{which} is not valid at {at} (valid from {not_before} to {not_after}): \
         it has expired or is not yet valid"
    )]
    CertificateNotValid {
        /// The certificate.
        which: String,
        /// The verification time (RFC 3339).
        at: String,
        /// Its notBefore.
        not_before: String,
        /// Its notAfter.
        not_after: String,
    },
    /// The COSE signature does not verify with the leaf certificate's key.
    #[error(
        "the attestation document's ES384 signature does not verify with the leaf certificate's key"
    )]
    BadSignature,
    /// The document was produced in debug mode (PCR0 all zeros) and debug is not allowed.
    #[error(
        "the attestation document is from an enclave in debug mode (PCR0 is all zeros): \
         its memory is readable by the parent instance; refused unless debug is allowed"
    )]
    DebugMode,
    /// `user_data` is not the report data this attestation requires.
    #[error("the document's user_data is {found}, not the expected report data {expected}")]
    ReportDataMismatch {
        /// Hex of the expected report data.
        expected: String,
        /// Hex of `user_data`, or `absent`.
        found: String,
    },
    /// The pinned root compiled into this crate could not be read (a build defect).
    #[error("the pinned AWS Nitro root cannot be read: {0}")]
    PinnedRoot(String),
}

/// What a verified Nitro attestation document says.
#[derive(Clone, PartialEq, Eq)]
pub struct NitroClaims {
    /// The enclave's id (`i-…-enc…`).
    pub module_id: String,
    /// When the Nitro Security Module made the document, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Every PCR the document carries, by index (48 bytes each).
    pub pcrs: BTreeMap<u8, Vec<u8>>,
    /// Whether the document is from an enclave in debug mode (PCR0 all zeros). True only if the
    /// caller allowed debug.
    pub debug: bool,
    /// The enclave's `user_data`, if any: for Covenant, [`crate::binding::report_data`].
    pub user_data: Option<Vec<u8>>,
    /// The enclave's `nonce`, if any.
    pub nonce: Option<Vec<u8>>,
    /// The enclave's `public_key`, if any.
    pub public_key: Option<Vec<u8>>,
    /// The verification time the chain was checked at.
    pub verified_at: OffsetDateTime,
}

impl fmt::Debug for NitroClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NitroClaims")
            .field("module_id", &self.module_id)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("pcr0", &hex::encode(self.pcr0()))
            .field("debug", &self.debug)
            .field("user_data", &self.user_data.as_ref().map(hex::encode))
            .field("nonce", &self.nonce.as_ref().map(hex::encode))
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

impl NitroClaims {
    /// PCR0: the SHA-384 of the enclave image file (what `nitro-cli build-enclave` prints as
    /// `PCR0`). Always present and 48 bytes in verified claims.
    pub fn pcr0(&self) -> &[u8] {
        self.pcrs.get(&0).map_or(&[], Vec::as_slice)
    }

    /// The measurement: PCR0.
    pub fn measurement(&self) -> Option<Measurement> {
        Measurement::from_bytes(self.pcr0())
    }

    /// The document's timestamp as a time (None if out of range).
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.timestamp_ms) * 1_000_000).ok()
    }

    /// Requires `user_data` to equal `expected` (from [`crate::binding::report_data`]).
    ///
    /// # Errors
    /// [`NitroError::ReportDataMismatch`].
    pub fn check_report_data(&self, expected: &[u8; REPORT_DATA_LEN]) -> Result<(), NitroError> {
        match &self.user_data {
            // Not secret: user_data is public, so a plain comparison.
            Some(data) if data.as_slice() == expected.as_slice() => Ok(()),
            other => Err(NitroError::ReportDataMismatch {
                expected: hex::encode(expected),
                found: other
                    .as_ref()
                    .map_or_else(|| "absent".to_owned(), hex::encode),
            }),
        }
    }
}

/// The fields of the payload, decoded but not yet trusted.
struct Payload {
    module_id: String,
    timestamp_ms: u64,
    pcrs: BTreeMap<u8, Vec<u8>>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

/// Verifies a Nitro attestation document (raw COSE_Sign1 bytes) at time `at`, against the
/// pinned AWS Nitro root ([`TrustAnchors::pinned`]); see the [module documentation](self) for
/// every check.
///
/// Does **not** check `user_data`: call [`NitroClaims::check_report_data`] for that.
///
/// # Errors
/// The [`NitroError`] of the first check that failed.
pub fn verify_document(
    document: &[u8],
    at: OffsetDateTime,
    allow_debug: bool,
) -> Result<NitroClaims, NitroError> {
    verify_document_with(&TrustAnchors::pinned(), document, at, allow_debug)
}

/// [`verify_document`] against the Nitro root of `anchors`: the same checks, only the root the
/// chain must start at differs. Production callers pass [`TrustAnchors::pinned`]; other anchors
/// exist only in tests (`TrustAnchors::insecure_for_tests`, see [`crate::anchors`]).
///
/// # Errors
/// The [`NitroError`] of the first check that failed.
pub fn verify_document_with(
    anchors: &TrustAnchors,
    document: &[u8],
    at: OffsetDateTime,
    allow_debug: bool,
) -> Result<NitroClaims, NitroError> {
    if document.len() > MAX_DOCUMENT_LEN {
        return Err(NitroError::TooLarge(document.len()));
    }
    let sign1 = decode_cose(document)?;
    let es384 = coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384);
    match &sign1.protected.header.alg {
        Some(alg) if *alg == es384 => {}
        Some(other) => return Err(NitroError::UnsupportedAlgorithm(format!("{other:?}"))),
        None => return Err(NitroError::UnsupportedAlgorithm("absent".into())),
    }
    // The NSM sets only `alg`, and nothing unprotected: refuse anything else rather than carry
    // unsigned or unexamined header fields along.
    let only_alg = coset::HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES384)
        .build();
    if sign1.protected.header != only_alg {
        return Err(NitroError::MalformedCose(
            "the protected header holds more than the algorithm".into(),
        ));
    }
    if !sign1.unprotected.is_empty() {
        return Err(NitroError::MalformedCose(
            "the unprotected header is not empty".into(),
        ));
    }
    let payload_bytes = sign1
        .payload
        .as_deref()
        .ok_or_else(|| NitroError::MalformedCose("the payload is detached".into()))?;
    let payload = parse_payload(payload_bytes)?;

    let root_der =
        crate::pem::certificate_from_pem(anchors.aws_nitro_root_pem(), "pinned AWS Nitro root")
            .map_err(|e| NitroError::PinnedRoot(e.to_string()))?;
    let leaf = check_chain(&payload, root_der.as_ref(), at)?;

    let spki = leaf.public_key();
    if !crate::der::is_ecdsa_p384_key(spki) {
        return Err(NitroError::BadCertificate {
            which: "the leaf certificate".into(),
            reason: "its key is not ECDSA P-384".into(),
        });
    }
    let key = UnparsedPublicKey::new(
        &ECDSA_P384_SHA384_FIXED,
        spki.subject_public_key.data.as_ref(),
    );
    sign1.verify_signature(b"", |signature, signed| {
        key.verify(signed, signature)
            .map_err(|_| NitroError::BadSignature)
    })?;

    let pcr0 = payload
        .pcrs
        .get(&0)
        .ok_or_else(|| NitroError::MalformedPayload("PCR0 is missing".into()))?;
    let debug = pcr0.iter().all(|&b| b == 0);
    if debug && !allow_debug {
        return Err(NitroError::DebugMode);
    }
    Ok(NitroClaims {
        module_id: payload.module_id,
        timestamp_ms: payload.timestamp_ms,
        pcrs: payload.pcrs,
        debug,
        user_data: payload.user_data,
        nonce: payload.nonce,
        public_key: payload.public_key,
        verified_at: at,
    })
}

/// A COSE_Sign1, with or without its CBOR tag (18); Nitro emits it untagged.
fn decode_cose(document: &[u8]) -> Result<CoseSign1, NitroError> {
    let decoded = if document.first() == Some(&0xd2) {
        CoseSign1::from_tagged_slice(document)
    } else {
        CoseSign1::from_slice(document)
    };
    decoded.map_err(|e| NitroError::MalformedCose(e.to_string()))
}

fn malformed(what: impl Into<String>) -> NitroError {
    NitroError::MalformedPayload(what.into())
}

fn bytes_field(name: &str, value: Value, min: usize, max: usize) -> Result<Vec<u8>, NitroError> {
    match value {
        Value::Bytes(b) if (min..=max).contains(&b.len()) => Ok(b),
        Value::Bytes(b) => Err(malformed(format!(
            "{name} is {} bytes; {min} to {max} are allowed",
            b.len()
        ))),
        _ => Err(malformed(format!("{name} is not a byte string"))),
    }
}

fn optional_bytes(name: &str, value: Value, max: usize) -> Result<Option<Vec<u8>>, NitroError> {
    match value {
        Value::Null => Ok(None),
        other => bytes_field(name, other, 0, max).map(Some),
    }
}

fn parse_payload(bytes: &[u8]) -> Result<Payload, NitroError> {
    let mut reader = bytes;
    let value: Value = coset::cbor::de::from_reader(&mut reader)
        .map_err(|e| malformed(format!("the payload is not CBOR: {e}")))?;
    if !reader.is_empty() {
        return Err(malformed("bytes after the payload's CBOR map"));
    }
    let Value::Map(entries) = value else {
        return Err(malformed("the payload is not a CBOR map"));
    };
    let mut module_id = None;
    let mut digest = None;
    let mut timestamp_ms = None;
    let mut pcrs = None;
    let mut certificate = None;
    let mut cabundle = None;
    let mut public_key = None;
    let mut user_data = None;
    let mut nonce = None;
    for (key, value) in entries {
        let Value::Text(key) = key else {
            return Err(malformed("a payload key is not text"));
        };
        let duplicate = || malformed(format!("the key {key:?} appears twice"));
        match key.as_str() {
            "module_id" => match value {
                Value::Text(t) if !t.is_empty() && t.len() <= MAX_MODULE_ID_LEN => {
                    if module_id.replace(t).is_some() {
                        return Err(duplicate());
                    }
                }
                _ => {
                    return Err(malformed(format!(
                        "module_id is not text of 1 to {MAX_MODULE_ID_LEN} bytes"
                    )));
                }
            },
            "digest" => match value {
                Value::Text(t) => {
                    if digest.replace(t).is_some() {
                        return Err(duplicate());
                    }
                }
                _ => return Err(malformed("digest is not text")),
            },
            "timestamp" => {
                let t = match value {
                    Value::Integer(i) => u64::try_from(i).ok().filter(|&t| t > 0),
                    _ => None,
                }
                .ok_or_else(|| malformed("timestamp is not a positive integer"))?;
                if timestamp_ms.replace(t).is_some() {
                    return Err(duplicate());
                }
            }
            "pcrs" => {
                if pcrs.replace(parse_pcrs(value)?).is_some() {
                    return Err(duplicate());
                }
            }
            "certificate" => {
                let c = bytes_field("certificate", value, 1, MAX_CERTIFICATE_LEN)?;
                if certificate.replace(c).is_some() {
                    return Err(duplicate());
                }
            }
            "cabundle" => {
                let Value::Array(items) = value else {
                    return Err(malformed("cabundle is not an array"));
                };
                if items.is_empty() || items.len() > MAX_CABUNDLE_LEN {
                    return Err(malformed(format!(
                        "cabundle has {} certificates; 1 to {MAX_CABUNDLE_LEN} are allowed",
                        items.len()
                    )));
                }
                let mut bundle = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    bundle.push(bytes_field(
                        &format!("cabundle[{i}]"),
                        item,
                        1,
                        MAX_CERTIFICATE_LEN,
                    )?);
                }
                if cabundle.replace(bundle).is_some() {
                    return Err(duplicate());
                }
            }
            "public_key" => {
                let v = match value {
                    Value::Null => None,
                    other => Some(bytes_field("public_key", other, 1, MAX_PUBLIC_KEY_LEN)?),
                };
                if public_key.replace(v).is_some() {
                    return Err(duplicate());
                }
            }
            "user_data" => {
                let v = optional_bytes("user_data", value, MAX_USER_DATA_LEN)?;
                if user_data.replace(v).is_some() {
                    return Err(duplicate());
                }
            }
            "nonce" => {
                let v = optional_bytes("nonce", value, MAX_USER_DATA_LEN)?;
                if nonce.replace(v).is_some() {
                    return Err(duplicate());
                }
            }
            other => {
                return Err(malformed(format!(
                    "unknown key {:?}",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    let missing = |name: &str| malformed(format!("{name} is missing"));
    let digest = digest.ok_or_else(|| missing("digest"))?;
    if digest != "SHA384" {
        return Err(malformed(format!(
            "digest is {:?}, not \"SHA384\"",
            digest.chars().take(64).collect::<String>()
        )));
    }
    Ok(Payload {
        module_id: module_id.ok_or_else(|| missing("module_id"))?,
        timestamp_ms: timestamp_ms.ok_or_else(|| missing("timestamp"))?,
        pcrs: pcrs.ok_or_else(|| missing("pcrs"))?,
        certificate: certificate.ok_or_else(|| missing("certificate"))?,
        cabundle: cabundle.ok_or_else(|| missing("cabundle"))?,
        public_key: public_key.flatten(),
        user_data: user_data.flatten(),
        nonce: nonce.flatten(),
    })
}

fn parse_pcrs(value: Value) -> Result<BTreeMap<u8, Vec<u8>>, NitroError> {
    let Value::Map(entries) = value else {
        return Err(malformed("pcrs is not a map"));
    };
    if entries.is_empty() || entries.len() > MAX_PCRS {
        return Err(malformed(format!(
            "pcrs has {} entries; 1 to {MAX_PCRS} are allowed",
            entries.len()
        )));
    }
    let mut pcrs = BTreeMap::new();
    for (index, value) in entries {
        let index = match index {
            Value::Integer(i) => u8::try_from(i).ok().filter(|&i| usize::from(i) < MAX_PCRS),
            _ => None,
        }
        .ok_or_else(|| malformed(format!("a PCR index is not an integer below {MAX_PCRS}")))?;
        let pcr = bytes_field(&format!("PCR{index}"), value, PCR_LEN, PCR_LEN)?;
        if pcrs.insert(index, pcr).is_some() {
            return Err(malformed(format!("PCR{index} appears twice")));
        }
    }
    Ok(pcrs)
}

fn parse_certificate<'a>(der: &'a [u8], which: &str) -> Result<X509Certificate<'a>, NitroError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(NitroError::BadCertificate {
            which: which.into(),
            reason: "bytes after the certificate".into(),
        }),
        Err(e) => Err(NitroError::BadCertificate {
            which: which.into(),
            reason: format!("not a DER X.509 certificate: {e}"),
        }),
    }
}

fn check_validity(
    cert: &X509Certificate<'_>,
    which: &str,
    at: OffsetDateTime,
) -> Result<(), NitroError> {
    if cert.validity().is_valid_at(ASN1Time::from(at)) {
        return Ok(());
    }
    let rfc3339 = |t: ASN1Time| {
        t.to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    Err(NitroError::CertificateNotValid {
        which: which.into(),
        at: at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| at.to_string()),
        not_before: rfc3339(cert.validity().not_before),
        not_after: rfc3339(cert.validity().not_after),
    })
}

/// Checks that `issuer` may issue certificates with `below` CA certificates under it.
fn check_issuer(issuer: &X509Certificate<'_>, which: &str, below: usize) -> Result<(), NitroError> {
    let bad = |reason: String| NitroError::BadCertificate {
        which: which.into(),
        reason,
    };
    let constraints = issuer
        .basic_constraints()
        .map_err(|e| bad(format!("bad basic constraints: {e}")))?
        .map(|ext| ext.value);
    match constraints {
        Some(bc) if bc.ca => {
            if let Some(len) = bc.path_len_constraint
                && usize::try_from(len).is_ok_and(|len| below > len)
            {
                return Err(bad(format!(
                    "its path length constraint is {len}, but {below} CA certificates follow it"
                )));
            }
        }
        _ => return Err(bad("it issues a certificate but is not a CA".into())),
    }
    let usage = issuer
        .key_usage()
        .map_err(|e| bad(format!("bad key usage: {e}")))?;
    if let Some(usage) = usage
        && !usage.value.key_cert_sign()
    {
        return Err(bad(
            "its key usage does not allow signing certificates".into()
        ));
    }
    Ok(())
}

/// Checks the chain `root (pinned) → cabundle[1..] → certificate` at `at`; returns the leaf.
fn check_chain<'a>(
    payload: &'a Payload,
    pinned_root_der: &[u8],
    at: OffsetDateTime,
) -> Result<X509Certificate<'a>, NitroError> {
    let carried_root = payload
        .cabundle
        .first()
        .ok_or_else(|| malformed("cabundle is empty"))?;
    if carried_root.as_slice() != pinned_root_der {
        let subject = match x509_parser::parse_x509_certificate(carried_root) {
            Ok((_, cert)) => cert.subject().to_string(),
            Err(_) => "not a certificate".into(),
        };
        return Err(NitroError::UntrustedRoot {
            subject,
            sha256: crate::Digest::of(carried_root).to_hex(),
        });
    }
    // From here on, cabundle[0] is the pinned root's exact bytes.
    let mut chain = Vec::with_capacity(payload.cabundle.len() + 1);
    for (i, der) in payload.cabundle.iter().enumerate() {
        let which = if i == 0 {
            "the AWS Nitro root (cabundle[0])".to_owned()
        } else {
            format!("cabundle[{i}]")
        };
        chain.push((which.clone(), parse_certificate(der, &which)?));
    }
    let leaf_name = "the leaf certificate".to_owned();
    chain.push((
        leaf_name.clone(),
        parse_certificate(&payload.certificate, &leaf_name)?,
    ));

    let ca_count = payload.cabundle.len();
    for (i, pair) in chain.windows(2).enumerate() {
        let [(issuer_name, issuer), (which, cert)] = pair else {
            continue;
        };
        // CA certificates below this issuer: the rest of the bundle after it.
        let below = ca_count.saturating_sub(i + 2);
        check_issuer(issuer, issuer_name, below)?;
        if cert.issuer() != issuer.subject() {
            return Err(NitroError::BadCertificate {
                which: which.clone(),
                reason: format!(
                    "its issuer {} is not the subject of {issuer_name} ({})",
                    cert.issuer(),
                    issuer.subject()
                ),
            });
        }
        cert.verify_signature(Some(issuer.public_key()))
            .map_err(|_| NitroError::ChainSignature {
                which: which.clone(),
                issuer: issuer_name.clone(),
            })?;
    }
    // Leaf first: it lives hours, the others years, so an expired document names its leaf.
    for (which, cert) in chain.iter().rev() {
        check_validity(cert, which, at)?;
    }
    chain
        .pop()
        .map(|(_, leaf)| leaf)
        .ok_or_else(|| malformed("no leaf certificate"))
}

#[cfg(test)]
mod tests;
