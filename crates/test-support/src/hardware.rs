//! A hardware [`Platform`] for tests: SEV-SNP reports, Nitro documents, TDX quotes and SGX
//! quotes in their exact formats, carrying the report data of each request, signed under the
//! test roots of [`TestHardware`] (so only a service or verifier given
//! [`TestHardware::anchors`] accepts them; the production verifiers run unchanged).

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

/// Every hardware platform kind [`TestPlatform`] makes evidence for.
pub const TEST_HARDWARE_KINDS: [PlatformKind; 4] = [
    PlatformKind::SevSnp,
    PlatformKind::Nitro,
    PlatformKind::Tdx,
    PlatformKind::Sgx,
];

/// The 48-byte measurement test hardware platforms report: the SEV-SNP launch measurement,
/// Nitro PCR0 (but in debug mode) and TDX MRTD.
pub const HARDWARE_MEASUREMENT_BYTES: [u8; 48] = [0x5a; 48];

/// [`HARDWARE_MEASUREMENT_BYTES`] as a measurement.
pub const HARDWARE_MEASUREMENT: Measurement = Measurement::sha384(HARDWARE_MEASUREMENT_BYTES);

/// The 32-byte measurement (MRENCLAVE) a test SGX enclave reports.
pub const SGX_MEASUREMENT_BYTES: [u8; 32] = [0x5a; 32];

/// [`SGX_MEASUREMENT_BYTES`] as a measurement.
pub const SGX_MEASUREMENT: Measurement = Measurement::sha256(SGX_MEASUREMENT_BYTES);

/// The measurement a (not debug) [`TestPlatform`] of `kind` reports: [`SGX_MEASUREMENT`] for
/// SGX; for TDX, Covenant's TDX measurement of a TD whose MRTD is
/// [`HARDWARE_MEASUREMENT_BYTES`] (its other registers as `TestHardware::tdx_quote` sets them);
/// [`HARDWARE_MEASUREMENT`] for the others.
pub fn hardware_measurement(kind: PlatformKind) -> Measurement {
    match kind {
        PlatformKind::Sgx => SGX_MEASUREMENT,
        PlatformKind::Tdx => {
            covenant_attest::testing::test_tdx_measurement(&HARDWARE_MEASUREMENT_BYTES)
        }
        _ => HARDWARE_MEASUREMENT,
    }
}

/// A runtime on test hardware.
#[derive(Clone)]
pub struct TestPlatform {
    /// The test hardware (and so the roots) the evidence is signed under.
    pub hardware: Arc<TestHardware>,
    /// One of [`TEST_HARDWARE_KINDS`].
    pub kind: PlatformKind,
    /// Whether the hardware lets the host debug the runtime.
    pub debug: bool,
    /// Whether the evidence carries its endorsement (SEV-SNP: the VCEK; TDX and SGX: the
    /// collateral JSON; Nitro has none).
    pub with_endorsement: bool,
    /// Replaces the report data the hardware signs (to forge a binding).
    pub signed_report_data: Option<[u8; 64]>,
    /// SEV-SNP: the VMPL the report is requested at (0 unless a test says otherwise).
    pub vmpl: u32,
}

impl TestPlatform {
    /// A runtime of `kind` (one of [`TEST_HARDWARE_KINDS`]) on `hardware`, not debuggable,
    /// sending its endorsement.
    ///
    /// # Panics
    /// If `kind` is not a kind test hardware makes evidence for.
    pub fn new(hardware: Arc<TestHardware>, kind: PlatformKind) -> Self {
        assert!(
            TEST_HARDWARE_KINDS.contains(&kind),
            "test hardware makes SEV-SNP, Nitro, TDX and SGX evidence only, not {kind}"
        );
        Self {
            hardware,
            kind,
            debug: false,
            with_endorsement: true,
            signed_report_data: None,
            vmpl: 0,
        }
    }
}

impl Platform for TestPlatform {
    fn kind(&self) -> PlatformKind {
        self.kind
    }

    fn measurement(&self) -> Measurement {
        if self.kind == PlatformKind::Nitro && self.debug {
            // A debug-mode Nitro document has all-zero PCRs.
            Measurement::sha384([0; 48])
        } else {
            hardware_measurement(self.kind)
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
        let (raw, endorsement) = match self.kind {
            PlatformKind::SevSnp => {
                let policy = SEV_SNP_POLICY | if self.debug { SEV_SNP_POLICY_DEBUG } else { 0 };
                let (report, vcek) = self.hardware.sev_snp_report_at_vmpl(
                    &data,
                    &HARDWARE_MEASUREMENT_BYTES,
                    policy,
                    self.vmpl,
                );
                (report, Some(vcek))
            }
            PlatformKind::Tdx => {
                let (quote, collateral) =
                    self.hardware
                        .tdx_quote(&data, &HARDWARE_MEASUREMENT_BYTES, self.debug);
                (quote, Some(collateral))
            }
            PlatformKind::Sgx => {
                let (quote, collateral) =
                    self.hardware
                        .sgx_quote(&data, &SGX_MEASUREMENT_BYTES, self.debug);
                (quote, Some(collateral))
            }
            _ => (
                self.hardware.nitro_document(
                    &data,
                    &HARDWARE_MEASUREMENT_BYTES,
                    self.debug,
                    OffsetDateTime::now_utc(),
                ),
                None,
            ),
        };
        let endorsements = endorsement
            .filter(|_| self.with_endorsement)
            .map(|bytes| engine.encode(bytes))
            .into_iter()
            .collect();
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
