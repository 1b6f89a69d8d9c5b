//! `covenant run --dir` and `--output`, through the real binary: the guest works on an
//! in-memory copy of the host directory, read-only when asked, and files come back out.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failing setup step should stop the test loudly"
)]

use std::path::Path;
use std::process::{Command, Output};

fn covenant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_covenant"))
        .args(args)
        .output()
        .expect("run covenant")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A host directory with `in.txt` and `other`.
fn host_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), b"hello files").unwrap();
    std::fs::write(dir.path().join("other"), b"").unwrap();
    dir
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_guest_reads_and_writes_a_dir_and_outputs_come_back_while_the_host_dir_stays_unchanged() {
    for strategy in ["jit", "interpreter"] {
        let host = host_dir();
        let before = listing(host.path());
        let out_dir = tempfile::tempdir().unwrap();
        let result = out_dir.path().join("result.txt");
        let dir_arg = format!("{}::/data", host.path().display());
        let output_arg = format!("/data/out.txt={}", result.display());
        let out = covenant(&[
            "run",
            "--strategy",
            strategy,
            "--dir",
            &dir_arg,
            "--output",
            &output_arg,
            covenant_guests::FS_COPY.path,
            "--",
            "/data/in.txt",
            "/data/out.txt",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{strategy}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            "in.txt other\n",
            "{strategy}: the guest listed the copy"
        );
        assert_eq!(
            std::fs::read(&result).unwrap(),
            b"HELLO FILES",
            "{strategy}"
        );
        assert_eq!(
            listing(host.path()),
            before,
            "{strategy}: the host directory is unchanged"
        );
    }
}

#[test]
fn a_read_only_dir_refuses_writes_and_a_dot_guest_path_is_the_root() {
    let host = host_dir();
    let before = listing(host.path());
    let dir_arg = format!("{}::.:ro", host.path().display());
    let out = covenant(&[
        "run",
        "--dir",
        &dir_arg,
        covenant_guests::FS_COPY.path,
        "--",
        "/in.txt",
        "/out.txt",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("fs_copy: writing /out.txt"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(listing(host.path()), before);
}

#[test]
fn without_a_dir_the_guest_has_no_files() {
    let out = covenant(&[
        "run",
        covenant_guests::FS_COPY.path,
        "--",
        "/in.txt",
        "/out.txt",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn bad_dir_and_output_arguments_are_refused_with_a_reason() {
    let host = host_dir();
    let out = covenant(&[
        "run",
        "--output",
        "no-equals-sign",
        covenant_guests::HELLO.path,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("GUEST_PATH=HOST_PATH"),
        "{}",
        text(&out.stderr)
    );
    let escape = format!("{}::../up", host.path().display());
    let out = covenant(&["run", "--dir", &escape, covenant_guests::HELLO.path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("'..'"), "{}", text(&out.stderr));
    let missing = format!("{}::/m", host.path().join("missing").display());
    let out = covenant(&["run", "--dir", &missing, covenant_guests::HELLO.path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--dir"), "{}", text(&out.stderr));
    // An output the guest never wrote is an error, after the guest's own output.
    let dir_arg = format!("{}::/data", host.path().display());
    let dest = host.path().join("never");
    let output_arg = format!("/data/absent={}", dest.display());
    let out = covenant(&[
        "run",
        "--dir",
        &dir_arg,
        "--output",
        &output_arg,
        covenant_guests::HELLO.path,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/data/absent"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_documents_both_flags() {
    let out = covenant(&["run", "--help"]);
    let help = text(&out.stdout);
    for needle in [
        "--dir <HOST::GUEST[:ro]>",
        "--output <GUEST_PATH=HOST_PATH>",
        "never modified",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// The reproduced attack, as reported: `covenant run --dir in::/input:ro --dir out::/output`
/// with a guest that hard-links `/input/a.txt` to `/output/result.txt` and writes `TAMPERED`
/// through the link. The link is `EXDEV`, the input the guest reads back is the original, and
/// so is the copy `--output` takes of it.
#[test]
fn a_hard_link_cannot_make_a_read_only_input_writable() {
    for strategy in ["jit", "interpreter"] {
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir(work.path().join("in")).unwrap();
        std::fs::create_dir(work.path().join("out")).unwrap();
        std::fs::write(work.path().join("in/a.txt"), b"original").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_covenant"))
            .current_dir(work.path())
            .args([
                "run",
                "--strategy",
                strategy,
                "--dir",
                "in::/input:ro",
                "--dir",
                "out::/output",
                "--output",
                "/input/a.txt=input-after-the-run.txt",
                covenant_guests::FS_ATTACK.path,
                "--",
                "link",
                "/input/a.txt",
                "/output/result.txt",
            ])
            .output()
            .expect("run covenant");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{strategy}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            "link: errno 75 (EXDEV)\n\
             write through the link: errno 44 (ENOENT)\n\
             /input/a.txt contains \"original\"\n",
            "{strategy}"
        );
        assert_eq!(
            std::fs::read(work.path().join("input-after-the-run.txt")).unwrap(),
            b"original",
            "{strategy}: the guest's /input/a.txt after the run"
        );
        assert_eq!(
            listing(&work.path().join("in")),
            [("a.txt".to_owned(), b"original".to_vec())],
            "{strategy}"
        );
        assert!(listing(&work.path().join("out")).is_empty(), "{strategy}");
    }
}

/// A read-only `--dir` inside a read-write one would only pretend: the outer one's descriptor
/// writes there too. The run is refused before the guest starts, naming both.
#[test]
fn a_read_only_dir_inside_a_writable_one_is_refused() {
    let outer = host_dir();
    let inner = host_dir();
    let outer_arg = format!("{}::/data", outer.path().display());
    let inner_arg = format!("{}::/data/in:ro", inner.path().display());
    let out = covenant(&[
        "run",
        "--dir",
        &outer_arg,
        "--dir",
        &inner_arg,
        covenant_guests::HELLO.path,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/data/in (rl) lies beneath /data (rwcl)"),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty(), "the guest never ran");
}
