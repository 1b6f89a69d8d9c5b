//! Errors: a [`Refusal`] when a principal asked for something the policy or the state does not
//! allow (nothing changed), an [`InternalError`] when the runtime itself failed.
//!
//! Error policy for the layer above (the HTTPS API, not yet written): a [`Refusal`] is the
//! caller's to see, with its [`Refusal::rule`] code and message; the messages name only the
//! caller's own request and public policy facts, never another principal's data. An
//! [`InternalError`] becomes a generic failure for the caller and a detailed log line.

use crate::State;

/// What a refused operation was trying to do, for [`Refusal::WrongState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// [`crate::Computation::provide_program`].
    ProvideProgram,
    /// [`crate::Computation::provide_input`].
    ProvideInput,
    /// [`crate::Computation::start_run`] / [`crate::Computation::run`].
    Run,
    /// [`crate::Computation::fetch_output`].
    FetchOutput,
    /// [`crate::Computation::consent_rerun`].
    ConsentRerun,
    /// [`crate::Computation::close`].
    Close,
}

impl Action {
    /// The action's name in messages: `provide-program`, `run`, ...
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Action::ProvideProgram => "provide-program",
            Action::ProvideInput => "provide-input",
            Action::Run => "run",
            Action::FetchOutput => "fetch-output",
            Action::ConsentRerun => "consent-rerun",
            Action::Close => "close",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A request the runtime refused. The computation is exactly as it was before the request:
/// same state, same stored program and inputs, same outputs. Each variant is one rule;
/// [`Refusal::rule`] gives its stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The caller is not a principal the policy declares.
    #[error("{principal:?} is not a principal of this computation")]
    UnknownPrincipal {
        /// The name the caller presented.
        principal: String,
    },
    /// The policy's `expires` has passed: it no longer allows provisioning, runs or releases.
    #[error("the policy expired at {expires}")]
    PolicyExpired {
        /// The policy's expiry, RFC 3339 UTC.
        expires: String,
    },
    /// The operation is not possible in the computation's current state.
    #[error("{action} is not allowed while the computation is {state}")]
    WrongState {
        /// What was asked.
        action: Action,
        /// The state the computation is in.
        state: State,
    },
    /// Only the policy's program provider uploads the program.
    #[error("only the program provider may provide the program")]
    NotProgramProvider,
    /// The program is uploaded once.
    #[error("the program has already been provided")]
    ProgramAlreadyProvided,
    /// The module's SHA-256 is not the one the policy pins.
    #[error("the program's SHA-256 is {found}, but the policy pins {expected}")]
    ProgramHashMismatch {
        /// The policy's hash.
        expected: String,
        /// The uploaded module's hash.
        found: String,
    },
    /// The module has the policy's hash but the sandbox refuses to load it (bad imports,
    /// over a module bound, not valid Wasm).
    #[error("the program cannot be loaded: {reason}")]
    ProgramNotLoadable {
        /// The sandbox's reason.
        reason: String,
    },
    /// The policy declares no input at this path.
    #[error("the policy declares no input at {path}")]
    UnknownInput {
        /// The path asked for.
        path: String,
    },
    /// Only the input's provider uploads it.
    #[error("only the provider the policy names may provide {path}")]
    NotInputProvider {
        /// The input's path.
        path: String,
    },
    /// Each input is uploaded once.
    #[error("{path} has already been provided")]
    InputAlreadyProvided {
        /// The input's path.
        path: String,
    },
    /// The upload was longer than the policy's `max_bytes`; the input stays absent.
    #[error("{path} is larger than the policy's bound of {max_bytes} bytes; it was not stored")]
    InputTooLarge {
        /// The input's path.
        path: String,
        /// The bound.
        max_bytes: u64,
    },
    /// The upload's SHA-256 differs from the one the policy pins; the input stays absent.
    #[error("{path} has SHA-256 {found}, but the policy pins {expected}; it was not stored")]
    InputHashMismatch {
        /// The input's path.
        path: String,
        /// The policy's hash.
        expected: String,
        /// The upload's hash.
        found: String,
    },
    /// Reading the upload failed part-way (the client went away); the input stays absent and
    /// may be sent again.
    #[error(
        "the upload of {path} failed part-way ({reason}); it was not stored and may be sent again"
    )]
    UploadInterrupted {
        /// The input's path.
        path: String,
        /// What the reader reported.
        reason: String,
    },
    /// Another upload of this input is under way (only its provider can be told: only its
    /// provider uploads it).
    #[error("an upload of {path} is under way; send it again when that one has finished or failed")]
    UploadInProgress {
        /// The input's path.
        path: String,
    },
    /// Only the policy's run starters start runs.
    #[error("only a run starter named by the policy may start a run")]
    NotStarter,
    /// A run needs the program.
    #[error("the program has not been provided yet")]
    ProgramMissing,
    /// A run needs every required input.
    #[error("required inputs are missing: {}", paths.join(", "))]
    InputsMissing {
        /// The missing inputs' paths.
        paths: Vec<String>,
    },
    /// `runs.max` runs have happened and the policy allows no more (`rerun_consent = never`).
    #[error("the policy allows {max} run(s) and no more")]
    RunsExhausted {
        /// `runs.max`.
        max: u32,
    },
    /// `runs.max` runs have happened; a further run needs every principal's consent.
    #[error("another run needs the consent of every principal; missing: {}", missing.join(", "))]
    ConsentMissing {
        /// Principals who have not consented.
        missing: Vec<String>,
    },
    /// Consent is only collected once `runs.max` runs have happened and the policy allows
    /// more with consent.
    #[error("no consent is needed or possible now: {reason}")]
    ConsentNotApplicable {
        /// Why.
        reason: &'static str,
    },
    /// The policy declares no such output.
    #[error("the policy declares no output {path}")]
    UnknownOutput {
        /// The output asked for.
        path: String,
    },
    /// Only the output's readers fetch it.
    #[error("the policy does not name the caller as a reader of {path}")]
    NotReader {
        /// The output.
        path: String,
    },
    /// The last run left nothing releasable at this output: the file is missing, or is a
    /// directory or a symbolic link (never followed).
    #[error("the last run left no file to release at {path} (it is {status})")]
    OutputNotWritten {
        /// The output's path.
        path: String,
        /// What the run left there.
        status: crate::receipt::OutputStatus,
    },
    /// The last run wrote more than the policy's output limit: none of its outputs is
    /// released, to any reader.
    #[error(
        "run {run} wrote more than the policy's output limit of {max_output_bytes} bytes \
         (execution.max_output), so none of its outputs is released"
    )]
    OutputWithheld {
        /// The output asked for.
        path: String,
        /// The run.
        run: usize,
        /// The policy's limit.
        max_output_bytes: u64,
    },
}

impl Refusal {
    /// A stable, machine-readable code for the rule, for the API's `error` field.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::UnknownPrincipal { .. } => "unknown-principal",
            Refusal::PolicyExpired { .. } => "policy-expired",
            Refusal::WrongState { .. } => "wrong-state",
            Refusal::NotProgramProvider => "not-program-provider",
            Refusal::ProgramAlreadyProvided => "program-already-provided",
            Refusal::ProgramHashMismatch { .. } => "program-hash-mismatch",
            Refusal::ProgramNotLoadable { .. } => "program-not-loadable",
            Refusal::UnknownInput { .. } => "unknown-input",
            Refusal::NotInputProvider { .. } => "not-input-provider",
            Refusal::InputAlreadyProvided { .. } => "input-already-provided",
            Refusal::InputTooLarge { .. } => "input-too-large",
            Refusal::InputHashMismatch { .. } => "input-hash-mismatch",
            Refusal::UploadInterrupted { .. } => "upload-interrupted",
            Refusal::UploadInProgress { .. } => "upload-in-progress",
            Refusal::NotStarter => "not-starter",
            Refusal::ProgramMissing => "program-missing",
            Refusal::InputsMissing { .. } => "inputs-missing",
            Refusal::RunsExhausted { .. } => "runs-exhausted",
            Refusal::ConsentMissing { .. } => "consent-missing",
            Refusal::ConsentNotApplicable { .. } => "consent-not-applicable",
            Refusal::UnknownOutput { .. } => "unknown-output",
            Refusal::NotReader { .. } => "not-reader",
            Refusal::OutputNotWritten { .. } => "output-not-written",
            Refusal::OutputWithheld { .. } => "output-withheld",
        }
    }
}

/// The runtime itself failed: not a principal's fault, not the guest's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InternalError {
    /// The in-memory file system failed.
    #[error("file system: {0}")]
    FileSystem(#[from] covenant_wasi::fs::FsError),
    /// The sandbox could not be built, or a run could not start or finish (not a guest fault;
    /// guest faults are outcomes).
    #[error("sandbox: {0}")]
    Sandbox(#[from] covenant_sandbox::RunError),
    /// The guest's WASI context could not be built.
    #[error("WASI context: {0}")]
    Wasi(#[from] covenant_wasi::BuildError),
    /// The receipt could not be made.
    #[error("receipt: {0}")]
    Receipt(#[from] crate::receipt::ReceiptError),
    /// An upload handed to the computation was begun by another computation.
    #[error("the upload does not belong to this computation")]
    ForeignUpload,
    /// A run handed back to the computation is not the one it started.
    #[error("the finished run does not belong to this computation's current run")]
    ForeignRun,
    /// An accepted input no longer has the hash it was accepted with (or is gone) when a run
    /// ends: the seal failed. Nothing is signed or released.
    #[error("input {path} no longer has the SHA-256 it was accepted with")]
    InputChanged {
        /// The input's path.
        path: String,
    },
}

/// Why an operation on a [`crate::Computation`] did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The request broke a rule; nothing changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The runtime failed.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl RuntimeError {
    /// The refusal, if this is one.
    #[must_use]
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            RuntimeError::Refused(r) => Some(r),
            RuntimeError::Internal(_) => None,
        }
    }
}

impl From<covenant_wasi::fs::FsError> for RuntimeError {
    fn from(e: covenant_wasi::fs::FsError) -> Self {
        RuntimeError::Internal(InternalError::FileSystem(e))
    }
}

/// Why a [`crate::Computation`] could not be set up for a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The policy's file layout would give the program more than its capabilities (an input
    /// inside a directory the program may write).
    #[error("unsupported policy layout: {0}")]
    Layout(String),
    /// The file system or the sandbox could not be set up.
    #[error(transparent)]
    Internal(#[from] InternalError),
}
