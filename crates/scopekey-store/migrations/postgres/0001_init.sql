CREATE TABLE scopekey_revocations (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    value       TEXT,
    instant     BIGINT,
    revoked_by  TEXT    NOT NULL,
    revoked_at  BIGINT  NOT NULL,
    reason      TEXT    NOT NULL
);

CREATE TABLE scopekey_keys (
    kid         TEXT PRIMARY KEY,
    public_key  TEXT   NOT NULL,
    not_before  BIGINT,
    retire_at   BIGINT,
    added_at    BIGINT NOT NULL
);

CREATE TABLE scopekey_tokens (
    jti         TEXT PRIMARY KEY,
    token_type  TEXT   NOT NULL,
    subject     TEXT   NOT NULL,
    owner       TEXT,
    purpose     TEXT,
    scopes      TEXT   NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    kid         TEXT   NOT NULL,
    family      TEXT,
    last_used   BIGINT
);
CREATE INDEX scopekey_tokens_subject ON scopekey_tokens (subject);

CREATE TABLE scopekey_refresh_families (
    family      TEXT PRIMARY KEY,
    current_jti TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    dead        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE scopekey_refresh_used (
    family      TEXT NOT NULL,
    jti         TEXT NOT NULL,
    PRIMARY KEY (family, jti)
);

CREATE TABLE scopekey_audit (
    id          BIGSERIAL PRIMARY KEY,
    time        TEXT NOT NULL,
    event       TEXT NOT NULL,
    jti         TEXT,
    subject     TEXT,
    body        TEXT NOT NULL
);
