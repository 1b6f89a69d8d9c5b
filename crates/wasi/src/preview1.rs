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
//! # What this file does not do yet
//! No descriptor here is a file or directory: the in-memory file system binds to the same
//! descriptor table (`ctx.fds`). Until a context has preopens, path functions answer as POSIX
//! would for a process with no directories open: `EBADF` for descriptors that are not open,
//! `ENOTDIR`/`ENOTCAPABLE` for the standard streams.
//!
//! # Sockets and signals
//! Preview1 has no way to create a socket, and Covenant never hands a guest one, so the four
//! `sock_*` functions answer `EBADF` for a descriptor that is not open and `ENOTSOCK` for one
//! that is (what the official test suite expects). `proc_raise` answers `ENOSYS`: a guest
//! cannot signal anything.

use std::time::{Duration, Instant};

use crate::ctx::{Descriptor, FdEntry, Termination, WasiCtx};
use crate::memory::GuestMemory;
use crate::types::{ClockId, Errno, Fdstat, Filestat, Rights, Whence, fdflags};

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
    /// The descriptor `fd`, if open and holding every right in `required`.
    fn entry(&self, fd: i32, required: Rights) -> Result<&FdEntry, Errno> {
        let entry = self.fds.get(&u(fd)).ok_or(Errno::Badf)?;
        if !entry.rights_base.contains(required) {
            return Err(Errno::Notcapable);
        }
        Ok(entry)
    }

    fn entry_mut(&mut self, fd: i32, required: Rights) -> Result<&mut FdEntry, Errno> {
        let entry = self.fds.get_mut(&u(fd)).ok_or(Errno::Badf)?;
        if !entry.rights_base.contains(required) {
            return Err(Errno::Notcapable);
        }
        Ok(entry)
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

/// The errno a standard stream gives for an operation that needs a seekable file.
fn stream_errno(entry: &FdEntry) -> Errno {
    match entry.descriptor {
        Descriptor::Stdin | Descriptor::Stdout | Descriptor::Stderr => Errno::Spipe,
    }
}

/// `fd_advise`. Standard streams: `ESPIPE`.
pub fn fd_advise(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _offset: i64,
    _len: i64,
    advice: i32,
) -> HostResult {
    errno((|| {
        let entry = ctx.entry(fd, Rights::FD_ADVISE)?;
        if !(0..=5).contains(&advice) {
            return Err(Errno::Inval);
        }
        Err(stream_errno(entry))
    })())
}

/// `fd_allocate`. Standard streams: `ESPIPE`.
pub fn fd_allocate(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _offset: i64,
    _len: i64,
) -> HostResult {
    errno(
        ctx.entry(fd, Rights::FD_ALLOCATE)
            .and_then(|entry| Err(stream_errno(entry))),
    )
}

/// `fd_close`: closes a descriptor.
pub fn fd_close(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32) -> HostResult {
    errno(ctx.fds.remove(&u(fd)).map(drop).ok_or(Errno::Badf))
}

/// `fd_datasync`. Standard streams: `EINVAL`, as `fdatasync` on a pipe.
pub fn fd_datasync(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32) -> HostResult {
    errno(
        ctx.entry(fd, Rights::FD_DATASYNC)
            .and_then(|_| Err(Errno::Inval)),
    )
}

/// `fd_sync`. Standard streams: `EINVAL`, as `fsync` on a pipe.
pub fn fd_sync(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32) -> HostResult {
    errno(
        ctx.entry(fd, Rights::FD_SYNC)
            .and_then(|_| Err(Errno::Inval)),
    )
}

/// `fd_fdstat_get`: type, flags and rights of a descriptor.
pub fn fd_fdstat_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    stat: i32,
) -> HostResult {
    errno((|| {
        let entry = ctx.entry(fd, Rights::NONE)?;
        let fdstat = Fdstat {
            filetype: entry.filetype(),
            flags: entry.flags,
            rights_base: entry.rights_base,
            rights_inheriting: entry.rights_inheriting,
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
        let flags = u16::try_from(flags).map_err(|_| Errno::Inval)?;
        if flags & !fdflags::ALL != 0 {
            return Err(Errno::Inval);
        }
        ctx.entry_mut(fd, Rights::FD_FDSTAT_SET_FLAGS)?.flags = flags;
        Ok(())
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
        let entry = ctx.entry_mut(fd, Rights::NONE)?;
        let base = Rights(base as u64);
        let inheriting = Rights(inheriting as u64);
        if !entry.rights_base.contains(base) || !entry.rights_inheriting.contains(inheriting) {
            return Err(Errno::Notcapable);
        }
        entry.rights_base = base;
        entry.rights_inheriting = inheriting;
        Ok(())
    })())
}

/// `fd_filestat_get`: attributes of the open file.
pub fn fd_filestat_get(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    stat: i32,
) -> HostResult {
    errno((|| {
        let entry = ctx.entry(fd, Rights::FD_FILESTAT_GET)?;
        let filestat = Filestat {
            filetype: entry.filetype() as u8,
            ..Filestat::default()
        };
        mem.write(u(stat), &filestat.to_bytes())
    })())
}

/// `fd_filestat_set_size`. Standard streams lack the right: `ENOTCAPABLE`.
pub fn fd_filestat_set_size(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _size: i64,
) -> HostResult {
    errno(
        ctx.entry(fd, Rights::FD_FILESTAT_SET_SIZE)
            .and_then(|e| Err(stream_errno(e))),
    )
}

/// `fd_filestat_set_times`. Standard streams lack the right: `ENOTCAPABLE`.
pub fn fd_filestat_set_times(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _atim: i64,
    _mtim: i64,
    _flags: i32,
) -> HostResult {
    errno(
        ctx.entry(fd, Rights::FD_FILESTAT_SET_TIMES)
            .and_then(|e| Err(stream_errno(e))),
    )
}

/// `fd_pread`. Standard streams lack `FD_SEEK`: `ENOTCAPABLE`.
pub fn fd_pread(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _iovs: i32,
    _len: i32,
    _offset: i64,
    _nread: i32,
) -> HostResult {
    errno(
        ctx.entry(fd, Rights(Rights::FD_READ.0 | Rights::FD_SEEK.0))
            .and_then(|e| Err(stream_errno(e))),
    )
}

/// `fd_pwrite`. Standard streams lack `FD_SEEK`: `ENOTCAPABLE`.
pub fn fd_pwrite(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _iovs: i32,
    _len: i32,
    _offset: i64,
    _nwritten: i32,
) -> HostResult {
    errno(
        ctx.entry(fd, Rights(Rights::FD_WRITE.0 | Rights::FD_SEEK.0))
            .and_then(|e| Err(stream_errno(e))),
    )
}

/// `fd_prestat_get`: describes a preopened directory; `EBADF` for anything else.
pub fn fd_prestat_get(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _prestat: i32,
) -> HostResult {
    errno(ctx.entry(fd, Rights::NONE).and_then(|_| Err(Errno::Badf)))
}

/// `fd_prestat_dir_name`: the guest path of a preopened directory; `EBADF` for anything else.
pub fn fd_prestat_dir_name(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _path: i32,
    _len: i32,
) -> HostResult {
    errno(ctx.entry(fd, Rights::NONE).and_then(|_| Err(Errno::Badf)))
}

/// `fd_read`: reads into the guest's iovecs.
pub fn fd_read(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> HostResult {
    errno((|| {
        let entry = ctx.entry(fd, Rights::FD_READ)?;
        let iovs = mem.read_iovecs(u(iovs), u(iovs_len))?;
        mem.check_iovecs(&iovs)?;
        let total = match entry.descriptor {
            Descriptor::Stdin => {
                let mut total = 0u32;
                for iov in &iovs {
                    let n = ctx.read_stdin(mem.slice_mut(iov.ptr, iov.len)?);
                    total += n as u32;
                    if n < iov.len as usize {
                        break;
                    }
                }
                total
            }
            Descriptor::Stdout | Descriptor::Stderr => return Err(Errno::Badf),
        };
        mem.write_u32(u(nread), total)
    })())
}

/// `fd_readdir`. Standard streams lack `FD_READDIR`: `ENOTCAPABLE`.
pub fn fd_readdir(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _buf: i32,
    _len: i32,
    _cookie: i64,
    _used: i32,
) -> HostResult {
    errno(
        ctx.entry(fd, Rights::FD_READDIR)
            .and_then(|_| Err(Errno::Notdir)),
    )
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

/// `fd_seek`. Standard streams lack `FD_SEEK`: `ENOTCAPABLE`.
pub fn fd_seek(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _offset: i64,
    whence: i32,
    _newoffset: i32,
) -> HostResult {
    errno((|| {
        let entry = ctx.entry(fd, Rights::FD_SEEK)?;
        let _whence = match whence {
            0 => Whence::Set,
            1 => Whence::Cur,
            2 => Whence::End,
            _ => return Err(Errno::Inval),
        };
        Err(stream_errno(entry))
    })())
}

/// `fd_tell`. Standard streams lack `FD_TELL`: `ENOTCAPABLE`.
pub fn fd_tell(ctx: &mut WasiCtx, _mem: &mut GuestMemory<'_>, fd: i32, _offset: i32) -> HostResult {
    errno(
        ctx.entry(fd, Rights::FD_TELL)
            .and_then(|e| Err(stream_errno(e))),
    )
}

/// `fd_write`: writes the guest's iovecs. Output to stdout/stderr counts against the output
/// limit; passing it ends the instance with [`Termination::OutputLimit`].
pub fn fd_write(
    ctx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> HostResult {
    let iovs = match (|| {
        let entry = ctx.entry(fd, Rights::FD_WRITE)?;
        if matches!(entry.descriptor, Descriptor::Stdin) {
            return Err(Errno::Badf);
        }
        let iovs = mem.read_iovecs(u(iovs), u(iovs_len))?;
        mem.check_iovecs(&iovs)?;
        Ok(iovs)
    })() {
        Ok(iovs) => iovs,
        Err(e) => return Ok(e.raw()),
    };
    let mut total = 0u32;
    for iov in &iovs {
        // In bounds: `check_iovecs` passed above.
        let data = match mem.slice(iov.ptr, iov.len) {
            Ok(data) => data,
            Err(e) => return Ok(e.raw()),
        };
        if let Err(e) = ctx.write_output(u(fd), data)? {
            return Ok(e.raw());
        }
        total += iov.len;
    }
    errno(mem.write_u32(u(nwritten), total))
}

/// The errno for a path operation on descriptor `fd` when no descriptor is a directory.
fn path_op(ctx: &WasiCtx, fd: i32, required: Rights) -> HostResult {
    errno(ctx.entry(fd, required).and_then(|_| Err(Errno::Notdir)))
}

/// `path_create_directory`.
pub fn path_create_directory(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _path: i32,
    _len: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_CREATE_DIRECTORY)
}

/// `path_filestat_get`.
pub fn path_filestat_get(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _flags: i32,
    _path: i32,
    _len: i32,
    _stat: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_FILESTAT_GET)
}

/// `path_filestat_set_times`.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_filestat_set_times(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _flags: i32,
    _path: i32,
    _len: i32,
    _atim: i64,
    _mtim: i64,
    _fst: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_FILESTAT_SET_TIMES)
}

/// `path_link`.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_link(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    old_fd: i32,
    _old_flags: i32,
    _old_path: i32,
    _old_len: i32,
    new_fd: i32,
    _new_path: i32,
    _new_len: i32,
) -> HostResult {
    if let Err(e) = ctx.entry(new_fd, Rights::PATH_LINK_TARGET) {
        return Ok(e.raw());
    }
    path_op(ctx, old_fd, Rights::PATH_LINK_SOURCE)
}

/// `path_open`.
#[allow(clippy::too_many_arguments, reason = "the ABI's arguments")]
pub fn path_open(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _dirflags: i32,
    _path: i32,
    _len: i32,
    _oflags: i32,
    _base: i64,
    _inheriting: i64,
    _fdflags: i32,
    _opened: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_OPEN)
}

/// `path_readlink`.
pub fn path_readlink(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _path: i32,
    _len: i32,
    _buf: i32,
    _buf_len: i32,
    _used: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_READLINK)
}

/// `path_remove_directory`.
pub fn path_remove_directory(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _path: i32,
    _len: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_REMOVE_DIRECTORY)
}

/// `path_rename`.
pub fn path_rename(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _old: i32,
    _old_len: i32,
    new_fd: i32,
    _new: i32,
    _new_len: i32,
) -> HostResult {
    if let Err(e) = ctx.entry(new_fd, Rights::PATH_RENAME_TARGET) {
        return Ok(e.raw());
    }
    path_op(ctx, fd, Rights::PATH_RENAME_SOURCE)
}

/// `path_symlink`.
pub fn path_symlink(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    _old: i32,
    _old_len: i32,
    fd: i32,
    _new: i32,
    _new_len: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_SYMLINK)
}

/// `path_unlink_file`.
pub fn path_unlink_file(
    ctx: &mut WasiCtx,
    _mem: &mut GuestMemory<'_>,
    fd: i32,
    _path: i32,
    _len: i32,
) -> HostResult {
    path_op(ctx, fd, Rights::PATH_UNLINK_FILE)
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
                match ctx.entry(fd, Rights::POLL_FD_READWRITE) {
                    Err(e) => ev.error = e,
                    Ok(entry) => match (&entry.descriptor, tag) {
                        (Descriptor::Stdin, EVENTTYPE_FD_READ) => {
                            ev.nbytes = ctx.stdin_remaining();
                            if ev.nbytes == 0 {
                                ev.flags = EVENTRWFLAG_HANGUP;
                            }
                        }
                        (Descriptor::Stdout | Descriptor::Stderr, EVENTTYPE_FD_WRITE) => {}
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
    errno(
        ctx.entry(fd, Rights::NONE)
            .and_then(|_| Err(Errno::Notsock)),
    )
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
        let started = Instant::now();
        assert_eq!(
            poll_oneoff(&mut ctx, &mut mem, 0, 64, 1, 200),
            Err(Termination::Timeout)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // A short sleep inside the deadline returns its event.
        ctx.set_deadline(Instant::now() + Duration::from_secs(60));
        mem.write_u64(24, 1_000_000).unwrap();
        assert_eq!(poll_oneoff(&mut ctx, &mut mem, 0, 64, 1, 200), Ok(0));
        assert_eq!((mem.read_u32(200), mem.read_u64(64)), (Ok(1), Ok(7)));
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
