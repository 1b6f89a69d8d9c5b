//! `covenant identity`, `compile` and `run`, through the real binary.

use std::path::Path;
use std::process::{Command, Output};

fn covenant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .output()
        .expect("run covenant")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wat_file(dir: &Path, name: &str, wat: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn run_passes_output_through_and_returns_the_exit_code() {
    for strategy in ["jit", "interpreter"] {
        let out = covenant(&["run", "--strategy", strategy, covenant_guests::HELLO.path]);
        assert_eq!(out.status.code(), Some(0), "{strategy}: {}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello from a Covenant guest\n"
        );
        let out = covenant(&[
            "run",
            "--strategy",
            strategy,
            covenant_guests::EXIT_WITH.path,
            "--",
            "42",
        ]);
        assert_eq!(out.status.code(), Some(42), "{strategy}");
        let out = covenant(&[
            "run",
            "--strategy",
            strategy,
            "--env",
            "K=v=w",
            covenant_guests::ECHO_ARGS_ENV.path,
            "--",
            "a",
            "b c",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "arg echo_args_env.wasm\narg a\narg b c\nenv K=v=w\n"
        );
    }
}

#[test]
fn traps_exit_134_with_one_line_naming_the_kind_and_the_report_says_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    for strategy in ["jit", "interpreter"] {
        let out = covenant(&[
            "run",
            "--strategy",
            strategy,
            "--fuel",
            "1000000",
            "--report",
            report.to_str().unwrap(),
            covenant_guests::SPIN.path,
        ]);
        assert_eq!(out.status.code(), Some(134), "{strategy}");
        assert_eq!(
            stderr(&out),
            "error: out-of-fuel: the guest used all 1000000 units of fuel\n"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert_eq!(json["outcome"], "trapped");
        assert_eq!(json["kind"], "out-of-fuel");
        assert_eq!(json["strategy"], strategy);
        assert!(json["fuel_used"].as_u64().unwrap() <= 1_000_000);
        assert!(json["peak_memory_bytes"].as_u64().unwrap() > 0);
        assert!(json["wall_time_us"].is_u64());

        let out = covenant(&[
            "run",
            "--strategy",
            strategy,
            "--timeout",
            "200ms",
            "--fuel",
            "100000000000000",
            covenant_guests::SPIN.path,
        ]);
        assert_eq!(out.status.code(), Some(134));
        assert!(
            stderr(&out)
                .starts_with("error: timeout: the guest ran past the wall-clock limit of 200ms"),
            "{}",
            stderr(&out)
        );

        let out = covenant(&[
            "run",
            "--strategy",
            strategy,
            "--max-memory",
            "16MiB",
            covenant_guests::ALLOC_FOREVER.path,
        ]);
        assert_eq!(out.status.code(), Some(134));
        assert!(
            stderr(&out).contains("error: memory-limit:")
                && stderr(&out).contains("the limit is 16 MiB"),
            "{}",
            stderr(&out)
        );

        let out = covenant(&[
            "run",
            "--strategy",
            strategy,
            "--max-output",
            "1KiB",
            covenant_guests::STDOUT_FLOOD.path,
        ]);
        assert_eq!(out.status.code(), Some(134));
        assert_eq!(out.stdout.len(), 1024, "exactly the cap reached stdout");
        assert!(stderr(&out).starts_with("error: output-limit:"));
    }
}

#[test]
fn refused_modules_exit_2_with_every_reason() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_file(
        dir.path(),
        "bad.wasm",
        r#"(module (import "wasi_snapshot_preview1" "nope" (func)) (import "env" "x" (func (param i32))) (memory (export "memory") 1) (func (export "_start")))"#,
    );
    let out = covenant(&["run", &module]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("module refused for 2 reasons:"), "{err}");
    assert!(
        err.contains("wasi_snapshot_preview1::nope () -> () is not an allowed import"),
        "{err}"
    );
    assert!(
        err.contains("env::x (i32) -> () is not an allowed import"),
        "{err}"
    );

    let big = wat_file(
        dir.path(),
        "big.wasm",
        r#"(module (memory (export "memory") 1000) (func (export "_start")))"#,
    );
    let out = covenant(&["run", "--max-memory", "16MiB", &big]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("initial memory of 62.5 MiB exceeds the memory limit of 16 MiB"),
        "{}",
        stderr(&out)
    );

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not wasm").unwrap();
    let out = covenant(&["run", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid WebAssembly"));

    let out = covenant(&["run", "--max-memory", "12 parsecs", &big]);
    assert_eq!(out.status.code(), Some(2), "clap refuses bad sizes with 2");
    assert!(stderr(&out).contains("unknown size unit"));
}

#[test]
fn identities_are_written_once_with_a_private_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = covenant(&["identity", "new", "alice", "--dir", d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = dir.path().join("alice.key");
    let cert = std::fs::read_to_string(dir.path().join("alice.crt")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&key).unwrap();
    let out = covenant(&["identity", "new", "alice", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already exists; an identity is never overwritten"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "the old key is untouched"
    );
    let out = covenant(&["identity", "new", "../escape", "--dir", d]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn compiled_artifacts_run_only_for_trusted_signers_and_only_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for name in ["builder", "stranger"] {
        assert!(
            covenant(&["identity", "new", name, "--dir", d])
                .status
                .success()
        );
    }
    let artifact = dir.path().join("hello.cwasm");
    let artifact_s = artifact.to_str().unwrap();
    let key = format!("{d}/builder.key");
    let out = covenant(&[
        "compile",
        covenant_guests::HELLO.path,
        "-o",
        artifact_s,
        "--sign-key",
        &key,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let trusted = format!("{d}/builder.crt");
    let out = covenant(&["run", "--trust", &trusted, artifact_s]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from a Covenant guest\n"
    );

    let stranger = format!("{d}/stranger.crt");
    let out = covenant(&["run", "--trust", &stranger, artifact_s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("signed by an untrusted key"),
        "{}",
        stderr(&out)
    );

    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let flipped = dir.path().join("flipped.cwasm");
    std::fs::write(&flipped, &bytes).unwrap();
    let out = covenant(&["run", "--trust", &trusted, flipped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("signature does not verify"),
        "{}",
        stderr(&out)
    );

    let out = covenant(&[
        "run",
        "--strategy",
        "interpreter",
        "--trust",
        &trusted,
        artifact_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("run the source .wasm with --strategy interpreter"),
        "{}",
        stderr(&out)
    );
}
