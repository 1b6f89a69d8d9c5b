//! What the API's caller sees when a request fails: the one place errors become HTTP.
//!
//! Error policy: a [`crate::Refusal`] becomes a 4xx with its [`crate::Refusal::rule`] code as
//! `error` and its message (which names only the caller's own request and public policy
//! facts) as `message`. Role refusals are 403, state refusals 409, an unknown input, output or
//! unwritten output 404, an input over its bound 413, a hash mismatch or an unloadable program
//! 422, an interrupted upload 400. API-level problems (a body over a cap, an unknown route, a
//! malformed path) have their own codes. An [`crate::InternalError`] becomes a 500 with a
//! generic body; the detail goes to the `tracing` log only, since it may name another
//! principal's files.

use hyper::StatusCode;
use serde::Serialize;

use crate::{Refusal, RuntimeError};

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The computation refused or failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The program upload is over [`super::MAX_PROGRAM_BYTES`].
    #[error("the program is larger than this runtime accepts ({limit} bytes)")]
    ProgramTooLarge {
        /// The cap.
        limit: usize,
    },
    /// Reading the request body failed (the client went away or sent a malformed body).
    #[error("the request body could not be read: {0}")]
    BadBody(String),
    /// No such endpoint.
    #[error("no endpoint {method} {path}; see docs/api.openapi.yaml")]
    NoRoute {
        /// The method asked.
        method: String,
        /// The path asked.
        path: String,
    },
    /// A path parameter is not valid percent-encoded UTF-8.
    #[error("the path parameter is not valid percent-encoded UTF-8")]
    BadPathEncoding,
    /// The query string is not one this endpoint takes.
    #[error("unknown query `{query}`; this endpoint takes {expected}")]
    BadQuery {
        /// The query sent.
        query: String,
        /// What the endpoint takes.
        expected: &'static str,
    },
    /// A blocking task of the server failed (a bug, not the caller's fault).
    #[error("server task: {0}")]
    Task(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// A stable, machine-readable code (a [`Refusal::rule`] for refusals).
    pub error: &'static str,
    /// A sentence for people.
    pub message: String,
}

/// The status for a refusal. Exhaustive on purpose: a new rule must choose its status here.
fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::UnknownPrincipal { .. }
        | Refusal::PolicyExpired { .. }
        | Refusal::NotProgramProvider
        | Refusal::NotInputProvider { .. }
        | Refusal::NotStarter
        | Refusal::NotReader { .. } => StatusCode::FORBIDDEN,
        Refusal::WrongState { .. }
        | Refusal::ProgramAlreadyProvided
        | Refusal::InputAlreadyProvided { .. }
        | Refusal::UploadInProgress { .. }
        | Refusal::ProgramMissing
        | Refusal::InputsMissing { .. }
        | Refusal::RunsExhausted { .. }
        | Refusal::ConsentMissing { .. }
        | Refusal::ConsentNotApplicable { .. }
        | Refusal::OutputWithheld { .. } => StatusCode::CONFLICT,
        Refusal::UnknownInput { .. }
        | Refusal::UnknownOutput { .. }
        | Refusal::OutputNotWritten { .. } => StatusCode::NOT_FOUND,
        Refusal::InputTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::ProgramHashMismatch { .. }
        | Refusal::InputHashMismatch { .. }
        | Refusal::ProgramNotLoadable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::UploadInterrupted { .. } => StatusCode::BAD_REQUEST,
    }
}

/// The one mapping from a failed request to what the caller sees. Internal failures are
/// logged here in detail and answered generically.
#[must_use]
pub fn error_response(err: &ApiError) -> (StatusCode, ErrorBody) {
    let internal = || {
        tracing::error!(error = %err, "API request failed inside the runtime");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody {
                error: "internal",
                message: "the runtime failed to complete the request; the operator's log has \
                          the details"
                    .into(),
            },
        )
    };
    match err {
        ApiError::Runtime(RuntimeError::Refused(refusal)) => (
            refusal_status(refusal),
            ErrorBody {
                error: refusal.rule(),
                message: refusal.to_string(),
            },
        ),
        ApiError::Runtime(_) | ApiError::Task(_) => internal(),
        ApiError::ProgramTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody {
                error: "program-too-large",
                message: err.to_string(),
            },
        ),
        ApiError::BadBody(_) => (
            StatusCode::BAD_REQUEST,
            ErrorBody {
                error: "bad-body",
                message: err.to_string(),
            },
        ),
        ApiError::NoRoute { .. } => (
            StatusCode::NOT_FOUND,
            ErrorBody {
                error: "no-route",
                message: err.to_string(),
            },
        ),
        ApiError::BadPathEncoding => (
            StatusCode::BAD_REQUEST,
            ErrorBody {
                error: "bad-path-encoding",
                message: err.to_string(),
            },
        ),
        ApiError::BadQuery { .. } => (
            StatusCode::BAD_REQUEST,
            ErrorBody {
                error: "bad-query",
                message: err.to_string(),
            },
        ),
    }
}
