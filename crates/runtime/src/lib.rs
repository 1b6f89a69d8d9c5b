//! The trusted Covenant runtime: one collaborative computation, without the network.
//!
//! A [`Computation`] holds a validated policy and enforces it: the state machine
//! (`Provisioning → Ready → Running → Finished → Closed`, and `Failed`), the rule checks in
//! front of every operation (caller's role, then state, then the operation's own conditions;
//! a refusal names its rule and changes nothing), streamed and hash-checked provisioning into
//! an in-memory file system (`covenant-wasi`), runs on the policy's engine under its limits
//! (`covenant-sandbox`) with the program's capability-derived view, outputs released only to
//! their readers, and a signed [`receipt`] for every run, verifiable offline with
//! [`verify_receipt`].
//!
//! The [`api`] module serves a computation over HTTPS (TLS 1.3, client certificates) on any
//! byte stream.
//!
//! What it does not do: accept sockets, processes or seccomp (the host process does); the
//! computation itself takes a [`Principal`] that the TLS layer has already mapped from a client
//! certificate ([`Computation::principal_for_certificate`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod computation;
pub mod error;
pub mod receipt;

pub use computation::{
    Agreement, CompiledProgram, Computation, ExecutedRun, FS_NAMES_ALLOWANCE_BYTES, Failure,
    FailureCode, INSTANCES_PER_COMPUTATION, InputStatus, InputUpload, MODULES_CACHED, OutputName,
    OutputReader, OutputRecord, PendingProgram, PendingRun, Principal, ProgramSlot, RunRecord,
    RunSummary, State, Status, WrittenInput,
};
pub use error::{Action, InternalError, Refusal, RuntimeError, SetupError};
pub use receipt::{
    OutputStatus, ReceiptClaims, ReceiptError, ReceiptSigner, VerifiedReceipt, check_opening,
    expected_runtime, unverified_claims, verify_receipt,
};
