//! `covenant attestation`: offline work with hardware attestation evidence.
//!
//! `verify-evidence` checks one piece of evidence the way the attestation service would check
//! its signatures and chain (against the roots compiled into `covenant-attest`), at a time the
//! operator chooses, and prints what it proves. It does not check freshness or the report data
//! binding (those need the service's nonce and a runtime's TLS key): it answers "is this genuine
//! evidence from that platform, and what does it measure?".

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Exit;

/// Exit code for evidence that does not verify (the reason is printed).
pub const EXIT_EVIDENCE_REFUSED: u8 = 4;

/// The largest evidence file read, in bytes: far above any platform's evidence (a Nitro
/// document is under 16 KiB, as base64 under 22 KiB). Stops a wrong path (a disk image) from
/// being read into memory.
pub const MAX_EVIDENCE_FILE_BYTES: u64 = 1024 * 1024;

/// Offline work with hardware attestation evidence.
#[derive(Debug, Subcommand)]
pub enum AttestationCommand {
    /// Verify hardware evidence offline against the pinned vendor roots and print what it
    /// proves (platform, measurement, report data, the time it was checked at).
    #[command(long_about = VERIFY_LONG_ABOUT)]
    VerifyEvidence(VerifyEvidenceArgs),
}

/// Long help of `verify-evidence`.
pub const VERIFY_LONG_ABOUT: &str = "Verify hardware attestation evidence offline against the vendor root compiled into \
     covenant, at the time given by --at (default: now), and print what it proves: platform, \
     measurement (lowercase hex), report data (hex), the time it was checked at. Exit 0 if it \
     verifies; exit 4, with the check that failed, if it does not. Freshness and the binding \
     of the report data to a runtime are not checked here (they need the attestation \
     service's nonce). Nitro: --evidence is the attestation document, raw COSE_Sign1 bytes or \
     base64 text; its measurement is PCR0; a debug-mode document (PCR0 all zeros) is refused \
     unless --allow-debug. SEV-SNP: --evidence is the 1184-byte attestation report (raw or \
     hex) and --endorsement the VCEK or VLEK certificate (DER or PEM) that signed it; the \
     chain goes to the pinned AMD ARK (Milan, Genoa, Turin); its measurement is the launch \
     measurement; a guest whose policy allows debugging is refused unless --allow-debug, and \
     one that allows a migration agent is refused. TDX and SGX: --evidence is the DCAP quote \
     (raw or hex) and --endorsement the collateral JSON (QuoteCollateralV3, as a PCCS or \
     dcap-qvl serves it); the chain goes to the pinned Intel SGX Root CA; the measurement is \
     SHA-384 over MRTD, the configuration registers and RTMR0-3 (TDX; each is printed too) or \
     MRENCLAVE (SGX); a TCB status other than up-to-date is refused unless \
     named with --accept-tcb-status (the advisories are printed either way), and a debuggable \
     TD or enclave unless --allow-debug.";

/// The platforms whose evidence this command verifies (more are added as their verifiers are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvidencePlatform {
    /// AWS Nitro Enclaves: a COSE_Sign1 attestation document.
    Nitro,
    /// AMD SEV-SNP: an attestation report, with the VCEK/VLEK certificate as --endorsement.
    SevSnp,
    /// Intel TDX: a DCAP quote (v4/v5), with the collateral JSON as --endorsement.
    Tdx,
    /// Intel SGX: a DCAP quote (v3), with the collateral JSON as --endorsement.
    Sgx,
}

/// Arguments of `covenant attestation verify-evidence`.
#[derive(Debug, Args)]
pub struct VerifyEvidenceArgs {
    /// The platform that produced the evidence.
    #[arg(long, value_enum)]
    pub platform: EvidencePlatform,
    /// The evidence file.
    #[arg(long, value_name = "FILE")]
    pub evidence: PathBuf,
    /// Endorsements the platform needs besides the evidence (none for Nitro).
    #[arg(long, value_name = "FILE")]
    pub endorsement: Vec<PathBuf>,
    /// Verify as of this instant (RFC 3339, e.g. 2022-10-13T12:00:00Z) instead of now.
    #[arg(long, value_name = "RFC3339-TIME", value_parser = parse_time)]
    pub at: Option<OffsetDateTime>,
    /// Accept evidence from a platform in debug mode (its memory is readable by the host).
    #[arg(long)]
    pub allow_debug: bool,
    /// TDX and SGX: accept this Intel TCB status besides up-to-date (e.g. sw-hardening-needed;
    /// repeat for more). Read the advisories it names first.
    #[arg(long, value_name = "STATUS")]
    pub accept_tcb_status: Vec<String>,
    /// Print one JSON object instead of lines of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time (e.g. 2022-10-13T12:00:00Z): {e}"))
}

/// What verified evidence proves, as printed.
#[derive(Debug, serde::Serialize)]
struct Verified {
    platform: &'static str,
    measurement: String,
    report_data: String,
    checked_at: String,
    debug: bool,
    /// Platform-specific fields (for Nitro: module_id, timestamp, nonce, public_key, pcrs).
    details: serde_json::Map<String, serde_json::Value>,
}

/// Runs an `attestation` subcommand.
///
/// # Errors
/// Unreadable files (exit 1), refused evidence (exit 4), an unsupported platform (exit 2).
pub fn run(command: AttestationCommand) -> anyhow::Result<ExitCode> {
    match command {
        AttestationCommand::VerifyEvidence(args) => verify_evidence(&args),
    }
}

fn refused(reason: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code: EXIT_EVIDENCE_REFUSED,
        message: format!("error: the evidence does not verify: {reason}"),
    })
}

fn read_bounded(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_EVIDENCE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}", path.display()))?;
    if bytes.len() as u64 > MAX_EVIDENCE_FILE_BYTES {
        return Err(Exit::refused(format!(
            "{}: larger than {MAX_EVIDENCE_FILE_BYTES} bytes; not evidence",
            path.display()
        )));
    }
    Ok(bytes)
}

fn verify_evidence(args: &VerifyEvidenceArgs) -> anyhow::Result<ExitCode> {
    if !matches!(args.platform, EvidencePlatform::Tdx | EvidencePlatform::Sgx)
        && !args.accept_tcb_status.is_empty()
    {
        return Err(Exit::refused(
            "--accept-tcb-status applies to tdx and sgx only",
        ));
    }
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let evidence = read_bounded(&args.evidence)?;
    let verified = match args.platform {
        EvidencePlatform::Nitro => {
            if !args.endorsement.is_empty() {
                return Err(Exit::refused(
                    "--endorsement: Nitro evidence needs none (its chain is in the document)",
                ));
            }
            verify_nitro(&evidence, at, args.allow_debug)?
        }
        EvidencePlatform::SevSnp => {
            let [endorsement] = args.endorsement.as_slice() else {
                return Err(Exit::refused(
                    "--endorsement: SEV-SNP needs exactly one, the VCEK or VLEK certificate \
                     (DER or PEM) of the chip that signed the report",
                ));
            };
            let endorsement = read_bounded(endorsement)?;
            verify_sev_snp(&evidence, &endorsement, at, args.allow_debug)?
        }
        EvidencePlatform::Tdx | EvidencePlatform::Sgx => {
            let [collateral] = args.endorsement.as_slice() else {
                return Err(Exit::refused(
                    "--endorsement: TDX and SGX need exactly one, the collateral JSON for the \
                     quote (from a PCCS or Intel's PCS)",
                ));
            };
            let collateral = read_bounded(collateral)?;
            verify_dcap(args, &evidence, &collateral, at)?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verified)?);
    } else {
        println!("verified: {} evidence", verified.platform);
        println!("platform: {}", verified.platform);
        println!("measurement: {}", verified.measurement);
        println!("report data: {}", verified.report_data);
        println!("checked at: {}", verified.checked_at);
        println!("debug: {}", verified.debug);
        for (key, value) in &verified.details {
            match value {
                serde_json::Value::String(s) => println!("{key}: {s}"),
                serde_json::Value::Object(inner) => {
                    for (key, value) in inner {
                        println!("{key}: {}", value.as_str().unwrap_or_default());
                    }
                }
                other => println!("{key}: {other}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Evidence given as text (hex, base64), with its line breaks and spaces left out.
fn without_whitespace(evidence: &[u8]) -> Vec<u8> {
    evidence
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

/// An SEV-SNP report is its 1184 raw bytes, or hex text of them.
fn sev_snp_report_bytes(evidence: &[u8]) -> anyhow::Result<Vec<u8>> {
    use covenant_attest::sev_snp::REPORT_LEN;
    if evidence.len() == REPORT_LEN {
        return Ok(evidence.to_vec());
    }
    match hex::decode(without_whitespace(evidence)) {
        Ok(bytes) if bytes.len() == REPORT_LEN => Ok(bytes),
        _ => Err(refused(format!(
            "not an SEV-SNP attestation report: neither {REPORT_LEN} bytes nor hex text of them \
             ({} bytes)",
            evidence.len()
        ))),
    }
}

fn verify_sev_snp(
    evidence: &[u8],
    endorsement: &[u8],
    at: OffsetDateTime,
    allow_debug: bool,
) -> anyhow::Result<Verified> {
    use covenant_attest::sev_snp::{SevSnpOptions, verify_report};
    let report = sev_snp_report_bytes(evidence)?;
    let options = SevSnpOptions {
        allow_debug,
        ..SevSnpOptions::default()
    };
    let verified = verify_report(&report, endorsement, at, &options).map_err(refused)?;
    let tcb = verified.reported_tcb;
    let mut details = serde_json::Map::new();
    details.insert("product".into(), verified.product.as_str().into());
    details.insert("signed_by".into(), verified.endorsement.as_str().into());
    details.insert("report_version".into(), verified.report.version.into());
    details.insert(
        "policy".into(),
        format!("{:#x}", verified.report.policy).into(),
    );
    details.insert("vmpl".into(), verified.report.vmpl.into());
    details.insert("guest_svn".into(), verified.report.guest_svn.into());
    let mut tcb_fields = serde_json::Map::new();
    if let Some(fmc) = tcb.fmc {
        tcb_fields.insert("tcb_fmc".into(), fmc.to_string().into());
    }
    tcb_fields.insert("tcb_bootloader".into(), tcb.bootloader.to_string().into());
    tcb_fields.insert("tcb_tee".into(), tcb.tee.to_string().into());
    tcb_fields.insert("tcb_snp".into(), tcb.snp.to_string().into());
    tcb_fields.insert("tcb_microcode".into(), tcb.microcode.to_string().into());
    details.insert("reported_tcb".into(), tcb_fields.into());
    details.insert(
        "host_data".into(),
        hex::encode(verified.report.host_data).into(),
    );
    details.insert(
        "chip_id".into(),
        hex::encode(verified.report.chip_id).into(),
    );
    Ok(Verified {
        platform: "sev-snp",
        measurement: verified.measurement().to_hex(),
        report_data: hex::encode(verified.report_data()),
        checked_at: at.format(&Rfc3339)?,
        debug: verified.report.debug_allowed(),
        details,
    })
}

/// A DCAP quote, raw or as hex text.
fn dcap_quote_bytes(evidence: &[u8]) -> anyhow::Result<Vec<u8>> {
    let text = without_whitespace(evidence);
    if !text.is_empty() && text.iter().all(u8::is_ascii_hexdigit) {
        return hex::decode(&text).map_err(|e| refused(format!("not a DCAP quote: {e}")));
    }
    Ok(evidence.to_vec())
}

fn verify_dcap(
    args: &VerifyEvidenceArgs,
    evidence: &[u8],
    collateral: &[u8],
    at: OffsetDateTime,
) -> anyhow::Result<Verified> {
    use covenant_attest::dcap::{DcapOptions, DcapTee, TcbStatus, verify_quote};
    let (tee, platform) = match args.platform {
        EvidencePlatform::Sgx => (DcapTee::Sgx, "sgx"),
        _ => (DcapTee::Tdx, "tdx"),
    };
    let mut accepted_tcb_statuses = std::collections::BTreeSet::from([TcbStatus::UpToDate]);
    for name in &args.accept_tcb_status {
        let status: TcbStatus = name
            .parse()
            .map_err(|e| Exit::refused(format!("--accept-tcb-status: {e}")))?;
        accepted_tcb_statuses.insert(status);
    }
    let options = DcapOptions {
        expected_tee: Some(tee),
        accepted_tcb_statuses,
        allow_debug: args.allow_debug,
    };
    let quote = dcap_quote_bytes(evidence)?;
    let verified = verify_quote(&quote, collateral, at, &options).map_err(refused)?;
    let mut details = serde_json::Map::new();
    details.insert("quote_version".into(), verified.quote_version.into());
    details.insert("tcb_status".into(), verified.tcb_status.to_string().into());
    details.insert(
        "advisory_ids".into(),
        if verified.advisory_ids.is_empty() {
            "none".into()
        } else {
            verified.advisory_ids.join(", ").into()
        },
    );
    if let Some(tdx) = &verified.tdx {
        details.insert("mrtd".into(), hex::encode(tdx.mrtd).into());
        details.insert("mr_config_id".into(), hex::encode(tdx.mr_config_id).into());
        details.insert("mr_owner".into(), hex::encode(tdx.mr_owner).into());
        details.insert(
            "mr_owner_config".into(),
            hex::encode(tdx.mr_owner_config).into(),
        );
        for (index, rtmr) in tdx.rtmrs.iter().enumerate() {
            details.insert(format!("rtmr{index}"), hex::encode(rtmr).into());
        }
        details.insert(
            "td_attributes".into(),
            hex::encode(tdx.td_attributes).into(),
        );
        details.insert("mr_seam".into(), hex::encode(tdx.mr_seam).into());
    }
    if let Some(sgx) = &verified.sgx {
        details.insert("mrsigner".into(), hex::encode(sgx.mrsigner).into());
        details.insert("isv_prod_id".into(), sgx.isv_prod_id.into());
        details.insert("isv_svn".into(), sgx.isv_svn.into());
    }
    Ok(Verified {
        platform,
        measurement: verified.measurement().to_hex(),
        report_data: hex::encode(verified.report_data),
        checked_at: at.format(&Rfc3339)?,
        debug: verified.debug,
        details,
    })
}

/// A Nitro document is raw CBOR (an array, `0x84`, or tag 18, `0xd2`) or base64 text of it.
fn nitro_document_bytes(evidence: &[u8]) -> anyhow::Result<Vec<u8>> {
    if matches!(evidence.first(), Some(0x84 | 0xd2)) {
        return Ok(evidence.to_vec());
    }
    base64::engine::general_purpose::STANDARD
        .decode(without_whitespace(evidence))
        .map_err(|e| {
            refused(format!(
                "not a Nitro attestation document: neither COSE_Sign1 bytes nor base64 ({e})"
            ))
        })
}

fn verify_nitro(
    evidence: &[u8],
    at: OffsetDateTime,
    allow_debug: bool,
) -> anyhow::Result<Verified> {
    use covenant_attest::nitro;
    let document = nitro_document_bytes(evidence)?;
    let claims = nitro::verify_document(&document, at, allow_debug).map_err(refused)?;
    let hex_or_none = |v: &Option<Vec<u8>>| {
        v.as_ref()
            .map_or(serde_json::Value::Null, |v| hex::encode(v).into())
    };
    let mut details = serde_json::Map::new();
    details.insert("module_id".into(), claims.module_id.clone().into());
    let timestamp = claims
        .timestamp()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| claims.timestamp_ms.to_string());
    details.insert("timestamp".into(), timestamp.into());
    details.insert("nonce".into(), hex_or_none(&claims.nonce));
    details.insert("public_key".into(), hex_or_none(&claims.public_key));
    let pcrs: serde_json::Map<String, serde_json::Value> = claims
        .pcrs
        .iter()
        .map(|(i, v)| (format!("pcr{i}"), hex::encode(v).into()))
        .collect();
    details.insert("pcrs".into(), pcrs.into());
    Ok(Verified {
        platform: "nitro",
        measurement: hex::encode(claims.pcr0()),
        report_data: claims
            .user_data
            .as_ref()
            .map(hex::encode)
            .unwrap_or_default(),
        checked_at: at.format(&Rfc3339)?,
        debug: claims.debug,
        details,
    })
}
