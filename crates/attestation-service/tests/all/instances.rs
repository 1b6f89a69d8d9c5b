//! One live instance per computation (issue 12, section 1): a second attestation of a
//! computation with a live instance is refused and audited; the computation is free again once
//! the instance ends (its runtime's signed end statement), is revoked, or expires; end
//! statements are checked against the certificate the service issued.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use covenant_attest::instance::{EndReason, INSTANCE_END_FORMAT, INSTANCE_END_TYP};
use covenant_attest::wire::{CertificateState, ErrorBody, accept_attestation_response};
use covenant_attest::{Digest, InstanceEndSigner};
use covenant_attestation_service::admin::{self, RevocationTarget};
use covenant_attestation_service::http::MAX_INSTANCE_END_BODY_BYTES;
use covenant_attestation_service::{ClientError, ServiceConfig};
use hyper::Method;
use serde_json::json;
use time::OffsetDateTime;

use crate::support::{COMPUTATION, Harness, POLICY, backends};

/// An attested instance of `computation`: its key (PKCS#8) and certificate (DER), and serial.
struct Instance {
    pkcs8: Vec<u8>,
    certificate: Vec<u8>,
    serial: String,
}

impl Instance {
    fn end_statement(&self, reason: EndReason) -> String {
        InstanceEndSigner::new(&self.pkcs8, &self.certificate)
            .unwrap()
            .sign(reason, OffsetDateTime::now_utc())
            .unwrap()
    }
}

async fn attest(h: &Harness, computation: &str) -> Result<Instance, ClientError> {
    let (key, request) = h.request_for(h.nonce().await, computation);
    let response = h.client.attest(&request).await?;
    let chain = accept_attestation_response(&key, &response).unwrap();
    Ok(Instance {
        pkcs8: key.serialize_der(),
        certificate: chain[0].to_vec(),
        serial: response.serial,
    })
}

/// A compact ES256 JWS of `header` and `payload` signed with `pkcs8`: for statements the
/// runtime would never make.
fn jws(pkcs8: &[u8], header: &serde_json::Value, payload: &serde_json::Value) -> String {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap())
    );
    let signature = key.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

fn end_header() -> serde_json::Value {
    json!({"alg": "ES256", "typ": INSTANCE_END_TYP})
}

fn end_payload(serial: &str, computation: &str, policy: Digest) -> serde_json::Value {
    json!({
        "format": INSTANCE_END_FORMAT,
        "computation_id": computation,
        "policy_hash": policy.to_hex(),
        "serial": serial,
        "reason": "closed",
        "ended_at_ms": 1_700_000_000_000_i64,
    })
}

/// Sends `body` to `POST /v1/instance-ends` and checks the refusal and its audit entry.
/// Returns the message.
async fn assert_end_refused(h: &Harness, body: Vec<u8>, status: u16, code: &str) -> String {
    let (got, bytes) = h
        .client
        .raw(Method::POST, "/v1/instance-ends", body)
        .await
        .unwrap();
    let error: ErrorBody = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{}: {:?}: {e}", h.backend, String::from_utf8_lossy(&bytes)));
    assert_eq!(
        (got.as_u16(), error.error.code.as_str()),
        (status, code),
        "{}: {}",
        h.backend,
        error.error.message
    );
    let audit = h.last_audit().await;
    assert_eq!(
        (
            audit.action.as_str(),
            audit.outcome.as_str(),
            audit.code.as_str()
        ),
        ("end-instance", "refused", code),
        "{}",
        h.backend
    );
    error.error.message
}

fn statement_body(statement: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "statement": statement })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_of_a_live_computation_is_refused_and_audited() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let first = attest(&h, COMPUTATION).await.unwrap();
        let before = h.counts().await;

        let error = attest(&h, COMPUTATION).await.err().unwrap();
        let ClientError::Refused {
            status,
            code,
            message,
        } = &error
        else {
            panic!("{backend}: {error}")
        };
        assert_eq!((*status, code.as_str()), (409, "instance-already-live"));
        // It names the live instance and says how the computation is freed.
        for needle in [
            first.serial.as_str(),
            COMPUTATION,
            &POLICY.to_hex(),
            "would fork the computation",
            "revoke --certificate",
        ] {
            assert!(message.contains(needle), "{backend}: {needle}: {message}");
        }
        let audit = h.last_audit().await;
        assert_eq!(
            (
                audit.action.as_str(),
                audit.outcome.as_str(),
                audit.code.as_str()
            ),
            ("attest", "refused", "instance-already-live"),
            "{backend}"
        );
        assert_eq!(audit.detail, *message);
        let after = h.counts().await;
        assert_eq!(after.certificates, before.certificates, "{backend}");
        // The refused attestation used its nonce up, like any refusal after the evidence.
        assert_eq!(after.used_nonces, before.used_nonces + 1, "{backend}");

        // Another computation, or the same id under another policy, is another computation.
        attest(&h, "another-computation").await.unwrap();
        let (key, request) = covenant_attest::wire::prepare_attestation(
            &h.platform,
            Digest([0x33; 32]),
            COMPUTATION,
            &[],
            h.nonce().await,
        )
        .unwrap();
        let response = h.client.attest(&request).await.unwrap();
        accept_attestation_response(&key, &response).unwrap();
        // And the first instance is still the live one.
        let status = h.client.certificate_status(&first.serial).await.unwrap();
        assert_eq!(status.status, CertificateState::Valid);
        assert_eq!(status.ended_at, None);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instances_signed_end_frees_its_computation() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let first = attest(&h, COMPUTATION).await.unwrap();
        let statement = first.end_statement(EndReason::Closed);
        let ended = h.client.end_instance(&statement).await.unwrap();
        assert_eq!(ended.serial, first.serial, "{backend}");
        assert_eq!(ended.computation_id, COMPUTATION);
        assert_eq!(ended.policy_hash, POLICY.to_hex());
        assert!(
            ended
                .end_reason
                .starts_with("closed: reported by the runtime"),
            "{}",
            ended.end_reason
        );
        let audit = h.last_audit().await;
        assert_eq!(
            (audit.action.as_str(), audit.outcome.as_str()),
            ("end-instance", "ok")
        );
        assert_eq!(audit.serial.as_deref(), Some(first.serial.as_str()));
        let status = h.client.certificate_status(&first.serial).await.unwrap();
        assert_eq!(status.ended_at.as_deref(), Some(ended.ended_at.as_str()));

        // Sent again (a host retrying): nothing changes.
        let again = h.client.end_instance(&statement).await.unwrap();
        assert_eq!(again, ended, "{backend}");

        // The computation is free: a new instance is certified, and it is live in its turn.
        let second = attest(&h, COMPUTATION).await.unwrap();
        assert_ne!(second.serial, first.serial);
        let third = attest(&h, COMPUTATION).await.err().unwrap();
        assert!(
            matches!(&third, ClientError::Refused { code, message, .. }
                if code == "instance-already-live" && message.contains(&second.serial)),
            "{backend}: {third}"
        );
        // The old statement does not end the new instance.
        h.client.end_instance(&statement).await.unwrap();
        assert!(attest(&h, COMPUTATION).await.is_err(), "{backend}");
        // A stopped instance (its host told it to stop) ends the same way.
        let stopped = h
            .client
            .end_instance(&second.end_statement(EndReason::Stopped))
            .await
            .unwrap();
        assert!(stopped.end_reason.starts_with("stopped: "), "{stopped:?}");
        attest(&h, COMPUTATION).await.unwrap();
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_live_certificate_frees_its_computation() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        // The operator's recovery of a computation whose worker died: revoke its certificate.
        let dead = attest(&h, COMPUTATION).await.unwrap();
        assert!(attest(&h, COMPUTATION).await.is_err());
        admin::revoke(
            h.db(),
            &RevocationTarget::Certificate(dead.serial.clone()),
            "its worker died",
        )
        .await
        .unwrap();
        let last = h.last_audit().await;
        assert_eq!(
            (last.action.as_str(), last.outcome.as_str()),
            ("revoke-certificate", "ok")
        );
        attest(&h, COMPUTATION).await.unwrap();
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_instance_no_longer_holds_its_computation() {
    for backend in backends() {
        let config = ServiceConfig {
            certificate_lifetime: std::time::Duration::ZERO,
            ..ServiceConfig::default()
        };
        let h = Harness::start_with(backend, config, false).await;
        let expired = attest(&h, COMPUTATION).await.unwrap();
        // notAfter is the issue time, in whole seconds: a moment later the certificate is
        // expired.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        attest(&h, COMPUTATION).await.unwrap();
        let status = h.client.certificate_status(&expired.serial).await.unwrap();
        assert_eq!(status.status, CertificateState::Expired, "{backend}");
        assert_eq!(status.end_reason.as_deref(), Some("expired"), "{backend}");
        assert_eq!(status.ended_at, Some(status.not_after.clone()), "{backend}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_statements_are_checked_against_the_certificate_the_service_issued() {
    for backend in backends() {
        let h = Harness::start(backend).await;
        let live = attest(&h, COMPUTATION).await.unwrap();
        let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();

        // The host (or anyone) signs an end for the live instance with a key of its own.
        let forged = jws(
            &stranger.serialize_der(),
            &end_header(),
            &end_payload(&live.serial, COMPUTATION, POLICY),
        );
        let message = assert_end_refused(
            &h,
            statement_body(&forged),
            403,
            "end-statement-bad-signature",
        )
        .await;
        assert!(message.contains(&live.serial), "{message}");

        // A genuine statement with its payload swapped for another's.
        let genuine = live.end_statement(EndReason::Closed);
        let parts: Vec<&str> = genuine.split('.').collect();
        let mut other = end_payload(&live.serial, COMPUTATION, POLICY);
        other["reason"] = json!("stopped");
        let spliced = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap()),
            parts[2]
        );
        assert_end_refused(
            &h,
            statement_body(&spliced),
            403,
            "end-statement-bad-signature",
        )
        .await;

        // Signed by the instance's own key, but for another computation or policy.
        for (computation, policy) in [("elsewhere", POLICY), (COMPUTATION, Digest([0x44; 32]))] {
            let mismatched = jws(
                &live.pkcs8,
                &end_header(),
                &end_payload(&live.serial, computation, policy),
            );
            assert_end_refused(
                &h,
                statement_body(&mismatched),
                400,
                "end-statement-mismatch",
            )
            .await;
        }
        // Signed by the instance's key with another type (a receipt is signed by it too).
        let receipt_typed = jws(
            &live.pkcs8,
            &json!({"alg": "ES256", "typ": "covenant-receipt+jws"}),
            &end_payload(&live.serial, COMPUTATION, POLICY),
        );
        assert_end_refused(
            &h,
            statement_body(&receipt_typed),
            400,
            "end-statement-malformed",
        )
        .await;

        // A serial the service never issued.
        let unknown = jws(
            &live.pkcs8,
            &end_header(),
            &end_payload(&"ab".repeat(16), COMPUTATION, POLICY),
        );
        assert_end_refused(&h, statement_body(&unknown), 404, "unknown-certificate").await;

        // Garbage, unknown fields, oversized bodies.
        assert_end_refused(
            &h,
            statement_body("not.a.jws!"),
            400,
            "end-statement-malformed",
        )
        .await;
        assert_end_refused(&h, statement_body("x"), 400, "end-statement-malformed").await;
        assert_end_refused(&h, b"\xff\x00".to_vec(), 400, "malformed-request").await;
        let extra = serde_json::to_vec(&json!({"statement": genuine, "extra": 1})).unwrap();
        assert_end_refused(&h, extra, 400, "malformed-request").await;
        let long = "a".repeat(MAX_INSTANCE_END_BODY_BYTES);
        assert_end_refused(&h, statement_body(&long), 413, "body-too-large").await;
        let long = "a.".repeat(3000);
        assert_end_refused(&h, statement_body(&long), 400, "end-statement-malformed").await;

        // None of it ended the instance.
        assert!(attest(&h, COMPUTATION).await.is_err(), "{backend}");
        let status = h.client.certificate_status(&live.serial).await.unwrap();
        assert_eq!(status.ended_at, None, "{backend}");
        // The genuine one does.
        h.client.end_instance(&genuine).await.unwrap();
        attest(&h, COMPUTATION).await.unwrap();
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_keeps_only_the_newest_unrevoked_certificate_of_a_computation_live() {
    use sqlx::Connection as _;
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let url = match crate::support::fresh_database_url(backend).await {
            Some(url) => url,
            None => format!("sqlite:{}?mode=rwc", dir.path().join("old.db").display()),
        };
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let (first, second) = match backend {
            "sqlite" => (
                include_str!("../../migrations/sqlite/0001_initial.sql"),
                include_str!("../../migrations/sqlite/0002_one_instance_per_computation.sql"),
            ),
            _ => (
                include_str!("../../migrations/postgres/0001_initial.sql"),
                include_str!("../../migrations/postgres/0002_one_instance_per_computation.sql"),
            ),
        };
        sqlx::raw_sql(first).execute(&mut conn).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO platforms (name, kind, key_id, certificate_pem, enrolled_at) \
             VALUES ('p', 'software', 'k', 'pem', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        // A database from before the rule: three unrevoked certificates of computation c, one
        // revoked, and one of computation d.
        for (serial, computation, issued_at, revoked) in [
            ("01", "c", 10, false),
            ("02", "c", 30, false),
            ("03", "c", 20, false),
            ("04", "c", 40, true),
            ("05", "d", 10, false),
        ] {
            sqlx::query(
                "INSERT INTO certificates (serial, nonce, platform, platform_kind, measurement, \
                 policy_hash, computation_id, tls_key_sha256, not_before, not_after, \
                 certificate_pem, issued_at, revoked_at) \
                 VALUES ($1, $1, 'p', 'software', 'm', 'h', $2, 'k', 0, 100, 'pem', $3, $4)",
            )
            .bind(serial)
            .bind(computation)
            .bind(issued_at)
            .bind(revoked.then_some(50_i64))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::raw_sql(second).execute(&mut conn).await.unwrap();
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT serial, ended_at FROM certificates ORDER BY serial")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            rows,
            [
                ("01".to_owned(), Some(30)),
                ("02".to_owned(), None),
                ("03".to_owned(), Some(30)),
                ("04".to_owned(), None),
                ("05".to_owned(), None),
            ],
            "{backend}"
        );
        // The index holds from now on.
        let second_live = sqlx::query(
            "INSERT INTO certificates (serial, nonce, platform, platform_kind, measurement, \
             policy_hash, computation_id, tls_key_sha256, not_before, not_after, \
             certificate_pem, issued_at) \
             VALUES ('06', '06', 'p', 'software', 'm', 'h', 'c', 'k', 0, 100, 'pem', 60)",
        )
        .execute(&mut conn)
        .await;
        assert!(second_live.is_err(), "{backend}");
        conn.close().await.unwrap();
    }
}
