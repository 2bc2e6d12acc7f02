#!/usr/bin/env bash
# Service-local catalog benchmark: one `uvicorn catalog.app:app` (the flags of
# scripts/services.sh, the env of lib.sh's stack_env) against an already running Postgres
# and RabbitMQ of the chosen profile, on a database seeded by seed_products.py.
#
#   BOS_PROFILE=test BOS_STATE_DIR=... PG_PORT=... AMQP_PORT=... SERVICE_PORT_BASE=... \
#   DB_NAME=bos_bench services/catalog/bench/bench.sh [--seed] [run_bench.py args]
#
# --seed first (re)seeds 1,000,000 products across 100 organizations. CATALOG_WORKERS
# (default 1, as scripts/services.sh runs it) sets uvicorn's workers. The uvicorn process
# started here is stopped on exit.
source "$(dirname "$0")/../../../scripts/lib.sh"
stack_env
PORT="$(service_port catalog)"
export CATALOG_URL="http://127.0.0.1:$PORT"

if [ "${1:-}" = "--seed" ]; then
  shift
  "$VENV/bin/python" "$ROOT/services/catalog/bench/seed_products.py"
fi

"$VENV/bin/python" -c "from bos_common.migrations import upgrade; import os; upgrade('catalog', os.environ['DATABASE_URL'])"
LOG="$(mktemp /tmp/catalog-bench.XXXXXX.log)"
LOG_LEVEL=WARNING "$VENV/bin/uvicorn" --host 127.0.0.1 --port "$PORT" --no-access-log \
  --log-level warning --loop uvloop --http httptools --workers "${CATALOG_WORKERS:-1}" \
  catalog.app:app >"$LOG" 2>&1 &
PID=$!
export CATALOG_PID=$PID
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
wait_http "$CATALOG_URL/readyz" 30 || { cat "$LOG" >&2; exit 1; }
"$VENV/bin/python" "$ROOT/services/catalog/bench/run_bench.py" "$@"
