//! Faults stay in their instance: thousands of trapping instances in one process, then a
//! normal guest still gets the right answer; a fresh instance never sees an old one's bytes.

use std::time::Duration;

use covenant_sandbox::{Outcome, RunLimits, Strategy, TrapKind};
use covenant_wasi::WasiCtx;

use crate::hostile::TRAPS;
use crate::{run_bytes, run_wat, sandbox, small_limits};

#[test]
fn thousands_of_trapping_instances_leave_the_host_serving() {
    // Fuel small enough that the loop cases end quickly, large enough that the growth loops
    // reach their limits first (the interpreter charges `memory.grow` by size); the deadline
    // case has its own test.
    let loops = RunLimits {
        fuel: 200_000,
        timeout: Duration::from_secs(20),
        ..small_limits()
    };
    let growth = RunLimits {
        fuel: 100_000_000,
        ..loops.clone()
    };
    for strategy in Strategy::ALL {
        let runs_before = sandbox(strategy).stats().runs;
        let instances = 2_000;
        for i in 0..instances {
            let case = &TRAPS[i % TRAPS.len()];
            let limits = match case.expect {
                TrapKind::MemoryLimit | TrapKind::TableLimit => &growth,
                _ => &loops,
            };
            let run = run_wat(strategy, case.wat, limits);
            assert_eq!(
                run.report.outcome,
                Outcome::Trapped(case.expect),
                "{strategy}: instance {i}: {}",
                case.name
            );
        }
        let mut run = run_bytes(
            strategy,
            &covenant_guests::HELLO.bytes(),
            WasiCtx::builder("hello").build().unwrap(),
            &small_limits(),
        );
        assert_eq!(run.report.outcome, Outcome::Exited(0), "{strategy}");
        assert_eq!(run.wasi.take_stdout(), b"hello from a Covenant guest\n");
        assert!(sandbox(strategy).stats().runs > runs_before + instances as u64);
    }
}

/// Checks that its memory (initial and grown) reads as zero, then fills it with 0xAB, so the
/// next instance in the same pool slot would see the bytes if memory were not zeroed.
const SNOOP: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 2)
    (func $zero_then_fill (param $from i32) (param $to i32) (local $p i32)
        (local.set $p (local.get $from))
        (block $done (loop $next
            (br_if $done (i32.ge_u (local.get $p) (local.get $to)))
            (if (i64.ne (i64.load (local.get $p)) (i64.const 0)) (then (call $exit (i32.const 13))))
            (i64.store (local.get $p) (i64.const 0xABABABABABABABAB))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (br $next))))
    (func (export "_start")
        (call $zero_then_fill (i32.const 0) (i32.const 131072))
        (drop (memory.grow (i32.const 2)))
        (call $zero_then_fill (i32.const 131072) (i32.const 262144))))"#;

#[test]
fn a_fresh_instance_never_sees_bytes_a_previous_one_wrote() {
    for strategy in Strategy::ALL {
        for round in 0..50 {
            let run = run_wat(strategy, SNOOP, &small_limits());
            assert_eq!(
                run.report.outcome,
                Outcome::Exited(0),
                "{strategy}: round {round}: saw old bytes"
            );
        }
    }
}
