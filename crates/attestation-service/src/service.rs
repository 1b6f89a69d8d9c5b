//! The service's logic, independent of HTTP: issue nonces, check evidence and issue attested
//! certificates (at most one live instance per computation), record the end of instances,
//! report certificate status. Every call is written to the audit log with its outcome by
//! [`AttestationService::audited`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use covenant_attest::ca::bind;
use covenant_attest::hardware::{HardwareRequirements, endorsement_cache_key, verify_hardware};
use covenant_attest::instance::{unverified_instance_end, verify_instance_end};
use covenant_attest::pem::csr_from_pem;
use covenant_attest::wire::{
    AttestationRequest, AttestationResponse, CertificateState, CertificateStatus,
    InstanceEndRequest, InstanceEndResponse, NonceResponse,
};
use covenant_attest::{
    CertificateAuthority, CheckedCsr, CsrError, Evidence, HardwareEvidence, Nonce,
    PlatformEnrolment, PlatformEvidence, PlatformKind, TrustAnchors, VerifiedEvidence,
    verifier_for,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ServiceError;
use crate::db::{CertificateRecord, Database, NonceOutcome, PlatformRecord, Recorded};

/// How long a nonce stays usable by default: five minutes, enough for a worker to start, make
/// its key and sign evidence; short enough that a leaked nonce is soon worthless.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The most nonces that may be outstanding (issued, unused, unexpired) at once by default.
/// Nonces are free to ask for; this stops a flood of requests from filling the database.
pub const DEFAULT_MAX_OUTSTANDING_NONCES: i64 = 100_000;

/// How long an expired, unused nonce is kept before it is purged: one day, so that a late
/// submission is told "expired" rather than "unknown".
pub const NONCE_PURGE_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// Expired nonces are purged once every this many nonces issued (a DELETE per nonce would
/// double the write load for nothing).
pub const NONCE_PURGE_INTERVAL: u64 = 1024;

/// Tunable settings of a running service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// How long a nonce stays usable. Default [`DEFAULT_NONCE_LIFETIME`].
    pub nonce_lifetime: Duration,
    /// How long an attested certificate is valid. Default
    /// [`covenant_attest::DEFAULT_ATTESTED_CERTIFICATE_LIFETIME`] (one hour); capped at
    /// [`covenant_attest::ca::MAX_ATTESTED_CERTIFICATE_LIFETIME`].
    pub certificate_lifetime: Duration,
    /// The most outstanding nonces. Default [`DEFAULT_MAX_OUTSTANDING_NONCES`].
    pub max_outstanding_nonces: i64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            certificate_lifetime: covenant_attest::DEFAULT_ATTESTED_CERTIFICATE_LIFETIME,
            max_outstanding_nonces: DEFAULT_MAX_OUTSTANDING_NONCES,
        }
    }
}

/// Now as Unix milliseconds.
pub fn unix_ms(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// RFC 3339 text for Unix milliseconds.
///
/// # Errors
/// [`ServiceError::Internal`] if the time is out of range.
pub fn rfc3339_ms(ms: i64) -> Result<String, ServiceError> {
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    time.format(&Rfc3339)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// The attestation service: its CA, its database and its settings.
#[derive(Debug)]
pub struct AttestationService {
    db: Database,
    ca: CertificateAuthority,
    config: ServiceConfig,
    nonces_issued: AtomicU64,
    /// The roots hardware evidence must chain to: the pinned ones, except in tests.
    anchors: TrustAnchors,
}

/// What a successful call puts in the audit log.
pub struct AuditNote {
    /// For people.
    pub detail: String,
    /// The certificate concerned, if any.
    pub serial: Option<String>,
}

impl AttestationService {
    /// A service over an open database and a loaded CA.
    pub fn new(db: Database, ca: CertificateAuthority, config: ServiceConfig) -> Self {
        Self {
            db,
            ca,
            config,
            nonces_issued: AtomicU64::new(0),
            anchors: TrustAnchors::pinned(),
        }
    }

    /// The same service checking hardware evidence against `anchors` instead of the pinned
    /// roots. Only tests can make anchors other than the pinned ones
    /// ([`TrustAnchors::insecure_for_tests`] exists only with a feature no release build has),
    /// so this cannot weaken a production service.
    #[must_use]
    pub fn with_trust_anchors(mut self, anchors: TrustAnchors) -> Self {
        self.anchors = anchors;
        self
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The CA.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Runs `call`, writes one audit entry for `action` with its outcome (`ok`, `refused` or
    /// `error`, the error's code, and the note or the error's full text), and returns its
    /// result. If the audit write itself fails, that is logged and the call's result is
    /// returned unchanged: the caller's outcome does not depend on our bookkeeping.
    pub async fn audited<T>(
        &self,
        action: &str,
        call: impl Future<Output = Result<(T, AuditNote), ServiceError>>,
    ) -> Result<T, ServiceError> {
        let result = call.await;
        let now = unix_ms(OffsetDateTime::now_utc());
        let write = match &result {
            Ok((_, note)) => {
                self.db
                    .audit(
                        now,
                        action,
                        "ok",
                        "ok",
                        &note.detail,
                        note.serial.as_deref(),
                    )
                    .await
            }
            Err(error) => {
                let outcome = if error.is_refusal() {
                    "refused"
                } else {
                    "error"
                };
                // The audit log is ours: it gets the full text, internal errors included.
                self.db
                    .audit(now, action, outcome, error.code(), &error.to_string(), None)
                    .await
            }
        };
        if let Err(audit_error) = write {
            tracing::error!(%action, error = %audit_error, "could not write the audit log");
        }
        result.map(|(value, _)| value)
    }

    /// Issues a nonce (not audited; see [`AttestationService::audited`]).
    ///
    /// # Errors
    /// [`ServiceError::TooManyNonces`] when [`ServiceConfig::max_outstanding_nonces`] are
    /// outstanding; [`ServiceError::Database`].
    pub async fn issue_nonce(&self) -> Result<(NonceResponse, AuditNote), ServiceError> {
        let now = OffsetDateTime::now_utc();
        let now_ms = unix_ms(now);
        if self
            .nonces_issued
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(NONCE_PURGE_INTERVAL)
        {
            let cutoff = now_ms
                .saturating_sub(i64::try_from(NONCE_PURGE_GRACE.as_millis()).unwrap_or(i64::MAX));
            self.db.purge_expired_nonces(cutoff).await?;
        }
        if self.db.outstanding_nonces(now_ms).await? >= self.config.max_outstanding_nonces {
            return Err(ServiceError::TooManyNonces);
        }
        let nonce = Nonce::random().map_err(|e| ServiceError::Internal(e.to_string()))?;
        let lifetime_ms = i64::try_from(self.config.nonce_lifetime.as_millis()).unwrap_or(i64::MAX);
        let expires_ms = now_ms.saturating_add(lifetime_ms);
        self.db
            .insert_nonce(&nonce.to_hex(), now_ms, expires_ms)
            .await?;
        let response = NonceResponse {
            nonce,
            expires_at: rfc3339_ms(expires_ms)?,
        };
        let note = AuditNote {
            detail: format!("nonce {nonce} expires {}", response.expires_at),
            serial: None,
        };
        Ok((response, note))
    }

    /// Checks an attestation request and issues an attested certificate (not audited; see
    /// [`AttestationService::audited`]).
    ///
    /// The checks, in order: the CSR (well-formed, self-signed, P-256, only expected
    /// extensions); the platform is enrolled and not revoked (software: the one whose key
    /// signed; hardware: the live one of the evidence's kind) and the evidence verifies for it
    /// (hardware: against the service's trust anchors, under the platform's rules, with the
    /// report data binding the envelope's values); the nonce it binds is consumed now (unknown, used and
    /// expired nonces are refused; a nonce whose evidence verified is used up even if a later
    /// check fails); the measurement is allowed for the platform; evidence and CSR agree on TLS
    /// key, policy hash and computation id; the computation (its id and policy hash) has no
    /// live instance. Only then is a certificate signed and recorded — and the recording
    /// itself refuses a second live instance of the computation, so that two concurrent
    /// attestations cannot both pass ([`Database::insert_certificate`]). A hardware
    /// endorsement that came with the evidence is cached after that (best effort).
    ///
    /// # Errors
    /// The [`ServiceError`] refusal naming the first failed check, or an internal error.
    pub async fn attest(
        &self,
        request: &AttestationRequest,
    ) -> Result<(AttestationResponse, AuditNote), ServiceError> {
        let csr_der = csr_from_pem(request.csr.as_bytes(), "csr")
            .map_err(|e| ServiceError::Csr(CsrError::Malformed(e.to_string())))?;
        let csr = CheckedCsr::parse(&csr_der)?;

        let now = OffsetDateTime::now_utc();
        let (platform, kind, verified, to_cache) = match &request.evidence {
            PlatformEvidence::Software(evidence) => {
                let (platform, kind, verified) = self.verify_software(evidence).await?;
                (platform, kind, verified, None)
            }
            PlatformEvidence::Hardware(evidence) => self.verify_hardware(evidence, now).await?,
        };
        let claims = verified.claims();

        match self
            .db
            .consume_nonce(&claims.nonce.to_hex(), unix_ms(now))
            .await?
        {
            NonceOutcome::Consumed => {}
            NonceOutcome::Unknown => return Err(ServiceError::UnknownNonce),
            NonceOutcome::AlreadyUsed => return Err(ServiceError::NonceAlreadyUsed),
            NonceOutcome::Expired => return Err(ServiceError::NonceExpired),
        }
        if !self
            .db
            .measurement_allowed(&platform.name, &claims.measurement.to_hex())
            .await?
        {
            return Err(ServiceError::MeasurementNotAllowed {
                platform: platform.name,
                measurement: claims.measurement,
            });
        }
        let bound = bind(&verified, &csr)?;
        let policy_hash = claims.policy_hash.to_hex();
        if let Some(live) = self
            .db
            .live_instance(&claims.computation_id, &policy_hash, unix_ms(now))
            .await?
        {
            return Err(instance_already_live(&live)?);
        }
        let issued = self
            .ca
            .issue_attested(&bound, now, self.config.certificate_lifetime)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let record = CertificateRecord {
            serial: issued.serial.clone(),
            nonce: claims.nonce.to_hex(),
            platform: platform.name.clone(),
            platform_kind: kind.as_str().to_owned(),
            measurement: claims.measurement.to_hex(),
            policy_hash,
            computation_id: claims.computation_id.clone(),
            tls_key_sha256: bound.tls_public_key_sha256().to_hex(),
            not_before: unix_ms(issued.not_before),
            not_after: unix_ms(issued.not_after),
            certificate_pem: issued.pem.clone(),
            issued_at: unix_ms(now),
            revoked_at: None,
            revocation_reason: None,
            ended_at: None,
            end_reason: None,
        };
        if let Recorded::InstanceLive(live) =
            self.db.insert_certificate(&record, unix_ms(now)).await?
        {
            return Err(instance_already_live(&live)?);
        }
        // Only now, with every check passed and the certificate recorded, is the endorsement
        // worth keeping for others: evidence that fails a later check (a used nonce, a
        // measurement not allowed) cannot replace what honest hosts rely on. The certificate
        // is issued whatever happens here: the cache is a convenience, and failing the request
        // now would leave an issued certificate its runtime never received.
        if let Some(cached) = to_cache
            && let Err(e) = self.cache_endorsement(kind, &cached, now).await
        {
            tracing::warn!(%kind, key = %cached.key, error = %e, "could not cache an endorsement");
        }
        let response = AttestationResponse {
            serial: issued.serial.clone(),
            certificate_chain: vec![issued.pem, self.ca.certificate_pem()],
            not_before: rfc3339_ms(record.not_before)?,
            not_after: rfc3339_ms(record.not_after)?,
        };
        let note = AuditNote {
            detail: format!(
                "issued certificate {} to platform {:?} ({kind}) for measurement {}, policy {}, computation {:?}, \
                 TLS key {}; valid until {}{}",
                issued.serial,
                platform.name,
                claims.measurement,
                claims.policy_hash,
                claims.computation_id,
                record.tls_key_sha256,
                response.not_after,
                hardware_note(&verified, &self.anchors),
            ),
            serial: Some(issued.serial),
        };
        Ok((response, note))
    }

    /// Software evidence: the enrolled platform its signer key names, not revoked, and the
    /// signature and claims by that platform's key.
    async fn verify_software(
        &self,
        evidence: &Evidence,
    ) -> Result<(PlatformRecord, PlatformKind, VerifiedEvidence), ServiceError> {
        let platform = self
            .db
            .platform_by_key_id(&evidence.signer_key_id.to_hex())
            .await?
            .ok_or(ServiceError::UnknownPlatform {
                key_id: evidence.signer_key_id,
            })?;
        if platform.revoked_at.is_some() {
            return Err(ServiceError::PlatformRevoked {
                name: platform.name,
            });
        }
        let kind: PlatformKind = platform.kind.parse().map_err(|e| {
            ServiceError::Internal(format!("platform {:?} in the database: {e}", platform.name))
        })?;
        let certificate_der = covenant_attest::pem::certificate_from_pem(
            platform.certificate_pem.as_bytes(),
            "platform",
        )
        .map_err(|e| {
            ServiceError::Internal(format!("platform {:?} in the database: {e}", platform.name))
        })?;
        let enrolment = PlatformEnrolment {
            name: platform.name.clone(),
            kind,
            certificate_der: certificate_der.to_vec(),
        };
        let verified = verifier_for(kind)?.verify(evidence, &enrolment)?;
        Ok((platform, kind, verified))
    }

    /// Hardware evidence: the live enrolled platform of its kind, and the hardware verifier
    /// against the service's trust anchors, at `now`, under that platform's requirements.
    ///
    /// Evidence sent without its endorsement gets the one cached for it, if any. An
    /// endorsement that came with evidence that verified is returned for caching, which the
    /// caller does once the certificate is issued ([`cacheable`] says which may be). A cached
    /// endorsement is verified again like a fresh one: caching saves the host a fetch, never a
    /// check.
    async fn verify_hardware(
        &self,
        evidence: &HardwareEvidence,
        now: OffsetDateTime,
    ) -> Result<HardwareVerified, ServiceError> {
        let kind = evidence.platform;
        let platform = self
            .db
            .live_hardware_platform(kind.as_str())
            .await?
            .ok_or(ServiceError::HardwarePlatformNotEnrolled { kind })?;
        let requirements: HardwareRequirements = platform
            .requirements
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| {
                ServiceError::Internal(format!(
                    "platform {:?}'s requirements in the database: {e}",
                    platform.name
                ))
            })?
            .unwrap_or_default();
        let (raw, _) = evidence.decoded_parts()?;
        let cache_key = endorsement_cache_key(kind, &raw);
        let mut evidence = evidence.clone();
        let supplied = !evidence.endorsements.is_empty();
        if !supplied
            && let Some(key) = &cache_key
            && let Some(cached) = self.db.endorsement(kind.as_str(), key).await?
        {
            evidence.endorsements = vec![cached];
        }
        let verified =
            verify_hardware(&evidence, &platform.name, &requirements, &self.anchors, now)?;
        let to_cache = match (supplied, cache_key, evidence.endorsements.as_slice()) {
            (true, Some(key), [endorsement]) if cacheable(kind, endorsement) => {
                Some(CachedEndorsement {
                    key,
                    sha256: covenant_attest::Digest::of(endorsement.as_bytes()).to_hex(),
                    body_base64: endorsement.clone(),
                })
            }
            _ => None,
        };
        Ok((platform, kind, verified, to_cache))
    }

    /// Caches `cached` unless the entry already there is fresher: DCAP collateral with a
    /// higher TCB evaluation number, or the same number and a later TCB info issue date, is
    /// never replaced by older collateral, so that a host whose own old collateral still
    /// verifies cannot roll back what every other host relying on the cache gets.
    async fn cache_endorsement(
        &self,
        kind: PlatformKind,
        cached: &CachedEndorsement,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        if let Some(existing) = self.db.endorsement(kind.as_str(), &cached.key).await?
            && freshness(&existing) > freshness(&cached.body_base64)
        {
            return Ok(());
        }
        self.db
            .store_endorsement(
                kind.as_str(),
                &cached.key,
                &cached.sha256,
                &cached.body_base64,
                unix_ms(now),
            )
            .await
    }

    /// The status of a certificate (not audited; see [`AttestationService::audited`]).
    ///
    /// # Errors
    /// [`ServiceError::UnknownCertificate`]; [`ServiceError::Database`].
    pub async fn certificate_status(
        &self,
        serial: &str,
    ) -> Result<(CertificateStatus, AuditNote), ServiceError> {
        let shown: String = serial.chars().take(64).collect();
        if serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::UnknownCertificate(shown));
        }
        let record = self
            .db
            .certificate(&serial.to_ascii_lowercase())
            .await?
            .ok_or(ServiceError::UnknownCertificate(shown))?;
        let now_ms = unix_ms(OffsetDateTime::now_utc());
        let status = if record.revoked_at.is_some() {
            CertificateState::Revoked
        } else if now_ms > record.not_after {
            CertificateState::Expired
        } else {
            CertificateState::Valid
        };
        let response = CertificateStatus {
            serial: record.serial.clone(),
            status,
            platform: record.platform_kind,
            measurement: record.measurement,
            policy_hash: record.policy_hash,
            computation_id: record.computation_id,
            not_before: rfc3339_ms(record.not_before)?,
            not_after: rfc3339_ms(record.not_after)?,
            revoked_at: record.revoked_at.map(rfc3339_ms).transpose()?,
            revocation_reason: record.revocation_reason,
            ended_at: record.ended_at.map(rfc3339_ms).transpose()?,
            end_reason: record.end_reason,
        };
        let note = AuditNote {
            detail: format!("certificate {} is {status:?}", record.serial),
            serial: Some(record.serial),
        };
        Ok((response, note))
    }

    /// Records the end of an instance from its runtime's end statement (not audited; see
    /// [`AttestationService::audited`]), so that its computation can be attested again.
    ///
    /// The statement names its certificate by serial; the service checks it against the
    /// certificate **it issued** under that serial ([`verify_instance_end`]): the signature
    /// with that certificate's key (which only the attested runtime holds, so the host that
    /// relays the statement cannot make one), and the serial, computation id and policy hash.
    /// Sending it again, or for a certificate that expired or was revoked since, is harmless:
    /// the first end recorded stays.
    ///
    /// # Errors
    /// [`ServiceError::InstanceEnd`] (malformed, bad signature, mismatch);
    /// [`ServiceError::UnknownCertificate`]; [`ServiceError::Database`].
    pub async fn end_instance(
        &self,
        request: &InstanceEndRequest,
    ) -> Result<(InstanceEndResponse, AuditNote), ServiceError> {
        let claimed = unverified_instance_end(&request.statement)?;
        let shown: String = claimed.serial.chars().take(64).collect();
        if claimed.serial.len() > 64 || !claimed.serial.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::UnknownCertificate(shown));
        }
        let record = self
            .db
            .certificate(&claimed.serial.to_ascii_lowercase())
            .await?
            .ok_or(ServiceError::UnknownCertificate(shown))?;
        let certificate_der = covenant_attest::pem::certificate_from_pem(
            record.certificate_pem.as_bytes(),
            "certificate",
        )
        .map_err(|e| {
            ServiceError::Internal(format!(
                "certificate {} in the database: {e}",
                record.serial
            ))
        })?;
        let statement = verify_instance_end(&request.statement, &certificate_der)?;
        let said_at = rfc3339_ms(statement.ended_at_ms)
            .unwrap_or_else(|_| format!("{} (Unix ms)", statement.ended_at_ms));
        let reason = format!(
            "{}: reported by the runtime, which says it ended at {said_at}",
            statement.reason
        );
        let now = unix_ms(OffsetDateTime::now_utc());
        let ended = self
            .db
            .end_instance(&record.serial, &reason, now)
            .await?
            .ok_or_else(|| ServiceError::Internal("the ended certificate vanished".into()))?;
        let ended_at = ended.ended_at.unwrap_or(now);
        let end_reason = ended.end_reason.unwrap_or(reason);
        let response = InstanceEndResponse {
            serial: ended.serial.clone(),
            computation_id: ended.computation_id,
            policy_hash: ended.policy_hash,
            ended_at: rfc3339_ms(ended_at)?,
            end_reason,
        };
        let note = AuditNote {
            detail: format!(
                "instance {} of computation {:?} (policy {}) ended at {}: {}",
                response.serial,
                response.computation_id,
                response.policy_hash,
                response.ended_at,
                response.end_reason
            ),
            serial: Some(ended.serial),
        };
        Ok((response, note))
    }
}

/// What [`AttestationService::verify_hardware`] found: the enrolled platform, its kind, the
/// verified evidence, and the endorsement to cache if the attestation succeeds.
type HardwareVerified = (
    PlatformRecord,
    PlatformKind,
    VerifiedEvidence,
    Option<CachedEndorsement>,
);

/// An endorsement to cache once its attestation has succeeded.
struct CachedEndorsement {
    key: String,
    sha256: String,
    body_base64: String,
}

/// Whether an endorsement that verified may serve other hosts. DCAP collateral that carries a
/// PCK certificate chain of its own may not: the verifier requires that chain to equal the
/// quote's, so it fits only the machine that sent it, and cached it would make every other
/// machine of the same FMSPC be refused until it sent its own.
fn cacheable(kind: PlatformKind, endorsement_base64: &str) -> bool {
    use base64::Engine as _;
    match kind {
        PlatformKind::Tdx | PlatformKind::Sgx => base64::engine::general_purpose::STANDARD
            .decode(endorsement_base64)
            .ok()
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
            .is_some_and(|collateral| {
                collateral
                    .get("pck_certificate_chain")
                    .is_none_or(serde_json::Value::is_null)
            }),
        _ => true,
    }
}

/// How fresh an endorsement is, for [`AttestationService::cache_endorsement`]: for DCAP
/// collateral its TCB info's `tcbEvaluationDataNumber` and `issueDate` (RFC 3339 UTC, so text
/// order is time order); nothing for an SEV-SNP VCEK, which is one certificate per chip and
/// TCB whatever the host sends. Read from JSON whose signatures verified when it was
/// accepted.
fn freshness(endorsement_base64: &str) -> Option<(u64, String)> {
    use base64::Engine as _;
    let json = base64::engine::general_purpose::STANDARD
        .decode(endorsement_base64)
        .ok()?;
    let collateral: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let tcb_info: serde_json::Value =
        serde_json::from_str(collateral.get("tcb_info")?.as_str()?).ok()?;
    Some((
        tcb_info.get("tcbEvaluationDataNumber")?.as_u64()?,
        tcb_info.get("issueDate")?.as_str()?.to_owned(),
    ))
}

/// For the audit log: what the hardware said, and a warning when the roots are not the pinned
/// production ones.
fn hardware_note(verified: &VerifiedEvidence, anchors: &TrustAnchors) -> String {
    let Some(hardware) = verified.hardware() else {
        return String::new();
    };
    let roots = if anchors.is_pinned() {
        ""
    } else {
        "; VERIFIED AGAINST TEST ROOTS, NOT THE VENDORS'"
    };
    format!(
        "; hardware: debug {}, TCB {}{}{roots}",
        hardware.debug,
        if hardware.tcb.is_empty() {
            "not reported"
        } else {
            &hardware.tcb
        },
        if hardware.advisory_ids.is_empty() {
            String::new()
        } else {
            format!(", advisories {}", hardware.advisory_ids.join(", "))
        }
    )
}

/// The refusal of a second instance of `live`'s computation.
fn instance_already_live(live: &CertificateRecord) -> Result<ServiceError, ServiceError> {
    Ok(ServiceError::InstanceAlreadyLive {
        computation_id: live.computation_id.clone(),
        policy_hash: live.policy_hash.clone(),
        serial: live.serial.clone(),
        not_after: rfc3339_ms(live.not_after)?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn collateral(evaluation: u64, issued: &str) -> String {
        let tcb_info = serde_json::json!({
            "tcbEvaluationDataNumber": evaluation,
            "issueDate": issued,
        });
        let body = serde_json::json!({ "tcb_info": tcb_info.to_string() });
        base64::engine::general_purpose::STANDARD.encode(body.to_string())
    }

    #[test]
    fn newer_collateral_is_fresher_by_evaluation_number_then_issue_date() {
        let old = collateral(17, "2025-06-19T10:16:03Z");
        let later_issue = collateral(17, "2025-06-20T00:00:00Z");
        let newer_evaluation = collateral(18, "2025-01-01T00:00:00Z");
        assert!(freshness(&later_issue) > freshness(&old));
        assert!(freshness(&newer_evaluation) > freshness(&later_issue));
        // Not collateral (an SEV-SNP VCEK, garbage): no freshness, so never "fresher" than
        // collateral, and replaced by anything.
        let vcek = base64::engine::general_purpose::STANDARD.encode([0x30, 0x82, 0x01]);
        assert_eq!(freshness(&vcek), None);
        assert!(freshness(&vcek) < freshness(&old));
    }

    #[test]
    fn collateral_with_a_pck_chain_of_its_own_is_not_cached() {
        let encode = |value: serde_json::Value| {
            base64::engine::general_purpose::STANDARD.encode(value.to_string())
        };
        let plain = encode(serde_json::json!({ "tcb_info": "{}" }));
        let null_chain = encode(serde_json::json!({ "pck_certificate_chain": null }));
        let own_chain = encode(serde_json::json!({ "pck_certificate_chain": "-----BEGIN" }));
        assert!(cacheable(PlatformKind::Tdx, &plain));
        assert!(cacheable(PlatformKind::Sgx, &null_chain));
        assert!(!cacheable(PlatformKind::Tdx, &own_chain));
        assert!(!cacheable(PlatformKind::Tdx, "not base64!"));
        // A VCEK is per chip and TCB: always cacheable.
        assert!(cacheable(PlatformKind::SevSnp, "anything"));
    }
}
