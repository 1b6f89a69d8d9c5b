//! Runs untrusted WebAssembly on two engines under enforced limits, with every fault contained
//! to its instance.
//!
//! ```no_run
//! use covenant_sandbox::{Entry, RunLimits, Sandbox, SandboxConfig, Strategy};
//! use covenant_wasi::WasiCtx;
//!
//! let sandbox = Sandbox::new(SandboxConfig::new(Strategy::Jit))?;
//! let module = sandbox.load(&std::fs::read("hello.wasm")?)?;
//! let wasi = WasiCtx::builder("hello").build()?;
//! let run = sandbox.run(&module, wasi, &RunLimits::default(), &Entry::Command)?;
//! println!("{}", run.report.outcome);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What this crate guarantees:
//! - a module is checked ([`check`]) before any engine sees it, and refused with every reason;
//! - every run has finite limits ([`RunLimits`]): memory, tables, fuel, a wall-clock deadline,
//!   output; stack depth is an engine setting ([`SandboxConfig`]);
//! - whatever the guest does, the run ends with a typed [`Outcome`] and the host carries on;
//! - the two [`Strategy`]s give the same outcomes and the same WASI.
//!
//! What it does not do: decide who may run what (the runtime does), or isolate the host process
//! from bugs in the engines themselves (the worker process and its seccomp filter do).
#![deny(unsafe_code)]

pub mod artifact;
pub mod check;
mod instance;
mod interp;
mod jit;
pub mod limits;
pub mod outcome;
mod unsafe_artifact;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use covenant_wasi::WasiCtx;
use sha2::{Digest, Sha256};

pub use artifact::{ArtifactError, ArtifactSigner, TrustedSigners};
pub use check::{HostCalls, ModuleBounds, ModuleInfo, ModuleRefused, Refusal};
pub use instance::{Entry, Value};
pub use interp::FUEL_SLICE;
pub use jit::{EPOCH_TICK, WASMTIME_VERSION};
pub use limits::{RunLimits, SandboxConfig, Strategy};
pub use outcome::{Outcome, RunReport, TrapKind};

use instance::Ended;

/// Why a module could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The checks refused it; every reason is listed.
    #[error(transparent)]
    Refused(#[from] ModuleRefused),
    /// The artifact envelope was refused.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The engine could not compile a module that passed the checks.
    #[error("the engine could not compile the module: {0}")]
    Compile(String),
    /// Artifacts hold JIT machine code; the interpreter cannot run them.
    #[error(
        "artifacts hold machine code for the jit strategy; run the source .wasm with --strategy interpreter instead"
    )]
    ArtifactNeedsJit,
}

/// Why a run could not happen or could not finish. The guest's own faults are not errors: they
/// are [`Outcome::Trapped`].
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RunError {
    /// The run's limits refuse the module (its initial memory or table is too large).
    #[error(transparent)]
    Refused(#[from] ModuleRefused),
    /// The limits ask for more than the sandbox was configured for.
    #[error("{what} of {asked} exceeds this sandbox's ceiling of {ceiling}")]
    AboveCeiling {
        /// Which limit.
        what: &'static str,
        /// What the run asked for.
        asked: u64,
        /// What the sandbox allows.
        ceiling: u64,
    },
    /// The entry point is not exported.
    #[error("the module exports no function named {0:?}; a WASI command exports \"_start\"")]
    NoEntry(String),
    /// The entry point takes other arguments.
    #[error("{name} takes ({expected}); the arguments given do not match")]
    EntryType {
        /// The export.
        name: String,
        /// Its parameter types.
        expected: String,
    },
    /// Instantiation failed for a reason other than a guest trap (for example, every pool
    /// slot is in use).
    #[error("could not instantiate the module: {0}")]
    Instantiate(String),
    /// The engine failed in a way that is not the guest's fault.
    #[error("engine error: {0}")]
    Engine(String),
}

/// A run's report, its WASI context (captured output, the file system view), and the values
/// an exported function returned.
#[derive(Debug)]
pub struct RunOutput {
    /// What happened and what it used.
    pub report: RunReport,
    /// The context after the run.
    pub wasi: WasiCtx,
    /// Values returned by an [`Entry::Export`] call (empty for commands).
    pub returns: Vec<Value>,
}

/// A checked, compiled module. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    sha256: [u8; 32],
    info: ModuleInfo,
    compiled: Compiled,
}

enum Compiled {
    Jit(jit::JitModule),
    Interpreter(interp::InterpModule),
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("sha256", &self.sha256_hex())
            .field("info", &self.inner.info)
            .finish()
    }
}

impl Module {
    /// SHA-256 of the source module.
    pub fn sha256(&self) -> [u8; 32] {
        self.inner.sha256
    }

    /// SHA-256 of the source module, in hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.inner.sha256)
    }

    /// What the checks learned.
    pub fn info(&self) -> &ModuleInfo {
        &self.inner.info
    }
}

enum Backend {
    Jit(jit::JitEngine),
    Interpreter(interp::InterpEngine),
}

/// Counters a sandbox keeps; tests and operators read them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SandboxStats {
    /// Modules compiled (cache misses).
    pub compiled: u64,
    /// Loads answered from the cache.
    pub cache_hits: u64,
    /// Runs finished (with any outcome).
    pub runs: u64,
}

/// One engine, configured once, running many isolated instances. `Send + Sync`: share it.
pub struct Sandbox {
    config: SandboxConfig,
    backend: Backend,
    host_calls: HostCalls,
    cache: Mutex<ModuleCache>,
    compiled: AtomicU64,
    cache_hits: AtomicU64,
    runs: AtomicU64,
}

/// Compiled modules by source hash, oldest evicted first.
struct ModuleCache {
    capacity: usize,
    modules: HashMap<[u8; 32], Module>,
    order: VecDeque<[u8; 32]>,
}

impl ModuleCache {
    fn get(&self, key: &[u8; 32]) -> Option<Module> {
        self.modules.get(key).cloned()
    }

    fn insert(&mut self, key: [u8; 32], module: Module) {
        if self.capacity == 0 || self.modules.contains_key(&key) {
            return;
        }
        while self.modules.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.modules.remove(&oldest);
        }
        self.order.push_back(key);
        self.modules.insert(key, module);
    }
}

impl Sandbox {
    /// A sandbox for `config.strategy`, allowing WASI imports only.
    ///
    /// # Errors
    /// [`RunError::Engine`] if the engine cannot be set up (for example, the JIT cannot reserve
    /// its pool's virtual memory), or [`RunError::AboveCeiling`] for a memory bound above 4 GiB.
    pub fn new(config: SandboxConfig) -> Result<Self, RunError> {
        Self::with_host_calls(config, HostCalls::none())
    }

    /// A sandbox that also allows the given host-call imports (their implementations are bound
    /// by the caller's layer; this only widens the import check).
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn with_host_calls(config: SandboxConfig, host_calls: HostCalls) -> Result<Self, RunError> {
        if config.max_memory_bytes > limits::MAX_MEMORY_BYTES_CEILING {
            return Err(RunError::AboveCeiling {
                what: "max memory",
                asked: config.max_memory_bytes,
                ceiling: limits::MAX_MEMORY_BYTES_CEILING,
            });
        }
        let backend = match config.strategy {
            Strategy::Jit => Backend::Jit(jit::JitEngine::new(&config)?),
            Strategy::Interpreter => Backend::Interpreter(interp::InterpEngine::new(&config)?),
        };
        let cache = ModuleCache {
            capacity: config.cache_capacity,
            modules: HashMap::new(),
            order: VecDeque::new(),
        };
        Ok(Sandbox {
            config,
            backend,
            host_calls,
            cache: Mutex::new(cache),
            compiled: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            runs: AtomicU64::new(0),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Its counters.
    pub fn stats(&self) -> SandboxStats {
        SandboxStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            runs: self.runs.load(Ordering::Relaxed),
        }
    }

    /// The JIT engine's fingerprint (what artifacts must match), or `None` for the interpreter.
    pub fn fingerprint(&self) -> Option<&str> {
        match &self.backend {
            Backend::Jit(jit) => Some(jit.fingerprint()),
            Backend::Interpreter(_) => None,
        }
    }

    fn cached(&self, sha256: &[u8; 32]) -> Option<Module> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let hit = cache.get(sha256);
        if hit.is_some() {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn remember(&self, module: &Module) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(module.inner.sha256, module.clone());
    }

    /// Checks and compiles a module; the same bytes loaded again come from the cache.
    ///
    /// # Errors
    /// [`LoadError::Refused`] with every reason, or [`LoadError::Compile`].
    pub fn load(&self, wasm: &[u8]) -> Result<Module, LoadError> {
        let sha256: [u8; 32] = Sha256::digest(wasm).into();
        if let Some(module) = self.cached(&sha256) {
            return Ok(module);
        }
        let info = check::check_module(wasm, &self.config.module_bounds, &self.host_calls)?;
        info.check_limits(self.config.max_memory_bytes, self.config.max_table_elements)?;
        let compiled = match &self.backend {
            Backend::Jit(jit) => Compiled::Jit(jit.compile(wasm).map_err(LoadError::Compile)?),
            Backend::Interpreter(interp) => {
                Compiled::Interpreter(interp.compile(wasm, &info).map_err(LoadError::Compile)?)
            }
        };
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let module = Module {
            inner: Arc::new(ModuleInner {
                sha256,
                info,
                compiled,
            }),
        };
        self.remember(&module);
        Ok(module)
    }

    /// Compiles `wasm` ahead of time into a signed artifact for this sandbox's engine.
    ///
    /// # Errors
    /// [`LoadError::Refused`] if the checks refuse it, [`LoadError::ArtifactNeedsJit`] for the
    /// interpreter, [`LoadError::Compile`] or [`LoadError::Artifact`] on failure.
    pub fn compile_artifact(
        &self,
        wasm: &[u8],
        signer: &ArtifactSigner,
    ) -> Result<Vec<u8>, LoadError> {
        let Backend::Jit(jit) = &self.backend else {
            return Err(LoadError::ArtifactNeedsJit);
        };
        check::check_module(wasm, &self.config.module_bounds, &self.host_calls)?;
        let payload = jit.precompile(wasm).map_err(LoadError::Compile)?;
        Ok(artifact::seal(&payload, jit.fingerprint(), wasm, signer)?)
    }

    /// Loads a signed artifact. The envelope, the signature (against `trusted`) and the engine
    /// fingerprint are all checked before the machine code is touched.
    ///
    /// # Errors
    /// [`LoadError::Artifact`] saying which check failed and what to do.
    pub fn load_artifact(
        &self,
        bytes: &[u8],
        trusted: &TrustedSigners,
    ) -> Result<Module, LoadError> {
        let Backend::Jit(jit) = &self.backend else {
            return Err(LoadError::ArtifactNeedsJit);
        };
        let verified = artifact::verify(bytes, trusted, jit.fingerprint())?;
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&verified.header().source_sha256, &mut sha256).map_err(|_| {
            ArtifactError::Malformed("the header's source hash is not 64 hex digits".into())
        })?;
        if let Some(module) = self.cached(&sha256) {
            return Ok(module);
        }
        let module = unsafe_artifact::deserialize_verified(jit.engine(), &verified)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let info = info_from_compiled(&module);
        info.check_limits(self.config.max_memory_bytes, self.config.max_table_elements)?;
        let compiled = Compiled::Jit(jit.prepare(module).map_err(LoadError::Compile)?);
        self.compiled.fetch_add(1, Ordering::Relaxed);
        let module = Module {
            inner: Arc::new(ModuleInner {
                sha256,
                info,
                compiled,
            }),
        };
        self.remember(&module);
        Ok(module)
    }

    /// Runs `module` once in a fresh instance with `wasi` and `limits`, from `entry`.
    ///
    /// Whatever the guest does, this returns: its faults are [`Outcome::Trapped`] in the report.
    ///
    /// # Errors
    /// [`RunError`] when the run cannot start or the engine fails (not the guest's fault).
    pub fn run(
        &self,
        module: &Module,
        mut wasi: WasiCtx,
        limits: &RunLimits,
        entry: &Entry,
    ) -> Result<RunOutput, RunError> {
        if limits.max_memory_bytes > self.config.max_memory_bytes {
            return Err(RunError::AboveCeiling {
                what: "max memory",
                asked: limits.max_memory_bytes,
                ceiling: self.config.max_memory_bytes,
            });
        }
        if limits.max_table_elements > self.config.max_table_elements {
            return Err(RunError::AboveCeiling {
                what: "max table elements",
                asked: u64::from(limits.max_table_elements),
                ceiling: u64::from(self.config.max_table_elements),
            });
        }
        module
            .inner
            .info
            .check_limits(limits.max_memory_bytes, limits.max_table_elements)?;
        wasi.set_max_output_bytes(limits.max_output_bytes);
        let (ended, usage, wasi) = match (&self.backend, &module.inner.compiled) {
            (Backend::Jit(engine), Compiled::Jit(m)) => engine.run(m, wasi, limits, entry)?,
            (Backend::Interpreter(engine), Compiled::Interpreter(m)) => {
                engine.run(m, wasi, limits, entry)?
            }
            _ => {
                return Err(RunError::Engine(
                    "the module was compiled by another sandbox's engine".into(),
                ));
            }
        };
        self.runs.fetch_add(1, Ordering::Relaxed);
        let (outcome, detail, returns) = match ended {
            Ended::Returned(values) => (Outcome::Exited(0), None, values),
            Ended::Exit(code) => (Outcome::Exited(code), None, Vec::new()),
            Ended::Trap(kind, detail) => (Outcome::Trapped(kind), Some(detail), Vec::new()),
        };
        let peak = usage
            .peak_memory_bytes
            .max(module.inner.info.initial_memory_bytes);
        let report = RunReport {
            outcome,
            detail,
            fuel_used: usage.fuel_used,
            wall_time: usage.wall_time,
            peak_memory_bytes: peak,
            output_bytes: wasi.output_bytes(),
            strategy: self.config.strategy,
        };
        Ok(RunOutput {
            report,
            wasi,
            returns,
        })
    }
}

/// The facts the checks would have found, read from an already compiled module (artifacts
/// carry no source to check). Only an exported memory is visible here; a module that keeps its
/// memory private is still bounded, by the growth limiter, which refuses its initial allocation
/// (`memory-limit`) instead of the run being refused beforehand.
fn info_from_compiled(module: &wasmtime::Module) -> ModuleInfo {
    let mut info = ModuleInfo::default();
    for export in module.exports() {
        match export.ty() {
            wasmtime::ExternType::Memory(m) => {
                info.initial_memory_bytes = m.minimum().saturating_mul(m.page_size());
                info.exports.push(export.name().to_string());
            }
            wasmtime::ExternType::Func(_) => info.exports.push(export.name().to_string()),
            _ => {}
        }
    }
    info
}
