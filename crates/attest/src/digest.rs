//! Fixed-size byte strings that travel as lowercase hex: digests, measurements and nonces.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// Hex text of the wrong length or with a non-hex character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, got {found:?}")]
pub struct HexParseError {
    /// What was expected, e.g. "64 hexadecimal digits (32 bytes)".
    pub expected: &'static str,
    /// The text (its first 80 characters).
    pub found: String,
}

macro_rules! hex32_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The 32 bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex, 64 digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex digits (either case).
            ///
            /// # Errors
            /// [`HexParseError`] when the text is not exactly 64 hex digits.
            pub fn from_hex(text: &str) -> Result<Self, HexParseError> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| HexParseError {
                    expected: "64 hexadecimal digits (32 bytes)",
                    found: text.chars().take(80).collect(),
                })?;
                Ok(Self(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = HexParseError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::from_hex(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

hex32_type!(
    /// A SHA-256 digest: of a policy (its canonical form), of a TLS public key (its DER
    /// SubjectPublicKeyInfo), of a platform key.
    Digest
);

hex32_type!(
    /// A one-time value the attestation service hands out and the runtime binds into its
    /// evidence, so that old evidence cannot be replayed. 32 random bytes.
    Nonce
);

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }
}

impl Nonce {
    /// 32 bytes from the operating system's random number generator (through `ring`).
    ///
    /// # Errors
    /// [`crate::AttestError::Random`] if the system generator fails.
    pub fn random() -> Result<Self, crate::AttestError> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| crate::AttestError::Random)?;
        Ok(Self(bytes))
    }
}

/// The longest measurement, in bytes: 48 (SHA-384 sized, as SEV-SNP, TDX and Nitro report).
pub const MAX_MEASUREMENT_LEN: usize = 48;

/// What a platform measured about the runtime it runs: 32 bytes (SHA-256 sized) or 48 bytes
/// (SHA-384 sized). For the software platform: the SHA-256 of the runtime's executable file.
/// Hardware platforms report their own (an SGX MRENCLAVE is 32 bytes; an SEV-SNP launch
/// measurement, a Nitro PCR0 and Covenant's TDX measurement 48). Travels
/// as lowercase hex (64 or 96 digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Measurement {
    len: u8,
    bytes: [u8; MAX_MEASUREMENT_LEN],
}

impl Measurement {
    /// A 32-byte measurement.
    pub const fn sha256(digest: [u8; 32]) -> Self {
        let mut bytes = [0u8; MAX_MEASUREMENT_LEN];
        let mut i = 0;
        while i < 32 {
            bytes[i] = digest[i];
            i += 1;
        }
        Self { len: 32, bytes }
    }

    /// A 48-byte measurement.
    pub const fn sha384(digest: [u8; 48]) -> Self {
        Self {
            len: 48,
            bytes: digest,
        }
    }

    /// A measurement of 32 or 48 bytes; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes.len() {
            32 | 48 => {
                let mut out = [0u8; MAX_MEASUREMENT_LEN];
                out[..bytes.len()].copy_from_slice(bytes);
                Some(Self {
                    len: bytes.len() as u8,
                    bytes: out,
                })
            }
            _ => None,
        }
    }

    /// The bytes (32 or 48).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Lowercase hex, 64 or 96 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }

    /// Parses 64 or 96 hex digits (either case).
    ///
    /// # Errors
    /// [`HexParseError`] for any other text.
    pub fn from_hex(text: &str) -> Result<Self, HexParseError> {
        let error = || HexParseError {
            expected: "64 or 96 hexadecimal digits (a 32- or 48-byte measurement)",
            found: text.chars().take(100).collect(),
        };
        if text.len() != 64 && text.len() != 96 {
            return Err(error());
        }
        let bytes = hex::decode(text).map_err(|_| error())?;
        Self::from_bytes(&bytes).ok_or_else(error)
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Measurement({})", self.to_hex())
    }
}

impl FromStr for Measurement {
    type Err = HexParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_hex(text)
    }
}

impl Serialize for Measurement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Measurement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_are_32_or_48_bytes_and_round_trip_through_hex() {
        let short = Measurement::sha256([0xab; 32]);
        let long = Measurement::sha384([0xcd; 48]);
        assert_eq!(short.as_bytes().len(), 32);
        assert_eq!(Measurement::from_hex(&short.to_hex()), Ok(short));
        assert_eq!(
            Measurement::from_hex(&long.to_hex().to_uppercase()),
            Ok(long)
        );
        assert_ne!(short, Measurement::from_bytes(&[0xab; 48]).unwrap());
        assert!(Measurement::from_bytes(&[0; 33]).is_none());
        assert!(Measurement::from_hex(&"0".repeat(66)).is_err());
        assert!(Measurement::from_hex(&"g".repeat(64)).is_err());
        let json = serde_json::to_string(&long).unwrap();
        assert_eq!(serde_json::from_str::<Measurement>(&json).unwrap(), long);
    }
}
