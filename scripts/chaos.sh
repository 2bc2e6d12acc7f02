#!/usr/bin/env bash
# `make chaos`: a fresh REPLICAS=2 stack on ports of its own (loopback only), the chaos
# driver (bench/chaos: checkouts under a fault schedule, then its checks), everything torn
# down. Bounded: under 10 minutes; exits non-zero if a check fails.
# Ports: CHAOS_PORT_SHIFT (default 100) is added to every `make test` port.
export BOS_PROFILE=test REPLICAS=2
shift_=${CHAOS_PORT_SHIFT:-100}
export PG_PORT="${PG_PORT:-$((55442 + shift_))}" AMQP_PORT="${AMQP_PORT:-$((5692 + shift_))}" \
  EPMD_PORT="${EPMD_PORT:-$((4389 + shift_))}" GATEWAY_PORT="${GATEWAY_PORT:-$((18080 + shift_))}" \
  SERVICE_PORT_BASE="${SERVICE_PORT_BASE:-$((18000 + shift_ * 2))}" \
  STRIPE_SIM_PORT="${STRIPE_SIM_PORT:-$((12121 + shift_))}" SMTP_PORT="${SMTP_PORT:-$((11025 + shift_))}" \
  REDIS_PORT="${REDIS_PORT:-$((16389 + shift_))}"
export BOS_STATE_DIR="${BOS_STATE_DIR:-$(mktemp -d /tmp/bos-chaos.XXXXXX)}"
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/ensure-deps.sh"
mkdir -p "$BOS_STATE_DIR" && chmod 755 "$BOS_STATE_DIR"

cleanup() {
  local rc=$?
  "$ROOT/scripts/services.sh" stop || true
  "$ROOT/scripts/rabbitmq.sh" stop || true
  "$ROOT/scripts/postgres.sh" stop || true
  [ "${CHAOS_KEEP:-0}" = 1 ] && log "stack state kept in $BOS_STATE_DIR" || rm -rf "$BOS_STATE_DIR"
  exit $rc
}
trap cleanup EXIT INT TERM

"$ROOT/scripts/postgres.sh" start
"$ROOT/scripts/rabbitmq.sh" start
stack_env
"$VENV/bin/python" -m bos_common.migrate all >/dev/null
# Every customer and merchant of the run comes from 127.0.0.1.
export RATE_LIMIT_IP="${RATE_LIMIT_IP:-100000/minute}" RATE_LIMIT_API_KEY="${RATE_LIMIT_API_KEY:-1000/second}"
"$ROOT/scripts/services.sh" start
wait_ready 90
cd "$ROOT"
# `timeout`: the run stops by itself whatever happens (its own limits come first).
timeout --signal=INT "${CHAOS_TIMEOUT:-540}" "$VENV/bin/python" -m bench.chaos "$@"
