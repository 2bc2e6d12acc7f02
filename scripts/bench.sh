#!/usr/bin/env bash
# `make bench`: a throwaway stack of its own (temp dir, its own ports: it never touches
# the stacks of `make up` or `make test`), the benchmark scenarios against it with the
# floor app beside them, then everything torn down. Results: bench/results/.
#
# Usage: scripts/bench.sh [python -m bench options], e.g.
#   scripts/bench.sh --quick                      3 s runs (smoke)
#   scripts/bench.sh --scenario gateway_healthz   one scenario
#   scripts/bench.sh --repeat 3                   medians of 3 interleaved rounds
#   GATEWAY_WORKERS=2 scripts/bench.sh            the gateway with 2 uvicorn workers
#   scripts/bench.sh --run CMD ARGS...            CMD instead of `python -m bench`, in the
#                                                 same stack and environment (the runners
#                                                 that are not wrk loads), e.g.
#     scripts/bench.sh --run .venv/bin/python -m bench.checkout_e2e --count 50
#     scripts/bench.sh --run .venv/bin/python -m bench.webhook_intake --rate 500 --duration 60
#
# Production-like settings: services and the gateway as services.sh runs them (no reload,
# uvloop, httptools, no access log), Postgres with fsync and synchronous_commit ON. For
# that last point the stack uses lib.sh's dev-profile settings (the test profile turns
# fsync off) with every port and the state dir overridden below; BENCH_PG_FAST=1 uses the
# test profile's fsync-off Postgres instead.

# Ports of the bench stack (each can be overridden from the environment).
export GATEWAY_PORT="${BENCH_GATEWAY_PORT:-28080}"
export SERVICE_PORT_BASE="${BENCH_SERVICE_PORT_BASE:-28000}"
export PG_PORT="${BENCH_PG_PORT:-55452}"
export AMQP_PORT="${BENCH_AMQP_PORT:-5702}"
export EPMD_PORT="${BENCH_EPMD_PORT:-4399}"
export STRIPE_SIM_PORT="${BENCH_STRIPE_SIM_PORT:-12131}"
export BENCH_FLOOR_PORT="${BENCH_FLOOR_PORT:-28090}"
export SMTP_PORT="${BENCH_SMTP_PORT:-28025}"
export DB_NAME=bos
# The gateway's rate limiter (60 anonymous requests a minute per IP by default) would
# turn a load test into a stream of 429s: off unless asked for, so the scenarios measure
# the hop itself. A scenario for the limiter sets its own limits.
export RATE_LIMIT_ENABLED="${RATE_LIMIT_ENABLED:-false}"
if [ "${BENCH_PG_FAST:-0}" = 1 ]; then export BOS_PROFILE=test; else export BOS_PROFILE=dev; fi
export BOS_STATE_DIR="$(mktemp -d /tmp/bos-bench.XXXXXX)"
source "$(dirname "$0")/lib.sh"
case "$STATE_DIR" in /tmp/bos-bench.*) ;; *) echo "bench: refusing state dir $STATE_DIR" >&2; exit 1 ;; esac

BOS_WITH_BENCH=1 "$ROOT/scripts/ensure-deps.sh"
chmod 755 "$BOS_STATE_DIR"

# Never start on top of something else: a port in use would let the readiness check (or
# the benchmark) talk to another stack.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
busy=()
for p in "$GATEWAY_PORT" "$PG_PORT" "$AMQP_PORT" $((AMQP_PORT + 20000)) "$EPMD_PORT" \
         "$STRIPE_SIM_PORT" "$BENCH_FLOOR_PORT"; do
  port_busy "$p" && busy+=("$p")
done
for s in "${SERVICES[@]}"; do p=$(service_port "$s"); port_busy "$p" && busy+=("$p"); done
if [ ${#busy[@]} -gt 0 ]; then
  echo "bench: ports already in use: ${busy[*]} (another bench run?); set BENCH_*_PORT" >&2
  rm -rf "$BOS_STATE_DIR"
  exit 1
fi

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  "$ROOT/scripts/services.sh" stop || true   # also the floor app's pid file, if left
  "$ROOT/scripts/rabbitmq.sh" stop || true
  "$ROOT/scripts/postgres.sh" stop || true
  if [ $rc -ne 0 ] && [ -d "$LOG_DIR" ]; then
    log "logs of the bench stack:"; tail -n 8 "$LOG_DIR"/*.log >&2 || true
  fi
  rm -rf "$BOS_STATE_DIR"
  exit $rc
}
trap cleanup EXIT INT TERM

"$ROOT/scripts/postgres.sh" start
"$ROOT/scripts/rabbitmq.sh" start
stack_env
"$VENV/bin/python" -m bos_common.migrate all >/dev/null
"$ROOT/scripts/services.sh" start
if ! wait_ready "${BOS_READY_TIMEOUT:-60}"; then
  log "the bench stack did not become ready"
  exit 1
fi
log "bench stack ready: gateway $GATEWAY_URL (workers ${GATEWAY_WORKERS:-1}), postgres $PG_PORT"

export BENCH_RUN_DIR="$RUN_DIR" BENCH_LOG_DIR="$LOG_DIR"
export BENCH_STACK="scripts/bench.sh: own stack ($PROFILE-profile settings, temp state dir), gateway :$GATEWAY_PORT, services :$((SERVICE_PORT_BASE + 1))-:$((SERVICE_PORT_BASE + ${#SERVICES[@]})), postgres :$PG_PORT, floor :$BENCH_FLOOR_PORT"
cd "$ROOT"
if [ "${1:-}" = "--run" ]; then
  shift
  "$@"
else
  "$VENV/bin/python" -m bench "$@"
fi
