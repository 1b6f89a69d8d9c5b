//! Checks a module before any engine compiles it: lucet's "trusted bindings", completed.
//!
//! A module is refused unless it is valid WebAssembly (with only the features both engines
//! support), within every [`ModuleBounds`], and every import is a function we implement with
//! exactly the expected signature. A refused module gets one [`ModuleRefused`] listing every
//! offending item, so the author fixes them all at once.
//!
//! The bounds are also how Covenant keeps compiling hostile input from exhausting the host:
//! Cranelift's time and memory grow with function size, locals and function count, so
//! bounding those bounds compilation. `docs/sandbox.md` explains the choice.

use std::fmt;

use wasmparser::{
    CompositeInnerType, Encoding, ExternalKind, FuncType, Parser, Payload, TypeRef,
    ValType as WasmValType, Validator, WasmFeatures,
};

use covenant_wasi::preview1;

/// Default cap on a module's size: 64 MiB. Bounds parsing and validation work.
pub const DEFAULT_MAX_MODULE_BYTES: usize = 64 * 1024 * 1024;
/// Default cap on functions (imported plus defined): 100 000. Bounds compile time and memory.
pub const DEFAULT_MAX_FUNCTIONS: u32 = 100_000;
/// Default cap on one function body: 1 MiB of code. Cranelift's cost grows faster than
/// linearly with a function's size; this bounds one function's compile time and memory.
pub const DEFAULT_MAX_FUNCTION_BODY_BYTES: u32 = 1024 * 1024;
/// Default cap on locals in one function: 50 000 (the Web's limit). Bounds register
/// allocation and interpreter frame size.
pub const DEFAULT_MAX_LOCALS: u32 = 50_000;
/// Default cap on data segments: 100 000 (the Web's limit). Bounds instantiation work.
pub const DEFAULT_MAX_DATA_SEGMENTS: u32 = 100_000;
/// Default cap on element segments: 100 000. Bounds instantiation work.
pub const DEFAULT_MAX_ELEMENT_SEGMENTS: u32 = 100_000;
/// Default cap on globals: 100 000. Bounds instance size.
pub const DEFAULT_MAX_GLOBALS: u32 = 100_000;
/// Default cap on imports: 1 000. We implement fewer than 50; more is not a real program.
pub const DEFAULT_MAX_IMPORTS: u32 = 1_000;
/// Default cap on exports: 100 000 (the Web's limit).
pub const DEFAULT_MAX_EXPORTS: u32 = 100_000;
/// Linear memories a module may define: one (multi-memory is off on both engines).
pub const MAX_MEMORIES: u32 = 1;
/// Tables a module may define: four. Each table is a pool slot on the JIT.
pub const MAX_TABLES: u32 = 4;

/// What a module may contain. Each field is checked before compilation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleBounds {
    /// Bytes of the module. Default [`DEFAULT_MAX_MODULE_BYTES`].
    pub max_module_bytes: usize,
    /// Functions, imported plus defined. Default [`DEFAULT_MAX_FUNCTIONS`].
    pub max_functions: u32,
    /// Bytes of one function body. Default [`DEFAULT_MAX_FUNCTION_BODY_BYTES`].
    pub max_function_body_bytes: u32,
    /// Locals of one function. Default [`DEFAULT_MAX_LOCALS`].
    pub max_locals: u32,
    /// Data segments. Default [`DEFAULT_MAX_DATA_SEGMENTS`].
    pub max_data_segments: u32,
    /// Element segments. Default [`DEFAULT_MAX_ELEMENT_SEGMENTS`].
    pub max_element_segments: u32,
    /// Globals. Default [`DEFAULT_MAX_GLOBALS`].
    pub max_globals: u32,
    /// Imports. Default [`DEFAULT_MAX_IMPORTS`].
    pub max_imports: u32,
    /// Exports. Default [`DEFAULT_MAX_EXPORTS`].
    pub max_exports: u32,
}

impl Default for ModuleBounds {
    fn default() -> Self {
        ModuleBounds {
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            max_functions: DEFAULT_MAX_FUNCTIONS,
            max_function_body_bytes: DEFAULT_MAX_FUNCTION_BODY_BYTES,
            max_locals: DEFAULT_MAX_LOCALS,
            max_data_segments: DEFAULT_MAX_DATA_SEGMENTS,
            max_element_segments: DEFAULT_MAX_ELEMENT_SEGMENTS,
            max_globals: DEFAULT_MAX_GLOBALS,
            max_imports: DEFAULT_MAX_IMPORTS,
            max_exports: DEFAULT_MAX_EXPORTS,
        }
    }
}

/// Host functions a module may import besides WASI, with their signatures. Empty today; the
/// runtime adds Covenant's own host calls here.
#[derive(Clone, Debug, Default)]
pub struct HostCalls {
    functions: Vec<HostCall>,
}

/// One allowed host function import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCall {
    /// Import module name.
    pub module: String,
    /// Import field name.
    pub name: String,
    /// Parameter types.
    pub params: Vec<preview1::ValType>,
    /// Result types.
    pub results: Vec<preview1::ValType>,
}

impl HostCalls {
    /// No host calls beyond WASI.
    pub fn none() -> Self {
        HostCalls::default()
    }

    /// Allows one more host function.
    pub fn with(mut self, call: HostCall) -> Self {
        self.functions.push(call);
        self
    }

    fn expected(
        &self,
        module: &str,
        name: &str,
    ) -> Option<(Vec<preview1::ValType>, Vec<preview1::ValType>)> {
        if module == preview1::MODULE {
            return preview1::signature(name).map(|s| (s.params.to_vec(), s.results.to_vec()));
        }
        self.functions
            .iter()
            .find(|c| c.module == module && c.name == name)
            .map(|c| (c.params.clone(), c.results.clone()))
    }
}

/// One reason a module was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not valid WebAssembly, or uses a feature Covenant does not enable.
    Invalid(String),
    /// Exceeds one of the [`ModuleBounds`].
    Bound {
        /// What was counted (`functions`, `function 3 body bytes`, ...).
        what: String,
        /// How many the module has.
        actual: u64,
        /// The bound.
        limit: u64,
    },
    /// An import that is not in the allow-list, or has the wrong signature or kind.
    Import {
        /// `module::name`.
        import: String,
        /// What the module declares (`(i32) -> i32`, `memory`).
        declared: String,
        /// What would be right, when the name is allowed but the signature is not.
        expected: Option<String>,
    },
    /// The initial linear memory is larger than the run's limit allows.
    InitialMemory {
        /// Initial memory in bytes.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The initial table is larger than the run's limit allows.
    InitialTable {
        /// Initial table elements.
        elements: u64,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::limits::human_bytes;
        match self {
            Refusal::Invalid(msg) => write!(f, "not valid WebAssembly: {msg}"),
            Refusal::Bound {
                what,
                actual,
                limit,
            } => {
                write!(f, "{what}: {actual} exceeds the limit of {limit}")
            }
            Refusal::Import {
                import,
                declared,
                expected: None,
            } => {
                write!(f, "{import} {declared} is not an allowed import")
            }
            Refusal::Import {
                import,
                declared,
                expected: Some(expected),
            } => write!(
                f,
                "{import} {declared} is not an allowed import: it must be {expected}"
            ),
            Refusal::InitialMemory { bytes, limit } => write!(
                f,
                "initial memory of {} exceeds the memory limit of {}",
                human_bytes(*bytes),
                human_bytes(*limit)
            ),
            Refusal::InitialTable { elements, limit } => write!(
                f,
                "initial table of {elements} elements exceeds the table limit of {limit}"
            ),
        }
    }
}

/// A module Covenant will not run, with every reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ModuleRefused {
    /// Every reason, in the order found.
    pub reasons: Vec<Refusal>,
}

impl fmt::Display for ModuleRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reasons.as_slice() {
            [one] => write!(f, "module refused: {one}"),
            many => {
                write!(f, "module refused for {} reasons:", many.len())?;
                for reason in many {
                    write!(f, "\n  - {reason}")?;
                }
                Ok(())
            }
        }
    }
}

/// What the checks learned about a module that later steps need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Initial linear memory in bytes (0 without a memory).
    pub initial_memory_bytes: u64,
    /// Initial size of the largest table.
    pub initial_table_elements: u64,
    /// Whether the module has a start function.
    pub has_start: bool,
    /// Every export's name.
    pub exports: Vec<String>,
}

impl ModuleInfo {
    /// Refusals for a run whose limits are `max_memory_bytes` and `max_table_elements`.
    pub fn check_limits(
        &self,
        max_memory_bytes: u64,
        max_table_elements: u32,
    ) -> Result<(), ModuleRefused> {
        let mut reasons = Vec::new();
        if self.initial_memory_bytes > max_memory_bytes {
            reasons.push(Refusal::InitialMemory {
                bytes: self.initial_memory_bytes,
                limit: max_memory_bytes,
            });
        }
        if self.initial_table_elements > u64::from(max_table_elements) {
            reasons.push(Refusal::InitialTable {
                elements: self.initial_table_elements,
                limit: u64::from(max_table_elements),
            });
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(ModuleRefused { reasons })
        }
    }
}

/// The WebAssembly features Covenant accepts: what both engines implement the same way and
/// what Rust and C toolchains emit for wasm32-wasip1. SIMD, threads, memory64, multi-memory,
/// exceptions and GC are refused.
pub fn features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::FLOATS
}

fn type_string(params: &[WasmValType], results: &[WasmValType]) -> String {
    let list = |tys: &[WasmValType]| {
        tys.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match results {
        [] => format!("({}) -> ()", list(params)),
        [one] => format!("({}) -> {one}", list(params)),
        many => format!("({}) -> ({})", list(params), list(many)),
    }
}

fn expected_string(params: &[preview1::ValType], results: &[preview1::ValType]) -> String {
    let conv = |t: &preview1::ValType| match t {
        preview1::ValType::I32 => WasmValType::I32,
        preview1::ValType::I64 => WasmValType::I64,
    };
    let p: Vec<_> = params.iter().map(conv).collect();
    let r: Vec<_> = results.iter().map(conv).collect();
    type_string(&p, &r)
}

fn matches(func: &FuncType, params: &[preview1::ValType], results: &[preview1::ValType]) -> bool {
    let same = |a: &[WasmValType], b: &[preview1::ValType]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                matches!(
                    (x, y),
                    (WasmValType::I32, preview1::ValType::I32)
                        | (WasmValType::I64, preview1::ValType::I64)
                )
            })
    };
    same(func.params(), params) && same(func.results(), results)
}

struct Counter<'a> {
    reasons: &'a mut Vec<Refusal>,
}

impl Counter<'_> {
    fn bound(&mut self, what: impl Into<String>, actual: u64, limit: u64) {
        if actual > limit {
            self.reasons.push(Refusal::Bound {
                what: what.into(),
                actual,
                limit,
            });
        }
    }
}

/// Checks `wasm` against `bounds` and `host_calls`.
///
/// # Errors
/// [`ModuleRefused`] with every reason the module cannot run.
pub fn check_module(
    wasm: &[u8],
    bounds: &ModuleBounds,
    host_calls: &HostCalls,
) -> Result<ModuleInfo, ModuleRefused> {
    let mut reasons = Vec::new();
    if wasm.len() > bounds.max_module_bytes {
        // Too big to even look at: stop here.
        reasons.push(Refusal::Bound {
            what: "module bytes".into(),
            actual: wasm.len() as u64,
            limit: bounds.max_module_bytes as u64,
        });
        return Err(ModuleRefused { reasons });
    }
    // Validation first: every later step may then trust the structure it walks.
    let mut validator = Validator::new_with_features(features());
    if let Err(e) = validator.validate_all(wasm) {
        reasons.push(Refusal::Invalid(e.to_string()));
        return Err(ModuleRefused { reasons });
    }

    let mut info = ModuleInfo::default();
    let mut types: Vec<Option<FuncType>> = Vec::new();
    let mut imported_funcs = 0u64;
    let mut defined_funcs = 0u64;
    let mut body_index = 0u64;
    let mut count = Counter {
        reasons: &mut reasons,
    };
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                count.reasons.push(Refusal::Invalid(e.to_string()));
                break;
            }
        };
        match payload {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                count.reasons.push(Refusal::Invalid(
                    "components are not supported; give a core module".into(),
                ));
                break;
            }
            Payload::TypeSection(reader) => {
                for group in reader.into_iter().flatten() {
                    for sub in group.into_types() {
                        // Validation allows only function types (GC is off); keep indices aligned anyway.
                        types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(func) => Some(func.clone()),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                count.bound(
                    "imports",
                    u64::from(reader.count()),
                    u64::from(bounds.max_imports),
                );
                for import in reader.into_imports().flatten() {
                    let name = format!("{}::{}", import.module, import.name);
                    match import.ty {
                        TypeRef::Func(idx) => {
                            imported_funcs += 1;
                            let func = types.get(idx as usize).and_then(|t| t.as_ref());
                            let declared = func
                                .map(|f| type_string(f.params(), f.results()))
                                .unwrap_or_else(|| "(unknown type)".into());
                            match host_calls.expected(import.module, import.name) {
                                None => count.reasons.push(Refusal::Import {
                                    import: name,
                                    declared,
                                    expected: None,
                                }),
                                Some((params, results)) => {
                                    if !func.is_some_and(|f| matches(f, &params, &results)) {
                                        count.reasons.push(Refusal::Import {
                                            import: name,
                                            declared,
                                            expected: Some(expected_string(&params, &results)),
                                        });
                                    }
                                }
                            }
                        }
                        other => {
                            let kind = match other {
                                TypeRef::Memory(_) => "(memory)",
                                TypeRef::Table(_) => "(table)",
                                TypeRef::Global(_) => "(global)",
                                TypeRef::Tag(_) => "(tag)",
                                _ => "(function)",
                            };
                            count.reasons.push(Refusal::Import {
                                import: name,
                                declared: kind.into(),
                                expected: None,
                            });
                        }
                    }
                }
            }
            Payload::FunctionSection(reader) => defined_funcs = u64::from(reader.count()),
            Payload::TableSection(reader) => {
                count.bound("tables", u64::from(reader.count()), u64::from(MAX_TABLES));
                for table in reader.into_iter().flatten() {
                    info.initial_table_elements = info.initial_table_elements.max(table.ty.initial);
                }
            }
            Payload::MemorySection(reader) => {
                count.bound(
                    "memories",
                    u64::from(reader.count()),
                    u64::from(MAX_MEMORIES),
                );
                for memory in reader.into_iter().flatten() {
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    info.initial_memory_bytes = memory.initial.saturating_mul(page);
                }
            }
            Payload::GlobalSection(reader) => {
                count.bound(
                    "globals",
                    u64::from(reader.count()),
                    u64::from(bounds.max_globals),
                );
            }
            Payload::ExportSection(reader) => {
                count.bound(
                    "exports",
                    u64::from(reader.count()),
                    u64::from(bounds.max_exports),
                );
                for export in reader.into_iter().flatten() {
                    if export.kind == ExternalKind::Func || export.kind == ExternalKind::Memory {
                        info.exports.push(export.name.to_string());
                    }
                }
            }
            Payload::StartSection { .. } => info.has_start = true,
            Payload::ElementSection(reader) => {
                count.bound(
                    "element segments",
                    u64::from(reader.count()),
                    u64::from(bounds.max_element_segments),
                );
            }
            Payload::DataSection(reader) => {
                count.bound(
                    "data segments",
                    u64::from(reader.count()),
                    u64::from(bounds.max_data_segments),
                );
            }
            Payload::CodeSectionEntry(body) => {
                let index = imported_funcs + body_index;
                body_index += 1;
                let size = body.range().len() as u64;
                count.bound(
                    format!("function {index} body bytes"),
                    size,
                    u64::from(bounds.max_function_body_bytes),
                );
                let mut locals = 0u64;
                if let Ok(reader) = body.get_locals_reader() {
                    for local in reader.into_iter().flatten() {
                        locals = locals.saturating_add(u64::from(local.0));
                    }
                }
                count.bound(
                    format!("function {index} locals"),
                    locals,
                    u64::from(bounds.max_locals),
                );
            }
            _ => {}
        }
    }
    count.bound(
        "functions",
        imported_funcs + defined_funcs,
        u64::from(bounds.max_functions),
    );
    if reasons.is_empty() {
        Ok(info)
    } else {
        Err(ModuleRefused { reasons })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(src: &str) -> Vec<u8> {
        wat::parse_str(src).unwrap()
    }

    #[test]
    fn every_offending_import_is_listed_in_one_error() {
        let wasm = wat(r#"(module
            (import "wasi_snapshot_preview1" "foo" (func (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
            (import "env" "memory" (memory 1))
            (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#);
        let err = check_module(&wasm, &ModuleBounds::default(), &HostCalls::none()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.reasons.len(), 3, "{text}");
        assert!(
            text.contains("wasi_snapshot_preview1::foo (i32) -> i32 is not an allowed import"),
            "{text}"
        );
        assert!(text.contains("wasi_snapshot_preview1::fd_write (i32) -> i32 is not an allowed import: it must be (i32, i32, i32, i32) -> i32"), "{text}");
        assert!(
            text.contains("env::memory (memory) is not an allowed import"),
            "{text}"
        );
    }

    #[test]
    fn host_calls_extend_the_allow_list() {
        let wasm = wat(r#"(module (import "covenant" "ping" (func (param i64))))"#);
        assert!(check_module(&wasm, &ModuleBounds::default(), &HostCalls::none()).is_err());
        let calls = HostCalls::none().with(HostCall {
            module: "covenant".into(),
            name: "ping".into(),
            params: vec![preview1::ValType::I64],
            results: vec![],
        });
        assert!(check_module(&wasm, &ModuleBounds::default(), &calls).is_ok());
    }

    #[test]
    fn bounds_are_each_reported() {
        let wasm = wat(r#"(module
            (func (local i32 i32 i32 i32 i32))
            (func) (func)
            (global i32 (i32.const 0)) (global i32 (i32.const 0)))"#);
        let bounds = ModuleBounds {
            max_functions: 2,
            max_locals: 4,
            max_globals: 1,
            ..ModuleBounds::default()
        };
        let text = check_module(&wasm, &bounds, &HostCalls::none())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("function 0 locals: 5 exceeds the limit of 4"),
            "{text}"
        );
        assert!(
            text.contains("functions: 3 exceeds the limit of 2"),
            "{text}"
        );
        assert!(text.contains("globals: 2 exceeds the limit of 1"), "{text}");
    }

    #[test]
    fn features_both_engines_lack_are_refused() {
        let simd = wat("(module (func (result v128) (v128.const i64x2 0 0)))");
        let err = check_module(&simd, &ModuleBounds::default(), &HostCalls::none()).unwrap_err();
        assert!(matches!(err.reasons[0], Refusal::Invalid(_)), "{err}");
        let threads = wat("(module (memory 1 1 shared))");
        assert!(check_module(&threads, &ModuleBounds::default(), &HostCalls::none()).is_err());
    }

    #[test]
    fn initial_memory_is_known_before_instantiation() {
        let wasm = wat("(module (memory 100) (table 7 funcref) (start 0) (func))");
        let info = check_module(&wasm, &ModuleBounds::default(), &HostCalls::none()).unwrap();
        assert_eq!(info.initial_memory_bytes, 100 * 65536);
        assert_eq!(info.initial_table_elements, 7);
        assert!(info.has_start);
        let err = info.check_limits(64 * 65536, 5).unwrap_err().to_string();
        assert!(
            err.contains("initial memory of 6.2 MiB exceeds the memory limit of 4 MiB"),
            "{err}"
        );
        assert!(
            err.contains("initial table of 7 elements exceeds the table limit of 5"),
            "{err}"
        );
    }
}
