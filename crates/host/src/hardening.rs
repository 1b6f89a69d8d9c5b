//! Hardening the worker process before it touches untrusted input: resource limits, no core
//! dumps and no ptrace by other processes of the user, `no_new_privs`, and a seccomp-bpf
//! allow-list of system calls, one for each execution strategy.
//!
//! The worker calls [`harden`] once, after it has read the bytes it needs from the file
//! system (the policy, the platform's certificate and key, its own executable to measure) and
//! before it parses any of them or reads a single byte from the host or a client. From then
//! on:
//!
//! - any system call not in [`allowed_syscalls`] kills the whole process (`SIGSYS`): among
//!   them every way to create a socket, to execute a program, to trace or signal another
//!   process, to mount, to load a module;
//! - some allowed calls are allowed only with some arguments ([`argument_rules`]); any other
//!   argument kills the process too: `clone` (threads), `prctl` (thread names), `ioctl`
//!   (descriptor flags, `TCGETS`), `tgkill` and `prlimit64` (this process only), `fcntl` (the
//!   commands in [`FCNTL_COMMANDS`], and `F_SETFL` without `O_ASYNC`), `mmap` and `mprotect`
//!   (never writable and executable at once; never executable at all for the interpreter);
//! - opening a file (`open`, `openat`, `openat2`, `creat`) and looking up a path's metadata
//!   (`stat`, `lstat`, `newfstatat`, `statx`) fail with `EACCES`: no file is opened and no
//!   path of the host is probed after start-up. They are refused rather than fatal because
//!   libraries probe files lazily (`/proc`, `/sys` for CPU counts) and must fall back, not
//!   die. A filter sees a path argument only as a pointer, so it cannot allow "`newfstatat`
//!   with an empty path on a descriptor" and refuse the same call with an absolute path (which
//!   ignores the descriptor): every form is refused, and a descriptor's metadata is read with
//!   `fstat`, which takes no path. The worker needs none of them after start-up (traced with
//!   `strace -f` through whole computations on both strategies);
//! - the rlimits bound address space and descriptors, and forbid core dumps (a core dump of a
//!   worker is a dump of the parties' data). There is no file-size limit: wasmtime's
//!   copy-on-write memory images are memfd files sized with `ftruncate`, which it would
//!   kill; with opens refused, the worker has no other file to grow.
//!
//! **Each strategy its filter.** A worker whose policy selects the interpreter (wasmi) never
//! needs executable memory: its filter kills `mmap` and `mprotect` with `PROT_EXEC`, and
//! `memfd_create` and the memfd seals (wasmtime's memory images). A jit worker (wasmtime) may
//! map executable memory, but never writable and executable at once. The worker is told its
//! strategy on its command line (`covenant worker --strategy`, which the host takes from the
//! policy) because it hardens before it parses the policy; once it has, it refuses to serve a
//! policy whose strategy is not the one it was hardened for.
//!
//! The filter applies to every thread (`SECCOMP_FILTER_FLAG_TSYNC`), including those the
//! async runtime made before it was installed.

use std::collections::BTreeMap;

use covenant_policy::Strategy;
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

/// The errno an attempt to open a file or to look up a path's metadata gets after hardening.
const PATH_REFUSED_ERRNO: u32 = libc::EACCES as u32;

/// The errno `clone3` gets: "not implemented", so that libc falls back to `clone`, whose
/// flags the filter can check.
const CLONE3_REFUSED_ERRNO: u32 = libc::ENOSYS as u32;

/// The `fcntl` commands every worker may use, by name: read and set a descriptor's
/// close-on-exec flag, read its status flags (tokio checks a handed-over socket is
/// non-blocking), duplicate it with close-on-exec. `F_SETFL` is allowed too, but only without
/// `O_ASYNC` ([`argument_rules`]). Everything else kills the process, among it `F_SETOWN`,
/// `F_SETOWN_EX` and `F_SETSIG`, which with `O_ASYNC` make the kernel signal a process of the
/// worker's choosing (the host, another worker), and `F_SETLEASE` and `F_NOTIFY`, which
/// signal on others' file accesses.
pub const FCNTL_COMMANDS: [(&str, i32); 4] = [
    ("F_GETFD", libc::F_GETFD),
    ("F_SETFD", libc::F_SETFD),
    ("F_GETFL", libc::F_GETFL),
    ("F_DUPFD_CLOEXEC", libc::F_DUPFD_CLOEXEC),
];

/// The `fcntl` commands a jit worker may use besides [`FCNTL_COMMANDS`]: wasmtime seals the
/// memfd files of its copy-on-write memory images. The interpreter makes no memfd.
pub const FCNTL_JIT_COMMANDS: [(&str, i32); 2] = [
    ("F_ADD_SEALS", libc::F_ADD_SEALS),
    ("F_GET_SEALS", libc::F_GET_SEALS),
];

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

/// The system calls a worker of `strategy` may make once hardened (on this architecture):
/// what the async runtime, the engine, TLS and the allocator need to serve, and nothing that
/// reaches outside the process except through descriptors it already holds. Some are allowed
/// only with some arguments ([`argument_rules`]); the path calls at the end are listed so that
/// the refusing filter can answer them with `EACCES` ([`refused_path_calls`]).
#[must_use]
pub fn allowed_syscalls(strategy: Strategy) -> Vec<(&'static str, i64)> {
    macro_rules! calls {
        ($($name:ident),* $(,)?) => {
            vec![$((stringify!($name), libc::$name)),*]
        };
    }
    let mut calls = calls![
        // Memory: the allocator, the engines' memories. `mmap` and `mprotect` never with
        // writable and executable together, and never executable for the interpreter.
        SYS_brk,
        SYS_mmap,
        SYS_munmap,
        SYS_mprotect,
        SYS_mremap,
        SYS_madvise,
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
        // Its own limits only (`prlimit64` with pid 0 or its own).
        SYS_getrlimit,
        SYS_prlimit64,
        SYS_getuid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getegid,
        SYS_uname,
        SYS_getcwd,
        SYS_restart_syscall,
        // File opens and path lookups: listed so that the refusing filter can answer them
        // with EACCES (see the module documentation); this filter alone would allow them.
        SYS_openat,
        SYS_openat2,
        SYS_newfstatat,
        SYS_statx,
    ];
    if strategy == Strategy::Jit {
        // wasmtime's copy-on-write memory images are memfd files. The interpreter makes none.
        calls.extend(calls![SYS_memfd_create]);
    }
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

/// The system calls refused with `EACCES` rather than allowed: every way to open a file or
/// to look up a path's metadata.
#[must_use]
pub fn refused_path_calls() -> Vec<(&'static str, i64)> {
    let mut calls = vec![
        ("SYS_openat", libc::SYS_openat),
        ("SYS_openat2", libc::SYS_openat2),
        ("SYS_newfstatat", libc::SYS_newfstatat),
        ("SYS_statx", libc::SYS_statx),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        ("SYS_open", libc::SYS_open),
        ("SYS_creat", libc::SYS_creat),
        ("SYS_stat", libc::SYS_stat),
        ("SYS_lstat", libc::SYS_lstat),
    ]);
    calls
}

/// Allowed calls whose arguments are checked too; any other argument kills the process.
/// - `clone`: only with `CLONE_THREAD` — a thread, never a new process.
/// - `prctl`: only to name a thread, not, say, to make the process dumpable again.
/// - `ioctl`: only the descriptor flags the runtime sets (`FIONBIO`, `FIOCLEX`, `FIONCLEX`)
///   and the terminal query `isatty` makes (`TCGETS`); not `TIOCSTI`, which would type into
///   a terminal.
/// - `tgkill`: only to this process (a panic's abort), never to another.
/// - `prlimit64`: only on this process (pid 0 or its own): not to lower the host's or a
///   sibling worker's limits.
/// - `fcntl`: only [`FCNTL_COMMANDS`] (and for the jit [`FCNTL_JIT_COMMANDS`]), and
///   `F_SETFL` without `O_ASYNC`: no signals to other processes through a descriptor.
/// - `mmap`, `mprotect`: never `PROT_WRITE` and `PROT_EXEC` together on one mapping; for the
///   interpreter, never `PROT_EXEC` at all. For the jit this is W^X per mapping only: a page
///   can still be made writable, then executable (as the compiler does), and a `memfd` can be
///   mapped twice, once writable and once executable. It stops the simplest injection, not a
///   determined attacker who already runs code in the worker.
///
/// Integer arguments (`int` in the kernel's prototype) are compared on their low 32 bits,
/// which is all the kernel reads of them.
///
/// # Errors
/// [`HardeningError::Seccomp`] if a rule cannot be built.
pub fn argument_rules(
    own_pid: u32,
    strategy: Strategy,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, HardeningError> {
    let err = |e: seccompiler::BackendError| HardeningError::Seccomp(e.to_string());
    let condition = |arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, len, op, value).map_err(err)
    };
    let rule = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions).map_err(err);
    let equals = |arg: u8, value: u64| -> Result<SeccompRule, HardeningError> {
        rule(vec![condition(
            arg,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::Eq,
            value,
        )?])
    };
    // An `int` argument equal to `value` (its low 32 bits).
    let int_equals = |arg: u8, value: i32| -> Result<SeccompRule, HardeningError> {
        rule(vec![condition(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            u64::from(value as u32),
        )?])
    };
    // An `int` argument whose bits under `mask` are exactly `value`.
    let masked = |arg: u8, mask: i32, value: i32| {
        condition(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(u64::from(mask as u32)),
            u64::from(value as u32),
        )
    };
    let clone_thread = libc::CLONE_THREAD as u64;
    let mut rules = BTreeMap::new();
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![condition(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(clone_thread),
            clone_thread,
        )?])?],
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
    rules.insert(libc::SYS_tgkill, vec![equals(0, u64::from(own_pid))?]);
    let own_pid = i32::try_from(own_pid)
        .map_err(|_| HardeningError::Seccomp(format!("process id {own_pid} out of range")))?;
    rules.insert(
        libc::SYS_prlimit64,
        vec![int_equals(0, 0)?, int_equals(0, own_pid)?],
    );
    let mut fcntl = vec![rule(vec![
        condition(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            u64::from(libc::F_SETFL as u32),
        )?,
        masked(2, libc::O_ASYNC, 0)?,
    ])?];
    let jit_commands: &[(&str, i32)] = match strategy {
        Strategy::Jit => &FCNTL_JIT_COMMANDS,
        Strategy::Interpreter => &[],
    };
    for (_, command) in FCNTL_COMMANDS.iter().chain(jit_commands) {
        fcntl.push(int_equals(1, *command)?);
    }
    rules.insert(libc::SYS_fcntl, fcntl);
    let protection = || -> Result<Vec<SeccompRule>, HardeningError> {
        let write_exec = libc::PROT_WRITE | libc::PROT_EXEC;
        match strategy {
            Strategy::Interpreter => Ok(vec![rule(vec![masked(2, libc::PROT_EXEC, 0)?])?]),
            Strategy::Jit => Ok(vec![
                rule(vec![masked(2, write_exec, 0)?])?,
                rule(vec![masked(2, write_exec, libc::PROT_WRITE)?])?,
                rule(vec![masked(2, write_exec, libc::PROT_EXEC)?])?,
            ]),
        }
    };
    rules.insert(libc::SYS_mmap, protection()?);
    rules.insert(libc::SYS_mprotect, protection()?);
    Ok(rules)
}

/// Applies every hardening step to the calling process, in order: rlimits, no core dumps or
/// ptrace (`PR_SET_DUMPABLE` 0), `no_new_privs`, then the seccomp filters for `strategy`.
///
/// # Errors
/// [`HardeningError`] naming the step that failed; the caller must then exit without serving.
pub fn harden(strategy: Strategy) -> Result<(), HardeningError> {
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
    // the allow-list is killed whatever the others say; an open, a path lookup or clone3 is
    // allowed by the allow-list and refused by its own filter. The allow-list goes in last,
    // because installing a filter takes `seccomp` and `prctl(PR_SET_NO_NEW_PRIVS)`, which it
    // forbids.
    for filter in filters(strategy, std::process::id())? {
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

/// The BPF programs for a worker of `strategy` whose process id is `own_pid`, in the order
/// they are installed: the refusal of file opens and path lookups, the refusal of `clone3`,
/// and the allow-list (anything else kills the process).
fn filters(strategy: Strategy, own_pid: u32) -> Result<[BpfProgram; 3], HardeningError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| HardeningError::Seccomp(format!("unsupported architecture: {e}")))?;
    let compile = |rules: BTreeMap<i64, Vec<SeccompRule>>,
                   mismatch: SeccompAction,
                   matched: SeccompAction| {
        SeccompFilter::new(rules, mismatch, matched, arch)
            .and_then(BpfProgram::try_from)
            .map_err(|e| HardeningError::Seccomp(e.to_string()))
    };
    let mut allowed = argument_rules(own_pid, strategy)?;
    for (_, nr) in allowed_syscalls(strategy) {
        allowed.entry(nr).or_insert_with(Vec::new);
    }
    let allow = compile(allowed, SeccompAction::KillProcess, SeccompAction::Allow)?;
    let refuse_paths = compile(
        refused_path_calls()
            .into_iter()
            .map(|(_, nr)| (nr, Vec::new()))
            .collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(PATH_REFUSED_ERRNO),
    )?;
    let refuse_clone3 = compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(CLONE3_REFUSED_ERRNO),
    )?;
    Ok([refuse_paths, refuse_clone3, allow])
}

/// A process id above any the kernel hands out (`pid_max` is at most 2^22): the `prlimit`
/// probe aims at it so that, should the filter let the call through, no process's limits
/// change (the kernel answers `ESRCH`, and the probe reports the filter failed).
const PROBE_NO_SUCH_PID: i32 = i32::MAX;

/// The host path the `stat` probe looks up: one that exists on every machine.
const PROBE_STAT_PATH: &str = "/";

/// A module with one exported function returning 42: compiling it with the jit engine makes
/// wasmtime map its code executable (the `exec-memory` probe).
const PROBE_JIT_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type: () -> i32
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, // export "f"
    0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x2a, 0x0b, // code: i32.const 42
];

/// What [`probe`] tries, for tests and for operators who want to see the filter work. Each
/// probe is one forbidden thing; what stops it is in its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `socket(AF_INET, SOCK_STREAM)`: must kill the process.
    Socket,
    /// `execve("/bin/true")`: must kill the process.
    Exec,
    /// `openat` of the worker's own executable: must fail with `EACCES`.
    Open,
    /// `prlimit64` on another process: must kill the process.
    Prlimit,
    /// `fcntl(F_SETFL, O_ASYNC)` on a pipe (the first half of asking the kernel to signal
    /// another process; `F_SETOWN` is not on the list at all): must kill the process.
    FcntlAsync,
    /// `statx`, `newfstatat` (with `AT_EMPTY_PATH`) and `std::fs::metadata` of a host path:
    /// the kernel must refuse each with `EACCES` (rustix reports `ENOSYS` for `statx` when
    /// its own check of whether `statx` exists is refused as well).
    Stat,
    /// Compiling a one-function module with the jit engine, which maps code executable: must
    /// kill an interpreter worker; a jit worker compiles it.
    ExecMemory,
    /// `memfd_create`: must kill an interpreter worker; a jit worker makes one.
    Memfd,
}

impl Probe {
    /// Every probe, with its name on the command line.
    pub const ALL: [(Probe, &'static str); 8] = [
        (Probe::Socket, "socket"),
        (Probe::Exec, "exec"),
        (Probe::Open, "open"),
        (Probe::Prlimit, "prlimit"),
        (Probe::FcntlAsync, "fcntl-async"),
        (Probe::Stat, "stat"),
        (Probe::ExecMemory, "exec-memory"),
        (Probe::Memfd, "memfd"),
    ];
}

impl std::str::FromStr for Probe {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Probe::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(probe, _)| *probe)
            .ok_or_else(|| {
                let names: Vec<&str> = Probe::ALL.iter().map(|(_, name)| *name).collect();
                format!("unknown probe {s:?}: one of {}", names.join(", "))
            })
    }
}

/// Tries the forbidden thing `probe` names, after [`harden`]. Returns only if the kernel
/// refused without killing the process, with what it said; for a probe that should have
/// killed the process, returning at all means the filter failed.
///
/// # Errors
/// What the kernel (or, for [`Probe::ExecMemory`], the engine) answered.
pub fn probe(probe: Probe) -> std::io::Result<()> {
    match probe {
        Probe::Socket => std::net::TcpListener::bind("127.0.0.1:0").map(drop),
        Probe::Exec => std::process::Command::new("/bin/true").status().map(drop),
        Probe::Open => std::fs::File::open("/proc/self/exe").map(drop),
        Probe::Prlimit => {
            let pid = rustix::process::Pid::from_raw(PROBE_NO_SUCH_PID)
                .ok_or_else(|| std::io::Error::other("no such pid"))?;
            let limit = Rlimit {
                current: Some(WORKER_MAX_DESCRIPTORS),
                maximum: Some(WORKER_MAX_DESCRIPTORS),
            };
            rustix::process::prlimit(Some(pid), Resource::Nofile, limit)
                .map(drop)
                .map_err(Into::into)
        }
        Probe::FcntlAsync => {
            let (reader, _writer) = std::io::pipe()?;
            rustix::fs::fcntl_setfl(&reader, rustix::fs::OFlags::ASYNC).map_err(Into::into)
        }
        Probe::Stat => {
            use rustix::fs::{AtFlags, CWD, StatxFlags};
            let statx = rustix::fs::statx(
                CWD,
                PROBE_STAT_PATH,
                AtFlags::EMPTY_PATH,
                StatxFlags::BASIC_STATS,
            )
            .map(drop)
            .map_err(std::io::Error::from);
            let fstatat = rustix::fs::statat(CWD, PROBE_STAT_PATH, AtFlags::EMPTY_PATH)
                .map(drop)
                .map_err(std::io::Error::from);
            let metadata = std::fs::metadata(PROBE_STAT_PATH).map(drop);
            eprintln!(
                "hardening probe Stat: statx {statx:?}, newfstatat {fstatat:?}, metadata {metadata:?}"
            );
            // Any lookup that succeeded means the filter failed.
            match (statx, fstatat, metadata) {
                (Err(refused), Err(_), Err(_)) => Err(refused),
                _ => Ok(()),
            }
        }
        Probe::ExecMemory => {
            let mut config = covenant_sandbox::SandboxConfig::new(covenant_sandbox::Strategy::Jit);
            // One instance slot, as a computation has: the default pool would not fit in the
            // worker's address-space limit.
            config.max_instances = 1;
            let sandbox = covenant_sandbox::Sandbox::new(config)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            sandbox
                .load(PROBE_JIT_MODULE)
                .map(drop)
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
        Probe::Memfd => rustix::fs::memfd_create("covenant-probe", rustix::fs::MemfdFlags::CLOEXEC)
            .map(drop)
            .map_err(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRATEGIES: [Strategy; 2] = [Strategy::Jit, Strategy::Interpreter];

    fn names(strategy: Strategy) -> Vec<&'static str> {
        allowed_syscalls(strategy)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn the_allow_list_has_no_way_out() {
        for strategy in STRATEGIES {
            let allowed = names(strategy);
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
                "SYS_tkill",
                "SYS_rt_sigqueueinfo",
                "SYS_rt_tgsigqueueinfo",
                "SYS_pidfd_open",
                "SYS_pidfd_send_signal",
                "SYS_pidfd_getfd",
                "SYS_mount",
                "SYS_init_module",
                "SYS_bpf",
                "SYS_seccomp",
                "SYS_setuid",
                "SYS_setrlimit",
                "SYS_process_vm_readv",
                "SYS_process_vm_writev",
                "SYS_pkey_mprotect",
                "SYS_remap_file_pages",
                "SYS_personality",
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
                "SYS_access",
                "SYS_faccessat",
                "SYS_faccessat2",
                "SYS_readlink",
                "SYS_readlinkat",
                "SYS_statfs",
                "SYS_getdents64",
                "SYS_userfaultfd",
                "SYS_perf_event_open",
            ] {
                assert!(
                    !allowed.contains(&forbidden),
                    "{forbidden} is allowed ({strategy:?})"
                );
            }
        }
    }

    #[test]
    fn only_the_jit_may_make_memfd_images() {
        assert!(names(Strategy::Jit).contains(&"SYS_memfd_create"));
        assert!(!names(Strategy::Interpreter).contains(&"SYS_memfd_create"));
    }

    #[test]
    fn every_path_lookup_and_open_is_refused_not_allowed() {
        let refused: Vec<&str> = refused_path_calls().into_iter().map(|(n, _)| n).collect();
        for call in ["SYS_openat", "SYS_openat2", "SYS_newfstatat", "SYS_statx"] {
            assert!(refused.contains(&call), "{call} is not refused");
        }
        #[cfg(target_arch = "x86_64")]
        for call in ["SYS_open", "SYS_creat", "SYS_stat", "SYS_lstat"] {
            assert!(refused.contains(&call), "{call} is not refused");
        }
        // Each refused call is on the allow-list too: otherwise it would kill, not refuse.
        for strategy in STRATEGIES {
            let allowed = names(strategy);
            for call in &refused {
                assert!(allowed.contains(call), "{call} ({strategy:?})");
            }
        }
    }

    #[test]
    fn the_filters_compile_for_this_architecture() {
        for strategy in STRATEGIES {
            for filter in filters(strategy, std::process::id()).unwrap() {
                assert!(!filter.is_empty());
            }
        }
    }

    /// A classic-BPF interpreter for the instructions seccompiler emits, run over the
    /// compiled filters: what the kernel would answer, without installing them in the test
    /// process.
    mod bpf {
        use seccompiler::sock_filter;

        /// `seccomp_data`: nr, arch, instruction pointer, six arguments (little-endian).
        pub fn data(nr: i64, args: [u64; 6]) -> Vec<u8> {
            #[cfg(target_arch = "x86_64")]
            const ARCH: u32 = 0xc000_003e;
            #[cfg(target_arch = "aarch64")]
            const ARCH: u32 = 0xc000_00b7;
            let mut data = Vec::with_capacity(64);
            data.extend_from_slice(&i32::try_from(nr).unwrap().to_le_bytes());
            data.extend_from_slice(&ARCH.to_le_bytes());
            data.extend_from_slice(&0u64.to_le_bytes());
            for arg in args {
                data.extend_from_slice(&arg.to_le_bytes());
            }
            data
        }

        pub fn run(program: &[sock_filter], data: &[u8]) -> u32 {
            let (mut pc, mut acc) = (0usize, 0u32);
            loop {
                let insn = &program[pc];
                let k = insn.k;
                pc += 1;
                match insn.code {
                    // BPF_LD | BPF_W | BPF_ABS
                    0x20 => {
                        let at = k as usize;
                        acc = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                    }
                    // BPF_ALU | BPF_AND | BPF_K
                    0x54 => acc &= k,
                    // BPF_JMP | BPF_JA
                    0x05 => pc += k as usize,
                    // BPF_JMP | BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET (| BPF_K)
                    0x15 | 0x25 | 0x35 | 0x45 => {
                        let taken = match insn.code {
                            0x15 => acc == k,
                            0x25 => acc > k,
                            0x35 => acc >= k,
                            _ => acc & k != 0,
                        };
                        pc += usize::from(if taken { insn.jt } else { insn.jf });
                    }
                    // BPF_RET | BPF_K
                    0x06 => return k,
                    other => panic!("instruction {other:#x} not interpreted"),
                }
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Verdict {
        Allow,
        Kill,
        Errno(u32),
    }

    /// What the kernel does with a call, given every filter: the strictest verdict.
    fn verdict(programs: &[BpfProgram], nr: i64, args: [u64; 6]) -> Verdict {
        let data = bpf::data(nr, args);
        let strictest = programs
            .iter()
            .map(|program| bpf::run(program, &data))
            // Precedence is the action's value as a signed number, lowest first.
            .min_by_key(|ret| (ret & 0xffff_0000) as i32)
            .unwrap();
        match strictest & 0xffff_0000 {
            0x7fff_0000 => Verdict::Allow,
            0x8000_0000 | 0 => Verdict::Kill,
            0x0005_0000 => Verdict::Errno(strictest & 0xffff),
            other => panic!("unexpected action {other:#x}"),
        }
    }

    fn int(value: i32) -> u64 {
        // How libc passes an `int`: sign-extended.
        i64::from(value) as u64
    }

    #[test]
    fn each_argument_rule_says_what_it_should_for_each_strategy() {
        use Verdict::{Allow, Errno, Kill};
        let pid = std::process::id();
        let eacces = libc::EACCES as u32;
        // Not in this target's libc: F_SETSIG and F_SETOWN_EX (asm-generic/fcntl.h).
        const F_SETSIG: i32 = 10;
        const F_SETOWN_EX: i32 = 15;
        let (read, write, exec) = (libc::PROT_READ, libc::PROT_WRITE, libc::PROT_EXEC);
        for strategy in STRATEGIES {
            let programs = filters(strategy, pid).unwrap();
            let jit_only = if strategy == Strategy::Jit {
                Allow
            } else {
                Kill
            };
            let check = |what: &str, nr: i64, args: [u64; 6], expected: Verdict| {
                assert_eq!(
                    verdict(&programs, nr, args),
                    expected,
                    "{what} ({strategy:?})"
                );
            };
            let fd = 3;
            let cases: Vec<(&str, i64, [u64; 6], Verdict)> = vec![
                ("socket", libc::SYS_socket, [2, 1, 0, 0, 0, 0], Kill),
                ("getpid", libc::SYS_getpid, [0; 6], Allow),
                // prlimit64: itself only.
                (
                    "prlimit64 self (0)",
                    libc::SYS_prlimit64,
                    [0, 7, 0, 1, 0, 0],
                    Allow,
                ),
                (
                    "prlimit64 own pid",
                    libc::SYS_prlimit64,
                    [u64::from(pid), 7, 0, 1, 0, 0],
                    Allow,
                ),
                (
                    "prlimit64 pid 1",
                    libc::SYS_prlimit64,
                    [1, 7, 1, 0, 0, 0],
                    Kill,
                ),
                (
                    "prlimit64 another pid",
                    libc::SYS_prlimit64,
                    [u64::from(pid) + 1, 7, 1, 0, 0, 0],
                    Kill,
                ),
                // fcntl: the listed commands only, F_SETFL without O_ASYNC.
                (
                    "F_GETFL",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_GETFL), 0, 0, 0, 0],
                    Allow,
                ),
                (
                    "F_GETFD",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_GETFD), 0, 0, 0, 0],
                    Allow,
                ),
                (
                    "F_SETFD",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_SETFD), int(libc::FD_CLOEXEC), 0, 0, 0],
                    Allow,
                ),
                (
                    "F_DUPFD_CLOEXEC",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_DUPFD_CLOEXEC), 0, 0, 0, 0],
                    Allow,
                ),
                (
                    "F_SETFL O_NONBLOCK",
                    libc::SYS_fcntl,
                    [
                        fd,
                        int(libc::F_SETFL),
                        int(libc::O_NONBLOCK | libc::O_RDWR),
                        0,
                        0,
                        0,
                    ],
                    Allow,
                ),
                (
                    "F_SETFL O_ASYNC",
                    libc::SYS_fcntl,
                    [
                        fd,
                        int(libc::F_SETFL),
                        int(libc::O_NONBLOCK | libc::O_ASYNC),
                        0,
                        0,
                        0,
                    ],
                    Kill,
                ),
                (
                    "F_SETOWN",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_SETOWN), 1, 0, 0, 0],
                    Kill,
                ),
                (
                    "F_SETOWN_EX",
                    libc::SYS_fcntl,
                    [fd, int(F_SETOWN_EX), 0, 0, 0, 0],
                    Kill,
                ),
                (
                    "F_SETSIG",
                    libc::SYS_fcntl,
                    [fd, int(F_SETSIG), 9, 0, 0, 0],
                    Kill,
                ),
                (
                    "F_SETLEASE",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_SETLEASE), 1, 0, 0, 0],
                    Kill,
                ),
                (
                    "F_DUPFD",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_DUPFD), 0, 0, 0, 0],
                    Kill,
                ),
                (
                    "F_ADD_SEALS",
                    libc::SYS_fcntl,
                    [fd, int(libc::F_ADD_SEALS), 1, 0, 0, 0],
                    jit_only,
                ),
                // Memory: never W+X; X only for the jit.
                (
                    "mmap rw",
                    libc::SYS_mmap,
                    [0, 4096, int(read | write), 0x22, 0, 0],
                    Allow,
                ),
                ("mmap none", libc::SYS_mmap, [0, 4096, 0, 0x22, 0, 0], Allow),
                (
                    "mmap rx",
                    libc::SYS_mmap,
                    [0, 4096, int(read | exec), 0x22, 0, 0],
                    jit_only,
                ),
                (
                    "mmap rwx",
                    libc::SYS_mmap,
                    [0, 4096, int(read | write | exec), 0x22, 0, 0],
                    Kill,
                ),
                (
                    "mprotect rw",
                    libc::SYS_mprotect,
                    [0, 4096, int(read | write), 0, 0, 0],
                    Allow,
                ),
                (
                    "mprotect rx",
                    libc::SYS_mprotect,
                    [0, 4096, int(read | exec), 0, 0, 0],
                    jit_only,
                ),
                (
                    "mprotect x",
                    libc::SYS_mprotect,
                    [0, 4096, int(exec), 0, 0, 0],
                    jit_only,
                ),
                (
                    "mprotect wx",
                    libc::SYS_mprotect,
                    [0, 4096, int(write | exec), 0, 0, 0],
                    Kill,
                ),
                (
                    "memfd_create",
                    libc::SYS_memfd_create,
                    [0, 1, 0, 0, 0, 0],
                    jit_only,
                ),
                // Paths: every lookup refused, descriptors still stat-able.
                (
                    "newfstatat AT_EMPTY_PATH",
                    libc::SYS_newfstatat,
                    [fd, 0, 0, int(libc::AT_EMPTY_PATH), 0, 0],
                    Errno(eacces),
                ),
                (
                    "newfstatat AT_FDCWD",
                    libc::SYS_newfstatat,
                    [int(libc::AT_FDCWD), 0, 0, 0, 0, 0],
                    Errno(eacces),
                ),
                (
                    "statx AT_EMPTY_PATH",
                    libc::SYS_statx,
                    [fd, 0, int(libc::AT_EMPTY_PATH), 0x7ff, 0, 0],
                    Errno(eacces),
                ),
                ("fstat", libc::SYS_fstat, [fd, 0, 0, 0, 0, 0], Allow),
                (
                    "openat",
                    libc::SYS_openat,
                    [int(libc::AT_FDCWD), 0, 0, 0, 0, 0],
                    Errno(eacces),
                ),
                // Unchanged rules.
                (
                    "clone3",
                    libc::SYS_clone3,
                    [0; 6],
                    Errno(libc::ENOSYS as u32),
                ),
                (
                    "clone thread",
                    libc::SYS_clone,
                    [(libc::CLONE_VM | libc::CLONE_THREAD) as u64, 0, 0, 0, 0, 0],
                    Allow,
                ),
                (
                    "clone process",
                    libc::SYS_clone,
                    [libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
                    Kill,
                ),
                (
                    "tgkill self",
                    libc::SYS_tgkill,
                    [u64::from(pid), 1, 6, 0, 0, 0],
                    Allow,
                ),
                ("tgkill other", libc::SYS_tgkill, [1, 1, 9, 0, 0, 0], Kill),
                (
                    "prctl name",
                    libc::SYS_prctl,
                    [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0],
                    Allow,
                ),
                (
                    "prctl dumpable",
                    libc::SYS_prctl,
                    [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0],
                    Kill,
                ),
            ];
            #[cfg(target_arch = "x86_64")]
            let cases = {
                let mut cases = cases;
                cases.push(("stat", libc::SYS_stat, [0; 6], Errno(eacces)));
                cases.push(("lstat", libc::SYS_lstat, [0; 6], Errno(eacces)));
                cases
            };
            for (what, nr, args, expected) in cases {
                check(what, nr, args, expected);
            }
        }
    }

    #[test]
    fn every_probe_has_a_name_that_parses_back() {
        for (probe, name) in Probe::ALL {
            assert_eq!(name.parse::<Probe>(), Ok(probe));
        }
        let unknown = "ptrace".parse::<Probe>().unwrap_err();
        assert!(unknown.contains("exec-memory"), "{unknown}");
    }
}
