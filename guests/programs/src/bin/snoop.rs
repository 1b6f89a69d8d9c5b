//! Looks for data that is not its own: walks everything it can reach from `/`, `.`, `..` and
//! the usual host directories, tries host files by absolute and by escaping paths, lists its
//! environment, and writes every finding to `/output/shared.txt` (one line each: `FILE path:
//! the first 64 characters`, `DENIED path: error`, `ENV key=value`). The host tests run it beside another
//! computation and check that nothing of the other's crosses.
use std::fmt::Write as _;

/// Directories deeper than this are not entered: `..` must not make the walk endless.
const MAX_DEPTH: usize = 6;

fn walk(path: &str, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let child = format!(
                    "{}/{}",
                    path.trim_end_matches('/'),
                    entry.file_name().to_string_lossy()
                );
                walk(&child, out, depth + 1);
            }
        }
        // Not a directory: a file, or nothing this program may open (said only for the roots,
        // to keep the report short).
        Err(e) => match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let _ = writeln!(out, "FILE {path}: {}", text.trim().chars().take(64).collect::<String>());
            }
            Err(_) if depth > 0 => {}
            Err(_) => {
                let _ = writeln!(out, "DENIED {path}: {e}");
            }
        },
    }
}

fn main() {
    let mut out = String::new();
    for root in [
        "/", ".", "..", "/..", "/input", "/input/..", "/proc", "/etc", "/tmp", "/dev", "/root",
    ] {
        walk(root, &mut out, 0);
    }
    // The paths every computation of this shape uses, the other's included: here they can only
    // be this computation's own files.
    for path in [
        "/input/hospital-a.txt",
        "/input/hospital-b.txt",
        "/etc/passwd",
        "/etc/hostname",
        "/proc/self/environ",
        "/proc/self/maps",
        "../../etc/passwd",
        "/input/../../etc/passwd",
        "/input/../../../proc/self/environ",
    ] {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let _ = writeln!(out, "FILE {path}: {}", text.trim().chars().take(64).collect::<String>());
            }
            Err(e) => {
                let _ = writeln!(out, "DENIED {path}: {e}");
            }
        }
    }
    for (key, value) in std::env::vars() {
        let _ = writeln!(out, "ENV {key}={value}");
    }
    if let Err(e) = std::fs::write("/output/shared.txt", &out) {
        eprintln!("/output/shared.txt: {e}");
        std::process::exit(1);
    }
    println!("snooped: {} lines", out.lines().count());
}
