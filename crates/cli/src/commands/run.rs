//! `covenant run`: run a module or a signed artifact in the sandbox, the way a trusted host
//! would, and report how it ended.
//!
//! Exit status: the guest's exit code; 134 when it trapped or exceeded a limit (with one stderr
//! line `error: <kind>: <what happened>`); 2 when the module or artifact is refused (with every
//! reason); 1 for anything else (an unreadable file, say).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use covenant_sandbox::limits::{DEFAULT_FUEL, DEFAULT_MAX_MEMORY_BYTES};
use covenant_sandbox::{
    Entry, LoadError, Outcome, RunError, RunLimits, RunReport, Sandbox, SandboxConfig, Strategy,
    TrustedSigners, artifact::MAGIC,
};
use covenant_wasi::fs::{Access, CapabilityTable, FileSystem, FsConfig, Timestamps, View};
use covenant_wasi::{OutputSink, WasiCtx};

use super::{EXIT_TRAPPED, Exit};
use crate::units::{parse_duration, parse_size};

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: the guest's exit code (codes above 255 are reported as 255; --report has the exact \
value); 134 if the guest trapped or exceeded a limit; 2 if the module or artifact was refused; \
1 for other errors.

Files: --dir HOST::GUEST copies a host directory into the guest's in-memory file system \
(read-write; HOST::GUEST:ro for read-only); --output GUEST_PATH=HOST_PATH copies a file out \
after the run. Host directories are never written.")]
pub struct RunArgs {
    /// The engine: `jit` (wasmtime, compiled) or `interpreter` (wasmi).
    #[arg(long, default_value = "jit", value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// Linear-memory limit, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", default_value = DEFAULT_MAX_MEMORY, value_parser = parse_size)]
    pub max_memory: u64,
    /// Instruction budget (fuel); the guest traps with out-of-fuel when it is spent.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FUEL)]
    pub fuel: u64,
    /// Wall-clock limit, e.g. 500ms or 5s.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TIMEOUT_TEXT, value_parser = parse_duration)]
    pub timeout: Duration,
    /// Limit on stdout plus stderr, e.g. 1MiB.
    #[arg(long, value_name = "SIZE", default_value = DEFAULT_MAX_OUTPUT, value_parser = parse_size)]
    pub max_output: u64,
    /// An environment variable for the guest (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// A file whose bytes the guest reads as stdin ('-' for this process's stdin). Default: none.
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// Refuse the guest the clocks (clock_time_get answers ENOTCAPABLE).
    #[arg(long)]
    pub no_clock: bool,
    /// Refuse the guest randomness (random_get answers ENOTCAPABLE).
    #[arg(long)]
    pub no_random: bool,
    /// A certificate whose key may sign artifacts (repeatable). Artifacts signed by anyone else
    /// are refused.
    #[arg(long, value_name = "CERT")]
    pub trust: Vec<PathBuf>,
    /// Write the outcome as JSON: outcome, kind, exit code, fuel used, wall time, peak memory.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Give the guest a host directory (repeatable): HOST::GUEST copies HOST into the guest's
    /// in-memory file system at GUEST and preopens it read-write; HOST::GUEST:ro preopens it
    /// read-only; HOST alone means HOST::HOST. GUEST is a guest path (`.` is `/`). The host
    /// directory is never modified: the guest works on the copy (see docs/wasi.md).
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]", value_parser = parse_dir)]
    pub dirs: Vec<DirArg>,
    /// After the run, copy the guest's file GUEST_PATH out to HOST_PATH (repeatable).
    #[arg(long = "output", value_name = "GUEST_PATH=HOST_PATH", value_parser = parse_output)]
    pub outputs: Vec<(String, PathBuf)>,
    /// The module (.wasm) or signed artifact (from `covenant compile`).
    pub module: PathBuf,
    /// Arguments for the guest (after `--`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

// The library's defaults, as `--help` shows them; `defaults_match_the_library` keeps them equal.
const DEFAULT_MAX_MEMORY: &str = "256MiB";
const DEFAULT_MAX_OUTPUT: &str = "64MiB";
const DEFAULT_TIMEOUT_TEXT: &str = "30s";

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse()
}

/// One `--dir`: the host directory, where the guest sees it, and what it may do there.
#[derive(Clone, Debug)]
pub struct DirArg {
    host: PathBuf,
    guest: String,
    access: Access,
}

fn parse_dir(s: &str) -> Result<DirArg, String> {
    let (spec, access) = match s.strip_suffix(":ro") {
        Some(spec) => (spec, Access::READ_ONLY),
        None => (s.strip_suffix(":rw").unwrap_or(s), Access::READ_WRITE),
    };
    let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
    if host.is_empty() {
        return Err(format!("{s:?}: the host directory is empty"));
    }
    Ok(DirArg {
        host: PathBuf::from(host),
        guest: guest_path(guest)?,
        access,
    })
}

fn parse_output(s: &str) -> Result<(String, PathBuf), String> {
    let (guest, host) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not GUEST_PATH=HOST_PATH"))?;
    if host.is_empty() {
        return Err(format!("{s:?}: the host path is empty"));
    }
    Ok((guest_path(guest)?, PathBuf::from(host)))
}

/// A guest path as the in-memory file system names it: absolute, without `.` components
/// (`.` is `/`, `data` is `/data`). `..` is refused: it could only mean something outside.
fn guest_path(s: &str) -> Result<String, String> {
    let mut out = String::new();
    for comp in s.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Err(format!("{s:?}: a guest path cannot contain '..'"));
        }
        out.push('/');
        out.push_str(comp);
    }
    Ok(if out.is_empty() { "/".into() } else { out })
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not K=V"))?;
    Ok((key.to_string(), value.to_string()))
}

/// The JSON `--report` writes: flat, for scripts.
#[derive(Debug, serde::Serialize)]
struct ReportFile<'a> {
    outcome: &'static str,
    kind: Option<&'static str>,
    exit_code: Option<u32>,
    detail: Option<&'a str>,
    fuel_used: u64,
    wall_time_us: u128,
    peak_memory_bytes: u64,
    output_bytes: u64,
    strategy: &'static str,
    module_sha256: String,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.module)
        .with_context(|| format!("reading {}", args.module.display()))?;
    let mut trusted = TrustedSigners::none();
    for cert in &args.trust {
        let pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        trusted
            .add_certificate_pem(&pem)
            .map_err(|e| Exit::refused(format!("{}: {e}", cert.display())))?;
    }
    let stdin = match &args.stdin {
        None => Vec::new(),
        Some(path) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading stdin")?;
            buf
        }
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    };

    let mut config = SandboxConfig::new(args.strategy);
    config.max_memory_bytes = args.max_memory.max(DEFAULT_MAX_MEMORY_BYTES);
    let sandbox = Sandbox::new(config)?;
    let module_name = args.module.display().to_string();
    let loaded = if bytes.starts_with(MAGIC) {
        sandbox.load_artifact(&bytes, &trusted)
    } else {
        sandbox.load(&bytes)
    };
    let module = match loaded {
        Ok(module) => module,
        Err(LoadError::Compile(e)) => {
            anyhow::bail!("{module_name}: the engine could not compile the module: {e}")
        }
        Err(refused) => return Err(Exit::refused(format!("{module_name}: {refused}"))),
    };

    let program = args
        .module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into());
    let mut wasi = WasiCtx::builder(program)
        .args(args.args.iter().cloned())
        .stdin(stdin)
        .stdout(OutputSink::Forward(Box::new(std::io::stdout())))
        .stderr(OutputSink::Forward(Box::new(std::io::stderr())))
        .allow_clock(!args.no_clock)
        .allow_random(!args.no_random);
    for (key, value) in &args.env {
        wasi = wasi.env(key, value);
    }
    if let Some(view) = guest_file_system(&args)? {
        wasi = wasi.file_system(view);
    }
    let wasi = wasi.build().map_err(Exit::refused)?;
    let limits = RunLimits {
        max_memory_bytes: args.max_memory,
        fuel: args.fuel,
        timeout: args.timeout,
        max_output_bytes: args.max_output,
        ..RunLimits::default()
    };
    let run = match sandbox.run(&module, wasi, &limits, &Entry::Command) {
        Ok(run) => run,
        Err(RunError::Refused(refused)) => {
            return Err(Exit::refused(format!("{module_name}: {refused}")));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = &args.report {
        write_report(path, &run.report, &module.sha256_hex())?;
    }
    if let Some(fs) = run.wasi.file_system() {
        copy_outputs(fs, &args.outputs)?;
    }
    match run.report.outcome {
        Outcome::Exited(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))),
        Outcome::Trapped(kind) => {
            let detail = run.report.detail.as_deref().unwrap_or("");
            Err(anyhow::Error::new(Exit {
                code: EXIT_TRAPPED,
                message: format!("error: {kind}: {detail}"),
            }))
        }
    }
}

/// The guest's file system, when `--dir` or `--output` asks for one: every `--dir` loaded
/// into memory and preopened with its access. File times are frozen at 0 under `--no-clock`,
/// or they would tell the guest the time.
fn guest_file_system(args: &RunArgs) -> anyhow::Result<Option<View>> {
    if args.dirs.is_empty() && args.outputs.is_empty() {
        return Ok(None);
    }
    let fs = FileSystem::new(FsConfig {
        timestamps: if args.no_clock {
            Timestamps::Fixed(0)
        } else {
            Timestamps::Realtime
        },
        ..FsConfig::default()
    });
    let mut table = CapabilityTable::new();
    for dir in &args.dirs {
        fs.load_host_dir(&dir.host, &dir.guest)
            .with_context(|| format!("--dir {}::{}", dir.host.display(), dir.guest))?;
        table.grant(&dir.guest, dir.access)?;
    }
    Ok(Some(fs.view(&table)?))
}

/// `--output`: copies each guest file out after the run, through a read-only view of `/`.
fn copy_outputs(fs: &FileSystem, outputs: &[(String, PathBuf)]) -> anyhow::Result<()> {
    if outputs.is_empty() {
        return Ok(());
    }
    let view = fs.view(&CapabilityTable::new().with("/", Access::READ)?)?;
    for (guest, host) in outputs {
        let mut reader = view
            .read_file(guest)
            .with_context(|| format!("--output {guest}={}", host.display()))?;
        let mut file =
            std::fs::File::create(host).with_context(|| format!("creating {}", host.display()))?;
        std::io::copy(&mut reader, &mut file)
            .with_context(|| format!("--output {guest}={}", host.display()))?;
    }
    Ok(())
}

fn write_report(
    path: &std::path::Path,
    report: &RunReport,
    module_sha256: &str,
) -> anyhow::Result<()> {
    let file = ReportFile {
        outcome: match report.outcome {
            Outcome::Exited(_) => "exited",
            Outcome::Trapped(_) => "trapped",
        },
        kind: report.trap().map(|k| k.as_str()),
        exit_code: report.exit_code(),
        detail: report.detail.as_deref(),
        fuel_used: report.fuel_used,
        wall_time_us: report.wall_time.as_micros(),
        peak_memory_bytes: report.peak_memory_bytes,
        output_bytes: report.output_bytes,
        strategy: report.strategy.as_str(),
        module_sha256: module_sha256.to_string(),
    };
    let json = serde_json::to_string_pretty(&file)?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use covenant_sandbox::limits::{DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT};

    #[test]
    fn defaults_match_the_library() {
        assert_eq!(parse_size(DEFAULT_MAX_MEMORY), Ok(DEFAULT_MAX_MEMORY_BYTES));
        assert_eq!(parse_size(DEFAULT_MAX_OUTPUT), Ok(DEFAULT_MAX_OUTPUT_BYTES));
        assert_eq!(parse_duration(DEFAULT_TIMEOUT_TEXT), Ok(DEFAULT_TIMEOUT));
    }
}
