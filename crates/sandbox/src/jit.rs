//! The `jit` strategy: wasmtime with Cranelift, pooling instance allocation and copy-on-write
//! memory images.
//!
//! CPU is bounded twice: fuel (deterministic) and epoch interruption (wall clock): a ticker
//! thread advances the engine's epoch every [`EPOCH_TICK`], and each store traps once its
//! deadline's epoch passes.

use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use covenant_wasi::{GuestMemory, Termination, WasiCtx};
use sha2::{Digest, Sha256};
use wasmtime::{
    Caller, Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap, Val,
};

use crate::RunError;
use crate::check::MAX_TABLES;
use crate::instance::{
    Ended, Entry, GrowthLimits, HostTrap, Value, fuel_trap, timeout_trap, wasm_trap,
};
use crate::limits::{RunLimits, SandboxConfig};
use crate::outcome::TrapKind;

/// The wasmtime version compiled in, recorded in artifacts.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// How often the epoch advances: 1 ms. A deadline is honoured to within about one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// What one wasmtime store holds.
pub(crate) struct JitState {
    wasi: WasiCtx,
    limits: GrowthLimits,
    memory: Option<wasmtime::Memory>,
}

impl ResourceLimiter for GrowthLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.memory_growing(desired) {
            Ok(true)
        } else {
            Err(wasmtime::Error::msg("memory limit"))
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.table_growing(desired) {
            Ok(true)
        } else {
            Err(wasmtime::Error::msg("table limit"))
        }
    }
}

/// The guest's memory and WASI context for one host call. The memory export is looked up once
/// and cached (also during a start function, before instantiation finishes).
fn wasi_parts<'a>(
    caller: &'a mut Caller<'_, JitState>,
) -> Result<(GuestMemory<'a>, &'a mut WasiCtx), Termination> {
    let memory = match caller.data().memory {
        Some(memory) => memory,
        None => {
            let memory = caller
                .get_export("memory")
                .and_then(|e| e.into_memory())
                .ok_or_else(|| {
                    Termination::BadHostCall(
                        "the module calls WASI but exports no memory named \"memory\"".into(),
                    )
                })?;
            caller.data_mut().memory = Some(memory);
            memory
        }
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    Ok((GuestMemory::new(bytes), &mut state.wasi))
}

macro_rules! bind_wasmtime {
    ($( $name:ident ( $($arg:ident : $ty:ident),* ) -> $ret:tt; )*) => {
        fn add_wasi(linker: &mut Linker<JitState>) -> wasmtime::Result<()> {
            $(
                linker.func_wrap(
                    covenant_wasi::preview1::MODULE,
                    stringify!($name),
                    |mut caller: Caller<'_, JitState>, $($arg: $ty),*| -> wasmtime::Result<$ret> {
                        let (mut mem, wasi) = wasi_parts(&mut caller).map_err(|t| wasmtime::Error::new(HostTrap(t)))?;
                        covenant_wasi::preview1::$name(wasi, &mut mem, $($arg),*)
                            .map_err(|t| wasmtime::Error::new(HostTrap(t)))
                    },
                )?;
            )*
            Ok(())
        }
    };
}

covenant_wasi::for_each_preview1_function!(bind_wasmtime);

/// A wasmtime engine with its linker and epoch ticker.
pub(crate) struct JitEngine {
    engine: Engine,
    linker: Linker<JitState>,
    fingerprint: String,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for JitEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// A compiled module, ready to instantiate without resolving imports again.
pub(crate) struct JitModule {
    pre: InstancePre<JitState>,
}

/// Feeds `Hash` output into SHA-256, to turn wasmtime's compatibility hash into a fingerprint.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl JitEngine {
    pub(crate) fn new(config: &SandboxConfig) -> Result<Self, RunError> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances.saturating_mul(MAX_TABLES))
            .max_memories_per_module(1)
            .max_tables_per_module(MAX_TABLES)
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            .table_elements(config.max_table_elements as usize);
        let mut wasm_config = Config::new();
        wasm_config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack_bytes)
            .memory_init_cow(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm_config)
            .map_err(|e| RunError::Engine(format!("creating the wasmtime engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        add_wasi(&mut linker).map_err(|e| RunError::Engine(format!("binding WASI: {e}")))?;

        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        hasher.0.update(WASMTIME_VERSION.as_bytes());
        let fingerprint = hex::encode(hasher.0.finalize());

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("covenant-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| RunError::Engine(format!("starting the epoch ticker: {e}")))?;
        Ok(JitEngine {
            engine,
            linker,
            fingerprint,
            stop_ticker,
        })
    }

    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn compile(&self, wasm: &[u8]) -> Result<JitModule, String> {
        let module = Module::new(&self.engine, wasm).map_err(|e| format!("{e:#}"))?;
        self.prepare(module)
    }

    pub(crate) fn prepare(&self, module: Module) -> Result<JitModule, String> {
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| format!("{e:#}"))?;
        Ok(JitModule { pre })
    }

    pub(crate) fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, String> {
        self.engine
            .precompile_module(wasm)
            .map_err(|e| format!("{e:#}"))
    }

    pub(crate) fn run(
        &self,
        module: &JitModule,
        wasi: WasiCtx,
        limits: &RunLimits,
        entry: &Entry,
    ) -> Result<(Ended, Usage, WasiCtx), RunError> {
        let state = JitState {
            wasi,
            limits: GrowthLimits::new(limits.max_memory_bytes, limits.max_table_elements),
            memory: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| RunError::Engine(e.to_string()))?;
        let ticks = limits
            .timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis())
            .saturating_add(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();
        let started = Instant::now();
        store.data_mut().wasi.set_deadline(started + limits.timeout);

        let result = call(&mut store, module, entry);
        let wall_time = started.elapsed();
        let fuel_left = store.get_fuel().unwrap_or(0);
        let ended = match result {
            Ok(values) => Ended::Returned(values),
            Err(error) => classify(&error, store.data(), limits)?,
        };
        let state = store.into_data();
        let usage = Usage {
            fuel_used: limits.fuel.saturating_sub(fuel_left),
            wall_time,
            peak_memory_bytes: state.limits.peak_memory_bytes,
        };
        Ok((ended, usage, state.wasi))
    }
}

/// What a run used.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    pub(crate) fuel_used: u64,
    pub(crate) wall_time: Duration,
    pub(crate) peak_memory_bytes: u64,
}

/// An error from the call that is not a trap: the entry point is missing or mistyped.
#[derive(Debug)]
struct NoEntry(RunError);

impl std::fmt::Display for NoEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for NoEntry {}

fn call(
    store: &mut Store<JitState>,
    module: &JitModule,
    entry: &Entry,
) -> wasmtime::Result<Vec<Value>> {
    let instance = module.pre.instantiate(&mut *store)?;
    if store.data().memory.is_none() {
        store.data_mut().memory = instance.get_memory(&mut *store, "memory");
    }
    let (name, args): (&str, &[Value]) = match entry {
        Entry::Command => ("_start", &[]),
        Entry::Export { name, args } => (name, args),
    };
    let func = instance
        .get_func(&mut *store, name)
        .ok_or_else(|| wasmtime::Error::new(NoEntry(RunError::NoEntry(name.to_string()))))?;
    let params: Vec<Val> = args
        .iter()
        .map(|v| match *v {
            Value::I32(x) => Val::I32(x),
            Value::I64(x) => Val::I64(x),
            Value::F32(x) => Val::F32(x),
            Value::F64(x) => Val::F64(x),
        })
        .collect();
    let ty = func.ty(&*store);
    let same_types = ty.params().len() == params.len()
        && ty.params().zip(&params).all(|(expected, given)| {
            matches!(
                (expected, given),
                (wasmtime::ValType::I32, Val::I32(_))
                    | (wasmtime::ValType::I64, Val::I64(_))
                    | (wasmtime::ValType::F32, Val::F32(_))
                    | (wasmtime::ValType::F64, Val::F64(_))
            )
        });
    if !same_types {
        let expected = ty
            .params()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(wasmtime::Error::new(NoEntry(RunError::EntryType {
            name: name.to_string(),
            expected,
        })));
    }
    let mut results = vec![Val::I32(0); ty.results().len()];
    func.call(&mut *store, &params, &mut results)?;
    Ok(results
        .into_iter()
        .filter_map(|v| match v {
            Val::I32(x) => Some(Value::I32(x)),
            Val::I64(x) => Some(Value::I64(x)),
            Val::F32(x) => Some(Value::F32(x)),
            Val::F64(x) => Some(Value::F64(x)),
            _ => None,
        })
        .collect())
}

/// Turns a wasmtime error into how the run ended, or a host-side error.
fn classify(
    error: &wasmtime::Error,
    state: &JitState,
    limits: &RunLimits,
) -> Result<Ended, RunError> {
    if let Some((kind, detail)) = &state.limits.hit {
        return Ok(Ended::Trap(*kind, detail.clone()));
    }
    if let Some(HostTrap(t)) = error.downcast_ref::<HostTrap>() {
        return Ok(Ended::from_termination(t, limits.timeout));
    }
    if let Some(NoEntry(e)) = error.downcast_ref::<NoEntry>() {
        return Err(e.clone());
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        let kind = match trap {
            Trap::OutOfFuel => return Ok(fuel_trap(limits.fuel)),
            Trap::Interrupt => return Ok(timeout_trap(limits.timeout)),
            Trap::StackOverflow => TrapKind::StackOverflow,
            Trap::MemoryOutOfBounds
            | Trap::HeapMisaligned
            | Trap::TableOutOfBounds
            | Trap::ArrayOutOfBounds => TrapKind::OutOfBounds,
            Trap::IndirectCallToNull => TrapKind::UninitializedElement,
            Trap::BadSignature => TrapKind::IndirectCallTypeMismatch,
            Trap::IntegerOverflow => TrapKind::IntegerOverflow,
            Trap::IntegerDivisionByZero => TrapKind::IntegerDivideByZero,
            Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
            Trap::UnreachableCodeReached => TrapKind::Unreachable,
            Trap::NullReference => TrapKind::NullReference,
            other => return Err(RunError::Engine(format!("unexpected trap: {other}"))),
        };
        return Ok(wasm_trap(kind));
    }
    Err(RunError::Instantiate(format!("{error:#}")))
}
