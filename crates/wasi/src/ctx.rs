//! The state one guest instance's WASI calls act on: arguments, environment, standard streams,
//! clocks, randomness and the descriptor table.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::fs::{FileSystem, Handle, View};
use crate::types::{Errno, Filetype, Rights};

/// The most bytes of arguments plus environment (including NUL terminators) one context may
/// hold. The guest copies them into its memory at start-up (`args_get`, `environ_get`); this
/// bounds what the host keeps and what a policy can make every instance copy. Linux's
/// `ARG_MAX` is 2 MiB; so is ours.
pub const MAX_ARGS_ENV_BYTES: usize = 2 * 1024 * 1024;

/// How a context ended an instance. A host call returns one of these instead of an errno when
/// the instance must stop; each engine turns it into a trap and the sandbox reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Termination {
    /// The guest called `proc_exit(code)`.
    #[error("the guest exited with code {0}")]
    Exit(u32),
    /// The guest wrote more to stdout and stderr together than the limit allows.
    #[error("the guest wrote more than {limit} bytes to stdout and stderr")]
    OutputLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The wall-clock deadline passed while the guest was in a host call (for example, asleep
    /// in `poll_oneoff`).
    #[error("the wall-clock deadline passed during a host call")]
    Timeout,
    /// The guest broke the ABI where there is no errno to return (for example, calling a WASI
    /// function from a module that exports no memory).
    #[error("bad host call: {0}")]
    BadHostCall(String),
}

/// Where a guest's stdout or stderr goes.
pub enum OutputSink {
    /// Kept in memory; read it back with [`WasiCtx::take_stdout`] / [`WasiCtx::take_stderr`].
    Capture,
    /// Passed through to a host writer as the guest writes (what `covenant run` does).
    Forward(Box<dyn Write + Send>),
    /// Counted against the output limit, then dropped.
    Discard,
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputSink::Capture => f.write_str("Capture"),
            OutputSink::Forward(_) => f.write_str("Forward(..)"),
            OutputSink::Discard => f.write_str("Discard"),
        }
    }
}

#[derive(Debug)]
struct Output {
    sink: OutputSink,
    captured: Vec<u8>,
}

impl Output {
    fn new(sink: OutputSink) -> Self {
        Output {
            sink,
            captured: Vec::new(),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Errno> {
        match &mut self.sink {
            OutputSink::Capture => self.captured.extend_from_slice(data),
            OutputSink::Forward(writer) => {
                writer.write_all(data).map_err(|_| Errno::Io)?;
                writer.flush().map_err(|_| Errno::Io)?;
            }
            OutputSink::Discard => {}
        }
        Ok(())
    }
}

/// A standard stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

/// What a descriptor refers to: a standard stream (with its rights and flags), or a file or
/// directory of the in-memory file system (whose [`Handle`] carries its own rights and flags,
/// checked by the file system on every call).
#[derive(Debug)]
pub(crate) enum Descriptor {
    Stream {
        stream: Stream,
        rights_base: Rights,
        rights_inheriting: Rights,
        flags: u16,
    },
    Fs(Handle),
}

impl Descriptor {
    pub(crate) fn filetype(&self) -> Filetype {
        match self {
            Descriptor::Stream { .. } => Filetype::CharacterDevice,
            Descriptor::Fs(handle) => handle.filetype(),
        }
    }

    /// The standard stream, if this is one.
    pub(crate) fn stream(&self) -> Option<Stream> {
        match self {
            Descriptor::Stream { stream, .. } => Some(*stream),
            Descriptor::Fs(_) => None,
        }
    }

    pub(crate) fn rights_base(&self) -> Rights {
        match self {
            Descriptor::Stream { rights_base, .. } => *rights_base,
            Descriptor::Fs(handle) => handle.rights_base(),
        }
    }

    pub(crate) fn rights_inheriting(&self) -> Rights {
        match self {
            Descriptor::Stream {
                rights_inheriting, ..
            } => *rights_inheriting,
            Descriptor::Fs(handle) => handle.rights_inheriting(),
        }
    }

    pub(crate) fn flags(&self) -> u16 {
        match self {
            Descriptor::Stream { flags, .. } => *flags,
            Descriptor::Fs(handle) => handle.fdflags(),
        }
    }

    /// `fd_fdstat_set_rights`: rights only shrink.
    pub(crate) fn set_rights(&mut self, base: Rights, inheriting: Rights) -> Result<(), Errno> {
        match self {
            Descriptor::Stream {
                rights_base,
                rights_inheriting,
                ..
            } => {
                if !rights_base.contains(base) || !rights_inheriting.contains(inheriting) {
                    return Err(Errno::Notcapable);
                }
                *rights_base = base;
                *rights_inheriting = inheriting;
                Ok(())
            }
            Descriptor::Fs(handle) => handle.set_rights(base, inheriting),
        }
    }

    /// `fd_fdstat_set_flags`.
    pub(crate) fn set_flags(&mut self, new: u16) -> Result<(), Errno> {
        match self {
            Descriptor::Stream {
                rights_base, flags, ..
            } => {
                if !rights_base.contains(Rights::FD_FDSTAT_SET_FLAGS) {
                    return Err(Errno::Notcapable);
                }
                if new & !crate::types::fdflags::ALL != 0 {
                    return Err(Errno::Inval);
                }
                *flags = new;
                Ok(())
            }
            Descriptor::Fs(handle) => handle.set_fdflags(new),
        }
    }
}

/// The rights standard streams carry. Reading stdin, writing stdout/stderr, and polling.
const STDIN_RIGHTS: Rights = Rights(Rights::FD_READ.0 | Rights::POLL_FD_READWRITE.0);
const STDOUT_RIGHTS: Rights =
    Rights(Rights::FD_WRITE.0 | Rights::POLL_FD_READWRITE.0 | Rights::FD_FDSTAT_SET_FLAGS.0);

/// Everything a guest's WASI calls can reach. Built only through [`WasiCtxBuilder`].
#[derive(Debug)]
pub struct WasiCtx {
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) env: Vec<Vec<u8>>,
    stdin: Vec<u8>,
    stdin_pos: usize,
    stdout: Output,
    stderr: Output,
    output_limit: u64,
    output_used: u64,
    pub(crate) clock_allowed: bool,
    pub(crate) random_allowed: bool,
    deadline: Option<Instant>,
    pub(crate) fds: BTreeMap<u32, Descriptor>,
    file_system: Option<FileSystem>,
}

/// Builds a [`WasiCtx`]. Defaults: no arguments, no environment, empty stdin, stdout and stderr
/// captured, output limit [`WasiCtxBuilder::DEFAULT_MAX_OUTPUT_BYTES`], clocks and randomness
/// allowed, no deadline.
#[derive(Debug)]
pub struct WasiCtxBuilder {
    program_name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
    stdout: OutputSink,
    stderr: OutputSink,
    output_limit: u64,
    clock_allowed: bool,
    random_allowed: bool,
    view: Option<View>,
}

/// Why a context could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// An argument or environment entry holds a NUL byte, which the ABI cannot carry.
    #[error("{what} {value:?} contains a NUL byte, which WASI cannot pass to a guest")]
    Nul {
        /// "argument" or "environment variable".
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// An environment variable name is empty or holds `=`.
    #[error("environment variable name {0:?} is empty or contains '='")]
    BadEnvName(String),
    /// Arguments and environment together exceed [`MAX_ARGS_ENV_BYTES`].
    #[error("arguments and environment take {0} bytes; the limit is {MAX_ARGS_ENV_BYTES}")]
    TooLarge(usize),
    /// The view's preopened directories could not be opened (more of them than its
    /// descriptor quota allows, or a poisoned file system).
    #[error("opening the file system's preopened directories: {0}")]
    Preopens(Errno),
}

impl WasiCtxBuilder {
    /// Default cap on stdout plus stderr: 64 MiB. A guest that floods its output is stopped
    /// with `output-limit` instead of filling the host's memory or disk.
    pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 * 1024 * 1024;

    /// A builder for a guest whose `argv[0]` is `program_name`.
    pub fn new(program_name: impl Into<String>) -> Self {
        WasiCtxBuilder {
            program_name: program_name.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: Vec::new(),
            stdout: OutputSink::Capture,
            stderr: OutputSink::Capture,
            output_limit: Self::DEFAULT_MAX_OUTPUT_BYTES,
            clock_allowed: true,
            random_allowed: true,
            view: None,
        }
    }

    /// Appends arguments after `argv[0]`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The bytes the guest reads from stdin. Default: none (end of file at once).
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = bytes;
        self
    }

    /// Where stdout goes. Default: [`OutputSink::Capture`].
    pub fn stdout(mut self, sink: OutputSink) -> Self {
        self.stdout = sink;
        self
    }

    /// Where stderr goes. Default: [`OutputSink::Capture`].
    pub fn stderr(mut self, sink: OutputSink) -> Self {
        self.stderr = sink;
        self
    }

    /// Cap on bytes written to stdout and stderr together.
    /// Default: [`Self::DEFAULT_MAX_OUTPUT_BYTES`].
    pub fn max_output_bytes(mut self, limit: u64) -> Self {
        self.output_limit = limit;
        self
    }

    /// Whether `clock_time_get`/`clock_res_get` answer (otherwise `ENOTCAPABLE`) and
    /// `poll_oneoff` accepts clock subscriptions. Default: allowed.
    pub fn allow_clock(mut self, allowed: bool) -> Self {
        self.clock_allowed = allowed;
        self
    }

    /// Whether `random_get` answers (otherwise `ENOTCAPABLE`). Default: allowed.
    pub fn allow_random(mut self, allowed: bool) -> Self {
        self.random_allowed = allowed;
        self
    }

    /// The file system the guest sees: `view`'s preopened directories become descriptors
    /// 3, 4, ... in the order of its capability table, each with the rights its access grants
    /// (see [`crate::fs::caps`]). Default: none, so every path call answers as POSIX does for a
    /// process with no directories (`EBADF` for descriptors that are not open).
    pub fn file_system(mut self, view: View) -> Self {
        self.view = Some(view);
        self
    }

    /// Builds the context.
    ///
    /// # Errors
    /// A NUL byte in an argument or variable, a bad variable name, or more than
    /// [`MAX_ARGS_ENV_BYTES`] of them; [`BuildError::Preopens`] if the view's preopens cannot
    /// be opened.
    pub fn build(self) -> Result<WasiCtx, BuildError> {
        let mut total = 0usize;
        let mut args = Vec::with_capacity(self.args.len() + 1);
        for arg in std::iter::once(self.program_name).chain(self.args) {
            if arg.contains('\0') {
                return Err(BuildError::Nul {
                    what: "argument",
                    value: arg,
                });
            }
            total += arg.len() + 1;
            args.push(nul_terminated(&arg));
        }
        let mut env = Vec::with_capacity(self.env.len());
        for (key, value) in self.env {
            if key.is_empty() || key.contains('=') {
                return Err(BuildError::BadEnvName(key));
            }
            let entry = format!("{key}={value}");
            if entry.contains('\0') {
                return Err(BuildError::Nul {
                    what: "environment variable",
                    value: entry,
                });
            }
            total += entry.len() + 1;
            env.push(nul_terminated(&entry));
        }
        if total > MAX_ARGS_ENV_BYTES {
            return Err(BuildError::TooLarge(total));
        }
        let mut fds = BTreeMap::new();
        let stdio = [
            (Stream::Stdin, STDIN_RIGHTS),
            (Stream::Stdout, STDOUT_RIGHTS),
            (Stream::Stderr, STDOUT_RIGHTS),
        ];
        for (fd, (stream, rights)) in (0u32..).zip(stdio) {
            let descriptor = Descriptor::Stream {
                stream,
                rights_base: rights,
                rights_inheriting: Rights::NONE,
                flags: 0,
            };
            fds.insert(fd, descriptor);
        }
        let file_system = match &self.view {
            None => None,
            Some(view) => {
                let preopens = view.open_preopens().map_err(BuildError::Preopens)?;
                for (fd, handle) in (3u32..).zip(preopens) {
                    fds.insert(fd, Descriptor::Fs(handle));
                }
                Some(view.file_system().clone())
            }
        };
        Ok(WasiCtx {
            args,
            env,
            stdin: self.stdin,
            stdin_pos: 0,
            stdout: Output::new(self.stdout),
            stderr: Output::new(self.stderr),
            output_limit: self.output_limit,
            output_used: 0,
            clock_allowed: self.clock_allowed,
            random_allowed: self.random_allowed,
            deadline: None,
            fds,
            file_system,
        })
    }
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend_from_slice(s.as_bytes());
    bytes.push(0);
    bytes
}

impl WasiCtx {
    /// A builder; see [`WasiCtxBuilder`].
    pub fn builder(program_name: impl Into<String>) -> WasiCtxBuilder {
        WasiCtxBuilder::new(program_name)
    }

    /// Sets the wall-clock deadline host calls respect: a guest asleep in `poll_oneoff` wakes
    /// at the deadline and the instance ends with [`Termination::Timeout`]. The sandbox sets
    /// this when a run starts.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// Sets the cap on bytes written to stdout and stderr together (the sandbox applies the
    /// run's limit here).
    pub fn set_max_output_bytes(&mut self, limit: u64) {
        self.output_limit = limit;
    }

    /// The file system this context's descriptors refer to, if it was built with one. Its
    /// files stay readable after the run through any view of it.
    pub fn file_system(&self) -> Option<&FileSystem> {
        self.file_system.as_ref()
    }

    /// The lowest descriptor number not in use (POSIX hands out the lowest).
    pub(crate) fn free_fd(&self) -> Result<u32, Errno> {
        let mut candidate = 0u32;
        for fd in self.fds.keys() {
            if *fd != candidate {
                break;
            }
            candidate = candidate.checked_add(1).ok_or(Errno::Mfile)?;
        }
        Ok(candidate)
    }

    /// The wall-clock deadline, if one is set.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// What the guest wrote to stdout, when stdout is [`OutputSink::Capture`].
    pub fn take_stdout(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.stdout.captured)
    }

    /// What the guest wrote to stderr, when stderr is [`OutputSink::Capture`].
    pub fn take_stderr(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.stderr.captured)
    }

    /// Bytes written to stdout and stderr so far.
    pub fn output_bytes(&self) -> u64 {
        self.output_used
    }

    /// Writes guest bytes to stdout or stderr, charging them to the output limit. If the write
    /// would pass the limit, the part that fits is written and the instance ends.
    pub(crate) fn write_output(
        &mut self,
        stream: Stream,
        data: &[u8],
    ) -> Result<Result<(), Errno>, Termination> {
        let remaining = self.output_limit.saturating_sub(self.output_used);
        let fits = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let out = if stream == Stream::Stdout {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        let written = out.write(&data[..fits]);
        self.output_used += fits as u64;
        if fits < data.len() {
            return Err(Termination::OutputLimit {
                limit: self.output_limit,
            });
        }
        Ok(written)
    }

    /// Reads from stdin into `buf`, returning how many bytes were read (0 at end of input).
    pub(crate) fn read_stdin(&mut self, buf: &mut [u8]) -> usize {
        let rest = &self.stdin[self.stdin_pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.stdin_pos += n;
        n
    }

    /// Whether stdin has bytes left (for `poll_oneoff` readiness).
    pub(crate) fn stdin_remaining(&self) -> u64 {
        (self.stdin.len() - self.stdin_pos) as u64
    }

    /// Nanoseconds on the given clock.
    pub(crate) fn now(&self, clock: crate::types::ClockId) -> Result<u64, Errno> {
        use crate::types::ClockId;
        if !self.clock_allowed {
            return Err(Errno::Notcapable);
        }
        match clock {
            ClockId::Realtime => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(duration_ns)
                .map_err(|_| Errno::Io),
            ClockId::Monotonic => Ok(duration_ns(monotonic_base().elapsed())),
            // CPU-time clocks would tell a guest how much the host scheduled it, a timing
            // side channel; preview1 lets us refuse them.
            ClockId::ProcessCputime | ClockId::ThreadCputime => Err(Errno::Notsup),
        }
    }
}

/// A process-wide origin for the monotonic clock, so it never goes backwards across instances.
fn monotonic_base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

pub(crate) fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
