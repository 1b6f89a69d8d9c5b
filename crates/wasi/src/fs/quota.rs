//! Quotas: every way a guest can make the file system grow has a bound here, and each bound
//! answers the guest with the errno POSIX uses for it instead of growing the host's memory.

/// Default cap on the bytes the file system holds: 1 GiB. Counted: the logical size of every
/// file (holes included, so a sparse write far past the end is charged in full), the length
/// of every directory entry's name and of every symbolic link's target. Stops a guest from
/// filling the host's memory with data; exceeding it is `ENOSPC`.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1 << 30;

/// Default cap on one file's size: 512 MiB. Stops a single `pwrite` at a huge offset (or a
/// `fd_filestat_set_size`/`fd_allocate` to a huge size) before any accounting or allocation
/// happens; exceeding it is `EFBIG`.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 512 << 20;

/// Default cap on inodes (files, directories and symbolic links, the root included, and
/// unlinked files that are still open): 65 536. Stops a guest from exhausting host memory with
/// empty files, whose bytes alone would cost almost nothing; exceeding it is `ENOSPC`.
pub const DEFAULT_MAX_INODES: u64 = 1 << 16;

/// Default cap on the descriptors one view has open at once (its preopens included): 1024,
/// Linux's default `RLIMIT_NOFILE`. Stops a guest from pinning unbounded host state by opening
/// the same file over and over; exceeding it is `EMFILE`.
pub const DEFAULT_MAX_OPEN_DESCRIPTORS: u32 = 1024;

/// Default cap on directory nesting below the root: 256 levels. Bounds every walk up or down the
/// tree (the cycle check of `path_rename`, the host's export) so a guest cannot make one host
/// call cost time or stack in proportion to an arbitrarily deep chain; exceeding it is `ENOSPC`
/// (there is no room at that depth).
pub const DEFAULT_MAX_DEPTH: u32 = 256;

/// Default cap on a path's length in bytes: 4096, Linux's `PATH_MAX`. Applies to every path a
/// guest passes and to every symbolic link's target, so the work of resolving one path is
/// bounded; exceeding it is `ENAMETOOLONG`.
pub const DEFAULT_MAX_PATH_BYTES: u32 = 4096;

/// The longest name one path component may have: 255 bytes, Linux's `NAME_MAX`. Longer is
/// `ENAMETOOLONG`. Not configurable: it is part of what guests assume about names.
pub const MAX_NAME_BYTES: usize = 255;

/// How many symbolic links one path resolution may expand: 40, Linux's `MAXSYMLINKS`. A loop
/// (`a -> b -> a`) or a long chain ends with `ELOOP` after this many, so resolution always
/// terminates and its work is bounded.
pub const MAX_SYMLINK_EXPANSIONS: u32 = 40;

/// The limits one file system enforces. Build with [`Quotas::default`] and override fields;
/// each default is the constant of the same name in this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Bytes held in total. Default: [`DEFAULT_MAX_TOTAL_BYTES`]. Exceeding it: `ENOSPC`.
    pub max_total_bytes: u64,
    /// Size of one file. Default: [`DEFAULT_MAX_FILE_BYTES`]. Exceeding it: `EFBIG`.
    pub max_file_bytes: u64,
    /// Inodes in total. Default: [`DEFAULT_MAX_INODES`]. Exceeding it: `ENOSPC`.
    pub max_inodes: u64,
    /// Descriptors one view may have open. Default: [`DEFAULT_MAX_OPEN_DESCRIPTORS`].
    /// Exceeding it: `EMFILE`.
    pub max_open_descriptors: u32,
    /// Directory nesting below the root. Default: [`DEFAULT_MAX_DEPTH`]. Exceeding it: `ENOSPC`.
    pub max_depth: u32,
    /// Length of a path or symbolic-link target. Default: [`DEFAULT_MAX_PATH_BYTES`].
    /// Exceeding it: `ENAMETOOLONG`.
    pub max_path_bytes: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_inodes: DEFAULT_MAX_INODES,
            max_open_descriptors: DEFAULT_MAX_OPEN_DESCRIPTORS,
            max_depth: DEFAULT_MAX_DEPTH,
            max_path_bytes: DEFAULT_MAX_PATH_BYTES,
        }
    }
}

/// What a file system holds right now, as its quotas count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes charged against [`Quotas::max_total_bytes`].
    pub bytes: u64,
    /// Inodes charged against [`Quotas::max_inodes`].
    pub inodes: u64,
}
