#!/usr/bin/env bash
# Makes a PostgreSQL server available for the store tests and prints the URL to use.
# Installs Debian's postgresql package if needed, starts a cluster if none is running, and
# creates the role and database `scopekey_test` (password `scopekey_test`).
#
# It also runs a second, TLS-only cluster (`scopekey_tls`, port 5433, on 127.0.0.1 and 127.0.0.2)
# whose certificate is signed by a CA made here (in /var/lib/postgresql/scopekey-tls; the server
# certificate names DNS:localhost and IP:127.0.0.1 only, so 127.0.0.2 is a host name it does not
# match). It refuses every connection without TLS. What the TLS tests need is written to
# target/pg-tls.env (SCOPEKEY_TEST_POSTGRES_TLS_URL, SCOPEKEY_TEST_POSTGRES_TLS_CA and an unrelated
# CA, SCOPEKEY_TEST_POSTGRES_TLS_OTHER_CA); `.ci/run` exports it. Running it again reuses what it
# made, and never stops or changes the plain cluster on 5432.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

# One run at a time on a machine (other checkouts may run it too: the clusters are shared). The
# servers this starts must not inherit the lock's descriptor, or they would hold it for good.
exec 9>/tmp/scopekey-postgres.sh.lock
flock 9
pg_ctlcluster() { command pg_ctlcluster "$@" 9>&-; }
pg_createcluster() { command pg_createcluster "$@" 9>&-; }

if ! command -v pg_lsclusters >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing postgresql from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi

if ! command -v openssl >/dev/null 2>&1; then
  log "installing openssl (for the TLS cluster's certificates)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq openssl >&2
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_lsclusters >/dev/null 2>&1 && [ -n "$(pg_lsclusters -h 2>/dev/null | awk '$3 == 5432')" ]; then
    read -r version name _ < <(pg_lsclusters -h | awk '$3 == 5432' | head -n 1)
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
# The role and database `scopekey_test` in the cluster on port $1.
ensure_role_and_db() {
  local port="$1"
  if [ "$(psql_as_postgres "-p $port -c \"select 1 from pg_roles where rolname = 'scopekey_test'\"")" != "1" ]; then
    psql_as_postgres "-p $port -c \"create role scopekey_test login superuser password 'scopekey_test'\"" >&2
  fi
  if [ "$(psql_as_postgres "-p $port -c \"select 1 from pg_database where datname = 'scopekey_test'\"")" != "1" ]; then
    psql_as_postgres "-p $port -c \"create database scopekey_test owner scopekey_test\"" >&2
  fi
}
ensure_role_and_db 5432

# ---- the TLS-only cluster ------------------------------------------------------------------------
TLS_PORT=5433
TLS_CLUSTER=scopekey_tls
TLS_DIR=/var/lib/postgresql/scopekey-tls

# A CA and a server certificate signed by it, made once and kept while they verify and stay valid
# for another day; an unrelated CA that must never be accepted.
make_ca() { # out-prefix, common name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >/dev/null 2>&1
}
certs_ok() {
  [ -s "$TLS_DIR/ca.crt" ] && [ -s "$TLS_DIR/server.crt" ] && [ -s "$TLS_DIR/server.key" ] \
    && [ -s "$TLS_DIR/other-ca.crt" ] \
    && openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt" >/dev/null 2>&1 \
    && openssl x509 -in "$TLS_DIR/server.crt" -noout -checkend 86400 >/dev/null 2>&1
}
certs_changed=false
if ! certs_ok; then
  log "making a test CA and a server certificate in $TLS_DIR"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 755 "$TLS_DIR"
  make_ca "$TLS_DIR/ca" "scopekey test CA"
  make_ca "$TLS_DIR/other-ca" "scopekey unrelated CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" >/dev/null 2>&1
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    >"$TLS_DIR/server.ext"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 825 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.crt" >/dev/null 2>&1
  rm -f "$TLS_DIR/server.csr" "$TLS_DIR/ca.srl" "$TLS_DIR/other-ca.key"
  chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key"
  chmod 644 "$TLS_DIR/ca.crt" "$TLS_DIR/other-ca.crt" "$TLS_DIR/server.crt"
  chown postgres:postgres "$TLS_DIR/server.key" "$TLS_DIR/server.crt"
  certs_ok || { log "the generated certificates do not verify"; exit 1; }
  certs_changed=true
fi

tls_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | awk -v n="$TLS_CLUSTER" '$2 == n { found = 1 } END { exit !found }'; then
  log "creating the TLS-only cluster $tls_version/$TLS_CLUSTER on port $TLS_PORT"
  pg_createcluster "$tls_version" "$TLS_CLUSTER" -p "$TLS_PORT" >&2
  certs_changed=true
fi
read -r tls_version _ < <(pg_lsclusters -h | awk -v n="$TLS_CLUSTER" '$2 == n')
TLS_CONF=/etc/postgresql/$tls_version/$TLS_CLUSTER
# Settings after the defaults (Debian's postgresql.conf includes conf.d last).
mkdir -p "$TLS_CONF/conf.d"
cat >"$TLS_CONF/conf.d/scopekey-tls.conf" <<CONF
port = $TLS_PORT
listen_addresses = '127.0.0.1,127.0.0.2'
ssl = on
ssl_cert_file = '$TLS_DIR/server.crt'
ssl_key_file = '$TLS_DIR/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
CONF
# TLS or nothing over TCP; the local socket (peer authentication) is for this script.
cat >"$TLS_CONF/pg_hba.conf" <<HBA
local     all  postgres                peer
hostnossl all  all       0.0.0.0/0     reject
hostnossl all  all       ::/0          reject
hostssl   all  all       127.0.0.0/8   scram-sha-256
HBA
chown -R postgres:postgres "$TLS_CONF"
if pg_isready -q -h 127.0.0.1 -p "$TLS_PORT"; then
  # pg_hba.conf and the certificate files are re-read on reload.
  if $certs_changed; then pg_ctlcluster "$tls_version" "$TLS_CLUSTER" restart >&2; else pg_ctlcluster "$tls_version" "$TLS_CLUSTER" reload >&2; fi
else
  log "starting cluster $tls_version/$TLS_CLUSTER"
  pg_ctlcluster "$tls_version" "$TLS_CLUSTER" start >&2
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$TLS_PORT" && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p "$TLS_PORT" >&2
ensure_role_and_db "$TLS_PORT"

ENV_FILE="$(cd "$(dirname "$0")/.." && pwd)/target/pg-tls.env"
mkdir -p "$(dirname "$ENV_FILE")"
cat >"$ENV_FILE" <<ENV
SCOPEKEY_TEST_POSTGRES_TLS_URL='postgres://scopekey_test:scopekey_test@127.0.0.1:$TLS_PORT/scopekey_test?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.crt'
SCOPEKEY_TEST_POSTGRES_TLS_CA='$TLS_DIR/ca.crt'
SCOPEKEY_TEST_POSTGRES_TLS_OTHER_CA='$TLS_DIR/other-ca.crt'
ENV
log "TLS-only server on 127.0.0.1:$TLS_PORT; its variables are in $ENV_FILE"

echo "postgres://scopekey_test:scopekey_test@127.0.0.1:5432/scopekey_test"
