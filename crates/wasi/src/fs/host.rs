//! Loading a host directory into the in-memory file system.
//!
//! Loading copies: after [`FileSystem::load_host_dir`] returns, nothing a guest does can reach
//! the host directory, which is only ever read. Quotas apply to what is loaded exactly as to
//! what a guest writes.

use std::io::Read;
use std::path::Path;

use super::tree::{Ino, check_name};
use super::view::HOST_IO_CHUNK_BYTES;
use super::{FileSystem, FsError};

/// What [`FileSystem::load_host_dir`] copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Regular files.
    pub files: u64,
    /// Directories below the loaded one.
    pub directories: u64,
    /// Symbolic links (copied as links with the same target text).
    pub symlinks: u64,
    /// Bytes of file contents.
    pub bytes: u64,
}

impl FileSystem {
    /// Copies the host directory `host_dir`, recursively, into the directory at absolute guest
    /// path `guest_path` (created with its parents if missing). Entries are loaded in name
    /// order, so inode numbers and `readdir` order are the same on every run. Symbolic links
    /// are copied as links, never followed; inside the file system a link can only ever
    /// resolve within the tree, and an absolute target there resolves to `ENOTCAPABLE`.
    ///
    /// Which rights a guest gets on the loaded files is not decided here but by the capability
    /// table of its view (for `--dir HOST::GUEST:ro`, `read` and `list` only).
    ///
    /// # Errors
    /// [`FsError::Io`] if the host directory cannot be read; [`FsError::Unsupported`] for a
    /// name that is not UTF-8 or a special file (device, FIFO, socket); [`FsError::Guest`]
    /// with `EEXIST` if a name is already taken in the file system, or `ENOSPC`/`EFBIG` when a
    /// quota is reached (what was loaded before stays).
    pub fn load_host_dir(&self, host_dir: &Path, guest_path: &str) -> Result<LoadSummary, FsError> {
        self.load_host_dir_filtered(host_dir, guest_path, &|_| true)
    }

    /// [`FileSystem::load_host_dir`], loading only the entries for whose host path `keep`
    /// answers `true` (a directory left out is left out with everything in it).
    ///
    /// # Errors
    /// As [`FileSystem::load_host_dir`].
    pub fn load_host_dir_filtered(
        &self,
        host_dir: &Path,
        guest_path: &str,
        keep: &dyn Fn(&Path) -> bool,
    ) -> Result<LoadSummary, FsError> {
        let metadata = std::fs::metadata(host_dir).map_err(|source| host_io(host_dir, source))?;
        if !metadata.is_dir() {
            return Err(FsError::Unsupported {
                path: host_dir.to_path_buf(),
                reason: "not a directory",
            });
        }
        let root = self.create_dir_all_ino(guest_path)?;
        let guest_root = super::caps::normalize(guest_path)?;
        let mut summary = LoadSummary::default();
        let mut todo = vec![(host_dir.to_path_buf(), root, guest_root)];
        while let Some((host, dir, guest)) = todo.pop() {
            let mut entries = std::fs::read_dir(&host)
                .map_err(|source| host_io(&host, source))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| host_io(&host, source))?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let host_path = entry.path();
                if !keep(&host_path) {
                    continue;
                }
                let name = entry
                    .file_name()
                    .into_string()
                    .map_err(|_| unsupported(&host_path, "the name is not UTF-8"))?;
                let guest_path = if guest == "/" {
                    format!("/{name}")
                } else {
                    format!("{guest}/{name}")
                };
                let err = |errno| FsError::Guest {
                    path: guest_path.clone(),
                    errno,
                };
                check_name(&name).map_err(err)?;
                let file_type = entry
                    .file_type()
                    .map_err(|source| host_io(&host_path, source))?;
                if file_type.is_dir() {
                    let ino = self.lock_host()?.mkdir_in(dir, &name).map_err(err)?;
                    summary.directories += 1;
                    todo.push((host_path, ino, guest_path));
                } else if file_type.is_file() {
                    summary.bytes += self.load_file(&host_path, dir, &name, &guest_path)?;
                    summary.files += 1;
                } else if file_type.is_symlink() {
                    let target = std::fs::read_link(&host_path)
                        .map_err(|source| host_io(&host_path, source))?;
                    let target = target
                        .to_str()
                        .ok_or_else(|| unsupported(&host_path, "the link target is not UTF-8"))?;
                    if target.is_empty() || target.contains('\0') {
                        return Err(unsupported(&host_path, "the link target is empty"));
                    }
                    self.lock_host()?
                        .symlink_in(dir, &name, target)
                        .map_err(err)?;
                    summary.symlinks += 1;
                } else {
                    return Err(unsupported(
                        &host_path,
                        "a device, FIFO or socket cannot be loaded",
                    ));
                }
            }
        }
        Ok(summary)
    }

    /// Streams one host file into a new file `name` in `dir`; returns its size.
    fn load_file(
        &self,
        host_path: &Path,
        dir: Ino,
        name: &str,
        guest_path: &str,
    ) -> Result<u64, FsError> {
        let err = |errno| FsError::Guest {
            path: guest_path.to_owned(),
            errno,
        };
        let mut file =
            std::fs::File::open(host_path).map_err(|source| host_io(host_path, source))?;
        let ino = self.lock_host()?.create_file_in(dir, name).map_err(err)?;
        let mut buf = vec![0u8; HOST_IO_CHUNK_BYTES];
        let mut offset = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => return Ok(offset),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(host_io(host_path, source)),
            };
            self.lock_host()?
                .write_at(ino, offset, &buf[..n])
                .map_err(err)?;
            offset += n as u64;
        }
    }
}

fn host_io(path: &Path, source: std::io::Error) -> FsError {
    FsError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn unsupported(path: &Path, reason: &'static str) -> FsError {
    FsError::Unsupported {
        path: path.to_path_buf(),
        reason,
    }
}
