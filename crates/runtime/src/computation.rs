//! The computation: its state machine, the rule checks in front of every operation, and the
//! operations themselves.
//!
//! ```text
//! Provisioning ──(program + every required input)──▶ Ready ──run──▶ Running ──▶ Finished
//!      ▲                                               ▲                         │  │
//!      │                                               └──(every consent, when ──┘  │
//!      │                                                   runs.max are used up)    │
//!      └── any state but Running ──(every principal agrees to close)──▶ Closed ◀────┘
//! Running ──(the engine fails: not the guest's fault)──▶ Failed
//! ```
//!
//! While fewer than `runs.max` runs have happened, a starter may run again straight from
//! `Finished`. Every operation first checks, in this order: the caller is a declared principal;
//! the caller holds the role the operation needs (for that input or output); the state allows
//! it; then the operation's own conditions. A refusal ([`Refusal`]) changes nothing.
//!
//! Each state's data lives in its own struct inside [`Stage`], and a transition consumes the
//! old struct to build the next (the shape rustls gives its handshake states): a `Ready`
//! cannot exist without a loaded program, a `Finished` without a run's outputs. The checks
//! produce an [`Authorised`] token that only this module's `authorise_*` functions construct,
//! and every state-changing step takes one, so a path that skips its check does not compile.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use covenant_policy::{
    Capabilities, Grant, Phase, Policy, RerunConsent, Resource, Rights, Subject, ValidPolicy,
    capabilities,
};
use covenant_sandbox::{
    Entry, Module, Outcome, RunError, RunLimits, RunOutput, Sandbox, SandboxConfig, TrapKind,
};
use covenant_wasi::WasiCtxBuilder;
use covenant_wasi::fs::{
    Access, CapabilityTable, FileReader, FileSystem, FsConfig, FsError, Handle, Quotas, Timestamps,
    View,
};
use covenant_wasi::types::{Errno, Filetype, Rights as FdRights};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::{Action, InternalError, Refusal, RuntimeError, SetupError};
use crate::receipt::{
    Committer, OutputStatus, RECEIPT_FORMAT, RECEIPT_VERSION, ReceiptClaims, ReceiptInput,
    ReceiptLimits, ReceiptOutput, ReceiptSigner, SALT_BYTES, fresh_salt,
};

/// Bytes the file system allows beyond the inputs' bounds and the output bound, for
/// directory entries' names and the directories the layout needs. Names are short (a policy
/// path is at most 1 KiB, at most 1 024 inputs and outputs); this stops the names the guest
/// creates from growing the tree without limit while leaving room for the declared layout.
pub const FS_NAMES_ALLOWANCE_BYTES: u64 = 4 << 20;

/// The directory of the computation's *staging* file system where uploads are written until
/// they are accepted. Staging is a file system of its own, with its own quota (the inputs'
/// bounds), that no program or principal ever gets a view of: a half-sent input is never
/// visible to a run, takes nothing from the run's quota and cannot be measured by the guest,
/// so an upload and a run never wait for each other (and a starter never learns that another
/// provider is sending). An accepted input is moved, not copied, into the computation's file
/// system ([`FileSystem::move_file_from`]).
const STAGING_DIR: &str = "/uploads";

/// Guests of one computation that run at once: one. Runs are sequential by the state
/// machine; sizing the engine's instance pool to one keeps a computation from reserving
/// address space for instances it can never have.
pub const INSTANCES_PER_COMPUTATION: u32 = 1;

/// Compiled modules a computation's sandbox keeps: one, its program. A computation never
/// loads a second program, so a larger cache would only hold memory.
pub const MODULES_CACHED: usize = 1;

/// A party to the computation, by the name the policy declares. The TLS layer makes one from
/// the name of the policy principal whose certificate the client presented
/// ([`Computation::principal_for_certificate`]); the computation checks every name it is
/// given against the policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Principal(String);

impl Principal {
    /// The principal called `name`. Whether the policy declares it is checked by each
    /// operation.
    pub fn new(name: impl Into<String>) -> Self {
        Principal(name.into())
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// Where the computation is in its life. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Waiting for the program and the required inputs.
    Provisioning,
    /// Everything a run needs is present.
    Ready,
    /// The guest is running.
    Running,
    /// A run has ended; its outputs can be fetched.
    Finished,
    /// Every principal agreed to end the computation; its data is gone.
    Closed,
    /// The runtime failed during a run (not the guest: guest faults are outcomes).
    Failed,
}

impl State {
    /// The state's name: `provisioning`, `ready`, ...
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            State::Provisioning => "provisioning",
            State::Ready => "ready",
            State::Running => "running",
            State::Finished => "finished",
            State::Closed => "closed",
            State::Failed => "failed",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An output as the policy names it: a file's guest path, `stdout` or `stderr`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutputName {
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
    /// A file the program writes.
    File(String),
}

impl OutputName {
    /// `stdout`, `stderr`, or a file path.
    #[must_use]
    pub fn parse(text: &str) -> OutputName {
        match text {
            "stdout" => OutputName::Stdout,
            "stderr" => OutputName::Stderr,
            path => OutputName::File(path.to_owned()),
        }
    }

    /// The policy's spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            OutputName::Stdout => "stdout",
            OutputName::Stderr => "stderr",
            OutputName::File(path) => path,
        }
    }
}

/// Proof that the caller passed the checks for operation `T`. Only the `authorise_*`
/// functions of this module build one.
#[derive(Debug)]
struct Authorised<T> {
    principal: String,
    what: T,
}

/// The program, loaded.
#[derive(Debug, Clone)]
struct LoadedProgram {
    module: Module,
    sha256: String,
}

/// An input that arrived whole and passed its checks. Its file is sealed (immutable) from
/// then on, and its hash is checked again before every receipt.
#[derive(Debug, Clone)]
struct StoredInput {
    sha256: [u8; 32],
    bytes: u64,
    /// The receipt's commitment to its bytes.
    commitment: String,
    /// The commitment's salt: for its provider only (in the answer to the upload, and in the
    /// provider's own `status`, in case that answer was lost).
    salt: [u8; SALT_BYTES],
}

/// What a finished run left for its readers.
#[derive(Debug)]
struct RunResult {
    stdout: Arc<[u8]>,
    stderr: Arc<[u8]>,
    /// Every declared output (by the policy's spelling): its status and, when it is released
    /// (`written`), the salt of its commitment, which goes to its readers with it.
    outputs: BTreeMap<String, (OutputStatus, Option<[u8; SALT_BYTES]>)>,
}

#[derive(Debug)]
struct Provisioning {
    program: Option<LoadedProgram>,
}

#[derive(Debug)]
struct Ready {
    program: LoadedProgram,
}

#[derive(Debug)]
struct Running {
    program: LoadedProgram,
    run: u32,
}

#[derive(Debug)]
struct Finished {
    program: LoadedProgram,
    result: RunResult,
    consents: BTreeSet<String>,
}

/// The computation's state and that state's data.
#[derive(Debug)]
enum Stage {
    Provisioning(Provisioning),
    Ready(Ready),
    Running(Running),
    Finished(Finished),
    Closed,
    Failed,
}

impl Stage {
    fn state(&self) -> State {
        match self {
            Stage::Provisioning(_) => State::Provisioning,
            Stage::Ready(_) => State::Ready,
            Stage::Running(_) => State::Running,
            Stage::Finished(_) => State::Finished,
            Stage::Closed => State::Closed,
            Stage::Failed => State::Failed,
        }
    }

    fn program(&self) -> Option<&LoadedProgram> {
        match self {
            Stage::Provisioning(p) => p.program.as_ref(),
            Stage::Ready(r) => Some(&r.program),
            Stage::Running(r) => Some(&r.program),
            Stage::Finished(f) => Some(&f.program),
            Stage::Closed | Stage::Failed => None,
        }
    }
}

impl Provisioning {
    fn with_program(self, program: LoadedProgram, _: &Authorised<ProgramUpload>) -> Provisioning {
        Provisioning {
            program: Some(program),
        }
    }

    /// `Ready` if the program and every required input are present.
    fn try_ready(self, inputs_complete: bool) -> Result<Ready, Provisioning> {
        match self.program {
            Some(program) if inputs_complete => Ok(Ready { program }),
            program => Err(Provisioning { program }),
        }
    }
}

impl Ready {
    fn start(self, run: u32, _: &Authorised<RunStart>) -> Running {
        Running {
            program: self.program,
            run,
        }
    }
}

impl Running {
    fn finish(self, result: RunResult) -> Finished {
        Finished {
            program: self.program,
            result,
            consents: BTreeSet::new(),
        }
    }
}

impl Finished {
    /// A further run within `runs.max`: straight from `Finished`.
    fn start(self, run: u32, _: &Authorised<RunStart>) -> Running {
        Running {
            program: self.program,
            run,
        }
    }

    /// Every principal consented: back to `Ready`, the last run's outputs dropped.
    fn into_ready(self, _: &Authorised<RerunConsentGiven>) -> Ready {
        Ready {
            program: self.program,
        }
    }
}

#[derive(Debug)]
struct ProgramUpload;
#[derive(Debug)]
struct InputGrant {
    path: String,
    max_bytes: u64,
    pinned: Option<String>,
}
#[derive(Debug)]
struct RunStart;
#[derive(Debug)]
struct OutputRead(OutputName);
#[derive(Debug)]
struct RerunConsentGiven;
#[derive(Debug)]
struct CloseAgreement;

/// What became of one declared output in a run (public: the receipt says it too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OutputRecord {
    /// The output as the policy names it: a guest path, `stdout` or `stderr`.
    pub path: String,
    /// `written` (released to its readers), `missing`, `directory`, `symlink`, or `withheld`
    /// (the run exceeded the output limit, so nothing of it is released).
    pub status: OutputStatus,
}

/// The public record of one run: visible to every principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// The run's number, from 1.
    pub run: u32,
    /// How the guest ended.
    pub outcome: Outcome,
    /// What became of each declared output, in policy order.
    pub outputs: Vec<OutputRecord>,
    /// A sentence on a trap.
    pub detail: Option<String>,
    /// Fuel used (the engine's units).
    pub fuel_used: u64,
    /// The guest's wall time, microseconds.
    pub wall_time_us: u64,
    /// The guest's largest linear memory, bytes.
    pub peak_memory_bytes: u64,
    /// Unix milliseconds at the start.
    pub started_at_ms: u64,
    /// Unix milliseconds at the end.
    pub finished_at_ms: u64,
}

/// An input in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InputStatus {
    /// Guest path.
    pub path: String,
    /// Who provides it.
    pub provider: String,
    /// Whether a run needs it.
    pub required: bool,
    /// Whether it has arrived. `None` for another provider's optional input: whether it was
    /// uploaded is that provider's to tell (see `docs/policy.md`, nobody lists).
    pub provided: Option<bool>,
    /// The salt of the receipts' commitment to it, hex: only in its own provider's status,
    /// once it is accepted (the provider got it with the upload's answer; this is in case that
    /// answer was lost).
    pub salt: Option<String>,
}

/// What every principal may see of the computation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Status {
    /// The computation's id.
    pub computation: String,
    /// The current state.
    pub state: State,
    /// Whether the program has arrived (and was loaded).
    pub program_provided: bool,
    /// Every input, in policy order.
    pub inputs: Vec<InputStatus>,
    /// Runs allowed without consent (`runs.max`).
    pub runs_max: u32,
    /// Runs that have ended, with their outcomes.
    pub runs: Vec<RunRecord>,
    /// Principals who consented to a further run since the last one.
    pub rerun_consents: Vec<String>,
    /// Principals who agreed to close.
    pub close_agreed: Vec<String>,
    /// Why the computation failed, if it did: a code and a sentence. The detail (file-system
    /// paths, engine messages) goes to the operator's log, never to principals.
    pub failure: Option<Failure>,
}

/// Why a computation is `Failed`: a fault of the runtime itself, never of the guest (a
/// guest's fault is its run's outcome) nor of a principal (a principal's mistake is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Failure {
    /// A stable code.
    pub code: FailureCode,
    /// One sentence for every principal.
    pub message: String,
}

/// The kinds of [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureCode {
    /// The runtime failed preparing or finishing a run (the engine, the file system, the
    /// receipt key).
    RuntimeFault,
    /// The task running a run stopped without a result.
    RunAbandoned,
    /// An input no longer had the hash it was accepted with when a run ended. Sealed inputs
    /// make this impossible; the check is the defence behind the seal. No receipt is signed.
    InputChanged,
}

impl FailureCode {
    /// The code as the API spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::RuntimeFault => "runtime-fault",
            FailureCode::RunAbandoned => "run-abandoned",
            FailureCode::InputChanged => "input-changed",
        }
    }
}

/// Progress of an agreement that needs every principal (re-run consent, closing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Agreement {
    /// Whether everyone has now agreed (and the transition happened).
    pub complete: bool,
    /// Who has not agreed yet.
    pub missing: Vec<String>,
}

/// The bytes of one output, streamed, with what its reader needs to check them against the
/// run's receipt.
#[derive(Debug)]
pub struct OutputReader {
    source: OutputSource,
    run: u32,
    salt: [u8; SALT_BYTES],
}

impl OutputReader {
    /// The run that wrote it.
    #[must_use]
    pub fn run(&self) -> u32 {
        self.run
    }

    /// The salt of the receipt's commitment to these bytes, hex: for this output's readers
    /// only (`covenant receipt verify --file --salt`, `docs/receipts.md`).
    #[must_use]
    pub fn salt_hex(&self) -> String {
        hex::encode(self.salt)
    }
}

#[derive(Debug)]
enum OutputSource {
    Bytes(Cursor<Arc<[u8]>>),
    File(FileReader),
}

impl Read for OutputReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.source {
            OutputSource::Bytes(c) => c.read(buf),
            OutputSource::File(f) => f.read(buf),
        }
    }
}

/// `path` relative to `/`, for a handle on the root (`/input/a` → `input/a`).
fn from_root(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// `ENOTDIR` unless every directory on the way to absolute `path` is a directory and not a
/// symbolic link. The runtime's own descriptor on `/` could follow a link anywhere; the
/// runtime's lookups (outputs, inputs) follow none, so that a link a guest planted never makes
/// the runtime read, hash or release another file. (No guest runs meanwhile, so the answer
/// cannot change before the lookup that follows.)
fn no_links_on_the_way(root: &Handle, path: &str) -> Result<(), Errno> {
    let rel = from_root(path);
    let mut prefix = String::new();
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return Ok(());
        }
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        let stat = root.filestat_at(0, &prefix)?;
        if stat.filetype != Filetype::Directory as u8 {
            return Err(Errno::Notdir);
        }
    }
    Ok(())
}

/// What the program left at the declared output file `path`, and its size when it is a
/// regular file. No link is followed, on the way or at the end: a link is reported, never
/// released.
///
/// # Errors
/// File-system failures other than the file being absent.
fn inspect_output(root: &Handle, path: &str) -> Result<(OutputStatus, u64), RuntimeError> {
    let stat = no_links_on_the_way(root, path).and_then(|()| root.filestat_at(0, from_root(path)));
    match stat {
        Ok(stat) if stat.filetype == Filetype::RegularFile as u8 => {
            Ok((OutputStatus::Written, stat.size))
        }
        Ok(stat) if stat.filetype == Filetype::Directory as u8 => Ok((OutputStatus::Directory, 0)),
        Ok(stat) if stat.filetype == Filetype::SymbolicLink as u8 => Ok((OutputStatus::Symlink, 0)),
        // The tree holds only files, directories and links; anything else is not released, and
        // neither is a file behind a link on the way (the layout rules make that impossible).
        Ok(_) | Err(Errno::Noent | Errno::Notdir) => Ok((OutputStatus::Missing, 0)),
        Err(errno) => Err(FsError::Guest {
            path: path.to_owned(),
            errno,
        }
        .into()),
    }
}

/// Streams the regular file at absolute `path` (no link followed, on the way or at the end)
/// to `each`, a chunk at a time.
///
/// # Errors
/// [`InternalError::FileSystem`] if it cannot be opened (absent, a directory, a link) or read.
fn read_regular(
    root: &Handle,
    path: &str,
    mut each: impl FnMut(&[u8]),
) -> Result<(), RuntimeError> {
    let err = |errno| FsError::Guest {
        path: path.to_owned(),
        errno,
    };
    no_links_on_the_way(root, path).map_err(err)?;
    let mut file = root
        .open_at(0, from_root(path), 0, FdRights::FD_READ, FdRights::NONE, 0)
        .map_err(err)?;
    if file.filetype() != Filetype::RegularFile {
        return Err(err(Errno::Isdir).into());
    }
    let mut buf = vec![0u8; covenant_wasi::fs::view::HOST_IO_CHUNK_BYTES];
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n]);
    }
}

/// Opens the directory at `rel` (relative to `root`) for listing and removing entries.
fn open_dir(root: &Handle, rel: &str) -> Result<Handle, Errno> {
    let rights = root
        .rights_inheriting()
        .intersect(covenant_wasi::fs::caps::DIRECTORY_RIGHTS);
    root.open_at(
        0,
        rel,
        covenant_wasi::types::oflags::DIRECTORY,
        rights,
        root.rights_inheriting(),
        0,
    )
}

/// Removes everything beneath the directory `dir`, depth first, leaving it empty. The depth
/// is bounded by the file system's depth quota.
fn remove_contents(dir: &Handle) -> Result<(), Errno> {
    // Every name first (the listing is in memory and bounded by the inode quota), then the
    // removals, so that removing does not disturb the listing.
    let mut entries = Vec::new();
    let mut cookie = 0;
    loop {
        let batch = dir.readdir(cookie, 1 << 20)?;
        let Some(last) = batch.last() else { break };
        cookie = last.next;
        entries.extend(
            batch
                .into_iter()
                .filter(|d| d.name != "." && d.name != "..")
                .map(|d| (d.name, d.filetype)),
        );
    }
    for (name, filetype) in entries {
        if filetype == Filetype::Directory {
            remove_contents(&open_dir(dir, &name)?)?;
            dir.remove_directory(&name)?;
        } else {
            dir.unlink_file(&name)?;
        }
    }
    Ok(())
}

/// Removes the file at absolute `path` through `view`, whose first preopen is `path`'s
/// directory with `write` access. Absent already is fine.
fn unlink(view: &View, path: &str) -> Result<(), RuntimeError> {
    let errno = |errno| FsError::Guest {
        path: path.to_owned(),
        errno,
    };
    let dirs = view.open_preopens().map_err(errno)?;
    let dir = dirs.first().ok_or_else(|| errno(Errno::Noent))?;
    match dir.unlink_file(file_name(path)) {
        Ok(()) | Err(Errno::Noent) => Ok(()),
        Err(e) => Err(errno(e).into()),
    }
}

/// The inputs whose uploads are under way, shared with the [`Reservation`]s that free them.
#[derive(Debug, Default)]
struct Uploads(Arc<std::sync::Mutex<BTreeSet<String>>>);

impl Uploads {
    fn set(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // The set is only ever inserted into or removed from; a panic elsewhere while it was
        // held cannot leave it half changed, so a poisoned lock's contents are still right.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn contains(&self, path: &str) -> bool {
        self.set().contains(path)
    }

    fn reserve(&self, path: &str) -> Reservation {
        self.set().insert(path.to_owned());
        Reservation {
            uploads: Arc::clone(&self.0),
            path: path.to_owned(),
        }
    }
}

/// An input reserved for one upload; dropping it frees the input.
#[derive(Debug)]
struct Reservation {
    uploads: Arc<std::sync::Mutex<BTreeSet<String>>>,
    path: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.uploads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.path);
    }
}

/// An input upload the checks admitted ([`Computation::begin_input`]). The input stays
/// reserved until the upload is finished or dropped.
#[derive(Debug)]
pub struct InputUpload {
    computation: u64,
    grant: InputGrant,
    /// Where the bytes go until the input is accepted, beneath [`STAGING_DIR`].
    staged: String,
    /// A view of [`STAGING_DIR`] alone.
    view: View,
    /// The salt of the receipt's commitment to this input, for its provider.
    salt: [u8; SALT_BYTES],
    reservation: Reservation,
}

/// An input whose bytes arrived whole, within bounds and with the pinned hash, waiting for
/// [`Computation::finish_input`]. Dropped instead, the input stays absent and its staged bytes
/// are removed: they never reach a program.
#[derive(Debug)]
pub struct WrittenInput {
    computation: u64,
    path: String,
    staged: String,
    sha256: [u8; 32],
    bytes: u64,
    salt: [u8; SALT_BYTES],
    commitment: String,
    view: View,
    _reservation: Reservation,
}

impl WrittenInput {
    /// SHA-256 of the bytes.
    #[must_use]
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// How many bytes arrived.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The salt of the receipt's commitment to these bytes, hex: for the input's provider
    /// alone, to check its input against receipts (`docs/receipts.md`).
    #[must_use]
    pub fn salt_hex(&self) -> String {
        hex::encode(self.salt)
    }

    /// The commitment receipts will carry for this input.
    #[must_use]
    pub fn commitment(&self) -> &str {
        &self.commitment
    }
}

impl Drop for WrittenInput {
    /// A written input that was never accepted leaves nothing behind: its staged bytes go.
    /// (Once accepted, the staged name is gone already.)
    fn drop(&mut self) {
        if let Err(e) = unlink(&self.view, &self.staged) {
            tracing::warn!(path = %self.path, error = %e, "could not remove a staged upload");
        }
    }
}

impl InputUpload {
    /// The input's guest path.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.grant.path
    }

    /// Streams `reader` into the input's file, hashing and counting as it copies. On any
    /// failure the file is removed and the input stays absent and re-sendable.
    ///
    /// # Errors
    /// Refusals `InputTooLarge`, `InputHashMismatch`, `UploadInterrupted` (the reader
    /// failed); [`InternalError::FileSystem`] if the file system fails.
    pub fn write(self, reader: impl Read) -> Result<WrittenInput, RuntimeError> {
        let InputGrant {
            path,
            max_bytes,
            pinned,
        } = &self.grant;
        let mut hashing = HashingReader {
            inner: reader,
            hasher: Sha256::new(),
            committer: Committer::new(&self.salt),
            count: 0,
            limit: *max_bytes,
            over: false,
        };
        let staged = self.staged.as_str();
        let written = self.view.write_file(staged, &mut hashing);
        let refusal = match written {
            Ok(_) => {
                let found = hex::encode(hashing.hasher.clone().finalize());
                match pinned {
                    Some(expected) if *expected != found => Some(Refusal::InputHashMismatch {
                        path: path.clone(),
                        expected: expected.clone(),
                        found,
                    }),
                    _ => None,
                }
            }
            Err(_) if hashing.over => Some(Refusal::InputTooLarge {
                path: path.clone(),
                max_bytes: *max_bytes,
            }),
            Err(FsError::Io { source, .. }) => Some(Refusal::UploadInterrupted {
                path: path.clone(),
                reason: source.to_string(),
            }),
            Err(other) => {
                unlink(&self.view, staged)?;
                return Err(other.into());
            }
        };
        if let Some(refusal) = refusal {
            unlink(&self.view, staged)?;
            return Err(refusal.into());
        }
        Ok(WrittenInput {
            computation: self.computation,
            path: self.grant.path,
            staged: self.staged,
            sha256: hashing.hasher.finalize().into(),
            bytes: hashing.count,
            salt: self.salt,
            commitment: hashing.committer.finish(),
            view: self.view,
            _reservation: self.reservation,
        })
    }
}

/// The one program upload a computation takes at a time ([`Computation::admit_program`]):
/// without it, the provider could make the runtime buffer and compile any number of
/// `MAX_PROGRAM_BYTES` uploads at once. Dropping it frees the slot.
#[derive(Debug)]
pub struct ProgramSlot(Arc<std::sync::atomic::AtomicBool>);

impl Drop for ProgramSlot {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// The computation's engine, shared with its pending run.
struct SharedSandbox(Arc<Sandbox>);

impl std::fmt::Debug for SharedSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("strategy", &self.0.config().strategy)
            .finish_non_exhaustive()
    }
}

/// A program upload that passed its checks ([`Computation::begin_program`]), to compile
/// without the computation ([`PendingProgram::compile`]).
#[derive(Debug)]
pub struct PendingProgram {
    caller: Principal,
    /// The bytes whose hash was checked: the ones compiled.
    wasm: Vec<u8>,
    sha256: String,
    sandbox: SharedSandbox,
    computation: u64,
}

/// A compiled program, for [`Computation::finish_program`].
#[derive(Debug)]
pub struct CompiledProgram {
    caller: Principal,
    sha256: String,
    module: Module,
    computation: u64,
}

impl PendingProgram {
    /// Checks and compiles the program.
    ///
    /// # Errors
    /// `ProgramNotLoadable` if the sandbox refuses the module (its imports, its bounds, or an
    /// initial memory over the policy's limit).
    pub fn compile(self) -> Result<CompiledProgram, RuntimeError> {
        let module = self
            .sandbox
            .0
            .load(&self.wasm)
            .map_err(|e| Refusal::ProgramNotLoadable {
                reason: e.to_string(),
            })?;
        Ok(CompiledProgram {
            caller: self.caller,
            sha256: self.sha256,
            module,
            computation: self.computation,
        })
    }
}

/// A run that has left `Ready` (the computation is `Running`) and is ready to execute.
/// [`PendingRun::execute`] needs no access to the computation, so the layer above can run it
/// without holding the computation's lock and keep answering `status`; it then hands the
/// result to [`Computation::finish_run`].
#[derive(Debug)]
pub struct PendingRun {
    computation: u64,
    run: u32,
    module: Module,
    wasi: covenant_wasi::WasiCtx,
    limits: RunLimits,
    sandbox: SharedSandbox,
    bytes_before: u64,
}

/// A run that has executed, to hand back to [`Computation::finish_run`].
#[derive(Debug)]
pub struct ExecutedRun {
    computation: u64,
    run: u32,
    result: Result<RunOutput, RunError>,
    started_at_ms: u64,
    finished_at_ms: u64,
    bytes_before: u64,
}

impl PendingRun {
    /// The run's number (1 for the first run), for [`Computation::abandon_run`].
    #[must_use]
    pub fn run(&self) -> u32 {
        self.run
    }

    /// Runs the guest. Whatever the guest does, this returns.
    #[must_use]
    pub fn execute(self) -> ExecutedRun {
        let started_at_ms = unix_ms();
        let result = self
            .sandbox
            .0
            .run(&self.module, self.wasi, &self.limits, &Entry::Command);
        ExecutedRun {
            computation: self.computation,
            run: self.run,
            result,
            started_at_ms,
            finished_at_ms: unix_ms(),
            bytes_before: self.bytes_before,
        }
    }
}

/// What a finished run produced, for the caller of [`Computation::run`].
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The public record.
    pub record: RunRecord,
    /// The signed receipt (compact JWS).
    pub receipt: String,
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One collaborative computation under one validated policy. See the module documentation.
#[derive(Debug)]
pub struct Computation {
    id: u64,
    policy: ValidPolicy,
    caps: Capabilities,
    fs: FileSystem,
    /// Where uploads arrive until accepted (see [`STAGING_DIR`]).
    staging: FileSystem,
    sandbox: SharedSandbox,
    signer: ReceiptSigner,
    stage: Stage,
    inputs: BTreeMap<String, StoredInput>,
    uploads: Uploads,
    /// Held by the program upload under way, if any ([`ProgramSlot`]).
    program_upload: Arc<std::sync::atomic::AtomicBool>,
    runs: Vec<RunRecord>,
    receipts: Vec<String>,
    close_agreed: BTreeSet<String>,
    /// Whether the program was accepted (what `status` says, in every state but `Closed`).
    program_accepted: bool,
    failure: Option<Failure>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The directory part of an absolute guest path (`/input/a.csv` → `/input`).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of an absolute guest path.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether `path` is `dir` or below it.
fn is_under(path: &str, dir: &str) -> bool {
    dir == "/" || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn access_of(rights: Rights) -> Access {
    let mut access = Access::NONE;
    if rights.contains(Rights::READ) {
        access = access | Access::READ;
    }
    if rights.contains(Rights::WRITE) {
        access = access | Access::WRITE;
    }
    if rights.contains(Rights::CREATE) {
        access = access | Access::CREATE;
    }
    access
}

/// The capability table for the file grants among `grants` in `phase` that `keep` selects:
/// each file's directory, with the file's rights.
fn table_for(
    grants: &[Grant],
    phase: Phase,
    keep: impl Fn(&str) -> bool,
) -> Result<CapabilityTable, FsError> {
    let mut table = CapabilityTable::new();
    for grant in grants.iter().filter(|g| g.phase == phase) {
        if let Resource::File(path) = &grant.resource
            && keep(path)
        {
            table.grant(parent(path), access_of(grant.rights))?;
        }
    }
    Ok(table)
}

/// Reads `reader` into the file system while hashing and counting, refusing to go past
/// `limit` bytes: the bytes are held once, in the file system.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    committer: Committer,
    count: u64,
    limit: u64,
    over: bool,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count = self.count.saturating_add(n as u64);
        if self.count > self.limit {
            self.over = true;
            return Err(std::io::Error::other("the upload exceeds its bound"));
        }
        self.hasher.update(&buf[..n]);
        self.committer.update(&buf[..n]);
        Ok(n)
    }
}

impl Computation {
    /// Sets up a computation for `policy`, signing receipts with `signer`: an empty in-memory
    /// file system sized by the policy (every input's bound, the output bound and
    /// [`FS_NAMES_ALLOWANCE_BYTES`]), with the inputs' and outputs' directories made; a
    /// staging file system for uploads, sized by the inputs' bounds, that no program or
    /// principal ever has a view of; and a sandbox for the policy's engine. The computation
    /// starts in `Provisioning`.
    ///
    /// # Errors
    /// [`SetupError::Layout`] if an input lies in or below the directory of an output file
    /// (the program, which may create and write there, could change an input), or an output
    /// file's directory lies below another's (the program could replace it with a link);
    /// [`SetupError::Internal`] if the file system or the engine cannot be set up.
    pub fn new(policy: ValidPolicy, signer: ReceiptSigner) -> Result<Self, SetupError> {
        let p = policy.policy();
        let output_dirs: BTreeSet<&str> = p
            .outputs
            .iter()
            .filter(|o| o.path.starts_with('/'))
            .map(|o| parent(&o.path))
            .collect();
        for outer in &output_dirs {
            if let Some(inner) = output_dirs
                .iter()
                .find(|inner| inner != &outer && is_under(inner, outer))
            {
                return Err(SetupError::Layout(format!(
                    "output directory {inner} is inside output directory {outer}: the program \
                     could replace {inner} with a link; put each output directory beside the \
                     others, not inside one"
                )));
            }
        }
        for output in &p.outputs {
            if let OutputName::File(out) = OutputName::parse(&output.path) {
                for input in &p.inputs {
                    if is_under(&input.path, parent(&out)) {
                        return Err(SetupError::Layout(format!(
                            "input {} is inside {}, where the program may write output {out}",
                            input.path,
                            parent(&out)
                        )));
                    }
                }
            }
        }
        let input_bytes = p
            .inputs
            .iter()
            .fold(0u64, |sum, input| sum.saturating_add(input.max_bytes));
        let largest_input = p.inputs.iter().map(|i| i.max_bytes).max().unwrap_or(1);
        let largest_file = largest_input.max(p.execution.max_output_bytes).max(1);
        let quotas = Quotas {
            max_total_bytes: input_bytes
                .saturating_add(p.execution.max_output_bytes)
                .saturating_add(FS_NAMES_ALLOWANCE_BYTES),
            max_file_bytes: largest_file,
            ..Quotas::default()
        };
        // Without the clock, file times would tell the guest the time of day.
        let timestamps = if p.execution.clock {
            Timestamps::Realtime
        } else {
            Timestamps::Fixed(0)
        };
        let fs = FileSystem::new(FsConfig { quotas, timestamps });
        let staging = FileSystem::new(FsConfig {
            quotas: Quotas {
                max_total_bytes: input_bytes.saturating_add(FS_NAMES_ALLOWANCE_BYTES),
                max_file_bytes: largest_input,
                ..Quotas::default()
            },
            timestamps,
        });
        staging
            .create_dir_all(STAGING_DIR)
            .map_err(InternalError::from)?;
        let dirs: BTreeSet<&str> = p
            .inputs
            .iter()
            .map(|i| parent(&i.path))
            .chain(
                p.outputs
                    .iter()
                    .filter(|o| o.path.starts_with('/'))
                    .map(|o| parent(&o.path)),
            )
            .collect();
        for dir in dirs {
            fs.create_dir_all(dir).map_err(InternalError::from)?;
        }
        let strategy = match p.execution.strategy {
            covenant_policy::Strategy::Jit => covenant_sandbox::Strategy::Jit,
            covenant_policy::Strategy::Interpreter => covenant_sandbox::Strategy::Interpreter,
        };
        let mut config = SandboxConfig::new(strategy);
        config.max_memory_bytes = p.execution.max_memory_bytes;
        config.max_instances = INSTANCES_PER_COMPUTATION;
        config.cache_capacity = MODULES_CACHED;
        let sandbox = Sandbox::new(config).map_err(InternalError::from)?;
        let caps = capabilities(p);
        Ok(Computation {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            caps,
            fs,
            staging,
            sandbox: SharedSandbox(Arc::new(sandbox)),
            signer,
            stage: Stage::Provisioning(Provisioning { program: None }),
            inputs: BTreeMap::new(),
            uploads: Uploads::default(),
            program_upload: Arc::default(),
            runs: Vec::new(),
            receipts: Vec::new(),
            close_agreed: BTreeSet::new(),
            program_accepted: false,
            failure: None,
            policy,
        })
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &ValidPolicy {
        &self.policy
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> State {
        self.stage.state()
    }

    /// The principal whose policy certificate is exactly `der`: how the TLS layer names a
    /// client.
    #[must_use]
    pub fn principal_for_certificate(&self, der: &[u8]) -> Option<Principal> {
        self.policy
            .principal_with_certificate(der)
            .map(Principal::new)
    }

    /// Bytes the computation's file system holds (inputs and output files).
    ///
    /// # Errors
    /// [`InternalError::FileSystem`] if the file system is poisoned.
    pub fn stored_bytes(&self) -> Result<u64, RuntimeError> {
        self.fs
            .usage()
            .map(|u| u.bytes)
            .map_err(|errno| FsError::Guest {
                path: "/".into(),
                errno,
            })
            .map_err(RuntimeError::from)
    }

    /// Bytes of uploads in progress or written and not yet accepted (their file system is not
    /// the run's).
    ///
    /// # Errors
    /// [`InternalError::FileSystem`] if the file system is poisoned.
    pub fn staged_bytes(&self) -> Result<u64, RuntimeError> {
        self.staging
            .usage()
            .map(|u| u.bytes)
            .map_err(|errno| FsError::Guest {
                path: STAGING_DIR.into(),
                errno,
            })
            .map_err(RuntimeError::from)
    }

    fn p(&self) -> &Policy {
        self.policy.policy()
    }

    /// The caller is declared and the policy has not expired: what every operation that
    /// changes or releases anything needs. (`status`, `receipts` and `close` need only
    /// [`Computation::known`]: after expiry parties can still see what happened and end it.)
    fn in_force(&self, caller: &Principal) -> Result<(), Refusal> {
        self.known(caller)?;
        let expires = self.policy.expires();
        if time::OffsetDateTime::now_utc() >= expires {
            return Err(Refusal::PolicyExpired {
                expires: covenant_policy::format_utc(expires),
            });
        }
        Ok(())
    }

    fn known(&self, caller: &Principal) -> Result<(), Refusal> {
        if self.p().principals.iter().any(|p| p.name == caller.0) {
            Ok(())
        } else {
            Err(Refusal::UnknownPrincipal {
                principal: caller.0.clone(),
            })
        }
    }

    fn wrong_state(&self, action: Action) -> Refusal {
        Refusal::WrongState {
            action,
            state: self.state(),
        }
    }

    fn principal_names(&self) -> Vec<String> {
        self.p().principals.iter().map(|p| p.name.clone()).collect()
    }

    fn missing_required(&self) -> Vec<String> {
        self.p()
            .inputs
            .iter()
            .filter(|i| i.required && !self.inputs.contains_key(&i.path))
            .map(|i| i.path.clone())
            .collect()
    }

    // ---- checks: each returns the proof token the operation needs -------------------------

    fn authorise_program(&self, caller: &Principal) -> Result<Authorised<ProgramUpload>, Refusal> {
        self.in_force(caller)?;
        if self.p().program.provider != caller.0 {
            return Err(Refusal::NotProgramProvider);
        }
        match &self.stage {
            Stage::Closed | Stage::Failed => Err(self.wrong_state(Action::ProvideProgram)),
            Stage::Provisioning(Provisioning { program: None }) => Ok(Authorised {
                principal: caller.0.clone(),
                what: ProgramUpload,
            }),
            _ => Err(Refusal::ProgramAlreadyProvided),
        }
    }

    fn authorise_input(
        &self,
        caller: &Principal,
        path: &str,
    ) -> Result<Authorised<InputGrant>, Refusal> {
        self.in_force(caller)?;
        let input = self
            .p()
            .inputs
            .iter()
            .find(|i| i.path == path)
            .ok_or_else(|| Refusal::UnknownInput {
                path: path.to_owned(),
            })?;
        if input.provider != caller.0 {
            return Err(Refusal::NotInputProvider {
                path: path.to_owned(),
            });
        }
        if !matches!(self.stage, Stage::Provisioning(_) | Stage::Ready(_)) {
            return Err(self.wrong_state(Action::ProvideInput));
        }
        if self.inputs.contains_key(path) {
            return Err(Refusal::InputAlreadyProvided {
                path: path.to_owned(),
            });
        }
        if self.uploads.contains(path) {
            return Err(Refusal::UploadInProgress {
                path: path.to_owned(),
            });
        }
        Ok(Authorised {
            principal: caller.0.clone(),
            what: InputGrant {
                path: input.path.clone(),
                max_bytes: input.max_bytes,
                pinned: input.sha256.clone(),
            },
        })
    }

    fn authorise_run(&self, caller: &Principal) -> Result<Authorised<RunStart>, Refusal> {
        self.in_force(caller)?;
        if !self.p().runs.starters.contains(&caller.0) {
            return Err(Refusal::NotStarter);
        }
        match &self.stage {
            Stage::Provisioning(p) if p.program.is_none() => Err(Refusal::ProgramMissing),
            Stage::Provisioning(_) => Err(Refusal::InputsMissing {
                paths: self.missing_required(),
            }),
            Stage::Ready(_) => Ok(()),
            Stage::Finished(f) => {
                let done = u32::try_from(self.runs.len()).unwrap_or(u32::MAX);
                if done < self.p().runs.max {
                    Ok(())
                } else if self.p().runs.rerun_consent == RerunConsent::Never {
                    Err(Refusal::RunsExhausted {
                        max: self.p().runs.max,
                    })
                } else {
                    Err(Refusal::ConsentMissing {
                        missing: self
                            .principal_names()
                            .into_iter()
                            .filter(|n| !f.consents.contains(n))
                            .collect(),
                    })
                }
            }
            Stage::Running(_) | Stage::Closed | Stage::Failed => Err(self.wrong_state(Action::Run)),
        }?;
        Ok(Authorised {
            principal: caller.0.clone(),
            what: RunStart,
        })
    }

    fn authorise_fetch(
        &self,
        caller: &Principal,
        output: &str,
    ) -> Result<Authorised<OutputRead>, Refusal> {
        self.in_force(caller)?;
        let declared = self
            .p()
            .outputs
            .iter()
            .find(|o| o.path == output)
            .ok_or_else(|| Refusal::UnknownOutput {
                path: output.to_owned(),
            })?;
        if !declared.readers.contains(&caller.0) {
            return Err(Refusal::NotReader {
                path: output.to_owned(),
            });
        }
        let Stage::Finished(finished) = &self.stage else {
            return Err(self.wrong_state(Action::FetchOutput));
        };
        let name = OutputName::parse(output);
        match finished.result.outputs.get(output) {
            Some((OutputStatus::Written, Some(_))) => {}
            Some((OutputStatus::Withheld, _)) => {
                return Err(Refusal::OutputWithheld {
                    path: output.to_owned(),
                    run: self.runs.len(),
                    max_output_bytes: self.p().execution.max_output_bytes,
                });
            }
            Some((status, _)) => {
                return Err(Refusal::OutputNotWritten {
                    path: output.to_owned(),
                    status: *status,
                });
            }
            None => {
                return Err(Refusal::OutputNotWritten {
                    path: output.to_owned(),
                    status: OutputStatus::Missing,
                });
            }
        }
        Ok(Authorised {
            principal: caller.0.clone(),
            what: OutputRead(name),
        })
    }

    fn authorise_consent(
        &self,
        caller: &Principal,
    ) -> Result<Authorised<RerunConsentGiven>, Refusal> {
        self.in_force(caller)?;
        if !matches!(self.stage, Stage::Finished(_)) {
            return Err(self.wrong_state(Action::ConsentRerun));
        }
        if self.p().runs.rerun_consent == RerunConsent::Never {
            return Err(Refusal::ConsentNotApplicable {
                reason: "the policy allows no runs beyond runs.max",
            });
        }
        if self.runs.len() < self.p().runs.max as usize {
            return Err(Refusal::ConsentNotApplicable {
                reason: "runs remain that need no consent",
            });
        }
        Ok(Authorised {
            principal: caller.0.clone(),
            what: RerunConsentGiven,
        })
    }

    fn authorise_close(&self, caller: &Principal) -> Result<Authorised<CloseAgreement>, Refusal> {
        self.known(caller)?;
        if matches!(self.stage, Stage::Running(_) | Stage::Closed) {
            return Err(self.wrong_state(Action::Close));
        }
        Ok(Authorised {
            principal: caller.0.clone(),
            what: CloseAgreement,
        })
    }

    // ---- operations -------------------------------------------------------------------------

    /// The program provider uploads the program: accepted once, only if its SHA-256 equals the
    /// policy's and the sandbox loads it (checks and compiles). The computation becomes
    /// `Ready` if every required input is already present.
    ///
    /// # Errors
    /// Refusals: `UnknownPrincipal`, `PolicyExpired`, `NotProgramProvider`, `WrongState` (closed or failed),
    /// `ProgramAlreadyProvided`, `ProgramHashMismatch`, `ProgramNotLoadable`.
    pub fn provide_program(&mut self, caller: &Principal, wasm: &[u8]) -> Result<(), RuntimeError> {
        let compiled = self.begin_program(caller, wasm.to_vec())?.compile()?;
        self.finish_program(compiled)
    }

    /// Whether `caller` may upload the program now (the provider, in a state that takes it,
    /// and no other upload of the program under way): what a layer that streams the program
    /// checks before it reads a byte of it, so that no one else can make the runtime buffer an
    /// upload, and the provider only one at a time. The returned slot reserves the upload until
    /// it is dropped; [`Computation::begin_program`] and [`Computation::finish_program`] check
    /// the caller and state again.
    ///
    /// # Errors
    /// Refusals: `UnknownPrincipal`, `PolicyExpired`, `NotProgramProvider`, `WrongState`,
    /// `ProgramAlreadyProvided`, `UploadInProgress` (another upload of the program).
    pub fn admit_program(&self, caller: &Principal) -> Result<ProgramSlot, RuntimeError> {
        self.authorise_program(caller)?;
        let taken = self
            .program_upload
            .swap(true, std::sync::atomic::Ordering::AcqRel);
        if taken {
            return Err(Refusal::UploadInProgress {
                path: "the program".into(),
            }
            .into());
        }
        Ok(ProgramSlot(Arc::clone(&self.program_upload)))
    }

    /// The first half of [`Computation::provide_program`], for a layer that compiles without
    /// holding the computation (so that inputs and `status` are answered meanwhile): checks the
    /// caller and the state, then the program's SHA-256 against the policy's. Nothing changes.
    ///
    /// # Errors
    /// Refusals: as [`Computation::provide_program`], but `ProgramNotLoadable`.
    pub fn begin_program(
        &self,
        caller: &Principal,
        wasm: Vec<u8>,
    ) -> Result<PendingProgram, RuntimeError> {
        // Authorisation first: no one else can make the runtime hash or compile anything.
        self.authorise_program(caller)?;
        let found = hex::encode(Sha256::digest(&wasm));
        if found != self.p().program.sha256 {
            return Err(Refusal::ProgramHashMismatch {
                expected: self.p().program.sha256.clone(),
                found,
            }
            .into());
        }
        Ok(PendingProgram {
            caller: caller.clone(),
            wasm,
            sha256: found,
            sandbox: SharedSandbox(Arc::clone(&self.sandbox.0)),
            computation: self.id,
        })
    }

    /// The second half: installs a compiled program. The caller and state are checked again,
    /// since the computation may have changed while the program compiled (another upload of
    /// the same program may have finished first: `ProgramAlreadyProvided`).
    ///
    /// # Errors
    /// Refusals as [`Computation::provide_program`]; [`InternalError::ForeignRun`] for a
    /// program compiled for another computation.
    pub fn finish_program(&mut self, compiled: CompiledProgram) -> Result<(), RuntimeError> {
        if compiled.computation != self.id {
            return Err(InternalError::ForeignRun.into());
        }
        let token = self.authorise_program(&compiled.caller)?;
        let (module, found) = (compiled.module, compiled.sha256);
        let program = LoadedProgram {
            module,
            sha256: found,
        };
        let complete = self.missing_required().is_empty();
        self.program_accepted = true;
        self.stage = match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Provisioning(p) => match p.with_program(program, &token).try_ready(complete) {
                Ok(ready) => Stage::Ready(ready),
                Err(p) => Stage::Provisioning(p),
            },
            // authorise_program admits only Provisioning without a program.
            other => other,
        };
        Ok(())
    }

    /// The input's provider uploads the input at guest `path`, streamed from `reader`: hashed
    /// while it is copied into the file system (the bytes are held once), refused past the
    /// policy's `max_bytes` and, when the policy pins a hash, unless it matches. A failed or
    /// partial upload leaves the input absent, so it can be sent again. The computation
    /// becomes `Ready` when the program and every required input are present.
    ///
    /// This is [`Computation::begin_input`], [`InputUpload::write`] and
    /// [`Computation::finish_input`] in one call.
    ///
    /// # Errors
    /// Refusals: `UnknownPrincipal`, `PolicyExpired`, `UnknownInput`, `NotInputProvider`,
    /// `WrongState` (only before a run), `InputAlreadyProvided`, `UploadInProgress`,
    /// `InputTooLarge`, `InputHashMismatch`, `UploadInterrupted`.
    /// [`InternalError::FileSystem`] if the file system fails.
    pub fn provide_input(
        &mut self,
        caller: &Principal,
        path: &str,
        reader: impl Read,
    ) -> Result<(), RuntimeError> {
        let upload = self.begin_input(caller, path)?;
        let written = upload.write(reader)?;
        self.finish_input(written)
    }

    /// Checks an input upload and reserves the input for it: until the upload is finished or
    /// dropped, a second upload of the same input and every run are refused with
    /// `UploadInProgress`. [`InputUpload::write`] needs no access to the computation, so the
    /// layer above can stream a large upload without holding the computation's lock.
    ///
    /// # Errors
    /// Refusals as [`Computation::provide_input`] before any byte is read;
    /// [`InternalError::FileSystem`] if the provider's view cannot be made.
    pub fn begin_input(
        &mut self,
        caller: &Principal,
        path: &str,
    ) -> Result<InputUpload, RuntimeError> {
        let token = self.authorise_input(caller, path)?;
        let grant = token.what;
        // The bytes go to a staging file of this input's own (one upload per input at a time,
        // by the reservation), in a directory no program or principal view contains.
        let index = self
            .p()
            .inputs
            .iter()
            .position(|i| i.path == grant.path)
            .unwrap_or_default();
        let staged = format!("{STAGING_DIR}/{index}");
        let table = CapabilityTable::new().with(STAGING_DIR, Access::WRITE | Access::CREATE)?;
        let view = self.staging.view(&table)?;
        let salt = fresh_salt().map_err(InternalError::from)?;
        let reservation = self.uploads.reserve(&grant.path);
        Ok(InputUpload {
            computation: self.id,
            grant,
            staged,
            view,
            salt,
            reservation,
        })
    }

    /// Accepts a written input: records its hash and size and moves to `Ready` when the
    /// program and every required input are present.
    ///
    /// # Errors
    /// [`InternalError::ForeignUpload`] for an upload another computation began; refusal
    /// `WrongState` if the computation left provisioning while the bytes were arriving (the
    /// written file is removed).
    pub fn finish_input(&mut self, written: WrittenInput) -> Result<(), RuntimeError> {
        if written.computation != self.id {
            return Err(InternalError::ForeignUpload.into());
        }
        if !matches!(self.stage, Stage::Provisioning(_) | Stage::Ready(_)) {
            // The staged bytes go when `written` is dropped (in a closed computation, the file
            // system they went to is already gone).
            return Err(self.wrong_state(Action::ProvideInput).into());
        }
        // Moved into place (its bytes are not copied), then sealed: from here on no path and no
        // descriptor can change it.
        self.fs
            .move_file_from(&written.path, &self.staging, &written.staged)?;
        self.fs.seal(&written.path)?;
        self.inputs.insert(
            written.path.clone(),
            StoredInput {
                sha256: written.sha256,
                bytes: written.bytes,
                commitment: written.commitment.clone(),
                salt: written.salt,
            },
        );
        drop(written);
        let complete = self.missing_required().is_empty();
        self.stage = match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Provisioning(p) => match p.try_ready(complete) {
                Ok(ready) => Stage::Ready(ready),
                Err(p) => Stage::Provisioning(p),
            },
            other => other,
        };
        Ok(())
    }

    /// A descriptor on `/` with every access, for the runtime's own work on the file system
    /// (moving an accepted input into place, inspecting outputs). Never given to a guest or a
    /// principal.
    fn root(&self) -> Result<Handle, RuntimeError> {
        let table = CapabilityTable::new().with("/", Access::READ_WRITE)?;
        let view = self.fs.view(&table)?;
        let mut preopens = view.open_preopens().map_err(|errno| FsError::Guest {
            path: "/".into(),
            errno,
        })?;
        preopens.pop().ok_or_else(|| {
            FsError::Guest {
                path: "/".into(),
                errno: Errno::Noent,
            }
            .into()
        })
    }

    /// The directories of the declared output files: the only places a program may write
    /// (`Computation::new` keeps every input out of them).
    fn output_dirs(&self) -> BTreeSet<String> {
        self.p()
            .outputs
            .iter()
            .filter_map(|o| match OutputName::parse(&o.path) {
                OutputName::File(path) => Some(parent(&path).to_owned()),
                _ => None,
            })
            .collect()
    }

    /// Empties every output directory, whatever the program left there.
    fn clear_output_dirs(&self) -> Result<(), RuntimeError> {
        let root = self.root()?;
        for dir in self.output_dirs() {
            let err = |errno| FsError::Guest {
                path: dir.clone(),
                errno,
            };
            let handle = open_dir(&root, from_root(&dir)).map_err(err)?;
            remove_contents(&handle).map_err(err)?;
        }
        Ok(())
    }

    /// A starter starts a run: only when the program and every required input are present,
    /// and, after `runs.max` runs, only with every principal's consent. The computation is
    /// `Running` until [`Computation::finish_run`] gets the executed run back.
    ///
    /// # Errors
    /// Refusals: `UnknownPrincipal`, `PolicyExpired`, `NotStarter`, `ProgramMissing`, `InputsMissing`,
    /// `RunsExhausted`, `ConsentMissing`, `WrongState`. Internal errors if the file system
    /// or the guest's WASI context cannot be prepared (the computation is then `Failed`).
    pub fn start_run(&mut self, caller: &Principal) -> Result<PendingRun, RuntimeError> {
        let token = self.authorise_run(caller)?;
        let run = u32::try_from(self.runs.len() + 1).unwrap_or(u32::MAX);
        let prepared = self.prepare_run(run);
        let (wasi, limits, bytes_before) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.fail(FailureCode::RuntimeFault, &e.to_string());
                return Err(e);
            }
        };
        let stage = std::mem::replace(&mut self.stage, Stage::Failed);
        let running = match stage {
            Stage::Ready(ready) => ready.start(run, &token),
            Stage::Finished(finished) => finished.start(run, &token),
            other => {
                // authorise_run admits only Ready and Finished.
                self.stage = other;
                return Err(self.wrong_state(Action::Run).into());
            }
        };
        let module = running.program.module.clone();
        self.stage = Stage::Running(running);
        Ok(PendingRun {
            computation: self.id,
            run,
            module,
            wasi,
            limits,
            sandbox: SharedSandbox(Arc::clone(&self.sandbox.0)),
            bytes_before,
        })
    }

    fn prepare_run(
        &self,
        _run: u32,
    ) -> Result<(covenant_wasi::WasiCtx, RunLimits, u64), RuntimeError> {
        // Whatever the last run left in the output directories goes (files, links, whole
        // trees): each run starts from the inputs alone. (Uploads in progress are staged
        // outside every view and only an accepted input is moved into place, so the program
        // sees accepted inputs only.)
        self.clear_output_dirs()?;
        let p = self.p();
        let table = table_for(self.caps.of(&Subject::Program), Phase::DuringRun, |_| true)?;
        let view: View = self.fs.view(&table)?;
        let limits = RunLimits {
            max_memory_bytes: p.execution.max_memory_bytes,
            fuel: p
                .execution
                .fuel
                .unwrap_or(covenant_policy::bounds::MAX_FUEL),
            timeout: Duration::from_millis(p.execution.timeout_ms),
            max_output_bytes: p.execution.max_output_bytes,
            ..RunLimits::default()
        };
        let mut builder = WasiCtxBuilder::new(p.program.name.clone())
            .args(p.program.args.iter().cloned())
            .max_output_bytes(p.execution.max_output_bytes)
            .allow_clock(p.execution.clock)
            .allow_random(p.execution.random)
            .file_system(view);
        for (key, value) in &p.program.env {
            builder = builder.env(key.clone(), value.clone());
        }
        let wasi = builder.build().map_err(InternalError::from)?;
        Ok((wasi, limits, self.stored_bytes()?))
    }

    /// Moves to `Failed`: the principals see `code` and a sentence; the operator's log gets
    /// `detail`.
    fn fail(&mut self, code: FailureCode, detail: &str) {
        let run = self.runs.len() + 1;
        tracing::error!(
            computation = %self.p().computation,
            run,
            code = code.as_str(),
            detail,
            "the computation failed"
        );
        let message = match code {
            FailureCode::RuntimeFault => format!(
                "the runtime failed during run {run}; the computation cannot continue (the \
                 host operator's log has the detail)"
            ),
            FailureCode::RunAbandoned => format!(
                "run {run} stopped without a result; the computation cannot continue (the host \
                 operator's log has the detail)"
            ),
            FailureCode::InputChanged => format!(
                "an input no longer had the hash it was accepted with when run {run} ended; no \
                 receipt was signed and no output is released"
            ),
        };
        self.failure = Some(Failure { code, message });
        self.stage = Stage::Failed;
    }

    /// Takes an executed run back: records its outcome, hashes its outputs, signs its receipt,
    /// and moves to `Finished` (or to `Failed` if the engine, not the guest, failed).
    ///
    /// # Errors
    /// [`InternalError::ForeignRun`] for a run this computation is not running (nothing
    /// changes); [`InternalError::Sandbox`] if the engine failed; file-system or receipt
    /// errors (the computation is then `Failed`).
    pub fn finish_run(&mut self, executed: ExecutedRun) -> Result<RunSummary, RuntimeError> {
        match &self.stage {
            Stage::Running(r) if executed.computation == self.id && r.run == executed.run => {}
            _ => return Err(InternalError::ForeignRun.into()),
        }
        match self.complete_run(executed) {
            Ok(summary) => Ok(summary),
            Err(e) => {
                let code = match &e {
                    RuntimeError::Internal(InternalError::InputChanged { .. }) => {
                        FailureCode::InputChanged
                    }
                    _ => FailureCode::RuntimeFault,
                };
                self.fail(code, &e.to_string());
                Err(e)
            }
        }
    }

    /// Gives up on run number `run`, which left `Running` without an [`ExecutedRun`] (the task
    /// executing it panicked, or the layer above lost the [`PendingRun`]): the computation
    /// moves to `Failed` with `reason`, so that it never stays `Running` with nothing running.
    /// Every party sees the reason in [`Computation::status`].
    ///
    /// # Errors
    /// [`InternalError::ForeignRun`] if this computation is not running run number `run`
    /// (nothing changes).
    pub fn abandon_run(&mut self, run: u32, reason: &str) -> Result<(), RuntimeError> {
        match &self.stage {
            Stage::Running(r) if r.run == run => {
                self.fail(
                    FailureCode::RunAbandoned,
                    &format!("run {run} was abandoned: {reason}"),
                );
                Ok(())
            }
            _ => Err(InternalError::ForeignRun.into()),
        }
    }

    fn complete_run(&mut self, executed: ExecutedRun) -> Result<RunSummary, RuntimeError> {
        let mut output = executed.result.map_err(InternalError::from)?;
        let stdout: Arc<[u8]> = output.wasi.take_stdout().into();
        let stderr: Arc<[u8]> = output.wasi.take_stderr().into();
        drop(output.wasi);
        let mut report = output.report;
        let root = self.root()?;
        // The defence behind the seal: every input still has the hash it was accepted with,
        // or nothing is signed and nothing is released.
        self.check_inputs_unchanged(&root)?;

        // What the program left at each declared output.
        let mut found: Vec<(String, OutputName, OutputStatus)> = Vec::new();
        let mut declared_bytes = 0u64;
        for declared in &self.p().outputs {
            let name = OutputName::parse(&declared.path);
            let status = match &name {
                OutputName::Stdout | OutputName::Stderr => OutputStatus::Written,
                OutputName::File(path) => {
                    let (status, size) = inspect_output(&root, path)?;
                    declared_bytes = declared_bytes.saturating_add(size);
                    status
                }
            };
            found.push((declared.path.clone(), name, status));
        }

        // The policy's bound is on everything the program writes together: the growth of the
        // file system (scratch files included) or the declared files, whichever is larger,
        // plus both streams. The file system's quota only bounds what the guest can store.
        let max_output = self.p().execution.max_output_bytes;
        let files = self
            .stored_bytes()?
            .saturating_sub(executed.bytes_before)
            .max(declared_bytes);
        let total = files
            .saturating_add(stdout.len() as u64)
            .saturating_add(stderr.len() as u64);
        let over = total > max_output;
        if over {
            // The exact amount is for the operator: in the receipt and status it would tell
            // every principal the size of what the program wrote.
            tracing::info!(
                computation = %self.p().computation,
                run = executed.run,
                total,
                max_output,
                "a run wrote more than the output limit; nothing of it is released"
            );
            if matches!(report.outcome, Outcome::Exited(_)) {
                report.outcome = Outcome::Trapped(TrapKind::OutputLimit);
                report.detail = Some(format!(
                    "the program wrote more than the policy's output limit of {max_output} bytes"
                ));
            }
        }
        // Over the limit, however the run ended (a guest that traps after writing is over it
        // too) and however it was noticed (here, or by the sandbox for the streams), nothing
        // of the run is released.
        let withhold = over || report.outcome == Outcome::Trapped(TrapKind::OutputLimit);

        let mut released = BTreeMap::new();
        let mut receipt_outputs = Vec::new();
        let mut records = Vec::new();
        for (path, name, mut status) in found {
            if withhold && status == OutputStatus::Written {
                status = OutputStatus::Withheld;
            }
            let mut salt = None;
            let mut commitment = None;
            if status == OutputStatus::Written {
                let fresh = fresh_salt().map_err(InternalError::from)?;
                let mut committer = Committer::new(&fresh);
                match &name {
                    OutputName::Stdout => committer.update(&stdout),
                    OutputName::Stderr => committer.update(&stderr),
                    OutputName::File(file) => read_regular(&root, file, |chunk| {
                        committer.update(chunk);
                    })?,
                }
                commitment = Some(committer.finish());
                salt = Some(fresh);
            }
            released.insert(path.clone(), (status, salt));
            records.push(OutputRecord {
                path: path.clone(),
                status,
            });
            receipt_outputs.push(ReceiptOutput {
                path,
                status,
                commitment,
            });
        }

        let inputs = self
            .p()
            .inputs
            .iter()
            .filter_map(|i| {
                self.inputs.get(&i.path).map(|s| {
                    // A pinned hash is in the policy already: the receipt may repeat it, and the
                    // size it determines. Anything else is committed to, not disclosed.
                    let pinned = i.sha256.is_some();
                    ReceiptInput {
                        path: i.path.clone(),
                        sha256: pinned.then(|| hex::encode(s.sha256)),
                        bytes: pinned.then_some(s.bytes),
                        commitment: s.commitment.clone(),
                    }
                })
            })
            .collect();
        let program_sha256 = self
            .stage
            .program()
            .map(|p| p.sha256.clone())
            .unwrap_or_default();
        let e = &self.p().execution;
        let record = RunRecord {
            run: executed.run,
            outcome: report.outcome,
            outputs: records,
            detail: report.detail.clone(),
            fuel_used: report.fuel_used,
            wall_time_us: u64::try_from(report.wall_time.as_micros()).unwrap_or(u64::MAX),
            peak_memory_bytes: report.peak_memory_bytes,
            started_at_ms: executed.started_at_ms,
            finished_at_ms: executed.finished_at_ms,
        };
        let claims = ReceiptClaims {
            format: RECEIPT_FORMAT.into(),
            version: RECEIPT_VERSION,
            computation: self.p().computation.clone(),
            policy_sha256: self.policy.hash().to_hex(),
            instance: self.signer.instance().to_hex(),
            program_sha256,
            run: executed.run,
            engine: e.strategy.as_str().into(),
            limits: ReceiptLimits {
                max_memory_bytes: e.max_memory_bytes,
                fuel: e.fuel,
                timeout_ms: e.timeout_ms,
                max_output_bytes: e.max_output_bytes,
                clock: e.clock,
                random: e.random,
            },
            inputs,
            outputs: receipt_outputs,
            outcome: record.outcome,
            detail: record.detail.clone(),
            fuel_used: record.fuel_used,
            wall_time_us: record.wall_time_us,
            started_at_ms: record.started_at_ms,
            finished_at_ms: record.finished_at_ms,
            issued_at: i64::try_from(unix_ms() / 1000).unwrap_or(i64::MAX),
        };
        let receipt = self.signer.sign(&claims).map_err(InternalError::from)?;
        let result = RunResult {
            stdout,
            stderr,
            outputs: released,
        };
        self.stage = match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Running(running) => Stage::Finished(running.finish(result)),
            other => other,
        };
        self.runs.push(record.clone());
        self.receipts.push(receipt.clone());
        Ok(RunSummary { record, receipt })
    }

    /// Every accepted input still has the SHA-256 it was accepted with.
    ///
    /// # Errors
    /// [`InternalError::InputChanged`] naming the first that does not (or is gone).
    fn check_inputs_unchanged(&self, root: &Handle) -> Result<(), RuntimeError> {
        for (path, stored) in &self.inputs {
            let mut hasher = Sha256::new();
            let read = read_regular(root, path, |chunk| hasher.update(chunk));
            let same = read.is_ok() && <[u8; 32]>::from(hasher.finalize()) == stored.sha256;
            if !same {
                return Err(InternalError::InputChanged { path: path.clone() }.into());
            }
        }
        Ok(())
    }

    /// [`Computation::start_run`], [`PendingRun::execute`] and [`Computation::finish_run`] in
    /// one call, for callers that need not answer anything while the guest runs.
    ///
    /// # Errors
    /// As those three.
    pub fn run(&mut self, caller: &Principal) -> Result<RunSummary, RuntimeError> {
        let pending = self.start_run(caller)?;
        let executed = pending.execute();
        self.finish_run(executed)
    }

    /// A reader fetches an output of the last run: a file's guest path, `stdout` or `stderr`.
    ///
    /// # Errors
    /// Refusals: `UnknownPrincipal`, `PolicyExpired`, `UnknownOutput`, `NotReader`, `WrongState` (only in
    /// `Finished`), `OutputNotWritten`. [`InternalError::FileSystem`] if the file cannot be
    /// opened.
    pub fn fetch_output(
        &self,
        caller: &Principal,
        output: &str,
    ) -> Result<OutputReader, RuntimeError> {
        let token = self.authorise_fetch(caller, output)?;
        let Stage::Finished(finished) = &self.stage else {
            return Err(self.wrong_state(Action::FetchOutput).into());
        };
        let salt = finished
            .result
            .outputs
            .get(output)
            .and_then(|(_, salt)| *salt)
            .ok_or_else(|| Refusal::OutputNotWritten {
                path: output.to_owned(),
                status: OutputStatus::Missing,
            })?;
        let source = match &token.what.0 {
            OutputName::Stdout => {
                OutputSource::Bytes(Cursor::new(Arc::clone(&finished.result.stdout)))
            }
            OutputName::Stderr => {
                OutputSource::Bytes(Cursor::new(Arc::clone(&finished.result.stderr)))
            }
            OutputName::File(path) => {
                let grants = self.caps.of(&Subject::Principal(token.principal.clone()));
                let table = table_for(grants, Phase::AfterRun, |p| p == path)?;
                OutputSource::File(self.fs.view(&table)?.read_file(path)?)
            }
        };
        Ok(OutputReader {
            source,
            run: u32::try_from(self.runs.len()).unwrap_or(u32::MAX),
            salt,
        })
    }

    /// What every principal may see: the state, what has arrived (see [`InputStatus`]), every
    /// run's outcome, consents.
    ///
    /// # Errors
    /// Refusal `UnknownPrincipal`.
    pub fn status(&self, caller: &Principal) -> Result<Status, RuntimeError> {
        self.known(caller)?;
        let closed = matches!(self.stage, Stage::Closed);
        let inputs = self
            .p()
            .inputs
            .iter()
            .map(|i| InputStatus {
                path: i.path.clone(),
                provider: i.provider.clone(),
                required: i.required,
                provided: (i.required || i.provider == caller.0)
                    .then(|| !closed && self.inputs.contains_key(&i.path)),
                salt: self
                    .inputs
                    .get(&i.path)
                    .filter(|_| i.provider == caller.0 && !closed)
                    .map(|stored| hex::encode(stored.salt)),
            })
            .collect();
        let rerun_consents = match &self.stage {
            Stage::Finished(f) => f.consents.iter().cloned().collect(),
            _ => Vec::new(),
        };
        Ok(Status {
            computation: self.p().computation.clone(),
            state: self.state(),
            program_provided: self.program_accepted && !closed,
            inputs,
            runs_max: self.p().runs.max,
            runs: self.runs.clone(),
            rerun_consents,
            close_agreed: self.close_agreed.iter().cloned().collect(),
            failure: self.failure.clone(),
        })
    }

    /// Every receipt signed so far, oldest first. Any principal may have them, in any state.
    ///
    /// # Errors
    /// Refusal `UnknownPrincipal`.
    pub fn receipts(&self, caller: &Principal) -> Result<Vec<String>, RuntimeError> {
        self.known(caller)?;
        Ok(self.receipts.clone())
    }

    /// A principal consents to another run once `runs.max` runs have happened and the policy
    /// allows more with every principal's consent. When the last consent arrives the last
    /// run's outputs are dropped and the computation is `Ready` again.
    ///
    /// # Errors
    /// Refusals: `UnknownPrincipal`, `PolicyExpired`, `WrongState` (only in `Finished`),
    /// `ConsentNotApplicable`. File-system errors while dropping the outputs (the
    /// computation is then `Failed`).
    pub fn consent_rerun(&mut self, caller: &Principal) -> Result<Agreement, RuntimeError> {
        let token = self.authorise_consent(caller)?;
        let everyone = self.principal_names();
        let Stage::Finished(finished) = &mut self.stage else {
            return Err(self.wrong_state(Action::ConsentRerun).into());
        };
        finished.consents.insert(token.principal.clone());
        let missing: Vec<String> = everyone
            .into_iter()
            .filter(|n| !finished.consents.contains(n))
            .collect();
        if !missing.is_empty() {
            return Ok(Agreement {
                complete: false,
                missing,
            });
        }
        self.stage = match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Finished(f) => Stage::Ready(f.into_ready(&token)),
            other => other,
        };
        if let Err(e) = self.clear_output_dirs() {
            self.fail(FailureCode::RuntimeFault, &e.to_string());
            return Err(e);
        }
        Ok(Agreement {
            complete: true,
            missing: Vec::new(),
        })
    }

    /// A principal agrees to end the computation. When every principal has agreed, every
    /// input, output and the program are dropped and the computation is `Closed`; the run
    /// records and receipts stay, so that parties can still read them.
    ///
    /// # Errors
    /// Refusals: `UnknownPrincipal`, `WrongState` (not while `Running`, not once `Closed`).
    pub fn close(&mut self, caller: &Principal) -> Result<Agreement, RuntimeError> {
        let token = self.authorise_close(caller)?;
        let CloseAgreement = token.what;
        self.close_agreed.insert(token.principal);
        let missing: Vec<String> = self
            .principal_names()
            .into_iter()
            .filter(|n| !self.close_agreed.contains(n))
            .collect();
        if !missing.is_empty() {
            return Ok(Agreement {
                complete: false,
                missing,
            });
        }
        // Dropping the stage drops the program and the last run's outputs; replacing the file
        // system drops every byte the old one held (no view of it survives a closed stage).
        self.stage = Stage::Closed;
        self.inputs.clear();
        let emptied = || {
            FileSystem::new(FsConfig {
                quotas: Quotas {
                    max_total_bytes: 0,
                    ..Quotas::default()
                },
                timestamps: Timestamps::Fixed(0),
            })
        };
        self.staging = emptied();
        self.fs = emptied();
        Ok(Agreement {
            complete: true,
            missing: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_and_names_of_guest_paths() {
        assert_eq!(parent("/input/a.csv"), "/input");
        assert_eq!(parent("/a.csv"), "/");
        assert_eq!(parent("/x/y/z"), "/x/y");
        assert_eq!(file_name("/x/y/z"), "z");
        assert_eq!(file_name("/a.csv"), "a.csv");
    }

    #[test]
    fn is_under_compares_whole_components() {
        assert!(is_under("/out/a", "/out"));
        assert!(is_under("/out", "/out"));
        assert!(is_under("/anything", "/"));
        assert!(!is_under("/output/a", "/out"));
        assert!(!is_under("/in/a", "/out"));
    }

    #[test]
    fn hashing_reader_stops_one_byte_past_its_bound() {
        let mut r = HashingReader {
            inner: &b"12345"[..],
            hasher: Sha256::new(),
            committer: Committer::new(&[0; SALT_BYTES]),
            count: 0,
            limit: 4,
            over: false,
        };
        let mut sink = Vec::new();
        assert!(std::io::copy(&mut r, &mut sink).is_err());
        assert!(r.over);
        let mut r = HashingReader {
            inner: &b"1234"[..],
            hasher: Sha256::new(),
            committer: Committer::new(&[0; SALT_BYTES]),
            count: 0,
            limit: 4,
            over: false,
        };
        let mut sink = Vec::new();
        assert_eq!(std::io::copy(&mut r, &mut sink).ok(), Some(4));
        assert!(!r.over);
        assert_eq!(
            r.hasher.finalize().as_slice(),
            Sha256::digest(b"1234").as_slice()
        );
        assert_eq!(
            r.committer.finish(),
            crate::receipt::commit(&[0; SALT_BYTES], b"1234")
        );
    }

    /// A new computation of the sum_inputs guest, and the guest.
    fn computation() -> (Computation, Vec<u8>) {
        let service = covenant_test_support::Service::new();
        let program = covenant_guests::SUM_INPUTS.bytes();
        let policy = covenant_test_support::sum_inputs_policy(
            &service.ca,
            &program,
            covenant_policy::Strategy::Interpreter,
        );
        let valid = covenant_test_support::validate(&policy);
        // test-support's own signer is another build of this crate's type: make ours.
        let (key, chain) = service.attested_key(&valid);
        let signer = ReceiptSigner::new(&key, chain).unwrap();
        (Computation::new(valid, signer).unwrap(), program)
    }

    /// A computation of the sum_inputs guest, provisioned.
    fn provisioned() -> Computation {
        let (mut c, program) = computation();
        c.provide_program(&Principal::new("alice"), &program)
            .unwrap();
        c.provide_input(&Principal::new("alice"), "/input/a.csv", &b"1,2\n"[..])
            .unwrap();
        c.provide_input(&Principal::new("bob"), "/input/b.csv", &b"3\n"[..])
            .unwrap();
        c
    }

    #[test]
    fn one_program_upload_at_a_time() {
        let (c, _) = computation();
        let alice = Principal::new("alice");
        let first = c.admit_program(&alice).unwrap();
        let second = c.admit_program(&alice).unwrap_err();
        assert_eq!(
            second.refusal().map(Refusal::rule),
            Some("upload-in-progress")
        );
        // Others are refused by their role first, whatever is under way.
        let bob = c.admit_program(&Principal::new("bob")).unwrap_err();
        assert_eq!(
            bob.refusal().map(Refusal::rule),
            Some("not-program-provider")
        );
        drop(first);
        assert!(c.admit_program(&alice).is_ok());
    }

    #[test]
    fn accepted_inputs_are_sealed() {
        let c = provisioned();
        let root = c.root().unwrap();
        // Not even the runtime's own all-access descriptor can change one.
        let write = root.open_at(0, "input/a.csv", 0, FdRights::FD_WRITE, FdRights::NONE, 0);
        assert_eq!(write.err(), Some(Errno::Perm));
        assert_eq!(root.unlink_file("input/a.csv"), Err(Errno::Perm));
    }

    #[test]
    fn an_input_whose_hash_changed_fails_the_run_before_anything_is_signed_or_released() {
        // The seal makes a change impossible; to test the check behind it, the record of
        // what was accepted is changed instead of the bytes.
        let mut c = provisioned();
        if let Some(stored) = c.inputs.get_mut("/input/b.csv") {
            stored.sha256[0] ^= 1;
        }
        let err = c.run(&Principal::new("alice")).unwrap_err();
        assert!(
            matches!(err, RuntimeError::Internal(InternalError::InputChanged { ref path }) if path == "/input/b.csv"),
            "{err}"
        );
        assert_eq!(c.state(), State::Failed);
        let status = c.status(&Principal::new("carol")).unwrap();
        assert_eq!(
            status.failure.map(|f| f.code),
            Some(FailureCode::InputChanged)
        );
        assert!(status.program_provided);
        assert!(c.receipts(&Principal::new("carol")).unwrap().is_empty());
        assert!(c.fetch_output(&Principal::new("carol"), "stdout").is_err());
    }
}
