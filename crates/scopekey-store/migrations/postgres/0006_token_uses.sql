-- Uses of use-limited tokens (claim `uses`): one row per token id, created by its first use and
-- counted up by one atomic upsert per use, which never goes past the token's limit. keep_until
-- is the token's exp plus the largest leeway (no verifier accepts it later), after which
-- Store::prune_token_uses may delete the row.
CREATE TABLE scopekey_token_uses (
    jti        TEXT PRIMARY KEY,
    used       BIGINT NOT NULL,
    keep_until BIGINT NOT NULL
);
CREATE INDEX scopekey_token_uses_keep_until ON scopekey_token_uses (keep_until)
