-- The number of revocation rows, kept by triggers, so that a replica's consistency check reads
-- it and counts only the rows above its last number instead of every row up to it.
INSERT INTO scopekey_counters (name, value) SELECT 'revocation_rows', COUNT(*) FROM scopekey_revocations
-- next statement
CREATE TRIGGER scopekey_revocation_rows_insert AFTER INSERT ON scopekey_revocations
BEGIN
    UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocation_rows';
END
-- next statement
CREATE TRIGGER scopekey_revocation_rows_delete AFTER DELETE ON scopekey_revocations
BEGIN
    UPDATE scopekey_counters SET value = value - 1 WHERE name = 'revocation_rows';
END
