//! For each access of a capability table: a view without it is refused everything that needs
//! it, with `ENOTCAPABLE` (or `EPERM`), and the file system is left exactly as it was.

use super::*;
use crate::fs::FsError;

/// `/data` holding a file `f`, a directory `sub` (with `inner`), and a link `l → f`.
fn populated() -> FileSystem {
    let fs = fs_with(Quotas::default());
    let (_v, root) = root_view(&fs, Access::READ_WRITE);
    root.create_directory("data").unwrap();
    put(&root, "data/f", b"contents");
    root.create_directory("data/sub").unwrap();
    put(&root, "data/sub/inner", b"i");
    root.symlink("f", "data/l").unwrap();
    fs
}

/// A view of `/data` with every access but `without`.
fn without(fs: &FileSystem, without: Access) -> (View, Handle) {
    let access = Access::ALL.difference(without);
    let table = CapabilityTable::new().with("/data", access).unwrap();
    let view = fs.view(&table).unwrap();
    let pre = view.open_preopens().unwrap().remove(0);
    (view, pre)
}

fn refused<T: std::fmt::Debug>(result: Result<T, Errno>, what: &str) {
    match result {
        Err(Errno::Notcapable | Errno::Perm) => {}
        other => panic!("{what}: expected ENOTCAPABLE or EPERM, got {other:?}"),
    }
}

fn refused_host<T: std::fmt::Debug>(result: Result<T, FsError>, what: &str) {
    match result {
        Err(FsError::Guest {
            errno: Errno::Notcapable | Errno::Perm,
            ..
        }) => {}
        other => panic!("{what}: expected ENOTCAPABLE or EPERM, got {other:?}"),
    }
}

#[test]
fn without_read_nothing_can_be_read() {
    let fs = populated();
    let (view, pre) = without(&fs, Access::READ);
    let before = snapshot(&fs);
    refused(
        pre.open_at(0, "f", 0, Rights::FD_READ, Rights::NONE, 0),
        "open for reading",
    );
    refused(pre.readlink("l"), "readlink");
    refused(pre.link(0, "f", &pre, "f2"), "link source");
    refused_host(view.read_file("/data/f"), "host read");
    // A descriptor opened for writing only cannot be turned into a reader.
    let mut w = pre
        .open_at(0, "f", 0, Rights::FD_WRITE, Rights::NONE, 0)
        .unwrap();
    let mut buf = [0u8; 4];
    refused(w.read(&mut buf), "read on a write-only descriptor");
    refused(w.pread(&mut buf, 0), "pread");
    refused(
        w.set_rights(Rights::FD_READ, Rights::NONE),
        "regaining read",
    );
    assert!(!pre.rights_inheriting().contains(Rights::FD_READ));
    drop(w);
    assert_eq!(snapshot(&fs), before);
}

#[test]
fn without_write_nothing_can_be_changed() {
    let fs = populated();
    let (view, pre) = without(&fs, Access::WRITE);
    let before = snapshot(&fs);
    refused(
        pre.open_at(0, "f", 0, Rights::FD_WRITE, Rights::NONE, 0),
        "open for writing",
    );
    refused(
        pre.open_at(0, "f", oflags::TRUNC, Rights::FD_READ, Rights::NONE, 0),
        "O_TRUNC",
    );
    refused(pre.unlink_file("f"), "unlink");
    refused(pre.remove_directory("sub/"), "rmdir");
    refused(pre.rename("f", &pre, "g"), "rename source");
    refused(
        pre.set_times_at(0, "f", 1, 1, crate::types::fstflags::MTIM),
        "set times",
    );
    refused_host(
        view.write_file("/data/f", &b"overwritten"[..]),
        "host write",
    );
    let r = pre.open_at(0, "f", 0, FILE_RW, Rights::NONE, 0);
    refused(r, "read-write open");
    let mut ro = pre
        .open_at(
            0,
            "f",
            0,
            Rights(FILE_RW.0 & !Rights::FD_WRITE.0),
            Rights::NONE,
            0,
        )
        .unwrap();
    refused(ro.write(b"x"), "write");
    refused(ro.pwrite(b"x", 0), "pwrite");
    refused(ro.set_size(0), "set size");
    refused(ro.allocate(0, 100), "allocate");
    refused(
        ro.set_times(1, 1, crate::types::fstflags::ATIM),
        "fd set times",
    );
    drop(ro);
    assert_eq!(snapshot(&fs), before);
}

#[test]
fn without_create_nothing_can_be_added() {
    let fs = populated();
    let (view, pre) = without(&fs, Access::CREATE);
    let before = snapshot(&fs);
    refused(open_rw(&pre, "new", oflags::CREAT), "O_CREAT");
    refused(
        open_rw(&pre, "f", oflags::CREAT),
        "O_CREAT on an existing file",
    );
    refused(pre.create_directory("d"), "mkdir");
    refused(pre.symlink("f", "l2"), "symlink");
    refused(pre.link(0, "f", &pre, "f2"), "link target");
    refused(pre.rename("f", &pre, "g"), "rename target");
    refused_host(view.write_file("/data/new", &b"x"[..]), "host create");
    refused_host(view.create_dir("/data/newdir"), "host mkdir");
    assert_eq!(snapshot(&fs), before);
    // Writing an existing file needs no `create`... but the host API's O_CREAT does.
    let mut f = open_rw(&pre, "f", 0).unwrap();
    f.write(b"C").unwrap();
}

#[test]
fn without_list_nothing_can_be_enumerated() {
    let fs = populated();
    let (view, pre) = without(&fs, Access::LIST);
    let before = snapshot(&fs);
    refused(pre.readdir(0, 1024), "readdir of the preopen");
    let sub = pre
        .open_at(0, "sub", oflags::DIRECTORY, DIR_ALL, Rights::ALL, 0)
        .unwrap();
    refused(sub.readdir(0, 1024), "readdir of a subdirectory");
    refused_host(view.list_dir("/data"), "host listing");
    // Names already known can still be opened and read: that is `read`.
    assert_eq!(get(&pre, "sub/inner").unwrap(), b"i");
    assert_eq!(snapshot(&fs), before);
}

#[test]
fn without_execute_the_host_will_not_load_a_program() {
    let fs = populated();
    let (view, _pre) = without(&fs, Access::EXECUTE);
    match view.read_executable("/data/f") {
        Err(FsError::NotPermitted { access, .. }) => assert_eq!(access, Access::EXECUTE),
        other => panic!("expected NotPermitted, got {other:?}"),
    }
    let (with, _pre) = without(&fs, Access::NONE);
    let mut program = Vec::new();
    std::io::Read::read_to_end(&mut with.read_executable("/data/f").unwrap(), &mut program)
        .unwrap();
    assert_eq!(program, b"contents");
}

#[test]
fn an_empty_table_reaches_nothing() {
    let fs = populated();
    let view = fs.view(&CapabilityTable::new()).unwrap();
    assert!(view.open_preopens().unwrap().is_empty());
    assert!(matches!(
        view.read_file("/data/f"),
        Err(FsError::NotCovered { .. })
    ));
}

#[test]
fn each_view_gets_its_own_rights_on_the_same_files() {
    let fs = populated();
    fs.create_dir_all("/out").unwrap();
    let table = CapabilityTable::new()
        .with("/data", Access::READ_ONLY)
        .unwrap()
        .with("/out", Access::WRITE | Access::CREATE)
        .unwrap();
    let program = fs.view(&table).unwrap();
    let pre = program.open_preopens().unwrap();
    assert_eq!(
        pre.iter()
            .map(|h| h.preopen_name().unwrap())
            .collect::<Vec<_>>(),
        ["/data", "/out"]
    );
    let reader = fs
        .view(
            &CapabilityTable::new()
                .with("/out", Access::READ_ONLY)
                .unwrap(),
        )
        .unwrap();
    let mut out = pre[1]
        .open_at(
            0,
            "result",
            oflags::CREAT,
            Rights::FD_WRITE,
            Rights::NONE,
            0,
        )
        .unwrap();
    out.write(b"42").unwrap();
    refused(pre[1].readdir(0, 100), "the program cannot list /out");
    refused(pre[0].create_directory("x"), "nor write /data");
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut reader.read_file("/out/result").unwrap(), &mut got).unwrap();
    assert_eq!(got, b"42");
    refused_host(
        reader.write_file("/out/result", &b"forged"[..]),
        "a reader cannot write",
    );
}
