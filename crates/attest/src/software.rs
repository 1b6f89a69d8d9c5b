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
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::platform::{CLAIMS_FORMAT, EVIDENCE_FORMAT};
use crate::{
    AttestError, Digest, Evidence, EvidenceClaims, EvidenceError, EvidenceRequest,
    EvidenceVerifier, Measurement, Platform, PlatformEnrolment, PlatformEvidence, PlatformKind,
    VerifiedEvidence,
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

/// The largest platform key file read, in bytes. A P-256 PKCS#8 key in PEM is about 240
/// bytes; the bound stops a mistaken path (`/dev/zero`, a disk image) from being read whole,
/// and lets [`read_platform_key_file`] allocate its buffer once, at full size, so that no
/// reallocation leaves a copy of the key behind in freed memory.
pub const MAX_PLATFORM_KEY_FILE_BYTES: usize = 16 * 1024;

/// Bytes of stack overwritten after the platform key has been parsed and used. ring keeps no
/// zeroing promise: parsing a PKCS#8 key copies the private scalar into stack temporaries
/// (and the parsed key itself lives on the stack while it signs). The frames of parsing and
/// signing take a few KiB; overwriting 32 KiB below the caller's frame covers them with room
/// to spare, so that those copies do not outlive the signature on the stack.
const STACK_SCRUB_BYTES: usize = 32 * 1024;

/// The PEM label of a PKCS#8 private key.
const PKCS8_PEM_BEGIN: &[u8] = b"-----BEGIN PRIVATE KEY-----";
const PKCS8_PEM_END: &[u8] = b"-----END PRIVATE KEY-----";

/// Reads the platform key file (PEM) into a buffer that is zeroed when dropped, allocated once
/// (at most [`MAX_PLATFORM_KEY_FILE_BYTES`] + 1 bytes) so that no copy is left in memory that
/// was freed without being zeroed. Only reads: parse it with [`SoftwarePlatform::new`].
///
/// # Errors
/// [`AttestError::Io`] if it cannot be read or is larger than the bound.
pub fn read_platform_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, AttestError> {
    let io = |source| AttestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buffer = Zeroizing::new(vec![0u8; MAX_PLATFORM_KEY_FILE_BYTES + 1]);
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    if filled > MAX_PLATFORM_KEY_FILE_BYTES {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_PLATFORM_KEY_FILE_BYTES} bytes; not a PEM platform key (give the \
             `.key` file `covenant identity new` wrote)"
        ))));
    }
    // Truncating keeps the allocation: the whole of it is zeroed on drop.
    buffer.truncate(filled);
    Ok(buffer)
}

/// The DER of the first `PRIVATE KEY` (PKCS#8) block of `pem`, decoded without leaving
/// copies: the base64 text and the DER live in buffers sized once and zeroed on drop.
/// (`rustls_pki_types`' PEM reader keeps its line buffers in plain vectors.)
fn pkcs8_der_from_pem(pem: &[u8], what: &str) -> Result<Zeroizing<Vec<u8>>, AttestError> {
    use base64::Engine as _;
    let refused = |reason: &str| AttestError::Pem {
        what: what.into(),
        reason: reason.into(),
    };
    let find = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
    };
    let begin = find(pem, PKCS8_PEM_BEGIN)
        .ok_or_else(|| refused("no `-----BEGIN PRIVATE KEY-----` block (a PKCS#8 key)"))?
        + PKCS8_PEM_BEGIN.len();
    let body_and_rest = pem.get(begin..).unwrap_or_default();
    let end = find(body_and_rest, PKCS8_PEM_END)
        .ok_or_else(|| refused("the `PRIVATE KEY` block has no END line"))?;
    let body = body_and_rest.get(..end).unwrap_or_default();
    let mut text = Zeroizing::new(Vec::with_capacity(body.len()));
    for &byte in body {
        if !byte.is_ascii_whitespace() {
            // Within the capacity reserved above: never reallocates.
            text.push(byte);
        }
    }
    let mut der = Zeroizing::new(vec![0u8; text.len().div_ceil(4) * 3]);
    let length = base64::engine::general_purpose::STANDARD
        .decode_slice(text.as_slice(), der.as_mut_slice())
        .map_err(|e| refused(&format!("the `PRIVATE KEY` block is not base64: {e}")))?;
    der.truncate(length);
    Ok(der)
}

/// Parses the key, signs `message` (or, with no message, only checks the key) and returns the
/// signature and the public key. The parsed key lives in this frame only; its caller
/// overwrites the stack below it afterwards ([`scrub_stack`]).
#[inline(never)]
fn with_parsed_key(
    pkcs8: &[u8],
    rng: &SystemRandom,
    message: Option<&[u8]>,
) -> Result<(Option<Vec<u8>>, Vec<u8>), AttestError> {
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, rng)
        .map_err(|e| AttestError::Key(format!("platform key is not a P-256 PKCS#8 key: {e}")))?;
    let signature = match message {
        Some(message) => Some(
            key.sign(rng, message)
                .map_err(|_| AttestError::Key("signing evidence failed".into()))?
                .as_ref()
                .to_vec(),
        ),
        None => None,
    };
    Ok((signature, key.public_key().as_ref().to_vec()))
}

/// Overwrites [`STACK_SCRUB_BYTES`] of the stack below the caller's frame, where
/// [`with_parsed_key`] and ring's frames were. Volatile writes: not optimised away.
#[inline(never)]
fn scrub_stack() {
    let mut scratch = [0xa5u8; STACK_SCRUB_BYTES];
    scratch.zeroize();
    std::hint::black_box(&scratch);
}

/// The software platform: a P-256 platform key (PKCS#8) with its certificate, and the
/// measurement of the runtime.
///
/// **The key in memory.** The platform holds its key only as PKCS#8 DER in a buffer that is
/// zeroed when the platform is dropped (or [`Zeroize::zeroize`]d): a runtime drops its
/// platform once it has signed its evidence, so that code running later in that process (a
/// guest that escaped its engine) finds no platform key in it. The key is parsed into ring's
/// type only for the duration of one signature ([`Platform::evidence`]) and the stack below is
/// overwritten afterwards; ring zeroes nothing itself, so this is best effort against copies
/// in ring's frames, not a guarantee about every byte the CPU or the allocator ever held.
pub struct SoftwarePlatform {
    /// PKCS#8 DER of the platform key, zeroed on drop; empty once zeroized.
    pkcs8: Zeroizing<Vec<u8>>,
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
            .field("key_held", &!self.pkcs8.is_empty())
            .finish_non_exhaustive()
    }
}

impl Zeroize for SoftwarePlatform {
    /// Zeroes and forgets the platform key: the platform can sign nothing afterwards.
    fn zeroize(&mut self) {
        self.pkcs8.zeroize();
    }
}

/// The key buffer is [`Zeroizing`]: dropping the platform zeroes it.
impl ZeroizeOnDrop for SoftwarePlatform {}

impl SoftwarePlatform {
    /// A platform from its certificate and PKCS#8 key (PEM, as `covenant identity new` writes
    /// them) and a measurement (normally [`measure_current_executable`]; tests pass their own).
    /// The platform keeps its own copy of the key (zeroed on drop); the caller's `key_pem` is
    /// the caller's to zero ([`read_platform_key_file`] returns a buffer that zeroes itself).
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
        let pkcs8 = pkcs8_der_from_pem(key_pem, "platform key")?;
        let rng = SystemRandom::new();
        let checked = with_parsed_key(&pkcs8, &rng, None);
        scrub_stack();
        let (_, public_key) = checked?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
            .map_err(|e| AttestError::Certificate(format!("platform certificate: {e}")))?;
        if parsed.public_key().subject_public_key.data.as_ref() != public_key.as_slice() {
            return Err(AttestError::Key(
                "the platform key does not match its certificate".into(),
            ));
        }
        let key_id = Digest::of(parsed.public_key().raw);
        Ok(Self {
            pkcs8,
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
        let key_pem = read_platform_key_file(key)?;
        Self::new(&certificate_pem, &key_pem, measure_current_executable()?)
    }

    /// SHA-256 of the platform key's SubjectPublicKeyInfo: what evidence names as its signer.
    pub fn key_id(&self) -> Digest {
        self.key_id
    }

    /// Whether the platform still holds its key (false once [`Zeroize::zeroize`]d).
    pub fn holds_key(&self) -> bool {
        !self.pkcs8.is_empty()
    }
}

impl Platform for SoftwarePlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Software
    }

    fn measurement(&self) -> Measurement {
        self.measurement
    }

    fn evidence(&self, request: &EvidenceRequest) -> Result<PlatformEvidence, AttestError> {
        self.software_evidence(request)
            .map(PlatformEvidence::Software)
    }
}

impl SoftwarePlatform {
    /// Signed claims binding `request` ([`Platform::evidence`] without the envelope enum).
    ///
    /// # Errors
    /// [`AttestError`] if the computation id is invalid or the key has been zeroed.
    pub fn software_evidence(&self, request: &EvidenceRequest) -> Result<Evidence, AttestError> {
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
        if self.pkcs8.is_empty() {
            return Err(AttestError::Key(
                "the platform key has been zeroed: this platform can sign no more evidence; \
                 make a new one from the key file"
                    .into(),
            ));
        }
        let signed = with_parsed_key(&self.pkcs8, &self.rng, Some(&claims_bytes));
        scrub_stack();
        let signature = signed?
            .0
            .ok_or_else(|| AttestError::Key("signing evidence failed".into()))?;
        let engine = &base64::engine::general_purpose::STANDARD;
        Ok(Evidence {
            format: EVIDENCE_FORMAT.into(),
            platform: PlatformKind::Software,
            signer_key_id: self.key_id,
            claims: engine.encode(&claims_bytes),
            signature: engine.encode(&signature),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = rcgen::CertificateParams::new(vec!["platform".to_owned()])
            .and_then(|params| params.self_signed(&key))
            .unwrap_or_else(|e| panic!("{e}"));
        (cert.pem(), key.serialize_pem())
    }

    fn request() -> EvidenceRequest {
        EvidenceRequest::new(Digest([1; 32]), "c", b"spki", crate::Nonce([2; 32]))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_key_is_decoded_as_the_pem_reader_decodes_it() {
        let (_, key_pem) = identity();
        let ours = pkcs8_der_from_pem(key_pem.as_bytes(), "k").unwrap_or_else(|e| panic!("{e}"));
        let theirs = crate::pem::pkcs8_key_from_pem(key_pem.as_bytes(), "k")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ours.as_slice(), theirs.secret_pkcs8_der());
        // With CRLF line ends and text around the block, too.
        let crlf = format!("comment\r\n{}\r\ntrailer", key_pem.replace('\n', "\r\n"));
        let again = pkcs8_der_from_pem(crlf.as_bytes(), "k").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.as_slice(), theirs.secret_pkcs8_der());
        for broken in [
            String::new(),
            key_pem.replace("-----END PRIVATE KEY-----", ""),
            key_pem.replace("PRIVATE KEY", "EC PRIVATE KEY"),
            key_pem.replacen('M', "*", 1),
        ] {
            assert!(
                pkcs8_der_from_pem(broken.as_bytes(), "k").is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn a_zeroized_platform_holds_no_key_and_signs_nothing() {
        fn zeroed_when_dropped<T: ZeroizeOnDrop>(_: &T) {}
        let (cert, key) = identity();
        let mut platform = SoftwarePlatform::new(
            cert.as_bytes(),
            key.as_bytes(),
            Measurement::sha256([3; 32]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        zeroed_when_dropped(&platform);
        assert!(platform.holds_key());
        assert!(platform.evidence(&request()).is_ok());
        assert!(
            platform.evidence(&request()).is_ok(),
            "it signs more than once"
        );
        platform.zeroize();
        assert!(!platform.holds_key());
        assert!(platform.pkcs8.is_empty());
        let refused = platform.evidence(&request()).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .unwrap_or_default()
                .contains("has been zeroed"),
            "{refused:?}"
        );
        assert!(!format!("{platform:?}").contains("pkcs8"));
    }

    #[test]
    fn the_key_file_is_read_within_its_bound() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (_, key) = identity();
        let path = dir.path().join("platform.key");
        std::fs::write(&path, &key).unwrap_or_else(|e| panic!("{e}"));
        let read = read_platform_key_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.as_slice(), key.as_bytes());
        std::fs::write(&path, vec![b'A'; MAX_PLATFORM_KEY_FILE_BYTES + 1])
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = read_platform_key_file(&path).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .unwrap_or_default()
                .contains("larger than"),
            "{refused:?}"
        );
    }
}
