-- A consumer's client credentials for the token service (OAuth client authentication): an
-- argon2id hash of its client secret (a PHC string: the secret itself is never stored) and, for
-- private_key_jwt, a registered Ed25519 public key (PASERK k4.public). One row per consumer.
CREATE TABLE scopekey_client_credentials (
    consumer    TEXT PRIMARY KEY,
    secret_hash TEXT,
    public_key  TEXT,
    updated_at  BIGINT NOT NULL
)
