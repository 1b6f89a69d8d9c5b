//! Runs the `fs_throughput` guest under Covenant and under raw wasmtime-wasi, and reports what
//! each run measured. The benchmark binary (`benches/wasi_fs.rs`) calls these and prints the
//! comparison; `docs/benchmarks.md` ("WASI file system") records the figures.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use covenant_sandbox::{Entry, Outcome, RunLimits, Sandbox, SandboxConfig, Strategy};
use covenant_wasi::WasiCtx;
use covenant_wasi::fs::{Access, CapabilityTable, FileSystem, FsConfig, Quotas};

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// The guest's own time for the write phase.
    pub write: Duration,
    /// The guest's own time for the read-back phase.
    pub read: Duration,
    /// Bytes written (and read back).
    pub bytes: u64,
    /// The host's wall time for the whole run (instantiation included, compilation not).
    pub wall: Duration,
}

impl Measurement {
    /// Write throughput in MiB/s.
    pub fn write_mib_s(&self) -> f64 {
        mib_s(self.bytes, self.write)
    }

    /// Read throughput in MiB/s.
    pub fn read_mib_s(&self) -> f64 {
        mib_s(self.bytes, self.read)
    }
}

fn mib_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / time.as_secs_f64().max(1e-9)
}

/// Parses the guest's `write_ns=… read_ns=… bytes=…` line.
///
/// # Errors
/// A message naming what is missing.
pub fn parse(stdout: &str, wall: Duration) -> Result<Measurement, String> {
    let field = |name: &str| -> Result<u64, String> {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .ok_or_else(|| format!("no {name} in the guest's output {stdout:?}"))?
            .parse()
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok(Measurement {
        write: Duration::from_nanos(field("write_ns")?),
        read: Duration::from_nanos(field("read_ns")?),
        bytes: field("bytes")?,
        wall,
    })
}

/// The guest's arguments: where it writes, and how much.
fn guest_args(mib: u32) -> Vec<String> {
    vec!["/bench/data.bin".into(), mib.to_string()]
}

/// A prepared Covenant runner: one sandbox and one compiled module per strategy.
pub struct CovenantRunner {
    sandbox: Sandbox,
    module: covenant_sandbox::Module,
}

impl CovenantRunner {
    /// Compiles the guest for `strategy`.
    ///
    /// # Errors
    /// The sandbox's own errors, as text.
    pub fn new(strategy: Strategy, wasm: &[u8]) -> Result<Self, String> {
        let sandbox = Sandbox::new(SandboxConfig::new(strategy)).map_err(|e| e.to_string())?;
        let module = sandbox.load(wasm).map_err(|e| e.to_string())?;
        Ok(CovenantRunner { sandbox, module })
    }

    /// Runs the guest once on a fresh in-memory file system whose `/bench` it may read and
    /// write; quotas are the defaults except a total large enough for `mib`.
    ///
    /// # Errors
    /// Anything but a clean exit, as text.
    pub fn run(&self, mib: u32) -> Result<Measurement, String> {
        let fs = FileSystem::new(FsConfig {
            quotas: Quotas {
                max_total_bytes: (u64::from(mib) + 16) << 20,
                max_file_bytes: (u64::from(mib) + 1) << 20,
                ..Quotas::default()
            },
            ..FsConfig::default()
        });
        fs.create_dir_all("/bench").map_err(|e| e.to_string())?;
        let table = CapabilityTable::new()
            .with("/bench", Access::READ_WRITE)
            .map_err(|e| e.to_string())?;
        let view = fs.view(&table).map_err(|e| e.to_string())?;
        let wasi = WasiCtx::builder("fs_throughput")
            .args(guest_args(mib))
            .file_system(view)
            .build()
            .map_err(|e| e.to_string())?;
        let limits = RunLimits {
            fuel: u64::MAX / 4,
            timeout: Duration::from_secs(600),
            ..RunLimits::default()
        };
        let start = Instant::now();
        let mut out = self
            .sandbox
            .run(&self.module, wasi, &limits, &Entry::Command)
            .map_err(|e| e.to_string())?;
        let wall = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.wasi.take_stdout()).into_owned();
        if out.report.outcome != Outcome::Exited(0) {
            let stderr = String::from_utf8_lossy(&out.wasi.take_stderr()).into_owned();
            return Err(format!(
                "the guest ended with {}: {stderr}",
                out.report.outcome
            ));
        }
        parse(&stdout, wall)
    }
}

/// A prepared wasmtime-wasi runner: a plain wasmtime engine (default configuration, no
/// pooling, no fuel) and the compiled module.
pub struct WasmtimeRunner {
    engine: wasmtime::Engine,
    module: wasmtime::Module,
}

impl WasmtimeRunner {
    /// Compiles the guest.
    ///
    /// # Errors
    /// wasmtime's errors, as text.
    pub fn new(wasm: &[u8]) -> Result<Self, String> {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, wasm).map_err(|e| format!("{e:#}"))?;
        Ok(WasmtimeRunner { engine, module })
    }

    /// Runs the guest once with `host_dir` preopened as `/bench` (read-write) through
    /// wasmtime-wasi's preview1.
    ///
    /// # Errors
    /// Anything but a clean exit, as text.
    pub fn run(&self, mib: u32, host_dir: &Path) -> Result<Measurement, String> {
        use wasmtime_wasi::p1::{self, WasiP1Ctx};
        use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
        use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let mut args = vec!["fs_throughput".to_owned()];
        args.extend(guest_args(mib));
        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&args)
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        builder
            .preopened_dir(host_dir, "/bench", FsPerms::ReadWrite)
            .map_err(|e| format!("{e:#}"))?;
        let wasi: WasiP1Ctx = builder.build_p1();
        let mut linker: wasmtime::Linker<WasiP1Ctx> = wasmtime::Linker::new(&self.engine);
        p1::add_to_linker_sync(&mut linker, |t| t).map_err(|e| format!("{e:#}"))?;
        let mut store = wasmtime::Store::new(&self.engine, wasi);
        let start = Instant::now();
        let instance = linker
            .instantiate(&mut store, &self.module)
            .map_err(|e| format!("{e:#}"))?;
        let entry = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| format!("{e:#}"))?;
        let result = entry.call(&mut store, ());
        let wall = start.elapsed();
        if let Err(e) = result {
            let exit = e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|x| x.0);
            if exit != Some(0) {
                let err = String::from_utf8_lossy(&stderr.contents()).into_owned();
                return Err(format!("the guest failed: {e:#}: {err}"));
            }
        }
        parse(&String::from_utf8_lossy(&stdout.contents()), wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_line_is_parsed_or_refused() {
        let m = parse(
            "write_ns=2000000000 read_ns=1000000000 bytes=268435456\n",
            Duration::ZERO,
        )
        .expect("a well-formed line");
        assert_eq!(
            (m.write_mib_s().round(), m.read_mib_s().round()),
            (128.0, 256.0)
        );
        assert!(parse("bytes=1", Duration::ZERO).is_err());
    }
}
