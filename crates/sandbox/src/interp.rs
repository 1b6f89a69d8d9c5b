//! The `interpreter` strategy: wasmi.
//!
//! wasmi has no epoch interruption, so wall time is bounded with fuel slices: the interpreter
//! runs with at most [`FUEL_SLICE`] units of fuel at a time; when a slice runs out, the call is
//! suspended (wasmi's resumable calls), the deadline and the total budget are checked, and the
//! call resumes with the next slice. A slice is about a millisecond of interpretation, so the
//! deadline is honoured to within a few milliseconds.
//!
//! wasmi runs a module's start function inside instantiation, where it cannot be suspended.
//! So before compiling, a module with a start function is rewritten: the start section is
//! removed and the function exported under a private name, and the run calls it, resumably,
//! right after instantiation, which is what the start section means.

use std::time::{Duration, Instant};

use covenant_wasi::{GuestMemory, Termination, WasiCtx};
use wasmi::{Caller, Config, Engine, Linker, Module, ResumableCall, Store, Val};

use crate::RunError;
use crate::check::ModuleInfo;
use crate::instance::{
    Ended, Entry, GrowthLimits, HostTrap, Value, fuel_trap, timeout_trap, wasm_trap,
};
use crate::jit::Usage;
use crate::limits::{RunLimits, SandboxConfig};
use crate::outcome::TrapKind;

/// Fuel per slice: 1 000 000 units, about a millisecond of interpretation. Smaller slices
/// honour the deadline more tightly and cost more suspensions.
pub const FUEL_SLICE: u64 = 1_000_000;

/// The export name a rewritten start function gets. Not a valid identifier in any source
/// language, so it cannot clash with a real export by accident; the rewrite checks anyway.
const START_EXPORT: &str = "covenant:start";

pub(crate) struct InterpState {
    wasi: WasiCtx,
    limits: GrowthLimits,
}

impl wasmi::ResourceLimiter for GrowthLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if self.memory_growing(desired) {
            Ok(true)
        } else {
            Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation)
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if self.table_growing(desired) {
            Ok(true)
        } else {
            Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation)
        }
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        crate::check::MAX_TABLES as usize
    }

    fn memories(&self) -> usize {
        crate::check::MAX_MEMORIES as usize
    }
}

fn wasi_parts<'a>(
    caller: &'a mut Caller<'_, InterpState>,
) -> Result<(GuestMemory<'a>, &'a mut WasiCtx), Termination> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| {
            Termination::BadHostCall(
                "the module calls WASI but exports no memory named \"memory\"".into(),
            )
        })?;
    let (bytes, state) = memory.data_and_store_mut(caller);
    Ok((GuestMemory::new(bytes), &mut state.wasi))
}

macro_rules! bind_wasmi {
    ($( $name:ident ( $($arg:ident : $ty:ident),* ) -> $ret:tt; )*) => {
        fn add_wasi(linker: &mut Linker<InterpState>) -> Result<(), wasmi::errors::LinkerError> {
            $(
                linker.func_wrap(
                    covenant_wasi::preview1::MODULE,
                    stringify!($name),
                    |mut caller: Caller<'_, InterpState>, $($arg: $ty),*| -> Result<$ret, wasmi::Error> {
                        let (mut mem, wasi) = wasi_parts(&mut caller).map_err(|t| wasmi::Error::host(HostTrap(t)))?;
                        covenant_wasi::preview1::$name(wasi, &mut mem, $($arg),*)
                            .map_err(|t| wasmi::Error::host(HostTrap(t)))
                    },
                )?;
            )*
            Ok(())
        }
    };
}

covenant_wasi::for_each_preview1_function!(bind_wasmi);

pub(crate) struct InterpEngine {
    engine: Engine,
    linker: Linker<InterpState>,
}

pub(crate) struct InterpModule {
    module: Module,
    /// The export the start function was moved to, if the module had one.
    start: Option<String>,
}

impl InterpEngine {
    pub(crate) fn new(config: &SandboxConfig) -> Result<Self, RunError> {
        let mut wasm_config = Config::default();
        wasm_config
            .consume_fuel(true)
            .set_max_recursion_depth(config.max_call_depth);
        let engine = Engine::new(&wasm_config);
        let mut linker = Linker::new(&engine);
        add_wasi(&mut linker).map_err(|e| RunError::Engine(format!("binding WASI: {e}")))?;
        Ok(InterpEngine { engine, linker })
    }

    pub(crate) fn compile(&self, wasm: &[u8], info: &ModuleInfo) -> Result<InterpModule, String> {
        let (bytes, start) = if info.has_start {
            let mut name = START_EXPORT.to_string();
            while info.exports.contains(&name) {
                name.push('_');
            }
            (move_start_to_export(wasm, &name)?, Some(name))
        } else {
            (wasm.to_vec(), None)
        };
        let module = Module::new(&self.engine, &bytes).map_err(|e| e.to_string())?;
        Ok(InterpModule { module, start })
    }

    pub(crate) fn run(
        &self,
        module: &InterpModule,
        wasi: WasiCtx,
        limits: &RunLimits,
        entry: &Entry,
    ) -> Result<(Ended, Usage, WasiCtx), RunError> {
        let state = InterpState {
            wasi,
            limits: GrowthLimits::new(limits.max_memory_bytes, limits.max_table_elements),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let started = Instant::now();
        let deadline = started + limits.timeout;
        store.data_mut().wasi.set_deadline(deadline);
        let mut budget = FuelBudget {
            total: limits.fuel,
            given: 0,
            deadline,
            timeout: limits.timeout,
        };

        let result = self.call(&mut store, module, entry, &mut budget);
        let wall_time = started.elapsed();
        let left = store.get_fuel().unwrap_or(0);
        let fuel_used = budget.given.saturating_sub(left);
        let ended = match result {
            Ok(values) => Ended::Returned(values),
            Err(Stop::Ended(ended)) => ended,
            Err(Stop::Run(e)) => return Err(e),
            Err(Stop::Wasm(error)) => classify(&error, store.data(), limits)?,
        };
        let state = store.into_data();
        let usage = Usage {
            fuel_used,
            wall_time,
            peak_memory_bytes: state.limits.peak_memory_bytes,
        };
        Ok((ended, usage, state.wasi))
    }

    fn call(
        &self,
        store: &mut Store<InterpState>,
        module: &InterpModule,
        entry: &Entry,
        budget: &mut FuelBudget,
    ) -> Result<Vec<Value>, Stop> {
        budget.refill(store, 1)?;
        let instance = self
            .linker
            .instantiate_and_start(&mut *store, &module.module)
            .map_err(Stop::Wasm)?;
        if let Some(start) = &module.start {
            let func = instance.get_func(&mut *store, start).ok_or_else(|| {
                Stop::Run(RunError::Engine(
                    "the rewritten start function is missing".into(),
                ))
            })?;
            budget.drive(store, &func, &[], &mut [])?;
        }
        let (name, args): (&str, &[Value]) = match entry {
            Entry::Command => ("_start", &[]),
            Entry::Export { name, args } => (name, args),
        };
        let func = instance
            .get_func(&mut *store, name)
            .ok_or_else(|| Stop::Run(RunError::NoEntry(name.to_string())))?;
        let ty = func.ty(&*store);
        let params: Vec<Val> = args
            .iter()
            .map(|v| match *v {
                Value::I32(x) => Val::I32(x),
                Value::I64(x) => Val::I64(x),
                Value::F32(x) => Val::F32(f32::from_bits(x).into()),
                Value::F64(x) => Val::F64(f64::from_bits(x).into()),
            })
            .collect();
        let same_types = ty.params().len() == params.len()
            && ty.params().iter().zip(&params).all(|(t, v)| *t == v.ty());
        if !same_types {
            let expected = ty
                .params()
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Stop::Run(RunError::EntryType {
                name: name.to_string(),
                expected,
            }));
        }
        let mut results: Vec<Val> = ty
            .results()
            .iter()
            .map(|t| Val::default_for_ty(*t))
            .collect();
        budget.drive(store, &func, &params, &mut results)?;
        Ok(results
            .into_iter()
            .filter_map(|v| match v {
                Val::I32(x) => Some(Value::I32(x)),
                Val::I64(x) => Some(Value::I64(x)),
                Val::F32(x) => Some(Value::F32(f32::from(x).to_bits())),
                Val::F64(x) => Some(Value::F64(f64::from(x).to_bits())),
                _ => None,
            })
            .collect())
    }
}

/// Why a call stopped before returning.
enum Stop {
    /// A Wasm trap or host error, classified afterwards.
    Wasm(wasmi::Error),
    /// Fuel or time ran out between slices.
    Ended(Ended),
    /// Not the guest's doing.
    Run(RunError),
}

/// The run's fuel, handed out a slice at a time.
struct FuelBudget {
    total: u64,
    given: u64,
    deadline: Instant,
    /// The run's wall-clock limit, for the message.
    timeout: Duration,
}

impl FuelBudget {
    /// Gives the store its next slice: at least `needed`, at most what is left.
    fn refill(&mut self, store: &mut Store<InterpState>, needed: u64) -> Result<(), Stop> {
        let left_in_store = store.get_fuel().unwrap_or(0);
        let remaining = self.total - self.given;
        if remaining == 0 || remaining + left_in_store < needed {
            return Err(Stop::Ended(fuel_trap(self.total)));
        }
        let slice = FUEL_SLICE.max(needed).min(remaining);
        self.given += slice;
        store
            .set_fuel(left_in_store + slice)
            .map_err(|e| Stop::Run(RunError::Engine(e.to_string())))
    }

    /// Calls `func`, resuming it after every slice until it returns, traps, or runs out of
    /// fuel or time.
    fn drive(
        &mut self,
        store: &mut Store<InterpState>,
        func: &wasmi::Func,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), Stop> {
        let mut call = func
            .call_resumable(&mut *store, params, results)
            .map_err(Stop::Wasm)?;
        loop {
            match call {
                ResumableCall::Finished => return Ok(()),
                ResumableCall::HostTrap(trap) => return Err(Stop::Wasm(trap.into_host_error())),
                ResumableCall::OutOfFuel(suspended) => {
                    if Instant::now() >= self.deadline {
                        return Err(Stop::Ended(timeout_trap(self.timeout)));
                    }
                    self.refill(store, suspended.required_fuel())?;
                    call = suspended.resume(&mut *store, results).map_err(Stop::Wasm)?;
                }
            }
        }
    }
}

fn classify(
    error: &wasmi::Error,
    state: &InterpState,
    limits: &RunLimits,
) -> Result<Ended, RunError> {
    if let Some((kind, detail)) = &state.limits.hit {
        return Ok(Ended::Trap(*kind, detail.clone()));
    }
    if let Some(HostTrap(t)) = error.downcast_ref::<HostTrap>() {
        return Ok(Ended::from_termination(t, limits.timeout));
    }
    use wasmi::TrapCode;
    let kind = match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => return Ok(fuel_trap(limits.fuel)),
        Some(TrapCode::UnreachableCodeReached) => TrapKind::Unreachable,
        Some(TrapCode::MemoryOutOfBounds | TrapCode::TableOutOfBounds) => TrapKind::OutOfBounds,
        Some(TrapCode::IndirectCallToNull) => TrapKind::UninitializedElement,
        Some(TrapCode::IntegerDivisionByZero) => TrapKind::IntegerDivideByZero,
        Some(TrapCode::IntegerOverflow) => TrapKind::IntegerOverflow,
        Some(TrapCode::BadConversionToInteger) => TrapKind::BadConversionToInteger,
        Some(TrapCode::StackOverflow) => TrapKind::StackOverflow,
        Some(TrapCode::BadSignature) => TrapKind::IndirectCallTypeMismatch,
        Some(TrapCode::GrowthOperationLimited) => TrapKind::MemoryLimit,
        Some(other) => return Err(RunError::Engine(format!("unexpected trap: {other}"))),
        None => return Err(RunError::Instantiate(error.to_string())),
    };
    Ok(wasm_trap(kind))
}

fn read_leb_u32(bytes: &[u8], at: &mut usize) -> Result<u32, String> {
    let mut result: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated LEB128")?;
        *at += 1;
        result |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(result);
        }
    }
    Err("LEB128 too long".into())
}

fn write_leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    write_leb_u32(out, content.len() as u32);
    out.extend_from_slice(content);
}

const SECTION_EXPORT: u8 = 7;
const SECTION_START: u8 = 8;
/// Sections that come after the export section in a module's required order.
const AFTER_EXPORT: [u8; 5] = [8, 9, 12, 10, 11];

/// Removes the start section of an already validated module and exports its function as
/// `name` instead. Every other byte stays as it was.
fn move_start_to_export(wasm: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let header = wasm.get(..8).ok_or("truncated module")?;
    let mut sections: Vec<(u8, &[u8])> = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = read_leb_u32(wasm, &mut at)? as usize;
        let content = wasm.get(at..at + size).ok_or("truncated section")?;
        sections.push((id, content));
        at += size;
    }
    let start_func = sections
        .iter()
        .find(|(id, _)| *id == SECTION_START)
        .map(|(_, content)| read_leb_u32(content, &mut 0))
        .ok_or("no start section")??;
    let mut entry = Vec::new();
    write_leb_u32(&mut entry, name.len() as u32);
    entry.extend_from_slice(name.as_bytes());
    entry.push(0x00); // export kind: function
    write_leb_u32(&mut entry, start_func);

    let mut out = header.to_vec();
    let has_exports = sections.iter().any(|(id, _)| *id == SECTION_EXPORT);
    let mut inserted = false;
    for (id, content) in &sections {
        if !has_exports && !inserted && AFTER_EXPORT.contains(id) {
            let mut fresh = Vec::new();
            write_leb_u32(&mut fresh, 1);
            fresh.extend_from_slice(&entry);
            write_section(&mut out, SECTION_EXPORT, &fresh);
            inserted = true;
        }
        match *id {
            SECTION_START => {}
            SECTION_EXPORT => {
                let mut at = 0;
                let count = read_leb_u32(content, &mut at)?;
                let mut grown = Vec::with_capacity(content.len() + entry.len() + 5);
                write_leb_u32(&mut grown, count + 1);
                grown.extend_from_slice(&content[at..]);
                grown.extend_from_slice(&entry);
                write_section(&mut out, SECTION_EXPORT, &grown);
            }
            _ => write_section(&mut out, *id, content),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_moves_to_an_export_and_the_module_stays_valid() {
        for src in [
            "(module (func $s) (start $s))",
            r#"(module (memory 1) (func $s) (func (export "f")) (start $s) (data (i32.const 0) "x"))"#,
        ] {
            let wasm = wat::parse_str(src).unwrap();
            let moved = move_start_to_export(&wasm, START_EXPORT).unwrap();
            wasmparser::Validator::new().validate_all(&moved).unwrap();
            let info = crate::check::check_module(&moved, &Default::default(), &Default::default())
                .unwrap();
            assert!(!info.has_start, "{src}");
            assert!(info.exports.iter().any(|e| e == START_EXPORT), "{src}");
        }
    }
}
