-- One live attested instance per computation. Identical in migrations/sqlite/ and
-- migrations/postgres/.
--
-- An instance is one attested certificate. It is live until it ends (`ended_at`: its runtime
-- reported its end, signed with its attested key, or it was found expired when its
-- computation was attested again) or is revoked (`revoked_at`). The partial unique index
-- below lets at most one live certificate exist per computation id and policy hash, whatever
-- the interleaving of concurrent attestations: the database, not a check before the insert,
-- is what refuses the second one.
ALTER TABLE certificates ADD COLUMN ended_at BIGINT;
ALTER TABLE certificates ADD COLUMN end_reason TEXT;

-- Certificates issued before this rule may hold several unrevoked certificates for one
-- computation: every one but the newest is marked ended (at the newest one's issue time),
-- so that the index can be built.
UPDATE certificates
SET ended_at = (
        SELECT MAX(newer.issued_at) FROM certificates AS newer
        WHERE newer.computation_id = certificates.computation_id
          AND newer.policy_hash = certificates.policy_hash
          AND newer.revoked_at IS NULL
          AND (newer.issued_at > certificates.issued_at
               OR (newer.issued_at = certificates.issued_at AND newer.serial > certificates.serial))
    ),
    end_reason = 'superseded: issued before one live instance per computation was enforced'
WHERE revoked_at IS NULL
  AND EXISTS (
        SELECT 1 FROM certificates AS newer
        WHERE newer.computation_id = certificates.computation_id
          AND newer.policy_hash = certificates.policy_hash
          AND newer.revoked_at IS NULL
          AND (newer.issued_at > certificates.issued_at
               OR (newer.issued_at = certificates.issued_at AND newer.serial > certificates.serial))
    );

CREATE UNIQUE INDEX certificates_one_live_instance
    ON certificates (computation_id, policy_hash)
    WHERE ended_at IS NULL AND revoked_at IS NULL;
