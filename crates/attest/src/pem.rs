//! Reading and writing the PEM files identities and the service use.

use std::path::Path;

use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, PrivatePkcs8KeyDer};

use crate::AttestError;

/// The largest PEM file read from disk, in bytes: a certificate or key is a few KiB; this stops
/// a mistaken path (a disk image, `/dev/zero`) from being read into memory whole.
pub const MAX_PEM_FILE_LEN: u64 = 1024 * 1024;

/// Reads a file of at most [`MAX_PEM_FILE_LEN`] bytes.
///
/// # Errors
/// [`AttestError::Io`] if it cannot be read or is too large.
pub fn read_pem_file(path: &Path) -> Result<Vec<u8>, AttestError> {
    use std::io::Read as _;
    let io = |source| AttestError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_PEM_FILE_LEN {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_PEM_FILE_LEN} bytes; not a PEM certificate or key"
        ))));
    }
    Ok(bytes)
}

/// The first `CERTIFICATE` block of `pem`, as DER.
///
/// # Errors
/// [`AttestError::Pem`] naming `what`.
pub fn certificate_from_pem(
    pem: &[u8],
    what: &str,
) -> Result<CertificateDer<'static>, AttestError> {
    CertificateDer::from_pem_slice(pem).map_err(|e| AttestError::Pem {
        what: what.into(),
        reason: e.to_string(),
    })
}

/// The first `PRIVATE KEY` (PKCS#8) block of `pem`, as DER.
///
/// # Errors
/// [`AttestError::Pem`] naming `what`.
pub fn pkcs8_key_from_pem(
    pem: &[u8],
    what: &str,
) -> Result<PrivatePkcs8KeyDer<'static>, AttestError> {
    PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|e| AttestError::Pem {
        what: what.into(),
        reason: e.to_string(),
    })
}

/// The first `CERTIFICATE REQUEST` block of `pem`, as DER.
///
/// # Errors
/// [`AttestError::Pem`] naming `what`.
pub fn csr_from_pem(
    pem: &[u8],
    what: &str,
) -> Result<CertificateSigningRequestDer<'static>, AttestError> {
    CertificateSigningRequestDer::from_pem_slice(pem).map_err(|e| AttestError::Pem {
        what: what.into(),
        reason: e.to_string(),
    })
}

/// Encodes DER as a PEM block with the given label (`CERTIFICATE`, `CERTIFICATE REQUEST`, …),
/// 64 characters a line, ending with a newline.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
