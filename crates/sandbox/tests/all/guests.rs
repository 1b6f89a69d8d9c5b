//! Well-behaved guests: the same answer on both engines.

use covenant_sandbox::{Outcome, Strategy};
use covenant_wasi::WasiCtx;
use sha2::{Digest, Sha256};

use crate::{run_bytes, small_limits};

#[test]
fn hello_world_prints_and_exits_zero() {
    for strategy in Strategy::ALL {
        let mut run = run_bytes(
            strategy,
            &covenant_guests::HELLO.bytes(),
            WasiCtx::builder("hello").build().unwrap(),
            &small_limits(),
        );
        assert_eq!(run.report.outcome, Outcome::Exited(0), "{strategy}");
        assert_eq!(
            run.wasi.take_stdout(),
            b"hello from a Covenant guest\n",
            "{strategy}"
        );
        assert_eq!(run.report.output_bytes, 28);
        assert!(run.report.fuel_used > 0, "{strategy}: fuel is counted");
        assert!(
            run.report.peak_memory_bytes >= 65536,
            "{strategy}: memory is measured"
        );
    }
}

#[test]
fn arguments_and_environment_reach_the_guest() {
    for strategy in Strategy::ALL {
        let wasi = WasiCtx::builder("echo")
            .args(["one", "two words", "ünïcode"])
            .env("B", "2")
            .env("A", "1=1")
            .build()
            .unwrap();
        let mut run = run_bytes(
            strategy,
            &covenant_guests::ECHO_ARGS_ENV.bytes(),
            wasi,
            &small_limits(),
        );
        assert_eq!(run.report.outcome, Outcome::Exited(0));
        let out = String::from_utf8(run.wasi.take_stdout()).unwrap();
        assert_eq!(
            out, "arg echo\narg one\narg two words\narg ünïcode\nenv A=1=1\nenv B=2\n",
            "{strategy}"
        );
    }
}

#[test]
fn every_exit_code_from_0_to_255_comes_back() {
    let wasm = covenant_guests::EXIT_WITH.bytes();
    for strategy in Strategy::ALL {
        for code in 0..=255u32 {
            let wasi = WasiCtx::builder("exit")
                .args([code.to_string()])
                .build()
                .unwrap();
            let run = run_bytes(strategy, &wasm, wasi, &small_limits());
            assert_eq!(run.report.outcome, Outcome::Exited(code), "{strategy}");
        }
    }
}

#[test]
fn stdin_is_hashed_the_same_as_natively() {
    let input: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let expected = format!("{}\n", hex::encode(Sha256::digest(&input)));
    for strategy in Strategy::ALL {
        let wasi = WasiCtx::builder("sha")
            .stdin(input.clone())
            .build()
            .unwrap();
        let mut run = run_bytes(
            strategy,
            &covenant_guests::SHA256_STDIN.bytes(),
            wasi,
            &small_limits(),
        );
        assert_eq!(run.report.outcome, Outcome::Exited(0), "{strategy}");
        assert_eq!(
            String::from_utf8(run.wasi.take_stdout()).unwrap(),
            expected,
            "{strategy}"
        );
    }
}

#[test]
fn an_exported_kernel_returns_the_same_value_as_native_code() {
    use covenant_sandbox::{Entry, Value};
    let wasm = covenant_guests::COVENANT_KERNEL.bytes();
    let mut answers = Vec::new();
    for strategy in Strategy::ALL {
        let sandbox = crate::sandbox(strategy);
        let module = sandbox.load(&wasm).unwrap();
        let entry = Entry::Export {
            name: "sha256_of_generated".into(),
            args: vec![Value::I32(1 << 20)],
        };
        let run = sandbox
            .run(
                &module,
                WasiCtx::builder("k").build().unwrap(),
                &small_limits(),
                &entry,
            )
            .unwrap();
        assert_eq!(run.report.outcome, Outcome::Exited(0), "{strategy}");
        answers.push(run.returns);
        let wrong = Entry::Export {
            name: "sha256_of_generated".into(),
            args: vec![Value::I64(1)],
        };
        let err = sandbox
            .run(
                &module,
                WasiCtx::builder("k").build().unwrap(),
                &small_limits(),
                &wrong,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("sha256_of_generated takes (i32)"),
            "{strategy}: {err}"
        );
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].len(), 1);
}
