//! What can go wrong for a principal, each with what to do about it.
//!
//! The variants follow the order in which a request can fail: the local material (identity,
//! policy), reaching the host, verifying the runtime in the TLS handshake, the runtime
//! accepting our certificate, the runtime accepting the request, and the transfer itself.
//! Callers pick their reaction (the CLI its exit code) by variant: [`ClientError::Attestation`]
//! means "this is not the runtime the policy names", [`ClientError::InstanceChanged`] "this is
//! a runtime the policy names, but another instance than the one spoken to before",
//! [`ClientError::Refused`] "the runtime said no, by this rule", [`ClientError::PolicyRefuses`]
//! "the runtime would say no by this rule, so nothing was sent", everything else an
//! operational failure.

use std::path::PathBuf;

use covenant_attest::AttestedCertificateError;

/// Why the runtime's certificate was not accepted in the TLS handshake.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationFailure {
    /// [`covenant_attest::AttestedServerVerifier`] refused the certificate: another CA, a
    /// measurement the policy does not accept, another policy, another computation, expired.
    #[error(transparent)]
    Certificate(AttestedCertificateError),
    /// The handshake failed over the certificate for a reason of rustls' own (for example a
    /// certificate that is not X.509, or a bad handshake signature).
    #[error("{0}")]
    Tls(rustls::Error),
}

impl AttestationFailure {
    /// The verifier's own reason, if it was the verifier that refused.
    #[must_use]
    pub fn attested_certificate_error(&self) -> Option<&AttestedCertificateError> {
        match self {
            AttestationFailure::Certificate(e) => Some(e),
            AttestationFailure::Tls(_) => None,
        }
    }
}

/// Everything a [`crate::Client`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The principal's certificate or key cannot be used.
    #[error(
        "the client identity cannot be used: {0}; give the certificate and key \
         `covenant identity new` wrote (PEM)"
    )]
    Identity(String),
    /// The policy cannot be used to connect (a value `covenant-attest` cannot read, or a
    /// computation id that is not a DNS name). A validated policy normally has neither.
    #[error("the policy cannot be used to connect: {0}; check it with `covenant policy check`")]
    Policy(String),
    /// The principal's certificate is not one the policy names, so the runtime would refuse
    /// it. Checked before connecting.
    #[error(
        "this certificate is not one of the policy's principals' certificates, so the runtime \
         would refuse it; use the certificate the policy names for you"
    )]
    NotAPrincipal,
    /// The host could not be reached (nothing listens there, a name that does not resolve, a
    /// timeout).
    #[error(
        "cannot reach the Covenant host at {host}: {source}; check the address (--host) and \
         that `covenant serve` is running there"
    )]
    Connect {
        /// The address tried.
        host: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The server's certificate did not verify: it is not the runtime the policy names.
    /// Nothing was sent to it.
    #[error(
        "the server at {host} is not the runtime this policy names: {reason}; nothing was sent \
         to it. Check that the host serves this policy (compare `covenant policy hash`) with a \
         runtime the policy's attestation service certified"
    )]
    Attestation {
        /// The address connected to.
        host: String,
        /// Why the certificate was refused.
        reason: AttestationFailure,
    },
    /// The runtime is attested for this policy, but it is another instance of the computation
    /// than the one this client keeps to (another attested key). No request was sent to it.
    #[error(
        "the runtime at {host} is another instance of this computation than the one you spoke \
         to before: its attested key's fingerprint is {found}, not {expected}; no request was \
         sent to it. Two instances of one computation are a fork: a host that runs both can \
         split the principals between them, or send your retry to a runtime that never saw \
         your upload. If the change is expected (every principal closed the computation and it \
         was started again, or its worker died and the attestation service's operator ended \
         it), check with the other principals, then accept the new instance \
         (`covenant client --accept-new-instance`)"
    )]
    InstanceChanged {
        /// The address connected to.
        host: String,
        /// The fingerprint of the instance this client keeps to, hex.
        expected: String,
        /// The fingerprint of the runtime reached, hex.
        found: String,
    },
    /// The file that keeps the instance a principal spoke to ([`crate::InstancePin`]) cannot
    /// be used.
    #[error(
        "the instance file {} cannot be used: {reason}; it is where `covenant client` keeps the \
         instance you first spoke to. Remove it only if you are sure this policy's computation \
         has had no other instance: the next connection then pins the one it reaches",
        path.display()
    )]
    InstancePin {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The runtime refused our client certificate in the handshake (it names no principal of
    /// the computation it serves).
    #[error(
        "the runtime at {host} refused this client certificate ({alert}); it serves a \
         computation whose policy does not name it: check that you hold the policy it serves"
    )]
    CertificateRefused {
        /// The address connected to.
        host: String,
        /// The TLS alert it sent.
        alert: String,
    },
    /// The runtime refused the request by one of its rules; nothing changed.
    #[error("the runtime refused ({status} {rule}): {message}")]
    Refused {
        /// The HTTP status (4xx).
        status: u16,
        /// The rule's stable code (`not-input-provider`, `wrong-state`, ...; see docs/api.md).
        rule: String,
        /// The runtime's sentence.
        message: String,
    },
    /// The policy already rules the upload out, so none of it was sent: a file larger than
    /// the input's `max_bytes` (or than the runtime takes for a program), or one whose SHA-256
    /// is not the one the policy pins. Checked against the policy before the request, for the
    /// principal the policy names as the provider; `rule` is the code the runtime would
    /// refuse it with. Nothing changed.
    #[error("not sent ({rule}): {message}")]
    PolicyRefuses {
        /// The rule's stable code, as the runtime names it (`input-too-large`,
        /// `input-hash-mismatch`, `program-too-large`, `program-hash-mismatch`).
        rule: &'static str,
        /// What is wrong, with the numbers, and what to do.
        message: String,
    },
    /// The runtime failed inside (HTTP 5xx); its operator's log has the details.
    #[error("the runtime failed ({status}): {message}; ask the host's operator to check its log")]
    Runtime {
        /// The HTTP status (5xx).
        status: u16,
        /// The runtime's sentence.
        message: String,
    },
    /// The connection was lost in the middle of an exchange.
    #[error(
        "the connection to {host} was lost during {during}: {detail}; check `status` and \
         try again (an interrupted upload is discarded by the runtime and may be sent again)"
    )]
    Disconnected {
        /// The address connected to.
        host: String,
        /// What was happening.
        during: String,
        /// What was seen.
        detail: String,
    },
    /// The server answered something that is not the Covenant API.
    #[error("unexpected answer from the runtime: {0}")]
    Protocol(String),
    /// A local file could not be read or written.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done (`cannot read the input`).
        context: &'static str,
        /// The local file (or `-` for a stream).
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl ClientError {
    /// The rule a [`ClientError::Refused`] or a [`ClientError::PolicyRefuses`] names.
    #[must_use]
    pub fn rule(&self) -> Option<&str> {
        match self {
            ClientError::Refused { rule, .. } => Some(rule),
            ClientError::PolicyRefuses { rule, .. } => Some(rule),
            _ => None,
        }
    }
}
