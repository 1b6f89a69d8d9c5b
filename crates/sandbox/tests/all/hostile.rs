//! The hostile corpus: every case ends its instance with the expected, typed outcome on both
//! engines, or is refused before it runs, and the host carries on.

use std::time::Duration;

use covenant_sandbox::{LoadError, Outcome, RunError, RunLimits, Strategy, TrapKind};
use covenant_wasi::WasiCtx;

use crate::{run_bytes, run_wat, sandbox, small_limits};

/// A hand-written module and the outcome it must have.
pub struct Case {
    pub name: &'static str,
    pub wat: &'static str,
    pub expect: TrapKind,
}

pub const INFINITE_LOOP: &str = r#"(module (func (export "_start") (loop (br 0))))"#;
pub const START_NEVER_RETURNS: &str =
    r#"(module (func $s (loop (br 0))) (start $s) (func (export "_start")))"#;

/// Cases that trap the same way under [`small_limits`].
pub const TRAPS: &[Case] = &[
    Case {
        name: "infinite loop (fuel)",
        wat: INFINITE_LOOP,
        expect: TrapKind::OutOfFuel,
    },
    Case {
        name: "start function that never returns (fuel)",
        wat: START_NEVER_RETURNS,
        expect: TrapKind::OutOfFuel,
    },
    Case {
        name: "memory.grow loop",
        wat: r#"(module (memory 1) (func (export "_start") (loop (drop (memory.grow (i32.const 1))) (br 0))))"#,
        expect: TrapKind::MemoryLimit,
    },
    Case {
        name: "table.grow loop",
        wat: r#"(module (table 1 funcref) (func (export "_start") (loop (drop (table.grow (ref.null func) (i32.const 100))) (br 0))))"#,
        expect: TrapKind::TableLimit,
    },
    Case {
        name: "unbounded recursion",
        wat: r#"(module (func $f (call $f)) (func (export "_start") (call $f)))"#,
        expect: TrapKind::StackOverflow,
    },
    Case {
        name: "unreachable",
        wat: r#"(module (func (export "_start") unreachable))"#,
        expect: TrapKind::Unreachable,
    },
    Case {
        name: "out-of-bounds load",
        wat: r#"(module (memory 1) (func (export "_start") (drop (i32.load (i32.const 65534)))))"#,
        expect: TrapKind::OutOfBounds,
    },
    Case {
        name: "out-of-bounds store",
        wat: r#"(module (memory 1) (func (export "_start") (i64.store (i32.const -1) (i64.const 7))))"#,
        expect: TrapKind::OutOfBounds,
    },
    Case {
        name: "divide by zero",
        wat: r#"(module (func (export "_start") (drop (i32.div_u (i32.const 1) (i32.const 0)))))"#,
        expect: TrapKind::IntegerDivideByZero,
    },
    Case {
        name: "signed division overflow",
        wat: r#"(module (func (export "_start") (drop (i32.div_s (i32.const 0x80000000) (i32.const -1)))))"#,
        expect: TrapKind::IntegerOverflow,
    },
    Case {
        name: "call_indirect type mismatch",
        wat: r#"(module (type $takes_i32 (func (param i32))) (table 1 funcref) (elem (i32.const 0) $f) (func $f)
                (func (export "_start") (call_indirect (type $takes_i32) (i32.const 5) (i32.const 0))))"#,
        expect: TrapKind::IndirectCallTypeMismatch,
    },
    Case {
        name: "call_indirect to an empty slot",
        wat: r#"(module (table 2 funcref) (elem (i32.const 0) $f) (func $f)
                (func (export "_start") (call_indirect (i32.const 1))))"#,
        expect: TrapKind::UninitializedElement,
    },
    Case {
        name: "float to int of NaN",
        wat: r#"(module (func (export "_start") (drop (i32.trunc_f32_s (f32.const nan)))))"#,
        expect: TrapKind::BadConversionToInteger,
    },
    Case {
        name: "WASI call from a module without memory",
        wat: r#"(module (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
                (func (export "_start") (drop (call $y))))"#,
        expect: TrapKind::BadHostCall,
    },
];

/// Fuel to spare: only the deadline can stop these.
fn timeout_limits(timeout: Duration) -> RunLimits {
    RunLimits {
        fuel: u64::MAX / 4,
        timeout,
        ..small_limits()
    }
}

#[test]
fn each_trap_has_its_kind_on_both_engines() {
    for strategy in Strategy::ALL {
        for case in TRAPS {
            let run = run_wat(strategy, case.wat, &small_limits());
            assert_eq!(
                run.report.outcome,
                Outcome::Trapped(case.expect),
                "{strategy}: {}",
                case.name
            );
            let detail = run.report.detail.unwrap_or_default();
            assert!(
                !detail.is_empty(),
                "{strategy}: {}: a trap says what happened",
                case.name
            );
        }
    }
}

#[test]
fn limit_traps_name_the_limit() {
    for strategy in Strategy::ALL {
        let run = run_wat(strategy, TRAPS[2].wat, &small_limits());
        let detail = run.report.detail.unwrap();
        assert!(
            detail.contains("the limit is 32 MiB"),
            "{strategy}: {detail}"
        );
        assert!(run.report.peak_memory_bytes <= 32 << 20);
        let run = run_wat(
            strategy,
            INFINITE_LOOP,
            &RunLimits {
                fuel: 50_000,
                ..small_limits()
            },
        );
        assert_eq!(
            run.report.detail.unwrap(),
            "the guest used all 50000 units of fuel"
        );
        assert!(
            run.report.fuel_used <= 50_000,
            "{strategy}: {}",
            run.report.fuel_used
        );
    }
}

#[test]
fn an_infinite_loop_with_fuel_to_spare_is_stopped_by_the_deadline() {
    for strategy in Strategy::ALL {
        for wat in [INFINITE_LOOP, START_NEVER_RETURNS] {
            let run = run_wat(strategy, wat, &timeout_limits(Duration::from_millis(150)));
            assert_eq!(
                run.report.outcome,
                Outcome::Trapped(TrapKind::Timeout),
                "{strategy}: {wat}"
            );
            assert!(
                run.report.wall_time >= Duration::from_millis(150),
                "{strategy}: stopped early"
            );
        }
    }
}

#[test]
fn a_guest_asleep_in_a_host_call_is_stopped_by_the_deadline() {
    for strategy in Strategy::ALL {
        let wasi = WasiCtx::builder("sleep").build().unwrap();
        let run = run_bytes(
            strategy,
            &covenant_guests::SLEEP_FOREVER.bytes(),
            wasi,
            &timeout_limits(Duration::from_millis(200)),
        );
        assert_eq!(
            run.report.outcome,
            Outcome::Trapped(TrapKind::Timeout),
            "{strategy}"
        );
    }
}

#[test]
fn rust_guests_that_misbehave_are_stopped_by_the_right_limit() {
    let cases = [
        (covenant_guests::RECURSE, TrapKind::StackOverflow),
        (covenant_guests::ALLOC_FOREVER, TrapKind::MemoryLimit),
        (covenant_guests::STDOUT_FLOOD, TrapKind::OutputLimit),
        (covenant_guests::SPIN, TrapKind::OutOfFuel),
    ];
    for strategy in Strategy::ALL {
        for (guest, expect) in cases {
            let limits = RunLimits {
                fuel: 100_000_000,
                ..small_limits()
            };
            let mut run = run_bytes(
                strategy,
                &guest.bytes(),
                WasiCtx::builder(guest.name).build().unwrap(),
                &limits,
            );
            assert_eq!(
                run.report.outcome,
                Outcome::Trapped(expect),
                "{strategy}: {}",
                guest.name
            );
            if expect == TrapKind::OutputLimit {
                assert_eq!(
                    run.wasi.take_stdout().len(),
                    1 << 20,
                    "exactly the cap was kept"
                );
            }
        }
    }
}

#[test]
fn initial_memory_above_the_limit_is_refused_before_instantiation() {
    for strategy in Strategy::ALL {
        let sandbox = sandbox(strategy);
        let module = sandbox
            .load(&wat::parse_str(r#"(module (memory 1000) (func (export "_start")))"#).unwrap())
            .unwrap();
        let before = sandbox.stats().runs;
        let err = sandbox
            .run(
                &module,
                WasiCtx::builder("m").build().unwrap(),
                &small_limits(),
                &covenant_sandbox::Entry::Command,
            )
            .unwrap_err();
        assert!(matches!(err, RunError::Refused(_)), "{strategy}: {err}");
        assert!(
            err.to_string()
                .contains("initial memory of 62.5 MiB exceeds the memory limit of 32 MiB"),
            "{err}"
        );
        assert_eq!(sandbox.stats().runs, before, "nothing ran");
    }
}

#[test]
fn imports_outside_the_allow_list_are_refused_with_every_reason() {
    let wasm = wat::parse_str(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "path_open_anything" (func (param i32) (result i32)))
            (import "env" "system" (func (param i32 i32)))
            (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    for strategy in Strategy::ALL {
        let err = sandbox(strategy).load(&wasm).unwrap_err();
        let LoadError::Refused(refused) = &err else {
            panic!("{err}")
        };
        assert_eq!(refused.reasons.len(), 3);
        let text = err.to_string();
        assert!(text.starts_with("module refused for 3 reasons:"), "{text}");
        assert!(text.contains("wasi_snapshot_preview1::fd_write (i32) -> i32 is not an allowed import: it must be (i32, i32, i32, i32) -> i32"), "{text}");
        assert!(
            text.contains(
                "wasi_snapshot_preview1::path_open_anything (i32) -> i32 is not an allowed import"
            ),
            "{text}"
        );
        assert!(
            text.contains("env::system (i32, i32) -> () is not an allowed import"),
            "{text}"
        );
    }
}

#[test]
fn invalid_and_truncated_binaries_are_refused() {
    let good = covenant_guests::HELLO.bytes();
    for strategy in Strategy::ALL {
        for (what, bytes) in [
            ("garbage", b"\x7fELF not wasm at all".to_vec()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("empty", Vec::new()),
        ] {
            let err = sandbox(strategy).load(&bytes).unwrap_err();
            assert!(
                err.to_string().contains("not valid WebAssembly"),
                "{strategy}: {what}: {err}"
            );
        }
    }
}

/// A guest that hands `fd_write` iovecs running past the end of memory, then exits with the
/// errno it got (EFAULT is 21).
#[test]
fn bad_pointers_in_host_calls_are_efault_not_a_crash() {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (local $e i32)
            ;; iovec at 0: buffer at 65530, length 100 (past the end)
            (i32.store (i32.const 0) (i32.const 65530))
            (i32.store (i32.const 4) (i32.const 100))
            (local.set $e (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (if (i32.ne (local.get $e) (i32.const 21)) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
            ;; the iovec table itself past the end
            (local.set $e (call $w (i32.const 1) (i32.const 65532) (i32.const 2) (i32.const 8)))
            (if (i32.ne (local.get $e) (i32.const 21)) (then (call $exit (i32.add (i32.const 200) (local.get $e)))))
            ;; the result pointer past the end
            (i32.store (i32.const 4) (i32.const 0))
            (local.set $e (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 65535)))
            (call $exit (local.get $e))))"#;
    for strategy in Strategy::ALL {
        let mut run = run_wat(strategy, wat, &small_limits());
        assert_eq!(run.report.outcome, Outcome::Exited(21), "{strategy}");
        assert!(run.wasi.take_stdout().is_empty(), "nothing was written");
    }
}
