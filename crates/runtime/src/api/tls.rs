//! TLS for the API: TLS 1.3 only, the ring provider, the runtime's attested key as the server
//! identity, and client certificates that must be exactly one of the policy's principals'.

use std::sync::Arc;

use covenant_policy::ValidPolicy;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

/// The runtime's attested TLS key: the PKCS#8 DER key the attestation service certified and
/// its chain (DER, end-entity first) — the same material a [`crate::ReceiptSigner`] is made
/// from. `Debug` never shows the key.
#[derive(Clone)]
pub struct ServerIdentity {
    pkcs8_der: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("chain_certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// The identity from a PKCS#8 DER key and its chain (DER, end-entity first). Whether the
    /// key matches the certificate is checked by [`crate::api::ApiServer::new`].
    #[must_use]
    pub fn new(pkcs8_der: Vec<u8>, chain: Vec<Vec<u8>>) -> Self {
        ServerIdentity { pkcs8_der, chain }
    }
}

/// Accepts a client only if its end-entity certificate is byte-for-byte one of the policy's
/// principals' certificates, and verifies its TLS 1.3 handshake signature with ring. Any other
/// certificate fails the handshake: such a client never reaches HTTP.
#[derive(Debug)]
pub struct PrincipalCertVerifier {
    policy: ValidPolicy,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PrincipalCertVerifier {
    /// A verifier for `policy`'s principals.
    #[must_use]
    pub fn new(policy: ValidPolicy) -> Self {
        PrincipalCertVerifier {
            policy,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PrincipalCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Principals' certificates are pinned by the policy, so validity periods and issuers
        // are not consulted: the policy (with its own expiry) is the authority.
        match self.policy.principal_with_certificate(end_entity.as_ref()) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "Covenant connections require TLS 1.3".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The server's TLS configuration: TLS 1.3 only, ring, [`PrincipalCertVerifier`], the
/// attested identity, HTTP/1.1 by ALPN.
pub(crate) fn server_config(
    policy: ValidPolicy,
    identity: &ServerIdentity,
) -> Result<ServerConfig, rustls::Error> {
    let chain = identity
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.pkcs8_der.clone()));
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(PrincipalCertVerifier::new(policy)))
            .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
