//! Hashes stdin with SHA-256 and prints the digest in hex: a guest that computes something
//! checkable, using the same kernel source as the benchmarks.
#[path = "../../../kernel/src/sha256.rs"]
mod sha256;

use std::io::Read;

fn main() {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        std::process::exit(2);
    }
    let digest = sha256::digest(&input);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("{hex}");
}
