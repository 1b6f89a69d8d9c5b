//! The file-system benchmark's guest: writes `MIB` mebibytes to `PATH` in 64 KiB chunks
//! (`fd_write`), then reads them back in 64 KiB chunks (`fd_read`) and checks every chunk.
//! Prints `write_ns=… read_ns=… bytes=…` (the guest's own monotonic clock around each phase).
//!
//! Usage: `fs_throughput PATH MIB`. Exit codes: 2 for bad arguments, 3 for an I/O error, 4 when
//! the bytes read back differ from those written.
use std::io::{Read, Write};
use std::time::Instant;

const CHUNK: usize = 64 * 1024;

fn fail(code: i32, what: &str, error: &dyn std::fmt::Display) -> ! {
    eprintln!("fs_throughput: {what}: {error}");
    std::process::exit(code)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(mib)) = (args.get(1), args.get(2).and_then(|m| m.parse::<usize>().ok()))
    else {
        eprintln!("usage: fs_throughput PATH MIB");
        std::process::exit(2);
    };
    let chunks = mib * (1024 * 1024 / CHUNK);
    let mut chunk = vec![0u8; CHUNK];

    let start = Instant::now();
    let mut file = std::fs::File::create(path).unwrap_or_else(|e| fail(3, "create", &e));
    for i in 0..chunks {
        // Vary the data so a read that returned stale chunks would be caught.
        chunk[0] = i as u8;
        chunk[CHUNK - 1] = (i >> 8) as u8;
        file.write_all(&chunk).unwrap_or_else(|e| fail(3, "write", &e));
    }
    drop(file);
    let write_ns = start.elapsed().as_nanos();

    let start = Instant::now();
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| fail(3, "open", &e));
    let mut total = 0usize;
    for i in 0..chunks {
        file.read_exact(&mut chunk).unwrap_or_else(|e| fail(3, "read", &e));
        if chunk[0] != i as u8 || chunk[CHUNK - 1] != (i >> 8) as u8 {
            fail(4, "verify", &format_args!("chunk {i} differs"));
        }
        total += CHUNK;
    }
    let mut rest = [0u8; 1];
    if file.read(&mut rest).unwrap_or_else(|e| fail(3, "read", &e)) != 0 {
        fail(4, "verify", &"the file is longer than what was written");
    }
    let read_ns = start.elapsed().as_nanos();
    println!("write_ns={write_ns} read_ns={read_ns} bytes={total}");
}
