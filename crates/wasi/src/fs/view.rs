//! Views and descriptors: what one principal or program can reach, and the rights checks in
//! front of every operation.
//!
//! A [`View`] is built from a [`CapabilityTable`] and nothing else. It hands out one [`Handle`]
//! per table entry (the preopens), and every other handle is opened through one of those. A
//! handle carries its rights; each method checks them first, then asks the tree. A handle
//! opened through another gets at most the opener's inheriting rights.
//!
//! Every handle also carries its *scope*: the preopen it descends from (one number per preopen
//! per view, never reused). Rights live on descriptors, not on files, so a hard link or a
//! rename between two scopes could make a file reachable through an entry that grants more
//! than the one it came from; [`Handle::link`] and [`Handle::rename`] answer `EXDEV` instead,
//! as POSIX does across mounts, and programs that move files (`mv`, a copy fallback) copy.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::caps::{Access, CapabilityTable, DIRECTORY_RIGHTS, FILE_RIGHTS, components, normalize};
use super::tree::{Dirent, Ino, OpenFlags};
use super::{FileSystem, FsError};
use crate::types::{Errno, Filestat, Filetype, Rights, Whence, fdflags, lookupflags, oflags};

/// How many bytes the host-side API moves per lock: 64 KiB, one chunk of file data. Bounds how
/// long a streaming upload or download holds the file system's lock at a time, and the buffer
/// it needs.
pub const HOST_IO_CHUNK_BYTES: usize = 64 * 1024;

/// The open-descriptor count of one view, shared with its handles.
#[derive(Debug)]
struct DescriptorCount {
    open: AtomicU32,
    max: u32,
}

/// One counted descriptor: taken before a handle is made, given back when it drops.
#[derive(Debug)]
struct DescriptorSlot(Arc<DescriptorCount>);

impl DescriptorSlot {
    fn take(count: &Arc<DescriptorCount>) -> Result<DescriptorSlot, Errno> {
        count
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < count.max).then_some(n + 1)
            })
            .map_err(|_| Errno::Mfile)?;
        Ok(DescriptorSlot(Arc::clone(count)))
    }
}

impl Drop for DescriptorSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where scope numbers come from: one per preopen of every view this process makes.
static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, Debug)]
struct Preopen {
    guest_path: String,
    ino: Ino,
    access: Access,
    /// The scope every descriptor of this preopen carries (see the module documentation).
    scope: u64,
}

/// One party's window onto a [`FileSystem`]: the directories its capability table names, with
/// the rights that table grants. Views of the same file system see the same files.
#[derive(Debug)]
pub struct View {
    fs: FileSystem,
    preopens: Vec<Preopen>,
    descriptors: Arc<DescriptorCount>,
}

impl View {
    /// Builds the view `table` describes. See [`FileSystem::view`].
    pub(crate) fn new(fs: &FileSystem, table: &CapabilityTable) -> Result<View, FsError> {
        table.check_nesting()?;
        let tree = fs.lock_host()?;
        let mut preopens = Vec::with_capacity(table.len());
        for (path, access) in table.iter() {
            let not_found = |errno| FsError::Guest {
                path: path.to_owned(),
                errno,
            };
            let ino = tree.lookup_absolute(path).map_err(not_found)?;
            if tree.filetype(ino).map_err(not_found)? != Filetype::Directory {
                return Err(not_found(Errno::Notdir));
            }
            preopens.push(Preopen {
                guest_path: path.to_owned(),
                ino,
                access,
                scope: NEXT_SCOPE.fetch_add(1, Ordering::Relaxed),
            });
        }
        let max = tree.quotas.max_open_descriptors;
        drop(tree);
        Ok(View {
            fs: fs.clone(),
            preopens,
            descriptors: Arc::new(DescriptorCount {
                open: AtomicU32::new(0),
                max,
            }),
        })
    }

    /// The file system this view looks at.
    pub fn file_system(&self) -> &FileSystem {
        &self.fs
    }

    /// The preopened directories: guest path and access, sorted by path.
    pub fn preopens(&self) -> impl Iterator<Item = (&str, Access)> {
        self.preopens
            .iter()
            .map(|p| (p.guest_path.as_str(), p.access))
    }

    /// Descriptors of this view open right now (preopens included).
    pub fn open_descriptors(&self) -> u32 {
        self.descriptors.open.load(Ordering::Acquire)
    }

    /// Opens one descriptor per preopened directory, in [`View::preopens`] order: what a guest
    /// finds at descriptors 3, 4, ... Each carries the rights of its entry's access (see
    /// [`super::caps`]).
    ///
    /// # Errors
    /// `EMFILE` past the descriptor quota; `EIO` if the file system's lock is poisoned.
    pub fn open_preopens(&self) -> Result<Vec<Handle>, Errno> {
        self.preopens
            .iter()
            .map(|p| self.preopen_handle(p))
            .collect()
    }

    fn preopen_handle(&self, preopen: &Preopen) -> Result<Handle, Errno> {
        let slot = DescriptorSlot::take(&self.descriptors)?;
        let mut tree = self.fs.lock()?;
        tree.acquire(preopen.ino)?;
        drop(tree);
        Ok(Handle {
            fs: self.fs.clone(),
            ino: preopen.ino,
            filetype: Filetype::Directory,
            position: 0,
            rights_base: preopen.access.directory_rights(),
            rights_inheriting: preopen.access.inheriting_rights(),
            fdflags: 0,
            preopen: Some(preopen.guest_path.clone()),
            scope: preopen.scope,
            descriptors: Arc::clone(&self.descriptors),
            _slot: slot,
        })
    }

    /// The preopen that covers absolute `path` (the one with the longest matching prefix, as
    /// wasi-libc chooses), and the rest of the path relative to it.
    fn locate(&self, path: &str) -> Result<(&Preopen, String), FsError> {
        let normalized = normalize(path)?;
        let target: Vec<&str> = components(&normalized).collect();
        let mut best: Option<(&Preopen, usize)> = None;
        for preopen in &self.preopens {
            let prefix: Vec<&str> = components(&preopen.guest_path).collect();
            let covers = prefix.len() <= target.len() && prefix[..] == target[..prefix.len()];
            if covers && best.is_none_or(|(_, len)| prefix.len() > len) {
                best = Some((preopen, prefix.len()));
            }
        }
        let (preopen, len) = best.ok_or_else(|| FsError::NotCovered {
            path: normalized.clone(),
        })?;
        let rest = if len == target.len() {
            ".".to_owned()
        } else {
            target[len..].join("/")
        };
        Ok((preopen, rest))
    }

    fn guest_err(path: &str) -> impl Fn(Errno) -> FsError + '_ {
        move |errno| FsError::Guest {
            path: path.to_owned(),
            errno,
        }
    }

    /// Writes a file at absolute guest `path` from `reader`, streamed [`HOST_IO_CHUNK_BYTES`]
    /// at a time: creates it, or truncates it if it exists, exactly as a guest's
    /// `path_open(O_CREAT|O_TRUNC)` with `FD_WRITE` through the covering preopen would. A
    /// symbolic link at `path` is not followed. Returns the bytes written.
    ///
    /// # Errors
    /// [`FsError::NotCovered`] if no preopen covers `path`; [`FsError::Guest`] with
    /// `ENOTCAPABLE` when the view lacks `create` (for a new file) or `write`, `EPERM` for a
    /// sealed file ([`FileSystem::seal`]), `ENOENT` for a missing parent, `ENOSPC`/`EFBIG`
    /// when a quota stops the write (the bytes before that point stay); [`FsError::Io`] when
    /// `reader` fails.
    pub fn write_file(&self, path: &str, mut reader: impl Read) -> Result<u64, FsError> {
        let (preopen, rest) = self.locate(path)?;
        let err = Self::guest_err(path);
        let dir = self.preopen_handle(preopen).map_err(&err)?;
        let mut file = dir
            .open_at(
                0,
                &rest,
                oflags::CREAT | oflags::TRUNC,
                Rights::FD_WRITE,
                Rights::NONE,
                0,
            )
            .map_err(&err)?;
        let mut buf = vec![0u8; HOST_IO_CHUNK_BYTES];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(FsError::Io {
                        path: path.to_owned(),
                        source,
                    });
                }
            };
            file.write(&buf[..n]).map_err(&err)?;
            total += n as u64;
        }
    }

    /// Opens the file at absolute guest `path` for reading, as a guest's `path_open` with
    /// `FD_READ` through the covering preopen would (links followed). The reader streams the
    /// file's bytes.
    ///
    /// # Errors
    /// [`FsError::NotCovered`]; [`FsError::Guest`] with `ENOTCAPABLE` without `read`,
    /// `ENOENT`, `EISDIR` for a directory.
    pub fn read_file(&self, path: &str) -> Result<FileReader, FsError> {
        let (preopen, rest) = self.locate(path)?;
        let err = Self::guest_err(path);
        let dir = self.preopen_handle(preopen).map_err(&err)?;
        let file = dir
            .open_at(
                lookupflags::SYMLINK_FOLLOW,
                &rest,
                0,
                Rights::FD_READ,
                Rights::NONE,
                0,
            )
            .map_err(&err)?;
        if file.filetype() != Filetype::RegularFile {
            return Err(err(Errno::Isdir));
        }
        Ok(FileReader {
            handle: file,
            path: path.to_owned(),
        })
    }

    /// [`View::read_file`] for a program the runtime is about to load: also requires the
    /// `execute` access on the covering preopen.
    ///
    /// # Errors
    /// [`FsError::NotPermitted`] without `execute`; otherwise as [`View::read_file`].
    pub fn read_executable(&self, path: &str) -> Result<FileReader, FsError> {
        let (preopen, _) = self.locate(path)?;
        if !preopen.access.contains(Access::EXECUTE) {
            return Err(FsError::NotPermitted {
                path: path.to_owned(),
                access: Access::EXECUTE,
            });
        }
        self.read_file(path)
    }

    /// Creates the directory at absolute guest `path`, as a guest's `path_create_directory`.
    ///
    /// # Errors
    /// [`FsError::NotCovered`]; [`FsError::Guest`] with `ENOTCAPABLE` without `create`,
    /// `EEXIST`, `ENOENT` for a missing parent.
    pub fn create_dir(&self, path: &str) -> Result<(), FsError> {
        let (preopen, rest) = self.locate(path)?;
        let err = Self::guest_err(path);
        let dir = self.preopen_handle(preopen).map_err(&err)?;
        dir.create_directory(&rest).map_err(&err)
    }

    /// The attributes of what absolute guest `path` names (links followed), as a guest's
    /// `path_filestat_get`.
    ///
    /// # Errors
    /// [`FsError::NotCovered`]; [`FsError::Guest`] with `ENOTCAPABLE` without `read` or
    /// `list`, `ENOENT`.
    pub fn metadata(&self, path: &str) -> Result<Filestat, FsError> {
        let (preopen, rest) = self.locate(path)?;
        let err = Self::guest_err(path);
        let dir = self.preopen_handle(preopen).map_err(&err)?;
        dir.filestat_at(lookupflags::SYMLINK_FOLLOW, &rest)
            .map_err(&err)
    }

    /// The entries of the directory at absolute guest `path` (without `.` and `..`), in
    /// `readdir` order, as a guest listing it would see them.
    ///
    /// # Errors
    /// [`FsError::NotCovered`]; [`FsError::Guest`] with `ENOTCAPABLE` without `list`,
    /// `ENOTDIR`, `ENOENT`.
    pub fn list_dir(&self, path: &str) -> Result<Vec<(String, Filetype)>, FsError> {
        let (preopen, rest) = self.locate(path)?;
        let err = Self::guest_err(path);
        let dir = self.preopen_handle(preopen).map_err(&err)?;
        let listed = dir
            .open_at(
                lookupflags::SYMLINK_FOLLOW,
                &rest,
                oflags::DIRECTORY,
                Rights::FD_READDIR,
                Rights::NONE,
                0,
            )
            .map_err(&err)?;
        let mut out = Vec::new();
        let mut cookie = 0;
        loop {
            let batch = listed.readdir(cookie, HOST_IO_CHUNK_BYTES).map_err(&err)?;
            let Some(last) = batch.last() else {
                return Ok(out);
            };
            cookie = last.next;
            out.extend(
                batch
                    .into_iter()
                    .filter(|d| d.name != "." && d.name != "..")
                    .map(|d| (d.name, d.filetype)),
            );
        }
    }
}

/// Streams a file's bytes out of the file system; see [`View::read_file`]. Holds the file
/// open (so it stays readable even if a guest unlinks it meanwhile).
#[derive(Debug)]
pub struct FileReader {
    handle: Handle,
    path: String,
}

impl FileReader {
    /// The file's size now.
    ///
    /// # Errors
    /// `EIO` if the file system's lock is poisoned.
    pub fn len(&self) -> Result<u64, Errno> {
        let tree = self.handle.fs.lock()?;
        tree.size(self.handle.ino)
    }

    /// Whether the file is empty now.
    ///
    /// # Errors
    /// As [`FileReader::len`].
    pub fn is_empty(&self) -> Result<bool, Errno> {
        Ok(self.len()? == 0)
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(HOST_IO_CHUNK_BYTES);
        self.handle
            .read(&mut buf[..len])
            .map_err(|errno| std::io::Error::other(format!("{}: {errno}", self.path)))
    }
}

/// An open file or directory with its rights, flags and (for a file) position: what a WASI
/// descriptor refers to. Made only by a [`View`] (its preopens) or by [`Handle::open_at`].
/// Dropping it closes it.
#[derive(Debug)]
pub struct Handle {
    fs: FileSystem,
    ino: Ino,
    filetype: Filetype,
    position: u64,
    rights_base: Rights,
    rights_inheriting: Rights,
    fdflags: u16,
    preopen: Option<String>,
    /// The preopen this descriptor descends from (see the module documentation).
    scope: u64,
    descriptors: Arc<DescriptorCount>,
    _slot: DescriptorSlot,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Even a poisoned lock must have its open count corrected, or the inode would leak.
        let mut tree = self
            .fs
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tree.release(self.ino);
    }
}

fn flag(bits: u16, which: u16) -> bool {
    bits & which != 0
}

impl Handle {
    /// `RegularFile` or `Directory`.
    pub fn filetype(&self) -> Filetype {
        self.filetype
    }

    /// The rights this descriptor holds.
    pub fn rights_base(&self) -> Rights {
        self.rights_base
    }

    /// The most rights a descriptor opened through this one can hold.
    pub fn rights_inheriting(&self) -> Rights {
        self.rights_inheriting
    }

    /// The descriptor flags (`fdflags`): append, nonblock, and the sync flags.
    pub fn fdflags(&self) -> u16 {
        self.fdflags
    }

    /// The guest path of a preopened directory; `None` for anything opened later.
    pub fn preopen_name(&self) -> Option<&str> {
        self.preopen.as_deref()
    }

    /// The inode number, as `filestat` reports it.
    pub fn inode(&self) -> u64 {
        self.ino
    }

    /// Whether this descriptor holds every right in `rights`.
    ///
    /// # Errors
    /// `ENOTCAPABLE` if it lacks one.
    pub fn check_rights(&self, rights: Rights) -> Result<(), Errno> {
        self.require(rights)
    }

    fn require(&self, rights: Rights) -> Result<(), Errno> {
        if self.rights_base.contains(rights) {
            Ok(())
        } else {
            Err(Errno::Notcapable)
        }
    }

    fn require_file(&self) -> Result<(), Errno> {
        match self.filetype {
            Filetype::Directory => Err(Errno::Isdir),
            _ => Ok(()),
        }
    }

    /// A path operation needs a directory (`ENOTDIR`) holding `rights` (`ENOTCAPABLE`).
    fn require_dir(&self, rights: Rights) -> Result<(), Errno> {
        if self.filetype != Filetype::Directory {
            return Err(Errno::Notdir);
        }
        self.require(rights)
    }

    /// `EXDEV` unless `other` is of the same file system and descends from the same preopen
    /// of the same view (see the module documentation).
    fn same_scope(&self, other: &Handle) -> Result<(), Errno> {
        if Arc::ptr_eq(&self.fs.shared, &other.fs.shared) && self.scope == other.scope {
            Ok(())
        } else {
            Err(Errno::Xdev)
        }
    }

    // ---- the descriptor ---------------------------------------------------------------------

    /// `fd_fdstat_set_rights`: keeps only the given rights.
    ///
    /// # Errors
    /// `ENOTCAPABLE` if either set holds a right this descriptor does not: rights only shrink.
    pub fn set_rights(&mut self, base: Rights, inheriting: Rights) -> Result<(), Errno> {
        if !self.rights_base.contains(base) || !self.rights_inheriting.contains(inheriting) {
            return Err(Errno::Notcapable);
        }
        self.rights_base = base;
        self.rights_inheriting = inheriting;
        Ok(())
    }

    /// `fd_fdstat_set_flags`. The sync flags are accepted and change nothing: every write is
    /// complete when the call returns. `nonblock` changes nothing either: a file in memory never
    /// blocks.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_FDSTAT_SET_FLAGS`; `EINVAL` for an unknown flag.
    pub fn set_fdflags(&mut self, flags: u16) -> Result<(), Errno> {
        self.require(Rights::FD_FDSTAT_SET_FLAGS)?;
        if flags & !fdflags::ALL != 0 {
            return Err(Errno::Inval);
        }
        self.fdflags = flags;
        Ok(())
    }

    /// `fd_filestat_get`.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_FILESTAT_GET`.
    pub fn filestat(&self) -> Result<Filestat, Errno> {
        self.require(Rights::FD_FILESTAT_GET)?;
        self.fs.lock()?.stat(self.ino)
    }

    /// `fd_filestat_set_times`: `fst_flags` chooses which stamps change.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_FILESTAT_SET_TIMES`; `EINVAL` for a stamp given both as a
    /// time and as "now", or an unknown flag; `EPERM` for a sealed file.
    pub fn set_times(&self, atim: u64, mtim: u64, fst_flags: u16) -> Result<(), Errno> {
        self.require(Rights::FD_FILESTAT_SET_TIMES)?;
        self.fs.lock()?.set_times(self.ino, atim, mtim, fst_flags)
    }

    /// `fd_sync`: nothing to flush in memory.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_SYNC`.
    pub fn sync(&self) -> Result<(), Errno> {
        self.require(Rights::FD_SYNC)
    }

    /// `fd_datasync`: nothing to flush in memory.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_DATASYNC`.
    pub fn datasync(&self) -> Result<(), Errno> {
        self.require(Rights::FD_DATASYNC)
    }

    // ---- file contents ------------------------------------------------------------------------

    /// `fd_read`: reads at the position and moves it.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_READ`; `EISDIR` for a directory.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.require(Rights::FD_READ)?;
        self.require_file()?;
        let n = self.fs.lock()?.read_at(self.ino, self.position, buf)?;
        self.position += n as u64;
        Ok(n)
    }

    /// `fd_pread`: reads at `offset`; the position stays.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_READ` and `FD_SEEK`; `EISDIR` for a directory.
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        self.require(Rights::FD_READ | Rights::FD_SEEK)?;
        self.require_file()?;
        self.fs.lock()?.read_at(self.ino, offset, buf)
    }

    /// `fd_write`: writes at the position (at the end in append mode) and moves it. All of
    /// `data` is written or nothing.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_WRITE`; `EISDIR`; `EPERM` for a sealed file (even through a
    /// descriptor opened before the seal); `EFBIG` past the file-size quota; `ENOSPC` past the
    /// byte quota.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Errno> {
        self.require(Rights::FD_WRITE)?;
        self.require_file()?;
        let mut tree = self.fs.lock()?;
        let offset = if flag(self.fdflags, fdflags::APPEND) {
            tree.size(self.ino)?
        } else {
            self.position
        };
        let n = tree.write_at(self.ino, offset, data)?;
        self.position = offset + n as u64;
        Ok(n)
    }

    /// `fd_pwrite`: writes at `offset` (POSIX: even in append mode); the position stays.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_WRITE` and `FD_SEEK`; otherwise as [`Handle::write`] (`EPERM`
    /// for a sealed file included).
    pub fn pwrite(&self, data: &[u8], offset: u64) -> Result<usize, Errno> {
        self.require(Rights::FD_WRITE | Rights::FD_SEEK)?;
        self.require_file()?;
        self.fs.lock()?.write_at(self.ino, offset, data)
    }

    /// `fd_seek`: moves the position and returns it. Seeking past the end is allowed.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_SEEK` (a zero move from the current position, which is how
    /// `tell` is spelled, also accepts `FD_TELL`); `EISDIR`; `EINVAL` for a position before 0
    /// or past `i64::MAX`.
    pub fn seek(&mut self, offset: i64, whence: Whence) -> Result<u64, Errno> {
        if whence == Whence::Cur && offset == 0 {
            if !self.rights_base.contains(Rights::FD_TELL) {
                self.require(Rights::FD_SEEK)?;
            }
        } else {
            self.require(Rights::FD_SEEK)?;
        }
        self.require_file()?;
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => self.position,
            Whence::End => self.fs.lock()?.size(self.ino)?,
        };
        let base = i64::try_from(base).map_err(|_| Errno::Inval)?;
        let new = base.checked_add(offset).ok_or(Errno::Inval)?;
        self.position = u64::try_from(new).map_err(|_| Errno::Inval)?;
        Ok(self.position)
    }

    /// `fd_tell`: the position.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_TELL`; `EISDIR`.
    pub fn tell(&self) -> Result<u64, Errno> {
        self.require(Rights::FD_TELL)?;
        self.require_file()?;
        Ok(self.position)
    }

    /// `fd_advise`: advice is accepted and ignored (everything is in memory already).
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_ADVISE`; `EISDIR`; `EINVAL` for an unknown advice or a range
    /// that overflows.
    pub fn advise(&self, offset: u64, len: u64, advice: u8) -> Result<(), Errno> {
        self.require(Rights::FD_ADVISE)?;
        self.require_file()?;
        if advice > 5 || offset.checked_add(len).is_none() {
            return Err(Errno::Inval);
        }
        Ok(())
    }

    /// `fd_allocate`: grows the file to at least `offset + len`, reserving the bytes in the
    /// quota.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_ALLOCATE`; `EISDIR`; `EINVAL` for `len == 0`; `EPERM` for a
    /// sealed file; `EFBIG`; `ENOSPC`.
    pub fn allocate(&self, offset: u64, len: u64) -> Result<(), Errno> {
        self.require(Rights::FD_ALLOCATE)?;
        self.require_file()?;
        self.fs.lock()?.allocate(self.ino, offset, len)
    }

    /// `fd_filestat_set_size`.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_FILESTAT_SET_SIZE`; `EISDIR`; `EPERM` for a sealed file;
    /// `EFBIG`; `ENOSPC`.
    pub fn set_size(&self, size: u64) -> Result<(), Errno> {
        self.require(Rights::FD_FILESTAT_SET_SIZE)?;
        self.require_file()?;
        self.fs.lock()?.set_size(self.ino, size)
    }

    /// For `poll_oneoff`: the bytes a read would return now (files are always ready).
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `POLL_FD_READWRITE`.
    pub fn readable_bytes(&self) -> Result<u64, Errno> {
        self.require(Rights::POLL_FD_READWRITE)?;
        if self.filetype == Filetype::Directory {
            return Ok(0);
        }
        let size = self.fs.lock()?.size(self.ino)?;
        Ok(size.saturating_sub(self.position))
    }

    /// For `poll_oneoff`: whether the descriptor may be polled at all.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `POLL_FD_READWRITE`.
    pub fn check_pollable(&self) -> Result<(), Errno> {
        self.require(Rights::POLL_FD_READWRITE)
    }

    // ---- directories ----------------------------------------------------------------------

    /// `fd_readdir`: entries from `cookie` on, until their serialized size reaches `budget`
    /// bytes (the guest's buffer) or the listing ends. `.` and `..` come first; the rest in
    /// creation order, each with the cookie that resumes after it.
    ///
    /// # Errors
    /// `ENOTCAPABLE` without `FD_READDIR`; `ENOTDIR` for a file.
    pub fn readdir(&self, cookie: u64, budget: usize) -> Result<Vec<Dirent>, Errno> {
        self.require(Rights::FD_READDIR)?;
        if self.filetype != Filetype::Directory {
            return Err(Errno::Notdir);
        }
        self.fs.lock()?.readdir(self.ino, cookie, budget)
    }

    /// `path_open`: opens `path` beneath this directory.
    ///
    /// Needs `PATH_OPEN`, plus `PATH_CREATE_FILE` for `O_CREAT` and `PATH_FILESTAT_SET_SIZE`
    /// for `O_TRUNC`. The new descriptor's rights are the requested ones, cut down to this
    /// descriptor's inheriting rights and to what its type can hold ([`DIRECTORY_RIGHTS`],
    /// [`FILE_RIGHTS`]). Asking for `FD_READ` or `FD_WRITE` on a regular file when the
    /// inheriting rights lack it is refused (`ENOTCAPABLE`) rather than silently dropped, so
    /// a program learns at `open` that it cannot read or write; asking for `FD_WRITE` on a
    /// directory is `EISDIR`.
    ///
    /// # Errors
    /// `ENOTDIR` when this is not a directory; `ENOTCAPABLE` for a missing right; `EINVAL`
    /// for unknown flags or `O_CREAT|O_DIRECTORY`; `EMFILE` past the descriptor quota; `EPERM`
    /// for a sealed file opened asking for `FD_WRITE` or with `O_TRUNC`; and
    /// what POSIX `openat` answers: `ENOENT`, `EEXIST`, `ENOTDIR`, `EISDIR`, `ELOOP` (a link
    /// not followed, or too many), `ENOSPC`.
    pub fn open_at(
        &self,
        lookup: u32,
        path: &str,
        open_flags: u16,
        base: Rights,
        inheriting: Rights,
        flags: u16,
    ) -> Result<Handle, Errno> {
        if self.filetype != Filetype::Directory {
            return Err(Errno::Notdir);
        }
        if lookup & !lookupflags::SYMLINK_FOLLOW != 0
            || open_flags & !oflags::ALL != 0
            || flags & !fdflags::ALL != 0
        {
            return Err(Errno::Inval);
        }
        let mut required = Rights::PATH_OPEN;
        if flag(open_flags, oflags::CREAT) {
            required = required | Rights::PATH_CREATE_FILE;
        }
        if flag(open_flags, oflags::TRUNC) {
            required = required | Rights::PATH_FILESTAT_SET_SIZE;
        }
        self.require(required)?;
        let slot = DescriptorSlot::take(&self.descriptors)?;
        let request = OpenFlags {
            follow: lookup & lookupflags::SYMLINK_FOLLOW != 0,
            write: base.contains(Rights::FD_WRITE),
            create: flag(open_flags, oflags::CREAT),
            exclusive: flag(open_flags, oflags::EXCL),
            truncate: flag(open_flags, oflags::TRUNC),
            directory: flag(open_flags, oflags::DIRECTORY),
        };
        let inheritable = self.rights_inheriting;
        let admit = |filetype: Filetype| match filetype {
            Filetype::Directory if base.contains(Rights::FD_WRITE) => Err(Errno::Isdir),
            Filetype::RegularFile => {
                let data = base.intersect(Rights::FD_READ | Rights::FD_WRITE);
                if inheritable.contains(data) {
                    Ok(())
                } else {
                    Err(Errno::Notcapable)
                }
            }
            _ => Ok(()),
        };
        let mut tree = self.fs.lock()?;
        let (ino, filetype) = tree.open(self.ino, path, request, admit)?;
        tree.acquire(ino)?;
        drop(tree);
        let mask = if filetype == Filetype::Directory {
            DIRECTORY_RIGHTS
        } else {
            FILE_RIGHTS
        };
        Ok(Handle {
            fs: self.fs.clone(),
            ino,
            filetype,
            position: 0,
            rights_base: base.intersect(inheritable).intersect(mask),
            rights_inheriting: inheriting.intersect(inheritable),
            fdflags: flags,
            preopen: None,
            scope: self.scope,
            descriptors: Arc::clone(&self.descriptors),
            _slot: slot,
        })
    }

    /// `path_create_directory`.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_CREATE_DIRECTORY`; `EEXIST`, `ENOENT`;
    /// `ENOSPC` past the inode, byte or depth quota.
    pub fn create_directory(&self, path: &str) -> Result<(), Errno> {
        self.require_dir(Rights::PATH_CREATE_DIRECTORY)?;
        self.fs.lock()?.mkdir(self.ino, path)
    }

    /// `path_filestat_get`.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_FILESTAT_GET`; resolution errors.
    pub fn filestat_at(&self, lookup: u32, path: &str) -> Result<Filestat, Errno> {
        self.require_dir(Rights::PATH_FILESTAT_GET)?;
        let follow = follow(lookup)?;
        let tree = self.fs.lock()?;
        let ino = tree.lookup(self.ino, path, follow)?;
        tree.stat(ino)
    }

    /// `path_filestat_set_times`.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_FILESTAT_SET_TIMES`; `EINVAL` and `EPERM` as
    /// [`Handle::set_times`]; resolution errors.
    pub fn set_times_at(
        &self,
        lookup: u32,
        path: &str,
        atim: u64,
        mtim: u64,
        fst_flags: u16,
    ) -> Result<(), Errno> {
        self.require_dir(Rights::PATH_FILESTAT_SET_TIMES)?;
        let follow = follow(lookup)?;
        let mut tree = self.fs.lock()?;
        let ino = tree.lookup(self.ino, path, follow)?;
        tree.set_times(ino, atim, mtim, fst_flags)
    }

    /// `path_link`: a hard link `new_path` beneath `new_dir` to `old_path` beneath this one.
    /// Both descriptors must descend from the same preopen: a link from one preopen into
    /// another would let the file be changed with the other's rights.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_LINK_SOURCE` here or `PATH_LINK_TARGET` on
    /// `new_dir`; `EXDEV` when `new_dir` descends from another preopen (or another view or
    /// file system), and nothing changes; `EPERM` for a directory or a sealed file; `EEXIST`;
    /// `ENOENT`.
    pub fn link(
        &self,
        lookup: u32,
        old_path: &str,
        new_dir: &Handle,
        new_path: &str,
    ) -> Result<(), Errno> {
        self.require_dir(Rights::PATH_LINK_SOURCE)?;
        new_dir.require_dir(Rights::PATH_LINK_TARGET)?;
        self.same_scope(new_dir)?;
        let follow = follow(lookup)?;
        self.fs
            .lock()?
            .link(self.ino, follow, old_path, new_dir.ino, new_path)
    }

    /// `path_readlink`: the target of the link at `path`.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_READLINK`; `EINVAL` when `path` is not a link.
    pub fn readlink(&self, path: &str) -> Result<String, Errno> {
        self.require_dir(Rights::PATH_READLINK)?;
        self.fs.lock()?.readlink(self.ino, path)
    }

    /// `path_remove_directory`.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_REMOVE_DIRECTORY`; `ENOTEMPTY`; `ENOENT`;
    /// `EINVAL` for a path ending in `.` or `..`.
    pub fn remove_directory(&self, path: &str) -> Result<(), Errno> {
        self.require_dir(Rights::PATH_REMOVE_DIRECTORY)?;
        self.fs.lock()?.rmdir(self.ino, path)
    }

    /// `path_rename`: moves `old_path` beneath this directory to `new_path` beneath `new_dir`.
    /// Both descriptors must descend from the same preopen, as for [`Handle::link`].
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_RENAME_SOURCE` here or `PATH_RENAME_TARGET` on
    /// `new_dir`; `EXDEV` when `new_dir` descends from another preopen (or another view or
    /// file system), and nothing changes; `EPERM` when either name is a sealed file; and as
    /// POSIX `rename`: `ENOENT`, `EISDIR`, `ENOTDIR`, `ENOTEMPTY`,
    /// `EINVAL` (a directory into itself); `ENOSPC` past the depth or byte quota.
    pub fn rename(&self, old_path: &str, new_dir: &Handle, new_path: &str) -> Result<(), Errno> {
        self.require_dir(Rights::PATH_RENAME_SOURCE)?;
        new_dir.require_dir(Rights::PATH_RENAME_TARGET)?;
        self.same_scope(new_dir)?;
        self.fs
            .lock()?
            .rename(self.ino, old_path, new_dir.ino, new_path)
    }

    /// `path_symlink`: a link at `path` pointing at `target`.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_SYMLINK`, or for an absolute target; `EEXIST`;
    /// `ENOENT`; `ENOSPC`; `ENAMETOOLONG`.
    pub fn symlink(&self, target: &str, path: &str) -> Result<(), Errno> {
        self.require_dir(Rights::PATH_SYMLINK)?;
        self.fs.lock()?.symlink(target, self.ino, path)
    }

    /// `path_unlink_file`.
    ///
    /// # Errors
    /// `ENOTDIR`; `ENOTCAPABLE` without `PATH_UNLINK_FILE`; `EISDIR` for a directory;
    /// `EPERM` for a sealed file; `ENOENT`.
    pub fn unlink_file(&self, path: &str) -> Result<(), Errno> {
        self.require_dir(Rights::PATH_UNLINK_FILE)?;
        self.fs.lock()?.unlink(self.ino, path)
    }
}

fn follow(lookup: u32) -> Result<bool, Errno> {
    if lookup & !lookupflags::SYMLINK_FOLLOW != 0 {
        return Err(Errno::Inval);
    }
    Ok(lookup & lookupflags::SYMLINK_FOLLOW != 0)
}
