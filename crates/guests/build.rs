//! Builds every guest in `guests/` for wasm32-wasip1 and writes a module naming each one, the
//! way wasmtime's `test-programs/artifacts` crate does: tests say `covenant_guests::HELLO`
//! instead of carrying paths.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guests = manifest_dir
        .join("../../guests")
        .canonicalize()
        .expect("guests/ exists beside crates/");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out_dir.join("guests-target");

    println!("cargo:rerun-if-changed={}", guests.display());
    for entry in walk(&guests) {
        println!("cargo:rerun-if-changed={}", entry.display());
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guests)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--workspace",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    // The host build's flags and wrappers are for the host; the guest build gets none of them.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build the guests");
    assert!(
        status.success(),
        "building guests/ for wasm32-wasip1 failed; is the target installed? (`rustup target add wasm32-wasip1`)"
    );

    let release = target_dir.join("wasm32-wasip1/release");
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(&release)
        .expect("the guest build wrote its release directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .map(|p| {
            (
                p.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                p,
            )
        })
        .collect();
    names.sort();

    let mut code = String::new();
    for (name, path) in &names {
        let constant = name.to_uppercase().replace('-', "_");
        writeln!(code, "/// The `{name}` guest (`{name}.wasm`).").unwrap();
        writeln!(
            code,
            "pub const {constant}: Guest = Guest {{ name: {name:?}, path: {:?} }};",
            path.display().to_string()
        )
        .unwrap();
    }
    writeln!(code, "/// Every guest, sorted by name.").unwrap();
    let all: Vec<String> = names
        .iter()
        .map(|(n, _)| n.to_uppercase().replace('-', "_"))
        .collect();
    writeln!(code, "pub const ALL: &[Guest] = &[{}];", all.join(", ")).unwrap();
    std::fs::write(out_dir.join("guests.rs"), code).expect("write guests.rs");
}

/// Every file under `dir` except build output, so editing any guest source reruns the build.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
