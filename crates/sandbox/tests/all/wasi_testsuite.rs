//! The official wasi-testsuite (wasm32-wasip1: the programs built from Rust and from C), run through
//! Covenant's sandbox on both strategies, the way the upstream runner runs a WASI host.
//!
//! For each `X.wasm`, the spec `X.json` beside it (if any) gives `args`, `env`, `root` (a
//! directory relative to the test's folder, preopened as the guest's `/`), `exit_code`
//! (default 0), and `stdout`/`stderr` (compared only when given). The root directory is loaded
//! into a fresh in-memory file system for every run (leaving out `*.cleanup` leftovers, which
//! the upstream runner deletes first), so the suite's directories are never written.
//!
//! A program may be skipped only with a reason in `tests/wasi-testsuite-skips.txt`. The test
//! prints one summary line per strategy and fails on any failure, or if the suite is missing.

#![allow(
    clippy::expect_used,
    reason = "test harness: a missing or malformed suite file should stop the test loudly"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use covenant_sandbox::{Entry, Outcome, RunLimits, Strategy};
use covenant_wasi::WasiCtx;
use covenant_wasi::fs::{Access, CapabilityTable, FileSystem};

/// Where the suite lives: vendored in `crates/sandbox/tests/wasi-testsuite` (its README says
/// from which upstream commit, and how it was stripped).
fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasi-testsuite")
}

/// One program's expectations.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    root: Option<String>,
    #[serde(default)]
    exit_code: u32,
    stdout: Option<String>,
    stderr: Option<String>,
}

struct Case {
    /// `rust/close_preopen.wasm`, as named in the skips file.
    name: String,
    wasm: PathBuf,
    spec: Spec,
}

fn cases(suite: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for group in ["rust", "c"] {
        let dir = suite.join(group);
        let mut wasms: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        wasms.sort();
        for wasm in wasms {
            let json = wasm.with_extension("json");
            let spec = if json.exists() {
                let text = std::fs::read_to_string(&json)
                    .unwrap_or_else(|e| panic!("read {}: {e}", json.display()));
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("parse {}: {e}", json.display()))
            } else {
                Spec::default()
            };
            let file = wasm.file_name().expect("a file name").to_string_lossy();
            cases.push(Case {
                name: format!("{group}/{file}"),
                wasm,
                spec,
            });
        }
    }
    cases
}

/// `name reason...` lines; `#` starts a comment.
fn skips() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasi-testsuite-skips.txt");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(char::is_whitespace).unwrap_or_else(|| {
                panic!(
                    "{}: {l:?} has no reason; every skip needs one",
                    path.display()
                )
            });
            (name.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// Runs one case on one strategy; `Err` says what differed.
fn run(case: &Case, strategy: Strategy) -> Result<(), String> {
    let wasm = std::fs::read(&case.wasm).map_err(|e| format!("read the module: {e}"))?;
    let sandbox = crate::sandbox(strategy);
    let module = sandbox.load(&wasm).map_err(|e| format!("load: {e}"))?;
    let program = case.wasm.file_name().unwrap_or_default().to_string_lossy();
    let mut builder = WasiCtx::builder(program).args(case.spec.args.iter().cloned());
    for (key, value) in &case.spec.env {
        builder = builder.env(key, value);
    }
    if let Some(root) = &case.spec.root {
        let host_root = case.wasm.parent().unwrap_or(Path::new(".")).join(root);
        let fs = FileSystem::default();
        fs.load_host_dir_filtered(&host_root, "/", &|p: &Path| {
            !p.to_string_lossy().ends_with(".cleanup")
        })
        .map_err(|e| format!("load the root directory: {e}"))?;
        let table = CapabilityTable::new()
            .with("/", Access::READ_WRITE)
            .map_err(|e| e.to_string())?;
        let view = fs.view(&table).map_err(|e| e.to_string())?;
        builder = builder.file_system(view);
    }
    let wasi = builder
        .build()
        .map_err(|e| format!("build the context: {e}"))?;
    let mut out = sandbox
        .run(&module, wasi, &RunLimits::default(), &Entry::Command)
        .map_err(|e| format!("run: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.wasi.take_stdout()).into_owned();
    let stderr = String::from_utf8_lossy(&out.wasi.take_stderr()).into_owned();
    let mut problems = Vec::new();
    if out.report.outcome != Outcome::Exited(case.spec.exit_code) {
        problems.push(format!(
            "ended with {} ({}), expected exit code {}",
            out.report.outcome,
            out.report.detail.as_deref().unwrap_or("no detail"),
            case.spec.exit_code
        ));
    }
    if let Some(expected) = &case.spec.stdout
        && *expected != stdout
    {
        problems.push(format!("stdout {stdout:?}, expected {expected:?}"));
    }
    if let Some(expected) = &case.spec.stderr
        && *expected != stderr
    {
        problems.push(format!("stderr {stderr:?}, expected {expected:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.push(format!("stderr was: {stderr}"));
        Err(problems.join("; "))
    }
}

#[test]
fn the_official_wasi_testsuite_passes_on_both_strategies() {
    let suite = suite_dir();
    assert!(
        suite.join("rust").is_dir() && suite.join("c").is_dir(),
        "the wasi-testsuite is missing: expected its `rust/` and `c/` folders at {} \
         (vendored in the repository; see its README)",
        suite.display()
    );
    let cases = cases(&suite);
    for group in ["rust/", "c/"] {
        assert!(
            cases.iter().any(|c| c.name.starts_with(group)),
            "no {group} programs in {}",
            suite.display()
        );
    }
    let skips = skips();
    for name in skips.keys() {
        assert!(
            cases.iter().any(|c| &c.name == name),
            "the skips file names {name}, which is not in the suite"
        );
    }
    let mut failures = Vec::new();
    for strategy in Strategy::ALL {
        let (mut passed, mut skipped) = (0, 0);
        for case in &cases {
            if let Some(reason) = skips.get(&case.name) {
                println!("wasi-testsuite {strategy}: skip {} ({reason})", case.name);
                skipped += 1;
                continue;
            }
            match run(case, strategy) {
                Ok(()) => passed += 1,
                Err(why) => {
                    println!("wasi-testsuite {strategy}: FAIL {}: {why}", case.name);
                    failures.push(format!("{strategy} {}: {why}", case.name));
                }
            }
        }
        println!(
            "wasi-testsuite {strategy}: {passed}/{} passed, {skipped} skipped",
            cases.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
