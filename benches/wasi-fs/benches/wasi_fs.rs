//! Guest-visible file-system throughput: the `fs_throughput` guest writes then reads back
//! 256 MiB in 64 KiB chunks (`fd_write`/`fd_read`) under Covenant (jit and interpreter, on the
//! in-memory file system) and under raw wasmtime-wasi (preview1, a host temp directory), in the
//! same process. Each configuration runs `RUNS` times after one warm-up; the median is printed.
//!
//! `COVENANT_BENCH_MIB` overrides the size (default 256).

use covenant_sandbox::Strategy;
use covenant_wasi_fs_bench::{CovenantRunner, Measurement, WasmtimeRunner};

const RUNS: usize = 5;

fn median(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by_key(|m| m.write + m.read);
    runs[runs.len() / 2]
}

fn report(name: &str, m: &Measurement) {
    println!(
        "{name:<28} write {:>8.0} MiB/s   read {:>8.0} MiB/s   (write {:>7.1} ms, read {:>7.1} ms, whole run {:>7.1} ms)",
        m.write_mib_s(),
        m.read_mib_s(),
        m.write.as_secs_f64() * 1e3,
        m.read.as_secs_f64() * 1e3,
        m.wall.as_secs_f64() * 1e3,
    );
}

fn main() -> Result<(), String> {
    let mib: u32 = std::env::var("COVENANT_BENCH_MIB")
        .ok()
        .map(|v| v.parse().map_err(|e| format!("COVENANT_BENCH_MIB: {e}")))
        .transpose()?
        .unwrap_or(256);
    let wasm = covenant_guests::FS_THROUGHPUT.bytes();
    println!("fs_throughput: {mib} MiB in 64 KiB chunks, median of {RUNS} runs after one warm-up");

    for strategy in Strategy::ALL {
        let runner = CovenantRunner::new(strategy, &wasm)?;
        runner.run(mib)?;
        let runs = (0..RUNS)
            .map(|_| runner.run(mib))
            .collect::<Result<Vec<_>, _>>()?;
        report(&format!("covenant {strategy} (memory)"), &median(runs));
    }

    let runner = WasmtimeRunner::new(&wasm)?;
    let mut runs = Vec::new();
    for i in 0..=RUNS {
        // A fresh directory per run, so every run creates its file.
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let m = runner.run(mib, dir.path())?;
        if i > 0 {
            runs.push(m);
        }
    }
    report("wasmtime-wasi p1 (host dir)", &median(runs));
    Ok(())
}
