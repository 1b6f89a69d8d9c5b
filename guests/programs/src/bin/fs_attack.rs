//! Tries to change files it may only read, the ways a hostile program would: through a hard
//! link, a rename or a symbolic link into a writable directory, or by changing the file in
//! place. Prints one line per attempt: `WHAT: ok`, or `WHAT: errno N (NAME)` with the WASI
//! errno the host answered; then, where it says so, the contents of the file it attacked.
//! The tests check those lines and that the file is unchanged.
//!
//! Opening goes through wasi-libc, which asks only for the rights the directory can pass on:
//! opening a read-only file "for writing" succeeds with a descriptor that cannot write (and
//! wasi-libc reports the host's `ENOTCAPABLE` on that write as POSIX's `EBADF`). So each
//! attempt opens *and* changes, and the line reports the first step that failed.
//!
//! Usage (every action exits 0 whatever happened; bad arguments exit 2):
//! - `fs_attack link SRC DST`: hard-link SRC to DST, open DST for writing, write `TAMPERED`;
//!   print SRC's contents.
//! - `fs_attack rename SRC DST`: rename SRC to DST, open DST for writing, write `TAMPERED`;
//!   print whether SRC still exists, and its contents.
//! - `fs_attack symlink TARGET LINK`: make LINK → TARGET, open LINK for writing, write
//!   `TAMPERED`.
//! - `fs_attack write-input PATH`: every way to change PATH in place (open it for writing and
//!   write, `O_TRUNC`, set the length, set the times, remove it, rename a file over it,
//!   hard-link it); print PATH's contents.
//! - `fs_attack mkdir PATH`: create the directory PATH.
//! - `fs_attack write PATH N`: write N bytes of `x` to PATH (created or truncated).
//! - `fs_attack write-then-abort PATH N`: the same, then abort (a trap, not an exit).
//! - `fs_attack read PATH...`: print each file's contents, or the errno.
//! - `fs_attack symlink-output TARGET LINK`: make LINK → TARGET.
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::time::SystemTime;

/// The names of the WASI errnos these attacks meet (the numbers are the ABI's).
const ERRNO_NAMES: [(i32, &str); 10] = [
    (8, "EBADF"),
    (20, "EEXIST"),
    (28, "EINVAL"),
    (31, "EISDIR"),
    (44, "ENOENT"),
    (54, "ENOTDIR"),
    (55, "ENOTEMPTY"),
    (63, "EPERM"),
    (75, "EXDEV"),
    (76, "ENOTCAPABLE"),
];

/// Prints `what: ok` or `what: errno N (NAME)`.
fn report<T>(what: &str, result: io::Result<T>) {
    match result {
        Ok(_) => println!("{what}: ok"),
        Err(e) => {
            let code = e.raw_os_error().unwrap_or(-1);
            match ERRNO_NAMES.iter().find(|(n, _)| *n == code) {
                Some((_, name)) => println!("{what}: errno {code} ({name})"),
                None => println!("{what}: errno {code} ({e})"),
            }
        }
    }
}

/// Opens `path` for writing (never creating it) and writes `TAMPERED` at its start.
fn tamper(path: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(b"TAMPERED")
}

fn print_contents(path: &str) {
    match fs::read(path) {
        Ok(bytes) => println!("{path} contains {:?}", String::from_utf8_lossy(&bytes)),
        Err(e) => report(&format!("read {path}"), Err::<(), _>(e)),
    }
}

#[allow(
    deprecated,
    reason = "std::fs::soft_link is the only stable symlink call on WASI"
)]
fn symlink(target: &str, link: &str) -> io::Result<()> {
    fs::soft_link(target, link)
}

/// Writes `n` bytes of `x` to `path`, 64 KiB at a time.
fn write_bytes(path: &str, n: u64) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    let chunk = [b'x'; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let len = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        file.write_all(&chunk[..len])?;
        left -= len as u64;
    }
    Ok(())
}

fn write_input(path: &str) {
    report("open for writing and write", tamper(path));
    report(
        "open with O_TRUNC",
        OpenOptions::new().write(true).truncate(true).open(path),
    );
    report(
        "open for writing and set_len",
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(0)),
    );
    report(
        "set times",
        fs::File::open(path).and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH)),
    );
    report("remove", fs::remove_file(path));
    let scratch = format!("{path}.new");
    report("create a file beside it", fs::write(&scratch, b"TAMPERED"));
    report("rename over it", fs::rename(&scratch, path));
    let _ = fs::remove_file(&scratch);
    report("hard link", fs::hard_link(path, format!("{path}.link")));
    print_contents(path);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args[..] {
        ["link", src, dst] => {
            report("link", fs::hard_link(src, dst));
            report("write through the link", tamper(dst));
            print_contents(src);
        }
        ["rename", src, dst] => {
            report("rename", fs::rename(src, dst));
            report("write the renamed file", tamper(dst));
            println!("{src} exists: {}", fs::metadata(src).is_ok());
            print_contents(src);
        }
        ["symlink", target, link] => {
            report("symlink", symlink(target, link));
            report("write through the symlink", tamper(link));
        }
        ["write-input", path] => write_input(path),
        ["mkdir", path] => report("mkdir", fs::create_dir(path)),
        ["write", path, n] | ["write-then-abort", path, n] => match n.parse::<u64>() {
            Ok(count) => {
                report("write", write_bytes(path, count));
                if args[0] == "write-then-abort" {
                    // Ends with a trap instead of an exit, as a guest would to dodge a check
                    // made only on exits.
                    std::process::abort();
                }
            }
            Err(_) => {
                eprintln!("fs_attack write: {n:?} is not a byte count");
                std::process::exit(2);
            }
        },
        ["symlink-output", target, link] => report("symlink", symlink(target, link)),
        ["read", ref paths @ ..] if !paths.is_empty() => {
            for path in paths {
                print_contents(path);
            }
        }
        _ => {
            eprintln!(
                "usage: fs_attack link SRC DST | rename SRC DST | symlink TARGET LINK | \
                 write-input PATH | mkdir PATH | write PATH N | write-then-abort PATH N | \
                 symlink-output TARGET LINK | read PATH..."
            );
            std::process::exit(2);
        }
    }
}
