//! `wasi_snapshot_preview1`, written once over [`GuestMemory`] and bound into each engine.
//!
//! Every function here has the shape
//! `fn name(ctx: &mut WasiCtx, mem: &mut GuestMemory<'_>, <the ABI's arguments>) -> Result<i32, Termination>`:
//! `Ok(errno)` goes back to the guest (0 is success); `Err(termination)` ends the instance.
//! Arguments arrive exactly as the guest passed them (`i32`/`i64`), and every pointer is
//! checked by [`GuestMemory`] before use.
//!
//! The list of functions and their core-Wasm signatures lives in one place,
//! [`for_each_preview1_function!`](crate::for_each_preview1_function): the sandbox's import
//! allow-list ([`SIGNATURES`]) and each engine's bindings are generated from it, so the three
//! cannot drift apart.
//!
//! # Files and directories
//! Descriptors 3 and up are files and directories of the in-memory file system
//! ([`crate::fs`]): the preopens of the context's view, then whatever the guest opens. Every
//! call on them is checked by the file system against the descriptor's rights; this file only
//! moves bytes between guest memory and the file system. A context without a view has no
//! preopens, and path calls answer as POSIX would for a process with no directories: `EBADF`
//! for descriptors that are not open, `ENOTDIR` for the standard streams.
//!
//! # Sockets and signals
//! Preview1 has no way to create a socket, and Covenant never hands a guest one, so the four
//! `sock_*` functions answer `EBADF` for a descriptor that is not open and `ENOTSOCK` for one
//! that is (what the official test suite expects). `proc_raise` answers `ENOSYS`: a guest
//! cannot signal anything.

use std::time::{Duration, Instant};

use crate::ctx::{Descriptor, Stream, Termination, WasiCtx};
use crate::fs::Handle;
use crate::memory::GuestMemory;
use crate::types::{ClockId, Errno, Fdstat, Filestat, Rights, Whence};

/// The longest path argument copied out of guest memory: 64 KiB. Stops a guest from making
/// the host copy its whole memory as one path; the file system's own path quota
/// (`ENAMETOOLONG`) is far below this.
pub const MAX_PATH_ARG_BYTES: u32 = 64 * 1024;

/// The most subscriptions one `poll_oneoff` may pass. Each costs the host a small allocation;
/// this stops a guest from making the host allocate in proportion to its whole memory.
pub const MAX_POLL_SUBSCRIPTIONS: u32 = 4096;

/// Calls `$mac!` with every preview1 function as `name(arg: type, ...) -> result;`, where each
/// type is `i32` or `i64` and the result is `i32` (an errno) or `()` (`proc_exit`).
#[macro_export]
macro_rules! for_each_preview1_function {
    ($mac:ident) => {
        $mac! {
            args_get(argv: i32, argv_buf: i32) -> i32;
            args_sizes_get(argc: i32, argv_buf_size: i32) -> i32;
            environ_get(environ: i32, environ_buf: i32) -> i32;
            environ_sizes_get(count: i32, buf_size: i32) -> i32;
            clock_res_get(id: i32, resolution: i32) -> i32;
            clock_time_get(id: i32, precision: i64, time: i32) -> i32;
            fd_advise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
            fd_allocate(fd: i32, offset: i64, len: i64) -> i32;
            fd_close(fd: i32) -> i32;
            fd_datasync(fd: i32) -> i32;
            fd_fdstat_get(fd: i32, stat: i32) -> i32;
            fd_fdstat_set_flags(fd: i32, flags: i32) -> i32;
            fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64) -> i32;
            fd_filestat_get(fd: i32, stat: i32) -> i32;
            fd_filestat_set_size(fd: i32, size: i64) -> i32;
            fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, fst_flags: i32) -> i32;
            fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nread: i32) -> i32;
            fd_prestat_get(fd: i32, prestat: i32) -> i32;
            fd_prestat_dir_name(fd: i32, path: i32, path_len: i32) -> i32;
            fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nwritten: i32) -> i32;
            fd_read(fd: i32, iovs: i32, iovs_len: i32, nread: i32) -> i32;
            fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, bufused: i32) -> i32;
            fd_renumber(fd: i32, to: i32) -> i32;
            fd_seek(fd: i32, offset: i64, whence: i32, newoffset: i32) -> i32;
            fd_sync(fd: i32) -> i32;
            fd_tell(fd: i32, offset: i32) -> i32;
            fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32;
            path_create_directory(fd: i32, path: i32, path_len: i32) -> i32;
            path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, stat: i32) -> i32;
            path_filestat_set_times(fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32) -> i32;
            path_link(old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32) -> i32;
            path_open(fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32, rights_base: i64, rights_inheriting: i64, fdflags: i32, opened_fd: i32) -> i32;
            path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, bufused: i32) -> i32;
            path_remove_directory(fd: i32, path: i32, path_len: i32) -> i32;
            path_rename(fd: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32) -> i32;
            path_symlink(old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32) -> i32;
            path_unlink_file(fd: i32, path: i32, path_len: i32) -> i32;
            poll_oneoff(subscriptions: i32, events: i32, nsubscriptions: i32, nevents: i32) -> i32;
            proc_exit(code: i32) -> ();
            proc_raise(signal: i32) -> i32;
            sched_yield() -> i32;
            random_get(buf: i32, buf_len: i32) -> i32;
            sock_accept(fd: i32, flags: i32, opened_fd: i32) -> i32;
            sock_recv(fd: i32, ri_data: i32, ri_data_len: i32, ri_flags: i32, ro_datalen: i32, ro_flags: i32) -> i32;
            sock_send(fd: i32, si_data: i32, si_data_len: i32, si_flags: i32, so_datalen: i32) -> i32;
            sock_shutdown(fd: i32, how: i32) -> i32;
        }
    };
}

/// The module name every preview1 import uses.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// A core-Wasm value type, as far as preview1 needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValType {
    /// `i32`
    I32,
    /// `i64`
    I64,
}

/// A function's name and core-Wasm signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The import name inside [`MODULE`].
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [ValType],
    /// Result types.
    pub results: &'static [ValType],
}

macro_rules! val_type {
    (i32) => {
        ValType::I32
    };
    (i64) => {
        ValType::I64
    };
}

macro_rules! result_types {
    (i32) => {
        &[ValType::I32]
    };
    (()) => {
        &[]
    };
}

macro_rules! signatures {
    ($( $name:ident ( $($arg:ident : $ty:ident),* ) -> $ret:tt; )*) => {
        /// Every function this crate implements, with its signature: the import allow-list.
        pub const SIGNATURES: &[Signature] = &[
            $( Signature {
                name: stringify!($name),
                params: &[$(val_type!($ty)),*],
                results: result_types!($ret),
            }, )*
        ];
    };
}

for_each_preview1_function!(signatures);

/// The signature of `name`, if preview1 has such a function.
pub fn signature(name: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| s.name == name)
}

type HostResult = Result<i32, Termination>;

/// Turns a call's outcome into the errno the guest sees.
fn errno(result: Result<(), Errno>) -> HostResult {
    Ok(match result {
        Ok(()) => 0,
        Err(e) => e.raw(),
    })
}

/// A guest pointer or length: the ABI's `i32` read as the unsigned number it is.
fn u(value: i32) -> u32 {
    value as u32
}

impl WasiCtx {
    /// The descriptor `fd`, or `EBADF`.
    fn descriptor(&self, fd: i32) -> Result<&Descriptor, Errno> {
        self.fds.get(&u(fd)).ok_or(Errno::Badf)
    }

    fn descriptor_mut(&mut self, fd: i32) -> Result<&mut Descriptor, Errno> {
        self.fds.get_mut(&u(fd)).ok_or(Errno::Badf)
    }

    /// The file-system descriptor `fd` a path call starts from: `EBADF` if not open,
    /// `ENOTDIR` for a standard stream (the handle answers `ENOTDIR` for a file itself).
    fn directory(&self, fd: i32) -> Result<&Handle, Errno> {
        match self.descriptor(fd)? {
            Descriptor::Fs(handle) => Ok(handle),
            Descriptor::Stream { .. } => Err(Errno::Notdir),
        }
    }

    /// The guest path of preopen `fd`; `EBADF` for anything else.
    fn preopen_name(&self, fd: i32) -> Result<&str, Errno> {
        match self.descriptor(fd)? {
            Descriptor::Fs(handle) => handle.preopen_name().ok_or(Errno::Badf),
            Descriptor::Stream { .. } => Err(Errno::Badf),
        }
    }
}

fn write_strings(
    mem: &mut GuestMemory<'_>,
    strings: &[Vec<u8>],
    ptrs: u32,
    buf: u32,
) -> Result<(), Errno> {
    let mut offset = buf;
    for (i, s) in strings.iter().enumerate() {
        let slot = ptrs.checked_add(4 * i as u32).ok_or(Errno::Fault)?;
        mem.write_u32(slot, offset)?;
        mem.write(offset, s)?;
        offset = offset.checked_add(s.len() as u32).ok_or(Errno::Fault)?;
    }
    Ok(())
}

fn sizes(strings: &[Vec<u8>]) -> (u32, u32) {
    (
        strings.len() as u32,
        strings.iter().map(|s| s.len() as u32).sum(),
    )
}

/// `args_get`: copies `argv` into guest memory.
pub fn args_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    argv: i32,
    argv_buf: i32,
) -> HostResult {
    errno(write_strings(mem, &ctx.args, u(argv), u(argv_buf)))
}

/// `args_sizes_get`: the number of arguments and the bytes they need.
pub fn args_sizes_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    argc: i32,
    size: i32,
) -> HostResult {
    let (count, bytes) = sizes(&ctx.args);
    errno(
        mem.write_u32(u(argc), count)
            .and_then(|()| mem.write_u32(u(size), bytes)),
    )
}

/// `environ_get`: copies the environment into guest memory.
pub fn environ_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    environ: i32,
    buf: i32,
) -> HostResult {
    errno(write_strings(mem, &ctx.env, u(environ), u(buf)))
}

/// `environ_sizes_get`: the number of variables and the bytes they need.
pub fn environ_sizes_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    count: i32,
    size: i32,
) -> HostResult {
    let (n, bytes) = sizes(&ctx.env);
    errno(
        mem.write_u32(u(count), n)
            .and_then(|()| mem.write_u32(u(size), bytes)),
    )
}

/// `clock_res_get`: the clock's resolution in nanoseconds. `ENOTCAPABLE` when clocks are not
/// allowed, `EINVAL` for an unknown clock, `ENOTSUP` for the CPU-time clocks.
pub fn clock_res_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    id: i32,
    resolution: i32,
) -> HostResult {
    errno((|| {
        let clock = ClockId::from_raw(u(id)).ok_or(Errno::Inval)?;
        ctx.now(clock)?;
        mem.write_u64(u(resolution), 1)
    })())
}

/// `clock_time_get`: the time in nanoseconds. Errors as [`clock_res_get`].
pub fn clock_time_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    id: i32,
    _precision: i64,
    time: i32,
) -> HostResult {
    errno((|| {
        let clock = ClockId::from_raw(u(id)).ok_or(Errno::Inval)?;
        let now = ctx.now(clock)?;
        mem.write_u64(u(time), now)
    })())
}

/// A descriptor's rights must include `required`.
fn require(descriptor: &Descriptor, required: Rights) -> Result<(), Errno> {
    if descriptor.rights_base().contains(required) {
        Ok(())
    } else {
        Err(Errno::Notcapable)
    }
}

/// Reads a path argument out of guest memory.
///
/// # Errors
/// `ENAMETOOLONG` past [`MAX_PATH_ARG_BYTES`] (before anything is copied), `EFAULT` outside
/// memory, `EILSEQ` for bytes that are not UTF-8 (preview1 paths are strings).
fn read_path(mem: &GuestMemory<'_>, ptr: i32, len: i32) -> Result<String, Errno> {
    if u(len) > MAX_PATH_ARG_BYTES {
        return Err(Errno::Nametoolong);
    }
    let bytes = mem.slice(u(ptr), u(len))?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| Errno::Ilseq)
}

/// A 16-bit flags argument; bits above 16 are `EINVAL`.
fn flags16(value: i32) -> Result<u16, Errno> {
    u16::try_from(value).map_err(|_| Errno::Inval)
}

/// `fd_advise`: accepted and ignored for files (everything is in memory). Standard streams:
/// `ENOTCAPABLE` (they lack the right). Unknown advice or a negative range: `EINVAL`.
pub fn fd_advise(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    offset: i64,
    len: i64,
    advice: i32,
) -> HostResult {
    errno((|| {
        let descriptor = ctx.descriptor(fd)?;
        require(descriptor, Rights::FD_ADVISE)?;
        let advice = u8::try_from(advice).map_err(|_| Errno::Inval)?;
        if offset < 0 || len < 0 {
            return Err(Errno::Inval);
        }
        match descriptor {
            Descriptor::Fs(handle) => handle.advise(offset as u64, len as u64, advice),
            Descriptor::Stream { .. } => Err(Errno::Spipe),
        }
    })())
}

/// `fd_allocate`: grows a file to at least `offset + len`, charged to the byte quota.
pub fn fd_allocate(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    offset: i64,
    len: i64,
) -> HostResult {
    errno((|| match ctx.descriptor(fd)? {
        Descriptor::Fs(handle) => handle.allocate(offset as u64, len as u64),
        stream => require(stream, Rights::FD_ALLOCATE).and(Err(Errno::Spipe)),
    })())
}

/// `fd_close`: closes a descriptor (a preopen too, as POSIX allows).
pub fn fd_close(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32) -> HostResult {
    errno(ctx.fds.remove(&u(fd)).map(drop).ok_or(Errno::Badf))
}

/// `fd_datasync`: nothing to flush in memory. Standard streams: `EINVAL`, as `fdatasync` on a
/// pipe.
pub fn fd_datasync(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32) -> HostResult {
    errno(match ctx.descriptor(fd) {
        Ok(Descriptor::Fs(handle)) => handle.datasync(),
        Ok(stream) => require(stream, Rights::FD_DATASYNC).and(Err(Errno::Inval)),
        Err(e) => Err(e),
    })
}

/// `fd_sync`: nothing to flush in memory. Standard streams: `EINVAL`, as `fsync` on a pipe.
pub fn fd_sync(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32) -> HostResult {
    errno(match ctx.descriptor(fd) {
        Ok(Descriptor::Fs(handle)) => handle.sync(),
        Ok(stream) => require(stream, Rights::FD_SYNC).and(Err(Errno::Inval)),
        Err(e) => Err(e),
    })
}

/// `fd_fdstat_get`: type, flags and rights of a descriptor.
pub fn fd_fdstat_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    stat: i32,
) -> HostResult {
    errno((|| {
        let descriptor = ctx.descriptor(fd)?;
        let fdstat = Fdstat {
            filetype: descriptor.filetype(),
            flags: descriptor.flags(),
            rights_base: descriptor.rights_base(),
            rights_inheriting: descriptor.rights_inheriting(),
        };
        mem.write(u(stat), &fdstat.to_bytes())
    })())
}

/// `fd_fdstat_set_flags`: sets `append`/`nonblock`/sync flags. Unknown bits: `EINVAL`.
pub fn fd_fdstat_set_flags(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    flags: i32,
) -> HostResult {
    errno((|| {
        let flags = flags16(flags)?;
        ctx.descriptor_mut(fd)?.set_flags(flags)
    })())
}

/// `fd_fdstat_set_rights`: drops rights. Asking for a right the descriptor lacks is
/// `ENOTCAPABLE`: rights can only shrink.
pub fn fd_fdstat_set_rights(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    base: i64,
    inheriting: i64,
) -> HostResult {
    errno((|| {
        ctx.descriptor_mut(fd)?
            .set_rights(Rights(base as u64), Rights(inheriting as u64))
    })())
}

/// `fd_filestat_get`: attributes of the open file. Standard streams lack the right.
pub fn fd_filestat_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    stat: i32,
) -> HostResult {
    errno((|| {
        let filestat = match ctx.descriptor(fd)? {
            Descriptor::Fs(handle) => handle.filestat()?,
            stream => {
                require(stream, Rights::FD_FILESTAT_GET)?;
                Filestat {
                    filetype: stream.filetype() as u8,
                    ..Filestat::default()
                }
            }
        };
        mem.write(u(stat), &filestat.to_bytes())
    })())
}

/// `fd_filestat_set_size`: truncates or extends a file. Standard streams lack the right.
pub fn fd_filestat_set_size(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    size: i64,
) -> HostResult {
    errno((|| match ctx.descriptor(fd)? {
        Descriptor::Fs(handle) => handle.set_size(size as u64),
        stream => require(stream, Rights::FD_FILESTAT_SET_SIZE).and(Err(Errno::Spipe)),
    })())
}

/// `fd_filestat_set_times`. Standard streams lack the right.
pub fn fd_filestat_set_times(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    atim: i64,
    mtim: i64,
    fst_flags: i32,
) -> HostResult {
    errno((|| {
        let fst_flags = flags16(fst_flags)?;
        match ctx.descriptor(fd)? {
            Descriptor::Fs(handle) => handle.set_times(atim as u64, mtim as u64, fst_flags),
            stream => require(stream, Rights::FD_FILESTAT_SET_TIMES).and(Err(Errno::Spipe)),
        }
    })())
}

/// `fd_pread`: reads at an offset without moving the position. Standard streams lack
/// `FD_SEEK`: `ENOTCAPABLE`.
pub fn fd_pread(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    offset: i64,
    nread: i32,
) -> HostResult {
    errno((|| {
        let handle = match ctx.descriptor(fd)? {
            Descriptor::Fs(handle) => handle,
            stream => {
                return require(stream, Rights::FD_READ | Rights::FD_SEEK).and(Err(Errno::Spipe));
            }
        };
        handle.check_rights(Rights::FD_READ | Rights::FD_SEEK)?;
        let iovs = mem.read_iovecs(u(iovs), u(iovs_len))?;
        mem.check_iovecs(&iovs)?;
        let mut total = 0u64;
        for iov in &iovs {
            let at = (offset as u64).checked_add(total).ok_or(Errno::Inval)?;
            let n = handle.pread(mem.slice_mut(iov.ptr, iov.len)?, at)?;
            total += n as u64;
            if n < iov.len as usize {
                break;
            }
        }
        mem.write_u32(u(nread), total as u32)
    })())
}

/// `fd_pwrite`: writes at an offset without moving the position (POSIX: even in append
/// mode). Standard streams lack `FD_SEEK`: `ENOTCAPABLE`.
pub fn fd_pwrite(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    offset: i64,
    nwritten: i32,
) -> HostResult {
    errno((|| {
        let handle = match ctx.descriptor(fd)? {
            Descriptor::Fs(handle) => handle,
            stream => {
                return require(stream, Rights::FD_WRITE | Rights::FD_SEEK).and(Err(Errno::Spipe));
            }
        };
        handle.check_rights(Rights::FD_WRITE | Rights::FD_SEEK)?;
        let iovs = mem.read_iovecs(u(iovs), u(iovs_len))?;
        mem.check_iovecs(&iovs)?;
        let mut total = 0u64;
        for iov in &iovs {
            let at = (offset as u64).checked_add(total).ok_or(Errno::Fbig)?;
            match handle.pwrite(mem.slice(iov.ptr, iov.len)?, at) {
                Ok(n) => total += n as u64,
                // Some bytes went out: report them, as POSIX does for a short write.
                Err(_) if total > 0 => break,
                Err(e) => return Err(e),
            }
        }
        mem.write_u32(u(nwritten), total as u32)
    })())
}

/// The `prestat` tag of a preopened directory.
const PREOPENTYPE_DIR: u8 = 0;

/// `fd_prestat_get`: describes a preopened directory (its guest path's length); `EBADF` for
/// anything else.
pub fn fd_prestat_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    prestat: i32,
) -> HostResult {
    errno((|| {
        let name = ctx.preopen_name(fd)?;
        let len = u32::try_from(name.len()).map_err(|_| Errno::Nametoolong)?;
        let mut out = [0u8; 8];
        out[0] = PREOPENTYPE_DIR;
        out[4..8].copy_from_slice(&len.to_le_bytes());
        mem.write(u(prestat), &out)
    })())
}

/// `fd_prestat_dir_name`: the guest path of a preopened directory, unterminated. A buffer
/// shorter than the name: `ENAMETOOLONG`; `EBADF` for anything but a preopen.
pub fn fd_prestat_dir_name(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    path: i32,
    len: i32,
) -> HostResult {
    errno((|| {
        let name = ctx.preopen_name(fd)?;
        if (u(len) as usize) < name.len() {
            return Err(Errno::Nametoolong);
        }
        mem.write(u(path), name.as_bytes())
    })())
}

/// `fd_read`: reads into the guest's iovecs, moving the position.
pub fn fd_read(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> HostResult {
    errno((|| {
        let stream = match ctx.descriptor_mut(fd)? {
            Descriptor::Fs(handle) => {
                handle.check_rights(Rights::FD_READ)?;
                let iovs = mem.read_iovecs(u(iovs), u(iovs_len))?;
                mem.check_iovecs(&iovs)?;
                let mut total = 0u32;
                for iov in &iovs {
                    let n = handle.read(mem.slice_mut(iov.ptr, iov.len)?)?;
                    total += n as u32;
                    if n < iov.len as usize {
                        break;
                    }
                }
                return mem.write_u32(u(nread), total);
            }
            stream => {
                require(stream, Rights::FD_READ)?;
                stream.stream()
            }
        };
        if stream != Some(Stream::Stdin) {
            return Err(Errno::Badf);
        }
        let iovs = mem.read_iovecs(u(iovs), u(iovs_len))?;
        mem.check_iovecs(&iovs)?;
        let mut total = 0u32;
        for iov in &iovs {
            let n = ctx.read_stdin(mem.slice_mut(iov.ptr, iov.len)?);
            total += n as u32;
            if n < iov.len as usize {
                break;
            }
        }
        mem.write_u32(u(nread), total)
    })())
}

/// `fd_readdir`: fills the buffer with `dirent` headers and names from `cookie` on; the last
/// entry is cut at the end of the buffer, so `bufused == buf_len` tells the guest to ask again.
/// Standard streams lack `FD_READDIR`.
pub fn fd_readdir(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    buf: i32,
    buf_len: i32,
    cookie: i64,
    bufused: i32,
) -> HostResult {
    errno((|| {
        let handle = match ctx.descriptor(fd)? {
            Descriptor::Fs(handle) => handle,
            stream => return require(stream, Rights::FD_READDIR).and(Err(Errno::Notdir)),
        };
        let out = mem.slice_mut(u(buf), u(buf_len))?;
        let entries = handle.readdir(cookie as u64, out.len())?;
        let mut used = 0usize;
        'fill: for entry in &entries {
            let header = entry.header();
            for part in [&header[..], entry.name.as_bytes()] {
                let n = part.len().min(out.len() - used);
                out[used..used + n].copy_from_slice(&part[..n]);
                used += n;
                if used == out.len() {
                    break 'fill;
                }
            }
        }
        mem.write_u32(u(bufused), used as u32)
    })())
}

/// `fd_renumber`: moves descriptor `fd` to number `to`, closing what was there. Both must be
/// open (`EBADF` otherwise).
pub fn fd_renumber(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32, to: i32) -> HostResult {
    errno((|| {
        if !ctx.fds.contains_key(&u(to)) {
            return Err(Errno::Badf);
        }
        let entry = ctx.fds.remove(&u(fd)).ok_or(Errno::Badf)?;
        ctx.fds.insert(u(to), entry);
        Ok(())
    })())
}

/// `fd_seek`: moves a file's position and returns it. Standard streams lack `FD_SEEK`:
/// `ENOTCAPABLE`.
pub fn fd_seek(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    offset: i64,
    whence: i32,
    newoffset: i32,
) -> HostResult {
    errno((|| {
        let whence = match whence {
            0 => Whence::Set,
            1 => Whence::Cur,
            2 => Whence::End,
            _ => return Err(Errno::Inval),
        };
        let position = match ctx.descriptor_mut(fd)? {
            Descriptor::Fs(handle) => handle.seek(offset, whence)?,
            stream => return require(stream, Rights::FD_SEEK).and(Err(Errno::Spipe)),
        };
        mem.write_u64(u(newoffset), position)
    })())
}

/// `fd_tell`: a file's position. Standard streams lack `FD_TELL`: `ENOTCAPABLE`.
pub fn fd_tell(ctx: &mut WasiCtx, mem: &mut GuestMemory<'_>, fd: i32, offset: i32) -> HostResult {
    errno((|| {
        let position = match ctx.descriptor(fd)? {
            Descriptor::Fs(handle) => handle.tell()?,
            stream => return require(stream, Rights::FD_TELL).and(Err(Errno::Spipe)),
        };
        mem.write_u64(u(offset), position)
    })())
}

/// `fd_write`: writes the guest's iovecs. Output to stdout/stderr counts against the output
/// limit; passing it ends the instance with [`Termination::OutputLimit`]. A file is written at
/// its position (at its end in append mode); if a quota stops the write after some bytes, the
/// count so far is returned, as POSIX does for a short write.
pub fn fd_write(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> HostResult {
    let stream = match (|| {
        let descriptor = ctx.descriptor_mut(fd)?;
        require(descriptor, Rights::FD_WRITE)?;
        let iovs = mem.read_iovecs(u(iovs), u(iovs_len))?;
        mem.check_iovecs(&iovs)?;
        let stream = match descriptor {
            Descriptor::Fs(handle) => {
                let mut total = 0u32;
                for iov in &iovs {
                    match handle.write(mem.slice(iov.ptr, iov.len)?) {
                        Ok(n) => total += n as u32,
                        Err(_) if total > 0 => break,
                        Err(e) => return Err(e),
                    }
                }
                mem.write_u32(u(nwritten), total)?;
                return Ok(None);
            }
            Descriptor::Stream { stream, .. } => *stream,
        };
        if stream == Stream::Stdin {
            return Err(Errno::Badf);
        }
        Ok(Some((stream, iovs)))
    })() {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(0),
        Err(e) => return Ok(e.raw()),
    };
    let (stream, iovs) = stream;
    let mut total = 0u32;
    for iov in &iovs {
        // In bounds: `check_iovecs` passed above.
        let data = match mem.slice(iov.ptr, iov.len) {
            Ok(data) => data,
            Err(e) => return Ok(e.raw()),
        };
        if let Err(e) = ctx.write_output(stream, data)? {
            return Ok(e.raw());
        }
        total += iov.len;
    }
    errno(mem.write_u32(u(nwritten), total))
}

/// `path_create_directory`: `mkdir` beneath directory `fd`.
pub fn path_create_directory(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    path: i32,
    len: i32,
) -> HostResult {
    errno((|| {
        let dir = ctx.directory(fd)?;
        dir.create_directory(&read_path(mem, path, len)?)
    })())
}

/// `path_filestat_get`: attributes of what `path` names (`flags` may ask to follow a final
/// link).
pub fn path_filestat_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    flags: i32,
    path: i32,
    len: i32,
    stat: i32,
) -> HostResult {
    errno((|| {
        let dir = ctx.directory(fd)?;
        let filestat = dir.filestat_at(u(flags), &read_path(mem, path, len)?)?;
        mem.write(u(stat), &filestat.to_bytes())
    })())
}

/// `path_filestat_set_times`.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_filestat_set_times(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    flags: i32,
    path: i32,
    len: i32,
    atim: i64,
    mtim: i64,
    fst: i32,
) -> HostResult {
    errno((|| {
        let fst = flags16(fst)?;
        let dir = ctx.directory(fd)?;
        let path = read_path(mem, path, len)?;
        dir.set_times_at(u(flags), &path, atim as u64, mtim as u64, fst)
    })())
}

/// `path_link`: a hard link.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_link(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    old_fd: i32,
    old_flags: i32,
    old_path: i32,
    old_len: i32,
    new_fd: i32,
    new_path: i32,
    new_len: i32,
) -> HostResult {
    errno((|| {
        let old_dir = ctx.directory(old_fd)?;
        let new_dir = ctx.directory(new_fd)?;
        let old_path = read_path(mem, old_path, old_len)?;
        let new_path = read_path(mem, new_path, new_len)?;
        old_dir.link(u(old_flags), &old_path, new_dir, &new_path)
    })())
}

/// `path_open`: opens a file or directory beneath `fd` and gives it the lowest free
/// descriptor number. See [`crate::fs::Handle::open_at`] for the rights rules.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_open(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    dirflags: i32,
    path: i32,
    len: i32,
    oflags: i32,
    base: i64,
    inheriting: i64,
    fdflags: i32,
    opened: i32,
) -> HostResult {
    errno((|| {
        let oflags = flags16(oflags)?;
        let fdflags = flags16(fdflags)?;
        // Check where the new number goes first, so a bad pointer opens (and creates) nothing.
        mem.slice(u(opened), 4)?;
        let dir = ctx.directory(fd)?;
        let path = read_path(mem, path, len)?;
        let handle = dir.open_at(
            u(dirflags),
            &path,
            oflags,
            Rights(base as u64),
            Rights(inheriting as u64),
            fdflags,
        )?;
        let new_fd = ctx.free_fd()?;
        ctx.fds.insert(new_fd, Descriptor::Fs(handle));
        mem.write_u32(u(opened), new_fd)
    })())
}

/// `path_readlink`: the target of a symbolic link, cut to the buffer (unterminated).
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_readlink(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    path: i32,
    len: i32,
    buf: i32,
    buf_len: i32,
    used: i32,
) -> HostResult {
    errno((|| {
        let dir = ctx.directory(fd)?;
        let target = dir.readlink(&read_path(mem, path, len)?)?;
        let n = target.len().min(u(buf_len) as usize);
        mem.write(u(buf), &target.as_bytes()[..n])?;
        mem.write_u32(u(used), n as u32)
    })())
}

/// `path_remove_directory`: `rmdir` beneath `fd`.
pub fn path_remove_directory(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    path: i32,
    len: i32,
) -> HostResult {
    errno((|| {
        let dir = ctx.directory(fd)?;
        dir.remove_directory(&read_path(mem, path, len)?)
    })())
}

/// `path_rename`.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_rename(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    old: i32,
    old_len: i32,
    new_fd: i32,
    new: i32,
    new_len: i32,
) -> HostResult {
    errno((|| {
        let old_dir = ctx.directory(fd)?;
        let new_dir = ctx.directory(new_fd)?;
        let old_path = read_path(mem, old, old_len)?;
        let new_path = read_path(mem, new, new_len)?;
        old_dir.rename(&old_path, new_dir, &new_path)
    })())
}

/// `path_symlink`: a symbolic link at `new` (beneath `fd`) whose target is `old`.
pub fn path_symlink(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    old: i32,
    old_len: i32,
    fd: i32,
    new: i32,
    new_len: i32,
) -> HostResult {
    errno((|| {
        let dir = ctx.directory(fd)?;
        let target = read_path(mem, old, old_len)?;
        dir.symlink(&target, &read_path(mem, new, new_len)?)
    })())
}

/// `path_unlink_file`.
pub fn path_unlink_file(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    path: i32,
    len: i32,
) -> HostResult {
    errno((|| {
        let dir = ctx.directory(fd)?;
        dir.unlink_file(&read_path(mem, path, len)?)
    })())
}

const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const SUBCLOCKFLAG_ABSTIME: u16 = 1;
const EVENTRWFLAG_HANGUP: u16 = 1;

struct Event {
    userdata: u64,
    error: Errno,
    kind: u8,
    nbytes: u64,
    flags: u16,
}

impl Event {
    fn to_bytes(&self) -> [u8; EVENT_SIZE as usize] {
        let mut out = [0u8; EVENT_SIZE as usize];
        out[0..8].copy_from_slice(&self.userdata.to_le_bytes());
        out[8..10].copy_from_slice(&(self.error as u16).to_le_bytes());
        out[10] = self.kind;
        out[16..24].copy_from_slice(&self.nbytes.to_le_bytes());
        out[24..26].copy_from_slice(&self.flags.to_le_bytes());
        out
    }
}

/// `poll_oneoff`: waits for clock timeouts and descriptor readiness. Standard streams are
/// always ready (stdin holds all its bytes up front; output is accepted at once), so the call
/// sleeps only when every subscription is a clock. The sleep never passes the run's deadline:
/// if the deadline comes first, the instance ends with [`Termination::Timeout`].
pub fn poll_oneoff(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    subs: i32,
    events: i32,
    nsubs: i32,
    nevents: i32,
) -> HostResult {
    let nsubs = u(nsubs);
    if nsubs == 0 {
        return Ok(Errno::Inval.raw());
    }
    if nsubs > MAX_POLL_SUBSCRIPTIONS {
        return Ok(Errno::Inval.raw());
    }
    let table = match mem.slice(u(subs), nsubs * SUBSCRIPTION_SIZE) {
        Ok(table) => table.to_vec(),
        Err(e) => return Ok(e.raw()),
    };
    if let Err(e) = mem.slice(u(events), nsubs * EVENT_SIZE) {
        return Ok(e.raw());
    }
    let mut ready = Vec::new();
    // The earliest clock subscription: (when it fires, its userdata).
    let mut timers: Vec<(Instant, u64)> = Vec::new();
    let start = Instant::now();
    for sub in table.chunks_exact(SUBSCRIPTION_SIZE as usize) {
        let le64 = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&sub[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let userdata = le64(0);
        let tag = sub[8];
        let event = |error, kind| Event {
            userdata,
            error,
            kind,
            nbytes: 0,
            flags: 0,
        };
        match tag {
            EVENTTYPE_CLOCK => {
                let id = u32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
                let timeout = le64(24);
                let flags = u16::from_le_bytes([sub[40], sub[41]]);
                let clock = match ClockId::from_raw(id) {
                    Some(clock) => clock,
                    None => {
                        ready.push(event(Errno::Inval, EVENTTYPE_CLOCK));
                        continue;
                    }
                };
                let now = match ctx.now(clock) {
                    Ok(now) => now,
                    Err(e) => {
                        ready.push(event(e, EVENTTYPE_CLOCK));
                        continue;
                    }
                };
                let wait = if flags & SUBCLOCKFLAG_ABSTIME != 0 {
                    timeout.saturating_sub(now)
                } else {
                    timeout
                };
                let when = start
                    .checked_add(Duration::from_nanos(wait))
                    .unwrap_or(far_future(start));
                timers.push((when, userdata));
            }
            EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => {
                let fd = i32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
                let mut ev = event(Errno::Success, tag);
                match ctx.descriptor(fd) {
                    Err(e) => ev.error = e,
                    Ok(Descriptor::Fs(handle)) => {
                        // Files are always ready: a read reports what is left to read.
                        let readiness = if tag == EVENTTYPE_FD_READ {
                            handle.readable_bytes()
                        } else {
                            handle.check_pollable().map(|()| 0)
                        };
                        match readiness {
                            Ok(nbytes) => ev.nbytes = nbytes,
                            Err(e) => ev.error = e,
                        }
                    }
                    Ok(stream) => match (
                        require(stream, Rights::POLL_FD_READWRITE),
                        stream.stream(),
                        tag,
                    ) {
                        (Err(e), _, _) => ev.error = e,
                        (Ok(()), Some(Stream::Stdin), EVENTTYPE_FD_READ) => {
                            ev.nbytes = ctx.stdin_remaining();
                            if ev.nbytes == 0 {
                                ev.flags = EVENTRWFLAG_HANGUP;
                            }
                        }
                        (Ok(()), Some(Stream::Stdout | Stream::Stderr), EVENTTYPE_FD_WRITE) => {}
                        _ => ev.error = Errno::Badf,
                    },
                }
                ready.push(ev);
            }
            _ => ready.push(event(Errno::Inval, tag)),
        }
    }
    if ready.is_empty() {
        // Only clocks: sleep until the first one fires, but never past the deadline.
        let Some(&(first, _)) = timers.iter().min_by_key(|(when, _)| *when) else {
            return Ok(Errno::Inval.raw());
        };
        let wake = match ctx.deadline() {
            Some(deadline) if deadline < first => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return Err(Termination::Timeout);
            }
            _ => first,
        };
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        let now = Instant::now();
        for (when, userdata) in &timers {
            if *when <= now {
                ready.push(Event {
                    userdata: *userdata,
                    error: Errno::Success,
                    kind: EVENTTYPE_CLOCK,
                    nbytes: 0,
                    flags: 0,
                });
            }
        }
    }
    errno((|| {
        for (i, ev) in ready.iter().enumerate() {
            mem.write(u(events) + i as u32 * EVENT_SIZE, &ev.to_bytes())?;
        }
        mem.write_u32(u(nevents), ready.len() as u32)
    })())
}

fn far_future(start: Instant) -> Instant {
    // About 30 years: later than any deadline a run can have.
    start + Duration::from_secs(1 << 30)
}

/// `proc_exit`: ends the instance with the given exit code.
pub fn proc_exit(
    _ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    code: i32,
) -> Result<(), Termination> {
    Err(Termination::Exit(u(code)))
}

/// `proc_raise`: `ENOSYS`; a guest cannot raise signals.
pub fn proc_raise(_ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, _signal: i32) -> HostResult {
    Ok(Errno::Nosys.raw())
}

/// `sched_yield`: gives up the host thread's time slice.
pub fn sched_yield(_ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>) -> HostResult {
    std::thread::yield_now();
    Ok(0)
}

/// `random_get`: fills the buffer from the operating system's CSPRNG. `ENOTCAPABLE` when
/// randomness is not allowed.
pub fn random_get(ctx: &mut WasiCtx, mem: &mut GuestMemory<'_>, buf: i32, len: i32) -> HostResult {
    use ring::rand::SecureRandom;
    errno((|| {
        if !ctx.random_allowed {
            return Err(Errno::Notcapable);
        }
        let out = mem.slice_mut(u(buf), u(len))?;
        ring::rand::SystemRandom::new()
            .fill(out)
            .map_err(|_| Errno::Io)
    })())
}

fn not_a_socket(ctx: &WasiCtx, fd: i32) -> HostResult {
    errno(ctx.descriptor(fd).and(Err(Errno::Notsock)))
}

/// `sock_accept`: `EBADF` or `ENOTSOCK`; Covenant gives guests no sockets.
pub fn sock_accept(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _flags: i32,
    _opened: i32,
) -> HostResult {
    not_a_socket(ctx, fd)
}

/// `sock_recv`: `EBADF` or `ENOTSOCK`.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn sock_recv(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _data: i32,
    _len: i32,
    _flags: i32,
    _datalen: i32,
    _oflags: i32,
) -> HostResult {
    not_a_socket(ctx, fd)
}

/// `sock_send`: `EBADF` or `ENOTSOCK`.
pub fn sock_send(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _data: i32,
    _len: i32,
    _flags: i32,
    _datalen: i32,
) -> HostResult {
    not_a_socket(ctx, fd)
}

/// `sock_shutdown`: `EBADF` or `ENOTSOCK`.
pub fn sock_shutdown(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _how: i32,
) -> HostResult {
    not_a_socket(ctx, fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> WasiCtx {
        WasiCtx::builder("prog")
            .args(["one", "two"])
            .env("K", "V")
            .build()
            .unwrap()
    }

    #[test]
    fn every_import_is_listed_once_with_its_signature() {
        assert_eq!(SIGNATURES.len(), 46);
        let mut names: Vec<_> = SIGNATURES.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 46);
        let exit = signature("proc_exit").unwrap();
        assert_eq!((exit.params, exit.results), (&[ValType::I32][..], &[][..]));
        let time = signature("clock_time_get").unwrap();
        assert_eq!(time.params, &[ValType::I32, ValType::I64, ValType::I32]);
    }

    #[test]
    fn args_and_environment_reach_guest_memory() {
        let mut ctx = ctx();
        let mut bytes = vec![0u8; 256];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(args_sizes_get(&mut ctx, &mut mem, 0, 4), Ok(0));
        assert_eq!((mem.read_u32(0), mem.read_u32(4)), (Ok(3), Ok(13)));
        assert_eq!(args_get(&mut ctx, &mut mem, 16, 64), Ok(0));
        assert_eq!(mem.read_u32(20), Ok(69));
        assert_eq!(mem.slice(64, 13).unwrap(), b"prog\0one\0two\0");
        assert_eq!(environ_get(&mut ctx, &mut mem, 16, 128), Ok(0));
        assert_eq!(mem.slice(128, 4).unwrap(), b"K=V\0");
    }

    #[test]
    fn pointers_past_memory_are_efault_not_panics() {
        let mut ctx = ctx();
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        let fault = Ok(Errno::Fault.raw());
        assert_eq!(args_get(&mut ctx, &mut mem, 62, 0), fault);
        assert_eq!(args_sizes_get(&mut ctx, &mut mem, -1, 0), fault);
        assert_eq!(clock_time_get(&mut ctx, &mut mem, 0, 0, 60), fault);
        assert_eq!(random_get(&mut ctx, &mut mem, 32, 33), fault);
        assert_eq!(fd_fdstat_get(&mut ctx, &mut mem, 1, 50), fault);
        // An iovec whose buffer runs past the end: nothing is written, EFAULT.
        mem.write_u32(0, 60).unwrap();
        mem.write_u32(4, 100).unwrap();
        assert_eq!(fd_write(&mut ctx, &mut mem, 1, 0, 1, 8), fault);
        assert!(ctx.take_stdout().is_empty());
        assert_eq!(ctx.output_bytes(), 0);
    }

    #[test]
    fn stdout_is_captured_and_capped() {
        let mut ctx = WasiCtx::builder("p").max_output_bytes(5).build().unwrap();
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        mem.write(32, b"abc").unwrap();
        mem.write_u32(0, 32).unwrap();
        mem.write_u32(4, 3).unwrap();
        assert_eq!(fd_write(&mut ctx, &mut mem, 1, 0, 1, 8), Ok(0));
        assert_eq!(mem.read_u32(8), Ok(3));
        assert_eq!(
            fd_write(&mut ctx, &mut mem, 2, 0, 1, 8),
            Err(Termination::OutputLimit { limit: 5 })
        );
        assert_eq!(ctx.take_stdout(), b"abc");
        assert_eq!(ctx.take_stderr(), b"ab", "the part that fits is written");
        assert_eq!(
            fd_write(&mut ctx, &mut mem, 0, 0, 1, 8),
            Ok(Errno::Notcapable.raw())
        );
        assert_eq!(
            fd_write(&mut ctx, &mut mem, 9, 0, 1, 8),
            Ok(Errno::Badf.raw())
        );
    }

    #[test]
    fn clock_and_random_obey_their_switches() {
        let mut denied = WasiCtx::builder("p")
            .allow_clock(false)
            .allow_random(false)
            .build()
            .unwrap();
        let mut allowed = ctx();
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        let notcap = Ok(Errno::Notcapable.raw());
        assert_eq!(clock_time_get(&mut denied, &mut mem, 0, 0, 0), notcap);
        assert_eq!(clock_res_get(&mut denied, &mut mem, 1, 0), notcap);
        assert_eq!(random_get(&mut denied, &mut mem, 0, 32), notcap);
        assert_eq!(
            mem.slice(0, 32).unwrap(),
            &[0u8; 32],
            "nothing written when refused"
        );
        assert_eq!(random_get(&mut allowed, &mut mem, 0, 32), Ok(0));
        assert_ne!(mem.slice(0, 32).unwrap(), &[0u8; 32]);
        assert_eq!(clock_time_get(&mut allowed, &mut mem, 0, 0, 40), Ok(0));
        assert!(mem.read_u64(40).unwrap() > 1_600_000_000_000_000_000);
        assert_eq!(
            clock_time_get(&mut allowed, &mut mem, 7, 0, 40),
            Ok(Errno::Inval.raw())
        );
    }

    #[test]
    fn rights_only_shrink() {
        let mut ctx = ctx();
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        let all = Rights::ALL.0 as i64;
        assert_eq!(
            fd_fdstat_set_rights(&mut ctx, &mut mem, 1, all, 0),
            Ok(Errno::Notcapable.raw())
        );
        assert_eq!(fd_fdstat_set_rights(&mut ctx, &mut mem, 1, 0, 0), Ok(0));
        assert_eq!(
            fd_fdstat_set_rights(&mut ctx, &mut mem, 1, Rights::FD_WRITE.0 as i64, 0),
            Ok(Errno::Notcapable.raw())
        );
        mem.write_u32(0, 32).unwrap();
        mem.write_u32(4, 1).unwrap();
        assert_eq!(
            fd_write(&mut ctx, &mut mem, 1, 0, 1, 8),
            Ok(Errno::Notcapable.raw())
        );
    }

    #[test]
    fn stdin_reads_then_reports_end_of_file() {
        let mut ctx = WasiCtx::builder("p")
            .stdin(b"hello".to_vec())
            .build()
            .unwrap();
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        mem.write_u32(0, 32).unwrap();
        mem.write_u32(4, 3).unwrap();
        assert_eq!(fd_read(&mut ctx, &mut mem, 0, 0, 1, 8), Ok(0));
        assert_eq!(
            (mem.read_u32(8), mem.slice(32, 3).unwrap()),
            (Ok(3), &b"hel"[..])
        );
        assert_eq!(fd_read(&mut ctx, &mut mem, 0, 0, 1, 8), Ok(0));
        assert_eq!(mem.read_u32(8), Ok(2));
        assert_eq!(fd_read(&mut ctx, &mut mem, 0, 0, 1, 8), Ok(0));
        assert_eq!(mem.read_u32(8), Ok(0));
    }

    #[test]
    fn sleeping_past_the_deadline_ends_the_instance() {
        let mut ctx = ctx();
        ctx.set_deadline(Instant::now() + Duration::from_millis(20));
        let mut bytes = vec![0u8; 256];
        let mut mem = GuestMemory::new(&mut bytes);
        // One relative clock subscription of 10 s on the monotonic clock.
        mem.write_u64(0, 7).unwrap();
        mem.write_u32(16, 1).unwrap();
        mem.write_u64(24, 10_000_000_000).unwrap();
        // The 10 s sleep ends at the deadline instead: the instance is told it timed out.
        assert_eq!(
            poll_oneoff(&mut ctx, &mut mem, 0, 64, 1, 200),
            Err(Termination::Timeout)
        );
        // A short sleep inside the deadline returns its event.
        ctx.set_deadline(Instant::now() + Duration::from_secs(60));
        mem.write_u64(24, 1_000_000).unwrap();
        assert_eq!(poll_oneoff(&mut ctx, &mut mem, 0, 64, 1, 200), Ok(0));
        assert_eq!((mem.read_u32(200), mem.read_u64(64)), (Ok(1), Ok(7)));
    }

    fn fs_ctx() -> (WasiCtx, crate::fs::FileSystem) {
        use crate::fs::{Access, CapabilityTable, FileSystem};
        let fs = FileSystem::default();
        fs.create_dir_all("/data").unwrap();
        let table = CapabilityTable::new()
            .with("/data", Access::READ_WRITE)
            .unwrap();
        let ctx = WasiCtx::builder("p")
            .file_system(fs.view(&table).unwrap())
            .build()
            .unwrap();
        (ctx, fs)
    }

    /// Puts `text` at `ptr` and returns (ptr, len) as the ABI passes them.
    fn put_str(mem: &mut GuestMemory<'_>, ptr: u32, text: &str) -> (i32, i32) {
        mem.write(ptr, text.as_bytes()).unwrap();
        (ptr as i32, text.len() as i32)
    }

    #[test]
    fn preopens_are_described_and_files_round_trip_through_guest_memory() {
        let (mut ctx, _fs) = fs_ctx();
        let mut bytes = vec![0u8; 1024];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(fd_prestat_get(&mut ctx, &mut mem, 3, 0), Ok(0));
        assert_eq!((mem.read_u8(0), mem.read_u32(4)), (Ok(0), Ok(5)));
        assert_eq!(
            fd_prestat_dir_name(&mut ctx, &mut mem, 3, 16, 4),
            Ok(Errno::Nametoolong.raw())
        );
        assert_eq!(fd_prestat_dir_name(&mut ctx, &mut mem, 3, 16, 9), Ok(0));
        assert_eq!(mem.slice(16, 5).unwrap(), b"/data");
        assert_eq!(
            fd_prestat_get(&mut ctx, &mut mem, 1, 0),
            Ok(Errno::Badf.raw())
        );
        assert_eq!(
            fd_prestat_get(&mut ctx, &mut mem, 4, 0),
            Ok(Errno::Badf.raw())
        );
        // Create a file, write through an iovec, read it back.
        let (p, l) = put_str(&mut mem, 100, "f.txt");
        let rights = (Rights::FD_READ | Rights::FD_WRITE | Rights::FD_SEEK).0 as i64;
        let creat = crate::types::oflags::CREAT as i32;
        assert_eq!(
            path_open(&mut ctx, &mut mem, 3, 0, p, l, creat, rights, 0, 0, 200),
            Ok(0)
        );
        let fd = mem.read_u32(200).unwrap() as i32;
        assert_eq!(fd, 4, "the lowest free number");
        mem.write(300, b"hello").unwrap();
        mem.write_u32(400, 300).unwrap();
        mem.write_u32(404, 5).unwrap();
        assert_eq!(fd_write(&mut ctx, &mut mem, fd, 400, 1, 408), Ok(0));
        assert_eq!(mem.read_u32(408), Ok(5));
        assert_eq!(fd_seek(&mut ctx, &mut mem, fd, 1, 0, 416), Ok(0));
        assert_eq!(mem.read_u64(416), Ok(1));
        mem.write_u32(400, 500).unwrap();
        mem.write_u32(404, 10).unwrap();
        assert_eq!(fd_read(&mut ctx, &mut mem, fd, 400, 1, 408), Ok(0));
        assert_eq!(
            (mem.read_u32(408), mem.slice(500, 4).unwrap()),
            (Ok(4), &b"ello"[..])
        );
        assert_eq!(ctx.output_bytes(), 0, "file writes are not output");
        assert_eq!(fd_close(&mut ctx, &mut mem, fd), Ok(0));
        assert_eq!(fd_close(&mut ctx, &mut mem, fd), Ok(Errno::Badf.raw()));
    }

    #[test]
    fn path_arguments_are_checked_before_anything_happens() {
        let (mut ctx, fs) = fs_ctx();
        let mut bytes = vec![0u8; 256];
        let mut mem = GuestMemory::new(&mut bytes);
        let before = fs.usage().unwrap();
        // A path past the end of memory, a non-UTF-8 path, a huge length.
        assert_eq!(
            path_create_directory(&mut ctx, &mut mem, 3, 250, 10),
            Ok(Errno::Fault.raw())
        );
        mem.write(0, &[0x66, 0xff]).unwrap();
        assert_eq!(
            path_create_directory(&mut ctx, &mut mem, 3, 0, 2),
            Ok(Errno::Ilseq.raw())
        );
        assert_eq!(
            path_create_directory(&mut ctx, &mut mem, 3, 0, -1),
            Ok(Errno::Nametoolong.raw())
        );
        // A bad result pointer: nothing is created and no descriptor is left open.
        let (p, l) = put_str(&mut mem, 0, "new");
        let creat = crate::types::oflags::CREAT as i32;
        assert_eq!(
            path_open(&mut ctx, &mut mem, 3, 0, p, l, creat, 0, 0, 0, 254),
            Ok(Errno::Fault.raw())
        );
        assert_eq!(fs.usage().unwrap(), before);
        assert_eq!(ctx.fds.len(), 4);
        // Standard streams are not directories; closed numbers are EBADF.
        assert_eq!(
            path_create_directory(&mut ctx, &mut mem, 1, p, l),
            Ok(Errno::Notdir.raw())
        );
        assert_eq!(
            path_create_directory(&mut ctx, &mut mem, 9, p, l),
            Ok(Errno::Badf.raw())
        );
    }

    #[test]
    fn readdir_cuts_the_last_entry_at_the_end_of_the_buffer() {
        let (mut ctx, _fs) = fs_ctx();
        let mut bytes = vec![0u8; 512];
        let mut mem = GuestMemory::new(&mut bytes);
        let (p, l) = put_str(&mut mem, 0, "subdirectory");
        assert_eq!(path_create_directory(&mut ctx, &mut mem, 3, p, l), Ok(0));
        // "." (25 bytes) + ".." (26) + 24-byte header + 12-byte name = 87.
        assert_eq!(fd_readdir(&mut ctx, &mut mem, 3, 100, 300, 0, 96), Ok(0));
        assert_eq!(mem.read_u32(96), Ok(87));
        assert_eq!(mem.slice(100 + 75, 12).unwrap(), b"subdirectory");
        assert_eq!(fd_readdir(&mut ctx, &mut mem, 3, 100, 60, 0, 96), Ok(0));
        assert_eq!(mem.read_u32(96), Ok(60), "a full buffer means: ask again");
        let next = mem.read_u64(100 + 25 + 26).unwrap_or(0);
        assert_eq!(
            mem.read_u64(100 + 25),
            Ok(2),
            "`..`'s cookie resumes after it"
        );
        assert_ne!(next, 0);
        assert_eq!(
            fd_readdir(&mut ctx, &mut mem, 1, 100, 60, 0, 96),
            Ok(Errno::Notcapable.raw())
        );
    }

    #[test]
    fn poll_reports_files_ready_with_the_bytes_left_to_read() {
        let (mut ctx, _fs) = fs_ctx();
        let mut bytes = vec![0u8; 1024];
        let mut mem = GuestMemory::new(&mut bytes);
        let (p, l) = put_str(&mut mem, 900, "f");
        let rights =
            (Rights::FD_READ | Rights::FD_WRITE | Rights::FD_SEEK | Rights::POLL_FD_READWRITE).0
                as i64;
        let creat = crate::types::oflags::CREAT as i32;
        assert_eq!(
            path_open(&mut ctx, &mut mem, 3, 0, p, l, creat, rights, 0, 0, 950),
            Ok(0)
        );
        let fd = mem.read_u32(950).unwrap();
        mem.write(800, b"0123456789").unwrap();
        mem.write_u32(780, 800).unwrap();
        mem.write_u32(784, 10).unwrap();
        assert_eq!(fd_write(&mut ctx, &mut mem, fd as i32, 780, 1, 790), Ok(0));
        assert_eq!(fd_seek(&mut ctx, &mut mem, fd as i32, 4, 0, 790), Ok(0));
        // Two subscriptions: read and write readiness of the file.
        for (i, tag) in [EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE]
            .into_iter()
            .enumerate()
        {
            let at = i as u32 * SUBSCRIPTION_SIZE;
            mem.write_u64(at, 10 + i as u64).unwrap();
            mem.write(at + 8, &[tag]).unwrap();
            mem.write_u32(at + 16, fd).unwrap();
        }
        assert_eq!(poll_oneoff(&mut ctx, &mut mem, 0, 200, 2, 500), Ok(0));
        assert_eq!(mem.read_u32(500), Ok(2), "files never block");
        assert_eq!((mem.read_u64(200), mem.read_u16(208)), (Ok(10), Ok(0)));
        assert_eq!(mem.read_u64(200 + 16), Ok(6), "ten bytes, position four");
        assert_eq!((mem.read_u64(232), mem.read_u16(240)), (Ok(11), Ok(0)));
        // Without POLL_FD_READWRITE the event carries ENOTCAPABLE.
        let rights = Rights::FD_READ.0 as i64;
        assert_eq!(
            path_open(&mut ctx, &mut mem, 3, 0, p, l, 0, rights, 0, 0, 950),
            Ok(0)
        );
        let bare = mem.read_u32(950).unwrap();
        mem.write_u32(16, bare).unwrap();
        assert_eq!(poll_oneoff(&mut ctx, &mut mem, 0, 200, 1, 500), Ok(0));
        assert_eq!(mem.read_u16(208), Ok(Errno::Notcapable as u16));
    }

    #[test]
    fn a_renumbered_stdout_still_writes_to_stdout() {
        let (mut ctx, _fs) = fs_ctx();
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        mem.write(32, b"out").unwrap();
        mem.write_u32(0, 32).unwrap();
        mem.write_u32(4, 3).unwrap();
        assert_eq!(fd_renumber(&mut ctx, &mut mem, 1, 3), Ok(0));
        assert_eq!(fd_write(&mut ctx, &mut mem, 3, 0, 1, 8), Ok(0));
        assert_eq!(
            fd_write(&mut ctx, &mut mem, 1, 0, 1, 8),
            Ok(Errno::Badf.raw())
        );
        assert_eq!(ctx.take_stdout(), b"out");
        assert!(ctx.take_stderr().is_empty());
    }

    #[test]
    fn a_renumbered_descriptor_keeps_the_preopen_it_descends_from() {
        use crate::fs::{Access, CapabilityTable, FileSystem};
        let fs = FileSystem::default();
        let table = CapabilityTable::new()
            .with("/a", Access::READ_WRITE)
            .unwrap()
            .with("/b", Access::READ_WRITE)
            .unwrap();
        for dir in ["/a/sub", "/b/sub"] {
            fs.create_dir_all(dir).unwrap();
        }
        fs.view(&table)
            .unwrap()
            .write_file("/a/sub/f", &b"a's"[..])
            .unwrap();
        let mut ctx = WasiCtx::builder("p")
            .file_system(fs.view(&table).unwrap())
            .build()
            .unwrap();
        let mut bytes = vec![0u8; 256];
        let mut mem = GuestMemory::new(&mut bytes);
        let (sub, sub_len) = put_str(&mut mem, 0, "sub");
        let dir = crate::types::oflags::DIRECTORY as i32;
        let base = crate::fs::caps::DIRECTORY_RIGHTS.0 as i64;
        let all = Rights::ALL.0 as i64;
        // /a/sub becomes 5, /b/sub 6; then 5 moves onto 6.
        for (pre, expected) in [(3, 5), (4, 6)] {
            assert_eq!(
                path_open(
                    &mut ctx, &mut mem, pre, 0, sub, sub_len, dir, base, all, 0, 200
                ),
                Ok(0)
            );
            assert_eq!(mem.read_u32(200), Ok(expected));
        }
        assert_eq!(fd_renumber(&mut ctx, &mut mem, 5, 6), Ok(0));
        let (f, f_len) = put_str(&mut mem, 16, "f");
        let (g, g_len) = put_str(&mut mem, 32, "g");
        let xdev = Errno::Xdev.raw();
        assert_eq!(
            path_link(&mut ctx, &mut mem, 6, 0, f, f_len, 4, g, g_len),
            Ok(xdev),
            "descriptor 6 is still /a's"
        );
        assert_eq!(
            path_rename(&mut ctx, &mut mem, 6, f, f_len, 4, g, g_len),
            Ok(xdev)
        );
        assert_eq!(
            path_link(&mut ctx, &mut mem, 6, 0, f, f_len, 3, g, g_len),
            Ok(0)
        );
        let listing = fs.view(&table).unwrap().list_dir("/b/sub").unwrap();
        assert!(listing.is_empty(), "nothing reached /b: {listing:?}");
    }

    #[test]
    fn sockets_are_never_there() {
        let mut ctx = ctx();
        let mut bytes = vec![0u8; 8];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(
            sock_shutdown(&mut ctx, &mut mem, 1, 0),
            Ok(Errno::Notsock.raw())
        );
        assert_eq!(
            sock_shutdown(&mut ctx, &mut mem, 42, 0),
            Ok(Errno::Badf.raw())
        );
        assert_eq!(proc_raise(&mut ctx, &mut mem, 9), Ok(Errno::Nosys.raw()));
        assert_eq!(
            proc_exit(&mut ctx, &mut mem, -1),
            Err(Termination::Exit(u32::MAX))
        );
    }
}
