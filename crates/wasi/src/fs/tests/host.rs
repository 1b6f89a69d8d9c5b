//! The host side: loading a host directory (which is never modified), and streaming files in
//! and out through a view with the same capability checks a guest gets.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::*;
use crate::fs::{FsError, LoadSummary};

/// Every path under `dir` with its contents (files), link target (links) or a marker (dirs).
fn host_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            let ft = entry.file_type().unwrap();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if ft.is_dir() {
                todo.push(path.clone());
                "dir".to_owned()
            } else if ft.is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else {
                format!("file {:?}", std::fs::read(&path).unwrap())
            };
            out.insert(key, format!("{what} {:?}", meta.modified().unwrap()));
        }
    }
    out
}

fn sample_host_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/b.txt"), b"bee").unwrap();
    std::fs::write(dir.path().join("c.txt"), vec![3u8; 200_000]).unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    std::os::unix::fs::symlink("c.txt", dir.path().join("link")).unwrap();
    dir
}

#[test]
fn loading_copies_the_host_tree_and_a_guest_never_touches_it() {
    let host = sample_host_dir();
    let before = host_tree(host.path());
    let fs = fs_with(Quotas::default());
    let summary = fs.load_host_dir(host.path(), "/in").unwrap();
    assert_eq!(
        summary,
        LoadSummary {
            files: 2,
            directories: 2,
            symlinks: 1,
            bytes: 200_003
        }
    );
    let table = CapabilityTable::new()
        .with("/in", Access::READ_WRITE)
        .unwrap();
    let view = fs.view(&table).unwrap();
    let pre = view.open_preopens().unwrap().remove(0);
    assert_eq!(
        names(&pre),
        ["a", "c.txt", "empty", "link"],
        "loaded in name order"
    );
    assert_eq!(get(&pre, "a/b.txt").unwrap(), b"bee");
    assert_eq!(get(&pre, "link").unwrap(), vec![3u8; 200_000]);
    assert_eq!(pre.readlink("link").unwrap(), "c.txt");
    // The guest changes everything it can.
    put(&pre, "c.txt", b"changed");
    pre.unlink_file("a/b.txt").unwrap();
    pre.remove_directory("a").unwrap();
    pre.rename("empty", &pre, "renamed").unwrap();
    put(&pre, "new", b"new");
    assert_eq!(
        host_tree(host.path()),
        before,
        "the host directory is untouched"
    );
    check(&fs);
}

#[test]
fn a_filtered_load_leaves_out_what_the_filter_refuses() {
    let host = sample_host_dir();
    let fs = fs_with(Quotas::default());
    let summary = fs
        .load_host_dir_filtered(host.path(), "/in", &|p: &Path| {
            p.file_name().is_none_or(|n| n != "a" && n != "link")
        })
        .unwrap();
    assert_eq!(
        (summary.files, summary.directories, summary.symlinks),
        (1, 1, 0)
    );
    let (_v, root) = root_view(&fs, Access::READ);
    assert_eq!(get(&root, "in/a/b.txt"), Err(Errno::Noent));
    assert_eq!(get(&root, "in/c.txt").unwrap().len(), 200_000);
}

#[test]
fn a_read_only_load_refuses_every_change() {
    let host = sample_host_dir();
    let fs = fs_with(Quotas::default());
    fs.load_host_dir(host.path(), "/ro").unwrap();
    let table = CapabilityTable::new()
        .with("/ro", Access::READ_ONLY)
        .unwrap();
    let view = fs.view(&table).unwrap();
    let pre = view.open_preopens().unwrap().remove(0);
    let before = snapshot(&fs);
    assert_eq!(open_rw(&pre, "c.txt", 0).err(), Some(Errno::Notcapable));
    assert_eq!(
        open_rw(&pre, "x", oflags::CREAT).err(),
        Some(Errno::Notcapable)
    );
    assert_eq!(pre.unlink_file("c.txt"), Err(Errno::Notcapable));
    assert_eq!(pre.create_directory("x"), Err(Errno::Notcapable));
    assert_eq!(snapshot(&fs), before);
    assert_eq!(get(&pre, "a/b.txt").unwrap(), b"bee");
}

#[test]
fn loading_refuses_collisions_missing_directories_and_odd_names() {
    let host = sample_host_dir();
    let fs = fs_with(Quotas::default());
    fs.load_host_dir(host.path(), "/in").unwrap();
    match fs.load_host_dir(host.path(), "/in") {
        Err(FsError::Guest { errno, path }) => {
            assert_eq!(errno, Errno::Exist);
            assert_eq!(path, "/in/a");
        }
        other => panic!("expected EEXIST, got {other:?}"),
    }
    assert!(matches!(
        fs.load_host_dir(&host.path().join("missing"), "/x"),
        Err(FsError::Io { .. })
    ));
    assert!(matches!(
        fs.load_host_dir(&host.path().join("c.txt"), "/x"),
        Err(FsError::Unsupported { .. })
    ));
    assert!(matches!(
        fs.load_host_dir(host.path(), "relative"),
        Err(FsError::InvalidPath { .. })
    ));
    let odd = tempfile::tempdir().unwrap();
    let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad\xff");
    std::fs::write(odd.path().join(name), b"").unwrap();
    assert!(matches!(
        fs.load_host_dir(odd.path(), "/odd"),
        Err(FsError::Unsupported { .. })
    ));
}

#[test]
fn loading_stops_at_a_quota() {
    let host = sample_host_dir();
    let fs = fs_with(Quotas {
        max_total_bytes: 100_000,
        ..Quotas::default()
    });
    match fs.load_host_dir(host.path(), "/in") {
        Err(FsError::Guest { errno, path }) => {
            assert_eq!(errno, Errno::Nospc);
            assert_eq!(path, "/in/c.txt");
        }
        other => panic!("expected ENOSPC, got {other:?}"),
    }
    check(&fs);
}

/// Yields `total` bytes (a pattern) in reads of `step` bytes at most.
struct Dribble {
    total: usize,
    step: usize,
    done: usize,
}

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.total - self.done);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = ((self.done + i) % 251) as u8;
        }
        self.done += n;
        Ok(n)
    }
}

#[test]
fn files_stream_in_and_out_through_a_view() {
    let fs = fs_with(Quotas::default());
    fs.create_dir_all("/inputs/alice").unwrap();
    let table = CapabilityTable::new()
        .with("/inputs", Access::READ_WRITE)
        .unwrap();
    let view = fs.view(&table).unwrap();
    let total = (1 << 20) + 3;
    let written = view
        .write_file(
            "/inputs/alice/data.bin",
            Dribble {
                total,
                step: 1000,
                done: 0,
            },
        )
        .unwrap();
    assert_eq!(written, total as u64);
    let mut reader = view.read_file("/inputs/alice/data.bin").unwrap();
    assert_eq!(reader.len().unwrap(), total as u64);
    let mut back = Vec::new();
    reader.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), total);
    assert!(back.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    // Putting again replaces (truncates) the file.
    view.write_file("/inputs/alice/data.bin", &b"short"[..])
        .unwrap();
    let mut back = Vec::new();
    view.read_file("/inputs/alice/data.bin")
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, b"short");
    assert_eq!(view.metadata("/inputs/alice/data.bin").unwrap().size, 5);
    assert_eq!(
        view.list_dir("/inputs/alice").unwrap(),
        [("data.bin".to_owned(), crate::types::Filetype::RegularFile)]
    );
    view.create_dir("/inputs/bob").unwrap();
    assert!(matches!(
        view.write_file("/inputs/carol/x", &b""[..]),
        Err(FsError::Guest {
            errno: Errno::Noent,
            ..
        })
    ));
    assert!(matches!(
        view.read_file("/inputs/alice"),
        Err(FsError::Guest {
            errno: Errno::Isdir,
            ..
        })
    ));
    assert!(matches!(
        view.read_file("/elsewhere"),
        Err(FsError::NotCovered { .. })
    ));
    assert!(matches!(
        view.read_file("inputs/x"),
        Err(FsError::InvalidPath { .. })
    ));
    check(&fs);
}

#[test]
fn a_reader_open_on_a_file_survives_its_unlinking() {
    let fs = fs_with(Quotas::default());
    let (view, root) = root_view(&fs, Access::READ_WRITE);
    put(&root, "f", b"kept");
    let mut reader = view.read_file("/f").unwrap();
    root.unlink_file("f").unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"kept");
}

#[test]
fn a_put_stops_cleanly_at_a_quota_or_a_failing_reader() {
    let fs = fs_with(Quotas {
        max_file_bytes: 100_000,
        ..Quotas::default()
    });
    let (view, _root) = root_view(&fs, Access::READ_WRITE);
    let big = Dribble {
        total: 200_000,
        step: 64 * 1024,
        done: 0,
    };
    assert!(matches!(
        view.write_file("/big", big),
        Err(FsError::Guest {
            errno: Errno::Fbig,
            ..
        })
    ));
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("upload interrupted"))
        }
    }
    match view.write_file("/broken", Broken) {
        Err(FsError::Io { source, path }) => {
            assert_eq!(path, "/broken");
            assert_eq!(source.to_string(), "upload interrupted");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    check(&fs);
}
