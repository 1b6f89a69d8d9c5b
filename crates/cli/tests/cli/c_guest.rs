//! A guest written in C (`guests/c/count_lines.c`), built with Debian's clang and wasi-libc as
//! `docs/guest-programs.md` says, runs under `covenant run` on both engines.
//!
//! Needs `clang` (or `clang-14`) with the wasm32-wasi sysroot of Debian's `wasi-libc`,
//! `lld-14` and `libclang-rt-14-dev-wasm32`; `.ci/run` installs them and sets
//! `COVENANT_REQUIRE_C_TOOLCHAIN=1`, so CI always runs this test. Elsewhere, without the
//! toolchain, the test says so and passes without running.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../guests/c/count_lines.c");

/// A clang that can build for wasm32-wasi against Debian's sysroot (`/usr`).
fn clang_for_wasi() -> Option<PathBuf> {
    if !Path::new("/usr/lib/wasm32-wasi/libc.a").is_file() {
        return None;
    }
    [
        "clang", "clang-14", "clang-15", "clang-16", "clang-17", "clang-18", "clang-19",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|clang| Command::new(clang).arg("--version").output().is_ok())
}

#[test]
fn a_c_guest_built_with_wasi_libc_runs_on_both_engines() {
    let Some(clang) = clang_for_wasi() else {
        assert!(
            std::env::var_os("COVENANT_REQUIRE_C_TOOLCHAIN").is_none(),
            "COVENANT_REQUIRE_C_TOOLCHAIN is set but there is no clang with Debian's wasi-libc: \
             apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32"
        );
        eprintln!("skipped: no clang with Debian's wasi-libc (see docs/guest-programs.md)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("count_lines.wasm");
    let build = Command::new(&clang)
        .args([
            "--target=wasm32-wasi",
            "--sysroot=/usr",
            "-O2",
            "-Wl,--strip-all",
            "-o",
        ])
        .arg(&wasm)
        .arg(SOURCE)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("a.txt"), "one\ntwo\n\n  \nthree\n").unwrap();
    std::fs::write(input.join("b.txt"), "x\n").unwrap();
    std::fs::create_dir(dir.path().join("output")).unwrap();
    for strategy in ["jit", "interpreter"] {
        let counts = dir.path().join(format!("counts-{strategy}.txt"));
        let run = Command::new(env!("CARGO_BIN_EXE_covenant"))
            .current_dir(dir.path())
            .args(["run", "--strategy", strategy, "--dir", "input::/input:ro"])
            .args(["--dir", "output::/output", "--output"])
            .arg(format!("/output/counts.txt={}", counts.display()))
            .arg(&wasm)
            .args(["--", "/input/a.txt", "/input/b.txt"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "{strategy}: {run:?}");
        assert_eq!(stdout, "/input/a.txt 3\n/input/b.txt 1\n", "{strategy}");
        assert_eq!(
            std::fs::read_to_string(&counts).unwrap(),
            stdout,
            "{strategy}"
        );
        // Its errors are the guest's own: a missing file is its exit code 1, not a trap.
        let missing = Command::new(env!("CARGO_BIN_EXE_covenant"))
            .current_dir(dir.path())
            .args(["run", "--strategy", strategy, "--dir", "input::/input:ro"])
            .args(["--dir", "output::/output"])
            .arg(&wasm)
            .args(["--", "/input/none.txt"])
            .output()
            .unwrap();
        assert_eq!(missing.status.code(), Some(1), "{strategy}: {missing:?}");
        assert!(String::from_utf8_lossy(&missing.stderr).contains("/input/none.txt"));
    }
}
