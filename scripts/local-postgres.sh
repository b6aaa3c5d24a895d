#!/usr/bin/env bash
# A local PostgreSQL for the storage tests: Debian's packages, one cluster on 127.0.0.1.
#
#   scripts/local-postgres.sh up      install (if needed), start, create role + database; print the DSN
#   scripts/local-postgres.sh down    stop the cluster (data kept)
#   scripts/local-postgres.sh purge   stop and drop the cluster
#   scripts/local-postgres.sh url     print the DSN of a running cluster
#
# Idempotent; needs root (apt-get, pg_createcluster, pg_ctlcluster). Only the DSN goes to stdout,
# so CI can do:  export SCALING_TEST_PG_URL="$(scripts/local-postgres.sh up)"
# Settings: PG_CLUSTER (scaling), PG_PORT (5433), PG_DB (scaling_test), PG_USER (scaling).
# The password is generated once, kept in the cluster's config dir (mode 600), loopback only.
set -euo pipefail

CLUSTER="${PG_CLUSTER:-scaling}"
PORT="${PG_PORT:-5433}"
DB="${PG_DB:-scaling_test}"
ROLE="${PG_USER:-scaling}"

log() { echo "local-postgres: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (installs packages and manages clusters)"; }

install_pg() {
  if ! command -v pg_createcluster >/dev/null 2>&1; then
    log "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q postgresql >&2 || die "apt-get install postgresql failed"
  fi
}

pg_version() { ls /usr/lib/postgresql | sort -V | tail -1; }

pw_file() { echo "/etc/postgresql/$(pg_version)/$CLUSTER/scaling-password"; }

ensure_cluster() {
  local ver; ver="$(pg_version)"
  [ -n "$ver" ] || die "no PostgreSQL server under /usr/lib/postgresql"
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$ver $CLUSTER"; then
    log "creating cluster $ver/$CLUSTER on 127.0.0.1:$PORT"
    pg_createcluster "$ver" "$CLUSTER" --port "$PORT" >&2 -- --auth-local=peer --auth-host=scram-sha-256
    echo "listen_addresses = '127.0.0.1'" >> "/etc/postgresql/$ver/$CLUSTER/postgresql.conf"
  fi
  if ! pg_lsclusters -h | awk -v v="$ver" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
    log "starting cluster $ver/$CLUSTER"
    pg_ctlcluster "$ver" "$CLUSTER" start >&2 || {
      tail -20 "/var/log/postgresql/postgresql-$ver-$CLUSTER.log" >&2 || true
      die "cluster did not start"
    }
  fi
}

psql_admin() {
  su postgres -c "psql -X -q -v ON_ERROR_STOP=1 -p $PORT $*"
}

ensure_role_and_db() {
  local pwf; pwf="$(pw_file)"
  if [ ! -s "$pwf" ]; then
    (umask 077; head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$pwf")
  fi
  local pw; pw="$(cat "$pwf")"
  if [ -z "$(psql_admin "-tA -c \"SELECT 1 FROM pg_roles WHERE rolname='$ROLE'\"")" ]; then
    psql_admin "-c \"CREATE ROLE $ROLE LOGIN PASSWORD '$pw'\"" >&2
  else
    psql_admin "-c \"ALTER ROLE $ROLE LOGIN PASSWORD '$pw'\"" >&2
  fi
  if [ -z "$(psql_admin "-tA -c \"SELECT 1 FROM pg_database WHERE datname='$DB'\"")" ]; then
    psql_admin "-c \"CREATE DATABASE $DB OWNER $ROLE\"" >&2
  fi
}

print_url() {
  local pwf; pwf="$(pw_file)"
  [ -s "$pwf" ] || die "cluster $CLUSTER has no password yet: run '$0 up'"
  echo "postgresql+psycopg2://$ROLE:$(cat "$pwf")@127.0.0.1:$PORT/$DB"
}

case "${1:-}" in
  up)
    need_root; install_pg; ensure_cluster; ensure_role_and_db; print_url ;;
  url)
    print_url ;;
  down)
    need_root
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d "/etc/postgresql/$(pg_version)/$CLUSTER" ]; then
      pg_ctlcluster "$(pg_version)" "$CLUSTER" stop >&2 || true
    fi ;;
  purge)
    need_root
    if command -v pg_dropcluster >/dev/null 2>&1 && [ -d "/etc/postgresql/$(pg_version)/$CLUSTER" ]; then
      pg_dropcluster --stop "$(pg_version)" "$CLUSTER" >&2
    fi ;;
  *)
    echo "usage: $0 up|down|purge|url" >&2; exit 2 ;;
esac
