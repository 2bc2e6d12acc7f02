#!/usr/bin/env bash
# Run PostgreSQL as a local process (as the postgres user: it refuses root), data under $PG_DIR.
# PG_EXTRA_OPTS: more server options, e.g. "-c shared_preload_libraries=pg_stat_statements".
# Usage: scripts/postgres.sh start|stop|status
source "$(dirname "$0")/lib.sh"
PGBIN="$(pg_bin)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  if as_pg "$PGBIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then log "postgres already running on $PG_PORT"; return; fi
  if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$PG_DIR"; else mkdir -p "$PG_DIR"; fi
  if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
    as_pg "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$PG_DIR/initdb.log"
  fi
  as_pg "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 $PG_FAST ${PG_EXTRA_OPTS:-}" start >/dev/null
  as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" \
    | grep -q 1 || as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$DB_NAME"
  log "postgres up on 127.0.0.1:$PG_PORT (db $DB_NAME)"
}

stop() {
  [ -d "$PG_DIR/data" ] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) as_pg "$PGBIN/pg_ctl" -D "$PG_DIR/data" status ;;
  createdb) as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$2" ;;
  *) echo "usage: $0 start|stop|status|createdb NAME" >&2; exit 2 ;;
esac
