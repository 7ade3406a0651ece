-- Revocations are numbered from one counter, incremented in the writing transaction: the
-- counter row's lock orders writers, so numbers are gap-free and commit in order, and a
-- replica that sees a gap knows it missed something (a BIGSERIAL can commit out of order).
CREATE TABLE scopekey_counters (
    name        TEXT PRIMARY KEY,
    value       BIGINT NOT NULL
);
INSERT INTO scopekey_counters (name, value)
    SELECT 'revocations', COALESCE(MAX(id), 0) FROM scopekey_revocations;
-- A writer that still takes ids from the old sequence fails loudly instead of racing.
ALTER TABLE scopekey_revocations ALTER COLUMN id DROP DEFAULT;

-- A refresh family's start, for its absolute lifetime. Families begun before this migration
-- count from now.
ALTER TABLE scopekey_refresh_families ADD COLUMN started_at BIGINT;
UPDATE scopekey_refresh_families SET started_at = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT);
