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

/// A small file system whose quotas the move tests can reach.
fn small(max_total_bytes: u64, max_file_bytes: u64) -> FileSystem {
    FileSystem::new(FsConfig {
        quotas: Quotas {
            max_total_bytes,
            max_file_bytes,
            ..Quotas::default()
        },
        timestamps: Timestamps::Fixed(0),
    })
}

fn read_back(fs: &FileSystem, path: &str) -> Vec<u8> {
    let dir = &path[..path.rfind('/').unwrap().max(1)];
    let view = fs
        .view(&CapabilityTable::new().with(dir, Access::READ).unwrap())
        .unwrap();
    let mut bytes = Vec::new();
    view.read_file(path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn a_file_moves_between_file_systems_whole_and_leaves_nothing_behind() {
    let staging = small(1 << 20, 1 << 20);
    let main = small(1 << 20, 1 << 20);
    staging.create_dir_all("/staging").unwrap();
    main.create_dir_all("/input").unwrap();
    let writer = staging
        .view(
            &CapabilityTable::new()
                .with("/staging", Access::READ_WRITE)
                .unwrap(),
        )
        .unwrap();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    writer.write_file("/staging/0", &bytes[..]).unwrap();
    let staged_usage = staging.usage().unwrap();
    let moved = main
        .move_file_from("/input/a.csv", &staging, "/staging/0")
        .unwrap();
    assert_eq!(moved, bytes.len() as u64);
    assert_eq!(read_back(&main, "/input/a.csv"), bytes);
    // Gone from the source, and from its quota; charged to the destination's.
    assert_eq!(
        writer.metadata("/staging/0").err().map(|e| e.to_string()),
        Some(
            FsError::Guest {
                path: "/staging/0".into(),
                errno: Errno::Noent
            }
            .to_string()
        )
    );
    assert_eq!(
        staging.usage().unwrap().bytes,
        staged_usage.bytes - bytes.len() as u64 - 1
    );
    assert!(main.usage().unwrap().bytes >= bytes.len() as u64);
    check(&staging);
    check(&main);
}

#[test]
fn a_move_that_cannot_complete_changes_neither_file_system() {
    let staging = small(1 << 20, 1 << 20);
    staging.create_dir_all("/staging").unwrap();
    let writer = staging
        .view(
            &CapabilityTable::new()
                .with("/staging", Access::READ_WRITE)
                .unwrap(),
        )
        .unwrap();
    writer.write_file("/staging/0", &[7u8; 5000][..]).unwrap();
    let tight = small(4096, 1 << 20);
    tight.create_dir_all("/input").unwrap();
    tight.create_dir_all("/input/taken").unwrap();
    let before = (snapshot(&staging), snapshot(&tight));
    let errno = |r: Result<u64, FsError>| match r {
        Err(FsError::Guest { errno, .. }) => errno,
        other => panic!("expected a guest errno, got {other:?}"),
    };
    // Over the destination's byte quota, a file-size quota, an existing name, no directory.
    assert_eq!(
        errno(tight.move_file_from("/input/a", &staging, "/staging/0")),
        Errno::Nospc
    );
    let narrow = small(1 << 20, 100);
    narrow.create_dir_all("/input").unwrap();
    assert_eq!(
        errno(narrow.move_file_from("/input/a", &staging, "/staging/0")),
        Errno::Fbig
    );
    assert_eq!(
        errno(tight.move_file_from("/input/taken", &staging, "/staging/0")),
        Errno::Exist
    );
    assert_eq!(
        errno(tight.move_file_from("/nowhere/a", &staging, "/staging/0")),
        Errno::Noent
    );
    // A file still open, or with a second name, stays where it is.
    let open = writer.read_file("/staging/0").unwrap();
    let roomy = small(1 << 20, 1 << 20);
    roomy.create_dir_all("/input").unwrap();
    assert_eq!(
        errno(roomy.move_file_from("/input/a", &staging, "/staging/0")),
        Errno::Busy
    );
    drop(open);
    // Not into the same file system, not a directory.
    assert_eq!(
        errno(staging.move_file_from("/b", &staging, "/staging/0")),
        Errno::Inval
    );
    assert!(
        roomy
            .move_file_from("/input/a", &staging, "/staging")
            .is_err()
    );
    assert_eq!(before, (snapshot(&staging), snapshot(&tight)));
    assert_eq!(
        snapshot(&roomy).len(),
        snapshot(&small(1, 1)).len() + 1,
        "only /input was made"
    );
    check(&staging);
    check(&tight);
}
