//! The X.509 extensions that carry attested claims, all under one OID arc.
//!
//! | OID | name | DER value |
//! |---|---|---|
//! | `1.3.6.1.4.1.62917.1.1` | platform kind | UTF8String, e.g. `software` |
//! | `1.3.6.1.4.1.62917.1.2` | measurement | OCTET STRING, 32 or 48 bytes |
//! | `1.3.6.1.4.1.62917.1.3` | policy hash | OCTET STRING, 32 bytes (SHA-256) |
//! | `1.3.6.1.4.1.62917.1.4` | computation id | UTF8String, at most 256 bytes |
//! | `1.3.6.1.4.1.62917.1.5` | hardware claims | UTF8String: JSON [`HardwareClaims`], at most [`crate::hardware::MAX_HARDWARE_CLAIMS_LEN`] bytes; on hardware platforms only |
//!
//! The arc `1.3.6.1.4.1.62917` is a private-enterprise-style arc chosen for Covenant and **not
//! registered with IANA**; before a release it must be replaced by an assigned Private
//! Enterprise Number (change [`COVENANT_OID_ARC`] only; everything else derives from it). The
//! extensions are non-critical so that generic X.509 tools can still display the certificate;
//! Covenant's own verifier ([`crate::verify`]) requires the first four, and the fifth exactly
//! when the platform is a hardware one (its absence there, or presence on the software
//! platform, is refused).

use crate::der::{TAG_OCTET_STRING, TAG_UTF8_STRING, decode, encode};
use crate::hardware::{HardwareClaims, MAX_HARDWARE_CLAIMS_LEN};
use crate::{Digest, Measurement, PlatformKind};

/// The OID arc under which every Covenant extension lives: `1.3.6.1.4.1.62917.1`.
pub const COVENANT_OID_ARC: [u64; 8] = [1, 3, 6, 1, 4, 1, 62917, 1];

const fn under_arc(last: u64) -> [u64; 9] {
    let a = COVENANT_OID_ARC;
    [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], last]
}

/// Platform kind extension: `1.3.6.1.4.1.62917.1.1`, a UTF8String.
pub const OID_PLATFORM: [u64; 9] = under_arc(1);
/// Measurement extension: `1.3.6.1.4.1.62917.1.2`, an OCTET STRING of 32 or 48 bytes.
pub const OID_MEASUREMENT: [u64; 9] = under_arc(2);
/// Policy hash extension: `1.3.6.1.4.1.62917.1.3`, an OCTET STRING of 32 bytes.
pub const OID_POLICY_HASH: [u64; 9] = under_arc(3);
/// Computation id extension: `1.3.6.1.4.1.62917.1.4`, a UTF8String.
pub const OID_COMPUTATION_ID: [u64; 9] = under_arc(4);
/// Hardware claims extension: `1.3.6.1.4.1.62917.1.5`, a UTF8String holding JSON
/// [`HardwareClaims`].
pub const OID_HARDWARE: [u64; 9] = under_arc(5);

/// The claims an attested certificate carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedClaims {
    /// The platform kind that was attested.
    pub platform: PlatformKind,
    /// The runtime's measurement.
    pub measurement: Measurement,
    /// SHA-256 of the policy the runtime serves.
    pub policy_hash: Digest,
    /// The computation id.
    pub computation_id: String,
    /// What the hardware said about itself (debug, TCB, …): present exactly on hardware
    /// platforms.
    pub hardware: Option<HardwareClaims>,
}

/// Which of our extensions an OID is, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    Platform,
    Measurement,
    PolicyHash,
    ComputationId,
    Hardware,
}

impl Known {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Measurement => "measurement",
            Self::PolicyHash => "policy hash",
            Self::ComputationId => "computation id",
            Self::Hardware => "hardware claims",
        }
    }

    pub(crate) fn identify(oid: &x509_parser::der_parser::oid::Oid<'_>) -> Option<Self> {
        let arcs: Vec<u64> = oid.iter()?.collect();
        [
            (OID_PLATFORM, Self::Platform),
            (OID_MEASUREMENT, Self::Measurement),
            (OID_POLICY_HASH, Self::PolicyHash),
            (OID_COMPUTATION_ID, Self::ComputationId),
            (OID_HARDWARE, Self::Hardware),
        ]
        .into_iter()
        .find(|(known, _)| arcs == known)
        .map(|(_, which)| which)
    }
}

pub(crate) fn policy_hash_extension(hash: &Digest) -> rcgen::CustomExtension {
    rcgen::CustomExtension::from_oid_content(
        &OID_POLICY_HASH,
        encode(TAG_OCTET_STRING, hash.as_bytes()),
    )
}

pub(crate) fn computation_id_extension(id: &str) -> rcgen::CustomExtension {
    rcgen::CustomExtension::from_oid_content(
        &OID_COMPUTATION_ID,
        encode(TAG_UTF8_STRING, id.as_bytes()),
    )
}

/// The extensions for `claims`, non-critical.
///
/// # Errors
/// If the hardware claims cannot be encoded within [`MAX_HARDWARE_CLAIMS_LEN`].
pub(crate) fn attested_extensions(
    claims: &AttestedClaims,
) -> Result<Vec<rcgen::CustomExtension>, String> {
    let mut extensions = vec![
        rcgen::CustomExtension::from_oid_content(
            &OID_PLATFORM,
            encode(TAG_UTF8_STRING, claims.platform.as_str().as_bytes()),
        ),
        rcgen::CustomExtension::from_oid_content(
            &OID_MEASUREMENT,
            encode(TAG_OCTET_STRING, claims.measurement.as_bytes()),
        ),
        policy_hash_extension(&claims.policy_hash),
        computation_id_extension(&claims.computation_id),
    ];
    if let Some(hardware) = &claims.hardware {
        let json = serde_json::to_vec(hardware).map_err(|e| e.to_string())?;
        if json.len() > MAX_HARDWARE_CLAIMS_LEN {
            return Err(format!(
                "the hardware claims are {} bytes; at most {MAX_HARDWARE_CLAIMS_LEN} fit",
                json.len()
            ));
        }
        extensions.push(rcgen::CustomExtension::from_oid_content(
            &OID_HARDWARE,
            encode(TAG_UTF8_STRING, &json),
        ));
    }
    Ok(extensions)
}

fn decode_hardware(value: &[u8]) -> Result<HardwareClaims, String> {
    let bytes = decode(TAG_UTF8_STRING, value)?;
    if bytes.len() > MAX_HARDWARE_CLAIMS_LEN {
        return Err(format!("longer than {MAX_HARDWARE_CLAIMS_LEN} bytes"));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

pub(crate) fn decode_digest(value: &[u8]) -> Result<[u8; 32], String> {
    let bytes = decode(TAG_OCTET_STRING, value)?;
    bytes
        .try_into()
        .map_err(|_| format!("expected 32 bytes, found {}", bytes.len()))
}

pub(crate) fn decode_text(value: &[u8]) -> Result<String, String> {
    let bytes = decode(TAG_UTF8_STRING, value)?;
    if bytes.len() > crate::MAX_COMPUTATION_ID_LEN {
        return Err(format!(
            "longer than {} bytes",
            crate::MAX_COMPUTATION_ID_LEN
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8".to_owned())
}

/// An attested certificate's extensions are missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// A required extension is absent.
    #[error("the certificate has no {0} extension")]
    Missing(&'static str),
    /// An extension appears twice.
    #[error("the certificate has the {0} extension twice")]
    Duplicate(&'static str),
    /// An extension's value cannot be decoded.
    #[error("the certificate's {name} extension is malformed: {reason}")]
    Malformed {
        /// Which extension.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

impl AttestedClaims {
    /// Reads the four extensions from a parsed certificate; other extensions are ignored.
    ///
    /// # Errors
    /// [`ExtensionError`] naming the extension.
    pub fn from_certificate(
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> Result<Self, ExtensionError> {
        let mut platform = None;
        let mut measurement = None;
        let mut policy_hash = None;
        let mut computation_id = None;
        let mut hardware = None;
        for ext in cert.extensions() {
            let Some(which) = Known::identify(&ext.oid) else {
                continue;
            };
            let malformed = |reason: String| ExtensionError::Malformed {
                name: which.name(),
                reason,
            };
            let fresh = match which {
                Known::Platform => {
                    let text = decode_text(ext.value).map_err(malformed)?;
                    let kind = text
                        .parse::<PlatformKind>()
                        .map_err(|e| malformed(e.to_string()))?;
                    platform.replace(kind).is_none()
                }
                Known::Measurement => {
                    let bytes = decode(TAG_OCTET_STRING, ext.value).map_err(malformed)?;
                    let value = Measurement::from_bytes(bytes).ok_or_else(|| {
                        malformed(format!("expected 32 or 48 bytes, found {}", bytes.len()))
                    })?;
                    measurement.replace(value).is_none()
                }
                Known::PolicyHash => {
                    let bytes = decode_digest(ext.value).map_err(malformed)?;
                    policy_hash.replace(Digest(bytes)).is_none()
                }
                Known::ComputationId => {
                    let text = decode_text(ext.value).map_err(malformed)?;
                    computation_id.replace(text).is_none()
                }
                Known::Hardware => {
                    let claims = decode_hardware(ext.value).map_err(malformed)?;
                    hardware.replace(claims).is_none()
                }
            };
            if !fresh {
                return Err(ExtensionError::Duplicate(which.name()));
            }
        }
        let platform = platform.ok_or(ExtensionError::Missing(Known::Platform.name()))?;
        match (platform.trusts_host_os(), hardware.is_some()) {
            (false, false) => return Err(ExtensionError::Missing(Known::Hardware.name())),
            (true, true) => {
                return Err(ExtensionError::Malformed {
                    name: Known::Hardware.name(),
                    reason: format!("platform {platform} is not a hardware platform"),
                });
            }
            _ => {}
        }
        Ok(Self {
            platform,
            measurement: measurement.ok_or(ExtensionError::Missing(Known::Measurement.name()))?,
            policy_hash: policy_hash.ok_or(ExtensionError::Missing(Known::PolicyHash.name()))?,
            computation_id: computation_id
                .ok_or(ExtensionError::Missing(Known::ComputationId.name()))?,
            hardware,
        })
    }
}
