//! Receipts: what a run did, signed by the runtime's attested key, verifiable offline by
//! anyone holding the policy. `docs/receipts.md` documents the format.
//!
//! A receipt is a JWS in compact serialisation (RFC 7515) with algorithm ES256 (ECDSA P-256,
//! SHA-256, the signature as the 64-byte `r || s`), whose protected header carries the
//! runtime's certificate chain in `x5c` (standard base64 DER, end-entity first). The payload
//! is the JSON of [`ReceiptClaims`].
//!
//! [`verify_receipt`] checks the signature with the end-entity certificate's key, then the
//! certificate against the policy's attestation CA and accepted measurements (and the policy
//! hash and computation id it carries) with `covenant_attest::verify_attested_certificate`, at
//! the receipt's own `issued_at` time, so that a receipt stays verifiable after the runtime's
//! short-lived certificate has expired; then that the claims name this policy and its program,
//! and the instance whose key signed it (the fingerprint of that certificate's key).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use covenant_attest::{
    AttestedCertificateError, Digest, ExpectedRuntime, Measurement, PlatformKind,
    verify_attested_certificate,
};
use covenant_policy::ValidPolicy;
use covenant_sandbox::Outcome;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The `format` field of every receipt: `"covenant-receipt"`.
pub const RECEIPT_FORMAT: &str = "covenant-receipt";

/// The receipt format version this build writes and reads: `2`. Version 1 carried the plain
/// SHA-256 and size of every input and output, which let a principal who may not read a
/// low-entropy output (a count, a verdict) recover it by hashing guesses; version 2 carries
/// hiding commitments instead (see [`commit`]).
pub const RECEIPT_VERSION: u32 = 2;

/// The bytes of a commitment salt: 256 random bits, so that a commitment to a low-entropy
/// value cannot be opened by guessing the value without the salt.
pub const SALT_BYTES: usize = 32;

/// Domain separation for commitments, so that a commitment can never be mistaken for (or
/// collide by construction with) the plain SHA-256 of some other byte string.
pub const COMMITMENT_DOMAIN: &[u8] = b"covenant-commitment-v1\0";

/// The JWS `typ` header of a receipt.
pub const RECEIPT_TYP: &str = "covenant-receipt+jws";

/// Largest receipt [`verify_receipt`] reads: 1 MiB. A receipt holds a few hashes per input and
/// output and a short chain; the cap stops a hostile "receipt" from making the verifier
/// decode and parse an arbitrarily large document.
pub const MAX_RECEIPT_BYTES: usize = 1 << 20;

/// Most certificates accepted in `x5c`: 8. The chain is the runtime's certificate and its CA;
/// the cap stops a hostile header from making the verifier decode an unbounded list.
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

/// Why a receipt could not be made or did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The signing key is not a P-256 PKCS#8 key.
    #[error("the receipt key is not a P-256 PKCS#8 key")]
    BadKey,
    /// The chain is empty, too long, or its first certificate cannot be parsed.
    #[error("the certificate chain cannot be used: {0}")]
    BadChain(String),
    /// The signing key is not the key of the chain's end-entity certificate.
    #[error("the receipt key does not match the end-entity certificate of the chain")]
    KeyCertificateMismatch,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
    /// The receipt is not a well-formed compact JWS of this format.
    #[error("the receipt is malformed: {0}")]
    Malformed(String),
    /// The signature does not verify with the end-entity certificate's key.
    #[error("the receipt's signature does not verify")]
    BadSignature,
    /// The certificate is not an attested certificate the policy accepts.
    #[error("the receipt's certificate is not acceptable for this policy: {0}")]
    Certificate(#[from] AttestedCertificateError),
    /// The policy's attestation section cannot be turned into expectations.
    #[error("the policy's attestation section cannot be used: {0}")]
    Policy(String),
    /// An output's or input's bytes do not match the receipt's commitment to them (or the
    /// receipt has none for that path).
    #[error("{path} does not match the receipt: {reason}")]
    OpeningMismatch {
        /// The output or input path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The claims are about another policy, computation or program.
    #[error("the receipt is for {what} {found}, not {expected}")]
    ClaimMismatch {
        /// Which claim.
        what: &'static str,
        /// The policy's value.
        expected: String,
        /// The receipt's value.
        found: String,
    },
}

/// The limits a run had, as the policy set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLimits {
    /// Largest linear memory, bytes.
    pub max_memory_bytes: u64,
    /// Instruction budget, when the policy sets one.
    pub fuel: Option<u64>,
    /// Wall-time limit, milliseconds.
    pub timeout_ms: u64,
    /// Largest total output, bytes.
    pub max_output_bytes: u64,
    /// Whether clocks were readable.
    pub clock: bool,
    /// Whether randomness was readable.
    pub random: bool,
}

/// One input as the run saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptInput {
    /// Guest path.
    pub path: String,
    /// SHA-256 of its bytes, lowercase hex, only for an input whose hash the policy pins (so
    /// every party knows it already); `null` otherwise.
    pub sha256: Option<String>,
    /// Its size, only alongside `sha256`; `null` otherwise (a size can disclose as much as a
    /// hash).
    pub bytes: Option<u64>,
    /// The hiding commitment to its bytes ([`commit`]); the salt is released only to the
    /// input's provider, with the answer to its upload.
    pub commitment: String,
}

/// What became of a declared output in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputStatus {
    /// A regular file (or the stream), released to its readers with its commitment.
    Written,
    /// The program did not create the file.
    Missing,
    /// The program left a directory at the output's path.
    Directory,
    /// The program left a symbolic link at the output's path: never followed, never released.
    Symlink,
    /// The run exceeded the policy's output limit (`execution.max_output`): no output of the
    /// run is released, whatever it is.
    Withheld,
}

impl OutputStatus {
    /// The status as the API and receipts spell it: `written`, `missing`, ...
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStatus::Written => "written",
            OutputStatus::Missing => "missing",
            OutputStatus::Directory => "directory",
            OutputStatus::Symlink => "symlink",
            OutputStatus::Withheld => "withheld",
        }
    }
}

impl std::fmt::Display for OutputStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One output as the run left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptOutput {
    /// Guest path, `stdout` or `stderr`.
    pub path: String,
    /// What became of it.
    pub status: OutputStatus,
    /// The hiding commitment to its bytes ([`commit`]) when `status` is `written`; `null`
    /// otherwise. The salt is released only to the output's readers, with the output.
    pub commitment: Option<String>,
}

/// A hiding, binding commitment to a byte string, streamed: lowercase hex of
/// `SHA-256(COMMITMENT_DOMAIN || salt || bytes)` with a fresh random [`SALT_BYTES`]-byte salt.
/// Without the salt, the commitment tells nothing about the bytes (guessing them needs the
/// salt too); with it, whoever holds the bytes checks them against the receipt.
#[derive(Clone)]
pub struct Committer {
    hasher: sha2::Sha256,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts a commitment with `salt`.
    #[must_use]
    pub fn new(salt: &[u8; SALT_BYTES]) -> Self {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(COMMITMENT_DOMAIN);
        hasher.update(salt);
        Committer { hasher }
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        self.hasher.update(bytes);
    }

    /// The commitment, lowercase hex.
    #[must_use]
    pub fn finish(self) -> String {
        use sha2::Digest as _;
        hex::encode(self.hasher.finalize())
    }
}

/// The commitment to `bytes` with `salt` (see [`Committer`]).
#[must_use]
pub fn commit(salt: &[u8; SALT_BYTES], bytes: &[u8]) -> String {
    let mut committer = Committer::new(salt);
    committer.update(bytes);
    committer.finish()
}

/// A fresh random salt.
///
/// # Errors
/// [`ReceiptError::Signing`] if the system's random source fails (nothing can be committed or
/// signed then).
pub fn fresh_salt() -> Result<[u8; SALT_BYTES], ReceiptError> {
    use ring::rand::SecureRandom as _;
    let mut salt = [0u8; SALT_BYTES];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ReceiptError::Signing)?;
    Ok(salt)
}

/// Checks that `bytes`, with the salt its reader (or provider) received, are what the receipt
/// committed to at `path`: an output whose status is `written`, or an input.
///
/// # Errors
/// [`ReceiptError::OpeningMismatch`] if the receipt has no commitment at `path`, the salt is
/// not [`SALT_BYTES`] bytes of hex, or the commitment differs.
pub fn check_opening(
    claims: &ReceiptClaims,
    path: &str,
    salt_hex: &str,
    bytes: impl std::io::Read,
) -> Result<(), ReceiptError> {
    let mismatch = |reason: &str| ReceiptError::OpeningMismatch {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let committed = claims
        .outputs
        .iter()
        .find(|o| o.path == path)
        .map(|o| o.commitment.clone())
        .or_else(|| {
            claims
                .inputs
                .iter()
                .find(|i| i.path == path)
                .map(|i| Some(i.commitment.clone()))
        })
        .ok_or_else(|| mismatch("the receipt names no input or output at this path"))?
        .ok_or_else(|| mismatch("the receipt says the run released nothing at this path"))?;
    let salt: [u8; SALT_BYTES] = hex::decode(salt_hex.trim())
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| mismatch("the salt is not 64 hexadecimal digits"))?;
    let mut committer = Committer::new(&salt);
    let mut reader = bytes;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(mismatch(&format!("reading the bytes failed: {e}"))),
        };
        committer.update(&buf[..n]);
    }
    if committer.finish() == committed {
        Ok(())
    } else {
        Err(mismatch(
            "the bytes and salt do not open the receipt's commitment (wrong file, wrong salt, or another run's output)",
        ))
    }
}

/// The signed content of a receipt. See `docs/receipts.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptClaims {
    /// Always [`RECEIPT_FORMAT`].
    pub format: String,
    /// Always [`RECEIPT_VERSION`].
    pub version: u32,
    /// The policy's computation id.
    pub computation: String,
    /// SHA-256 of the policy's canonical form, hex.
    pub policy_sha256: String,
    /// The attested instance that ran it and signed the receipt: SHA-256 of its certificate's
    /// DER SubjectPublicKeyInfo, hex (`covenant_attest::instance_fingerprint`; what clients
    /// pin). Two instances of one computation sign receipts with different values here.
    pub instance: String,
    /// SHA-256 of the program module, hex.
    pub program_sha256: String,
    /// The run's number, from 1.
    pub run: u32,
    /// The engine: `jit` or `interpreter`.
    pub engine: String,
    /// The run's limits.
    pub limits: ReceiptLimits,
    /// Every input present for the run, in policy order.
    pub inputs: Vec<ReceiptInput>,
    /// Every output the policy declares, in policy order.
    pub outputs: Vec<ReceiptOutput>,
    /// How the guest ended: `{"status":"exited","value":N}` or
    /// `{"status":"trapped","value":KIND}`.
    pub outcome: Outcome,
    /// A sentence on a trap, from the sandbox.
    pub detail: Option<String>,
    /// Fuel the guest used (the engine's units).
    pub fuel_used: u64,
    /// Wall time of the guest, microseconds.
    pub wall_time_us: u64,
    /// When the run started, Unix milliseconds.
    pub started_at_ms: u64,
    /// When the run ended, Unix milliseconds.
    pub finished_at_ms: u64,
    /// When the receipt was signed, Unix seconds. The certificate is checked at this time.
    pub issued_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    typ: String,
    x5c: Vec<String>,
}

/// The runtime's receipt key: a P-256 key and the certificate chain that vouches for it
/// (end-entity first). `Debug` never shows the key.
pub struct ReceiptSigner {
    key: EcdsaKeyPair,
    chain: Vec<Vec<u8>>,
    rng: SystemRandom,
    /// The instance fingerprint of the chain's end-entity certificate.
    instance: Digest,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSigner")
            .field("chain_certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ReceiptSigner {
    /// A signer from a PKCS#8 P-256 key and its certificate chain (DER, end-entity first).
    ///
    /// # Errors
    /// [`ReceiptError::BadKey`]; [`ReceiptError::BadChain`] for an empty chain, more than
    /// [`MAX_CHAIN_CERTIFICATES`], or an unparsable end-entity certificate;
    /// [`ReceiptError::KeyCertificateMismatch`] if the key is not the certificate's.
    pub fn new(pkcs8_der: &[u8], chain: Vec<Vec<u8>>) -> Result<Self, ReceiptError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8_der, &rng)
            .map_err(|_| ReceiptError::BadKey)?;
        if chain.len() > MAX_CHAIN_CERTIFICATES {
            return Err(ReceiptError::BadChain(format!(
                "{} certificates; at most {MAX_CHAIN_CERTIFICATES}",
                chain.len()
            )));
        }
        let leaf = chain
            .first()
            .ok_or_else(|| ReceiptError::BadChain("it is empty".into()))?;
        if leaf_public_key(leaf)? != key.public_key().as_ref() {
            return Err(ReceiptError::KeyCertificateMismatch);
        }
        let instance = covenant_attest::instance_fingerprint(leaf)
            .map_err(|e| ReceiptError::BadChain(format!("end-entity certificate: {e}")))?;
        Ok(ReceiptSigner {
            key,
            chain,
            rng,
            instance,
        })
    }

    /// The instance this signer signs for: the fingerprint of its certificate's key, which
    /// goes into every receipt's `instance` claim.
    #[must_use]
    pub fn instance(&self) -> Digest {
        self.instance
    }

    /// The chain, end-entity first.
    #[must_use]
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// Signs `claims` as a compact JWS.
    ///
    /// # Errors
    /// [`ReceiptError::Signing`] if the key fails to sign.
    pub fn sign(&self, claims: &ReceiptClaims) -> Result<String, ReceiptError> {
        let header = Header {
            alg: "ES256".into(),
            typ: RECEIPT_TYP.into(),
            x5c: self.chain.iter().map(|c| STANDARD.encode(c)).collect(),
        };
        let header = serde_json::to_vec(&header).map_err(|_| ReceiptError::Signing)?;
        let payload = serde_json::to_vec(claims).map_err(|_| ReceiptError::Signing)?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| ReceiptError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// The uncompressed P-256 point of a certificate's subject key.
fn leaf_public_key(der: &[u8]) -> Result<Vec<u8>, ReceiptError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| ReceiptError::BadChain(format!("end-entity certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(ReceiptError::BadChain(
            "bytes after the end-entity certificate".into(),
        ));
    }
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// A receipt whose signature, certificate and claims checked out against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// What the receipt says.
    pub claims: ReceiptClaims,
    /// The attested claims of the certificate that signed it.
    pub runtime: covenant_attest::AttestedClaims,
}

/// What a client expects of a runtime serving `policy`: its CA, accepted measurements, hash
/// and computation id.
///
/// # Errors
/// [`ReceiptError::Policy`] for a platform name or measurement `covenant-attest` cannot read
/// (a validated policy has none).
pub fn expected_runtime(policy: &ValidPolicy) -> Result<ExpectedRuntime, ReceiptError> {
    let mut accepted: BTreeMap<PlatformKind, BTreeSet<Measurement>> = BTreeMap::new();
    for (platform, values) in &policy.policy().attestation.measurements {
        let kind =
            PlatformKind::from_str(platform).map_err(|e| ReceiptError::Policy(e.to_string()))?;
        let set = accepted.entry(kind).or_default();
        for value in values {
            set.insert(
                Measurement::from_hex(value).map_err(|e| ReceiptError::Policy(e.to_string()))?,
            );
        }
    }
    let mut hardware_requirements = BTreeMap::new();
    for (platform, rules) in &policy.policy().attestation.appraisal {
        let kind =
            PlatformKind::from_str(platform).map_err(|e| ReceiptError::Policy(e.to_string()))?;
        hardware_requirements.insert(kind, hardware_requirements_of(rules));
    }
    Ok(ExpectedRuntime {
        ca_certificate_der: policy.ca_certificate_der().to_vec(),
        accepted_measurements: accepted,
        hardware_requirements,
        policy_hash: Digest(*policy.hash().as_bytes()),
        computation_id: policy.policy().computation.clone(),
    })
}

/// The attestation crate's requirements for a policy's appraisal rules of one platform.
pub fn hardware_requirements_of(
    rules: &covenant_policy::Appraisal,
) -> covenant_attest::hardware::HardwareRequirements {
    covenant_attest::hardware::HardwareRequirements {
        allow_debug: rules.allow_debug,
        allow_migration_agent: rules.allow_migration_agent,
        accepted_tcb_statuses: rules.accepted_tcb_statuses.iter().cloned().collect(),
        sgx_mrsigner: rules.sgx_mrsigner.clone(),
        sgx_isv_prod_id: rules.sgx_isv_prod_id,
    }
}

/// The claims of a receipt **without verifying anything**: for choosing how to verify it
/// (for example, the time at which to check the policy's validity, `issued_at`). Never act
/// on these claims; use [`verify_receipt`].
///
/// # Errors
/// [`ReceiptError::Malformed`] if the receipt is not a compact JWS with a receipt payload.
pub fn unverified_claims(receipt: &str) -> Result<ReceiptClaims, ReceiptError> {
    let receipt = receipt.trim_end();
    if receipt.len() > MAX_RECEIPT_BYTES {
        return Err(ReceiptError::Malformed(
            "larger than the largest receipt accepted".into(),
        ));
    }
    let payload = receipt
        .split('.')
        .nth(1)
        .ok_or_else(|| ReceiptError::Malformed("a compact JWS has three parts".into()))?;
    decode_json(payload, "payload")
}

/// Verifies a receipt against a policy (see the module documentation for the checks, in
/// order).
///
/// # Errors
/// [`ReceiptError::Malformed`], [`ReceiptError::BadSignature`],
/// [`ReceiptError::Certificate`], [`ReceiptError::ClaimMismatch`], or
/// [`ReceiptError::Policy`].
pub fn verify_receipt(
    receipt: &str,
    policy: &ValidPolicy,
) -> Result<VerifiedReceipt, ReceiptError> {
    let malformed = |m: &str| ReceiptError::Malformed(m.to_owned());
    let receipt = receipt.trim_end();
    if receipt.len() > MAX_RECEIPT_BYTES {
        return Err(malformed("larger than the largest receipt accepted"));
    }
    let mut parts = receipt.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a compact JWS has exactly three dot-separated parts",
        ));
    };
    let header: Header = decode_json(header_b64, "header")?;
    if header.alg != "ES256" {
        return Err(malformed("the algorithm is not ES256"));
    }
    if header.typ != RECEIPT_TYP {
        return Err(malformed("the type is not a Covenant receipt"));
    }
    if header.x5c.is_empty() || header.x5c.len() > MAX_CHAIN_CERTIFICATES {
        return Err(malformed("x5c must hold 1 to 8 certificates"));
    }
    let leaf = STANDARD
        .decode(&header.x5c[0])
        .map_err(|_| malformed("x5c[0] is not base64"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed("the signature is not base64url"))?;
    let public_key = leaf_public_key(&leaf).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
    let signing_input = &receipt[..header_b64.len() + 1 + payload_b64.len()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| ReceiptError::BadSignature)?;
    let claims: ReceiptClaims = decode_json(payload_b64, "payload")?;
    if claims.format != RECEIPT_FORMAT {
        return Err(malformed("not a Covenant receipt"));
    }
    if claims.version != RECEIPT_VERSION {
        return Err(ReceiptError::Malformed(format!(
            "a version {} receipt; this build reads version {RECEIPT_VERSION}",
            claims.version
        )));
    }
    let expected = expected_runtime(policy)?;
    let runtime = verify_attested_certificate(&expected, &leaf, claims.issued_at)?;
    let check = |what, expected: String, found: &str| {
        if expected == found {
            Ok(())
        } else {
            Err(ReceiptError::ClaimMismatch {
                what,
                expected,
                found: found.to_owned(),
            })
        }
    };
    check("policy", policy.hash().to_hex(), &claims.policy_sha256)?;
    let instance = covenant_attest::instance_fingerprint(&leaf)
        .map_err(|e| ReceiptError::Malformed(format!("x5c[0]: {e}")))?;
    check("instance", instance.to_hex(), &claims.instance)?;
    check(
        "computation",
        policy.policy().computation.clone(),
        &claims.computation,
    )?;
    check(
        "program",
        policy.policy().program.sha256.clone(),
        &claims.program_sha256,
    )?;
    check_declared_paths(policy, &claims)?;
    Ok(VerifiedReceipt { claims, runtime })
}

/// The receipt's inputs are policy inputs in policy order, each pinned one with the pinned
/// hash; its outputs are exactly the policy's outputs in policy order.
fn check_declared_paths(policy: &ValidPolicy, claims: &ReceiptClaims) -> Result<(), ReceiptError> {
    let p = policy.policy();
    let declared: Vec<&str> = p.outputs.iter().map(|o| o.path.as_str()).collect();
    let found: Vec<&str> = claims.outputs.iter().map(|o| o.path.as_str()).collect();
    if declared != found {
        return Err(ReceiptError::ClaimMismatch {
            what: "outputs",
            expected: declared.join(", "),
            found: found.join(", "),
        });
    }
    for output in &claims.outputs {
        if (output.status == OutputStatus::Written) != output.commitment.is_some() {
            return Err(ReceiptError::Malformed(format!(
                "output {} has status {} but {} commitment",
                output.path,
                output.status,
                if output.commitment.is_some() {
                    "a"
                } else {
                    "no"
                }
            )));
        }
    }
    let mut declared_inputs = p.inputs.iter();
    for input in &claims.inputs {
        let Some(spec) = declared_inputs.find(|i| i.path == input.path) else {
            return Err(ReceiptError::ClaimMismatch {
                what: "input",
                expected: "an input the policy declares, in policy order".into(),
                found: input.path.clone(),
            });
        };
        if spec.sha256 != input.sha256 {
            return Err(ReceiptError::ClaimMismatch {
                what: "input hash",
                expected: spec
                    .sha256
                    .clone()
                    .unwrap_or_else(|| "none (not pinned)".into()),
                found: input.sha256.clone().unwrap_or_else(|| "none".into()),
            });
        }
    }
    Ok(())
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, ReceiptError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ReceiptError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ReceiptError::Malformed(format!("the {what} is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_and_the_verifier_accept_the_same_tcb_statuses() {
        assert_eq!(
            covenant_policy::ACCEPTABLE_TCB_STATUSES,
            covenant_attest::hardware::ACCEPTABLE_TCB_STATUSES
        );
        // And each is a status the DCAP verifier knows by that name.
        for name in covenant_attest::hardware::ACCEPTABLE_TCB_STATUSES {
            let status: covenant_attest::dcap::TcbStatus = name.parse().unwrap();
            assert_eq!(status.to_string(), name);
        }
    }
}
