//! The in-memory file system behind Covenant's WASI, and the capability-checked views through
//! which a guest, each principal and the host reach it.
//!
//! # Shape
//! - A [`FileSystem`] is one tree of directories, regular files, symbolic links and hard
//!   links, held in memory and bounded by [`Quotas`]. Cloning it clones a handle: every clone,
//!   and every view made from one, sees the same files.
//! - A [`CapabilityTable`] (guest path → [`Access`]) is the only thing a [`View`] is built
//!   from ([`FileSystem::view`]). The program and each principal get their own view of the same
//!   file system; the table's entries are the view's preopened directories, and their
//!   [`Access`] becomes preview1 rights as [`caps`] documents.
//! - A [`Handle`] is an open descriptor. Preopens come from [`View::open_preopens`], everything
//!   else from [`Handle::open_at`]; every operation checks the handle's rights first.
//! - The host loads a directory of its own into the tree ([`FileSystem::load_host_dir`]),
//!   puts and gets files through a view ([`View::write_file`], [`View::read_file`]), and never
//!   has its own directory touched by a guest: loading copies.
//!
//! # Why one lock
//! The tree sits behind one `Arc<Mutex<_>>`. Every operation is short and bounded (a path is at
//! most [`quota::DEFAULT_MAX_PATH_BYTES`] long, a read or write at most one guest buffer), and
//! one lock makes each operation atomic for every view at once: a rename, a hard link or a
//! quota charge can never be seen half done by another party, with no lock-ordering argument to
//! get wrong. Contention is low by construction: in a computation, principals provision
//! before the program runs and collect after it ends. The host-side streaming API takes the
//! lock once per [`view::HOST_IO_CHUNK_BYTES`], so a long upload never holds it for long.
//!
//! # Errors
//! Guest-facing operations answer an [`Errno`], as preview1 does. Host-facing ones answer an
//! [`FsError`] that says which path and why. A poisoned lock (a panic in another thread while
//! it held the lock, which this module never does on purpose) makes every later operation
//! answer `EIO` rather than trust a half-done change.

pub mod caps;
mod data;
mod host;
pub mod quota;
mod tree;
pub mod view;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

pub use caps::{Access, CapabilityTable, ParseAccessError};
pub use host::LoadSummary;
pub use quota::{Quotas, Usage};
pub use tree::Dirent;
pub use view::{FileReader, Handle, View};

use crate::types::Errno;
use tree::Tree;

/// Where the file system's timestamps come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Timestamps {
    /// The host's real-time clock (nanoseconds since the Unix epoch). The default.
    #[default]
    Realtime,
    /// Always this value. For runs whose policy does not allow the clock: file times would
    /// otherwise tell the guest the time of day.
    Fixed(u64),
}

/// How a [`FileSystem`] is set up. Default: [`Quotas::default`] and [`Timestamps::Realtime`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsConfig {
    /// The limits. Default: [`Quotas::default`].
    pub quotas: Quotas,
    /// The clock for timestamps. Default: [`Timestamps::Realtime`].
    pub timestamps: Timestamps,
}

/// Why a host-side file-system call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// A guest path given by the host is not usable: relative, with `.`/`..`, a NUL, or too
    /// long.
    #[error("guest path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No entry of the view's capability table covers the path.
    #[error("guest path {path}: no capability of this view covers it")]
    NotCovered {
        /// The normalised path.
        path: String,
    },
    /// The view lacks an access the call needs that no preview1 right carries (`execute`).
    #[error("guest path {path}: the view lacks the {access} access")]
    NotPermitted {
        /// The path.
        path: String,
        /// The access that is missing.
        access: Access,
    },
    /// The operation failed with the errno a guest would have seen in the same place.
    #[error("guest path {path}: {errno}")]
    Guest {
        /// The path.
        path: String,
        /// What a guest would have been told.
        errno: Errno,
    },
    /// Reading the host's side (a host file, or the reader given to [`View::write_file`])
    /// failed.
    #[error("{path}: {source}")]
    Io {
        /// The host or guest path being moved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A capability table has an entry beneath another that it may not have there; see
    /// [`CapabilityTable::check_nesting`].
    #[error(
        "capability table: {inner} ({inner_access}) lies beneath {outer} ({outer_access}): {reason}"
    )]
    NestedAccess {
        /// The enclosing entry's path.
        outer: String,
        /// What the enclosing entry grants.
        outer_access: Access,
        /// The nested entry's path.
        inner: String,
        /// What the nested entry grants.
        inner_access: Access,
        /// What is wrong, and what to do about it.
        reason: &'static str,
    },
    /// [`FileSystem::seal`] was given something other than a regular file.
    #[error("guest path {path}: {reason}")]
    NotSealable {
        /// The path.
        path: String,
        /// What it names instead, and what to do.
        reason: &'static str,
    },
    /// A host file cannot be represented: a name that is not UTF-8, a device, FIFO or socket.
    #[error("host path {}: {reason}", path.display())]
    Unsupported {
        /// The host path.
        path: PathBuf,
        /// Why it cannot be loaded.
        reason: &'static str,
    },
}

/// One in-memory file system, shared by every view made from it. See the module documentation.
#[derive(Clone)]
pub struct FileSystem {
    shared: Arc<Mutex<Tree>>,
}

impl std::fmt::Debug for FileSystem {
    /// Shows the usage only: the tree holds parties' data, which must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shared.try_lock() {
            Ok(tree) => f
                .debug_struct("FileSystem")
                .field("usage", &tree.usage())
                .finish_non_exhaustive(),
            Err(_) => f.debug_struct("FileSystem").finish_non_exhaustive(),
        }
    }
}

impl Default for FileSystem {
    /// An empty file system with [`FsConfig::default`].
    fn default() -> Self {
        FileSystem::new(FsConfig::default())
    }
}

impl FileSystem {
    /// An empty file system: just the root directory `/`.
    pub fn new(config: FsConfig) -> FileSystem {
        FileSystem {
            shared: Arc::new(Mutex::new(Tree::new(config.quotas, config.timestamps))),
        }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Tree>, Errno> {
        self.shared.lock().map_err(|_| Errno::Io)
    }

    fn lock_host(&self) -> Result<MutexGuard<'_, Tree>, FsError> {
        self.lock().map_err(|errno| FsError::Guest {
            path: "/".into(),
            errno,
        })
    }

    /// The view a capability table describes: one preopened directory per entry, with the
    /// rights of its [`Access`]. This is the only way to make a view.
    ///
    /// Each preopen is its own *scope*: descriptors opened through it inherit it, and a hard
    /// link or rename between descriptors of two scopes is `EXDEV` ([`Handle::link`],
    /// [`Handle::rename`]), so a file never becomes reachable through an entry with more
    /// rights than the one it was reached through.
    ///
    /// # Errors
    /// [`FsError::NestedAccess`] if an entry lies beneath another in a way
    /// [`CapabilityTable::check_nesting`] refuses; [`FsError::Guest`] with `ENOENT` or
    /// `ENOTDIR` if an entry's path is not an existing directory, reached from `/` without
    /// following any symbolic link (a link a guest planted cannot redirect another party's
    /// view).
    pub fn view(&self, table: &CapabilityTable) -> Result<View, FsError> {
        View::new(self, table)
    }

    /// Creates the directory at absolute guest `path` and any missing parents, as the host
    /// (no capability involved). Existing directories are fine.
    ///
    /// # Errors
    /// [`FsError::InvalidPath`]; [`FsError::Guest`] with `ENOTDIR` if a component exists and
    /// is not a directory (links are not followed), or `ENOSPC` past a quota.
    pub fn create_dir_all(&self, path: &str) -> Result<(), FsError> {
        self.create_dir_all_ino(path).map(drop)
    }

    fn create_dir_all_ino(&self, path: &str) -> Result<tree::Ino, FsError> {
        let normalized = caps::normalize(path)?;
        let err = |errno| FsError::Guest {
            path: normalized.clone(),
            errno,
        };
        let mut tree = self.lock_host()?;
        let mut cur = tree::ROOT;
        for comp in caps::components(&normalized) {
            cur = match tree.child(cur, comp).map_err(err)? {
                Some(ino)
                    if tree.filetype(ino).map_err(err)? == crate::types::Filetype::Directory =>
                {
                    ino
                }
                Some(_) => return Err(err(Errno::Notdir)),
                None => tree.mkdir_in(cur, comp).map_err(err)?,
            };
        }
        Ok(cur)
    }

    /// Seals the regular file at absolute guest `path`, as the host: from now on, for the rest
    /// of the file's life, nothing changes it, through any view or descriptor, like Linux's
    /// `chattr +i`. A defence in depth for files no guest should change (a computation's
    /// inputs), on top of the rights of each view.
    ///
    /// A sealed file answers `EPERM` to: `path_open` asking for `FD_WRITE` or with `O_TRUNC`;
    /// `fd_write` and `fd_pwrite` (through any descriptor, one opened before the seal too);
    /// `fd_filestat_set_size`, `fd_allocate`, `fd_filestat_set_times`,
    /// `path_filestat_set_times`; `path_unlink_file`; `path_rename` of it, or of anything over
    /// it; `path_link` to it; and [`View::write_file`] at its path. Reading, `stat` and
    /// seeking work as before. Sealing a sealed file again is fine.
    ///
    /// `path` is resolved from `/` without following any symbolic link (a final one included),
    /// so a link a guest planted cannot make the host seal something else.
    ///
    /// # Errors
    /// [`FsError::InvalidPath`]; [`FsError::Guest`] with `ENOENT` if nothing is there, or
    /// `ENOTDIR` if a component on the way is not a directory (a link included);
    /// [`FsError::NotSealable`] for a directory or a symbolic link.
    pub fn seal(&self, path: &str) -> Result<(), FsError> {
        let normalized = caps::normalize(path)?;
        let err = |errno| FsError::Guest {
            path: normalized.clone(),
            errno,
        };
        let mut tree = self.lock_host()?;
        let ino = tree.lookup_absolute(&normalized).map_err(err)?;
        let reason = match tree.filetype(ino).map_err(err)? {
            crate::types::Filetype::RegularFile => return tree.seal(ino).map_err(err),
            crate::types::Filetype::Directory => {
                "a directory cannot be sealed; seal the regular files in it one by one"
            }
            crate::types::Filetype::SymbolicLink => {
                "a symbolic link is not followed when sealing; seal the file it points to by \
                 its own path"
            }
            _ => "only a regular file can be sealed",
        };
        Err(FsError::NotSealable {
            path: normalized,
            reason,
        })
    }

    /// Moves the regular file at absolute `from_path` in file system `from` to absolute `path`
    /// in this one, as the host, without copying its bytes: afterwards it is gone from `from`
    /// (and from its quota) and is a new file of this file system (charged to this quota). For
    /// a file written where no view of this file system can see it, then accepted whole.
    ///
    /// Both paths are resolved from `/` without following any symbolic link. The file must
    /// have one name and no open descriptor in `from` (so nothing there can still see it) and
    /// not be sealed. Everything is checked before anything moves: on an error, both file
    /// systems are as they were.
    ///
    /// # Errors
    /// [`FsError::InvalidPath`]; [`FsError::Guest`] with `ENOENT` (no file at `from_path`, or no
    /// directory for `path`), `ENOTDIR` (a component is not a directory, a link included),
    /// `EINVAL` (not a regular file, or `from` is this file system), `EBUSY` (another name or
    /// an open descriptor), `EEXIST` (something at `path`), `EFBIG`/`ENOSPC` (this file
    /// system's quotas).
    pub fn move_file_from(
        &self,
        path: &str,
        from: &FileSystem,
        from_path: &str,
    ) -> Result<u64, FsError> {
        let to = caps::normalize(path)?;
        let source = caps::normalize(from_path)?;
        let err = |at: &str| {
            let at = at.to_owned();
            move |errno| FsError::Guest { path: at, errno }
        };
        if Arc::ptr_eq(&self.shared, &from.shared) {
            return Err(err(&to)(Errno::Inval));
        }
        // Two locks: always taken in address order, so that two moves in opposite directions
        // cannot deadlock.
        let (mut dst, mut src) = if Arc::as_ptr(&self.shared) < Arc::as_ptr(&from.shared) {
            let dst = self.lock_host()?;
            (dst, from.lock_host()?)
        } else {
            let src = from.lock_host()?;
            (self.lock_host()?, src)
        };
        let split = |p: &str| match p.rfind('/') {
            Some(0) => ("/".to_owned(), p[1..].to_owned()),
            Some(i) => (p[..i].to_owned(), p[i + 1..].to_owned()),
            None => ("/".to_owned(), p.to_owned()),
        };
        let (src_dir, src_name) = split(&source);
        let (dst_dir, dst_name) = split(&to);
        let src_dir = src.lookup_absolute(&src_dir).map_err(err(&source))?;
        let dst_dir = dst.lookup_absolute(&dst_dir).map_err(err(&to))?;
        let ino = src
            .child(src_dir, &src_name)
            .map_err(err(&source))?
            .ok_or_else(|| err(&source)(Errno::Noent))?;
        let size = src.size(ino).map_err(err(&source))?;
        dst.check_new_file(dst_dir, &dst_name, size)
            .map_err(err(&to))?;
        let data = src.take_file(src_dir, &src_name).map_err(err(&source))?;
        // Checked above under the same locks: this cannot fail.
        dst.put_file(dst_dir, &dst_name, data).map_err(err(&to))?;
        Ok(size)
    }

    /// What the quotas count right now.
    ///
    /// # Errors
    /// `EIO` if the lock is poisoned.
    pub fn usage(&self) -> Result<Usage, Errno> {
        Ok(self.lock()?.usage())
    }

    /// The quotas this file system enforces.
    ///
    /// # Errors
    /// `EIO` if the lock is poisoned.
    pub fn quotas(&self) -> Result<Quotas, Errno> {
        Ok(self.lock()?.quotas)
    }

    /// Whether `self` and `other` are handles to the same file system.
    pub fn same_as(&self, other: &FileSystem) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
