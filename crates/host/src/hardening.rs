//! Hardening the worker process before it touches untrusted input: resource limits, no core
//! dumps and no ptrace by other processes of the user, `no_new_privs`, and a seccomp-bpf
//! allow-list of system calls.
//!
//! The worker calls [`harden`] once, after it has read everything it needs from the file
//! system (the policy, the platform key, its own executable to measure) and before it reads
//! a single byte from the host or a client. From then on:
//!
//! - any system call not in [`allowed_syscalls`] kills the whole process (`SIGSYS`): among
//!   them every way to create a socket, to execute a program, to trace or signal another
//!   process, to mount, to load a module;
//! - opening a file (`open`, `openat`, `openat2`, `creat`) fails with `EACCES`: no file opens
//!   after start-up. It is refused rather than fatal because libraries probe files lazily
//!   (`/proc`, `/sys` for CPU counts) and must fall back, not die;
//! - the rlimits bound address space and descriptors, and forbid core dumps (a core dump of a
//!   worker is a dump of the parties' data). There is no file-size limit: wasmtime's
//!   copy-on-write memory images are memfd files sized with `ftruncate`, which it would
//!   kill; with opens refused, the worker has no other file to grow.
//!
//! The filter applies to every thread (`SECCOMP_FILTER_FLAG_TSYNC`), including those the
//! async runtime made before it was installed.

use std::collections::BTreeMap;

use rustix::process::{Resource, Rlimit};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The worker's address-space limit. wasmtime reserves a guest's linear memory with guard
/// regions up front (about 4 GiB per instance slot; a computation has one slot), and the
/// async runtime and the allocator reserve per-thread arenas. The limit stops a runtime bug or
/// an engine escape from mapping the machine's memory; the guest's own memory is bounded far
/// lower by the policy, through the engine's resource limiter.
pub const WORKER_ADDRESS_SPACE_BYTES: u64 = 16 << 30;

/// The worker's descriptor limit: one per client connection, plus the runtime's own (epoll,
/// eventfd, the control socket, memfd images). Stops a host or a flood of connections from
/// making the worker hold descriptors without bound.
pub const WORKER_MAX_DESCRIPTORS: u64 = 1024;

/// The errno an attempt to open a file gets after hardening.
const OPEN_REFUSED_ERRNO: u32 = libc::EACCES as u32;

/// The errno `clone3` gets: "not implemented", so that libc falls back to `clone`, whose
/// flags the filter can check.
const CLONE3_REFUSED_ERRNO: u32 = libc::ENOSYS as u32;

/// Why hardening failed. The worker must not serve if any step fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardeningError {
    /// An rlimit could not be set.
    #[error("setting the {resource} limit: {source}")]
    Rlimit {
        /// Which limit.
        resource: &'static str,
        /// The kernel's error.
        source: std::io::Error,
    },
    /// A `prctl` failed.
    #[error("prctl({what}): {source}")]
    Prctl {
        /// Which one.
        what: &'static str,
        /// The kernel's error.
        source: std::io::Error,
    },
    /// The filter could not be built or installed.
    #[error("seccomp filter: {0}")]
    Seccomp(String),
}

/// The system calls the worker may make once hardened (on this architecture): what the async
/// runtime, the engines, TLS and the allocator need to serve, and nothing that reaches outside
/// the process except through descriptors it already holds.
#[must_use]
pub fn allowed_syscalls() -> Vec<(&'static str, i64)> {
    macro_rules! calls {
        ($($name:ident),* $(,)?) => {
            vec![$((stringify!($name), libc::$name)),*]
        };
    }
    let mut calls = calls![
        // Memory: the allocator, wasmtime's pooled memories and copy-on-write images.
        SYS_brk,
        SYS_mmap,
        SYS_munmap,
        SYS_mprotect,
        SYS_mremap,
        SYS_madvise,
        SYS_memfd_create,
        SYS_ftruncate,
        SYS_mincore,
        SYS_membarrier,
        // Threads and their synchronisation. `clone` only for threads (see `argument_rules`);
        // `clone3`, whose flags a filter cannot see, fails with ENOSYS and libc falls back.
        SYS_clone,
        SYS_clone3,
        SYS_futex,
        SYS_set_robust_list,
        SYS_rseq,
        SYS_set_tid_address,
        SYS_sched_yield,
        SYS_sched_getaffinity,
        SYS_gettid,
        SYS_getpid,
        SYS_exit,
        SYS_exit_group,
        SYS_prctl,
        SYS_sigaltstack,
        // Signals: wasmtime turns guest faults into traps with its own handlers; a panic may
        // abort (raising SIGABRT at itself: tgkill with its own pid).
        SYS_rt_sigaction,
        SYS_rt_sigprocmask,
        SYS_rt_sigreturn,
        SYS_tgkill,
        // Time and randomness (clock_gettime is usually the vDSO).
        SYS_clock_gettime,
        SYS_clock_getres,
        SYS_clock_nanosleep,
        SYS_nanosleep,
        SYS_getrandom,
        // I/O on descriptors it already holds: the control socket, client connections (handed
        // over by the host), pipes, epoll.
        SYS_read,
        SYS_write,
        SYS_readv,
        SYS_writev,
        SYS_pread64,
        SYS_pwrite64,
        SYS_lseek,
        SYS_close,
        SYS_fcntl,
        SYS_ioctl,
        SYS_fstat,
        SYS_newfstatat,
        SYS_statx,
        SYS_recvmsg,
        SYS_sendmsg,
        SYS_recvfrom,
        SYS_sendto,
        SYS_shutdown,
        SYS_getsockopt,
        SYS_setsockopt,
        SYS_getsockname,
        SYS_getpeername,
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_epoll_pwait,
        SYS_epoll_pwait2,
        SYS_eventfd2,
        SYS_ppoll,
        SYS_pipe2,
        SYS_getrlimit,
        SYS_prlimit64,
        SYS_getuid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getegid,
        SYS_uname,
        SYS_getcwd,
        SYS_restart_syscall,
        // File opens: listed so the second filter can refuse them with EACCES (see the module
        // documentation); this filter alone would allow them.
        SYS_openat,
        SYS_openat2,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend(calls![
        SYS_arch_prctl,
        SYS_epoll_wait,
        SYS_poll,
        SYS_stat,
        SYS_lstat,
        SYS_open,
        SYS_creat,
    ]);
    calls
}

/// The system calls refused with `EACCES` rather than allowed: every way to open a file.
fn refused_opens() -> Vec<i64> {
    let mut calls = vec![libc::SYS_openat, libc::SYS_openat2];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_open, libc::SYS_creat]);
    calls
}

/// Allowed calls whose arguments are checked too; any other argument kills the process.
/// - `clone`: only with `CLONE_THREAD` — a thread, never a new process.
/// - `prctl`: only to name a thread, not, say, to make the process dumpable again.
/// - `ioctl`: only the descriptor flags the runtime sets (`FIONBIO`, `FIOCLEX`, `FIONCLEX`)
///   and the terminal query `isatty` makes (`TCGETS`); not `TIOCSTI`, which would type into
///   a terminal.
/// - `tgkill`: only to this process (a panic's abort), never to another.
fn argument_rules(own_pid: u64) -> Result<BTreeMap<i64, Vec<SeccompRule>>, HardeningError> {
    let err = |e: seccompiler::BackendError| HardeningError::Seccomp(e.to_string());
    let equals = |arg: u8, value: u64| -> Result<SeccompRule, HardeningError> {
        SeccompRule::new(vec![
            SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, value)
                .map_err(err)?,
        ])
        .map_err(err)
    };
    let clone_thread = libc::CLONE_THREAD as u64;
    let mut rules = BTreeMap::new();
    rules.insert(
        libc::SYS_clone,
        vec![
            SeccompRule::new(vec![
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(clone_thread),
                    clone_thread,
                )
                .map_err(err)?,
            ])
            .map_err(err)?,
        ],
    );
    rules.insert(
        libc::SYS_prctl,
        vec![
            equals(0, libc::PR_SET_NAME as u64)?,
            equals(0, libc::PR_GET_NAME as u64)?,
        ],
    );
    rules.insert(
        libc::SYS_ioctl,
        vec![
            equals(1, libc::FIONBIO)?,
            equals(1, libc::FIOCLEX)?,
            equals(1, libc::FIONCLEX)?,
            equals(1, libc::TCGETS)?,
        ],
    );
    rules.insert(libc::SYS_tgkill, vec![equals(0, own_pid)?]);
    Ok(rules)
}

/// Applies every hardening step to the calling process, in order: rlimits, no core dumps or
/// ptrace (`PR_SET_DUMPABLE` 0), `no_new_privs`, then the seccomp filters.
///
/// # Errors
/// [`HardeningError`] naming the step that failed; the caller must then exit without serving.
pub fn harden() -> Result<(), HardeningError> {
    set_limit("address space", Resource::As, WORKER_ADDRESS_SPACE_BYTES)?;
    set_limit("core dump", Resource::Core, 0)?;
    set_limit("open descriptors", Resource::Nofile, WORKER_MAX_DESCRIPTORS)?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| HardeningError::Prctl {
            what: "PR_SET_DUMPABLE",
            source: e.into(),
        })?;
    rustix::thread::set_no_new_privs(true).map_err(|e| HardeningError::Prctl {
        what: "PR_SET_NO_NEW_PRIVS",
        source: e.into(),
    })?;
    // The kernel runs every installed filter and takes the strictest verdict: a call outside
    // the allow-list is killed whatever the others say; an open or clone3 is allowed by the
    // allow-list and refused by its own filter. The allow-list goes in last, because
    // installing a filter takes `seccomp` and `prctl(PR_SET_NO_NEW_PRIVS)`, which it forbids.
    for filter in filters()? {
        seccompiler::apply_filter_all_threads(&filter)
            .map_err(|e| HardeningError::Seccomp(e.to_string()))?;
    }
    Ok(())
}

fn set_limit(name: &'static str, resource: Resource, value: u64) -> Result<(), HardeningError> {
    rustix::process::setrlimit(
        resource,
        Rlimit {
            current: Some(value),
            maximum: Some(value),
        },
    )
    .map_err(|e| HardeningError::Rlimit {
        resource: name,
        source: e.into(),
    })
}

/// The BPF programs, in the order they are installed: the refusal of file opens, the refusal
/// of `clone3`, and the allow-list (anything else kills the process).
fn filters() -> Result<[BpfProgram; 3], HardeningError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| HardeningError::Seccomp(format!("unsupported architecture: {e}")))?;
    let compile = |rules: BTreeMap<i64, Vec<SeccompRule>>,
                   mismatch: SeccompAction,
                   matched: SeccompAction| {
        SeccompFilter::new(rules, mismatch, matched, arch)
            .and_then(BpfProgram::try_from)
            .map_err(|e| HardeningError::Seccomp(e.to_string()))
    };
    let mut allowed = argument_rules(u64::from(std::process::id()))?;
    for (_, nr) in allowed_syscalls() {
        allowed.entry(nr).or_insert_with(Vec::new);
    }
    let allow = compile(allowed, SeccompAction::KillProcess, SeccompAction::Allow)?;
    let refuse_opens = compile(
        refused_opens()
            .into_iter()
            .map(|nr| (nr, Vec::new()))
            .collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(OPEN_REFUSED_ERRNO),
    )?;
    let refuse_clone3 = compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(CLONE3_REFUSED_ERRNO),
    )?;
    Ok([refuse_opens, refuse_clone3, allow])
}

/// What [`probe`] tries, for tests and for operators who want to see the filter work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `socket(AF_INET, SOCK_STREAM)`: must kill the process.
    Socket,
    /// `execve("/bin/true")`: must kill the process.
    Exec,
    /// `openat` of the worker's own executable: must fail with `EACCES`.
    Open,
}

impl std::str::FromStr for Probe {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "socket" => Ok(Probe::Socket),
            "exec" => Ok(Probe::Exec),
            "open" => Ok(Probe::Open),
            other => Err(format!("unknown probe {other:?}: socket, exec or open")),
        }
    }
}

/// Tries the forbidden thing `probe` names, after [`harden`]. Returns only if the kernel
/// refused without killing the process, with what it said; for a probe that should have
/// killed the process, returning at all means the filter failed.
pub fn probe(probe: Probe) -> std::io::Result<()> {
    match probe {
        Probe::Socket => std::net::TcpListener::bind("127.0.0.1:0").map(drop),
        Probe::Exec => std::process::Command::new("/bin/true").status().map(drop),
        Probe::Open => std::fs::File::open("/proc/self/exe").map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_has_no_way_out() {
        let allowed: Vec<&str> = allowed_syscalls().into_iter().map(|(n, _)| n).collect();
        for forbidden in [
            "SYS_socket",
            "SYS_socketpair",
            "SYS_connect",
            "SYS_bind",
            "SYS_listen",
            "SYS_accept",
            "SYS_accept4",
            "SYS_execve",
            "SYS_execveat",
            "SYS_fork",
            "SYS_vfork",
            "SYS_ptrace",
            "SYS_kill",
            "SYS_mount",
            "SYS_init_module",
            "SYS_bpf",
            "SYS_setuid",
            "SYS_process_vm_readv",
            "SYS_process_vm_writev",
            "SYS_unlink",
            "SYS_unlinkat",
            "SYS_rename",
            "SYS_renameat",
            "SYS_chmod",
            "SYS_chown",
            "SYS_mkdir",
            "SYS_link",
            "SYS_symlink",
            "SYS_truncate",
            "SYS_userfaultfd",
            "SYS_perf_event_open",
        ] {
            assert!(!allowed.contains(&forbidden), "{forbidden} is allowed");
        }
    }

    #[test]
    fn the_filters_compile_for_this_architecture() {
        for filter in filters().unwrap() {
            assert!(!filter.is_empty());
        }
    }
}
