-- Operators: the consumers that may hold admin tokens (the token service's admin audience),
-- with the admin scopes each may be granted there. A consumer's ceiling applies to the API
-- audiences only, so an API scope that happens to be spelled like an admin scope (keys:write)
-- or a broad ceiling (*:*) never reaches the admin API.
CREATE TABLE scopekey_operators (
    consumer    TEXT PRIMARY KEY,
    scopes      TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
)
