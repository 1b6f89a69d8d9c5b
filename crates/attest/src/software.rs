//! The software platform: attestation without a TEE.
//!
//! **What it proves and what it does not.** The measurement is the SHA-256 of the running
//! executable file, computed by the runtime itself, and the evidence is signed by a platform
//! key that lives on the host's disk. Anyone who controls the host operating system can read
//! that key, run a different binary and sign any measurement they like. The software platform
//! therefore *trusts the host OS and its administrators*; it says so in every piece of evidence
//! ([`SOFTWARE_TRUST_STATEMENT`], in [`crate::EvidenceClaims::trust`]) and the attestation
//! service records it. It is for development, tests and hosts without a TEE. What it does give:
//! the service only certifies keys for runtimes on hosts it enrolled, running binaries it
//! allowed, for the policy and computation the runtime was started with, fresh (nonce).

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};

use crate::platform::{CLAIMS_FORMAT, EVIDENCE_FORMAT};
use crate::{
    AttestError, Digest, Evidence, EvidenceClaims, EvidenceError, EvidenceRequest,
    EvidenceVerifier, Measurement, Platform, PlatformEnrolment, PlatformKind, VerifiedEvidence,
};

/// What a relying party must trust for software-platform evidence to mean anything. Carried in
/// every piece of software evidence.
pub const SOFTWARE_TRUST_STATEMENT: &str = "software platform: no hardware isolation. The \
measurement and this signature are only as trustworthy as the host operating system and its \
administrators, who can read the platform key. For development, tests and hosts without a TEE.";

/// Buffer size for hashing an executable: large enough to be fast, small enough to keep memory
/// flat whatever the file's size.
const HASH_CHUNK: usize = 64 * 1024;

/// The measurement of the running executable: SHA-256 of the file
/// [`std::env::current_exe`] names.
///
/// This is what the software platform puts in evidence and what `covenant measurement` prints,
/// so that a service administrator can allow it (`covenant attestation-service
/// allow-measurement`).
///
/// # Errors
/// [`AttestError::Io`] if the executable cannot be found or read.
pub fn measure_current_executable() -> Result<Measurement, AttestError> {
    let path = std::env::current_exe().map_err(|source| AttestError::Io {
        path: "<current executable>".into(),
        source,
    })?;
    measure_file(&path)
}

/// SHA-256 of a file, read in chunks.
///
/// # Errors
/// [`AttestError::Io`] if it cannot be read.
pub fn measure_file(path: &Path) -> Result<Measurement, AttestError> {
    use sha2::Digest as _;
    let io = |source| AttestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; HASH_CHUNK];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(Measurement::sha256(hasher.finalize().into()))
}

/// The software platform: a P-256 platform key (PKCS#8) with its certificate, and the
/// measurement of the runtime.
pub struct SoftwarePlatform {
    key: EcdsaKeyPair,
    key_id: Digest,
    measurement: Measurement,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftwarePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is never printed.
        f.debug_struct("SoftwarePlatform")
            .field("key_id", &self.key_id)
            .field("measurement", &self.measurement)
            .finish_non_exhaustive()
    }
}

impl SoftwarePlatform {
    /// A platform from its certificate and PKCS#8 key (PEM, as `covenant identity new` writes
    /// them) and a measurement (normally [`measure_current_executable`]; tests pass their own).
    ///
    /// # Errors
    /// [`AttestError::Pem`], [`AttestError::Key`] if the key is not P-256 or does not match the
    /// certificate, [`AttestError::Certificate`] if the certificate cannot be parsed.
    pub fn new(
        certificate_pem: &[u8],
        key_pem: &[u8],
        measurement: Measurement,
    ) -> Result<Self, AttestError> {
        let cert = crate::pem::certificate_from_pem(certificate_pem, "platform certificate")?;
        let key = crate::pem::pkcs8_key_from_pem(key_pem, "platform key")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            key.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| AttestError::Key(format!("platform key is not a P-256 PKCS#8 key: {e}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
            .map_err(|e| AttestError::Certificate(format!("platform certificate: {e}")))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err(AttestError::Key(
                "the platform key does not match its certificate".into(),
            ));
        }
        let key_id = Digest::of(parsed.public_key().raw);
        Ok(Self {
            key,
            key_id,
            measurement,
            rng,
        })
    }

    /// [`SoftwarePlatform::new`] reading the two PEM files, measuring the current executable.
    ///
    /// # Errors
    /// As [`SoftwarePlatform::new`], plus [`AttestError::Io`].
    pub fn from_files(certificate: &Path, key: &Path) -> Result<Self, AttestError> {
        let certificate_pem = crate::pem::read_pem_file(certificate)?;
        let key_pem = crate::pem::read_pem_file(key)?;
        Self::new(&certificate_pem, &key_pem, measure_current_executable()?)
    }

    /// SHA-256 of the platform key's SubjectPublicKeyInfo: what evidence names as its signer.
    pub fn key_id(&self) -> Digest {
        self.key_id
    }
}

impl Platform for SoftwarePlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Software
    }

    fn measurement(&self) -> Measurement {
        self.measurement
    }

    fn evidence(&self, request: &EvidenceRequest) -> Result<Evidence, AttestError> {
        crate::check_computation_id(&request.computation_id)?;
        let claims = EvidenceClaims {
            format: CLAIMS_FORMAT.into(),
            platform: PlatformKind::Software,
            trust: SOFTWARE_TRUST_STATEMENT.into(),
            measurement: self.measurement,
            policy_hash: request.policy_hash,
            computation_id: request.computation_id.clone(),
            tls_public_key_sha256: request.tls_public_key_sha256,
            nonce: request.nonce,
        };
        let claims_bytes =
            serde_json::to_vec(&claims).map_err(|e| AttestError::Encoding(e.to_string()))?;
        let signature = self
            .key
            .sign(&self.rng, &claims_bytes)
            .map_err(|_| AttestError::Key("signing evidence failed".into()))?;
        let engine = &base64::engine::general_purpose::STANDARD;
        Ok(Evidence {
            format: EVIDENCE_FORMAT.into(),
            platform: PlatformKind::Software,
            signer_key_id: self.key_id,
            claims: engine.encode(&claims_bytes),
            signature: engine.encode(signature.as_ref()),
        })
    }
}

/// Verifies software-platform evidence: the signer is the enrolled platform key, the signature
/// verifies over the claims bytes, the claims parse and agree with the envelope.
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftwareVerifier;

impl EvidenceVerifier for SoftwareVerifier {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Software
    }

    fn verify(
        &self,
        evidence: &Evidence,
        enrolment: &PlatformEnrolment,
    ) -> Result<VerifiedEvidence, EvidenceError> {
        if evidence.platform != PlatformKind::Software {
            return Err(EvidenceError::PlatformKindMismatch {
                evidence: evidence.platform,
                enrolled: PlatformKind::Software,
            });
        }
        if enrolment.kind != PlatformKind::Software {
            return Err(EvidenceError::PlatformKindMismatch {
                evidence: evidence.platform,
                enrolled: enrolment.kind,
            });
        }
        let (_, cert) = x509_parser::parse_x509_certificate(&enrolment.certificate_der)
            .map_err(|e| EvidenceError::BadEnrolment(e.to_string()))?;
        let spki = cert.public_key();
        if !is_p256(spki) {
            return Err(EvidenceError::BadEnrolment("not an ECDSA P-256 key".into()));
        }
        let enrolled = Digest::of(spki.raw);
        if evidence.signer_key_id != enrolled {
            return Err(EvidenceError::SignerMismatch {
                evidence: evidence.signer_key_id,
                enrolled,
            });
        }
        let (claims_bytes, signature) = evidence.decoded_parts()?;
        UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_ASN1,
            spki.subject_public_key.data.as_ref(),
        )
        .verify(&claims_bytes, &signature)
        .map_err(|_| EvidenceError::BadSignature)?;
        let claims = evidence.parse_claims(&claims_bytes)?;
        Ok(VerifiedEvidence::new(enrolment.name.clone(), claims))
    }
}

/// Whether a SubjectPublicKeyInfo is an EC key on P-256.
pub(crate) fn is_p256(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> bool {
    use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
    spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|oid| oid == OID_EC_P256)
}
