//! Ahead-of-time artifacts: compiled machine code in a signed envelope.
//!
//! Deserializing wasmtime machine code is `unsafe`: bytes that did not come from wasmtime's own
//! serializer can do anything. So an artifact is loaded only after three checks, in this order,
//! before a byte of the payload is interpreted:
//! 1. the envelope's framing and header parse, within [`MAX_ARTIFACT_BYTES`];
//! 2. the header names a signer whose public key is one of the trusted certificates, and the
//!    ECDSA P-256 signature over the whole envelope verifies with it;
//! 3. the engine fingerprint in the header equals this engine's.
//!
//! Only [`verify`] can make a [`VerifiedArtifact`], and only a `VerifiedArtifact` reaches the
//! fenced `unsafe` deserialization in `crate::unsafe_artifact`: skipping a check does not compile.
//!
//! # Format (version 1)
//! ```text
//! magic      8 bytes   "COVAOT\0\x01"
//! header_len u32 LE    then that many bytes of JSON (ArtifactHeader)
//! payload_len u64 LE   then that many bytes of wasmtime's serialized module
//! sig_len    u32 LE    then an ASN.1 DER ECDSA P-256/SHA-256 signature over every byte before sig_len
//! ```

use ring::signature::{self, EcdsaKeyPair, KeyPair};
use sha2::{Digest, Sha256};

/// The envelope's first bytes.
pub const MAGIC: &[u8; 8] = b"COVAOT\0\x01";
/// The header's `format_version` this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest artifact we read: 1 GiB. Stops a hostile file from making us allocate more.
pub const MAX_ARTIFACT_BYTES: usize = 1 << 30;
/// The largest header: 64 KiB. It is a few hundred bytes of JSON.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The largest signature: 256 bytes (a DER P-256 signature is at most 72).
pub const MAX_SIGNATURE_BYTES: usize = 256;

/// What an artifact says about itself. Signed together with the payload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactHeader {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Always `wasmtime`: only the JIT has machine code to ship.
    pub engine: String,
    /// The wasmtime version that compiled it.
    pub engine_version: String,
    /// Hex SHA-256 of the engine's compatibility hash: the artifact loads only into an engine
    /// configured the same way.
    pub fingerprint: String,
    /// Hex SHA-256 of the source module.
    pub source_sha256: String,
    /// Hex SHA-256 of the signer's public key (the uncompressed P-256 point).
    pub signer: String,
}

/// Why an artifact was refused. Each says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    /// The bytes are not an artifact envelope.
    #[error("not a Covenant artifact: {0}")]
    Malformed(String),
    /// A newer or older format.
    #[error(
        "artifact format version {found} is not supported (this build reads version {FORMAT_VERSION}); recompile it with `covenant compile`"
    )]
    Version {
        /// The version in the header.
        found: u32,
    },
    /// No trusted certificate holds the signer's key.
    #[error(
        "artifact is signed by an untrusted key (signer {signer}); pass the signer's certificate with --trust, or recompile with a trusted key"
    )]
    UntrustedSigner {
        /// The signer's key fingerprint.
        signer: String,
    },
    /// The signature does not verify: the artifact changed after signing.
    #[error("artifact signature does not verify: the file was modified after it was signed")]
    BadSignature,
    /// Compiled for another engine or configuration.
    #[error(
        "artifact was compiled for a different engine configuration (wasmtime {version}, fingerprint {found}; this engine is {expected}); recompile it with `covenant compile`"
    )]
    Fingerprint {
        /// The artifact's wasmtime version.
        version: String,
        /// The artifact's fingerprint.
        found: String,
        /// This engine's fingerprint.
        expected: String,
    },
    /// The key or certificate given to sign or verify could not be used.
    #[error("{0}")]
    Key(String),
}

/// A P-256 key that signs artifacts (an identity's `.key` file).
pub struct ArtifactSigner {
    key: EcdsaKeyPair,
}

impl std::fmt::Debug for ArtifactSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "ArtifactSigner {{ signer: {} }}", self.signer_id())
    }
}

impl ArtifactSigner {
    /// Loads a PKCS#8 PEM P-256 private key.
    ///
    /// # Errors
    /// [`ArtifactError::Key`] if it is not PEM, not PKCS#8, or not P-256.
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, ArtifactError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| ArtifactError::Key(format!("the signing key is not PEM: {e}")))?;
        if pem.label != "PRIVATE KEY" {
            return Err(ArtifactError::Key(format!(
                "the signing key is a {:?} PEM block; expected a PKCS#8 \"PRIVATE KEY\" (made by `covenant identity new`)",
                pem.label
            )));
        }
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pem.contents,
            &rng,
        )
        .map_err(|e| {
            ArtifactError::Key(format!("the signing key is not a P-256 PKCS#8 key: {e}"))
        })?;
        Ok(ArtifactSigner { key })
    }

    /// Hex SHA-256 of the public key: what an artifact's header names.
    pub fn signer_id(&self) -> String {
        hex::encode(Sha256::digest(self.key.public_key().as_ref()))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ArtifactError> {
        let rng = ring::rand::SystemRandom::new();
        self.key
            .sign(&rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| ArtifactError::Key("signing failed".into()))
    }
}

/// The certificates whose keys may sign artifacts this process loads.
#[derive(Clone, Debug, Default)]
pub struct TrustedSigners {
    /// (signer id, uncompressed P-256 public key)
    keys: Vec<(String, Vec<u8>)>,
}

impl TrustedSigners {
    /// Trusts nobody: every artifact is refused.
    pub fn none() -> Self {
        TrustedSigners::default()
    }

    /// Adds the key of a PEM X.509 certificate (an identity's `.crt` file).
    ///
    /// # Errors
    /// [`ArtifactError::Key`] if it is not a PEM certificate with a P-256 key.
    pub fn add_certificate_pem(&mut self, pem: &[u8]) -> Result<(), ArtifactError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| ArtifactError::Key(format!("the trusted certificate is not PEM: {e}")))?;
        let cert = pem.parse_x509().map_err(|e| {
            ArtifactError::Key(format!("the trusted certificate does not parse: {e}"))
        })?;
        let spki = cert.public_key();
        let ec_oid = x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
        if spki.algorithm.algorithm != ec_oid {
            return Err(ArtifactError::Key(
                "the trusted certificate's key is not an EC key; Covenant identities are P-256"
                    .into(),
            ));
        }
        let key = spki.subject_public_key.data.to_vec();
        let id = hex::encode(Sha256::digest(&key));
        self.keys.push((id, key));
        Ok(())
    }

    fn key_for(&self, signer: &str) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(id, _)| id == signer)
            .map(|(_, key)| key.as_slice())
    }
}

/// An artifact whose signature and fingerprint were checked. Only [`verify`] makes one.
pub struct VerifiedArtifact<'a> {
    header: ArtifactHeader,
    payload: &'a [u8],
}

impl<'a> VerifiedArtifact<'a> {
    /// The checked header.
    pub fn header(&self) -> &ArtifactHeader {
        &self.header
    }

    /// The compiled code, signed by a trusted key for this engine's fingerprint.
    pub(crate) fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Wraps compiled code in a signed envelope.
///
/// # Errors
/// [`ArtifactError::Key`] if signing fails.
pub fn seal(
    payload: &[u8],
    fingerprint: &str,
    source: &[u8],
    signer: &ArtifactSigner,
) -> Result<Vec<u8>, ArtifactError> {
    let header = ArtifactHeader {
        format_version: FORMAT_VERSION,
        engine: "wasmtime".into(),
        engine_version: crate::jit::WASMTIME_VERSION.into(),
        fingerprint: fingerprint.into(),
        source_sha256: hex::encode(Sha256::digest(source)),
        signer: signer.signer_id(),
    };
    let header =
        serde_json::to_vec(&header).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(payload.len() + header.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let sig = signer.sign(&out)?;
    out.extend_from_slice(&(sig.len() as u32).to_le_bytes());
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Reads `n` bytes at `*at`, advancing it.
fn take<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    n: usize,
    what: &str,
) -> Result<&'a [u8], ArtifactError> {
    let end = at
        .checked_add(n)
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| {
            ArtifactError::Malformed(format!(
                "truncated: the {what} runs past the end of the file"
            ))
        })?;
    let slice = &bytes[*at..end];
    *at = end;
    Ok(slice)
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks an envelope against the trusted signers and this engine's fingerprint.
///
/// # Errors
/// The first check that fails, as an [`ArtifactError`] saying what to do.
pub fn verify<'a>(
    bytes: &'a [u8],
    trusted: &TrustedSigners,
    fingerprint: &str,
) -> Result<VerifiedArtifact<'a>, ArtifactError> {
    if bytes.len() > MAX_ARTIFACT_BYTES {
        return Err(ArtifactError::Malformed(format!(
            "{} bytes is larger than the {MAX_ARTIFACT_BYTES}-byte limit",
            bytes.len()
        )));
    }
    if !bytes.starts_with(MAGIC) {
        return Err(ArtifactError::Malformed(
            "it does not start with the artifact magic bytes; is it a .wasm file?".into(),
        ));
    }
    let mut at = MAGIC.len();
    let header_len = le_u32(take(bytes, &mut at, 4, "header length")?) as usize;
    if header_len > MAX_HEADER_BYTES {
        return Err(ArtifactError::Malformed(format!(
            "header of {header_len} bytes exceeds {MAX_HEADER_BYTES}"
        )));
    }
    let header_bytes = take(bytes, &mut at, header_len, "header")?;
    let len_bytes = take(bytes, &mut at, 8, "payload length")?;
    let mut len = [0u8; 8];
    len.copy_from_slice(len_bytes);
    let payload_len = usize::try_from(u64::from_le_bytes(len))
        .map_err(|_| ArtifactError::Malformed("payload length does not fit in memory".into()))?;
    let payload = take(bytes, &mut at, payload_len, "payload")?;
    let signed_len = at;
    let sig_len = le_u32(take(bytes, &mut at, 4, "signature length")?) as usize;
    if sig_len > MAX_SIGNATURE_BYTES {
        return Err(ArtifactError::Malformed(format!(
            "signature of {sig_len} bytes exceeds {MAX_SIGNATURE_BYTES}"
        )));
    }
    let sig = take(bytes, &mut at, sig_len, "signature")?;
    if at != bytes.len() {
        return Err(ArtifactError::Malformed(format!(
            "{} unexpected bytes after the signature",
            bytes.len() - at
        )));
    }
    let header: ArtifactHeader = serde_json::from_slice(header_bytes)
        .map_err(|e| ArtifactError::Malformed(format!("header: {e}")))?;
    if header.format_version != FORMAT_VERSION {
        return Err(ArtifactError::Version {
            found: header.format_version,
        });
    }
    let key = trusted
        .key_for(&header.signer)
        .ok_or_else(|| ArtifactError::UntrustedSigner {
            signer: header.signer.clone(),
        })?;
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(&bytes[..signed_len], sig)
        .map_err(|_| ArtifactError::BadSignature)?;
    if header.fingerprint != fingerprint {
        return Err(ArtifactError::Fingerprint {
            version: header.engine_version.clone(),
            found: header.fingerprint.clone(),
            expected: fingerprint.into(),
        });
    }
    Ok(VerifiedArtifact { header, payload })
}
