//! The two DER encodings our extensions use: OCTET STRING and UTF8String. Hand-written because
//! they are a few lines and the decoder must be strict (exact length, minimal length form, no
//! trailing bytes) in ways a general parser does not promise.

/// Whether a certificate's key is an ECDSA key on P-384: what Nitro's and AMD's signing
/// certificates must hold before their signatures are checked with ring's P-384 verifier.
pub(crate) fn is_ecdsa_p384_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> bool {
    use x509_parser::oid_registry::{OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384};
    spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|oid| oid == OID_NIST_EC_P384)
}

/// DER tag of an OCTET STRING.
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
/// DER tag of a UTF8String.
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;

/// Encodes one primitive value with `tag`.
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// Decodes one primitive value with `tag` that must span all of `input`.
pub(crate) fn decode(tag: u8, input: &[u8]) -> Result<&[u8], String> {
    let (&first, rest) = input.split_first().ok_or("empty value")?;
    if first != tag {
        return Err(format!("expected DER tag {tag:#04x}, found {first:#04x}"));
    }
    let (&len_byte, rest) = rest.split_first().ok_or("truncated length")?;
    let (len, rest) = if len_byte < 0x80 {
        (usize::from(len_byte), rest)
    } else {
        let count = usize::from(len_byte & 0x7f);
        // Our values are short; more than two length bytes means a malformed or hostile value.
        if count == 0 || count > 2 || rest.len() < count {
            return Err("bad length".into());
        }
        let (len_bytes, rest) = rest.split_at(count);
        if len_bytes[0] == 0 {
            return Err("non-minimal length".into());
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return Err("non-minimal length".into());
        }
        (len, rest)
    };
    if rest.len() != len {
        return Err(format!("length says {len} bytes, {} present", rest.len()));
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_values() {
        for len in [0usize, 1, 127, 128, 255, 256, 1000] {
            let content = vec![7u8; len];
            let encoded = encode(TAG_OCTET_STRING, &content);
            assert_eq!(decode(TAG_OCTET_STRING, &encoded).unwrap(), &content[..]);
        }
    }

    #[test]
    fn refuses_wrong_tag_trailing_bytes_and_non_minimal_lengths() {
        let mut encoded = encode(TAG_OCTET_STRING, b"abc");
        assert!(decode(TAG_UTF8_STRING, &encoded).is_err());
        encoded.push(0);
        assert!(decode(TAG_OCTET_STRING, &encoded).is_err());
        assert!(decode(TAG_OCTET_STRING, &[0x04, 0x81, 0x03, 1, 2, 3]).is_err());
        assert!(decode(TAG_OCTET_STRING, &[0x04, 0x05, 1]).is_err());
        assert!(decode(TAG_OCTET_STRING, &[]).is_err());
    }
}
