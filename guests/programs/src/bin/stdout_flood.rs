//! Writes to stdout forever: must be stopped by the output limit.
use std::io::Write;

fn main() {
    let line = [b'x'; 4096];
    let mut out = std::io::stdout().lock();
    loop {
        if out.write_all(&line).is_err() {
            std::process::exit(3);
        }
    }
}
