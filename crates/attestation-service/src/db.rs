//! The service's database: enrolled platforms, allowed measurements, nonces, issued
//! certificates, revocations and the audit log.
//!
//! One query set runs on both SQLite and PostgreSQL through `sqlx::Any`: every query uses `$n`
//! placeholders (which SQLite also understands), times are Unix milliseconds in `BIGINT`, digests
//! are lowercase hex in `TEXT`, and no query relies on a dialect feature. Only the schema needs
//! two migration directories (`migrations/sqlite`, `migrations/postgres`), because the two
//! databases spell an auto-incrementing id differently; the two files are otherwise identical.
//! `sqlx::Any` was chosen over a trait with two implementations so that every rule (for example
//! "a nonce is consumed by one conditional UPDATE") is written exactly once.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor as _};

use crate::ServiceError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections in the pool for SQLite. SQLite has one writer at a time; a few connections let
/// reads proceed beside it without piling up writers that only wait on the lock.
pub const SQLITE_POOL_SIZE: u32 = 4;
/// Connections in the pool for PostgreSQL.
pub const POSTGRES_POOL_SIZE: u32 = 16;
/// How long a request waits for a pool connection before failing (with a 500): bounds the
/// queue a flood of requests can build up behind a slow database.
pub const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long SQLite waits on another connection's write lock before failing a statement: 30 s.
/// (sqlx takes only `'static` SQL, so the value is spelled inside the pragma.)
pub const SQLITE_BUSY_TIMEOUT_PRAGMA: &str = "PRAGMA busy_timeout = 30000";
/// The longest audit detail stored, in bytes. Details quote caller input (inside error
/// messages); this stops a caller from writing megabytes into the audit log per request.
pub const MAX_AUDIT_DETAIL_LEN: usize = 2048;

/// Which database the URL named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs.
    Sqlite,
    /// `postgres:` and `postgresql:` URLs.
    Postgres,
}

impl Backend {
    /// The backend for a database URL.
    ///
    /// # Errors
    /// [`ServiceError::InvalidInput`] for any other scheme.
    pub fn of_url(url: &str) -> Result<Self, ServiceError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(ServiceError::InvalidInput(
                "the database URL must start with sqlite: or postgres:".to_owned(),
            ))
        }
    }
}

/// An enrolled platform as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PlatformRecord {
    /// Administrator's name.
    pub name: String,
    /// Platform kind (`software`, …).
    pub kind: String,
    /// SHA-256 of the platform key's SubjectPublicKeyInfo, hex.
    pub key_id: String,
    /// The platform certificate, PEM.
    pub certificate_pem: String,
    /// When it was enrolled, Unix ms.
    pub enrolled_at: i64,
    /// When it was revoked, Unix ms.
    pub revoked_at: Option<i64>,
    /// Hardware platforms only: the JSON `HardwareRequirements` its evidence must meet.
    pub requirements: Option<String>,
}

/// An issued certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CertificateRecord {
    /// Serial, hex.
    pub serial: String,
    /// The nonce it consumed, hex.
    pub nonce: String,
    /// Enrolled platform name.
    pub platform: String,
    /// Platform kind.
    pub platform_kind: String,
    /// Measurement, hex.
    pub measurement: String,
    /// Policy hash, hex.
    pub policy_hash: String,
    /// Computation id.
    pub computation_id: String,
    /// SHA-256 of the certified TLS key, hex.
    pub tls_key_sha256: String,
    /// Start of validity, Unix ms.
    pub not_before: i64,
    /// End of validity, Unix ms.
    pub not_after: i64,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// When it was issued, Unix ms.
    pub issued_at: i64,
    /// When it was revoked, Unix ms.
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revocation_reason: Option<String>,
    /// When its instance ended, Unix ms: its runtime's signed end statement was received,
    /// or it was found expired when its computation was attested again.
    pub ended_at: Option<i64>,
    /// How its instance ended.
    pub end_reason: Option<String>,
}

/// What recording an issued certificate found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The certificate is recorded: it is its computation's live instance.
    Issued,
    /// Another certificate is its computation's live instance (this one was not recorded).
    InstanceLive(Box<CertificateRecord>),
}

/// The columns of `certificates`, in [`CertificateRecord`]'s order (a macro, so that queries
/// stay `'static` text built with `concat!`).
macro_rules! certificate_columns {
    () => {
        "serial, nonce, platform, platform_kind, measurement, policy_hash, computation_id, \
         tls_key_sha256, not_before, not_after, certificate_pem, issued_at, revoked_at, \
         revocation_reason, ended_at, end_reason"
    };
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When, Unix ms.
    pub at: i64,
    /// What was asked: `nonce`, `attest`, `end-instance`, `certificate-status`,
    /// `ca-certificate`, `enroll-platform`, `allow-measurement`, `revoke-platform`,
    /// `revoke-measurement`, `revoke-certificate`, `init`, `unknown-endpoint`.
    pub action: String,
    /// `ok`, `refused` or `error`.
    pub outcome: String,
    /// `ok` or the error code.
    pub code: String,
    /// What happened, for people.
    pub detail: String,
    /// The certificate concerned, if any.
    pub serial: Option<String>,
}

/// What trying to consume a nonce found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceOutcome {
    /// It was unused and fresh, and is now used.
    Consumed,
    /// It was never issued.
    Unknown,
    /// It was used before.
    AlreadyUsed,
    /// It expired.
    Expired,
}

/// Row counts, for consistency checks and `covenant attestation-service audit --summary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Nonces stored.
    pub nonces: i64,
    /// Nonces used.
    pub used_nonces: i64,
    /// Certificates issued.
    pub certificates: i64,
    /// Audit entries.
    pub audit_entries: i64,
}

/// The database handle (a connection pool). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: writers in this process take turns here, first come first served, instead
    /// of contending for the file lock inside SQLite, whose busy handler backs off by sleeping
    /// (measured: a 1.2 s worst case at 16 concurrent clients without this). Other processes
    /// on the same file (an admin command during `serve`) still wait on the busy timeout.
    sqlite_writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Database {
    /// Connects to `url` (`sqlite:PATH?mode=rwc` or `postgres://…`) and brings the schema up to
    /// date. For SQLite it switches the file to WAL mode (readers do not block the writer) and
    /// sets a busy timeout ([`SQLITE_BUSY_TIMEOUT_PRAGMA`]).
    ///
    /// # Errors
    /// [`ServiceError::InvalidInput`] for an unsupported URL, [`ServiceError::Database`] or
    /// [`ServiceError::Migration`].
    pub async fn connect(url: &str) -> Result<Self, ServiceError> {
        let backend = Backend::of_url(url)?;
        sqlx::any::install_default_drivers();
        let options = sqlx::any::AnyConnectOptions::from_str(url)?;
        let pool_options = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(SQLITE_POOL_SIZE)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(SQLITE_BUSY_TIMEOUT_PRAGMA).await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(POSTGRES_POOL_SIZE),
        };
        let pool = pool_options
            .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => {
                // WAL is a property of the file: set once, it stays.
                pool.execute("PRAGMA journal_mode = WAL").await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let sqlite_writer =
            (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Self {
            pool,
            backend,
            sqlite_writer,
        })
    }

    /// Waits for this process's turn to write (SQLite); no-op on PostgreSQL.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.sqlite_writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- platforms -------------------------------------------------------------------------

    /// Enrols a platform.
    ///
    /// # Errors
    /// [`ServiceError::InvalidInput`] if the name or key is already enrolled;
    /// [`ServiceError::Database`].
    pub async fn enroll_platform(
        &self,
        name: &str,
        kind: &str,
        key_id: &str,
        certificate_pem: &str,
        requirements: Option<&str>,
        now_ms: i64,
    ) -> Result<(), ServiceError> {
        let _turn = self.write_turn().await;
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT name FROM platforms WHERE name = $1 OR key_id = $2")
                .bind(name)
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((other,)) = existing {
            return Err(ServiceError::InvalidInput(format!(
                "a platform with this name or key is already enrolled (as {other:?})"
            )));
        }
        if requirements.is_some() {
            let live: Option<(String,)> =
                sqlx::query_as("SELECT name FROM platforms WHERE kind = $1 AND revoked_at IS NULL")
                    .bind(kind)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some((other,)) = live {
                return Err(ServiceError::InvalidInput(format!(
                    "a {kind} platform is already enrolled (as {other:?}); one per hardware kind \
                     can be live, because evidence names only its kind: revoke {other:?} first"
                )));
            }
        }
        sqlx::query(
            "INSERT INTO platforms (name, kind, key_id, certificate_pem, enrolled_at, requirements) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(name)
        .bind(kind)
        .bind(key_id)
        .bind(certificate_pem)
        .bind(now_ms)
        .bind(requirements)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unrevoked hardware platform of kind `kind`, if one is enrolled.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn live_hardware_platform(
        &self,
        kind: &str,
    ) -> Result<Option<PlatformRecord>, ServiceError> {
        Ok(sqlx::query_as(
            "SELECT name, kind, key_id, certificate_pem, enrolled_at, revoked_at, requirements FROM platforms \
             WHERE kind = $1 AND revoked_at IS NULL AND requirements IS NOT NULL",
        )
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?)
    }

    // ---- endorsements ----------------------------------------------------------------------

    /// Caches an endorsement (base64) under `kind` and `key`, replacing what was there.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn store_endorsement(
        &self,
        kind: &str,
        key: &str,
        sha256: &str,
        body_base64: &str,
        now_ms: i64,
    ) -> Result<(), ServiceError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO endorsements (platform_kind, cache_key, sha256, body_base64, stored_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (platform_kind, cache_key) DO UPDATE SET \
             sha256 = excluded.sha256, body_base64 = excluded.body_base64, stored_at = excluded.stored_at",
        )
        .bind(kind)
        .bind(key)
        .bind(sha256)
        .bind(body_base64)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The cached endorsement (base64) for `kind` and `key`, if any.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn endorsement(&self, kind: &str, key: &str) -> Result<Option<String>, ServiceError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT body_base64 FROM endorsements WHERE platform_kind = $1 AND cache_key = $2",
        )
        .bind(kind)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(body,)| body))
    }

    /// The platform whose key id is `key_id`, if enrolled (revoked or not).
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn platform_by_key_id(
        &self,
        key_id: &str,
    ) -> Result<Option<PlatformRecord>, ServiceError> {
        Ok(sqlx::query_as(
            "SELECT name, kind, key_id, certificate_pem, enrolled_at, revoked_at, requirements FROM platforms WHERE key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The platform named `name`, if enrolled.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn platform_by_name(
        &self,
        name: &str,
    ) -> Result<Option<PlatformRecord>, ServiceError> {
        Ok(sqlx::query_as(
            "SELECT name, kind, key_id, certificate_pem, enrolled_at, revoked_at, requirements FROM platforms WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Revokes a platform and every unrevoked certificate issued through it. Returns how many
    /// certificates were revoked, or `None` if no such platform is enrolled and unrevoked.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn revoke_platform(
        &self,
        name: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<u64>, ServiceError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let done: AnyQueryResult = sqlx::query(
            "UPDATE platforms SET revoked_at = $1, revocation_reason = $2 WHERE name = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let certificates = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE platform = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(format!("platform revoked: {reason}"))
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(certificates.rows_affected()))
    }

    // ---- measurements ----------------------------------------------------------------------

    /// Allows `measurement` (hex) for platform `platform`. Allowing it again after a revocation
    /// allows it again. Returns false if it was already allowed.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn allow_measurement(
        &self,
        platform: &str,
        measurement: &str,
        now_ms: i64,
    ) -> Result<bool, ServiceError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let existing: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT revoked_at FROM measurements WHERE platform = $1 AND measurement = $2",
        )
        .bind(platform)
        .bind(measurement)
        .fetch_optional(&mut *tx)
        .await?;
        let changed = match existing {
            Some((None,)) => false,
            Some((Some(_),)) => {
                sqlx::query(
                    "UPDATE measurements SET revoked_at = NULL, allowed_at = $1 WHERE platform = $2 AND measurement = $3",
                )
                .bind(now_ms)
                .bind(platform)
                .bind(measurement)
                .execute(&mut *tx)
                .await?;
                true
            }
            None => {
                sqlx::query("INSERT INTO measurements (platform, measurement, allowed_at) VALUES ($1, $2, $3)")
                    .bind(platform)
                    .bind(measurement)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                true
            }
        };
        tx.commit().await?;
        Ok(changed)
    }

    /// Whether `measurement` is allowed (and not revoked) for `platform`.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn measurement_allowed(
        &self,
        platform: &str,
        measurement: &str,
    ) -> Result<bool, ServiceError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT measurement FROM measurements WHERE platform = $1 AND measurement = $2 AND revoked_at IS NULL",
        )
        .bind(platform)
        .bind(measurement)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Revokes an allowed measurement and every unrevoked certificate issued for it on that
    /// platform. Returns how many certificates were revoked, or `None` if it was not allowed.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn revoke_measurement(
        &self,
        platform: &str,
        measurement: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<u64>, ServiceError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE measurements SET revoked_at = $1 WHERE platform = $2 AND measurement = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(platform)
        .bind(measurement)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let certificates = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 \
             WHERE platform = $3 AND measurement = $4 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(format!("measurement revoked: {reason}"))
        .bind(platform)
        .bind(measurement)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(certificates.rows_affected()))
    }

    // ---- nonces ----------------------------------------------------------------------------

    /// Unused nonces that have not expired.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn outstanding_nonces(&self, now_ms: i64) -> Result<i64, ServiceError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM nonces WHERE used_at IS NULL AND expires_at > $1")
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }

    /// Stores a new nonce.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn insert_nonce(
        &self,
        nonce: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), ServiceError> {
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO nonces (nonce, issued_at, expires_at) VALUES ($1, $2, $3)")
            .bind(nonce)
            .bind(now_ms)
            .bind(expires_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes unused nonces that expired before `before_ms`. Used nonces stay: they record
    /// which nonce each certificate consumed.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn purge_expired_nonces(&self, before_ms: i64) -> Result<u64, ServiceError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM nonces WHERE used_at IS NULL AND expires_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Consumes a nonce: one conditional UPDATE, so of any number of concurrent attempts at most
    /// one sees [`NonceOutcome::Consumed`]. Otherwise reports why not.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn consume_nonce(
        &self,
        nonce: &str,
        now_ms: i64,
    ) -> Result<NonceOutcome, ServiceError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE nonces SET used_at = $1 WHERE nonce = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now_ms)
        .bind(nonce)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(NonceOutcome::Consumed);
        }
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT expires_at, used_at FROM nonces WHERE nonce = $1")
                .bind(nonce)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            None => NonceOutcome::Unknown,
            Some((_, Some(_))) => NonceOutcome::AlreadyUsed,
            Some((_, None)) => NonceOutcome::Expired,
        })
    }

    // ---- certificates ----------------------------------------------------------------------

    /// Records an issued certificate, unless its computation (computation id and policy hash)
    /// has a live instance already: then nothing is recorded and that instance is returned.
    ///
    /// One transaction: first every unended, unrevoked certificate of the computation that
    /// expired before `now_ms` is marked ended (`end_reason` `expired`, at its `notAfter`);
    /// then the insert, which the partial unique index `certificates_one_live_instance`
    /// (unended, unrevoked certificates) turns into a no-op if another live one exists. Of
    /// any number of concurrent attestations for one computation, on either database, exactly
    /// one is recorded: the index decides, not a check made before the insert.
    ///
    /// # Errors
    /// [`ServiceError::Database`]; [`ServiceError::Internal`] if the insert conflicted on
    /// something else than the computation (a serial or nonce already taken).
    pub async fn insert_certificate(
        &self,
        record: &CertificateRecord,
        now_ms: i64,
    ) -> Result<Recorded, ServiceError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE certificates SET ended_at = not_after, end_reason = 'expired' \
             WHERE computation_id = $1 AND policy_hash = $2 AND ended_at IS NULL \
             AND revoked_at IS NULL AND not_after < $3",
        )
        .bind(&record.computation_id)
        .bind(&record.policy_hash)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO certificates (serial, nonce, platform, platform_kind, measurement, policy_hash, \
             computation_id, tls_key_sha256, not_before, not_after, certificate_pem, issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
        )
        .bind(&record.serial)
        .bind(&record.nonce)
        .bind(&record.platform)
        .bind(&record.platform_kind)
        .bind(&record.measurement)
        .bind(&record.policy_hash)
        .bind(&record.computation_id)
        .bind(&record.tls_key_sha256)
        .bind(record.not_before)
        .bind(record.not_after)
        .bind(&record.certificate_pem)
        .bind(record.issued_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if inserted.rows_affected() == 1 {
            return Ok(Recorded::Issued);
        }
        // The insert conflicted: with the computation's live instance, or (never seen: a
        // 128-bit random serial, a nonce consumed once) with a serial or nonce.
        match self
            .live_instance(&record.computation_id, &record.policy_hash, now_ms)
            .await?
        {
            Some(live) => Ok(Recorded::InstanceLive(Box::new(live))),
            None => Err(ServiceError::Internal(format!(
                "certificate {} could not be recorded: its serial or nonce is already taken",
                record.serial
            ))),
        }
    }

    /// The live instance of a computation (computation id and policy hash) at `now_ms`, if
    /// any: its unended, unrevoked, unexpired certificate.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn live_instance(
        &self,
        computation_id: &str,
        policy_hash: &str,
        now_ms: i64,
    ) -> Result<Option<CertificateRecord>, ServiceError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            certificate_columns!(),
            " FROM certificates WHERE computation_id = $1 AND policy_hash = $2 \
             AND ended_at IS NULL AND revoked_at IS NULL AND not_after >= $3"
        ))
        .bind(computation_id)
        .bind(policy_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Marks the instance of certificate `serial` ended at `now_ms` for `reason`, unless it
    /// has ended already (sending an end twice changes nothing). Returns the certificate as
    /// recorded afterwards, or `None` if no certificate has this serial.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn end_instance(
        &self,
        serial: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<CertificateRecord>, ServiceError> {
        {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE certificates SET ended_at = $1, end_reason = $2 WHERE serial = $3 AND ended_at IS NULL",
            )
            .bind(now_ms)
            .bind(reason)
            .bind(serial)
            .execute(&self.pool)
            .await?;
        }
        self.certificate(serial).await
    }

    /// The certificate with `serial`, if issued.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn certificate(
        &self,
        serial: &str,
    ) -> Result<Option<CertificateRecord>, ServiceError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            certificate_columns!(),
            " FROM certificates WHERE serial = $1"
        ))
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Revokes one certificate. Returns false if there is no such unrevoked certificate.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn revoke_certificate(
        &self,
        serial: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool, ServiceError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- audit -----------------------------------------------------------------------------

    /// Appends an audit entry; `detail` is cut to [`MAX_AUDIT_DETAIL_LEN`] bytes.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn audit(
        &self,
        now_ms: i64,
        action: &str,
        outcome: &str,
        code: &str,
        detail: &str,
        serial: Option<&str>,
    ) -> Result<(), ServiceError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO audit_log (at, action, outcome, code, detail, serial) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now_ms)
        .bind(action)
        .bind(outcome)
        .bind(code)
        .bind(truncate(detail, MAX_AUDIT_DETAIL_LEN))
        .bind(serial)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The last `limit` audit entries, oldest first.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, ServiceError> {
        let mut entries: Vec<AuditEntry> = sqlx::query_as(
            "SELECT id, at, action, outcome, code, detail, serial FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        entries.reverse();
        Ok(entries)
    }

    /// Row counts.
    ///
    /// # Errors
    /// [`ServiceError::Database`].
    pub async fn counts(&self) -> Result<Counts, ServiceError> {
        let count = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
            Ok::<i64, ServiceError>(n)
        };
        Ok(Counts {
            nonces: count("SELECT COUNT(*) FROM nonces").await?,
            used_nonces: count("SELECT COUNT(*) FROM nonces WHERE used_at IS NOT NULL").await?,
            certificates: count("SELECT COUNT(*) FROM certificates").await?,
            audit_entries: count("SELECT COUNT(*) FROM audit_log").await?,
        })
    }
}
