//! Rights never grow through a link: hard links and renames stay inside the preopen (scope)
//! they start from (`EXDEV` otherwise), symbolic links are followed only beneath the
//! descriptor they are followed from, nested capability entries cannot pretend, and sealed
//! files answer `EPERM` to every change.

use super::*;
use crate::fs::FsError;
use crate::types::fstflags;

const ORIGINAL: &[u8] = b"original input";

/// `/input/a.txt` (with `/input/sub/b.txt`) and an empty `/output`, viewed as `covenant run
/// --dir in::/input:ro --dir out::/output` views them: the input read-only, the output
/// read-write. Returns the file system, the view, and the preopens of `/input` and `/output`.
fn input_and_output() -> (FileSystem, View, Handle, Handle) {
    let fs = fs_with(Quotas::default());
    let (_all, root) = root_view(&fs, Access::READ_WRITE);
    root.create_directory("input").unwrap();
    root.create_directory("input/sub").unwrap();
    root.create_directory("output").unwrap();
    put(&root, "input/a.txt", ORIGINAL);
    put(&root, "input/sub/b.txt", ORIGINAL);
    drop(root);
    let table = CapabilityTable::new()
        .with("/input", Access::READ_ONLY)
        .unwrap()
        .with("/output", Access::READ_WRITE)
        .unwrap();
    let view = fs.view(&table).unwrap();
    let mut pre = view.open_preopens().unwrap();
    let output = pre.remove(1);
    let input = pre.remove(0);
    (fs, view, input, output)
}

/// Two read-write preopens, `/a` (holding `f`) and `/b`.
fn two_writable() -> (FileSystem, View, Handle, Handle) {
    let fs = fs_with(Quotas::default());
    fs.create_dir_all("/a").unwrap();
    fs.create_dir_all("/b").unwrap();
    let table = CapabilityTable::new()
        .with("/a", Access::READ_WRITE)
        .unwrap()
        .with("/b", Access::READ_WRITE)
        .unwrap();
    let view = fs.view(&table).unwrap();
    let mut pre = view.open_preopens().unwrap();
    let b = pre.remove(1);
    let a = pre.remove(0);
    put(&a, "f", b"in a");
    (fs, view, a, b)
}

// ---- hard links and renames across preopens ------------------------------------------------

#[test]
fn a_hard_link_from_a_read_only_preopen_into_a_writable_one_is_exdev() {
    // The reproduced bug: link /input/a.txt to /output/result.txt, then write through it.
    let (fs, _view, input, output) = input_and_output();
    let before = snapshot(&fs);
    for follow in [0, lookupflags::SYMLINK_FOLLOW] {
        assert_eq!(
            input.link(follow, "a.txt", &output, "result.txt"),
            Err(Errno::Xdev)
        );
    }
    // A descriptor opened through the input preopen inherits its scope.
    let sub = input
        .open_at(0, "sub", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    assert_eq!(
        sub.link(0, "b.txt", &output, "b.txt"),
        Err(Errno::Xdev),
        "a subdirectory of the input is the input's scope"
    );
    // The other way the input lacks the right to receive a link at all.
    put(&output, "mine.txt", b"mine");
    let before_reverse = snapshot(&fs);
    assert_eq!(
        output.link(0, "mine.txt", &input, "a2.txt"),
        Err(Errno::Notcapable)
    );
    assert_eq!(snapshot(&fs), before_reverse);
    output.unlink_file("mine.txt").unwrap();
    assert_eq!(snapshot(&fs), before, "nothing changed");
    assert!(names(&output).is_empty(), "the output directory is empty");
    assert_eq!(get(&input, "a.txt").unwrap(), ORIGINAL);
    assert_eq!(output.filestat_at(0, "result.txt"), Err(Errno::Noent));
    check(&fs);
}

#[test]
fn a_rename_out_of_a_read_only_preopen_is_refused_and_changes_nothing() {
    let (fs, _view, input, output) = input_and_output();
    let before = snapshot(&fs);
    // Renaming away needs `write` on the input: refused before the scopes are compared.
    assert_eq!(
        input.rename("a.txt", &output, "a.txt"),
        Err(Errno::Notcapable)
    );
    put(&output, "x", b"x");
    assert_eq!(
        output.rename("x", &input, "a.txt"),
        Err(Errno::Notcapable),
        "nor can anything be renamed over an input"
    );
    output.unlink_file("x").unwrap();
    assert_eq!(snapshot(&fs), before);
    assert_eq!(get(&input, "a.txt").unwrap(), ORIGINAL);
}

#[test]
fn links_and_renames_between_two_writable_preopens_are_exdev() {
    // Even with every right on both sides: the scopes differ, and so could their rights in
    // another view of the same files.
    let (fs, _view, a, b) = two_writable();
    let before = snapshot(&fs);
    assert_eq!(a.link(0, "f", &b, "f"), Err(Errno::Xdev));
    assert_eq!(a.rename("f", &b, "f"), Err(Errno::Xdev));
    assert_eq!(snapshot(&fs), before);
    assert_eq!(get(&a, "f").unwrap(), b"in a");
    assert!(names(&b).is_empty());
}

#[test]
fn descriptors_of_two_views_never_share_a_scope() {
    let fs = fs_with(Quotas::default());
    fs.create_dir_all("/data").unwrap();
    let table = CapabilityTable::new()
        .with("/data", Access::READ_WRITE)
        .unwrap();
    let (one, two) = (fs.view(&table).unwrap(), fs.view(&table).unwrap());
    let first = one.open_preopens().unwrap().remove(0);
    let second = two.open_preopens().unwrap().remove(0);
    put(&first, "f", b"x");
    let before = snapshot(&fs);
    assert_eq!(first.link(0, "f", &second, "g"), Err(Errno::Xdev));
    assert_eq!(first.rename("f", &second, "g"), Err(Errno::Xdev));
    assert_eq!(snapshot(&fs), before);
    // Opening the same view's preopens again gives descriptors of the same scopes.
    let again = one.open_preopens().unwrap().remove(0);
    first.link(0, "f", &again, "g").unwrap();
    assert_eq!(get(&first, "g").unwrap(), b"x");
}

#[test]
fn within_one_preopen_links_and_renames_still_work() {
    let (fs, _view, _input, output) = input_and_output();
    put(&output, "f", b"data");
    output.create_directory("d").unwrap();
    let d = output
        .open_at(0, "d", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    output.link(0, "f", &d, "hard").unwrap();
    d.rename("hard", &output, "moved").unwrap();
    output.rename("f", &d, "f").unwrap();
    assert_eq!(names(&output), ["d", "moved"]);
    assert_eq!(names(&d), ["f"]);
    assert_eq!(get(&output, "moved").unwrap(), b"data");
    assert_eq!(output.filestat_at(0, "moved").unwrap().nlink, 2);
    check(&fs);
}

// ---- symbolic links ---------------------------------------------------------------------------

#[test]
fn a_symlink_from_the_output_to_the_input_cannot_be_followed() {
    let (fs, _view, input, output) = input_and_output();
    // Making the link is allowed (a relative target is only text)...
    output.symlink("../input/a.txt", "link").unwrap();
    let before = snapshot(&fs);
    // ...but following it climbs out of /output's descriptor: refused, for writing or not.
    for (base, open_flags) in [
        (FILE_RW, 0),
        (Rights::FD_WRITE, oflags::TRUNC),
        (Rights::FD_READ, 0),
    ] {
        let opened = output.open_at(
            lookupflags::SYMLINK_FOLLOW,
            "link",
            open_flags,
            base,
            Rights::NONE,
            0,
        );
        assert_eq!(
            opened.err(),
            Some(Errno::Notcapable),
            "{base:?} {open_flags}"
        );
    }
    assert_eq!(
        output.link(lookupflags::SYMLINK_FOLLOW, "link", &output, "hard"),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        output.set_times_at(lookupflags::SYMLINK_FOLLOW, "link", 5, 5, fstflags::MTIM),
        Err(Errno::Notcapable)
    );
    // An absolute target is refused when the link is made.
    assert_eq!(
        output.symlink("/input/a.txt", "abs"),
        Err(Errno::Notcapable)
    );
    assert_eq!(snapshot(&fs), before);
    assert_eq!(get(&input, "a.txt").unwrap(), ORIGINAL);
}

// ---- nested capability entries ----------------------------------------------------------------

fn nested(entries: &[(&str, &str)]) -> Result<View, FsError> {
    let fs = fs_with(Quotas::default());
    let mut table = CapabilityTable::new();
    for (path, letters) in entries {
        fs.create_dir_all(path).unwrap();
        table
            .grant(path, Access::from_letters(letters).unwrap())
            .unwrap();
    }
    fs.view(&table)
}

#[test]
fn a_nested_entry_narrower_than_its_outer_entry_is_refused() {
    match nested(&[("/data", "rwcl"), ("/data/in", "r")]) {
        Err(FsError::NestedAccess {
            outer,
            outer_access,
            inner,
            inner_access,
            reason,
        }) => {
            assert_eq!((outer.as_str(), inner.as_str()), ("/data", "/data/in"));
            assert_eq!(
                (outer_access, inner_access),
                (Access::READ_WRITE, Access::READ)
            );
            assert!(reason.contains("pretends"), "{reason}");
        }
        other => panic!("expected NestedAccess, got {other:?}"),
    }
    // The message names both entries and says what to do.
    let message = nested(&[("/", "rwcl"), ("/data/in", "rl")])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("/data/in (rl) lies beneath / (rwcl)") && message.contains("grant"),
        "{message}"
    );
    // Any depth, and `write` or `create` alone.
    assert!(nested(&[("/a", "w"), ("/a/b/c", "rcl")]).is_err());
    assert!(nested(&[("/a", "c"), ("/a/b", "rwl")]).is_err());
}

#[test]
fn an_outer_entry_that_can_carry_files_in_needs_an_equal_inner_entry() {
    // `/` can hard-link (read + create) a file beneath /data, where it would become writable.
    for (outer, inner) in [("rc", "rwc"), ("wc", "rwc"), ("rwcl", "rwclx")] {
        match nested(&[("/", outer), ("/data", inner)]) {
            Err(FsError::NestedAccess { reason, .. }) => {
                assert!(reason.contains("hard-link or rename"), "{reason}");
            }
            other => panic!("{outer} over {inner}: expected NestedAccess, got {other:?}"),
        }
    }
}

#[test]
fn nested_entries_that_tell_the_truth_are_accepted() {
    for entries in [
        // Equal accesses: `--dir a::/ --dir b::/data`.
        &[("/", "rwcl"), ("/data", "rwcl")][..],
        // A wider entry inside a read-only one: `--dir a::/:ro --dir b::/out`.
        &[("/", "rl"), ("/out", "rwcl")],
        // A computation whose output directory lies inside an input's: the inner entry may
        // withhold the read the outer one grants (the program reads only what it wrote).
        &[("/data", "r"), ("/data/results", "wc")],
        // Siblings and look-alike prefixes are not nested.
        &[("/a", "rwcl"), ("/ab", "r"), ("/b", "r")],
    ] {
        assert!(nested(entries).is_ok(), "{entries:?}");
    }
    // In the computation's layout the program reads, through the input's entry, what it wrote
    // through the output's.
    let view = nested(&[("/data", "r"), ("/data/results", "wc")]).unwrap();
    let pre = view.open_preopens().unwrap();
    let mut out = pre[1]
        .open_at(
            0,
            "out.txt",
            oflags::CREAT,
            Rights::FD_WRITE,
            Rights::NONE,
            0,
        )
        .unwrap();
    out.write(b"mine").unwrap();
    assert_eq!(get(&pre[0], "results/out.txt").unwrap(), b"mine");
    assert_eq!(
        pre[0]
            .open_at(0, "results/out.txt", 0, Rights::FD_WRITE, Rights::NONE, 0)
            .err(),
        Some(Errno::Notcapable),
        "but not write it there"
    );
    // The check is there to call on its own too.
    let table = CapabilityTable::new()
        .with("/data", Access::READ_WRITE)
        .unwrap()
        .with("/data/in", Access::READ)
        .unwrap();
    assert!(matches!(
        table.check_nesting(),
        Err(FsError::NestedAccess { .. })
    ));
}

// ---- sealed files -------------------------------------------------------------------------------

/// `/input/a.txt` (sealed), `/input/other`, a link `/input/to-a → a.txt`, and a read-write view
/// of `/input`, with a read-write descriptor of `a.txt` opened *before* the seal.
fn sealed() -> (FileSystem, View, Handle, Handle) {
    let fs = fs_with(Quotas::default());
    fs.create_dir_all("/input").unwrap();
    let table = CapabilityTable::new().with("/input", Access::ALL).unwrap();
    let view = fs.view(&table).unwrap();
    let pre = view.open_preopens().unwrap().remove(0);
    put(&pre, "a.txt", ORIGINAL);
    put(&pre, "other", b"other");
    pre.symlink("a.txt", "to-a").unwrap();
    let early = open_rw(&pre, "a.txt", 0).unwrap();
    fs.seal("/input/a.txt").unwrap();
    (fs, view, pre, early)
}

fn eperm<T: std::fmt::Debug>(result: Result<T, Errno>, what: &str) {
    match result {
        Err(Errno::Perm) => {}
        other => panic!("{what}: expected EPERM, got {other:?}"),
    }
}

#[test]
fn a_sealed_file_cannot_be_opened_for_writing_or_truncated() {
    let (fs, view, pre, _early) = sealed();
    let before = snapshot(&fs);
    eperm(open_rw(&pre, "a.txt", 0), "open asking for FD_WRITE");
    eperm(
        pre.open_at(0, "a.txt", 0, Rights::FD_WRITE, Rights::NONE, 0),
        "open write-only",
    );
    eperm(
        pre.open_at(0, "a.txt", oflags::TRUNC, Rights::FD_READ, Rights::NONE, 0),
        "O_TRUNC without FD_WRITE",
    );
    eperm(
        open_rw(&pre, "a.txt", oflags::CREAT | oflags::TRUNC),
        "O_CREAT|O_TRUNC",
    );
    eperm(
        pre.open_at(
            lookupflags::SYMLINK_FOLLOW,
            "to-a",
            0,
            FILE_RW,
            Rights::NONE,
            0,
        ),
        "through a link",
    );
    eperm(
        pre.open_at(
            lookupflags::SYMLINK_FOLLOW,
            "to-a",
            oflags::TRUNC,
            Rights::FD_READ,
            Rights::NONE,
            0,
        ),
        "O_TRUNC through a link",
    );
    match view.write_file("/input/a.txt", &b"overwritten"[..]) {
        Err(FsError::Guest {
            errno: Errno::Perm, ..
        }) => {}
        other => panic!("host write_file: expected EPERM, got {other:?}"),
    }
    // Rights come first: a view that may not write is told so, seal or not.
    let reader_view = fs
        .view(
            &CapabilityTable::new()
                .with("/input", Access::READ_ONLY)
                .unwrap(),
        )
        .unwrap();
    let ro = reader_view.open_preopens().unwrap().remove(0);
    assert_eq!(
        open_rw(&ro, "a.txt", 0).err(),
        Some(Errno::Notcapable),
        "ENOTCAPABLE before EPERM"
    );
    assert_eq!(snapshot(&fs), before);
    // Reading, stat and seeking work.
    assert_eq!(get(&pre, "a.txt").unwrap(), ORIGINAL);
    assert_eq!(get(&pre, "to-a").unwrap(), ORIGINAL);
    let mut reader = pre
        .open_at(
            0,
            "a.txt",
            0,
            Rights(FILE_RW.0 & !Rights::FD_WRITE.0),
            Rights::NONE,
            0,
        )
        .unwrap();
    assert_eq!(reader.seek(9, crate::types::Whence::Set), Ok(9));
    let mut buf = [0u8; 16];
    assert_eq!(reader.read(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"input");
    assert_eq!(reader.filestat().unwrap().size, ORIGINAL.len() as u64);
    let mut contents = Vec::new();
    std::io::Read::read_to_end(&mut view.read_file("/input/a.txt").unwrap(), &mut contents)
        .unwrap();
    assert_eq!(contents, ORIGINAL);
}

#[test]
fn a_descriptor_opened_before_the_seal_can_no_longer_change_the_file() {
    let (fs, _view, pre, mut early) = sealed();
    let before = snapshot(&fs);
    eperm(early.write(b"TAMPERED"), "fd_write");
    eperm(early.write(b""), "an empty fd_write");
    eperm(early.pwrite(b"TAMPERED", 0), "fd_pwrite");
    early.set_fdflags(crate::types::fdflags::APPEND).unwrap();
    eperm(early.write(b"more"), "fd_write in append mode");
    eperm(early.set_size(0), "fd_filestat_set_size (shrink)");
    eperm(early.set_size(1 << 20), "fd_filestat_set_size (grow)");
    eperm(early.allocate(0, 1 << 20), "fd_allocate (grow)");
    eperm(early.allocate(0, 1), "fd_allocate (within the size)");
    eperm(
        early.set_times(5, 5, fstflags::ATIM | fstflags::MTIM),
        "fd_filestat_set_times",
    );
    eperm(
        early.set_times(0, 0, fstflags::MTIM_NOW),
        "fd_filestat_set_times (now)",
    );
    eperm(
        pre.set_times_at(0, "a.txt", 5, 5, fstflags::MTIM),
        "path_filestat_set_times",
    );
    eperm(
        pre.set_times_at(lookupflags::SYMLINK_FOLLOW, "to-a", 5, 5, fstflags::MTIM),
        "path_filestat_set_times through a link",
    );
    assert_eq!(snapshot(&fs), before);
    assert_eq!(early.filestat().unwrap().size, ORIGINAL.len() as u64);
    assert_eq!(get(&pre, "a.txt").unwrap(), ORIGINAL);
    // An invalid request is still EINVAL, as for any file.
    assert_eq!(early.allocate(0, 0), Err(Errno::Inval));
}

#[test]
fn a_sealed_file_cannot_be_removed_renamed_replaced_or_linked() {
    let (fs, _view, pre, _early) = sealed();
    let before = snapshot(&fs);
    eperm(pre.unlink_file("a.txt"), "unlink");
    eperm(pre.rename("a.txt", &pre, "renamed"), "rename it");
    eperm(pre.rename("other", &pre, "a.txt"), "rename over it");
    eperm(pre.rename("a.txt", &pre, "a.txt"), "rename onto itself");
    eperm(pre.link(0, "a.txt", &pre, "hard"), "hard link to it");
    eperm(
        pre.link(lookupflags::SYMLINK_FOLLOW, "to-a", &pre, "hard"),
        "hard link to it through a link",
    );
    assert_eq!(snapshot(&fs), before);
    assert_eq!(get(&pre, "a.txt").unwrap(), ORIGINAL);
    assert_eq!(pre.filestat_at(0, "a.txt").unwrap().nlink, 1);
    // The link *to* it is not sealed, and the other files are as before.
    pre.unlink_file("to-a").unwrap();
    pre.rename("other", &pre, "renamed").unwrap();
    check(&fs);
}

#[test]
fn only_regular_files_reached_without_links_can_be_sealed() {
    let (fs, _view, pre, _early) = sealed();
    pre.create_directory("dir").unwrap();
    pre.symlink(".", "dirlink").unwrap();
    fs.seal("/input/a.txt").unwrap();
    for path in ["/input/dir", "/input", "/", "/input/to-a"] {
        assert!(
            matches!(fs.seal(path), Err(FsError::NotSealable { .. })),
            "{path}"
        );
    }
    assert!(matches!(
        fs.seal("/input/missing"),
        Err(FsError::Guest {
            errno: Errno::Noent,
            ..
        })
    ));
    assert!(matches!(
        fs.seal("/input/dirlink/other"),
        Err(FsError::Guest {
            errno: Errno::Notdir,
            ..
        })
    ));
    assert!(matches!(
        fs.seal("input/a.txt"),
        Err(FsError::InvalidPath { .. })
    ));
    // Nothing else was sealed by the attempts: the link's target and `other` still change.
    put(&pre, "other", b"changed");
    pre.unlink_file("to-a").unwrap();
    assert_eq!(get(&pre, "other").unwrap(), b"changed");
}
