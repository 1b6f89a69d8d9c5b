//! Writes an example's generated input files into a directory, for running it by hand:
//! `covenant-example-data EXAMPLE DIR [SEED]`. Each input goes to `DIR/<file name>` (the last
//! component of its guest path); the expected result is printed.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!(
            "usage: covenant-example-data EXAMPLE DIR [SEED]\nexamples: {}",
            covenant_examples::NAMES.join(", ")
        );
        ExitCode::from(2)
    };
    let (name, dir, seed) = match args.as_slice() {
        [name, dir] => (name, dir, 1),
        [name, dir, seed] => match seed.parse::<u64>() {
            Ok(seed) => (name, dir, seed),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    let Some(example) = covenant_examples::generate(name, seed) else {
        eprintln!("covenant-example-data: no example named {name:?}");
        return usage();
    };
    let dir = std::path::Path::new(dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("covenant-example-data: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for input in &example.inputs {
        let path = dir.join(input.file_name());
        if let Err(e) = std::fs::write(&path, &input.bytes) {
            eprintln!("covenant-example-data: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {} (the input {})", path.display(), input.path);
    }
    print!("expected {}:\n{}", example.output, example.expected);
    ExitCode::SUCCESS
}
