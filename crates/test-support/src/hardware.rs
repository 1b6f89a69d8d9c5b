//! A hardware [`Platform`] for tests: SEV-SNP reports and Nitro documents in their exact
//! formats, carrying the report data of each request, signed under the test roots of
//! [`TestHardware`] (so only a service or verifier given [`TestHardware::anchors`] accepts
//! them; the production verifiers run unchanged).

use std::sync::Arc;

use base64::Engine as _;
use covenant_attest::binding::report_data;
use covenant_attest::platform::HARDWARE_EVIDENCE_FORMAT;
use covenant_attest::testing::TestHardware;
use covenant_attest::{
    AttestError, EvidenceRequest, HardwareEvidence, Measurement, Platform, PlatformEvidence,
    PlatformKind,
};
use time::OffsetDateTime;

/// The SEV-SNP guest policy bit that allows debugging.
pub const SEV_SNP_POLICY_DEBUG: u64 = 1 << 19;
/// A plausible SEV-SNP guest policy: SMT allowed (bit 16), reserved bit 17 set, ABI 0.0.
pub const SEV_SNP_POLICY: u64 = (1 << 16) | (1 << 17);

/// The 48-byte measurement test hardware platforms report.
pub const HARDWARE_MEASUREMENT_BYTES: [u8; 48] = [0x5a; 48];

/// [`HARDWARE_MEASUREMENT_BYTES`] as a measurement.
pub const HARDWARE_MEASUREMENT: Measurement = Measurement::sha384(HARDWARE_MEASUREMENT_BYTES);

/// A runtime on test hardware.
#[derive(Clone)]
pub struct TestPlatform {
    /// The test hardware (and so the roots) the evidence is signed under.
    pub hardware: Arc<TestHardware>,
    /// `SevSnp` or `Nitro`.
    pub kind: PlatformKind,
    /// Whether the hardware lets the host debug the runtime.
    pub debug: bool,
    /// Whether the evidence carries its endorsement (SEV-SNP: the VCEK).
    pub with_endorsement: bool,
    /// Replaces the report data the hardware signs (to forge a binding).
    pub signed_report_data: Option<[u8; 64]>,
}

impl TestPlatform {
    /// An SEV-SNP or Nitro runtime on `hardware`, not debuggable, sending its endorsement.
    pub fn new(hardware: Arc<TestHardware>, kind: PlatformKind) -> Self {
        assert!(
            matches!(kind, PlatformKind::SevSnp | PlatformKind::Nitro),
            "test hardware makes SEV-SNP and Nitro evidence only"
        );
        Self {
            hardware,
            kind,
            debug: false,
            with_endorsement: true,
            signed_report_data: None,
        }
    }
}

impl Platform for TestPlatform {
    fn kind(&self) -> PlatformKind {
        self.kind
    }

    fn measurement(&self) -> Measurement {
        if self.kind == PlatformKind::Nitro && self.debug {
            Measurement::sha384([0; 48])
        } else {
            HARDWARE_MEASUREMENT
        }
    }

    fn evidence(&self, request: &EvidenceRequest) -> Result<PlatformEvidence, AttestError> {
        let data = self.signed_report_data.unwrap_or_else(|| {
            report_data(
                &request.nonce,
                &request.tls_public_key_sha256,
                &request.policy_hash,
                &request.computation_id,
            )
        });
        let engine = &base64::engine::general_purpose::STANDARD;
        let (raw, endorsements) = match self.kind {
            PlatformKind::SevSnp => {
                let policy = SEV_SNP_POLICY | if self.debug { SEV_SNP_POLICY_DEBUG } else { 0 };
                let (report, vcek) =
                    self.hardware
                        .sev_snp_report(&data, &HARDWARE_MEASUREMENT_BYTES, policy);
                let endorsements = if self.with_endorsement {
                    vec![engine.encode(vcek)]
                } else {
                    Vec::new()
                };
                (report, endorsements)
            }
            _ => (
                self.hardware.nitro_document(
                    &data,
                    &HARDWARE_MEASUREMENT_BYTES,
                    self.debug,
                    OffsetDateTime::now_utc(),
                ),
                Vec::new(),
            ),
        };
        Ok(PlatformEvidence::Hardware(HardwareEvidence {
            format: HARDWARE_EVIDENCE_FORMAT.into(),
            platform: self.kind,
            policy_hash: request.policy_hash,
            computation_id: request.computation_id.clone(),
            tls_public_key_sha256: request.tls_public_key_sha256,
            nonce: request.nonce,
            evidence: engine.encode(raw),
            endorsements,
        }))
    }
}
