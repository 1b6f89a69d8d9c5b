//! Builds every guest in `guests/` for wasm32-wasip1 and writes a module naming each one, the
//! way wasmtime's `test-programs/artifacts` crate does: tests say `covenant_guests::HELLO`
//! instead of carrying paths.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a build script: a broken build environment should stop the build, loudly"
)]

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

    ensure_target_installed();

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
        "building guests/ for wasm32-wasip1 failed (the target is installed; see the errors above)"
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

/// The target the guests are built for.
const TARGET: &str = "wasm32-wasip1";

/// Makes sure the toolchain has the standard library for [`TARGET`], installing it through
/// rustup when it is missing and rustup is there.
///
/// `rust-toolchain.toml` names the target, but rustup adds it on first use only when
/// automatic installs are on; machines with `RUSTUP_AUTO_INSTALL=0` (many CI images and
/// locked-down hosts) would otherwise fail here with "can't find crate for `std`".
fn ensure_target_installed() {
    if target_installed() {
        return;
    }
    let rustup = Command::new("rustup")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !rustup {
        panic!(
            "\n\nThe Rust standard library for {TARGET} is not installed, and rustup is not \
             here to add it.\nInstall it for this toolchain ({}), for example with your \
             distribution's rust-std package for {TARGET}, then build again.\n",
            rustc_version()
        );
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (the guests need it)");
    let mut add = Command::new("rustup");
    add.args(["target", "add", TARGET]);
    // Install into the toolchain this build runs on (rustup sets RUSTUP_TOOLCHAIN for cargo).
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        add.arg("--toolchain").arg(toolchain);
    }
    let status = add.status();
    if !status.as_ref().is_ok_and(|s| s.success()) || !target_installed() {
        panic!(
            "\n\nThe Rust standard library for {TARGET} is not installed, and \
             `rustup target add {TARGET}` did not install it ({status:?}).\nRun it yourself \
             (it needs to reach static.rust-lang.org), then build again.\n"
        );
    }
}

/// Whether the active rustc has a standard library for [`TARGET`].
fn target_installed() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
    else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    })
}

fn rustc_version() -> String {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "rustc".to_owned())
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
