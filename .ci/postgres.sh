#!/usr/bin/env bash
# Makes a PostgreSQL server available for the store tests and prints the URL to use.
# Installs Debian's postgresql package if needed, starts a cluster if none is running, and
# creates the role and database `scopekey_test` (password `scopekey_test`).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing postgresql from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_lsclusters >/dev/null 2>&1 && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
    read -r version name _ < <(pg_lsclusters -h | head -n 1)
    log "starting cluster $version/$name"
    pg_ctlcluster "$version" "$name" start >&2 || true
  else
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    log "creating cluster $version/main"
    pg_createcluster "$version" main --start >&2
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi
pg_isready -h 127.0.0.1 -p 5432 >&2

psql_as_postgres() { su postgres -c "psql -v ON_ERROR_STOP=1 -qAt $*"; }
if [ "$(psql_as_postgres "-c \"select 1 from pg_roles where rolname = 'scopekey_test'\"")" != "1" ]; then
  psql_as_postgres "-c \"create role scopekey_test login superuser password 'scopekey_test'\"" >&2
fi
if [ "$(psql_as_postgres "-c \"select 1 from pg_database where datname = 'scopekey_test'\"")" != "1" ]; then
  psql_as_postgres "-c \"create database scopekey_test owner scopekey_test\"" >&2
fi
echo "postgres://scopekey_test:scopekey_test@127.0.0.1:5432/scopekey_test"
