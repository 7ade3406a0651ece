CREATE TABLE scopekey_consumers (
    name        TEXT PRIMARY KEY,
    owner       TEXT   NOT NULL,
    purpose     TEXT   NOT NULL,
    environment TEXT   NOT NULL,
    ceiling     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE scopekey_roles (
    name        TEXT PRIMARY KEY,
    scopes      TEXT NOT NULL
);
