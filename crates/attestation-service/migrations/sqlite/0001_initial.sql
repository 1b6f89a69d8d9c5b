-- SQLite schema. Identical to migrations/postgres/ except the audit log's id column: SQLite's
-- auto-increment is INTEGER PRIMARY KEY AUTOINCREMENT, PostgreSQL's is BIGSERIAL, and neither
-- accepts the other's spelling.

-- Enrolled platforms. `key_id` is the SHA-256 of the platform certificate's SubjectPublicKeyInfo;
-- evidence names its signer by it. Times are Unix milliseconds (BIGINT) so that the same SQL and
-- the same Rust types work on SQLite and PostgreSQL.
CREATE TABLE platforms (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key_id TEXT NOT NULL UNIQUE,
    certificate_pem TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revocation_reason TEXT
);

-- Reference values: the measurements the service accepts, per enrolled platform.
CREATE TABLE measurements (
    platform TEXT NOT NULL REFERENCES platforms (name),
    measurement TEXT NOT NULL,
    allowed_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (platform, measurement)
);

-- One-time nonces. A nonce is consumed by one conditional UPDATE (used_at IS NULL AND not
-- expired), which is what makes a nonce single-use under concurrency on both databases.
CREATE TABLE nonces (
    nonce TEXT PRIMARY KEY,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX nonces_unused_by_expiry ON nonces (used_at, expires_at);

-- Issued attested certificates. UNIQUE (nonce): at most one certificate per nonce, whatever
-- happens above.
CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    nonce TEXT NOT NULL UNIQUE,
    platform TEXT NOT NULL REFERENCES platforms (name),
    platform_kind TEXT NOT NULL,
    measurement TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    computation_id TEXT NOT NULL,
    tls_key_sha256 TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    certificate_pem TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revocation_reason TEXT
);
CREATE INDEX certificates_by_platform ON certificates (platform, measurement);

-- Every request and every administrative action, with its outcome.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    serial TEXT
);
