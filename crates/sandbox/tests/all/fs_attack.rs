//! Rights never grow through a link, on both engines: the `fs_attack` guest, with `/input`
//! read-only and `/output` read-write, tries to change `/input/a.txt` through a hard link, a
//! rename, a symbolic link and in place; every attempt is refused with the errno
//! `docs/wasi.md` names, and the input's bytes are unchanged. A sealed input stays unchanged
//! even in a directory the guest may write.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failing setup step should stop the test loudly"
)]

use std::io::Read;

use covenant_sandbox::{Outcome, Strategy};
use covenant_wasi::WasiCtx;
use covenant_wasi::fs::{Access, CapabilityTable, FileSystem};

use crate::{run_bytes, small_limits};

const INPUT: &[u8] = b"original input";

/// Runs `fs_attack ARGS` on `strategy` with `/input/a.txt` (sealed if `seal`) preopened with
/// `input_access` and an empty `/output` read-write. Returns the guest's stdout and the file
/// system after the run.
fn attack(
    strategy: Strategy,
    args: &[&str],
    input_access: Access,
    seal: bool,
) -> (String, FileSystem) {
    let fs = FileSystem::default();
    fs.create_dir_all("/input").unwrap();
    fs.create_dir_all("/output").unwrap();
    let host = CapabilityTable::new()
        .with("/input", Access::READ_WRITE)
        .unwrap();
    fs.view(&host)
        .unwrap()
        .write_file("/input/a.txt", INPUT)
        .unwrap();
    if seal {
        fs.seal("/input/a.txt").unwrap();
    }
    let table = CapabilityTable::new()
        .with("/input", input_access)
        .unwrap()
        .with("/output", Access::READ_WRITE)
        .unwrap();
    let wasi = WasiCtx::builder("fs_attack")
        .args(args.iter().copied())
        .file_system(fs.view(&table).unwrap())
        .build()
        .unwrap();
    let mut run = run_bytes(
        strategy,
        &covenant_guests::FS_ATTACK.bytes(),
        wasi,
        &small_limits(),
    );
    let stdout = String::from_utf8_lossy(&run.wasi.take_stdout()).into_owned();
    let stderr = String::from_utf8_lossy(&run.wasi.take_stderr()).into_owned();
    assert_eq!(
        run.report.outcome,
        Outcome::Exited(0),
        "{strategy} {args:?}: {stdout}{stderr}"
    );
    (stdout, fs)
}

/// `/input/a.txt`'s bytes and `/output`'s entries, read by the host after the run.
fn input_and_output(fs: &FileSystem) -> (Vec<u8>, Vec<String>) {
    let table = CapabilityTable::new().with("/", Access::READ_ONLY).unwrap();
    let view = fs.view(&table).unwrap();
    let mut bytes = Vec::new();
    view.read_file("/input/a.txt")
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let names = view
        .list_dir("/output")
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    (bytes, names)
}

fn assert_lines(stdout: &str, expected: &[&str], context: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, expected, "{context}");
}

#[test]
fn a_hard_link_out_of_a_read_only_input_is_exdev_on_both_engines() {
    for strategy in Strategy::ALL {
        let args = ["link", "/input/a.txt", "/output/result.txt"];
        let (stdout, fs) = attack(strategy, &args, Access::READ_ONLY, false);
        assert_lines(
            &stdout,
            &[
                "link: errno 75 (EXDEV)",
                "write through the link: errno 44 (ENOENT)",
                "/input/a.txt contains \"original input\"",
            ],
            &format!("{strategy}"),
        );
        let (bytes, output) = input_and_output(&fs);
        assert_eq!(bytes, INPUT, "{strategy}: the input is unchanged");
        assert!(output.is_empty(), "{strategy}: {output:?}");
    }
}

#[test]
fn a_rename_out_of_a_read_only_input_is_refused_on_both_engines() {
    for strategy in Strategy::ALL {
        let args = ["rename", "/input/a.txt", "/output/result.txt"];
        let (stdout, fs) = attack(strategy, &args, Access::READ_ONLY, false);
        assert_lines(
            &stdout,
            &[
                "rename: errno 76 (ENOTCAPABLE)",
                "write the renamed file: errno 44 (ENOENT)",
                "/input/a.txt exists: true",
                "/input/a.txt contains \"original input\"",
            ],
            &format!("{strategy}"),
        );
        let (bytes, output) = input_and_output(&fs);
        assert_eq!(bytes, INPUT, "{strategy}: the input is unchanged");
        assert!(output.is_empty(), "{strategy}: {output:?}");
    }
}

#[test]
fn a_symlink_from_the_output_to_the_input_cannot_be_written_through_on_both_engines() {
    for strategy in Strategy::ALL {
        let args = ["symlink", "../input/a.txt", "/output/result.txt"];
        let (stdout, fs) = attack(strategy, &args, Access::READ_ONLY, false);
        assert_lines(
            &stdout,
            &[
                "symlink: ok",
                "write through the symlink: errno 76 (ENOTCAPABLE)",
            ],
            &format!("{strategy}"),
        );
        let (bytes, output) = input_and_output(&fs);
        assert_eq!(bytes, INPUT, "{strategy}: the input is unchanged");
        assert_eq!(output, ["result.txt"], "{strategy}: only the link was made");
    }
}

#[test]
fn a_read_only_input_cannot_be_changed_in_place_on_both_engines() {
    for strategy in Strategy::ALL {
        let (stdout, fs) = attack(
            strategy,
            &["write-input", "/input/a.txt"],
            Access::READ_ONLY,
            false,
        );
        assert_lines(
            &stdout,
            &[
                // wasi-libc opened it without FD_WRITE; the write's ENOTCAPABLE reads as EBADF.
                "open for writing and write: errno 8 (EBADF)",
                "open with O_TRUNC: errno 76 (ENOTCAPABLE)",
                "open for writing and set_len: errno 76 (ENOTCAPABLE)",
                "set times: errno 76 (ENOTCAPABLE)",
                "remove: errno 76 (ENOTCAPABLE)",
                "create a file beside it: errno 76 (ENOTCAPABLE)",
                "rename over it: errno 76 (ENOTCAPABLE)",
                "hard link: errno 76 (ENOTCAPABLE)",
                "/input/a.txt contains \"original input\"",
            ],
            &format!("{strategy}"),
        );
        assert_eq!(input_and_output(&fs).0, INPUT, "{strategy}");
    }
}

#[test]
fn a_sealed_input_in_a_writable_directory_stays_unchanged_on_both_engines() {
    // Defence in depth: the view would let the guest change /input, the seal does not.
    for strategy in Strategy::ALL {
        let (stdout, fs) = attack(
            strategy,
            &["write-input", "/input/a.txt"],
            Access::READ_WRITE,
            true,
        );
        assert_lines(
            &stdout,
            &[
                "open for writing and write: errno 63 (EPERM)",
                "open with O_TRUNC: errno 63 (EPERM)",
                "open for writing and set_len: errno 63 (EPERM)",
                "set times: errno 63 (EPERM)",
                "remove: errno 63 (EPERM)",
                "create a file beside it: ok",
                "rename over it: errno 63 (EPERM)",
                "hard link: errno 63 (EPERM)",
                "/input/a.txt contains \"original input\"",
            ],
            &format!("{strategy}"),
        );
        assert_eq!(input_and_output(&fs).0, INPUT, "{strategy}");
    }
}
