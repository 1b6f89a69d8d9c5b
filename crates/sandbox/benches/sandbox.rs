//! Covenant against the engines it wraps and against native code, in the same run.
//!
//! `cargo bench -p covenant-sandbox --bench sandbox`; figures go to `docs/benchmarks.md`.
//!
//! - `instantiate/*`: instantiate and run a trivial module (`_start` returns at once), per
//!   instance. Raw wasmtime uses the same pooling, fuel and epoch configuration as Covenant's
//!   `jit`, so the difference is Covenant's own work: a WASI context, limits, the report.
//! - `sha256-16MiB/*`: one kernel source (`guests/kernel/src/sha256.rs`) hashing 16 MiB,
//!   natively, through Covenant on each strategy, and on raw wasmtime (default configuration:
//!   no fuel, no epochs) and raw wasmi (no fuel).

use std::time::Duration;

use covenant_sandbox::{Entry, RunLimits, Sandbox, SandboxConfig, Strategy, Value};
use covenant_wasi::WasiCtx;
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../../../guests/kernel/src/sha256.rs"]
#[allow(dead_code, reason = "the bench uses the generated form only")]
mod sha256;

const TRIVIAL: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
const KERNEL_BYTES: u32 = 16 << 20;

fn limits() -> RunLimits {
    RunLimits {
        fuel: 1 << 40,
        timeout: Duration::from_secs(600),
        ..RunLimits::default()
    }
}

/// Raw wasmtime configured as Covenant's `jit` is (pooling with the same sizes, fuel, epochs).
fn raw_wasmtime_like_covenant() -> wasmtime::Engine {
    let defaults = SandboxConfig::new(Strategy::Jit);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_core_instances(defaults.max_instances)
        .total_memories(defaults.max_instances)
        .total_tables(defaults.max_instances * 4)
        .max_memories_per_module(1)
        .max_tables_per_module(4)
        .max_memory_size(defaults.max_memory_bytes as usize)
        .table_elements(defaults.max_table_elements as usize);
    let mut config = wasmtime::Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(defaults.max_wasm_stack_bytes)
        .memory_init_cow(true)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    wasmtime::Engine::new(&config).expect("engine")
}

fn instantiate(c: &mut Criterion) {
    let wasm = wat::parse_str(TRIVIAL).expect("wat");
    let mut group = c.benchmark_group("instantiate");

    for strategy in Strategy::ALL {
        let sandbox = Sandbox::new(SandboxConfig::new(strategy)).expect("sandbox");
        let module = sandbox.load(&wasm).expect("load");
        let limits = limits();
        group.bench_function(format!("covenant-{strategy}"), |b| {
            b.iter(|| {
                let wasi = WasiCtx::builder("trivial").build().expect("wasi");
                let run = sandbox
                    .run(&module, wasi, &limits, &Entry::Command)
                    .expect("run");
                assert_eq!(run.report.outcome, covenant_sandbox::Outcome::Exited(0));
            })
        });
    }

    let engine = raw_wasmtime_like_covenant();
    let module = wasmtime::Module::new(&engine, &wasm).expect("module");
    let linker = wasmtime::Linker::<()>::new(&engine);
    let pre = linker.instantiate_pre(&module).expect("pre");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| {
            let mut store = wasmtime::Store::new(&engine, ());
            store.set_fuel(1 << 40).expect("fuel");
            store.set_epoch_deadline(600_000);
            let instance = pre.instantiate(&mut store).expect("instantiate");
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .expect("_start");
            start.call(&mut store, ()).expect("call");
        })
    });

    let engine = wasmi::Engine::default();
    let module = wasmi::Module::new(&engine, &wasm).expect("module");
    let linker = wasmi::Linker::<()>::new(&engine);
    group.bench_function("raw-wasmi", |b| {
        b.iter(|| {
            let mut store = wasmi::Store::new(&engine, ());
            let instance = linker
                .instantiate_and_start(&mut store, &module)
                .expect("instantiate");
            let start = instance
                .get_typed_func::<(), ()>(&store, "_start")
                .expect("_start");
            start.call(&mut store, ()).expect("call");
        })
    });
    group.finish();
}

fn kernel(c: &mut Criterion) {
    let wasm = covenant_guests::COVENANT_KERNEL.bytes();
    let expected = sha256::generated_digest_word(KERNEL_BYTES as usize);
    let mut group = c.benchmark_group("sha256-16MiB");
    group.sample_size(10);

    group.bench_function("native", |b| {
        b.iter(|| {
            assert_eq!(
                sha256::generated_digest_word(std::hint::black_box(KERNEL_BYTES as usize)),
                expected
            )
        })
    });

    for strategy in Strategy::ALL {
        let sandbox = Sandbox::new(SandboxConfig::new(strategy)).expect("sandbox");
        let module = sandbox.load(&wasm).expect("load");
        let limits = limits();
        let entry = Entry::Export {
            name: "sha256_of_generated".into(),
            args: vec![Value::I32(KERNEL_BYTES as i32)],
        };
        group.bench_function(format!("covenant-{strategy}"), |b| {
            b.iter(|| {
                let run = sandbox
                    .run(
                        &module,
                        WasiCtx::builder("k").build().expect("wasi"),
                        &limits,
                        &entry,
                    )
                    .expect("run");
                assert_eq!(run.returns, vec![Value::I32(expected as i32)]);
            })
        });
    }

    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, &wasm).expect("module");
    group.bench_function("raw-wasmtime", |b| {
        b.iter(|| {
            let mut store = wasmtime::Store::new(&engine, ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiate");
            let f = instance
                .get_typed_func::<u32, u32>(&mut store, "sha256_of_generated")
                .expect("export");
            assert_eq!(f.call(&mut store, KERNEL_BYTES).expect("call"), expected);
        })
    });

    let engine = wasmi::Engine::default();
    let module = wasmi::Module::new(&engine, &wasm).expect("module");
    let linker = wasmi::Linker::<()>::new(&engine);
    group.bench_function("raw-wasmi", |b| {
        b.iter(|| {
            let mut store = wasmi::Store::new(&engine, ());
            let instance = linker
                .instantiate_and_start(&mut store, &module)
                .expect("instantiate");
            let f = instance
                .get_typed_func::<u32, u32>(&store, "sha256_of_generated")
                .expect("export");
            assert_eq!(f.call(&mut store, KERNEL_BYTES).expect("call"), expected);
        })
    });
    group.finish();
}

criterion_group!(benches, instantiate, kernel);
criterion_main!(benches);
