//! Every quota answers with its errno, changes nothing when it refuses, and never lets a guest
//! make the host allocate in proportion to a number it chose.

use super::*;
use crate::fs::quota::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_INODES, DEFAULT_MAX_OPEN_DESCRIPTORS,
    DEFAULT_MAX_PATH_BYTES, DEFAULT_MAX_TOTAL_BYTES,
};

fn small(quotas: Quotas) -> (FileSystem, View, Handle) {
    let fs = fs_with(quotas);
    let (view, root) = root_view(&fs, Access::READ_WRITE);
    (fs, view, root)
}

#[test]
fn defaults_are_the_documented_constants() {
    let q = Quotas::default();
    assert_eq!(q.max_total_bytes, DEFAULT_MAX_TOTAL_BYTES);
    assert_eq!(q.max_total_bytes, 1 << 30);
    assert_eq!(q.max_file_bytes, DEFAULT_MAX_FILE_BYTES);
    assert_eq!(q.max_file_bytes, 512 << 20);
    assert_eq!(q.max_inodes, DEFAULT_MAX_INODES);
    assert_eq!(q.max_open_descriptors, DEFAULT_MAX_OPEN_DESCRIPTORS);
    assert_eq!(q.max_depth, DEFAULT_MAX_DEPTH);
    assert_eq!(q.max_path_bytes, DEFAULT_MAX_PATH_BYTES);
}

#[test]
fn a_pwrite_at_a_huge_offset_is_efbig_and_allocates_nothing() {
    let (fs, _view, root) = rw();
    let file = open_rw(&root, "f", oflags::CREAT).unwrap();
    let before = snapshot(&fs);
    assert_eq!(file.pwrite(b"x", 1 << 40), Err(Errno::Fbig));
    assert_eq!(
        file.pwrite(b"x", u64::MAX),
        Err(Errno::Fbig),
        "offset + len overflows"
    );
    assert_eq!(file.set_size(1 << 40), Err(Errno::Fbig));
    assert_eq!(file.allocate(1 << 40, 1), Err(Errno::Fbig));
    assert_eq!(file.allocate(u64::MAX, 2), Err(Errno::Fbig));
    assert_eq!(snapshot(&fs), before);
    assert_eq!(fs.lock().unwrap().resident_bytes(), 0);
    // Exactly up to the file-size quota is allowed; one byte more is not.
    let max = DEFAULT_MAX_FILE_BYTES;
    assert_eq!(file.pwrite(b"ab", max - 2), Ok(2));
    assert_eq!(file.pwrite(b"ab", max - 1), Err(Errno::Fbig));
    // The sparse file is charged in full but holds one chunk of memory.
    assert_eq!(fs.usage().unwrap().bytes, max + 1);
    assert!(fs.lock().unwrap().resident_bytes() <= 64 * 1024);
    check(&fs);
}

#[test]
fn sparse_growth_counts_against_the_byte_quota() {
    let (fs, _view, root) = small(Quotas {
        max_total_bytes: 10_000,
        ..Quotas::default()
    });
    let mut file = open_rw(&root, "f", oflags::CREAT).unwrap();
    let before = snapshot(&fs);
    assert_eq!(file.pwrite(b"x", 10_000), Err(Errno::Nospc));
    assert_eq!(file.set_size(10_000), Err(Errno::Nospc));
    assert_eq!(file.allocate(0, 10_000), Err(Errno::Nospc));
    assert_eq!(snapshot(&fs), before);
    // The name "f" costs one byte: 9999 are left.
    assert_eq!(file.pwrite(b"x", 9_998), Ok(1));
    assert_eq!(fs.usage().unwrap().bytes, 10_000);
    assert_eq!(
        file.write(b"more"),
        Ok(4),
        "overwriting in place costs nothing"
    );
    file.set_size(9_999).unwrap();
    assert_eq!(open_rw(&root, "g", oflags::CREAT).err(), Some(Errno::Nospc));
    // Truncating frees.
    file.set_size(0).unwrap();
    assert_eq!(fs.usage().unwrap().bytes, 1);
    open_rw(&root, "g", oflags::CREAT).unwrap();
    check(&fs);
}

#[test]
fn writes_past_the_byte_quota_write_nothing() {
    let (fs, _view, root) = small(Quotas {
        max_total_bytes: 100,
        ..Quotas::default()
    });
    let mut file = open_rw(&root, "f", oflags::CREAT).unwrap();
    assert_eq!(file.write(&[1u8; 90]), Ok(90));
    let before = snapshot(&fs);
    assert_eq!(file.write(&[2u8; 20]), Err(Errno::Nospc));
    assert_eq!(file.tell(), Ok(90), "position unchanged");
    assert_eq!(snapshot(&fs), before);
    assert_eq!(file.write(&[2u8; 9]), Ok(9));
    // Names and link targets count too.
    assert_eq!(root.symlink("xx", "l"), Err(Errno::Nospc));
    assert_eq!(root.create_directory("dd"), Err(Errno::Nospc));
    check(&fs);
}

#[test]
fn the_inode_quota_is_enospc_for_every_kind_of_entry() {
    // The root is one inode; three more fit.
    let (fs, _view, root) = small(Quotas {
        max_inodes: 4,
        ..Quotas::default()
    });
    open_rw(&root, "f", oflags::CREAT).unwrap();
    root.create_directory("d").unwrap();
    root.symlink("f", "l").unwrap();
    let before = snapshot(&fs);
    assert_eq!(open_rw(&root, "g", oflags::CREAT).err(), Some(Errno::Nospc));
    assert_eq!(root.create_directory("e"), Err(Errno::Nospc));
    assert_eq!(root.symlink("f", "m"), Err(Errno::Nospc));
    assert_eq!(snapshot(&fs), before);
    // A hard link is a name, not an inode.
    root.link(0, "f", &root, "f2").unwrap();
    root.unlink_file("l").unwrap();
    root.create_directory("e").unwrap();
    assert_eq!(fs.usage().unwrap().inodes, 4);
    check(&fs);
}

#[test]
fn open_descriptors_are_capped_per_view_with_emfile() {
    let fs = fs_with(Quotas {
        max_open_descriptors: 3,
        ..Quotas::default()
    });
    let (view, root) = root_view(&fs, Access::READ_WRITE);
    put(&root, "f", b"");
    let a = open_rw(&root, "f", 0).unwrap();
    let b = open_rw(&root, "f", 0).unwrap();
    assert_eq!(view.open_descriptors(), 3, "the preopen counts");
    let before = snapshot(&fs);
    assert_eq!(open_rw(&root, "f", 0).err(), Some(Errno::Mfile));
    assert_eq!(
        open_rw(&root, "new", oflags::CREAT).err(),
        Some(Errno::Mfile)
    );
    assert_eq!(snapshot(&fs), before, "EMFILE comes before any creation");
    drop(a);
    let c = open_rw(&root, "f", 0).unwrap();
    // Another view of the same file system has its own count.
    let (_other, other_root) = root_view(&fs, Access::READ_WRITE);
    open_rw(&other_root, "f", 0).unwrap();
    drop((b, c));
    assert_eq!(view.open_descriptors(), 1);
}

#[test]
fn directory_depth_is_capped_for_mkdir_and_rename() {
    let (fs, _view, root) = small(Quotas {
        max_depth: 3,
        ..Quotas::default()
    });
    root.create_directory("a").unwrap();
    root.create_directory("a/b").unwrap();
    root.create_directory("a/b/c").unwrap();
    let before = snapshot(&fs);
    assert_eq!(root.create_directory("a/b/c/d"), Err(Errno::Nospc));
    assert_eq!(snapshot(&fs), before);
    // Files may still live at the deepest level.
    put(&root, "a/b/c/file", b"");
    // Moving a two-level tree under a depth-2 directory would make depth 4.
    root.create_directory("x").unwrap();
    root.create_directory("x/y").unwrap();
    let before = snapshot(&fs);
    assert_eq!(root.rename("x", &root, "a/b/x"), Err(Errno::Nospc));
    assert_eq!(snapshot(&fs), before);
    root.rename("x", &root, "a/x").unwrap();
    // Through a descriptor deep in the tree the depth still counts from the root.
    let deep = root
        .open_at(0, "a/b/c", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    assert_eq!(deep.create_directory("d"), Err(Errno::Nospc));
    check(&fs);
}

#[test]
fn path_length_is_capped_with_enametoolong() {
    let (fs, _view, root) = small(Quotas {
        max_path_bytes: 32,
        ..Quotas::default()
    });
    let ok = "a".repeat(32);
    root.create_directory(&ok).unwrap();
    let before = snapshot(&fs);
    assert_eq!(
        root.create_directory(&"a".repeat(33)),
        Err(Errno::Nametoolong)
    );
    assert_eq!(root.symlink(&"t".repeat(33), "l"), Err(Errno::Nametoolong));
    assert_eq!(get(&root, &format!("{ok}/{ok}")), Err(Errno::Nametoolong));
    assert_eq!(snapshot(&fs), before);
}
