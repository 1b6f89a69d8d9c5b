//! The HTTP API (JSON; documented in `docs/attestation-api.md`):
//!
//! | method and path | body | response |
//! |---|---|---|
//! | `POST /v1/nonces` | none | [`NonceResponse`] |
//! | `POST /v1/attestations` | [`AttestationRequest`] | [`AttestationResponse`] |
//! | `POST /v1/instance-ends` | [`InstanceEndRequest`] | [`InstanceEndResponse`] |
//! | `GET /v1/certificates/{serial}` | none | [`CertificateStatus`] |
//! | `GET /v1/ca-certificate` | none | the CA certificate, PEM |
//!
//! Errors are [`covenant_attest::wire::ErrorBody`] with the status from
//! [`ServiceError::status`]. Every request, including ones to unknown paths and ones refused
//! before their body was parsed, is written to the audit log.
//!
//! Authorisation: none of these endpoints needs the caller to be anyone in particular. Nonces
//! and certificate status are public; an attestation is authorised by the evidence itself (an
//! enrolled platform's signature), and the end of an instance by its end statement (signed
//! with the instance's attested key). Administration is not on the HTTP API at all: it is done
//! with the `covenant attestation-service` commands on the service's directory.
//!
//! [`NonceResponse`]: covenant_attest::wire::NonceResponse
//! [`AttestationResponse`]: covenant_attest::wire::AttestationResponse
//! [`InstanceEndRequest`]: covenant_attest::wire::InstanceEndRequest
//! [`InstanceEndResponse`]: covenant_attest::wire::InstanceEndResponse
//! [`CertificateStatus`]: covenant_attest::wire::CertificateStatus

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use covenant_attest::wire::{AttestationRequest, InstanceEndRequest};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::service::AuditNote;
use crate::{AttestationService, ServiceError};

/// The largest `POST /v1/attestations` body accepted, in bytes. A request is evidence and a CSR
/// (under 1 KiB). Software evidence is about 1.5 KiB; hardware evidence is its report, quote
/// or document (at most `MAX_HARDWARE_EVIDENCE_LEN`, 32 KiB) and one endorsement of at most
/// `MAX_ENDORSEMENT_LEN` (64 KiB), in base64: at most 128 KiB, though a real TDX quote with its
/// collateral is about 35 KiB. The bound stops a caller from making the service buffer more.
pub const MAX_ATTESTATION_BODY_BYTES: usize = 160 * 1024;

/// The largest body accepted by endpoints that take none (`POST /v1/nonces`), in bytes.
pub const MAX_EMPTY_BODY_BYTES: usize = 1024;

/// The largest `POST /v1/instance-ends` body accepted, in bytes: the end statement (at most
/// [`covenant_attest::instance::MAX_INSTANCE_END_BYTES`]) in a JSON object, with room to
/// spare. Stops a caller from making the service buffer large bodies on an endpoint anyone
/// may call.
pub const MAX_INSTANCE_END_BODY_BYTES: usize = 8 * 1024;

/// The router for `service`.
pub fn router(service: Arc<AttestationService>) -> Router {
    Router::new()
        .route("/v1/nonces", post(nonce))
        .route("/v1/attestations", post(attest))
        .route("/v1/instance-ends", post(end_instance))
        .route("/v1/certificates/{serial}", get(certificate_status))
        .route("/v1/ca-certificate", get(ca_certificate))
        .fallback(not_found)
        .with_state(service)
}

/// Reads a body of at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ServiceError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ServiceError::BodyTooLarge { limit })
        }
        Err(error) => Err(ServiceError::MalformedRequest(format!(
            "could not read the body: {error}"
        ))),
    }
}

fn respond<T: serde::Serialize>(result: Result<T, ServiceError>) -> Response {
    match result {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn nonce(State(service): State<Arc<AttestationService>>, body: Body) -> Response {
    let result = service
        .audited("nonce", async {
            read_body(body, MAX_EMPTY_BODY_BYTES).await?;
            service.issue_nonce().await
        })
        .await;
    respond(result)
}

async fn attest(State(service): State<Arc<AttestationService>>, body: Body) -> Response {
    let result = service
        .audited("attest", async {
            let bytes = read_body(body, MAX_ATTESTATION_BODY_BYTES).await?;
            let request: AttestationRequest = serde_json::from_slice(&bytes).map_err(|e| {
                ServiceError::MalformedRequest(format!(
                    "the body is not an attestation request: {e}"
                ))
            })?;
            service.attest(&request).await
        })
        .await;
    respond(result)
}

async fn end_instance(State(service): State<Arc<AttestationService>>, body: Body) -> Response {
    let result = service
        .audited("end-instance", async {
            let bytes = read_body(body, MAX_INSTANCE_END_BODY_BYTES).await?;
            let request: InstanceEndRequest = serde_json::from_slice(&bytes).map_err(|e| {
                ServiceError::MalformedRequest(format!(
                    "the body is not an instance end request: {e}"
                ))
            })?;
            service.end_instance(&request).await
        })
        .await;
    respond(result)
}

async fn certificate_status(
    State(service): State<Arc<AttestationService>>,
    Path(serial): Path<String>,
) -> Response {
    let result = service
        .audited("certificate-status", service.certificate_status(&serial))
        .await;
    respond(result)
}

async fn ca_certificate(State(service): State<Arc<AttestationService>>) -> Response {
    let result = service
        .audited("ca-certificate", async {
            let note = AuditNote {
                detail: "CA certificate".into(),
                serial: None,
            };
            Ok((service.ca().certificate_pem(), note))
        })
        .await;
    match result {
        Ok(pem) => ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn not_found(State(service): State<Arc<AttestationService>>, uri: Uri) -> Response {
    let path: String = uri.path().chars().take(200).collect();
    let result: Result<(), ServiceError> = service
        .audited("unknown-endpoint", async {
            Err(ServiceError::NotFound(path))
        })
        .await;
    respond(result)
}
