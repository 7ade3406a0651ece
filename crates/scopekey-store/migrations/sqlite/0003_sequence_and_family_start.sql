-- Revocations are numbered from one counter, incremented in the writing transaction: gap-free
-- and in commit order, so a replica that sees a gap knows it missed something.
CREATE TABLE scopekey_counters (
    name        TEXT PRIMARY KEY,
    value       BIGINT NOT NULL
);
INSERT INTO scopekey_counters (name, value)
    SELECT 'revocations', COALESCE(MAX(id), 0) FROM scopekey_revocations;

-- A refresh family's start, for its absolute lifetime. Families begun before this migration
-- count from now.
ALTER TABLE scopekey_refresh_families ADD COLUMN started_at BIGINT;
UPDATE scopekey_refresh_families SET started_at = CAST(strftime('%s', 'now') AS INTEGER);
