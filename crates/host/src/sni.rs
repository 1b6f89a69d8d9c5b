//! Reading the server name from a TLS ClientHello, and nothing else.
//!
//! The host routes a connection to its computation's worker by the SNI the client sends (the
//! policy's computation id). It reads the first TLS record — which must hold the whole
//! ClientHello — parses just enough to find the `server_name` extension, and forwards the
//! record's bytes to the worker unchanged, where the real handshake happens. Everything here
//! is bounds-checked: the input comes from anyone who can open a TCP connection.

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// A TLS record's largest plaintext payload (RFC 8446 §5.1). A ClientHello that does not fit
/// in one record is refused: rustls never sends one, and reassembling fragments would let a
/// client make the host buffer more before it has said where it is going.
pub const MAX_RECORD_PAYLOAD: usize = 1 << 14;

/// Bytes of a TLS record header.
const RECORD_HEADER: usize = 5;
/// Record content type `handshake`.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type `client_hello`.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Extension type `server_name` (RFC 6066).
const EXTENSION_SERVER_NAME: u16 = 0;
/// Server name type `host_name`.
const NAME_TYPE_HOST_NAME: u8 = 0;

/// Why no server name could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SniError {
    /// The first bytes are not a TLS handshake record.
    #[error("the connection did not start with a TLS handshake record")]
    NotTls,
    /// The record is larger than TLS allows.
    #[error("the first TLS record is larger than {MAX_RECORD_PAYLOAD} bytes")]
    RecordTooLarge,
    /// The record does not hold a whole, well-formed ClientHello.
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    /// The ClientHello names no server: the host cannot tell which computation is meant.
    #[error(
        "the ClientHello has no server name (SNI); connect with the computation id as the server name"
    )]
    NoServerName,
    /// The connection ended or failed before the record was complete.
    #[error("reading the ClientHello: {0}")]
    Io(String),
}

/// Reads the first TLS record from `stream` and returns its bytes (to forward as they are)
/// and the server name it asks for.
///
/// # Errors
/// [`SniError`] for anything but a well-formed ClientHello with a host name.
pub async fn read_client_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Vec<u8>, String), SniError> {
    let mut header = [0u8; RECORD_HEADER];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| SniError::Io(e.to_string()))?;
    if header[0] != CONTENT_HANDSHAKE || header[1] != 3 {
        return Err(SniError::NotTls);
    }
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if length > MAX_RECORD_PAYLOAD {
        return Err(SniError::RecordTooLarge);
    }
    let mut record = vec![0u8; RECORD_HEADER + length];
    record[..RECORD_HEADER].copy_from_slice(&header);
    stream
        .read_exact(&mut record[RECORD_HEADER..])
        .await
        .map_err(|e| SniError::Io(e.to_string()))?;
    let name = server_name(&record[RECORD_HEADER..])?;
    Ok((record, name))
}

/// The host name in a ClientHello handshake message (the payload of the first record).
///
/// # Errors
/// [`SniError::Malformed`] or [`SniError::NoServerName`].
pub fn server_name(payload: &[u8]) -> Result<String, SniError> {
    let mut r = Reader(payload);
    if r.u8()? != HANDSHAKE_CLIENT_HELLO {
        return Err(SniError::Malformed(
            "the first handshake message is not a ClientHello",
        ));
    }
    let body_len = r.u24()?;
    let mut hello =
        Reader(r.take(body_len).map_err(|_| {
            SniError::Malformed("the ClientHello does not fit in the first record")
        })?);
    hello.take(2)?; // legacy_version
    hello.take(32)?; // random
    let n = usize::from(hello.u8()?);
    hello.take(n)?; // legacy_session_id
    let n = usize::from(hello.u16()?);
    hello.take(n)?; // cipher_suites
    let n = usize::from(hello.u8()?);
    hello.take(n)?; // legacy_compression_methods
    if hello.0.is_empty() {
        return Err(SniError::NoServerName);
    }
    let n = usize::from(hello.u16()?);
    let mut extensions = Reader(hello.take(n)?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let n = usize::from(extensions.u16()?);
        let data = extensions.take(n)?;
        if kind != EXTENSION_SERVER_NAME {
            continue;
        }
        let mut list = Reader(data);
        let n = usize::from(list.u16()?);
        let mut names = Reader(list.take(n)?);
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let n = usize::from(names.u16()?);
            let name = names.take(n)?;
            if name_type == NAME_TYPE_HOST_NAME {
                let name = std::str::from_utf8(name)
                    .map_err(|_| SniError::Malformed("the server name is not ASCII"))?;
                if name.is_empty() || !name.is_ascii() {
                    return Err(SniError::Malformed("the server name is not ASCII"));
                }
                return Ok(name.to_ascii_lowercase());
            }
        }
    }
    Err(SniError::NoServerName)
}

/// A bounds-checked cursor.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SniError> {
        if n > self.0.len() {
            return Err(SniError::Malformed(
                "a length runs past the end of the message",
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, SniError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, SniError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Result<usize, SniError> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The first flight of a real rustls client asking for `name`.
    fn client_hello(name: &str) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[tokio::test]
    async fn reads_the_name_a_real_client_sends_and_keeps_the_bytes() {
        let hello = client_hello("shared-patients");
        let mut input = &hello[..];
        let (record, name) = read_client_hello(&mut input).await.unwrap();
        assert_eq!(name, "shared-patients");
        assert_eq!(record, hello, "the record is forwarded unchanged");
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_client_hello() {
        let mut plain: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            read_client_hello(&mut plain).await.unwrap_err(),
            SniError::NotTls
        );
        let mut huge: &[u8] = &[22, 3, 1, 0xff, 0xff];
        assert_eq!(
            read_client_hello(&mut huge).await.unwrap_err(),
            SniError::RecordTooLarge
        );
        let mut short: &[u8] = &[22, 3, 1, 0, 10, 1, 0];
        assert!(matches!(
            read_client_hello(&mut short).await.unwrap_err(),
            SniError::Io(_)
        ));
    }

    #[test]
    fn every_truncation_of_a_real_hello_is_an_error_not_a_panic() {
        let hello = client_hello("shared-patients");
        let payload = &hello[RECORD_HEADER..];
        for cut in 0..payload.len() {
            assert!(server_name(&payload[..cut]).is_err(), "cut at {cut}");
        }
        // Corrupt each length byte in turn: never a panic, never a wrong name.
        for i in 0..payload.len() {
            let mut bad = payload.to_vec();
            bad[i] ^= 0xff;
            if let Ok(name) = server_name(&bad) {
                assert!(name.len() <= payload.len());
            }
        }
    }

    #[test]
    fn a_hello_without_a_server_name_is_refused() {
        // An IP address: rustls sends no SNI.
        let hello = client_hello("127.0.0.1");
        assert_eq!(
            server_name(&hello[RECORD_HEADER..]).unwrap_err(),
            SniError::NoServerName
        );
    }
}
