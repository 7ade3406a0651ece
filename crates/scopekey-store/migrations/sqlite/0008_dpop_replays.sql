-- DPoP proofs accepted (RFC 9449 jti replay protection): one row per proof, keyed by the hex
-- SHA-256 of its key thumbprint and jti, kept until no verifier would accept the proof any
-- more (expires_at, unix seconds). Inserted by one atomic insert-if-absent-or-expired, so two
-- instances sharing the store never both accept one proof. Store::prune_dpop_proofs deletes
-- expired rows.
CREATE TABLE scopekey_dpop_replays (
    proof      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX scopekey_dpop_replays_expires_at ON scopekey_dpop_replays (expires_at)
