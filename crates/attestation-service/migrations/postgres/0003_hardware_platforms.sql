-- Hardware platforms (SEV-SNP, TDX, SGX, Nitro) and the endorsements the service caches.
-- Identical in migrations/sqlite/ and migrations/postgres/.
--
-- A hardware platform has no key to enrol: its root is pinned in the verifier. Its row holds
-- `key_id` = 'hardware:<kind>:<name>' (never a hex digest, so it cannot collide with a software
-- key id), an empty `certificate_pem`, and in `requirements` the JSON rules its evidence must
-- meet beyond the measurement (debug, migration agent, accepted TCB statuses, SGX signer).
-- At most one unrevoked hardware platform per kind: evidence names only its kind, so the
-- service must know which enrolment (and which rules) it is appraised under.
ALTER TABLE platforms ADD COLUMN requirements TEXT;

CREATE UNIQUE INDEX platforms_one_live_hardware_platform_per_kind
    ON platforms (kind)
    WHERE revoked_at IS NULL AND kind <> 'software';

-- Endorsements (an SEV-SNP VCEK, DCAP collateral) that verified, keyed by what the evidence
-- identifies them by (chip id and TCB; FMSPC), so that a host may send evidence without them.
-- A cached endorsement is trusted no more than a fresh one: it is verified again, at the time
-- of each attestation, against the pinned roots.
CREATE TABLE endorsements (
    platform_kind TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    body_base64 TEXT NOT NULL,
    stored_at BIGINT NOT NULL,
    PRIMARY KEY (platform_kind, cache_key)
);
