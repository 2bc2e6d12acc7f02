#!/usr/bin/env bash
# `make test`: throwaway Postgres and RabbitMQ (other ports, a temp dir), every test
# level, then everything torn down; exits non-zero on any failure.
export BOS_PROFILE=test
export BOS_STATE_DIR="${BOS_STATE_DIR:-$(mktemp -d /tmp/bos-test.XXXXXX)}"
source "$(dirname "$0")/lib.sh"
BOS_WITH_BROWSER=1 BOS_WITH_REDIS=1 "$ROOT/scripts/ensure-deps.sh"
[ -x "$ROOT/scripts/ensure-deploy-tools.sh" ] && "$ROOT/scripts/ensure-deploy-tools.sh"
chmod 755 "$BOS_STATE_DIR"

teardown() {
  "$ROOT/scripts/services.sh" stop || true
  "$ROOT/scripts/rabbitmq.sh" stop || true
  "$ROOT/scripts/postgres.sh" stop || true
  rm -rf "$BOS_STATE_DIR"
}
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -d "$LOG_DIR" ]; then
    log "errors in the logs of the stack under test:"
    grep -h -E '"level": ?"(error|critical)"|Traceback|Error' "$LOG_DIR"/*.log 2>/dev/null | tail -n 40 >&2 || true
  fi
  teardown
  exit $rc
}
trap cleanup EXIT INT TERM

"$ROOT/scripts/postgres.sh" start
"$ROOT/scripts/rabbitmq.sh" start
# Two databases: `bos` for the running stack (e2e), `bos_it` for in-process integration
# tests that migrate and truncate as they please.
"$ROOT/scripts/postgres.sh" createdb bos_it
"$ROOT/scripts/rabbitmq.sh" vhost bos_it
stack_env
"$VENV/bin/python" -m bos_common.migrate all >/dev/null
# The whole suite talks to the gateway from 127.0.0.1: the per-IP limit for anonymous
# requests is raised so tests do not starve each other (its own tests set their limits).
export RATE_LIMIT_IP="${RATE_LIMIT_IP:-1000/minute}" ALLOW_CLOCK_CONTROL=true
# Held Connect transfers are released by a sweep (60 s in production): every second here.
export TRANSFER_SWEEP_SECONDS="${TRANSFER_SWEEP_SECONDS:-1}"
# Merchant webhook retries after about 0.3 s, 1.2 s, ... (30 s, 2 min, ... in production).
export MERCHANT_WEBHOOK_RETRY_BASE_SECONDS="${MERCHANT_WEBHOOK_RETRY_BASE_SECONDS:-0.3}"
export MERCHANT_WEBHOOK_POLL_SECONDS="${MERCHANT_WEBHOOK_POLL_SECONDS:-0.2}"
# The stack's traces go to the OTLP receiver tests/e2e/test_obs_traces.py runs on this port
# (stack_env; OTLP_TEST_PORT= turns tracing off and that test skips).
export OTLP_TEST_PORT="${OTLP_TEST_PORT-14318}"
"$ROOT/scripts/services.sh" start
wait_ready 60

export BOS_TEST_STACK=1 BOS_STATE_DIR
export IT_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/bos_it"
export IT_AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/bos_it"
cd "$ROOT"
if [ $# -gt 0 ]; then
  "$VENV/bin/pytest" "$@"
else
  # Unit, contract and integration tests, then the browser tests (a process of their own:
  # Playwright's driver keeps an event loop in the main thread, which pytest-asyncio's loop
  # must not share), on this stack of one process each. Then the e2e suite on a fresh stack
  # as it runs in Kubernetes: E2E_REPLICAS (2) processes of everything behind HAProxy.
  e2e() {
    local replicas="${E2E_REPLICAS:-2}"
    if [ "$replicas" -le "$REPLICAS" ]; then "$VENV/bin/pytest" tests/e2e; return; fi
    teardown
    log "e2e suite against REPLICAS=$replicas"
    env -u BOS_STATE_DIR REPLICAS="$replicas" "$ROOT/scripts/test.sh" tests/e2e
  }
  "$VENV/bin/pytest" --ignore=tests/browser --ignore=tests/e2e && "$VENV/bin/pytest" tests/browser && e2e
fi
