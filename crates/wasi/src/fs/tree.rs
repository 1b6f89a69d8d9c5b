//! The tree itself: inodes, directory entries, path resolution, quotas, and the POSIX meaning of
//! every operation. Nothing here knows about rights: [`super::view`] checks a descriptor's rights
//! before it calls in, and the tree then behaves as a confined POSIX file system would.
//!
//! # Confinement
//! Every path is resolved *beneath* a starting directory (the descriptor it was passed with),
//! component by component, keeping the directories walked through on a stack. `..` pops that
//! stack, and popping past the start is `ENOTCAPABLE`; parent pointers are never followed, so a
//! directory moved elsewhere by another view cannot become a way out. Absolute paths are
//! `ENOTCAPABLE`; a symbolic link's target is spliced into the remaining path and resolved the
//! same way (so an absolute target or one with too many `..` is `ENOTCAPABLE` too), and after
//! [`MAX_SYMLINK_EXPANSIONS`] expansions resolution stops with `ELOOP`.
//!
//! # Sealed files
//! A regular file the host sealed ([`Tree::seal`]) never changes again: every operation that
//! would change its bytes, size, times or names answers `EPERM` here, the one place every
//! view and descriptor goes through, whatever rights the caller holds.

use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Timestamps;
use super::data::FileData;
use super::quota::{MAX_NAME_BYTES, MAX_SYMLINK_EXPANSIONS, Quotas, Usage};
use crate::types::{Errno, Filestat, Filetype, fstflags};

/// An inode number. Numbers are never reused while the file system lives.
pub(crate) type Ino = u64;

/// The root directory's inode number.
pub(crate) const ROOT: Ino = 1;

/// The device number every file reports: the whole tree is one device.
pub(crate) const DEVICE: u64 = 1;

/// What an inode is.
#[derive(Debug)]
pub(crate) enum Kind {
    File(FileData),
    Dir(Dir),
    Symlink(String),
}

/// A directory: its entries by name, and the same entries in creation order for `readdir`.
#[derive(Debug, Default)]
pub(crate) struct Dir {
    /// The directory holding this one (the root's is itself). Used for the `..` entry of
    /// `readdir` and for the checks of `path_rename`; path resolution never follows it.
    parent: Ino,
    entries: BTreeMap<String, Entry>,
    /// Sequence number → name: the order `readdir` lists entries in. A cookie names a position
    /// in this sequence, so it stays valid while other entries come and go.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    /// Bytes of entry names, reported as the directory's size.
    name_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ino: Ino,
    seq: u64,
}

/// One inode: a file, directory or symbolic link with its counts and times.
#[derive(Debug)]
pub(crate) struct Inode {
    pub(crate) kind: Kind,
    /// Directory entries naming this inode (a directory: 1 while linked, 0 once removed).
    nlink: u64,
    /// Open descriptors referring to it. An inode is freed when both counts reach zero.
    open: u64,
    /// Sealed by the host: immutable for the rest of its life (see the module documentation).
    sealed: bool,
    atim: u64,
    mtim: u64,
    ctim: u64,
}

impl Inode {
    fn filetype(&self) -> Filetype {
        match self.kind {
            Kind::File(_) => Filetype::RegularFile,
            Kind::Dir(_) => Filetype::Directory,
            Kind::Symlink(_) => Filetype::SymbolicLink,
        }
    }
}

/// How the last component of a path is treated when it names a symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FinalLink {
    /// Follow it (`lookupflags::SYMLINK_FOLLOW`).
    Follow,
    /// Do not follow it, unless the path ends with a slash (POSIX: a trailing slash resolves
    /// the link). For `path_open`, `path_filestat_*`, `path_readlink`.
    NoFollow,
    /// Never follow it: the operation acts on the entry itself (`unlink`, `rmdir`, `rename`,
    /// `link`, `symlink`, `mkdir`). The caller judges a trailing slash.
    Entry,
}

/// Where a path led.
#[derive(Debug)]
pub(crate) struct Walk {
    /// The directory holding the final entry; when `name` is `None`, the resolved directory.
    pub(crate) dir: Ino,
    /// The final component; `None` when the path ended in `.` or `..` (it names `dir` itself).
    pub(crate) name: Option<String>,
    /// The final inode, if it exists.
    pub(crate) ino: Option<Ino>,
    /// Whether the path (or the last link target spliced into it) ended with a slash.
    pub(crate) trailing_slash: bool,
}

/// One `readdir` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    /// The cookie that resumes the listing after this entry.
    pub next: u64,
    /// The entry's inode number.
    pub ino: u64,
    /// The entry's type.
    pub filetype: Filetype,
    /// The entry's name.
    pub name: String,
}

impl Dirent {
    /// Size of the `dirent` header in guest memory; the name follows it, unterminated.
    pub const HEADER_SIZE: usize = 24;

    /// The ABI header: `d_next`, `d_ino`, `d_namlen`, `d_type`, little-endian with padding.
    pub fn header(&self) -> [u8; Self::HEADER_SIZE] {
        let mut out = [0u8; Self::HEADER_SIZE];
        out[0..8].copy_from_slice(&self.next.to_le_bytes());
        out[8..16].copy_from_slice(&self.ino.to_le_bytes());
        let namlen = u32::try_from(self.name.len()).unwrap_or(u32::MAX);
        out[16..20].copy_from_slice(&namlen.to_le_bytes());
        out[20] = self.filetype as u8;
        out
    }
}

/// What `path_open` asked for, as far as the tree cares.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenFlags {
    pub(crate) follow: bool,
    /// The descriptor asks for `FD_WRITE`.
    pub(crate) write: bool,
    pub(crate) create: bool,
    pub(crate) exclusive: bool,
    pub(crate) truncate: bool,
    pub(crate) directory: bool,
}

/// The whole file system's state. Lives behind the [`super::FileSystem`] lock.
#[derive(Debug)]
pub(crate) struct Tree {
    nodes: BTreeMap<Ino, Inode>,
    next_ino: Ino,
    pub(crate) quotas: Quotas,
    usage: Usage,
    timestamps: Timestamps,
}

/// A path split into components, with whether it ended with a slash.
struct Parsed {
    comps: Vec<String>,
    trailing_slash: bool,
}

/// Checks a path a guest passed (or a link target) and splits it. Empty: `ENOENT`; a NUL:
/// `EINVAL`; absolute: `ENOTCAPABLE`; too long or a component over [`MAX_NAME_BYTES`]:
/// `ENAMETOOLONG`.
fn parse(path: &str, max_path: u32) -> Result<Parsed, Errno> {
    if path.is_empty() {
        return Err(Errno::Noent);
    }
    if path.len() > max_path as usize {
        return Err(Errno::Nametoolong);
    }
    if path.contains('\0') {
        return Err(Errno::Inval);
    }
    if path.starts_with('/') {
        return Err(Errno::Notcapable);
    }
    let mut comps = Vec::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        if comp.len() > MAX_NAME_BYTES {
            return Err(Errno::Nametoolong);
        }
        comps.push(comp.to_owned());
    }
    Ok(Parsed {
        comps,
        trailing_slash: path.ends_with('/'),
    })
}

/// Checks a single entry name (as the host loader gives them).
pub(crate) fn check_name(name: &str) -> Result<(), Errno> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(Errno::Inval);
    }
    if name.contains('/') || name.contains('\0') {
        return Err(Errno::Inval);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Errno::Nametoolong);
    }
    Ok(())
}

fn len64(s: &str) -> u64 {
    s.len() as u64
}

impl Tree {
    /// An empty tree: just the root directory.
    pub(crate) fn new(quotas: Quotas, timestamps: Timestamps) -> Tree {
        let mut tree = Tree {
            nodes: BTreeMap::new(),
            next_ino: ROOT,
            quotas,
            usage: Usage::default(),
            timestamps,
        };
        let now = tree.now();
        let root = Inode {
            kind: Kind::Dir(Dir {
                parent: ROOT,
                ..Dir::default()
            }),
            nlink: 1,
            open: 0,
            sealed: false,
            atim: now,
            mtim: now,
            ctim: now,
        };
        tree.nodes.insert(ROOT, root);
        tree.next_ino = ROOT + 1;
        tree.usage.inodes = 1;
        tree
    }

    /// What the quotas count right now.
    pub(crate) fn usage(&self) -> Usage {
        self.usage
    }

    /// The time stamped on changes, in nanoseconds since the Unix epoch.
    pub(crate) fn now(&self) -> u64 {
        match self.timestamps {
            Timestamps::Realtime => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(crate::ctx::duration_ns)
                .unwrap_or(0),
            Timestamps::Fixed(ns) => ns,
        }
    }

    pub(crate) fn node(&self, ino: Ino) -> Result<&Inode, Errno> {
        // A live descriptor keeps its inode; a miss here is a bug, reported as an I/O error.
        self.nodes.get(&ino).ok_or(Errno::Io)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::Io)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir, Errno> {
        match &self.node(ino)?.kind {
            Kind::Dir(dir) => Ok(dir),
            _ => Err(Errno::Notdir),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir, Errno> {
        match &mut self.node_mut(ino)?.kind {
            Kind::Dir(dir) => Ok(dir),
            _ => Err(Errno::Notdir),
        }
    }

    fn file(&self, ino: Ino) -> Result<&FileData, Errno> {
        match &self.node(ino)?.kind {
            Kind::File(data) => Ok(data),
            Kind::Dir(_) => Err(Errno::Isdir),
            Kind::Symlink(_) => Err(Errno::Inval),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileData, Errno> {
        match &mut self.node_mut(ino)?.kind {
            Kind::File(data) => Ok(data),
            Kind::Dir(_) => Err(Errno::Isdir),
            Kind::Symlink(_) => Err(Errno::Inval),
        }
    }

    pub(crate) fn filetype(&self, ino: Ino) -> Result<Filetype, Errno> {
        Ok(self.node(ino)?.filetype())
    }

    // ---- sealing ------------------------------------------------------------------------------

    /// Seals regular file `ino` for the rest of its life. Anything else is `EINVAL` (the host
    /// API says which, before it calls in).
    pub(crate) fn seal(&mut self, ino: Ino) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        if !matches!(node.kind, Kind::File(_)) {
            return Err(Errno::Inval);
        }
        node.sealed = true;
        Ok(())
    }

    /// `EPERM` if `ino` is sealed.
    fn unsealed(&self, ino: Ino) -> Result<(), Errno> {
        if self.node(ino)?.sealed {
            Err(Errno::Perm)
        } else {
            Ok(())
        }
    }

    // ---- quotas -------------------------------------------------------------------------

    /// Whether `bytes` more bytes and `inodes` more inodes fit. Changes nothing.
    fn room(&self, bytes: u64, inodes: u64) -> Result<(), Errno> {
        let bytes_ok = self
            .usage
            .bytes
            .checked_add(bytes)
            .is_some_and(|b| b <= self.quotas.max_total_bytes);
        let inodes_ok = self
            .usage
            .inodes
            .checked_add(inodes)
            .is_some_and(|i| i <= self.quotas.max_inodes);
        if bytes_ok && inodes_ok {
            Ok(())
        } else {
            Err(Errno::Nospc)
        }
    }

    fn charge(&mut self, bytes: u64) {
        self.usage.bytes += bytes;
    }

    fn uncharge(&mut self, bytes: u64) {
        self.usage.bytes = self.usage.bytes.saturating_sub(bytes);
    }

    /// Nesting level of directory `dir` (the root is 0), walking parent pointers. Stops one
    /// past the depth quota: anything deeper is "too deep" and the exact number is moot.
    fn depth(&self, mut dir: Ino) -> Result<u32, Errno> {
        let mut depth = 0u32;
        while dir != ROOT {
            depth += 1;
            if depth > self.quotas.max_depth {
                break;
            }
            dir = self.dir(dir)?.parent;
        }
        Ok(depth)
    }

    /// How many directory levels lie below `dir` (0 when it has no subdirectories).
    fn height(&self, dir: Ino) -> Result<u32, Errno> {
        let mut height = 0u32;
        let mut level = vec![dir];
        loop {
            let mut next = Vec::new();
            for d in &level {
                for entry in self.dir(*d)?.entries.values() {
                    if matches!(self.node(entry.ino)?.kind, Kind::Dir(_)) {
                        next.push(entry.ino);
                    }
                }
            }
            if next.is_empty() {
                return Ok(height);
            }
            height += 1;
            if height > self.quotas.max_depth {
                return Ok(height);
            }
            level = next;
        }
    }

    // ---- inodes and entries ----------------------------------------------------------------

    fn alloc(&mut self, kind: Kind) -> Ino {
        let now = self.now();
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Inode {
                kind,
                nlink: 0,
                open: 0,
                sealed: false,
                atim: now,
                mtim: now,
                ctim: now,
            },
        );
        self.usage.inodes += 1;
        ino
    }

    /// Adds entry `name → ino` to `dir`, charging the name and counting the link. The caller
    /// has checked room.
    fn add_entry(&mut self, dir: Ino, name: &str, ino: Ino) -> Result<(), Errno> {
        let d = self.dir_mut(dir)?;
        let seq = d.next_seq;
        d.next_seq += 1;
        d.entries.insert(name.to_owned(), Entry { ino, seq });
        d.order.insert(seq, name.to_owned());
        d.name_bytes += len64(name);
        self.charge(len64(name));
        let now = self.now();
        let node = self.node_mut(ino)?;
        node.nlink += 1;
        node.ctim = now;
        self.touch_dir(dir)
    }

    /// Removes entry `name` from `dir` and drops the link it held; frees the inode if that was
    /// its last link and nothing has it open. Returns the inode the entry named.
    fn remove_entry(&mut self, dir: Ino, name: &str) -> Result<Ino, Errno> {
        let d = self.dir_mut(dir)?;
        let entry = d.entries.remove(name).ok_or(Errno::Noent)?;
        d.order.remove(&entry.seq);
        d.name_bytes = d.name_bytes.saturating_sub(len64(name));
        self.uncharge(len64(name));
        let now = self.now();
        let node = self.node_mut(entry.ino)?;
        node.nlink = node.nlink.saturating_sub(1);
        node.ctim = now;
        self.touch_dir(dir)?;
        self.free_if_unreferenced(entry.ino)?;
        Ok(entry.ino)
    }

    fn touch_dir(&mut self, dir: Ino) -> Result<(), Errno> {
        let now = self.now();
        let node = self.node_mut(dir)?;
        node.mtim = now;
        node.ctim = now;
        Ok(())
    }

    fn free_if_unreferenced(&mut self, ino: Ino) -> Result<(), Errno> {
        let node = self.node(ino)?;
        if node.nlink > 0 || node.open > 0 || ino == ROOT {
            return Ok(());
        }
        let bytes = match &node.kind {
            Kind::File(data) => data.size(),
            Kind::Symlink(target) => len64(target),
            Kind::Dir(dir) => dir.name_bytes,
        };
        self.nodes.remove(&ino);
        self.uncharge(bytes);
        self.usage.inodes = self.usage.inodes.saturating_sub(1);
        Ok(())
    }

    /// Counts one more open descriptor on `ino`.
    pub(crate) fn acquire(&mut self, ino: Ino) -> Result<(), Errno> {
        self.node_mut(ino)?.open += 1;
        Ok(())
    }

    /// Counts one open descriptor fewer on `ino`, freeing it if it was unlinked.
    pub(crate) fn release(&mut self, ino: Ino) {
        if let Ok(node) = self.node_mut(ino) {
            node.open = node.open.saturating_sub(1);
            // `free_if_unreferenced` fails only for a missing inode, which `node_mut` ruled out.
            let _freed = self.free_if_unreferenced(ino);
        }
    }

    /// Whether directory `dir` is still linked into the tree (a removed directory accepts no
    /// new entries: `ENOENT`, as POSIX says for a deleted working directory).
    fn alive_dir(&self, dir: Ino) -> Result<(), Errno> {
        let node = self.node(dir)?;
        match node.kind {
            Kind::Dir(_) if node.nlink > 0 => Ok(()),
            Kind::Dir(_) => Err(Errno::Noent),
            _ => Err(Errno::Notdir),
        }
    }

    // ---- path resolution ------------------------------------------------------------------

    /// Resolves `path` beneath directory `start`. See the module documentation for the rules.
    ///
    /// # Errors
    /// `ENOENT` for a missing intermediate directory, `ENOTDIR` when an intermediate component
    /// is not a directory, `ENOTCAPABLE` for anything that would leave `start`, `ELOOP` after
    /// [`MAX_SYMLINK_EXPANSIONS`] link expansions, plus the errors of [`parse`].
    pub(crate) fn walk(&self, start: Ino, path: &str, last: FinalLink) -> Result<Walk, Errno> {
        self.dir(start)?;
        let parsed = parse(path, self.quotas.max_path_bytes)?;
        let mut trailing = parsed.trailing_slash;
        let mut comps: VecDeque<String> = parsed.comps.into();
        let mut stack = vec![start];
        let mut expansions = 0u32;
        while let Some(comp) = comps.pop_front() {
            let is_last = comps.is_empty();
            let cur = *stack.last().ok_or(Errno::Io)?;
            match comp.as_str() {
                "." => {}
                ".." => {
                    if stack.len() == 1 {
                        return Err(Errno::Notcapable);
                    }
                    stack.pop();
                }
                name => {
                    let Some(entry) = self.dir(cur)?.entries.get(name) else {
                        if is_last {
                            return Ok(Walk {
                                dir: cur,
                                name: Some(comp),
                                ino: None,
                                trailing_slash: trailing,
                            });
                        }
                        return Err(Errno::Noent);
                    };
                    let ino = entry.ino;
                    match &self.node(ino)?.kind {
                        Kind::Dir(_) if !is_last => stack.push(ino),
                        Kind::Symlink(target) => {
                            let follow = !is_last
                                || match last {
                                    FinalLink::Follow => true,
                                    FinalLink::NoFollow => trailing,
                                    FinalLink::Entry => false,
                                };
                            if !follow {
                                return Ok(Walk {
                                    dir: cur,
                                    name: Some(comp),
                                    ino: Some(ino),
                                    trailing_slash: trailing,
                                });
                            }
                            expansions += 1;
                            if expansions > MAX_SYMLINK_EXPANSIONS {
                                return Err(Errno::Loop);
                            }
                            let spliced = parse(target, self.quotas.max_path_bytes)?;
                            if is_last && spliced.trailing_slash {
                                trailing = true;
                            }
                            for c in spliced.comps.into_iter().rev() {
                                comps.push_front(c);
                            }
                        }
                        Kind::File(_) if !is_last => return Err(Errno::Notdir),
                        _ => {
                            return Ok(Walk {
                                dir: cur,
                                name: Some(comp),
                                ino: Some(ino),
                                trailing_slash: trailing,
                            });
                        }
                    }
                }
            }
        }
        // The path ended in `.` or `..` (or a link whose target did): it names a directory.
        let dir = *stack.last().ok_or(Errno::Io)?;
        Ok(Walk {
            dir,
            name: None,
            ino: Some(dir),
            trailing_slash: trailing,
        })
    }

    /// Resolves an absolute, normalised host-side path (`/a/b`) from the root without
    /// following any symbolic link: how a capability table's paths find their directories, so
    /// that a link a guest planted cannot redirect another party's view.
    pub(crate) fn lookup_absolute(&self, path: &str) -> Result<Ino, Errno> {
        let mut cur = ROOT;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            let entry = self.dir(cur)?.entries.get(comp).ok_or(Errno::Noent)?;
            cur = entry.ino;
        }
        Ok(cur)
    }

    /// The entry `name` in directory `dir`, if any.
    pub(crate) fn child(&self, dir: Ino, name: &str) -> Result<Option<Ino>, Errno> {
        Ok(self.dir(dir)?.entries.get(name).map(|e| e.ino))
    }

    // ---- creating ---------------------------------------------------------------------------

    /// Creates directory `name` in `dir` (which must be alive, with `name` absent).
    pub(crate) fn mkdir_in(&mut self, dir: Ino, name: &str) -> Result<Ino, Errno> {
        self.alive_dir(dir)?;
        if self.child(dir, name)?.is_some() {
            return Err(Errno::Exist);
        }
        if self.depth(dir)? + 1 > self.quotas.max_depth {
            return Err(Errno::Nospc);
        }
        self.room(len64(name), 1)?;
        let ino = self.alloc(Kind::Dir(Dir {
            parent: dir,
            ..Dir::default()
        }));
        self.add_entry(dir, name, ino)?;
        Ok(ino)
    }

    /// Creates an empty regular file `name` in `dir`.
    pub(crate) fn create_file_in(&mut self, dir: Ino, name: &str) -> Result<Ino, Errno> {
        self.alive_dir(dir)?;
        if self.child(dir, name)?.is_some() {
            return Err(Errno::Exist);
        }
        self.room(len64(name), 1)?;
        let ino = self.alloc(Kind::File(FileData::default()));
        self.add_entry(dir, name, ino)?;
        Ok(ino)
    }

    /// Whether a new regular file `name` of `size` bytes fits in directory `dir`: alive, the
    /// name absent, within the file-size, byte and inode quotas. Changes nothing.
    pub(crate) fn check_new_file(&self, dir: Ino, name: &str, size: u64) -> Result<(), Errno> {
        self.alive_dir(dir)?;
        check_name(name)?;
        if self.child(dir, name)?.is_some() {
            return Err(Errno::Exist);
        }
        if size > self.quotas.max_file_bytes {
            return Err(Errno::Fbig);
        }
        self.room(len64(name).saturating_add(size), 1)
    }

    /// Makes regular file `name` in `dir` holding `data` (moved from another tree by
    /// [`Tree::take_file`]), after the checks of [`Tree::check_new_file`].
    pub(crate) fn put_file(&mut self, dir: Ino, name: &str, data: FileData) -> Result<Ino, Errno> {
        let size = data.size();
        self.check_new_file(dir, name, size)?;
        let ino = self.alloc(Kind::File(data));
        self.charge(size);
        self.add_entry(dir, name, ino)?;
        Ok(ino)
    }

    /// Takes regular file `name` out of directory `dir` whole, for [`Tree::put_file`] in another
    /// tree: its entry goes and its bytes leave this tree's quota. Only a file with one name,
    /// no open descriptor and no seal can be taken (`EBUSY` otherwise, `EINVAL` for anything
    /// but a regular file), so nothing here can still see it.
    pub(crate) fn take_file(&mut self, dir: Ino, name: &str) -> Result<FileData, Errno> {
        let ino = self.child(dir, name)?.ok_or(Errno::Noent)?;
        let node = self.node(ino)?;
        if !matches!(node.kind, Kind::File(_)) {
            return Err(Errno::Inval);
        }
        if node.nlink != 1 || node.open != 0 || node.sealed {
            return Err(Errno::Busy);
        }
        let data = std::mem::take(self.file_mut(ino)?);
        self.uncharge(data.size());
        // The inode is empty now: removing its entry frees it without charging anything back.
        self.remove_entry(dir, name)?;
        Ok(data)
    }

    /// Creates symbolic link `name → target` in `dir`. The target is stored as given (the
    /// caller validated it).
    pub(crate) fn symlink_in(&mut self, dir: Ino, name: &str, target: &str) -> Result<Ino, Errno> {
        self.alive_dir(dir)?;
        if self.child(dir, name)?.is_some() {
            return Err(Errno::Exist);
        }
        if target.len() > self.quotas.max_path_bytes as usize {
            return Err(Errno::Nametoolong);
        }
        self.room(len64(name) + len64(target), 1)?;
        let ino = self.alloc(Kind::Symlink(target.to_owned()));
        self.charge(len64(target));
        self.add_entry(dir, name, ino)?;
        Ok(ino)
    }

    /// `path_create_directory`.
    pub(crate) fn mkdir(&mut self, start: Ino, path: &str) -> Result<(), Errno> {
        let walk = self.walk(start, path, FinalLink::Entry)?;
        match (walk.name, walk.ino) {
            (Some(name), None) => self.mkdir_in(walk.dir, &name).map(drop),
            _ => Err(Errno::Exist),
        }
    }

    /// `path_symlink`: a link at `path` (beneath `start`) whose target is `target`.
    ///
    /// # Errors
    /// An absolute target is `ENOTCAPABLE` (following it could only ever fail, and refusing it
    /// keeps the tree free of links that point at the host); an empty one `ENOENT`; a NUL
    /// `EINVAL`; an existing `path` `EEXIST`; a missing one with a trailing slash `ENOENT`.
    pub(crate) fn symlink(&mut self, target: &str, start: Ino, path: &str) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(Errno::Noent);
        }
        if target.contains('\0') {
            return Err(Errno::Inval);
        }
        if target.starts_with('/') {
            return Err(Errno::Notcapable);
        }
        if target.len() > self.quotas.max_path_bytes as usize {
            return Err(Errno::Nametoolong);
        }
        let walk = self.walk(start, path, FinalLink::Entry)?;
        match (walk.name, walk.ino) {
            (Some(_), None) if walk.trailing_slash => Err(Errno::Noent),
            (Some(name), None) => self.symlink_in(walk.dir, &name, target).map(drop),
            _ => Err(Errno::Exist),
        }
    }

    /// `path_link`: a new name `new_path` (beneath `new_start`) for the file at `old_path`.
    pub(crate) fn link(
        &mut self,
        old_start: Ino,
        follow: bool,
        old_path: &str,
        new_start: Ino,
        new_path: &str,
    ) -> Result<(), Errno> {
        let mode = if follow {
            FinalLink::Follow
        } else {
            FinalLink::Entry
        };
        let old = self.walk(old_start, old_path, mode)?;
        let (Some(_), Some(target)) = (&old.name, old.ino) else {
            return Err(match old.ino {
                None => Errno::Noent,
                // `.` or `..`: a directory.
                Some(_) => Errno::Perm,
            });
        };
        match self.node(target)?.kind {
            Kind::Dir(_) => return Err(Errno::Perm),
            _ if old.trailing_slash => return Err(Errno::Notdir),
            _ => {}
        }
        // A sealed file gets no new names (as Linux refuses links to an immutable file).
        self.unsealed(target)?;
        let new = self.walk(new_start, new_path, FinalLink::Entry)?;
        match (new.name, new.ino) {
            (Some(_), None) if new.trailing_slash => Err(Errno::Noent),
            (Some(name), None) => {
                self.alive_dir(new.dir)?;
                self.room(len64(&name), 0)?;
                self.add_entry(new.dir, &name, target)
            }
            _ => Err(Errno::Exist),
        }
    }

    // ---- removing and renaming ------------------------------------------------------------

    /// `path_unlink_file`.
    pub(crate) fn unlink(&mut self, start: Ino, path: &str) -> Result<(), Errno> {
        let walk = self.walk(start, path, FinalLink::Entry)?;
        let (Some(name), Some(ino)) = (walk.name, walk.ino) else {
            return Err(match walk.ino {
                None => Errno::Noent,
                Some(_) => Errno::Isdir,
            });
        };
        match self.node(ino)?.kind {
            Kind::Dir(_) => return Err(Errno::Isdir),
            _ if walk.trailing_slash => return Err(Errno::Notdir),
            _ => {}
        }
        self.unsealed(ino)?;
        self.remove_entry(walk.dir, &name).map(drop)
    }

    /// `path_remove_directory`.
    pub(crate) fn rmdir(&mut self, start: Ino, path: &str) -> Result<(), Errno> {
        let walk = self.walk(start, path, FinalLink::Entry)?;
        let (Some(name), Some(ino)) = (walk.name, walk.ino) else {
            return Err(match walk.ino {
                None => Errno::Noent,
                // `.`, `..`, or a path ending in them: POSIX says EINVAL for `.`.
                Some(_) => Errno::Inval,
            });
        };
        match &self.node(ino)?.kind {
            Kind::Dir(dir) if !dir.entries.is_empty() => Err(Errno::Notempty),
            Kind::Dir(_) => self.remove_entry(walk.dir, &name).map(drop),
            _ => Err(Errno::Notdir),
        }
    }

    /// `path_rename`.
    pub(crate) fn rename(
        &mut self,
        old_start: Ino,
        old_path: &str,
        new_start: Ino,
        new_path: &str,
    ) -> Result<(), Errno> {
        let old = self.walk(old_start, old_path, FinalLink::Entry)?;
        let (Some(old_name), Some(ino)) = (old.name, old.ino) else {
            return Err(match old.ino {
                None => Errno::Noent,
                Some(_) => Errno::Inval,
            });
        };
        let is_dir = matches!(self.node(ino)?.kind, Kind::Dir(_));
        if old.trailing_slash && !is_dir {
            return Err(Errno::Notdir);
        }
        let new = self.walk(new_start, new_path, FinalLink::Entry)?;
        let Some(new_name) = new.name else {
            return Err(Errno::Inval);
        };
        if new.trailing_slash && !is_dir {
            return Err(Errno::Notdir);
        }
        // A sealed file keeps its name, and nothing is renamed over it; checked before the
        // "two names of one file" case, so that answer does not depend on the target.
        self.unsealed(ino)?;
        if let Some(victim) = new.ino {
            self.unsealed(victim)?;
        }
        if new.ino == Some(ino) {
            // Two names for the same inode (or the same name twice): POSIX says do nothing.
            return Ok(());
        }
        if let Some(victim) = new.ino {
            match (&self.node(victim)?.kind, is_dir) {
                (Kind::Dir(d), true) if !d.entries.is_empty() => return Err(Errno::Notempty),
                (Kind::Dir(_), true) => {}
                (_, true) => return Err(Errno::Notdir),
                (Kind::Dir(_), false) => return Err(Errno::Isdir),
                (_, false) => {}
            }
        }
        self.alive_dir(new.dir)?;
        if is_dir && new.dir != old.dir {
            // Not into itself or a descendant: walk up from the new parent.
            let mut up = new.dir;
            loop {
                if up == ino {
                    return Err(Errno::Inval);
                }
                if up == ROOT {
                    break;
                }
                up = self.dir(up)?.parent;
            }
            if self.depth(new.dir)? + 1 + self.height(ino)? > self.quotas.max_depth {
                return Err(Errno::Nospc);
            }
        }
        let added = len64(&new_name);
        let freed = len64(&old_name) + if new.ino.is_some() { added } else { 0 };
        if added > freed {
            self.room(added - freed, 0)?;
        }
        // Take the target's entry out first, then move the source: every step below is
        // infallible for the inodes checked above.
        if new.ino.is_some() {
            self.remove_entry(new.dir, &new_name)?;
        }
        self.remove_entry_keep(old.dir, &old_name)?;
        self.add_entry(new.dir, &new_name, ino)?;
        if is_dir {
            self.dir_mut(ino)?.parent = new.dir;
        }
        Ok(())
    }

    /// Removes entry `name` from `dir` without freeing its inode (which is about to be linked
    /// again, by `rename`).
    fn remove_entry_keep(&mut self, dir: Ino, name: &str) -> Result<(), Errno> {
        let d = self.dir_mut(dir)?;
        let entry = d.entries.remove(name).ok_or(Errno::Noent)?;
        d.order.remove(&entry.seq);
        d.name_bytes = d.name_bytes.saturating_sub(len64(name));
        self.uncharge(len64(name));
        let node = self.node_mut(entry.ino)?;
        node.nlink = node.nlink.saturating_sub(1);
        self.touch_dir(dir)
    }

    // ---- opening ------------------------------------------------------------------------------

    /// `path_open` without the rights: resolves, creates or truncates, and returns the inode
    /// and its type. `admit` sees the type the descriptor will have before anything changes,
    /// and may refuse (the view's rights check); nothing has been created or truncated when it
    /// does.
    pub(crate) fn open(
        &mut self,
        start: Ino,
        path: &str,
        flags: OpenFlags,
        admit: impl FnOnce(Filetype) -> Result<(), Errno>,
    ) -> Result<(Ino, Filetype), Errno> {
        if flags.create && flags.directory {
            return Err(Errno::Inval);
        }
        let mode = if flags.create && flags.exclusive {
            // O_CREAT|O_EXCL never follows a final link: an existing link is EEXIST.
            FinalLink::Entry
        } else if flags.follow {
            FinalLink::Follow
        } else {
            FinalLink::NoFollow
        };
        let walk = self.walk(start, path, mode)?;
        let Some(ino) = walk.ino else {
            if !flags.create {
                return Err(Errno::Noent);
            }
            if walk.trailing_slash {
                return Err(Errno::Isdir);
            }
            let name = walk.name.ok_or(Errno::Io)?;
            admit(Filetype::RegularFile)?;
            let ino = self.create_file_in(walk.dir, &name)?;
            return Ok((ino, Filetype::RegularFile));
        };
        if flags.create && flags.exclusive {
            return Err(Errno::Exist);
        }
        match self.node(ino)?.kind {
            // Reached only when not following: O_NOFOLLOW on a link.
            Kind::Symlink(_) => Err(Errno::Loop),
            Kind::Dir(_) => {
                if flags.create || flags.truncate {
                    return Err(Errno::Isdir);
                }
                admit(Filetype::Directory)?;
                Ok((ino, Filetype::Directory))
            }
            Kind::File(_) => {
                if flags.directory || walk.trailing_slash {
                    return Err(Errno::Notdir);
                }
                admit(Filetype::RegularFile)?;
                if flags.write || flags.truncate {
                    self.unsealed(ino)?;
                }
                if flags.truncate {
                    self.set_size(ino, 0)?;
                }
                Ok((ino, Filetype::RegularFile))
            }
        }
    }

    // ---- reading metadata ----------------------------------------------------------------------

    /// The attributes of `ino`.
    pub(crate) fn stat(&self, ino: Ino) -> Result<Filestat, Errno> {
        let node = self.node(ino)?;
        let size = match &node.kind {
            Kind::File(data) => data.size(),
            Kind::Dir(dir) => dir.name_bytes,
            Kind::Symlink(target) => len64(target),
        };
        Ok(Filestat {
            dev: DEVICE,
            ino,
            filetype: node.filetype() as u8,
            nlink: node.nlink,
            size,
            atim: node.atim,
            mtim: node.mtim,
            ctim: node.ctim,
        })
    }

    /// Resolves `path` for `path_filestat_get`/`path_filestat_set_times`: the inode it names.
    pub(crate) fn lookup(&self, start: Ino, path: &str, follow: bool) -> Result<Ino, Errno> {
        let mode = if follow {
            FinalLink::Follow
        } else {
            FinalLink::NoFollow
        };
        let walk = self.walk(start, path, mode)?;
        let ino = walk.ino.ok_or(Errno::Noent)?;
        if walk.trailing_slash && !matches!(self.node(ino)?.kind, Kind::Dir(_)) {
            return Err(Errno::Notdir);
        }
        Ok(ino)
    }

    /// `path_readlink`: the target of the link at `path`. Not a link: `EINVAL`.
    pub(crate) fn readlink(&self, start: Ino, path: &str) -> Result<String, Errno> {
        let walk = self.walk(start, path, FinalLink::NoFollow)?;
        let ino = walk.ino.ok_or(Errno::Noent)?;
        match &self.node(ino)?.kind {
            Kind::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::Inval),
        }
    }

    /// `*_filestat_set_times`. Setting both a time and "now" for the same stamp, or an unknown
    /// flag, is `EINVAL` and changes nothing.
    pub(crate) fn set_times(
        &mut self,
        ino: Ino,
        atim: u64,
        mtim: u64,
        flags: u16,
    ) -> Result<(), Errno> {
        let known = fstflags::ATIM | fstflags::ATIM_NOW | fstflags::MTIM | fstflags::MTIM_NOW;
        if flags & !known != 0 {
            return Err(Errno::Inval);
        }
        let both = |a: u16, b: u16| flags & a != 0 && flags & b != 0;
        if both(fstflags::ATIM, fstflags::ATIM_NOW) || both(fstflags::MTIM, fstflags::MTIM_NOW) {
            return Err(Errno::Inval);
        }
        self.unsealed(ino)?;
        let now = self.now();
        let node = self.node_mut(ino)?;
        if flags & fstflags::ATIM != 0 {
            node.atim = atim;
        } else if flags & fstflags::ATIM_NOW != 0 {
            node.atim = now;
        }
        if flags & fstflags::MTIM != 0 {
            node.mtim = mtim;
        } else if flags & fstflags::MTIM_NOW != 0 {
            node.mtim = now;
        }
        node.ctim = now;
        Ok(())
    }

    /// Up to about `budget` bytes of `readdir` entries of directory `dir`, from `cookie` on:
    /// `.` (cookie 0), `..` (cookie 1), then the entries in creation order. The returned
    /// entries' serialized size reaches `budget` (so the guest's buffer comes back full) unless
    /// the listing ends first.
    pub(crate) fn readdir(
        &self,
        dir: Ino,
        cookie: u64,
        budget: usize,
    ) -> Result<Vec<Dirent>, Errno> {
        let d = self.dir(dir)?;
        let mut out = Vec::new();
        let mut used = 0usize;
        let mut push = |out: &mut Vec<Dirent>, entry: Dirent| {
            used += Dirent::HEADER_SIZE + entry.name.len();
            out.push(entry);
            used >= budget
        };
        if cookie == 0 {
            let dot = Dirent {
                next: 1,
                ino: dir,
                filetype: Filetype::Directory,
                name: ".".into(),
            };
            if push(&mut out, dot) {
                return Ok(out);
            }
        }
        if cookie <= 1 {
            let dotdot = Dirent {
                next: 2,
                ino: d.parent,
                filetype: Filetype::Directory,
                name: "..".into(),
            };
            if push(&mut out, dotdot) {
                return Ok(out);
            }
        }
        let from = cookie.saturating_sub(2);
        for (seq, name) in d.order.range(from..) {
            let entry = d.entries.get(name).ok_or(Errno::Io)?;
            let dirent = Dirent {
                next: seq.saturating_add(3),
                ino: entry.ino,
                filetype: self.node(entry.ino)?.filetype(),
                name: name.clone(),
            };
            if push(&mut out, dirent) {
                break;
            }
        }
        Ok(out)
    }

    // ---- file contents --------------------------------------------------------------------------

    /// Reads from regular file `ino` at `offset`.
    pub(crate) fn read_at(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        Ok(self.file(ino)?.read(offset, buf))
    }

    /// The size of regular file `ino`.
    pub(crate) fn size(&self, ino: Ino) -> Result<u64, Errno> {
        Ok(self.file(ino)?.size())
    }

    /// Writes all of `data` at `offset` in regular file `ino`, or nothing.
    ///
    /// # Errors
    /// `EPERM` for a sealed file; `EFBIG` if the write would end past the file-size quota,
    /// `ENOSPC` if the growth (holes included) does not fit the byte quota.
    pub(crate) fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.unsealed(ino)?;
        if data.is_empty() {
            self.file(ino)?;
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::Fbig)?;
        if end > self.quotas.max_file_bytes {
            return Err(Errno::Fbig);
        }
        let growth = end.saturating_sub(self.file(ino)?.size());
        self.room(growth, 0)?;
        self.file_mut(ino)?.write(offset, data);
        self.charge(growth);
        self.touch_file(ino)?;
        Ok(data.len())
    }

    /// Sets the size of regular file `ino` (`fd_filestat_set_size`, `O_TRUNC`).
    pub(crate) fn set_size(&mut self, ino: Ino, size: u64) -> Result<(), Errno> {
        self.unsealed(ino)?;
        if size > self.quotas.max_file_bytes {
            return Err(Errno::Fbig);
        }
        let old = self.file(ino)?.size();
        if size > old {
            self.room(size - old, 0)?;
            self.charge(size - old);
        } else {
            self.uncharge(old - size);
        }
        self.file_mut(ino)?.set_size(size);
        self.touch_file(ino)
    }

    /// `fd_allocate`: makes sure the file is at least `offset + len` bytes long. The space is
    /// reserved in the byte quota; the memory is not touched until written.
    pub(crate) fn allocate(&mut self, ino: Ino, offset: u64, len: u64) -> Result<(), Errno> {
        if len == 0 {
            return Err(Errno::Inval);
        }
        self.unsealed(ino)?;
        let end = offset.checked_add(len).ok_or(Errno::Fbig)?;
        if end > self.file(ino)?.size() {
            self.set_size(ino, end)?;
        }
        Ok(())
    }

    fn touch_file(&mut self, ino: Ino) -> Result<(), Errno> {
        let now = self.now();
        let node = self.node_mut(ino)?;
        node.mtim = now;
        node.ctim = now;
        Ok(())
    }

    // ---- for tests ----------------------------------------------------------------------------------

    /// Host memory the file chunks hold.
    #[cfg(test)]
    pub(crate) fn resident_bytes(&self) -> usize {
        self.nodes
            .values()
            .map(|n| match &n.kind {
                Kind::File(data) => data.resident_bytes(),
                _ => 0,
            })
            .sum()
    }

    /// Recounts everything from scratch and checks it against the running counters and links.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut bytes = 0u64;
        let mut links: BTreeMap<Ino, u64> = BTreeMap::new();
        for (ino, node) in &self.nodes {
            match &node.kind {
                Kind::File(data) => bytes += data.size(),
                Kind::Symlink(target) => bytes += len64(target),
                Kind::Dir(dir) => {
                    assert_eq!(dir.entries.len(), dir.order.len(), "dir {ino} order");
                    let mut names = 0;
                    for (name, entry) in &dir.entries {
                        assert_eq!(dir.order.get(&entry.seq), Some(name));
                        names += len64(name);
                        *links.entry(entry.ino).or_default() += 1;
                        let child = &self.nodes[&entry.ino];
                        if let Kind::Dir(sub) = &child.kind {
                            assert_eq!(sub.parent, *ino, "parent pointer of {}", entry.ino);
                        }
                    }
                    assert_eq!(dir.name_bytes, names);
                    bytes += names;
                }
            }
        }
        for (ino, node) in &self.nodes {
            let expected = if *ino == ROOT {
                1
            } else {
                links.get(ino).copied().unwrap_or(0)
            };
            assert_eq!(node.nlink, expected, "nlink of {ino}");
            assert!(node.nlink > 0 || node.open > 0, "leaked inode {ino}");
        }
        assert_eq!(self.usage.bytes, bytes, "byte usage");
        assert_eq!(self.usage.inodes, self.nodes.len() as u64, "inode usage");
    }

    /// A canonical listing of everything reachable from the root: path, type, size, nlink,
    /// contents or target, and times. Two equal snapshots mean nothing visible changed.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![(String::new(), ROOT)];
        while let Some((path, ino)) = todo.pop() {
            let node = &self.nodes[&ino];
            let what = match &node.kind {
                Kind::File(data) => {
                    let mut buf = vec![0u8; usize::try_from(data.size()).unwrap().min(1 << 16)];
                    data.read(0, &mut buf);
                    format!("file {} {:?}", data.size(), buf)
                }
                Kind::Symlink(target) => format!("link -> {target}"),
                Kind::Dir(dir) => {
                    for (name, entry) in &dir.entries {
                        todo.push((format!("{path}/{name}"), entry.ino));
                    }
                    format!("dir {:?}", dir.order.values().collect::<Vec<_>>())
                }
            };
            out.push(format!(
                "{path}: {what} nlink={} times={}/{}/{}",
                node.nlink, node.atim, node.mtim, node.ctim
            ));
        }
        out.sort();
        out
    }
}
