//! Administration: enrol platforms, allow measurements, revoke. Used by the
//! `covenant attestation-service` commands on the service's directory; not on the HTTP API.
//! Each action is written to the audit log with its outcome.

use covenant_attest::hardware::HardwareRequirements;
use covenant_attest::platform::certificate_key_id;
use covenant_attest::{Measurement, PlatformKind};
use time::OffsetDateTime;

use crate::ServiceError;
use crate::db::{Database, PlatformRecord};
use crate::service::unix_ms;

/// The longest platform name, in bytes: names appear in logs, certificates' audit details and
/// command lines; 64 is plenty.
pub const MAX_PLATFORM_NAME_LEN: usize = 64;
/// The longest revocation reason stored, in bytes.
pub const MAX_REASON_LEN: usize = 512;

/// Checks a platform name: 1 to [`MAX_PLATFORM_NAME_LEN`] of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
/// [`ServiceError::InvalidInput`].
pub fn check_platform_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty()
        || name.len() > MAX_PLATFORM_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ServiceError::InvalidInput(format!(
            "platform name {:?} must be 1 to {MAX_PLATFORM_NAME_LEN} characters of A-Z a-z 0-9 . _ -",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<(), ServiceError> {
    if reason.len() > MAX_REASON_LEN {
        return Err(ServiceError::InvalidInput(format!(
            "the reason is longer than {MAX_REASON_LEN} bytes"
        )));
    }
    Ok(())
}

async fn audited<T>(
    db: &Database,
    action: &str,
    result: Result<(T, String), ServiceError>,
) -> Result<T, ServiceError> {
    let now = unix_ms(OffsetDateTime::now_utc());
    match &result {
        Ok((_, detail)) => db.audit(now, action, "ok", "ok", detail, None).await?,
        Err(error) => {
            let outcome = if error.is_refusal() {
                "refused"
            } else {
                "error"
            };
            db.audit(now, action, outcome, error.code(), &error.to_string(), None)
                .await?;
        }
    }
    result.map(|(value, _)| value)
}

/// Enrols a software platform by its certificate (PEM, as `covenant identity new` writes it).
/// Hardware platforms have no key to enrol: see [`enroll_hardware_platform`].
///
/// # Errors
/// [`ServiceError::InvalidInput`] for a bad name, an unusable certificate (not P-256), a kind
/// that cannot be enrolled yet, or a name or key already enrolled.
pub async fn enroll_platform(
    db: &Database,
    name: &str,
    kind: PlatformKind,
    certificate_pem: &[u8],
) -> Result<PlatformRecord, ServiceError> {
    let result = async {
        check_platform_name(name)?;
        if kind != PlatformKind::Software {
            return Err(ServiceError::InvalidInput(format!(
                "a {kind} platform has no platform key to enrol: its root is pinned; enrol it \
                 as a hardware platform (`enroll-platform --kind {kind} NAME`, without a certificate)"
            )));
        }
        let der =
            covenant_attest::pem::certificate_from_pem(certificate_pem, "platform certificate")
                .map_err(|e| ServiceError::InvalidInput(e.to_string()))?;
        let (_, parsed) = x509_parse(&der)?;
        if !is_p256_certificate(&parsed) {
            return Err(ServiceError::InvalidInput(
                "the platform certificate's key is not ECDSA P-256".into(),
            ));
        }
        let key_id = certificate_key_id(&der)
            .map_err(|e| ServiceError::InvalidInput(e.to_string()))?
            .to_hex();
        let pem = covenant_attest::pem::to_pem("CERTIFICATE", &der);
        db.enroll_platform(
            name,
            kind.as_str(),
            &key_id,
            &pem,
            None,
            unix_ms(OffsetDateTime::now_utc()),
        )
        .await?;
        let record = db
            .platform_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::Internal("the enrolled platform vanished".into()))?;
        let detail = format!(
            "enrolled {kind} platform {name:?} with key {key_id} (subject {})",
            parsed.subject()
        );
        Ok((record, detail))
    }
    .await;
    audited(db, "enroll-platform", result).await
}

/// The hardware platform kinds the service can verify evidence of.
pub const HARDWARE_KINDS: [PlatformKind; 4] = [
    PlatformKind::SevSnp,
    PlatformKind::Tdx,
    PlatformKind::Sgx,
    PlatformKind::Nitro,
];

/// Enrols a hardware platform (SEV-SNP, TDX, SGX, Nitro): no key (the hardware's root is
/// pinned in the verifier), only the rules its evidence must meet beyond the measurement. At
/// most one unrevoked platform per hardware kind.
///
/// # Errors
/// [`ServiceError::InvalidInput`] for a bad name, a kind that is not a verifiable hardware
/// kind, rules that do not apply to the kind, a name already enrolled, or a live platform of
/// the same kind.
pub async fn enroll_hardware_platform(
    db: &Database,
    name: &str,
    kind: PlatformKind,
    requirements: &HardwareRequirements,
) -> Result<PlatformRecord, ServiceError> {
    let result = async {
        check_platform_name(name)?;
        if !HARDWARE_KINDS.contains(&kind) {
            return Err(ServiceError::InvalidInput(format!(
                "{kind} is not a hardware platform the service can verify; hardware kinds are \
                 sev-snp, tdx, sgx and nitro (a software platform is enrolled with its certificate)"
            )));
        }
        requirements
            .check_applies_to(kind)
            .map_err(ServiceError::InvalidInput)?;
        let json = serde_json::to_string(requirements)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let key_id = format!("hardware:{kind}:{name}");
        db.enroll_platform(
            name,
            kind.as_str(),
            &key_id,
            "",
            Some(&json),
            unix_ms(OffsetDateTime::now_utc()),
        )
        .await?;
        let record = db
            .platform_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::Internal("the enrolled platform vanished".into()))?;
        let detail = format!("enrolled {kind} hardware platform {name:?} with rules {json}");
        Ok((record, detail))
    }
    .await;
    audited(db, "enroll-platform", result).await
}

fn x509_parse(
    der: &[u8],
) -> Result<(&[u8], x509_parser::certificate::X509Certificate<'_>), ServiceError> {
    x509_parser::parse_x509_certificate(der)
        .map_err(|e| ServiceError::InvalidInput(format!("platform certificate: {e}")))
}

fn is_p256_certificate(cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
    let spki = cert.public_key();
    spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|oid| oid == OID_EC_P256)
}

/// Allows a measurement (64 hex digits) for an enrolled, unrevoked platform. Returns false if
/// it was already allowed.
///
/// # Errors
/// [`ServiceError::InvalidInput`] for bad hex or an unknown or revoked platform.
pub async fn allow_measurement(
    db: &Database,
    platform: &str,
    measurement_hex: &str,
) -> Result<bool, ServiceError> {
    let result = async {
        let measurement: Measurement = measurement_hex
            .parse()
            .map_err(|e| ServiceError::InvalidInput(format!("measurement: {e}")))?;
        let record = db.platform_by_name(platform).await?.ok_or_else(|| {
            ServiceError::InvalidInput(format!("no platform named {platform:?} is enrolled"))
        })?;
        if record.revoked_at.is_some() {
            return Err(ServiceError::InvalidInput(format!(
                "platform {platform:?} is revoked"
            )));
        }
        let expected_len = match record.kind.parse::<PlatformKind>() {
            Ok(PlatformKind::Sgx | PlatformKind::Software) => 32,
            Ok(PlatformKind::SevSnp | PlatformKind::Tdx | PlatformKind::Nitro) => 48,
            _ => measurement.as_bytes().len(),
        };
        if measurement.as_bytes().len() != expected_len {
            return Err(ServiceError::InvalidInput(format!(
                "a {} measurement is {expected_len} bytes ({} hex digits); this one is {}",
                record.kind,
                expected_len * 2,
                measurement.as_bytes().len()
            )));
        }
        let changed = db
            .allow_measurement(
                platform,
                &measurement.to_hex(),
                unix_ms(OffsetDateTime::now_utc()),
            )
            .await?;
        let detail = if changed {
            format!("allowed measurement {measurement} for platform {platform:?}")
        } else {
            format!("measurement {measurement} was already allowed for platform {platform:?}")
        };
        Ok((changed, detail))
    }
    .await;
    audited(db, "allow-measurement", result).await
}

/// What to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationTarget {
    /// A platform, and every certificate issued through it.
    Platform(String),
    /// A measurement on one platform, and every certificate issued for it there.
    Measurement {
        /// The platform's name.
        platform: String,
        /// The measurement, hex.
        measurement: String,
    },
    /// One certificate, by serial (hex).
    Certificate(String),
}

/// Revokes a platform, a measurement or a certificate. Returns how many certificates were
/// revoked.
///
/// # Errors
/// [`ServiceError::InvalidInput`] if the target is not enrolled/allowed/issued or already
/// revoked.
pub async fn revoke(
    db: &Database,
    target: &RevocationTarget,
    reason: &str,
) -> Result<u64, ServiceError> {
    let now = unix_ms(OffsetDateTime::now_utc());
    let (action, result) = match target {
        RevocationTarget::Platform(name) => ("revoke-platform", async {
            check_reason(reason)?;
            let count = db
                .revoke_platform(name, reason, now)
                .await?
                .ok_or_else(|| ServiceError::InvalidInput(format!("no unrevoked platform named {name:?}")))?;
            Ok((count, format!("revoked platform {name:?} and {count} certificates: {reason}")))
        }
        .await),
        RevocationTarget::Measurement { platform, measurement } => ("revoke-measurement", async {
            check_reason(reason)?;
            let measurement: Measurement =
                measurement.parse().map_err(|e| ServiceError::InvalidInput(format!("measurement: {e}")))?;
            let count = db
                .revoke_measurement(platform, &measurement.to_hex(), reason, now)
                .await?
                .ok_or_else(|| ServiceError::InvalidInput(format!("measurement {measurement} is not allowed for platform {platform:?}")))?;
            Ok((count, format!("revoked measurement {measurement} on platform {platform:?} and {count} certificates: {reason}")))
        }
        .await),
        RevocationTarget::Certificate(serial) => ("revoke-certificate", async {
            check_reason(reason)?;
            let serial = serial.to_ascii_lowercase();
            if !db.revoke_certificate(&serial, reason, now).await? {
                return Err(ServiceError::InvalidInput(format!("no unrevoked certificate with serial {serial:?}")));
            }
            Ok((1, format!("revoked certificate {serial}: {reason}")))
        }
        .await),
    };
    audited(db, action, result).await
}
