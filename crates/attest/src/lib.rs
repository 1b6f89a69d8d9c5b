//! Attestation for Covenant: how a trusted runtime proves what it is.
//!
//! Covenant follows the *proxied* attestation model of Veracruz: a trusted attestation service
//! checks a runtime's evidence once and issues a short-lived X.509 certificate for the runtime's
//! TLS key that carries what was proven; a client then checks a certificate chain and a few
//! extensions inside the TLS handshake itself. This crate holds every piece of that protocol
//! that is not I/O:
//!
//! - [`platform`]: the [`Platform`] trait a runtime uses to produce evidence
//!   ([`PlatformEvidence`]: software [`Evidence`] or [`HardwareEvidence`]) binding its
//!   platform kind, measurement, policy hash, computation id, TLS key and the service's nonce;
//!   and the [`EvidenceVerifier`] trait the service uses for software evidence.
//! - [`software`]: the software platform, the only one a machine without a TEE can run. Its
//!   measurement is the SHA-256 of the running executable and its evidence is signed by a
//!   platform key the service has enrolled. **It trusts the host operating system**, says so in
//!   every piece of evidence ([`software::SOFTWARE_TRUST_STATEMENT`]), and is meant for
//!   development, tests and hosts without a TEE.
//! - [`sev_snp`]: the AMD SEV-SNP verifier: an attestation report and its VCEK/VLEK, chained
//!   to the pinned AMD roots at a given time, with its TCB, chip id and guest policy checked
//!   ([`sev_snp::verify_report`]).
//! - [`nitro`]: the AWS Nitro Enclaves verifier: a COSE_Sign1 attestation document, its
//!   `cabundle` chained to the pinned AWS Nitro root at a given time, PCR0 as the measurement,
//!   debug mode refused unless allowed ([`nitro::verify_document`]).
//! - [`dcap`]: the Intel DCAP verifier: a TDX (v4, v5) or SGX (v3) quote with its collateral,
//!   chained to the pinned Intel SGX Root CA at a given time, its TCB status accepted by name,
//!   debug refused unless allowed ([`dcap::verify_quote`]).
//! - [`hardware`]: hardware evidence end to end ([`hardware::verify_hardware`]: the platform's
//!   verifier, the report data binding, the enrolled platform's rules), the hardware claims an
//!   attested certificate carries and a client's rules for them
//!   ([`hardware::HardwareRequirements`]).
//! - [`anchors`]: the roots hardware evidence must chain to ([`TrustAnchors`]): the vendors'
//!   roots compiled in; other roots only in test builds.
//! - [`tsm`]: the runtime side on SEV-SNP and TDX guests: evidence from Linux's configfs-tsm.
//! - [`binding`]: the 64-byte report data ([`binding::report_data`]) that binds hardware
//!   evidence to a nonce, TLS key, policy and computation.
//! - [`csr`]: the certificate signing request a runtime sends and the service's checks of it.
//! - [`ca`]: the service's certificate authority, which issues attested certificates.
//! - [`extensions`]: the X.509 extensions (one documented OID arc) that carry the claims.
//! - [`wire`]: the JSON bodies of the service's HTTP API and the runtime's two calls around
//!   them ([`wire::prepare_attestation`], [`wire::accept_attestation_response`]).
//! - [`verify`]: the client-side check of an attested certificate against what the client
//!   expects ([`ExpectedRuntime`]), also as a rustls [`ServerCertVerifier`]
//!   ([`AttestedServerVerifier`]).
//! - [`instance`]: one attested runtime of a computation: its fingerprint (what clients pin
//!   and receipts name) and the end statement it signs when it ends, which frees its
//!   computation at the service for another instance.
//!
//! What it does not do: talk to the network or a database (that is
//! `covenant-attestation-service`), or know the policy format (that is `covenant-policy`; a
//! policy is turned into an [`ExpectedRuntime`] by its caller).
//!
//! TrustZone and seL4 are named in [`PlatformKind`] but have no verifier: their evidence is
//! refused with [`EvidenceError::UnsupportedPlatform`].
//!
//! [`ServerCertVerifier`]: rustls::client::danger::ServerCertVerifier
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anchors;
pub mod binding;
pub mod ca;
pub mod csr;
pub mod dcap;
mod der;
pub mod digest;
pub mod error;
pub mod extensions;
pub mod hardware;
pub mod instance;
pub mod nitro;
pub mod pem;
pub mod platform;
pub mod sev_snp;
pub mod software;
#[cfg(any(test, feature = "insecure-test-roots"))]
pub mod testing;
pub mod tsm;
pub mod verify;
pub mod wire;

pub use anchors::TrustAnchors;
pub use ca::{CertificateAuthority, DEFAULT_ATTESTED_CERTIFICATE_LIFETIME, IssuedCertificate};
pub use csr::{CheckedCsr, RuntimeCsrRequest};
pub use digest::{Digest, Measurement, Nonce};
pub use error::{AttestError, BindingError, CsrError, EvidenceError};
pub use extensions::AttestedClaims;
pub use instance::{
    EndReason, InstanceEnd, InstanceEndError, InstanceEndSigner, instance_fingerprint,
    verify_instance_end,
};
pub use platform::{
    Evidence, EvidenceClaims, EvidenceRequest, EvidenceVerifier, HardwareEvidence, Platform,
    PlatformEnrolment, PlatformEvidence, PlatformKind, VerifiedEvidence, verifier_for,
};
pub use verify::{
    AttestedCertificateError, AttestedServerVerifier, ExpectedRuntime, verify_attested_certificate,
};

/// The longest computation id accepted anywhere in the protocol, in bytes.
///
/// Stops a runtime or a CSR from making the service store and sign arbitrarily large strings.
pub const MAX_COMPUTATION_ID_LEN: usize = 256;

/// Checks a computation id: 1 to [`MAX_COMPUTATION_ID_LEN`] bytes of UTF-8 with no control
/// characters.
///
/// # Errors
/// [`AttestError::InvalidComputationId`] naming what is wrong.
pub fn check_computation_id(id: &str) -> Result<(), AttestError> {
    if id.is_empty() {
        return Err(AttestError::InvalidComputationId("it is empty".into()));
    }
    if id.len() > MAX_COMPUTATION_ID_LEN {
        return Err(AttestError::InvalidComputationId(format!(
            "it is {} bytes long; at most {MAX_COMPUTATION_ID_LEN} are allowed",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(AttestError::InvalidComputationId(
            "it contains a control character".into(),
        ));
    }
    Ok(())
}
