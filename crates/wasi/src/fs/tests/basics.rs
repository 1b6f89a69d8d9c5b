//! POSIX behaviour of each operation, through a read-write view.

use super::*;
use crate::types::{Filetype, Whence, fdflags, fstflags};

#[test]
fn read_write_seek_and_tell_move_one_position() {
    let (fs, _view, root) = rw();
    let mut file = open_rw(&root, "f", oflags::CREAT).unwrap();
    assert_eq!(file.tell(), Ok(0));
    assert_eq!(file.write(b"hello world"), Ok(11));
    assert_eq!(file.tell(), Ok(11));
    assert_eq!(file.seek(-5, Whence::Cur), Ok(6));
    let mut buf = [0u8; 16];
    assert_eq!(file.read(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"world");
    assert_eq!(file.read(&mut buf), Ok(0), "end of file");
    assert_eq!(file.seek(0, Whence::End), Ok(11));
    assert_eq!(
        file.seek(100, Whence::Set),
        Ok(100),
        "past the end is allowed"
    );
    assert_eq!(file.read(&mut buf), Ok(0));
    assert_eq!(file.seek(-101, Whence::Cur), Err(Errno::Inval));
    assert_eq!(file.tell(), Ok(100), "a failed seek leaves the position");
    assert_eq!(file.seek(i64::MAX, Whence::Cur), Err(Errno::Inval));
    // Writing past the end leaves a hole that reads as zeros.
    assert_eq!(file.write(b"!"), Ok(1));
    let data = get(&root, "f").unwrap();
    assert_eq!(data.len(), 101);
    assert_eq!(&data[..11], b"hello world");
    assert!(data[11..100].iter().all(|&b| b == 0));
    assert_eq!(data[100], b'!');
    check(&fs);
}

#[test]
fn pread_and_pwrite_leave_the_position() {
    let (_fs, _view, root) = rw();
    let mut file = open_rw(&root, "f", oflags::CREAT).unwrap();
    assert_eq!(file.pwrite(b"abcdef", 0), Ok(6));
    assert_eq!(file.tell(), Ok(0));
    assert_eq!(file.pwrite(b"XY", 2), Ok(2));
    let mut buf = [0u8; 4];
    assert_eq!(file.pread(&mut buf, 1), Ok(4));
    assert_eq!(&buf, b"bXYe");
    assert_eq!(file.pread(&mut buf, 6), Ok(0));
    assert_eq!(file.tell(), Ok(0));
    assert_eq!(file.read(&mut buf), Ok(4));
    assert_eq!(&buf, b"abXY");
}

#[test]
fn append_mode_writes_at_the_end_and_pwrite_at_its_offset() {
    let (_fs, _view, root) = rw();
    put(&root, "f", b"0123");
    let mut file = root
        .open_at(0, "f", 0, FILE_RW, Rights::NONE, fdflags::APPEND)
        .unwrap();
    assert_eq!(file.fdflags(), fdflags::APPEND);
    assert_eq!(file.write(b"ab"), Ok(2));
    assert_eq!(file.tell(), Ok(6));
    assert_eq!(file.seek(0, Whence::Set), Ok(0));
    assert_eq!(file.write(b"cd"), Ok(2), "append ignores the position");
    assert_eq!(file.tell(), Ok(8));
    // POSIX pwrite writes at its offset even in append mode; the position stays.
    assert_eq!(file.pwrite(b"Z", 0), Ok(1));
    assert_eq!(file.tell(), Ok(8));
    assert_eq!(get(&root, "f").unwrap(), b"Z123abcd");
    // Turning append off makes writes positional again.
    file.set_fdflags(0).unwrap();
    file.seek(0, Whence::Set).unwrap();
    file.write(b"yy").unwrap();
    assert_eq!(get(&root, "f").unwrap(), b"yy23abcd");
    assert_eq!(file.set_fdflags(1 << 5), Err(Errno::Inval));
    file.set_fdflags(fdflags::NONBLOCK | fdflags::SYNC | fdflags::DSYNC | fdflags::RSYNC)
        .unwrap();
    assert_eq!(
        file.fdflags(),
        fdflags::NONBLOCK | fdflags::SYNC | fdflags::DSYNC | fdflags::RSYNC
    );
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Missing,
    File,
    Dir,
    LinkToFile,
    LinkToDir,
    Dangling,
}

impl Target {
    fn path(self) -> &'static str {
        match self {
            Target::Missing => "new",
            Target::File => "f",
            Target::Dir => "d",
            Target::LinkToFile => "lf",
            Target::LinkToDir => "ld",
            Target::Dangling => "dangling",
        }
    }
}

/// What POSIX `openat` does, written as a decision table independent of the implementation.
fn expected_open(of: u16, target: Target, follow: bool) -> Result<Filetype, Errno> {
    let has = |f| of & f != 0;
    let (creat, directory, excl, trunc) = (
        has(oflags::CREAT),
        has(oflags::DIRECTORY),
        has(oflags::EXCL),
        has(oflags::TRUNC),
    );
    if creat && directory {
        return Err(Errno::Inval);
    }
    if creat && excl {
        // Never follows: any existing entry, even a dangling link, is EEXIST.
        return match target {
            Target::Missing => Ok(Filetype::RegularFile),
            _ => Err(Errno::Exist),
        };
    }
    let resolved = match (target, follow) {
        (Target::LinkToFile, true) => Target::File,
        (Target::LinkToDir, true) => Target::Dir,
        (Target::Dangling, true) => Target::Missing,
        (t, _) => t,
    };
    match resolved {
        Target::Missing if creat => Ok(Filetype::RegularFile),
        Target::Missing => Err(Errno::Noent),
        Target::LinkToFile | Target::LinkToDir | Target::Dangling => Err(Errno::Loop),
        Target::Dir if creat || trunc => Err(Errno::Isdir),
        Target::Dir => Ok(Filetype::Directory),
        Target::File if directory => Err(Errno::Notdir),
        Target::File => Ok(Filetype::RegularFile),
    }
}

#[test]
fn every_open_flag_combination_behaves_as_posix() {
    let targets = [
        Target::Missing,
        Target::File,
        Target::Dir,
        Target::LinkToFile,
        Target::LinkToDir,
        Target::Dangling,
    ];
    let fdflag_sets = [0, fdflags::APPEND, fdflags::NONBLOCK, fdflags::ALL];
    let mut cases = 0;
    for of in 0..=oflags::ALL {
        for target in targets {
            for follow in [false, true] {
                for fdf in fdflag_sets {
                    let (fs, _view, root) = rw();
                    put(&root, "f", b"data");
                    root.create_directory("d").unwrap();
                    root.symlink("f", "lf").unwrap();
                    root.symlink("d", "ld").unwrap();
                    root.symlink("nowhere", "dangling").unwrap();
                    let before = snapshot(&fs);
                    let lookup = if follow {
                        lookupflags::SYMLINK_FOLLOW
                    } else {
                        0
                    };
                    let got = root
                        .open_at(
                            lookup,
                            target.path(),
                            of,
                            Rights::FD_READ,
                            Rights::NONE,
                            fdf,
                        )
                        .map(|h| (h.filetype(), h.fdflags()));
                    let want = expected_open(of, target, follow);
                    let case = format!(
                        "oflags={of:#x} target={target:?} follow={follow} fdflags={fdf:#x}"
                    );
                    assert_eq!(got.map(|(t, _)| t), want, "{case}");
                    if let Ok((_, flags)) = got {
                        assert_eq!(flags, fdf, "{case}");
                    }
                    match want {
                        Err(_) => assert_eq!(
                            snapshot(&fs),
                            before,
                            "{case}: a failed open changes nothing"
                        ),
                        Ok(Filetype::RegularFile) => {
                            let created = match (target, follow) {
                                (Target::Missing, _) => Some("new"),
                                (Target::Dangling, true) => Some("nowhere"),
                                _ => None,
                            };
                            if let Some(name) = created {
                                assert_eq!(get(&root, name).unwrap(), b"", "{case}");
                            } else {
                                let content: &[u8] = if of & oflags::TRUNC != 0 {
                                    b""
                                } else {
                                    b"data"
                                };
                                assert_eq!(get(&root, "f").unwrap(), content, "{case}");
                            }
                        }
                        Ok(_) => assert_eq!(snapshot(&fs), before, "{case}"),
                    }
                    check(&fs);
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 16 * 6 * 2 * 4);
}

#[test]
fn opening_a_directory_for_writing_is_eisdir_and_unknown_flags_einval() {
    let (_fs, _view, root) = rw();
    root.create_directory("d").unwrap();
    let write = Rights::FD_READ | Rights::FD_WRITE;
    assert_eq!(
        root.open_at(0, "d", oflags::DIRECTORY, write, Rights::NONE, 0)
            .err(),
        Some(Errno::Isdir)
    );
    assert_eq!(
        root.open_at(0, ".", 0, write, Rights::NONE, 0).err(),
        Some(Errno::Isdir)
    );
    assert_eq!(
        root.open_at(0, "d", 1 << 4, Rights::NONE, Rights::NONE, 0)
            .err(),
        Some(Errno::Inval)
    );
    assert_eq!(
        root.open_at(0, "d", 0, Rights::NONE, Rights::NONE, 1 << 5)
            .err(),
        Some(Errno::Inval)
    );
    assert_eq!(
        root.open_at(2, "d", 0, Rights::NONE, Rights::NONE, 0).err(),
        Some(Errno::Inval)
    );
}

#[test]
fn readdir_lists_dot_entries_first_then_creation_order_with_stable_cookies() {
    let (_fs, _view, root) = rw();
    root.create_directory("d").unwrap();
    let dir = root
        .open_at(
            0,
            "d",
            oflags::DIRECTORY,
            Rights::FD_READDIR | Rights::FD_FILESTAT_GET,
            Rights::ALL,
            0,
        )
        .unwrap();
    let all = dir.readdir(0, usize::MAX).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].name.as_str(), all[0].ino), (".", dir.inode()));
    assert_eq!((all[1].name.as_str(), all[1].ino), ("..", root.inode()));
    assert!(all.iter().all(|d| d.filetype == Filetype::Directory));
    for name in ["zeta", "alpha", "mid"] {
        put(&root, &format!("d/{name}"), b"x");
    }
    root.create_directory("d/sub").unwrap();
    root.symlink("alpha", "d/link").unwrap();
    assert_eq!(names(&dir), ["zeta", "alpha", "mid", "sub", "link"]);
    let all = dir.readdir(0, usize::MAX).unwrap();
    let types: Vec<_> = all.iter().map(|d| d.filetype).collect();
    assert_eq!(
        types[2..],
        [
            Filetype::RegularFile,
            Filetype::RegularFile,
            Filetype::RegularFile,
            Filetype::Directory,
            Filetype::SymbolicLink
        ]
    );
    let alpha = root.filestat_at(0, "d/alpha").unwrap();
    assert_eq!(all[3].ino, alpha.ino, "d_ino matches filestat's ino");
    // A budget smaller than one entry still returns that entry (the guest sees a full buffer).
    assert_eq!(dir.readdir(0, 1).unwrap().len(), 1);
    // Resume after "alpha"; remove entries before and after the cookie: the cookie stays valid.
    let after_alpha = all[3].next;
    root.unlink_file("d/zeta").unwrap();
    root.unlink_file("d/mid").unwrap();
    let rest: Vec<_> = dir
        .readdir(after_alpha, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(rest, ["sub", "link"]);
    // Cookies past the end list nothing.
    assert!(dir.readdir(u64::MAX, 100).unwrap().is_empty());
    // A file is not a directory.
    let file = root
        .open_at(0, "d/alpha", 0, Rights::FD_READDIR, Rights::NONE, 0)
        .unwrap();
    assert_eq!(file.readdir(0, 100), Err(Errno::Notdir));
}

#[test]
fn readdir_of_many_entries_resumes_across_small_buffers() {
    let (_fs, _view, root) = rw();
    for i in 0..1000 {
        open_rw(&root, &format!("file.{i}"), oflags::CREAT).unwrap();
    }
    let listed = names(&root);
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed[0], "file.0");
    assert_eq!(listed[999], "file.999");
}

#[test]
fn filestat_reports_types_sizes_links_and_times() {
    let fs = FileSystem::new(FsConfig {
        quotas: Quotas::default(),
        timestamps: Timestamps::Fixed(7),
    });
    let (_view, root) = root_view(&fs, Access::READ_WRITE);
    put(&root, "f", b"12345");
    root.create_directory("d").unwrap();
    root.symlink("f", "l").unwrap();
    let f = root.filestat_at(0, "f").unwrap();
    assert_eq!(
        (f.filetype, f.size, f.nlink),
        (Filetype::RegularFile as u8, 5, 1)
    );
    assert_eq!((f.atim, f.mtim, f.ctim), (7, 7, 7));
    let l = root.filestat_at(0, "l").unwrap();
    assert_eq!((l.filetype, l.size), (Filetype::SymbolicLink as u8, 1));
    let followed = root.filestat_at(lookupflags::SYMLINK_FOLLOW, "l").unwrap();
    assert_eq!(followed, f);
    let d = root.filestat_at(0, "d").unwrap();
    assert_eq!(d.filetype, Filetype::Directory as u8);
    assert_ne!(d.ino, f.ino);
    assert_eq!(d.dev, f.dev);
    assert_eq!(root.filestat_at(0, "missing"), Err(Errno::Noent));
    assert_eq!(root.filestat_at(0, "f/"), Err(Errno::Notdir));
    assert_eq!(root.filestat_at(0, "d/"), Ok(d));
}

#[test]
fn set_times_sets_what_is_asked_and_validates_flags() {
    let fs = FileSystem::new(FsConfig {
        quotas: Quotas::default(),
        timestamps: Timestamps::Fixed(50),
    });
    let (_view, root) = root_view(&fs, Access::READ_WRITE);
    put(&root, "f", b"x");
    root.symlink("f", "l").unwrap();
    root.set_times_at(0, "f", 10, 20, fstflags::ATIM | fstflags::MTIM)
        .unwrap();
    let st = root.filestat_at(0, "f").unwrap();
    assert_eq!((st.atim, st.mtim), (10, 20));
    root.set_times_at(0, "f", 0, 0, fstflags::MTIM_NOW).unwrap();
    let st = root.filestat_at(0, "f").unwrap();
    assert_eq!((st.atim, st.mtim), (10, 50), "only mtim moved, to now");
    for bad in [
        fstflags::ATIM | fstflags::ATIM_NOW,
        fstflags::MTIM | fstflags::MTIM_NOW,
        1 << 4,
    ] {
        let before = snapshot(&fs);
        assert_eq!(root.set_times_at(0, "f", 1, 1, bad), Err(Errno::Inval));
        assert_eq!(snapshot(&fs), before);
    }
    // Without following, the link's own times change; the file's stay.
    root.set_times_at(0, "l", 0, 3, fstflags::MTIM).unwrap();
    assert_eq!(root.filestat_at(0, "l").unwrap().mtim, 3);
    assert_eq!(root.filestat_at(0, "f").unwrap().mtim, 50);
    root.set_times_at(lookupflags::SYMLINK_FOLLOW, "l", 0, 4, fstflags::MTIM)
        .unwrap();
    assert_eq!(root.filestat_at(0, "f").unwrap().mtim, 4);
    // Through a descriptor.
    let file = open_rw(&root, "f", 0).unwrap();
    file.set_times(99, 0, fstflags::ATIM).unwrap();
    assert_eq!(file.filestat().unwrap().atim, 99);
}

#[test]
fn set_size_and_allocate_grow_with_zeros_and_shrink() {
    let (fs, _view, root) = rw();
    let file = open_rw(&root, "f", oflags::CREAT).unwrap();
    file.pwrite(b"abcdef", 0).unwrap();
    file.set_size(3).unwrap();
    assert_eq!(get(&root, "f").unwrap(), b"abc");
    file.set_size(6).unwrap();
    assert_eq!(get(&root, "f").unwrap(), b"abc\0\0\0");
    file.allocate(2, 2).unwrap();
    assert_eq!(file.filestat().unwrap().size, 6, "allocate never shrinks");
    file.allocate(4, 10).unwrap();
    assert_eq!(file.filestat().unwrap().size, 14);
    assert_eq!(file.allocate(0, 0), Err(Errno::Inval));
    assert_eq!(fs.usage().unwrap().bytes, 14 + 1, "size plus the name");
    file.advise(0, 10, 5).unwrap();
    assert_eq!(file.advise(0, 10, 6), Err(Errno::Inval));
    check(&fs);
}

#[test]
fn rename_follows_posix_for_files_and_directories() {
    let (fs, _view, root) = rw();
    put(&root, "a", b"A");
    put(&root, "b", b"B");
    root.create_directory("d").unwrap();
    root.create_directory("e").unwrap();
    put(&root, "e/inner", b"I");

    root.rename("a", &root, "a2").unwrap();
    assert_eq!(root.filestat_at(0, "a"), Err(Errno::Noent));
    assert_eq!(get(&root, "a2").unwrap(), b"A");
    // Over an existing file: replaced, the old one freed.
    let before = fs.usage().unwrap();
    root.rename("a2", &root, "b").unwrap();
    assert_eq!(get(&root, "b").unwrap(), b"A");
    let after = fs.usage().unwrap();
    assert_eq!(after.inodes, before.inodes - 1);
    check(&fs);
    // File over directory, directory over file.
    assert_eq!(root.rename("b", &root, "d"), Err(Errno::Isdir));
    assert_eq!(root.rename("d", &root, "b"), Err(Errno::Notdir));
    // Directory over a non-empty directory, over an empty one.
    assert_eq!(root.rename("d", &root, "e"), Err(Errno::Notempty));
    root.create_directory("empty").unwrap();
    root.rename("d", &root, "empty").unwrap();
    assert_eq!(root.filestat_at(0, "d"), Err(Errno::Noent));
    // Into itself or below itself.
    assert_eq!(root.rename("e", &root, "e/sub"), Err(Errno::Inval));
    // Trailing slashes: fine on directories, ENOTDIR on files.
    root.rename("e/", &root, "e2/").unwrap();
    assert_eq!(get(&root, "e2/inner").unwrap(), b"I");
    assert_eq!(root.rename("b/", &root, "c"), Err(Errno::Notdir));
    assert_eq!(root.rename("b", &root, "c/"), Err(Errno::Notdir));
    // Missing source, `.` as source or target.
    assert_eq!(root.rename("nope", &root, "x"), Err(Errno::Noent));
    assert_eq!(root.rename(".", &root, "x"), Err(Errno::Inval));
    assert_eq!(root.rename("b", &root, "."), Err(Errno::Inval));
    // Onto itself or another link of the same file: nothing happens.
    let before = snapshot(&fs);
    root.rename("b", &root, "b").unwrap();
    root.link(0, "b", &root, "b-link").unwrap();
    let linked = snapshot(&fs);
    assert_ne!(linked, before);
    root.rename("b", &root, "b-link").unwrap();
    assert_eq!(snapshot(&fs), linked);
    // Across directories, with a descriptor open on the moved directory.
    root.create_directory("from").unwrap();
    root.create_directory("to").unwrap();
    put(&root, "from/x", b"X");
    let moved = root
        .open_at(0, "from", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    root.rename("from", &root, "to/from").unwrap();
    assert_eq!(get(&moved, "x").unwrap(), b"X");
    assert_eq!(get(&root, "to/from/x").unwrap(), b"X");
    let dotdot = moved.readdir(0, usize::MAX).unwrap()[1].ino;
    assert_eq!(
        dotdot,
        root.filestat_at(0, "to").unwrap().ino,
        "`..` is the new parent"
    );
    check(&fs);
}

#[test]
fn hard_links_share_contents_and_count_links() {
    let (fs, _view, root) = rw();
    put(&root, "f", b"one");
    root.create_directory("d").unwrap();
    root.link(0, "f", &root, "d/g").unwrap();
    assert_eq!(root.filestat_at(0, "f").unwrap().nlink, 2);
    assert_eq!(
        root.filestat_at(0, "f").unwrap().ino,
        root.filestat_at(0, "d/g").unwrap().ino
    );
    put(&root, "d/g", b"two");
    assert_eq!(get(&root, "f").unwrap(), b"two");
    assert_eq!(root.link(0, "f", &root, "d/g"), Err(Errno::Exist));
    assert_eq!(root.link(0, "f", &root, "f"), Err(Errno::Exist));
    assert_eq!(
        root.link(0, "d", &root, "dd"),
        Err(Errno::Perm),
        "no links to directories"
    );
    assert_eq!(root.link(0, "f", &root, "new/"), Err(Errno::Noent));
    assert_eq!(root.link(0, "missing", &root, "x"), Err(Errno::Noent));
    // Linking a symbolic link links the link itself, dangling or looping.
    root.symlink("nowhere", "dangling").unwrap();
    root.link(0, "dangling", &root, "dangling2").unwrap();
    assert_eq!(root.readlink("dangling2").unwrap(), "nowhere");
    // Following a dangling link finds nothing.
    assert_eq!(
        root.link(lookupflags::SYMLINK_FOLLOW, "dangling", &root, "x"),
        Err(Errno::Noent)
    );
    root.symlink("f", "to-f").unwrap();
    root.link(lookupflags::SYMLINK_FOLLOW, "to-f", &root, "f3")
        .unwrap();
    assert_eq!(root.filestat_at(0, "f3").unwrap().nlink, 3);
    root.unlink_file("f").unwrap();
    root.unlink_file("d/g").unwrap();
    assert_eq!(get(&root, "f3").unwrap(), b"two");
    assert_eq!(root.filestat_at(0, "f3").unwrap().nlink, 1);
    check(&fs);
}

#[test]
fn unlinked_files_stay_readable_until_closed_then_free_their_space() {
    let (fs, _view, root) = rw();
    put(&root, "f", &[7u8; 1000]);
    let base = fs.usage().unwrap();
    let mut open = open_rw(&root, "f", 0).unwrap();
    root.unlink_file("f").unwrap();
    assert_eq!(root.filestat_at(0, "f"), Err(Errno::Noent));
    let still = fs.usage().unwrap();
    assert_eq!(
        still.inodes, base.inodes,
        "the open file still holds its inode"
    );
    assert_eq!(still.bytes, base.bytes - 1, "only the name is gone");
    let mut buf = [0u8; 10];
    assert_eq!(open.read(&mut buf), Ok(10));
    assert_eq!(open.write(b"more"), Ok(4));
    assert_eq!(open.filestat().unwrap().nlink, 0);
    check(&fs);
    drop(open);
    let freed = fs.usage().unwrap();
    assert_eq!(freed.inodes, base.inodes - 1);
    assert_eq!(freed.bytes, base.bytes - 1 - 1000);
    check(&fs);
}

#[test]
fn mkdir_rmdir_and_unlink_answer_as_posix() {
    let (fs, _view, root) = rw();
    root.create_directory("d/").unwrap();
    assert_eq!(root.create_directory("d"), Err(Errno::Exist));
    assert_eq!(root.create_directory("."), Err(Errno::Exist));
    assert_eq!(root.create_directory("x/y"), Err(Errno::Noent));
    put(&root, "d/f", b"");
    assert_eq!(root.remove_directory("d"), Err(Errno::Notempty));
    assert_eq!(root.remove_directory("d/f"), Err(Errno::Notdir));
    assert_eq!(root.remove_directory("."), Err(Errno::Inval));
    assert_eq!(root.remove_directory("d/.."), Err(Errno::Inval));
    assert_eq!(root.unlink_file("d"), Err(Errno::Isdir));
    assert_eq!(root.unlink_file("d/"), Err(Errno::Isdir));
    assert_eq!(root.unlink_file("d/f/"), Err(Errno::Notdir));
    assert_eq!(root.unlink_file("nope"), Err(Errno::Noent));
    root.unlink_file("d/f").unwrap();
    // A directory removed while open: still usable for reading, closed to new entries.
    let open = root
        .open_at(0, "d", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    root.remove_directory("d/").unwrap();
    assert_eq!(open.create_directory("again"), Err(Errno::Noent));
    assert_eq!(
        open_rw(&open, "new", oflags::CREAT).err(),
        Some(Errno::Noent)
    );
    assert_eq!(open.readdir(0, usize::MAX).unwrap().len(), 2);
    drop(open);
    root.create_directory("d").unwrap();
    check(&fs);
}

#[test]
fn symlinks_store_their_target_and_readlink_returns_it() {
    let (_fs, _view, root) = rw();
    root.symlink("some/where/../x", "l").unwrap();
    assert_eq!(root.readlink("l").unwrap(), "some/where/../x");
    put(&root, "f", b"");
    assert_eq!(root.readlink("f"), Err(Errno::Inval));
    assert_eq!(root.readlink("missing"), Err(Errno::Noent));
    assert_eq!(root.symlink("", "e"), Err(Errno::Noent));
    assert_eq!(root.symlink("a\0b", "e"), Err(Errno::Inval));
    assert_eq!(root.symlink("x", "l"), Err(Errno::Exist));
    assert_eq!(root.symlink("x", "f/"), Err(Errno::Exist));
    assert_eq!(root.symlink("x", "new/"), Err(Errno::Noent));
    root.unlink_file("l").unwrap();
    assert_eq!(root.readlink("l"), Err(Errno::Noent));
}

#[test]
fn directories_refuse_file_operations_and_files_refuse_path_operations() {
    let (_fs, _view, root) = rw();
    let dir = root
        .open_at(0, ".", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    assert_eq!(dir.filetype(), Filetype::Directory);
    for right in [
        Rights::FD_READ,
        Rights::FD_WRITE,
        Rights::FD_SEEK,
        Rights::FD_FILESTAT_SET_SIZE,
    ] {
        assert!(
            !dir.rights_base().contains(right),
            "a directory never holds {right:?}"
        );
    }
    let mut dir = dir;
    let mut buf = [0u8; 4];
    assert_eq!(dir.read(&mut buf), Err(Errno::Notcapable));
    assert_eq!(dir.write(b"x"), Err(Errno::Notcapable));
    assert_eq!(dir.seek(0, Whence::Set), Err(Errno::Notcapable));
    assert_eq!(dir.tell(), Err(Errno::Notcapable));
    assert_eq!(dir.set_size(0), Err(Errno::Notcapable));
    assert_eq!(dir.allocate(0, 1), Err(Errno::Notcapable));
    let file = open_rw(&root, "f", oflags::CREAT).unwrap();
    assert_eq!(
        open_rw(&file, "x", oflags::CREAT).err(),
        Some(Errno::Notdir)
    );
    assert_eq!(file.create_directory("x"), Err(Errno::Notdir));
    assert_eq!(file.unlink_file("x"), Err(Errno::Notdir));
    assert_eq!(root.rename("f", &file, "g"), Err(Errno::Notdir));
    for right in [Rights::PATH_OPEN, Rights::PATH_CREATE_FILE] {
        assert!(
            !file.rights_base().contains(right),
            "a file never holds {right:?}"
        );
    }
}

#[test]
fn rights_only_shrink_and_opened_descriptors_never_exceed_inheriting() {
    let (_fs, _view, root) = rw();
    put(&root, "f", b"data");
    let mut file = open_rw(&root, "f", 0).unwrap();
    let base = file.rights_base();
    assert_eq!(
        file.set_rights(Rights::ALL, Rights::NONE),
        Err(Errno::Notcapable)
    );
    file.set_rights(Rights::FD_WRITE, Rights::NONE).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(file.read(&mut buf), Err(Errno::Notcapable));
    assert_eq!(
        file.set_rights(base, Rights::NONE),
        Err(Errno::Notcapable),
        "no regaining"
    );
    // A directory whose inheriting rights lack FD_WRITE hands out no writable files.
    let mut sub = root
        .open_at(0, ".", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    let inheriting = sub.rights_inheriting();
    sub.set_rights(
        sub.rights_base(),
        Rights(inheriting.0 & !Rights::FD_WRITE.0),
    )
    .unwrap();
    assert_eq!(open_rw(&sub, "f", 0).err(), Some(Errno::Notcapable));
    let ro = sub
        .open_at(
            0,
            "f",
            0,
            Rights(FILE_RW.0 & !Rights::FD_WRITE.0),
            Rights::ALL,
            0,
        )
        .unwrap();
    assert!(!ro.rights_base().contains(Rights::FD_WRITE));
    assert!(!ro.rights_inheriting().contains(Rights::FD_WRITE));
    // Rights not requested are not granted.
    let narrow = root
        .open_at(0, "f", 0, Rights::FD_READ, Rights::NONE, 0)
        .unwrap();
    assert_eq!(narrow.rights_base(), Rights::FD_READ);
}

#[test]
fn two_views_see_one_file_system() {
    let fs = fs_with(Quotas::default());
    fs.create_dir_all("/shared").unwrap();
    let (_a, a_root) = root_view(&fs, Access::READ_WRITE);
    let table = CapabilityTable::new()
        .with("/shared", Access::READ_ONLY)
        .unwrap();
    let b = fs.view(&table).unwrap();
    let b_pre = b.open_preopens().unwrap();
    assert_eq!(b_pre[0].preopen_name(), Some("/shared"));
    put(&a_root, "shared/note", b"from a");
    assert_eq!(get(&b_pre[0], "note").unwrap(), b"from a");
    assert_eq!(names(&b_pre[0]), ["note"]);
    // b cannot reach what lies outside its preopen.
    assert_eq!(get(&b_pre[0], "../shared/note"), Err(Errno::Notcapable));
    assert!(fs.same_as(b.file_system()));
}

#[test]
fn debug_output_never_shows_file_contents() {
    let (fs, view, root) = rw();
    put(&root, "secret", b"the-password");
    for shown in [format!("{fs:?}"), format!("{view:?}"), format!("{root:?}")] {
        assert!(!shown.contains("the-password"), "{shown}");
        assert!(!shown.contains("116, 104, 101"), "{shown}");
    }
}
