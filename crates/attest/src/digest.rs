//! Fixed-size byte strings that travel as lowercase hex: digests, measurements and nonces.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A hex string that is not 64 hex digits (32 bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hexadecimal digits (32 bytes), got {0:?}")]
pub struct HexParseError(pub String);

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
                let shown: String = text.chars().take(80).collect();
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| HexParseError(shown))?;
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
    /// What a platform measured about the runtime it runs. For the software platform: the
    /// SHA-256 of the runtime's executable file. Hardware platforms define their own (an SGX
    /// MRENCLAVE, a Nitro PCR0 digest, …) and are expected to hash it down to 32 bytes when it is
    /// longer, documenting how.
    Measurement
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
