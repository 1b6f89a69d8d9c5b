//! Tests of the in-memory file system: POSIX behaviour, confinement, quotas, capabilities,
//! links across preopens and sealed files, the host side, and a model-based property test.

mod basics;
mod capabilities;
mod confinement;
mod host;
mod links;
mod model;
mod quotas;

use super::{Access, CapabilityTable, FileSystem, FsConfig, Handle, Quotas, Timestamps, View};
use crate::types::{Errno, Rights, lookupflags, oflags};

/// Every right a directory descriptor can hold.
pub(super) const DIR_ALL: Rights = crate::fs::caps::DIRECTORY_RIGHTS;

/// Rights for a file a test reads, writes and inspects.
pub(super) const FILE_RW: Rights = Rights(
    Rights::FD_READ.0
        | Rights::FD_WRITE.0
        | Rights::FD_SEEK.0
        | Rights::FD_TELL.0
        | Rights::FD_FILESTAT_GET.0
        | Rights::FD_FILESTAT_SET_SIZE.0
        | Rights::FD_FILESTAT_SET_TIMES.0
        | Rights::FD_ALLOCATE.0
        | Rights::FD_ADVISE.0
        | Rights::FD_FDSTAT_SET_FLAGS.0,
);

pub(super) fn fs_with(quotas: Quotas) -> FileSystem {
    FileSystem::new(FsConfig {
        quotas,
        timestamps: Timestamps::Fixed(1_000),
    })
}

/// A view granting `access` on `/`, and its preopen.
pub(super) fn root_view(fs: &FileSystem, access: Access) -> (View, Handle) {
    let table = CapabilityTable::new().with("/", access).unwrap();
    let view = fs.view(&table).unwrap();
    let mut preopens = view.open_preopens().unwrap();
    assert_eq!(preopens.len(), 1);
    let root = preopens.remove(0);
    (view, root)
}

/// A fresh file system with default quotas, viewed read-write at `/`.
pub(super) fn rw() -> (FileSystem, View, Handle) {
    let fs = fs_with(Quotas::default());
    let (view, root) = root_view(&fs, Access::READ_WRITE);
    (fs, view, root)
}

pub(super) fn open_rw(dir: &Handle, path: &str, oflags: u16) -> Result<Handle, Errno> {
    dir.open_at(0, path, oflags, FILE_RW, Rights::NONE, 0)
}

/// Creates (or truncates) `path` and writes `data` to it.
pub(super) fn put(dir: &Handle, path: &str, data: &[u8]) {
    let mut file = open_rw(dir, path, oflags::CREAT | oflags::TRUNC).unwrap();
    assert_eq!(file.write(data), Ok(data.len()));
}

/// The whole contents of `path` (links followed).
pub(super) fn get(dir: &Handle, path: &str) -> Result<Vec<u8>, Errno> {
    let mut file = dir.open_at(
        lookupflags::SYMLINK_FOLLOW,
        path,
        0,
        Rights::FD_READ,
        Rights::NONE,
        0,
    )?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The names `readdir` lists in `dir`, `.` and `..` excluded, in listing order.
pub(super) fn names(dir: &Handle) -> Vec<String> {
    let mut out = Vec::new();
    let mut cookie = 0;
    loop {
        let batch = dir.readdir(cookie, 256).unwrap();
        let Some(last) = batch.last() else {
            return out;
        };
        cookie = last.next;
        out.extend(
            batch
                .into_iter()
                .map(|d| d.name)
                .filter(|n| n != "." && n != ".."),
        );
    }
}

pub(super) fn snapshot(fs: &FileSystem) -> Vec<String> {
    fs.lock().unwrap().snapshot()
}

pub(super) fn check(fs: &FileSystem) {
    fs.lock().unwrap().check_invariants();
}
