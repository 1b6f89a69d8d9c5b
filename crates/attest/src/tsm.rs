//! configfs-tsm: hardware evidence from Linux's TSM report interface, for SEV-SNP and TDX
//! guests.
//!
//! Linux (6.7 and later) gives confidential guests one file-system interface to their
//! platform's attestation reports, whatever the vendor (kernel documentation:
//! `Documentation/ABI/testing/configfs-tsm-report`, formerly `configfs-tsm`), under
//! [`DEFAULT_REPORT_ROOT`]:
//!
//! - `mkdir <root>/<name>` makes a report entry; its attributes appear with it;
//! - writing up to 64 bytes to `inblob` sets the report data;
//! - reading `outblob` returns the report the platform made for that report data: the SEV-SNP
//!   attestation report (`provider` `sev_guest`) or the TDX quote (`tdx_guest`);
//! - reading `auxblob` (SEV-SNP) returns the certificate table the host supplied with it
//!   (GHCB specification, "SNP Extended Guest Request": GUID-indexed VCEK or VLEK, ASK, ARK);
//! - `generation` counts the writes to the entry, so that a reader can tell whether someone
//!   else wrote between its write and its read;
//! - `rmdir` removes the entry.
//!
//! [`TsmPlatform`] is a [`Platform`] over it. [`TsmPlatform::open`] checks `provider` against
//! the platform kind and takes one probe report (report data all zero) to learn the
//! measurement: the SEV-SNP launch measurement, or the TDX measurement
//! ([`crate::dcap::tdx_measurement`]). [`Platform::evidence`] then, for each request, in a new
//! entry of its own (its name is random, but the directory can be listed: the generation check
//! below, not the name, is what detects another writer):
//!
//! 1. reads `provider` and refuses any but the kind's ([`TsmError::ProviderMismatch`]);
//! 2. reads `generation`, writes [`crate::binding::report_data`] of the request to `inblob`,
//!    reads `outblob` (at most [`MAX_OUTBLOB_LEN`] bytes, [`TsmError::TooLarge`]) and, for
//!    SEV-SNP, `auxblob` (at most [`MAX_AUXBLOB_LEN`]), reads `generation` again and requires
//!    exactly one write in between; otherwise another writer raced it, and it tries again in a
//!    new entry, at most [`MAX_ATTEMPTS`] times in all ([`TsmError::GenerationRace`]);
//! 3. removes the entry (also when a check failed);
//! 4. parses the report (SEV-SNP: [`AttestationReport::parse`]; TDX: a version 4 or 5 quote
//!    of a TD, [`TsmError::MalformedReport`]) and requires that it carries the report data it
//!    asked for ([`TsmError::ReportDataMismatch`]) and the measurement of the probe
//!    ([`TsmError::MeasurementChanged`]): a buggy or hostile provider is refused here rather
//!    than by the attestation service later;
//! 5. for SEV-SNP, takes from the certificate table the endorsement the report names as its
//!    signer (VCEK or VLEK), if the host supplied one ([`parse_certificate_table`],
//!    [`TsmError::MalformedCertificateTable`]);
//! 6. returns [`HardwareEvidence`]: the report, then that endorsement and the extra
//!    endorsements given to [`TsmPlatform::open`] (for TDX, say, DCAP collateral).
//!
//! It writes no option (`privlevel`, `service_provider`): reports are requested at the
//! provider's default privilege level, VMPL 0 for an SEV-SNP guest without an SVSM.
//!
//! None of these checks makes the report trustworthy: the verifier checks its signature and
//! chain ([`crate::sev_snp::verify_report`]). They make a broken or hostile provider fail here,
//! with a reason, instead of producing evidence that fails later.
//!
//! On a guest with the real interface this is the real call: the report comes from the AMD
//! Secure Processor or the TDX module through the kernel. Tests run the same code against a
//! directory laid out like the interface, with a fake "kernel" that writes what the real one
//! would (reports made by `crate::testing::TestHardware`).

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use ring::rand::SecureRandom as _;

use crate::platform::{
    HARDWARE_EVIDENCE_FORMAT, HardwareEvidence, MAX_ENDORSEMENT_LEN, MAX_ENDORSEMENTS,
};
use crate::sev_snp::{AttestationReport, EndorsementKind};
use crate::{
    AttestError, EvidenceRequest, Measurement, Platform, PlatformEvidence, PlatformKind,
    binding::REPORT_DATA_LEN,
};

/// Where Linux mounts the TSM report interface.
pub const DEFAULT_REPORT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// The largest `outblob` read, in bytes. An SEV-SNP report is 1184 bytes; a TDX quote with its
/// PCK certificate chain about 5 KiB. Stops a hostile provider from making the runtime read
/// (and send on) an unbounded blob.
pub const MAX_OUTBLOB_LEN: usize = 16 * 1024;
/// The largest `auxblob` read, in bytes. The kernel's buffer for the SEV-SNP certificate table
/// is 16 KiB (a VCEK, an ASK and an ARK take about 4.5 KiB); twice that leaves room. Stops a
/// hostile host from making the runtime read an unbounded blob.
pub const MAX_AUXBLOB_LEN: usize = 32 * 1024;
/// The most entries used for one report: a first try and two more if another writer raced
/// (see [`TsmError::GenerationRace`]). Bounds the work a process writing into our entries can
/// cause.
pub const MAX_ATTEMPTS: usize = 3;
/// The largest `provider` or `generation` read, in bytes: a name or a decimal number and a
/// newline.
const MAX_ATTRIBUTE_TEXT_LEN: usize = 64;

/// `provider` of SEV-SNP guests (the `sev-guest` driver).
pub const PROVIDER_SEV_SNP: &str = "sev_guest";
/// `provider` of TDX guests (the `tdx-guest` driver).
pub const PROVIDER_TDX: &str = "tdx_guest";

/// The GUID of a VCEK in the SEV-SNP certificate table, `63da758d-e664-4564-adc5-f4b93be8accd`,
/// as the table holds it: the 16 bytes in the order of the text (RFC 4122 order, as AMD's
/// reference tools write the table with libuuid).
pub const SEV_CERT_GUID_VCEK: [u8; 16] = [
    0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];
/// The GUID of a VLEK, `a8074bc2-a25a-483e-aae6-39c045a0b8a1`.
pub const SEV_CERT_GUID_VLEK: [u8; 16] = [
    0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1,
];
/// The GUID of an ASK, `4ab7b379-bbac-4fe4-a02f-05aef327c782`.
pub const SEV_CERT_GUID_ASK: [u8; 16] = [
    0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82,
];
/// The GUID of an ARK, `c0b406a4-a803-4952-9743-3fb6014cd0ae`.
pub const SEV_CERT_GUID_ARK: [u8; 16] = [
    0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae,
];
/// Bytes of one certificate table entry: GUID, offset and length (little-endian `u32`s).
const CERT_TABLE_ENTRY_LEN: usize = 24;
/// The most entries a certificate table may have. Real tables hold three or four (VCEK or
/// VLEK, ASK, ARK, perhaps a CRL); each entry's data is copied, and entries may overlap, so
/// without this bound a table from the hypervisor of [`MAX_AUXBLOB_LEN`] bytes could make the
/// worker copy about 40 MiB.
const MAX_CERT_TABLE_ENTRIES: usize = 16;

// TDX quotes (Intel TDX DCAP Quoting Library API, appendix "Quote Format"): a 48-byte header,
// then (version 5) a body type and size, then the TD report body.
const QUOTE_HEADER_LEN: usize = 48;
const QUOTE_TEE_TYPE_TDX: u32 = 0x81;
const QUOTE_V4: u16 = 4;
const QUOTE_V5: u16 = 5;
/// Version 5: body type (`u16`) and body size (`u32`) after the header.
const QUOTE_V5_BODY_DESCRIPTOR_LEN: usize = 6;
/// Version 5 body type of a TDX 1.0 TD report body, and its size.
const QUOTE_V5_BODY_TD10: u16 = 2;
const TD10_BODY_LEN: usize = 584;
/// Version 5 body type of a TDX 1.5 TD report body, and its size.
const QUOTE_V5_BODY_TD15: u16 = 3;
const TD15_BODY_LEN: usize = 648;
/// In a TD report body: TEE_TCB_SVN 16, MRSEAM 48, MRSIGNERSEAM 48, SEAMATTRIBUTES 8,
/// TDATTRIBUTES 8, XFAM 8, then MRTD.
const TD_BODY_OFF_MRTD: usize = 136;
/// ... MRTD 48, MRCONFIGID 48, MROWNER 48, MROWNERCONFIG 48, RTMR0-3 4 × 48, then REPORTDATA.
const TD_BODY_OFF_REPORT_DATA: usize = 520;

/// The configfs-tsm interface refused a request or misbehaved; each variant names the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsmError {
    /// A [`ReadyTsm`] was asked for a second report: it holds one entry, used once.
    #[error("this prepared configfs-tsm entry has been used; it makes one report only")]
    AlreadyUsed,
    /// configfs-tsm serves SEV-SNP and TDX guests only.
    #[error("configfs-tsm serves SEV-SNP and TDX guests, not {0}")]
    UnsupportedKind(PlatformKind),
    /// `provider` is not the kind's.
    #[error("the configfs-tsm provider is {found:?}; a {kind} guest needs {expected:?}")]
    ProviderMismatch {
        /// The platform kind asked for.
        kind: PlatformKind,
        /// Its provider.
        expected: &'static str,
        /// The provider found (its first 64 characters).
        found: String,
    },
    /// An attribute is larger than its limit.
    #[error("the configfs-tsm {attribute} is larger than {max} bytes")]
    TooLarge {
        /// `outblob`, `auxblob`, `provider` or `generation`.
        attribute: &'static str,
        /// The limit.
        max: usize,
    },
    /// `generation` is not a decimal number.
    #[error("the configfs-tsm generation is not a number: {0:?}")]
    BadGeneration(String),
    /// Someone else wrote to the report entry between our write and our reads, every time.
    #[error(
        "another writer used the configfs-tsm report entry: generation {before} before our \
         write, {after} after our reads (one write expected), in each of {attempts} attempts"
    )]
    GenerationRace {
        /// `generation` before writing `inblob`, in the last attempt.
        before: u64,
        /// `generation` after reading the blobs, in the last attempt.
        after: u64,
        /// How many entries were tried.
        attempts: usize,
    },
    /// `outblob` is not a report or quote of the kind.
    #[error("the configfs-tsm outblob is not a {kind} report: {reason}")]
    MalformedReport {
        /// The platform kind.
        kind: PlatformKind,
        /// What is wrong.
        reason: String,
    },
    /// `auxblob` is not an SEV-SNP certificate table.
    #[error("the configfs-tsm auxblob is not an SEV-SNP certificate table: {0}")]
    MalformedCertificateTable(String),
    /// The report does not carry the report data written to `inblob`.
    #[error("the report carries report data {found}, not {expected} that was written to inblob")]
    ReportDataMismatch {
        /// Hex of the report data written.
        expected: String,
        /// Hex of the report data in the report.
        found: String,
    },
    /// The report's measurement differs from the probe report's.
    #[error(
        "the report's measurement is {found}, but this platform's (probed at open) is {expected}"
    )]
    MeasurementChanged {
        /// The measurement of the probe report.
        expected: Measurement,
        /// The measurement in this report.
        found: Measurement,
    },
    /// More endorsements than hardware evidence can carry.
    #[error(
        "{0} extra endorsements; hardware evidence carries at most {MAX_ENDORSEMENTS} (used when \
         the host's certificate table has none)"
    )]
    TooManyEndorsements(usize),
    /// An extra endorsement is larger than hardware evidence can carry.
    #[error("an extra endorsement is {0} bytes; at most {MAX_ENDORSEMENT_LEN} are accepted")]
    EndorsementTooLarge(usize),
}

/// What the kernel does at a step of the protocol. The real kernel does it itself, so in a
/// normal build [`TsmPlatform`] only names the step; in this crate's tests a fake kernel does it
/// on a plain directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KernelStep {
    /// An entry was made: its attributes appear.
    Created,
    /// `inblob` was written and closed: `generation` counts it, and the report is made.
    WroteInblob,
    /// The entry is about to be removed: configfs removes its attributes with it.
    Removing,
}

/// A fake kernel for tests: called at each [`KernelStep`] with the entry's path.
#[cfg(test)]
type FakeKernel = std::sync::Arc<dyn Fn(&Path, KernelStep) + Send + Sync>;

/// A [`Platform`] over Linux's configfs-tsm report interface (see the module documentation).
pub struct TsmPlatform {
    kind: PlatformKind,
    provider: &'static str,
    report_root: PathBuf,
    extra_endorsements: Vec<Vec<u8>>,
    measurement: Measurement,
    /// Makes entry names unique within this process.
    next_entry: AtomicU64,
    #[cfg(test)]
    fake_kernel: Option<FakeKernel>,
}

impl std::fmt::Debug for TsmPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsmPlatform")
            .field("kind", &self.kind)
            .field("report_root", &self.report_root)
            .field("extra_endorsements", &self.extra_endorsements.len())
            .field("measurement", &self.measurement)
            .finish_non_exhaustive()
    }
}

/// What one entry gave: the generation before writing and after reading, and the blobs.
struct Blobs {
    before: u64,
    outblob: Vec<u8>,
    auxblob: Option<Vec<u8>>,
    after: u64,
}

/// A report read from an entry, checked.
struct Report {
    outblob: Vec<u8>,
    /// The endorsement the report names as its signer, from the certificate table.
    endorsement: Option<Vec<u8>>,
    measurement: Measurement,
}

impl TsmPlatform {
    /// Opens the interface at `report_root` ([`DEFAULT_REPORT_ROOT`] on a real guest) for a
    /// guest of `kind` ([`PlatformKind::SevSnp`] or [`PlatformKind::Tdx`]): checks the
    /// provider and takes one probe report to learn the measurement. `extra_endorsements` go
    /// into every piece of evidence after the report's own endorsement.
    ///
    /// # Errors
    /// [`AttestError::Tsm`] for another kind, a provider of another kind, too many or too
    /// large extra endorsements, or a probe report that fails a check (see the module
    /// documentation); [`AttestError::Io`] if the interface cannot be used (not a
    /// confidential guest, no permission).
    pub fn open(
        kind: PlatformKind,
        report_root: PathBuf,
        extra_endorsements: Vec<Vec<u8>>,
    ) -> Result<Self, AttestError> {
        Self::unprobed(kind, report_root, extra_endorsements)?.probed()
    }

    /// [`TsmPlatform::open`] with a fake kernel acting on a plain directory.
    #[cfg(test)]
    fn open_with_fake_kernel(
        kind: PlatformKind,
        report_root: PathBuf,
        extra_endorsements: Vec<Vec<u8>>,
        kernel: FakeKernel,
    ) -> Result<Self, AttestError> {
        let mut platform = Self::unprobed(kind, report_root, extra_endorsements)?;
        platform.fake_kernel = Some(kernel);
        platform.probed()
    }

    /// The platform with its arguments checked, before the probe report.
    fn unprobed(
        kind: PlatformKind,
        report_root: PathBuf,
        extra_endorsements: Vec<Vec<u8>>,
    ) -> Result<Self, AttestError> {
        let provider = match kind {
            PlatformKind::SevSnp => PROVIDER_SEV_SNP,
            PlatformKind::Tdx => PROVIDER_TDX,
            other => return Err(TsmError::UnsupportedKind(other).into()),
        };
        if extra_endorsements.len() > MAX_ENDORSEMENTS {
            return Err(TsmError::TooManyEndorsements(extra_endorsements.len()).into());
        }
        if let Some(large) = extra_endorsements
            .iter()
            .find(|e| e.len() > MAX_ENDORSEMENT_LEN)
        {
            return Err(TsmError::EndorsementTooLarge(large.len()).into());
        }
        Ok(Self {
            kind,
            provider,
            report_root,
            extra_endorsements,
            // Replaced by the probe's in `probed`.
            measurement: Measurement::sha384([0; 48]),
            next_entry: AtomicU64::new(0),
            #[cfg(test)]
            fake_kernel: None,
        })
    }

    /// Takes the probe report (report data all zero) and keeps its measurement.
    fn probed(mut self) -> Result<Self, AttestError> {
        self.measurement = self.report(&[0; REPORT_DATA_LEN], None)?.measurement;
        Ok(self)
    }

    /// The kernel's part of a step: nothing here, the real kernel does it.
    #[cfg(not(test))]
    fn kernel(&self, _entry: &Path, _step: KernelStep) {}

    /// The kernel's part of a step: the fake kernel's, if there is one.
    #[cfg(test)]
    fn kernel(&self, entry: &Path, step: KernelStep) {
        if let Some(kernel) = &self.fake_kernel {
            kernel(entry, step);
        }
    }

    /// A name for a new entry: this process, a counter and 8 random bytes, so that no other
    /// process picks the same name by accident (one that lists the directory can still find it:
    /// the generation check is what detects its writes).
    fn entry_name(&self) -> Result<String, AttestError> {
        let mut random = [0u8; 8];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| AttestError::Random)?;
        Ok(format!(
            "{}{}-{}",
            entry_prefix(std::process::id()),
            self.next_entry.fetch_add(1, Ordering::Relaxed),
            hex::encode(random)
        ))
    }

    /// Gets a report for `report_data` and checks it (steps 1 to 5 of the module
    /// documentation); `measurement`, if given, is the one it must carry.
    fn report(
        &self,
        report_data: &[u8; REPORT_DATA_LEN],
        measurement: Option<&Measurement>,
    ) -> Result<Report, AttestError> {
        let mut last = (0, 0);
        for _ in 0..MAX_ATTEMPTS {
            let blobs = self.one_entry(report_data)?;
            if blobs.before.checked_add(1) == Some(blobs.after) {
                return self.check(report_data, measurement, blobs.outblob, blobs.auxblob);
            }
            last = (blobs.before, blobs.after);
        }
        Err(TsmError::GenerationRace {
            before: last.0,
            after: last.1,
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Makes an entry, writes `report_data`, reads the blobs and the generation before and
    /// after, and removes the entry (also on failure).
    fn one_entry(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Blobs, AttestError> {
        let path = self.make_entry()?;
        let entry = Entry {
            platform: self,
            path: path.clone(),
            removed: false,
        };
        let result = self
            .open_attributes(path)
            .and_then(|files| self.exchange(files, report_data));
        entry.remove()?;
        result
    }

    /// Steps 4 and 5 of the module documentation.
    fn check(
        &self,
        report_data: &[u8; REPORT_DATA_LEN],
        measurement: Option<&Measurement>,
        outblob: Vec<u8>,
        auxblob: Option<Vec<u8>>,
    ) -> Result<Report, AttestError> {
        let malformed = |reason: String| TsmError::MalformedReport {
            kind: self.kind,
            reason,
        };
        let (found_data, found_measurement, endorsement) = match self.kind {
            PlatformKind::SevSnp => {
                let report =
                    AttestationReport::parse(&outblob).map_err(|e| malformed(e.to_string()))?;
                let guid = match report.signing_key().map_err(|e| malformed(e.to_string()))? {
                    EndorsementKind::Vcek => SEV_CERT_GUID_VCEK,
                    EndorsementKind::Vlek => SEV_CERT_GUID_VLEK,
                };
                let endorsement = match &auxblob {
                    Some(table) => parse_certificate_table(table)?
                        .into_iter()
                        .find(|e| e.guid == guid)
                        .map(|e| e.data),
                    None => None,
                };
                (
                    report.report_data,
                    Measurement::sha384(report.measurement),
                    endorsement,
                )
            }
            _ => {
                let (measurement, data) = tdx_quote_fields(&outblob).map_err(malformed)?;
                (data, measurement, None)
            }
        };
        // Not secret: report data is public, so a plain comparison.
        if found_data != *report_data {
            return Err(TsmError::ReportDataMismatch {
                expected: hex::encode(report_data),
                found: hex::encode(found_data),
            }
            .into());
        }
        if let Some(expected) = measurement
            && *expected != found_measurement
        {
            return Err(TsmError::MeasurementChanged {
                expected: *expected,
                found: found_measurement,
            }
            .into());
        }
        Ok(Report {
            outblob,
            endorsement,
            measurement: found_measurement,
        })
    }
}

impl Platform for TsmPlatform {
    fn kind(&self) -> PlatformKind {
        self.kind
    }

    fn measurement(&self) -> Measurement {
        self.measurement
    }

    fn evidence(&self, request: &EvidenceRequest) -> Result<PlatformEvidence, AttestError> {
        let report_data = crate::binding::report_data(
            &request.nonce,
            &request.tls_public_key_sha256,
            &request.policy_hash,
            &request.computation_id,
        );
        let report = self.report(&report_data, Some(&self.measurement))?;
        Ok(self.hardware_evidence(request, report))
    }
}

/// The attributes of one report entry, opened in advance ([`TsmPlatform::prepare`]).
struct OpenedEntry {
    path: PathBuf,
    provider: fs::File,
    generation_before: fs::File,
    inblob: fs::File,
    outblob: fs::File,
    auxblob: Option<fs::File>,
    generation_after: fs::File,
}

/// A [`TsmPlatform`] with two report entries made and their attributes opened in advance, for
/// a process that can neither open files nor parse what it reads until later: the worker, which
/// hardens (its seccomp filter forbids `open`, `mkdir` and `rmdir`) before it parses anything.
/// Nothing has been read or parsed yet; [`PreparedTsm::probe`], once hardened, takes the probe
/// report through the first entry and gives the [`Platform`] ([`ReadyTsm`]), whose one report
/// goes through the second. Neither entry can be retried or removed by the worker: a raced
/// generation is an error, and the entries, named with [`entry_prefix`], are removed by the
/// process that started the worker ([`remove_entries`]).
pub struct PreparedTsm {
    platform: TsmPlatform,
    probe: OpenedEntry,
    report: OpenedEntry,
}

impl std::fmt::Debug for PreparedTsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTsm")
            .field("platform", &self.platform)
            .field("probe", &self.probe.path)
            .field("report", &self.report.path)
            .finish_non_exhaustive()
    }
}

/// The prefix of every report entry process `pid` makes: `covenant-<pid>-`.
pub fn entry_prefix(pid: u32) -> String {
    format!("covenant-{pid}-")
}

impl PreparedTsm {
    /// The platform kind.
    pub fn kind(&self) -> PlatformKind {
        self.platform.kind
    }

    /// Takes the probe report (report data all zero) through the first entry, reading and
    /// writing only its open descriptors, and learns the measurement.
    ///
    /// # Errors
    /// As [`Platform::evidence`]: a provider of another kind, a raced generation, a report that
    /// does not parse or carries other report data.
    pub fn probe(self) -> Result<ReadyTsm, AttestError> {
        let Self {
            mut platform,
            probe,
            report,
        } = self;
        platform.measurement = platform
            .report_through(probe, &[0; REPORT_DATA_LEN], None)?
            .measurement;
        Ok(ReadyTsm {
            entry: report.path.clone(),
            platform,
            files: std::sync::Mutex::new(Some(report)),
        })
    }
}

/// A probed [`PreparedTsm`]: a [`Platform`] that makes **one** report, through the entry opened
/// in advance.
pub struct ReadyTsm {
    platform: TsmPlatform,
    entry: PathBuf,
    files: std::sync::Mutex<Option<OpenedEntry>>,
}

impl std::fmt::Debug for ReadyTsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyTsm")
            .field("platform", &self.platform)
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

impl ReadyTsm {
    /// The report entry's path.
    pub fn entry(&self) -> &Path {
        &self.entry
    }
}

/// Removes the report entries under `report_root` that process `pid` made and left (see
/// [`PreparedTsm`]), and returns how many. Names come from listing the directory, so they hold
/// no `/`; `remove_dir` does not follow a symbolic link. Every entry is tried; the first error
/// is returned.
///
/// # Errors
/// [`AttestError::Io`] if the directory cannot be listed or an entry cannot be removed.
pub fn remove_entries(report_root: &Path, pid: u32) -> Result<usize, AttestError> {
    let prefix = entry_prefix(pid);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AttestError::Io { path, source }
    };
    let mut removed = 0;
    let mut first_error = None;
    for entry in fs::read_dir(report_root).map_err(io(report_root))? {
        let entry = match entry.map_err(io(report_root)) {
            Ok(entry) => entry,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let path = entry.path();
            match fs::remove_dir(&path).map_err(io(&path)) {
                Ok(()) => removed += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    first_error.map_or(Ok(removed), Err)
}

impl TsmPlatform {
    /// Makes two report entries now and opens their attributes, reading nothing, so that the
    /// probe and the evidence can later be taken without opening anything ([`PreparedTsm`]).
    ///
    /// # Errors
    /// [`AttestError::Tsm`] for another kind or too many or too large extra endorsements;
    /// [`AttestError::Io`] if an entry cannot be made or an attribute opened (not a
    /// confidential guest, no permission).
    pub fn prepare(
        kind: PlatformKind,
        report_root: PathBuf,
        extra_endorsements: Vec<Vec<u8>>,
    ) -> Result<PreparedTsm, AttestError> {
        Self::unprobed(kind, report_root, extra_endorsements)?.prepared()
    }

    /// [`TsmPlatform::prepare`] with a fake kernel acting on a plain directory.
    #[cfg(test)]
    fn prepare_with_fake_kernel(
        kind: PlatformKind,
        report_root: PathBuf,
        extra_endorsements: Vec<Vec<u8>>,
        kernel: FakeKernel,
    ) -> Result<PreparedTsm, AttestError> {
        let mut platform = Self::unprobed(kind, report_root, extra_endorsements)?;
        platform.fake_kernel = Some(kernel);
        platform.prepared()
    }

    fn prepared(self) -> Result<PreparedTsm, AttestError> {
        let probe = self.open_entry()?;
        let report = self.open_entry()?;
        Ok(PreparedTsm {
            platform: self,
            probe,
            report,
        })
    }

    /// Makes a report entry and opens its attributes.
    fn open_entry(&self) -> Result<OpenedEntry, AttestError> {
        let entry = self.make_entry()?;
        self.open_attributes(entry)
    }

    /// Makes a report entry (`mkdir`); its attributes appear with it.
    fn make_entry(&self) -> Result<PathBuf, AttestError> {
        let entry = self.report_root.join(self.entry_name()?);
        fs::create_dir(&entry).map_err(|source| AttestError::Io {
            path: entry.clone(),
            source,
        })?;
        self.kernel(&entry, KernelStep::Created);
        Ok(entry)
    }

    /// Opens the attributes of report entry `entry`; configfs fills an attribute's content at
    /// its first read, so descriptors opened now read what the report made later.
    fn open_attributes(&self, entry: PathBuf) -> Result<OpenedEntry, AttestError> {
        let open = |name: &str, write: bool| {
            let path = entry.join(name);
            fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open(&path)
                .map_err(|source| AttestError::Io { path, source })
        };
        let auxblob = match self.kind {
            PlatformKind::SevSnp => match open("auxblob", false) {
                Ok(file) => Some(file),
                Err(AttestError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    None
                }
                Err(e) => return Err(e),
            },
            _ => None,
        };
        Ok(OpenedEntry {
            provider: open("provider", false)?,
            generation_before: open("generation", false)?,
            inblob: open("inblob", true)?,
            outblob: open("outblob", false)?,
            auxblob,
            generation_after: open("generation", false)?,
            path: entry,
        })
    }

    /// One report through an entry opened in advance, using only its descriptors: steps 1, 2
    /// (without a retry), 4 and 5 of the module documentation.
    fn report_through(
        &self,
        files: OpenedEntry,
        report_data: &[u8; REPORT_DATA_LEN],
        measurement: Option<&Measurement>,
    ) -> Result<Report, AttestError> {
        let blobs = self.exchange(files, report_data)?;
        if blobs.before.checked_add(1) != Some(blobs.after) {
            return Err(TsmError::GenerationRace {
                before: blobs.before,
                after: blobs.after,
                attempts: 1,
            }
            .into());
        }
        self.check(report_data, measurement, blobs.outblob, blobs.auxblob)
    }

    /// Steps 1 and 2 of the module documentation through an entry's open descriptors: checks
    /// the provider, reads the generation, writes `report_data`, reads the blobs and the
    /// generation again. Every descriptor is closed on return.
    fn exchange(
        &self,
        files: OpenedEntry,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<Blobs, AttestError> {
        let at = |name: &str| files.path.join(name);
        let provider = read_file_text(files.provider, &at("provider"), "provider")?;
        if provider != self.provider {
            return Err(TsmError::ProviderMismatch {
                kind: self.kind,
                expected: self.provider,
                found: provider.chars().take(64).collect(),
            }
            .into());
        }
        let before = parse_generation(&read_file_text(
            files.generation_before,
            &at("generation"),
            "generation",
        )?)?;
        let mut inblob = files.inblob;
        inblob
            .write_all(report_data)
            .map_err(|source| AttestError::Io {
                path: at("inblob"),
                source,
            })?;
        // configfs takes the write when the file is closed.
        drop(inblob);
        self.kernel(&files.path, KernelStep::WroteInblob);
        let outblob = read_file_bounded(files.outblob, &at("outblob"), "outblob", MAX_OUTBLOB_LEN)?;
        let auxblob = match files.auxblob {
            Some(file) => Some(read_file_bounded(
                file,
                &at("auxblob"),
                "auxblob",
                MAX_AUXBLOB_LEN,
            )?)
            .filter(|b| !b.is_empty()),
            None => None,
        };
        let after = parse_generation(&read_file_text(
            files.generation_after,
            &at("generation"),
            "generation",
        )?)?;
        Ok(Blobs {
            before,
            outblob,
            auxblob,
            after,
        })
    }

    /// [`HardwareEvidence`] for `request` from a checked report.
    fn hardware_evidence(&self, request: &EvidenceRequest, report: Report) -> PlatformEvidence {
        let engine = &base64::engine::general_purpose::STANDARD;
        // The report's own endorsement (from the host's certificate table) if it came with one,
        // else the extra ones given at open (at most `MAX_ENDORSEMENTS`).
        let endorsements = match &report.endorsement {
            Some(own) => vec![engine.encode(own)],
            None => self
                .extra_endorsements
                .iter()
                .map(|e| engine.encode(e))
                .collect(),
        };
        PlatformEvidence::Hardware(HardwareEvidence {
            format: HARDWARE_EVIDENCE_FORMAT.to_owned(),
            platform: self.kind,
            policy_hash: request.policy_hash,
            computation_id: request.computation_id.clone(),
            tls_public_key_sha256: request.tls_public_key_sha256,
            nonce: request.nonce,
            evidence: engine.encode(&report.outblob),
            endorsements,
        })
    }
}

impl Platform for ReadyTsm {
    fn kind(&self) -> PlatformKind {
        self.platform.kind
    }

    fn measurement(&self) -> Measurement {
        self.platform.measurement
    }

    fn evidence(&self, request: &EvidenceRequest) -> Result<PlatformEvidence, AttestError> {
        let report_data = crate::binding::report_data(
            &request.nonce,
            &request.tls_public_key_sha256,
            &request.policy_hash,
            &request.computation_id,
        );
        let files = self
            .files
            .lock()
            .map_err(|_| TsmError::AlreadyUsed)?
            .take()
            .ok_or(TsmError::AlreadyUsed)?;
        let report =
            self.platform
                .report_through(files, &report_data, Some(&self.platform.measurement))?;
        Ok(self.platform.hardware_evidence(request, report))
    }
}

/// Reads an open attribute, refusing more than `max` bytes.
fn read_file_bounded(
    file: fs::File,
    path: &Path,
    name: &'static str,
    max: usize,
) -> Result<Vec<u8>, AttestError> {
    let mut bytes = Vec::new();
    file.take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| AttestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() > max {
        return Err(TsmError::TooLarge {
            attribute: name,
            max,
        }
        .into());
    }
    Ok(bytes)
}

/// Reads an open text attribute without its trailing newline.
fn read_file_text(file: fs::File, path: &Path, name: &'static str) -> Result<String, AttestError> {
    let bytes = read_file_bounded(file, path, name, MAX_ATTRIBUTE_TEXT_LEN)?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_owned())
}

fn parse_generation(text: &str) -> Result<u64, AttestError> {
    text.parse()
        .map_err(|_| TsmError::BadGeneration(text.chars().take(64).collect()).into())
}

/// A report entry; removed when dropped if [`Entry::remove`] was not called.
struct Entry<'p> {
    platform: &'p TsmPlatform,
    path: PathBuf,
    removed: bool,
}

impl Entry<'_> {
    /// Removes the entry (`rmdir`).
    fn remove(mut self) -> Result<(), AttestError> {
        self.removed = true;
        self.platform.kernel(&self.path, KernelStep::Removing);
        fs::remove_dir(&self.path).map_err(|source| AttestError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if !self.removed {
            self.platform.kernel(&self.path, KernelStep::Removing);
            // Best effort on a path that already failed: the first error is the one reported.
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// One entry of an SEV-SNP certificate table: a GUID naming what it is and its bytes (for the
/// certificates, DER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateTableEntry {
    /// What it is: [`SEV_CERT_GUID_VCEK`], [`SEV_CERT_GUID_VLEK`], [`SEV_CERT_GUID_ASK`],
    /// [`SEV_CERT_GUID_ARK`] or another.
    pub guid: [u8; 16],
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The entries of an SEV-SNP certificate table (GHCB specification, "SNP Extended Guest
/// Request"), in table order: 24-byte entries (GUID, then offset and length as
/// little-endian `u32`, the offset counted from the table's start) up to an all-zero entry,
/// then the data they point into.
///
/// # Errors
/// [`TsmError::MalformedCertificateTable`] if there is no terminating entry, an entry points
/// outside the data, is empty, or a GUID appears twice.
pub fn parse_certificate_table(table: &[u8]) -> Result<Vec<CertificateTableEntry>, TsmError> {
    let malformed = TsmError::MalformedCertificateTable;
    let mut raw = Vec::new();
    let mut chunks = table.chunks_exact(CERT_TABLE_ENTRY_LEN);
    loop {
        let Some(entry) = chunks.next() else {
            return Err(malformed("no all-zero entry ends the table".into()));
        };
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        let (guid, rest) = entry.split_at(16);
        let (offset, length) = rest.split_at(4);
        let word = |b: &[u8]| {
            <[u8; 4]>::try_from(b)
                .map(u32::from_le_bytes)
                .map(|w| usize::try_from(w).unwrap_or(usize::MAX))
        };
        let guid = <[u8; 16]>::try_from(guid).map_err(|e| malformed(e.to_string()))?;
        let offset = word(offset).map_err(|e| malformed(e.to_string()))?;
        let length = word(length).map_err(|e| malformed(e.to_string()))?;
        if raw.len() == MAX_CERT_TABLE_ENTRIES {
            return Err(malformed(format!(
                "more than {MAX_CERT_TABLE_ENTRIES} entries"
            )));
        }
        raw.push((guid, offset, length));
    }
    let data_start = (raw.len() + 1) * CERT_TABLE_ENTRY_LEN;
    let mut entries: Vec<CertificateTableEntry> = Vec::with_capacity(raw.len());
    for (guid, offset, length) in raw {
        let name = uuid_text(&guid);
        if entries.iter().any(|e| e.guid == guid) {
            return Err(malformed(format!("{name} appears twice")));
        }
        let end = offset
            .checked_add(length)
            .filter(|&end| offset >= data_start && length > 0 && end <= table.len())
            .ok_or_else(|| {
                malformed(format!(
                    "{name} is {length} bytes at offset {offset}, outside the {} bytes of data \
                     after the entries",
                    table.len().saturating_sub(data_start)
                ))
            })?;
        entries.push(CertificateTableEntry {
            guid,
            data: table[offset..end].to_vec(),
        });
    }
    Ok(entries)
}

/// A GUID's text form (RFC 4122 byte order).
fn uuid_text(guid: &[u8; 16]) -> String {
    let hex = hex::encode(guid);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The measurement ([`crate::dcap::tdx_measurement`]) and report data of a TDX quote (version
/// 4, or version 5 with a TDX 1.0 or 1.5 TD report body). Parses the layout only; nothing is
/// verified.
fn tdx_quote_fields(quote: &[u8]) -> Result<(Measurement, [u8; REPORT_DATA_LEN]), String> {
    let u16_at = |at: usize| {
        quote
            .get(at..at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_le_bytes)
    };
    let u32_at = |at: usize| {
        quote
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
    };
    let short = || format!("{} bytes is too short for a TDX quote", quote.len());
    let version = u16_at(0).ok_or_else(short)?;
    let tee_type = u32_at(4).ok_or_else(short)?;
    if tee_type != QUOTE_TEE_TYPE_TDX {
        return Err(format!(
            "its TEE type is {tee_type:#x}, not TDX ({QUOTE_TEE_TYPE_TDX:#x})"
        ));
    }
    let (body_start, body_len) = match version {
        QUOTE_V4 => (QUOTE_HEADER_LEN, TD10_BODY_LEN),
        QUOTE_V5 => {
            let body_type = u16_at(QUOTE_HEADER_LEN).ok_or_else(short)?;
            let body_size = u32_at(QUOTE_HEADER_LEN + 2).ok_or_else(short)?;
            let body_len = match body_type {
                QUOTE_V5_BODY_TD10 => TD10_BODY_LEN,
                QUOTE_V5_BODY_TD15 => TD15_BODY_LEN,
                other => return Err(format!("its body type is {other}, not a TD report")),
            };
            if usize::try_from(body_size).ok() != Some(body_len) {
                return Err(format!(
                    "its body size is {body_size}, but a body of type {body_type} is {body_len}"
                ));
            }
            (QUOTE_HEADER_LEN + QUOTE_V5_BODY_DESCRIPTOR_LEN, body_len)
        }
        other => return Err(format!("quote version {other} is not 4 or 5")),
    };
    let body = quote
        .get(body_start..body_start + body_len)
        .ok_or_else(short)?;
    let register = |index: usize| {
        let at = TD_BODY_OFF_MRTD + index * 48;
        body.get(at..at + 48)
            .and_then(|b| <[u8; 48]>::try_from(b).ok())
            .ok_or_else(short)
    };
    // MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, RTMR0..3: eight registers in a row.
    let measurement = crate::dcap::tdx_measurement(
        &register(0)?,
        &register(1)?,
        &register(2)?,
        &register(3)?,
        &[register(4)?, register(5)?, register(6)?, register(7)?],
    );
    let report_data = body
        .get(TD_BODY_OFF_REPORT_DATA..TD_BODY_OFF_REPORT_DATA + REPORT_DATA_LEN)
        .and_then(|b| <[u8; REPORT_DATA_LEN]>::try_from(b).ok())
        .ok_or_else(short)?;
    Ok((measurement, report_data))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};

    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::*;
    use crate::sev_snp::{SevSnpError, SevSnpOptions, verify_report, verify_report_with};
    use crate::testing::{TEST_VCEK_DER, TestHardware};
    use crate::{Digest, Nonce};

    /// A genuine TDX quote (version 4) and its measurement (`dcap::tdx_measurement`), computed
    /// independently with python: `sha384(b"covenant-tdx-measurement/1\0" + body[136:520])`.
    const TDX_QUOTE: &[u8] = include_bytes!("../tests/vectors/tdx/dcap-qvl-tdx_quote");
    const TDX_QUOTE_MEASUREMENT: &str = "8a0bd4ce1954b7092c89f190e19a538bf6df47c3599decd4ced7431f102779f808cb96080b0f6ebedb23887e2a829ef5";
    /// A genuine version-5 quote (TDX 1.5 body) and its measurement and report data.
    const TDX_QUOTE_V5: &[u8] = include_bytes!("../tests/vectors/tdx/dcap-qvl-tdx_quote_outdated");
    const TDX_QUOTE_V5_MEASUREMENT: &str = "c8488de99226cd9a5a3b76ea92cdbd78dfe761bcd1452457b046e6be0f53eb28bf594148afb79c3cda0ea1deffe2a5cb";
    const TDX_QUOTE_V5_REPORT_DATA: &str = "d2142b643598eb5fae2bc8529dd79a558b29f868ccbb6531cb28dab9dce477280000000000000000000000000000000000000000000000000000000000000000";
    /// Oak's genuine version-4 quote.
    const OAK_TDX_QUOTE: &[u8] = include_bytes!("../tests/vectors/tdx/oak-tdx-oc-quote.bin");
    const OAK_TDX_QUOTE_MEASUREMENT: &str = "86f8c3ba98d8103eadf3f2db15937bdd94a6c74461ecdcc9dd9ec8823ac0008c4c0dd9c13616c16cd7c59e83e7bfeba2";

    const MEASUREMENT: [u8; 48] = [0x4D; 48];
    const POLICY: u64 = 0x3_0000;
    const AT: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);
    /// Every attribute the fake kernel makes.
    const ATTRIBUTES: [&str; 5] = ["provider", "generation", "inblob", "outblob", "auxblob"];

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Behaviour {
        Honest,
        /// Another writer writes once between our write and our reads, in the first entry only.
        RacesOnce,
        /// ... in every entry.
        RacesAlways,
        /// Reports other report data than was written.
        IgnoresInblob,
        /// Reports another measurement.
        ChangesMeasurement,
        /// An outblob one byte over the limit.
        OversizeOutblob,
        /// No certificate table.
        NoCertificates,
        /// A certificate table cut short.
        BrokenCertificates,
    }

    /// Writes, on a plain directory, what the kernel writes in configfs.
    struct FakeKernel {
        hw: TestHardware,
        kind: PlatformKind,
        provider: &'static str,
        behaviour: Mutex<Behaviour>,
        entries_made: AtomicUsize,
        races: AtomicUsize,
    }

    impl FakeKernel {
        fn new(kind: PlatformKind, provider: &'static str) -> Arc<Self> {
            Arc::new(Self {
                hw: TestHardware::new(),
                kind,
                provider,
                behaviour: Mutex::new(Behaviour::Honest),
                entries_made: AtomicUsize::new(0),
                races: AtomicUsize::new(0),
            })
        }

        fn set(&self, behaviour: Behaviour) {
            *self.behaviour.lock().unwrap() = behaviour;
        }

        fn step(&self, entry: &Path, step: KernelStep) {
            let write = |name: &str, bytes: &[u8]| fs::write(entry.join(name), bytes).unwrap();
            let behaviour = *self.behaviour.lock().unwrap();
            match step {
                KernelStep::Created => {
                    self.entries_made.fetch_add(1, Ordering::SeqCst);
                    write("provider", format!("{}\n", self.provider).as_bytes());
                    write("generation", b"0\n");
                    write("inblob", b"");
                    write("outblob", b"");
                    if self.kind == PlatformKind::SevSnp {
                        write("auxblob", b"");
                    }
                }
                KernelStep::WroteInblob => {
                    let inblob: [u8; 64] =
                        fs::read(entry.join("inblob")).unwrap().try_into().unwrap();
                    let raced = match behaviour {
                        Behaviour::RacesAlways => true,
                        Behaviour::RacesOnce => self.races.fetch_add(1, Ordering::SeqCst) == 0,
                        _ => false,
                    };
                    write("generation", if raced { b"2\n" } else { b"1\n" });
                    let report_data = match behaviour {
                        Behaviour::IgnoresInblob => [0xEE; 64],
                        _ => inblob,
                    };
                    let measurement = match behaviour {
                        Behaviour::ChangesMeasurement => [0x99; 48],
                        _ => MEASUREMENT,
                    };
                    let outblob = match (behaviour, self.kind) {
                        (Behaviour::OversizeOutblob, _) => vec![0; MAX_OUTBLOB_LEN + 1],
                        (_, PlatformKind::SevSnp) => {
                            self.hw.sev_snp_report(&report_data, &measurement, POLICY).0
                        }
                        _ => tdx_quote_with(&report_data),
                    };
                    write("outblob", &outblob);
                    if self.kind == PlatformKind::SevSnp {
                        let table = self.hw.sev_snp_certificate_table();
                        match behaviour {
                            Behaviour::NoCertificates => {}
                            Behaviour::BrokenCertificates => write("auxblob", &table[..40]),
                            _ => write("auxblob", &table),
                        }
                    }
                }
                KernelStep::Removing => {
                    // configfs removes the attributes with the entry.
                    for name in ATTRIBUTES {
                        let _ = fs::remove_file(entry.join(name));
                    }
                }
            }
        }
    }

    /// The genuine TDX quote with `report_data` in place of its own (its signature no longer
    /// verifies; the platform does not verify it).
    fn tdx_quote_with(report_data: &[u8; 64]) -> Vec<u8> {
        let mut quote = TDX_QUOTE.to_vec();
        let at = QUOTE_HEADER_LEN + TD_BODY_OFF_REPORT_DATA;
        quote[at..at + 64].copy_from_slice(report_data);
        quote
    }

    fn open(
        kernel: &Arc<FakeKernel>,
        root: &Path,
        extra: Vec<Vec<u8>>,
    ) -> Result<TsmPlatform, AttestError> {
        let fake = Arc::clone(kernel);
        TsmPlatform::open_with_fake_kernel(
            kernel.kind,
            root.to_path_buf(),
            extra,
            Arc::new(move |entry, step| fake.step(entry, step)),
        )
    }

    fn request() -> EvidenceRequest {
        EvidenceRequest::new(Digest([3; 32]), "computation-1", b"tls key", Nonce([1; 32])).unwrap()
    }

    fn hardware(evidence: PlatformEvidence) -> HardwareEvidence {
        match evidence {
            PlatformEvidence::Hardware(h) => h,
            other => panic!("not hardware evidence: {other:?}"),
        }
    }

    fn assert_no_entries(root: &Path) {
        let left: Vec<_> = fs::read_dir(root).unwrap().collect();
        assert!(left.is_empty(), "entries left behind: {left:?}");
    }

    fn tsm_error(result: Result<impl std::fmt::Debug, AttestError>) -> TsmError {
        match result {
            Err(AttestError::Tsm(e)) => e,
            other => panic!("not a configfs-tsm refusal: {other:?}"),
        }
    }

    fn prepare(kernel: &Arc<FakeKernel>, root: &Path) -> Result<PreparedTsm, AttestError> {
        let fake = Arc::clone(kernel);
        TsmPlatform::prepare_with_fake_kernel(
            kernel.kind,
            root.to_path_buf(),
            Vec::new(),
            Arc::new(move |entry, step| fake.step(entry, step)),
        )
    }

    #[test]
    fn a_prepared_platform_reads_nothing_until_probed_then_reports_once() {
        for (kind, provider) in [
            (PlatformKind::SevSnp, PROVIDER_SEV_SNP),
            (PlatformKind::Tdx, PROVIDER_TDX),
        ] {
            let root = tempfile::tempdir().unwrap();
            let kernel = FakeKernel::new(kind, provider);
            let prepared = prepare(&kernel, root.path()).unwrap();
            // Two entries made and opened; nothing written to either, so nothing read or
            // parsed (what the worker does before it hardens).
            assert_eq!(kernel.entries_made.load(Ordering::SeqCst), 2);
            for entry in fs::read_dir(root.path()).unwrap() {
                let inblob = fs::read(entry.unwrap().path().join("inblob")).unwrap();
                assert!(inblob.is_empty());
            }
            // Hardened, it probes through the first entry and reports through the second,
            // opening nothing.
            let prepared = prepared.probe().unwrap();
            assert_eq!(prepared.kind(), kind);
            let request = request();
            let evidence = hardware(prepared.evidence(&request).unwrap());
            let (report, endorsements) = evidence.decoded_parts().unwrap();
            if kind == PlatformKind::SevSnp {
                let verified = verify_report_with(
                    &kernel.hw.anchors(),
                    &report,
                    &endorsements[0],
                    AT,
                    &SevSnpOptions::default(),
                )
                .unwrap();
                assert_eq!(verified.report_data(), &evidence.expected_report_data());
            } else {
                let (measurement, data) = tdx_quote_fields(&report).unwrap();
                assert_eq!(data, evidence.expected_report_data());
                assert_eq!(measurement, prepared.measurement());
            }
            // One report only.
            assert!(matches!(
                prepared.evidence(&request),
                Err(AttestError::Tsm(TsmError::AlreadyUsed))
            ));
            // The entry stays (the worker cannot rmdir) until its starter removes it.
            assert!(prepared.entry().is_dir());
            let name = prepared
                .entry()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(name.starts_with(&entry_prefix(std::process::id())));
            for entry in fs::read_dir(root.path()).unwrap() {
                let entry = entry.unwrap().path();
                for attribute in ATTRIBUTES {
                    let _ = fs::remove_file(entry.join(attribute));
                }
            }
            assert_eq!(remove_entries(root.path(), std::process::id()).unwrap(), 2);
            assert_no_entries(root.path());
        }
    }

    #[test]
    fn a_prepared_platform_refuses_a_raced_generation_and_a_report_for_other_data() {
        for behaviour in [Behaviour::RacesAlways, Behaviour::IgnoresInblob] {
            let root = tempfile::tempdir().unwrap();
            let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_SEV_SNP);
            // In the probe...
            kernel.set(behaviour);
            let refused = prepare(&kernel, root.path()).unwrap().probe().unwrap_err();
            assert!(
                matches!(
                    refused,
                    AttestError::Tsm(
                        TsmError::GenerationRace { attempts: 1, .. }
                            | TsmError::ReportDataMismatch { .. }
                    )
                ),
                "{behaviour:?}: {refused}"
            );
            // ...and in the report.
            kernel.set(Behaviour::Honest);
            let prepared = prepare(&kernel, root.path()).unwrap().probe().unwrap();
            kernel.set(behaviour);
            let refused = prepared.evidence(&request()).unwrap_err();
            assert!(
                matches!(
                    refused,
                    AttestError::Tsm(
                        TsmError::GenerationRace { attempts: 1, .. }
                            | TsmError::ReportDataMismatch { .. }
                    )
                ),
                "{behaviour:?}: {refused}"
            );
        }
    }

    #[test]
    fn sev_snp_evidence_verifies_end_to_end_under_the_test_roots() {
        let root = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_SEV_SNP);
        let platform = open(&kernel, root.path(), vec![b"extra".to_vec()]).unwrap();
        assert_eq!(platform.kind(), PlatformKind::SevSnp);
        assert_eq!(platform.measurement(), Measurement::sha384(MEASUREMENT));
        assert_no_entries(root.path());

        let request = request();
        let evidence = hardware(platform.evidence(&request).unwrap());
        assert_no_entries(root.path());
        assert_eq!(evidence.format, HARDWARE_EVIDENCE_FORMAT);
        assert_eq!(evidence.platform, PlatformKind::SevSnp);
        assert_eq!(evidence.nonce, request.nonce);
        assert_eq!(evidence.policy_hash, request.policy_hash);
        assert_eq!(evidence.computation_id, request.computation_id);
        assert_eq!(
            evidence.tls_public_key_sha256,
            request.tls_public_key_sha256
        );
        let (report, endorsements) = evidence.decoded_parts().unwrap();
        // The VCEK from the certificate table; the extra endorsement is for reports without one.
        assert_eq!(endorsements, [TEST_VCEK_DER.to_vec()]);
        let verified = verify_report_with(
            &kernel.hw.anchors(),
            &report,
            &endorsements[0],
            AT,
            &SevSnpOptions::default(),
        )
        .unwrap();
        assert_eq!(verified.report_data(), &evidence.expected_report_data());
        assert_eq!(verified.measurement(), platform.measurement());
        // The production verifier, with the pinned roots, refuses the test chip.
        assert!(matches!(
            verify_report(&report, &endorsements[0], AT, &SevSnpOptions::default()),
            Err(SevSnpError::UnknownIssuer { .. })
        ));
        // The evidence survives its JSON round trip.
        let json = serde_json::to_string(&PlatformEvidence::Hardware(evidence.clone())).unwrap();
        let back: PlatformEvidence = serde_json::from_str(&json).unwrap();
        assert_eq!(back, PlatformEvidence::Hardware(evidence));
        // One entry for the probe, one for the evidence.
        assert_eq!(kernel.entries_made.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn tdx_evidence_carries_the_quote_and_its_registers_make_the_measurement() {
        let root = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(PlatformKind::Tdx, PROVIDER_TDX);
        let collateral = b"{\"collateral\": true}".to_vec();
        let platform = open(&kernel, root.path(), vec![collateral.clone()]).unwrap();
        assert_eq!(platform.measurement().to_hex(), TDX_QUOTE_MEASUREMENT);
        let evidence = hardware(platform.evidence(&request()).unwrap());
        assert_no_entries(root.path());
        assert_eq!(evidence.platform, PlatformKind::Tdx);
        let (quote, endorsements) = evidence.decoded_parts().unwrap();
        assert_eq!(endorsements, [collateral]);
        let (measurement, report_data) = tdx_quote_fields(&quote).unwrap();
        assert_eq!(measurement.to_hex(), TDX_QUOTE_MEASUREMENT);
        assert_eq!(report_data, evidence.expected_report_data());
    }

    #[test]
    fn a_provider_of_another_kind_or_an_unsupported_kind_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_TDX);
        assert_eq!(
            tsm_error(open(&kernel, root.path(), vec![])),
            TsmError::ProviderMismatch {
                kind: PlatformKind::SevSnp,
                expected: PROVIDER_SEV_SNP,
                found: PROVIDER_TDX.into(),
            }
        );
        assert_no_entries(root.path());
        let kernel = FakeKernel::new(PlatformKind::Tdx, PROVIDER_SEV_SNP);
        assert!(matches!(
            tsm_error(open(&kernel, root.path(), vec![])),
            TsmError::ProviderMismatch {
                kind: PlatformKind::Tdx,
                ..
            }
        ));
        for kind in [
            PlatformKind::Nitro,
            PlatformKind::Software,
            PlatformKind::Sgx,
        ] {
            assert_eq!(
                tsm_error(TsmPlatform::open(kind, root.path().to_path_buf(), vec![])),
                TsmError::UnsupportedKind(kind)
            );
        }
        assert_no_entries(root.path());
    }

    #[test]
    fn a_generation_race_is_retried_then_refused() {
        let root = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_SEV_SNP);
        let platform = open(&kernel, root.path(), vec![]).unwrap();
        let made = kernel.entries_made.load(Ordering::SeqCst);

        // Raced once: the second entry gives the report.
        kernel.set(Behaviour::RacesOnce);
        let evidence = hardware(platform.evidence(&request()).unwrap());
        assert_eq!(kernel.entries_made.load(Ordering::SeqCst), made + 2);
        let (report, _) = evidence.decoded_parts().unwrap();
        let parsed = AttestationReport::parse(&report).unwrap();
        assert_eq!(parsed.report_data, evidence.expected_report_data());
        assert_no_entries(root.path());

        // Raced every time: refused after MAX_ATTEMPTS entries.
        kernel.set(Behaviour::RacesAlways);
        assert_eq!(
            tsm_error(platform.evidence(&request())),
            TsmError::GenerationRace {
                before: 0,
                after: 2,
                attempts: MAX_ATTEMPTS
            }
        );
        assert_eq!(
            kernel.entries_made.load(Ordering::SeqCst),
            made + 2 + MAX_ATTEMPTS
        );
        assert_no_entries(root.path());
    }

    #[test]
    fn a_provider_that_ignores_the_inblob_or_changes_the_measurement_is_refused() {
        let root = tempfile::tempdir().unwrap();
        for kind in [PlatformKind::SevSnp, PlatformKind::Tdx] {
            let provider = if kind == PlatformKind::Tdx {
                PROVIDER_TDX
            } else {
                PROVIDER_SEV_SNP
            };
            let kernel = FakeKernel::new(kind, provider);
            let platform = open(&kernel, root.path(), vec![]).unwrap();
            kernel.set(Behaviour::IgnoresInblob);
            let refused = tsm_error(platform.evidence(&request()));
            assert!(
                matches!(&refused, TsmError::ReportDataMismatch { found, .. } if *found == hex::encode([0xEE; 64])),
                "{kind}: {refused:?}"
            );
            assert_no_entries(root.path());
            // Already at open: the probe's report data is checked too.
            assert!(matches!(
                tsm_error(open(&kernel, root.path(), vec![])),
                TsmError::ReportDataMismatch { .. }
            ));
            assert_no_entries(root.path());
        }
        let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_SEV_SNP);
        let platform = open(&kernel, root.path(), vec![]).unwrap();
        kernel.set(Behaviour::ChangesMeasurement);
        assert_eq!(
            tsm_error(platform.evidence(&request())),
            TsmError::MeasurementChanged {
                expected: Measurement::sha384(MEASUREMENT),
                found: Measurement::sha384([0x99; 48]),
            }
        );
        assert_no_entries(root.path());
    }

    #[test]
    fn an_oversize_outblob_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_SEV_SNP);
        let platform = open(&kernel, root.path(), vec![]).unwrap();
        kernel.set(Behaviour::OversizeOutblob);
        assert_eq!(
            tsm_error(platform.evidence(&request())),
            TsmError::TooLarge {
                attribute: "outblob",
                max: MAX_OUTBLOB_LEN
            }
        );
        assert_no_entries(root.path());
    }

    #[test]
    fn the_certificate_table_is_optional_but_must_be_well_formed() {
        let root = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_SEV_SNP);
        let platform = open(&kernel, root.path(), vec![]).unwrap();
        kernel.set(Behaviour::NoCertificates);
        let evidence = hardware(platform.evidence(&request()).unwrap());
        assert!(evidence.endorsements.is_empty());
        // Without a table, the extra endorsement given at open goes instead.
        let with_extra = open(&kernel, root.path(), vec![b"vcek".to_vec()]).unwrap();
        let evidence = hardware(with_extra.evidence(&request()).unwrap());
        assert_eq!(evidence.decoded_parts().unwrap().1, [b"vcek".to_vec()]);
        kernel.set(Behaviour::BrokenCertificates);
        assert!(matches!(
            tsm_error(platform.evidence(&request())),
            TsmError::MalformedCertificateTable(_)
        ));
        assert_no_entries(root.path());
    }

    #[test]
    fn too_many_or_too_large_extra_endorsements_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(PlatformKind::SevSnp, PROVIDER_SEV_SNP);
        assert_eq!(
            tsm_error(open(
                &kernel,
                root.path(),
                vec![vec![1]; MAX_ENDORSEMENTS + 1]
            )),
            TsmError::TooManyEndorsements(MAX_ENDORSEMENTS + 1)
        );
        assert_eq!(
            tsm_error(open(
                &kernel,
                root.path(),
                vec![vec![0; MAX_ENDORSEMENT_LEN + 1]]
            )),
            TsmError::EndorsementTooLarge(MAX_ENDORSEMENT_LEN + 1)
        );
        // Refused before any entry was made.
        assert_eq!(kernel.entries_made.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_missing_interface_is_an_io_error_naming_the_path() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("no-such-dir");
        let refused = TsmPlatform::open(PlatformKind::SevSnp, missing.clone(), vec![]);
        assert!(
            matches!(&refused, Err(AttestError::Io { path, .. }) if path.starts_with(&missing)),
            "{refused:?}"
        );
    }

    #[test]
    fn the_guids_are_amds() {
        for (guid, text) in [
            (SEV_CERT_GUID_VCEK, "63da758d-e664-4564-adc5-f4b93be8accd"),
            (SEV_CERT_GUID_VLEK, "a8074bc2-a25a-483e-aae6-39c045a0b8a1"),
            (SEV_CERT_GUID_ASK, "4ab7b379-bbac-4fe4-a02f-05aef327c782"),
            (SEV_CERT_GUID_ARK, "c0b406a4-a803-4952-9743-3fb6014cd0ae"),
        ] {
            assert_eq!(uuid_text(&guid), text);
        }
    }

    fn entry(guid: [u8; 16], offset: u32, length: u32) -> Vec<u8> {
        let mut e = guid.to_vec();
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&length.to_le_bytes());
        e
    }

    #[test]
    fn malformed_certificate_tables_are_refused() {
        let good = TestHardware::new().sev_snp_certificate_table();
        assert_eq!(parse_certificate_table(&good).unwrap().len(), 3);
        // Too many entries (each pointing at all the data) is refused before anything is
        // copied.
        let many: Vec<([u8; 16], Vec<u8>)> = (0..=MAX_CERT_TABLE_ENTRIES)
            .map(|i| ([u8::try_from(i + 1).unwrap(); 16], vec![7; 8]))
            .collect();
        assert!(matches!(
            parse_certificate_table(&crate::testing::certificate_table(&many)),
            Err(TsmError::MalformedCertificateTable(m)) if m.contains("entries")
        ));
        // Every truncation is an error, never a panic (the data of the last entry is needed).
        for len in 0..good.len() {
            assert!(
                parse_certificate_table(&good[..len]).is_err(),
                "length {len}"
            );
        }
        let terminator = [0u8; CERT_TABLE_ENTRY_LEN];
        let header = 2 * CERT_TABLE_ENTRY_LEN as u32;
        let table = |entries: &[Vec<u8>], data: &[u8]| {
            let mut t: Vec<u8> = entries.concat();
            t.extend_from_slice(&terminator);
            t.extend_from_slice(data);
            t
        };
        let refused = |t: Vec<u8>| {
            assert!(
                matches!(
                    parse_certificate_table(&t),
                    Err(TsmError::MalformedCertificateTable(_))
                ),
                "{t:?}"
            );
        };
        // Well formed: one entry of 4 bytes.
        let ok = table(&[entry(SEV_CERT_GUID_VCEK, header, 4)], b"cert");
        assert_eq!(
            parse_certificate_table(&ok).unwrap(),
            [CertificateTableEntry {
                guid: SEV_CERT_GUID_VCEK,
                data: b"cert".to_vec()
            }]
        );
        // No terminator.
        refused(entry(SEV_CERT_GUID_VCEK, header, 4));
        // Pointing into the entries, past the end, empty, overflowing.
        refused(table(&[entry(SEV_CERT_GUID_VCEK, 0, 4)], b"cert"));
        refused(table(&[entry(SEV_CERT_GUID_VCEK, header, 5)], b"cert"));
        refused(table(&[entry(SEV_CERT_GUID_VCEK, header, 0)], b"cert"));
        refused(table(
            &[entry(SEV_CERT_GUID_VCEK, u32::MAX, u32::MAX)],
            b"cert",
        ));
        // A GUID twice.
        let header = 3 * CERT_TABLE_ENTRY_LEN as u32;
        refused(table(
            &[
                entry(SEV_CERT_GUID_VCEK, header, 4),
                entry(SEV_CERT_GUID_VCEK, header, 4),
            ],
            b"cert",
        ));
    }

    #[test]
    fn the_raw_reading_of_a_quote_agrees_with_the_verifier_on_its_measurement() {
        // The worker reads its quote at fixed offsets; the service reads the same quote's
        // registers through dcap-qvl. Both must make the same measurement, or the worker's
        // probe and the certificate would disagree. The synthetic quote has distinct non-zero
        // configuration registers and RTMRs, so a swap on either side shows.
        let hw = TestHardware::new();
        let (synthetic, _) = hw.tdx_quote(&[7; 64], &[0x4d; 48], false);
        for quote in [TDX_QUOTE, TDX_QUOTE_V5, OAK_TDX_QUOTE, &synthetic] {
            let (raw, _) = tdx_quote_fields(quote).unwrap();
            assert_eq!(raw, crate::dcap::parse_quote(quote).unwrap().measurement);
        }
        assert_eq!(
            tdx_quote_fields(&synthetic).unwrap().0,
            crate::testing::test_tdx_measurement(&[0x4d; 48])
        );
    }

    #[test]
    fn tdx_quotes_of_versions_4_and_5_are_read_and_others_refused() {
        for (quote, measurement) in [
            (TDX_QUOTE, TDX_QUOTE_MEASUREMENT),
            (OAK_TDX_QUOTE, OAK_TDX_QUOTE_MEASUREMENT),
            (TDX_QUOTE_V5, TDX_QUOTE_V5_MEASUREMENT),
        ] {
            let (found, _) = tdx_quote_fields(quote).unwrap();
            assert_eq!(found.to_hex(), measurement);
        }
        let (_, data) = tdx_quote_fields(TDX_QUOTE_V5).unwrap();
        assert_eq!(hex::encode(data), TDX_QUOTE_V5_REPORT_DATA);
        // Every truncation of the body is an error, never a panic.
        for quote in [TDX_QUOTE, TDX_QUOTE_V5] {
            let needed = QUOTE_HEADER_LEN
                + if quote == TDX_QUOTE_V5 {
                    QUOTE_V5_BODY_DESCRIPTOR_LEN + TD15_BODY_LEN
                } else {
                    TD10_BODY_LEN
                };
            for len in 0..needed {
                assert!(tdx_quote_fields(&quote[..len]).is_err(), "length {len}");
            }
        }
        let changed = |at: usize, bytes: &[u8]| {
            let mut q = TDX_QUOTE_V5.to_vec();
            q[at..at + bytes.len()].copy_from_slice(bytes);
            tdx_quote_fields(&q)
        };
        // Another version, an SGX quote (TEE type 0), another body type or size.
        assert!(changed(0, &3u16.to_le_bytes()).is_err());
        assert!(changed(4, &0u32.to_le_bytes()).is_err());
        assert!(changed(QUOTE_HEADER_LEN, &1u16.to_le_bytes()).is_err());
        assert!(changed(QUOTE_HEADER_LEN + 2, &584u32.to_le_bytes()).is_err());
        // An SEV-SNP report is not a quote.
        let (report, _) = TestHardware::new().sev_snp_report(&[0; 64], &[0; 48], POLICY);
        assert!(tdx_quote_fields(&report).is_err());
    }
}
