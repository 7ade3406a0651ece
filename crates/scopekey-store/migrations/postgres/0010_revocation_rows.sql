-- The number of revocation rows, kept by a trigger, so that a replica's consistency check reads
-- it and counts only the rows above its last number instead of every row up to it.
INSERT INTO scopekey_counters (name, value) SELECT 'revocation_rows', COUNT(*) FROM scopekey_revocations
-- next statement
CREATE OR REPLACE FUNCTION scopekey_count_revocation_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE scopekey_counters SET value = value + 1 WHERE name = 'revocation_rows';
    ELSE
        UPDATE scopekey_counters SET value = value - 1 WHERE name = 'revocation_rows';
    END IF;
    RETURN NULL;
END
$$
-- next statement
CREATE TRIGGER scopekey_revocation_rows AFTER INSERT OR DELETE ON scopekey_revocations
    FOR EACH ROW EXECUTE FUNCTION scopekey_count_revocation_rows()
