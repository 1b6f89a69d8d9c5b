//! Paths can never leave the directory they are resolved beneath: one test per way out.

use super::*;
use crate::fs::quota::MAX_SYMLINK_EXPANSIONS;

/// A file system with `/secret` outside the view and `/box` (with `/box/in/file`) as its only
/// preopen.
fn boxed() -> (FileSystem, View, Handle) {
    let fs = fs_with(Quotas::default());
    let (_all, root) = root_view(&fs, Access::READ_WRITE);
    put(&root, "secret", b"do not read");
    root.create_directory("box").unwrap();
    root.create_directory("box/in").unwrap();
    put(&root, "box/in/file", b"inside");
    drop(root);
    let table = CapabilityTable::new().with("/box", Access::ALL).unwrap();
    let view = fs.view(&table).unwrap();
    let preopen = view.open_preopens().unwrap().remove(0);
    (fs, view, preopen)
}

#[test]
fn dotdot_past_the_preopen_is_notcapable() {
    let (fs, _view, pre) = boxed();
    let before = snapshot(&fs);
    for path in [
        "..",
        "../secret",
        "in/../../secret",
        "in/../..",
        "./../box/in/file",
    ] {
        assert_eq!(get(&pre, path), Err(Errno::Notcapable), "{path}");
        assert_eq!(pre.filestat_at(0, path), Err(Errno::Notcapable), "{path}");
        assert_eq!(
            pre.create_directory(&format!("{path}/x")),
            Err(Errno::Notcapable),
            "{path}"
        );
    }
    assert_eq!(pre.unlink_file("../secret"), Err(Errno::Notcapable));
    assert_eq!(
        pre.rename("in/file", &pre, "../stolen"),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        pre.link(0, "../secret", &pre, "mine"),
        Err(Errno::Notcapable)
    );
    assert_eq!(snapshot(&fs), before, "nothing changed outside or inside");
    // `..` that stays inside is fine.
    assert_eq!(get(&pre, "in/../in/./file").unwrap(), b"inside");
}

#[test]
fn dotdot_cannot_leave_a_subdirectory_descriptor_either() {
    // cap-std semantics: every descriptor confines its own paths, not only preopens.
    let (_fs, _view, pre) = boxed();
    let sub = pre
        .open_at(0, "in", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    assert_eq!(get(&sub, "file").unwrap(), b"inside");
    assert_eq!(get(&sub, "../in/file"), Err(Errno::Notcapable));
    assert_eq!(sub.filestat_at(0, ".."), Err(Errno::Notcapable));
}

#[test]
fn absolute_paths_are_notcapable() {
    let (fs, _view, pre) = boxed();
    let before = snapshot(&fs);
    for path in ["/", "/secret", "/box/in/file", "//box"] {
        assert_eq!(get(&pre, path), Err(Errno::Notcapable), "{path}");
        assert_eq!(pre.create_directory(path), Err(Errno::Notcapable), "{path}");
        assert_eq!(pre.symlink("in", path), Err(Errno::Notcapable), "{path}");
    }
    assert_eq!(snapshot(&fs), before);
}

#[test]
fn symlinks_pointing_out_are_notcapable() {
    let (fs, _view, pre) = boxed();
    // A link may name anything relative; following it out is refused.
    pre.symlink("../secret", "up").unwrap();
    pre.symlink("in/../../secret", "sneaky").unwrap();
    pre.symlink("../../..", "far").unwrap();
    let follow = lookupflags::SYMLINK_FOLLOW;
    for link in ["up", "sneaky", "far", "far/secret"] {
        assert_eq!(get(&pre, link), Err(Errno::Notcapable), "{link}");
        assert_eq!(
            pre.filestat_at(follow, link),
            Err(Errno::Notcapable),
            "{link}"
        );
    }
    assert_eq!(
        open_rw(&pre, "up", oflags::CREAT).err(),
        Some(Errno::Loop),
        "not followed"
    );
    assert_eq!(
        pre.open_at(
            follow,
            "up",
            oflags::CREAT | oflags::TRUNC,
            FILE_RW,
            Rights::NONE,
            0
        )
        .err(),
        Some(Errno::Notcapable)
    );
    // An absolute target is refused when the link is made.
    assert_eq!(pre.symlink("/secret", "abs"), Err(Errno::Notcapable));
    assert_eq!(pre.symlink("/", "abs"), Err(Errno::Notcapable));
    // A link inside the box that goes up and comes back is fine.
    pre.symlink("in/../in/file", "roundtrip").unwrap();
    assert_eq!(get(&pre, "roundtrip").unwrap(), b"inside");
    // The link's own metadata is still readable without following it.
    assert_eq!(pre.readlink("up").unwrap(), "../secret");
    let outside = fs_secret(&fs);
    assert_eq!(outside, b"do not read", "untouched");
}

fn fs_secret(fs: &FileSystem) -> Vec<u8> {
    let (_v, root) = root_view(fs, Access::READ);
    get(&root, "secret").unwrap()
}

#[test]
fn symlink_loops_end_with_eloop_after_a_bounded_number_of_expansions() {
    let (_fs, _view, pre) = boxed();
    pre.symlink("self", "self").unwrap();
    pre.symlink("b", "a").unwrap();
    pre.symlink("a", "b").unwrap();
    let follow = lookupflags::SYMLINK_FOLLOW;
    for link in ["self", "a", "b", "a/x", "self/self"] {
        assert_eq!(get(&pre, link), Err(Errno::Loop), "{link}");
        assert_eq!(pre.filestat_at(follow, link), Err(Errno::Loop), "{link}");
    }
    // Without following, the loop is just a link.
    assert_eq!(
        pre.open_at(0, "self", 0, Rights::FD_READ, Rights::NONE, 0)
            .err(),
        Some(Errno::Loop)
    );
    assert!(pre.filestat_at(0, "self").is_ok());
    // A chain of exactly the limit resolves; one more link is ELOOP.
    let limit = MAX_SYMLINK_EXPANSIONS as usize;
    pre.symlink("in/file", "chain0").unwrap();
    for i in 1..=limit {
        pre.symlink(&format!("chain{}", i - 1), &format!("chain{i}"))
            .unwrap();
    }
    assert_eq!(
        get(&pre, &format!("chain{}", limit - 1)).unwrap(),
        b"inside"
    );
    assert_eq!(get(&pre, &format!("chain{limit}")), Err(Errno::Loop));
}

#[test]
fn trailing_slashes_behave_as_posix() {
    let (fs, _view, pre) = boxed();
    // A file named with a trailing slash is not a directory.
    assert_eq!(get(&pre, "in/file/"), Err(Errno::Notdir));
    assert_eq!(get(&pre, "in/file///"), Err(Errno::Notdir));
    assert_eq!(pre.filestat_at(0, "in/file/"), Err(Errno::Notdir));
    assert_eq!(pre.unlink_file("in/file/"), Err(Errno::Notdir));
    assert_eq!(pre.remove_directory("in/file/"), Err(Errno::Notdir));
    // A directory with one is fine.
    let dir = pre
        .open_at(0, "in///", 0, Rights::NONE, Rights::NONE, 0)
        .unwrap();
    assert_eq!(dir.filetype(), crate::types::Filetype::Directory);
    pre.create_directory("made/").unwrap();
    pre.rename("made/", &pre, "moved/").unwrap();
    pre.remove_directory("moved/").unwrap();
    // Creating a non-directory with a trailing slash.
    assert_eq!(pre.symlink("in", "link/"), Err(Errno::Noent));
    assert_eq!(pre.link(0, "in/file", &pre, "hard/"), Err(Errno::Noent));
    assert_eq!(
        open_rw(&pre, "newfile/", oflags::CREAT).err(),
        Some(Errno::Isdir)
    );
    // A link to a directory named with a trailing slash resolves through the link...
    pre.symlink("in", "to-in").unwrap();
    assert_eq!(get(&pre, "to-in/file").unwrap(), b"inside");
    let st = pre.filestat_at(0, "to-in/").unwrap();
    assert_eq!(st.filetype, crate::types::Filetype::Directory as u8);
    // ...but removal acts on the link itself, which is not a directory.
    assert_eq!(pre.remove_directory("to-in/"), Err(Errno::Notdir));
    assert_eq!(pre.unlink_file("to-in/"), Err(Errno::Notdir));
    pre.unlink_file("to-in").unwrap();
    check(&fs);
}

#[test]
fn odd_paths_are_refused_cleanly() {
    let (fs, _view, pre) = boxed();
    let before = snapshot(&fs);
    assert_eq!(get(&pre, ""), Err(Errno::Noent));
    assert_eq!(get(&pre, "in/file\0"), Err(Errno::Inval));
    assert_eq!(pre.create_directory(""), Err(Errno::Noent));
    let long_name = "n".repeat(256);
    assert_eq!(pre.create_directory(&long_name), Err(Errno::Nametoolong));
    pre.create_directory(&"n".repeat(255)).unwrap();
    let long_path = "a/".repeat(3000);
    assert_eq!(pre.create_directory(&long_path), Err(Errno::Nametoolong));
    assert_eq!(
        pre.symlink(&"x/".repeat(3000), "l"),
        Err(Errno::Nametoolong)
    );
    assert_ne!(snapshot(&fs), before);
}

#[test]
fn a_directory_moved_out_of_reach_stays_confined() {
    // Another view moves the directory this descriptor refers to: `..` must still stop at the
    // descriptor, never climb real parent pointers into what this view was not granted.
    let (fs, _view, pre) = boxed();
    let sub = pre
        .open_at(0, "in", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    let (_all, root) = root_view(&fs, Access::READ_WRITE);
    root.create_directory("elsewhere").unwrap();
    root.rename("box/in", &root, "elsewhere/in").unwrap();
    assert_eq!(get(&sub, "file").unwrap(), b"inside");
    assert_eq!(get(&sub, "../../secret"), Err(Errno::Notcapable));
    assert_eq!(get(&sub, ".."), Err(Errno::Notcapable));
}

#[test]
fn a_view_cannot_be_redirected_by_a_planted_symlink() {
    let fs = fs_with(Quotas::default());
    let (_v, root) = root_view(&fs, Access::READ_WRITE);
    root.create_directory("secret").unwrap();
    root.symlink("secret", "out").unwrap();
    let table = CapabilityTable::new()
        .with("/out", Access::READ_ONLY)
        .unwrap();
    match fs.view(&table) {
        Err(crate::fs::FsError::Guest { errno, .. }) => assert_eq!(errno, Errno::Notdir),
        other => panic!("expected ENOTDIR, got {other:?}"),
    }
    let table = CapabilityTable::new()
        .with("/missing", Access::READ_ONLY)
        .unwrap();
    assert!(matches!(
        fs.view(&table),
        Err(crate::fs::FsError::Guest {
            errno: Errno::Noent,
            ..
        })
    ));
}
