//! Capabilities: what a principal or program may do under a guest path, and how that becomes
//! preview1 rights on the preopened directory descriptor.
//!
//! A [`CapabilityTable`] maps absolute guest paths to an [`Access`] (read, write, create, list,
//! execute). It is the only input from which a [`super::View`] is built: each entry becomes one
//! preopened directory whose *base* rights are what the access allows on the directory itself
//! and whose *inheriting* rights are what it allows on everything opened through it.
//!
//! | access    | on the directory (base rights) | added for what it opens (inheriting rights) |
//! |-----------|--------------------------------|---------------------------------------------|
//! | `read`    | `PATH_OPEN`, `PATH_FILESTAT_GET`, `PATH_READLINK`, `PATH_LINK_SOURCE`, `FD_FILESTAT_GET`, `FD_FDSTAT_SET_FLAGS`, `POLL_FD_READWRITE` | `FD_READ`, `FD_SEEK`, `FD_TELL`, `FD_ADVISE` |
//! | `list`    | `PATH_OPEN`, `FD_READDIR`, `PATH_FILESTAT_GET`, `FD_FILESTAT_GET` | — |
//! | `write`   | `PATH_OPEN`, `PATH_FILESTAT_SET_SIZE`, `PATH_FILESTAT_SET_TIMES`, `FD_FILESTAT_SET_TIMES`, `PATH_UNLINK_FILE`, `PATH_REMOVE_DIRECTORY`, `PATH_RENAME_SOURCE`, `FD_SYNC`, `FD_DATASYNC`, `FD_FDSTAT_SET_FLAGS`, `POLL_FD_READWRITE` | `FD_WRITE`, `FD_SEEK`, `FD_TELL`, `FD_ALLOCATE`, `FD_FILESTAT_SET_SIZE` |
//! | `create`  | `PATH_OPEN`, `PATH_CREATE_FILE`, `PATH_CREATE_DIRECTORY`, `PATH_SYMLINK`, `PATH_LINK_TARGET`, `PATH_RENAME_TARGET` | — |
//! | `execute` | — | — |
//!
//! The inheriting rights are the base rights plus the column on the right, so a subdirectory
//! opened through a preopen can do what the preopen can. `execute` maps onto no preview1 right:
//! preview1 has no way to run a file. It is the host's check before it loads a module stored
//! in the file system as a program ([`super::View::read_executable`]).
//!
//! Renaming needs `write` where the entry leaves and `create` where it arrives; removing needs
//! `write`; `O_TRUNC` needs `write`; `O_CREAT` needs `create`.
//!
//! # Rights belong to descriptors, so they must not grow by moving files
//! Rights sit on descriptors derived from a preopen, not on files. So nothing may make one
//! file reachable through two entries with different rights:
//! - every descriptor remembers the entry (the *scope*) it descends from, and `path_link` and
//!   `path_rename` between descriptors of different scopes answer `EXDEV` (see
//!   [`super::Handle::link`]); symbolic links are followed only beneath the descriptor they
//!   are followed from, so they never cross scopes;
//! - an entry nested beneath another must not pretend to be narrower than it is, nor be a place
//!   the outer entry can carry files into where they would gain rights: see
//!   [`CapabilityTable::check_nesting`].

use std::collections::BTreeMap;
use std::fmt;

use super::FsError;
use super::quota::{DEFAULT_MAX_PATH_BYTES, MAX_NAME_BYTES};
use crate::types::Rights;

/// What may be done under a guest path: a set of `read`, `write`, `create`, `list`, `execute`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Access(u8);

impl Access {
    /// Nothing.
    pub const NONE: Access = Access(0);
    /// Open files and read their contents and metadata; follow links.
    pub const READ: Access = Access(1 << 0);
    /// Change files that exist: write, truncate, set times; remove and rename entries away.
    pub const WRITE: Access = Access(1 << 1);
    /// Add entries: files, directories, symbolic and hard links, rename targets.
    pub const CREATE: Access = Access(1 << 2);
    /// Enumerate a directory's entries and stat them.
    pub const LIST: Access = Access(1 << 3);
    /// Load a file as a program (host-side only; see the module documentation).
    pub const EXECUTE: Access = Access(1 << 4);
    /// `read` and `list`: what `--dir HOST::GUEST:ro` grants.
    pub const READ_ONLY: Access = Access(Self::READ.0 | Self::LIST.0);
    /// `read`, `write`, `create` and `list`: what `--dir HOST::GUEST` grants.
    pub const READ_WRITE: Access =
        Access(Self::READ.0 | Self::WRITE.0 | Self::CREATE.0 | Self::LIST.0);
    /// Everything.
    pub const ALL: Access = Access(Self::READ_WRITE.0 | Self::EXECUTE.0);

    const LETTERS: [(char, Access); 5] = [
        ('r', Access::READ),
        ('w', Access::WRITE),
        ('c', Access::CREATE),
        ('l', Access::LIST),
        ('x', Access::EXECUTE),
    ];

    /// Whether every access in `other` is in `self`.
    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }

    /// The accesses in either.
    pub fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    /// The accesses in `self` but not in `other`.
    pub fn difference(self, other: Access) -> Access {
        Access(self.0 & !other.0)
    }

    /// The accesses in both.
    pub fn intersection(self, other: Access) -> Access {
        Access(self.0 & other.0)
    }

    /// Parses letters: `r` read, `w` write, `c` create, `l` list, `x` execute, in any order
    /// (`"rl"`, `"rwcl"`). `"-"` is [`Access::NONE`].
    ///
    /// # Errors
    /// Any other character, or an empty string.
    pub fn from_letters(letters: &str) -> Result<Access, ParseAccessError> {
        if letters == "-" {
            return Ok(Access::NONE);
        }
        if letters.is_empty() {
            return Err(ParseAccessError(letters.to_owned()));
        }
        let mut access = Access::NONE;
        for ch in letters.chars() {
            let (_, bit) = Self::LETTERS
                .iter()
                .find(|(l, _)| *l == ch)
                .ok_or_else(|| ParseAccessError(letters.to_owned()))?;
            access = access.union(*bit);
        }
        Ok(access)
    }

    /// The rights of a preopened directory granted this access: see the module table.
    pub fn directory_rights(self) -> Rights {
        let mut rights = Rights::NONE;
        if self.contains(Access::READ) {
            rights = rights
                | Rights::PATH_OPEN
                | Rights::PATH_FILESTAT_GET
                | Rights::PATH_READLINK
                | Rights::PATH_LINK_SOURCE
                | Rights::FD_FILESTAT_GET
                | Rights::FD_FDSTAT_SET_FLAGS
                | Rights::POLL_FD_READWRITE;
        }
        if self.contains(Access::LIST) {
            rights = rights
                | Rights::PATH_OPEN
                | Rights::FD_READDIR
                | Rights::PATH_FILESTAT_GET
                | Rights::FD_FILESTAT_GET;
        }
        if self.contains(Access::WRITE) {
            rights = rights
                | Rights::PATH_OPEN
                | Rights::PATH_FILESTAT_SET_SIZE
                | Rights::PATH_FILESTAT_SET_TIMES
                | Rights::FD_FILESTAT_SET_TIMES
                | Rights::PATH_UNLINK_FILE
                | Rights::PATH_REMOVE_DIRECTORY
                | Rights::PATH_RENAME_SOURCE
                | Rights::FD_SYNC
                | Rights::FD_DATASYNC
                | Rights::FD_FDSTAT_SET_FLAGS
                | Rights::POLL_FD_READWRITE;
        }
        if self.contains(Access::CREATE) {
            rights = rights
                | Rights::PATH_OPEN
                | Rights::PATH_CREATE_FILE
                | Rights::PATH_CREATE_DIRECTORY
                | Rights::PATH_SYMLINK
                | Rights::PATH_LINK_TARGET
                | Rights::PATH_RENAME_TARGET;
        }
        rights.intersect(DIRECTORY_RIGHTS)
    }

    /// The inheriting rights of a preopened directory granted this access: its directory rights
    /// plus the file rights of the module table.
    pub fn inheriting_rights(self) -> Rights {
        let mut rights = self.directory_rights();
        if self.contains(Access::READ) {
            rights =
                rights | Rights::FD_READ | Rights::FD_SEEK | Rights::FD_TELL | Rights::FD_ADVISE;
        }
        if self.contains(Access::WRITE) {
            rights = rights
                | Rights::FD_WRITE
                | Rights::FD_SEEK
                | Rights::FD_TELL
                | Rights::FD_ALLOCATE
                | Rights::FD_FILESTAT_SET_SIZE;
        }
        rights
    }
}

impl std::ops::BitOr for Access {
    type Output = Access;
    fn bitor(self, rhs: Access) -> Access {
        self.union(rhs)
    }
}

impl fmt::Display for Access {
    /// The letters of [`Access::from_letters`], in the order `rwclx`; `-` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Access::NONE {
            return f.write_str("-");
        }
        for (letter, bit) in Self::LETTERS {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// A string that is not a set of access letters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an access: use the letters r (read), w (write), c (create), l (list), x (execute), or -"
)]
pub struct ParseAccessError(String);

/// Every right a directory descriptor can hold: the `PATH_*` rights, listing, and the
/// descriptor rights that make sense for a directory. A directory opened with more keeps only
/// these (so it never holds `FD_SEEK`, `FD_READ` or `FD_FILESTAT_SET_SIZE`).
pub const DIRECTORY_RIGHTS: Rights = Rights(
    Rights::PATH_CREATE_DIRECTORY.0
        | Rights::PATH_CREATE_FILE.0
        | Rights::PATH_LINK_SOURCE.0
        | Rights::PATH_LINK_TARGET.0
        | Rights::PATH_OPEN.0
        | Rights::FD_READDIR.0
        | Rights::PATH_READLINK.0
        | Rights::PATH_RENAME_SOURCE.0
        | Rights::PATH_RENAME_TARGET.0
        | Rights::PATH_FILESTAT_GET.0
        | Rights::PATH_FILESTAT_SET_SIZE.0
        | Rights::PATH_FILESTAT_SET_TIMES.0
        | Rights::FD_FILESTAT_GET.0
        | Rights::FD_FILESTAT_SET_TIMES.0
        | Rights::PATH_SYMLINK.0
        | Rights::PATH_REMOVE_DIRECTORY.0
        | Rights::PATH_UNLINK_FILE.0
        | Rights::FD_FDSTAT_SET_FLAGS.0
        | Rights::FD_SYNC.0
        | Rights::FD_DATASYNC.0
        | Rights::POLL_FD_READWRITE.0,
);

/// Every right a regular-file descriptor can hold: the `FD_*` rights and polling. A file opened
/// with more keeps only these. (`FD_READDIR` stays so that listing a file answers `ENOTDIR`, as
/// POSIX programs expect, rather than `ENOTCAPABLE`.)
pub const FILE_RIGHTS: Rights = Rights(
    Rights::FD_DATASYNC.0
        | Rights::FD_READ.0
        | Rights::FD_SEEK.0
        | Rights::FD_FDSTAT_SET_FLAGS.0
        | Rights::FD_SYNC.0
        | Rights::FD_TELL.0
        | Rights::FD_WRITE.0
        | Rights::FD_ADVISE.0
        | Rights::FD_ALLOCATE.0
        | Rights::FD_READDIR.0
        | Rights::FD_FILESTAT_GET.0
        | Rights::FD_FILESTAT_SET_SIZE.0
        | Rights::FD_FILESTAT_SET_TIMES.0
        | Rights::POLL_FD_READWRITE.0,
);

/// Guest paths and what may be done under each: the only thing a [`super::View`] is built
/// from. Default: empty (a view with no preopens, which can reach nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilityTable {
    entries: BTreeMap<String, Access>,
}

impl CapabilityTable {
    /// An empty table.
    pub fn new() -> Self {
        CapabilityTable::default()
    }

    /// Grants `access` under `guest_path` (absolute, like `/` or `/data/in`). Granting a path
    /// twice adds the accesses together.
    ///
    /// # Errors
    /// [`FsError::InvalidPath`] if the path is relative, holds `.` or `..` components or a NUL,
    /// or is longer than the default path quota.
    pub fn grant(&mut self, guest_path: &str, access: Access) -> Result<&mut Self, FsError> {
        let path = normalize(guest_path)?;
        let entry = self.entries.entry(path).or_default();
        *entry = entry.union(access);
        Ok(self)
    }

    /// [`CapabilityTable::grant`], by value, for building a table in one expression.
    ///
    /// # Errors
    /// As [`CapabilityTable::grant`].
    pub fn with(mut self, guest_path: &str, access: Access) -> Result<Self, FsError> {
        self.grant(guest_path, access)?;
        Ok(self)
    }

    /// The access granted under exactly `guest_path`, if it is an entry.
    pub fn get(&self, guest_path: &str) -> Option<Access> {
        normalize(guest_path)
            .ok()
            .and_then(|p| self.entries.get(&p).copied())
    }

    /// The entries, sorted by path: the order their preopens get descriptor numbers in.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Access)> {
        self.entries.iter().map(|(p, a)| (p.as_str(), *a))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks that no entry lies beneath another in a way that would make the table lie.
    /// [`super::FileSystem::view`] refuses a table that fails this; a caller may check a table
    /// earlier to report the problem where the table is written.
    ///
    /// For every entry `inner` strictly beneath another entry `outer`:
    /// - `inner` must grant the `write` and `create` that `outer` grants: a descriptor of
    ///   `outer` can change everything under `inner` anyway, so a narrower `inner` would only
    ///   look protected (`/data` `rwcl` with `/data/in` `r`: the guest writes `/data/in/x`
    ///   through `/data`);
    /// - if `outer` grants `create` with `read` (so it can hard-link files in) or with `write`
    ///   (so it can rename them in), `inner` must grant exactly what `outer` does: a file
    ///   linked or moved beneath `inner` would otherwise gain `inner`'s extra rights there.
    ///
    /// An `inner` that withholds `read`, `list` or `execute` that `outer` grants is accepted:
    /// it is what a computation's table looks like when an output's directory lies inside an
    /// input's (the program may read what it writes there through the input's entry, and
    /// nothing else lives there).
    ///
    /// # Errors
    /// [`FsError::NestedAccess`] naming the first pair (in path order) that breaks a rule, and
    /// why.
    pub fn check_nesting(&self) -> Result<(), FsError> {
        for (outer, outer_access) in &self.entries {
            for (inner, inner_access) in &self.entries {
                if !is_beneath(inner, outer) {
                    continue;
                }
                let (outer_access, inner_access) = (*outer_access, *inner_access);
                let problem = |reason: &'static str| FsError::NestedAccess {
                    outer: outer.clone(),
                    outer_access,
                    inner: inner.clone(),
                    inner_access,
                    reason,
                };
                let kept = outer_access.intersection(Access::WRITE | Access::CREATE);
                if !inner_access.contains(kept) {
                    return Err(problem(
                        "through the outer entry's descriptor the guest can still write and \
                         create beneath the inner one, so the inner entry only pretends to be \
                         narrower; grant the inner entry at least the outer entry's write and \
                         create, or move it out from under the outer entry",
                    ));
                }
                let carries_in = outer_access.contains(Access::CREATE)
                    && (outer_access.contains(Access::READ)
                        || outer_access.contains(Access::WRITE));
                if carries_in && inner_access != outer_access {
                    return Err(problem(
                        "the outer entry can hard-link or rename files beneath the inner one, \
                         where they would have the inner entry's rights instead of the outer \
                         entry's; grant both entries the same access, or move the inner entry \
                         out from under the outer one",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether normalised path `inner` lies strictly beneath normalised path `outer`.
fn is_beneath(inner: &str, outer: &str) -> bool {
    if inner == outer {
        return false;
    }
    outer == "/"
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Checks and normalises an absolute guest path: `//a//b/` becomes `/a/b`, `/` stays `/`.
///
/// # Errors
/// [`FsError::InvalidPath`] for a relative path, a `.` or `..` component, a NUL, a component
/// over [`MAX_NAME_BYTES`], or more than [`DEFAULT_MAX_PATH_BYTES`] bytes.
pub(crate) fn normalize(path: &str) -> Result<String, FsError> {
    let invalid = |reason: &'static str| FsError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if !path.starts_with('/') {
        return Err(invalid("a guest path must be absolute"));
    }
    if path.len() > DEFAULT_MAX_PATH_BYTES as usize {
        return Err(invalid("longer than the path length quota"));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let mut out = String::with_capacity(path.len());
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        if comp == "." || comp == ".." {
            return Err(invalid("'.' and '..' are not allowed"));
        }
        if comp.len() > MAX_NAME_BYTES {
            return Err(invalid("a component is longer than 255 bytes"));
        }
        out.push('/');
        out.push_str(comp);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The components of a normalised path (none for `/`).
pub(crate) fn components(normalized: &str) -> impl Iterator<Item = &str> {
    normalized.split('/').filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_round_trip() {
        for letters in ["r", "rl", "rwcl", "rwclx", "x", "-"] {
            let access = Access::from_letters(letters).unwrap();
            assert_eq!(access.to_string(), letters);
        }
        assert_eq!(Access::from_letters("lr").unwrap(), Access::READ_ONLY);
        assert!(Access::from_letters("rz").is_err());
        assert!(Access::from_letters("").is_err());
    }

    #[test]
    fn read_write_grants_what_posix_libraries_expect_of_a_preopen() {
        // The set wasi-libc and the official suite expect every directory to have.
        let expected = [
            Rights::PATH_CREATE_DIRECTORY,
            Rights::PATH_CREATE_FILE,
            Rights::PATH_LINK_SOURCE,
            Rights::PATH_LINK_TARGET,
            Rights::PATH_OPEN,
            Rights::FD_READDIR,
            Rights::PATH_READLINK,
            Rights::PATH_RENAME_SOURCE,
            Rights::PATH_RENAME_TARGET,
            Rights::PATH_SYMLINK,
            Rights::PATH_REMOVE_DIRECTORY,
            Rights::PATH_UNLINK_FILE,
            Rights::PATH_FILESTAT_GET,
            Rights::PATH_FILESTAT_SET_TIMES,
            Rights::FD_FILESTAT_GET,
            Rights::FD_FILESTAT_SET_TIMES,
        ];
        let base = Access::READ_WRITE.directory_rights();
        let inheriting = Access::READ_WRITE.inheriting_rights();
        for right in expected {
            assert!(base.contains(right), "{right:?}");
            assert!(inheriting.contains(right), "{right:?}");
        }
        for right in [
            Rights::FD_READ,
            Rights::FD_WRITE,
            Rights::FD_SEEK,
            Rights::FD_FILESTAT_SET_SIZE,
        ] {
            assert!(!base.contains(right), "a directory never holds {right:?}");
            assert!(inheriting.contains(right), "{right:?}");
        }
    }

    #[test]
    fn each_access_adds_only_its_own_rights() {
        let ro = Access::READ_ONLY.inheriting_rights();
        for right in [
            Rights::FD_WRITE,
            Rights::PATH_CREATE_FILE,
            Rights::PATH_UNLINK_FILE,
            Rights::PATH_FILESTAT_SET_SIZE,
            Rights::FD_FILESTAT_SET_SIZE,
            Rights::PATH_RENAME_TARGET,
        ] {
            assert!(!ro.contains(right), "read-only must not carry {right:?}");
        }
        assert!(!Access::READ.directory_rights().contains(Rights::FD_READDIR));
        assert!(!Access::LIST.inheriting_rights().contains(Rights::FD_READ));
        assert!(
            !Access::CREATE
                .inheriting_rights()
                .contains(Rights::FD_WRITE)
        );
        assert_eq!(Access::EXECUTE.inheriting_rights(), Rights::NONE);
    }

    #[test]
    fn guest_paths_are_normalised_or_refused() {
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("//a///b/").unwrap(), "/a/b");
        for bad in ["", "a", "./a", "/a/../b", "/a/./b", "/a\0"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        let mut table = CapabilityTable::new();
        table.grant("/data/", Access::READ).unwrap();
        table.grant("//data", Access::LIST).unwrap();
        assert_eq!(table.get("/data"), Some(Access::READ_ONLY));
        assert_eq!(table.len(), 1);
    }
}
