//! Copies a file inside the guest's file system, upper-casing it, and lists the source's
//! directory on stdout: what the `--dir`/`--output` tests of `covenant run` drive.
//!
//! Usage: `fs_copy SRC DST`. Exit codes: 2 for bad arguments, 3 when reading SRC or listing
//! fails, 4 when writing DST fails (the error is on stderr).
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(src), Some(dst)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: fs_copy SRC DST");
        std::process::exit(2);
    };
    let data = std::fs::read(src).unwrap_or_else(|e| {
        eprintln!("fs_copy: reading {src}: {e}");
        std::process::exit(3)
    });
    let dir = Path::new(src).parent().unwrap_or(Path::new("/"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_else(|e| {
            eprintln!("fs_copy: listing {}: {e}", dir.display());
            std::process::exit(3)
        });
    names.sort();
    println!("{}", names.join(" "));
    if let Err(e) = std::fs::write(dst, data.to_ascii_uppercase()) {
        eprintln!("fs_copy: writing {dst}: {e}");
        std::process::exit(4);
    }
}
