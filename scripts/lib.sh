# Shared settings for the local stack scripts. Sourced, never run.
# Two profiles share the same scripts with different ports and folders:
#   dev  - `make up`   : persistent data in .var/dev, gateway on 8080
#   test - `make test` : throwaway data in a temp dir, every port shifted by +10000 or so
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PROFILE="${BOS_PROFILE:-dev}"

if [ "$PROFILE" = "test" ]; then
  STATE_DIR="${BOS_STATE_DIR:-$ROOT/.var/test}"
  PG_PORT="${PG_PORT:-55442}"
  AMQP_PORT="${AMQP_PORT:-5692}"
  EPMD_PORT="${EPMD_PORT:-4389}"
  GATEWAY_PORT="${GATEWAY_PORT:-18080}"
  SERVICE_PORT_BASE="${SERVICE_PORT_BASE:-18000}"
  STRIPE_SIM_PORT="${STRIPE_SIM_PORT:-12121}"
  SMTP_PORT="${SMTP_PORT:-11025}"
  REDIS_PORT="${REDIS_PORT:-16389}"
  PG_FAST="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
else
  STATE_DIR="${BOS_STATE_DIR:-$ROOT/.var/dev}"
  PG_PORT="${PG_PORT:-55432}"
  AMQP_PORT="${AMQP_PORT:-5682}"
  EPMD_PORT="${EPMD_PORT:-4379}"
  GATEWAY_PORT="${GATEWAY_PORT:-8080}"
  SERVICE_PORT_BASE="${SERVICE_PORT_BASE:-8000}"
  STRIPE_SIM_PORT="${STRIPE_SIM_PORT:-12111}"
  SMTP_PORT="${SMTP_PORT:-1025}"
  REDIS_PORT="${REDIS_PORT:-6389}"
  PG_FAST=""
fi

# Services in start order, with their port offsets from SERVICE_PORT_BASE.
SERVICES=(tokens catalog checkout subscriptions webhooks)
service_port() {
  local i
  for i in "${!SERVICES[@]}"; do
    if [ "${SERVICES[$i]}" = "$1" ]; then echo $((SERVICE_PORT_BASE + i + 1)); return; fi
  done
  echo "unknown service $1" >&2; return 1
}

# REPLICAS=N (N>1) runs N processes of each service and of the gateway, each on a port of
# its own, behind HAProxy listening on the usual ports (service_port, GATEWAY_PORT); the
# gateways share rate limits through a local Redis. Replica ports: SERVICE_PORT_BASE+20+r
# for the gateway's, SERVICE_PORT_BASE+20+10*(i+1)+r for the i-th service's (r from 0).
REPLICAS="${REPLICAS:-1}"
# The processes of a service (or of the gateway): one named as the service, or name-1..N.
replica_names() {
  local r
  if [ "$REPLICAS" -le 1 ]; then echo "$1"; return; fi
  for r in $(seq "$REPLICAS"); do echo "$1-$r"; done
}
# The port of a process named by replica_names.
replica_port() {
  local name=${1%-[0-9]*} r=${1##*-} i
  if [ "$REPLICAS" -le 1 ] || [ "$name" = "$1" ]; then
    if [ "$1" = gateway ]; then echo "$GATEWAY_PORT"; else service_port "$1"; fi
    return
  fi
  if [ "$name" = gateway ]; then echo $((SERVICE_PORT_BASE + 20 + r - 1)); return; fi
  for i in "${!SERVICES[@]}"; do
    if [ "${SERVICES[$i]}" = "$name" ]; then echo $((SERVICE_PORT_BASE + 20 + 10 * (i + 1) + r - 1)); return; fi
  done
  echo "unknown process $1" >&2; return 1
}
# "http://127.0.0.1:p1,http://127.0.0.1:p2": every process of a service, for tools and
# tests that look at each one (metrics, logs), not through the load balancer.
replica_urls() {
  local n urls=()
  for n in $(replica_names "$1"); do urls+=("http://127.0.0.1:$(replica_port "$n")"); done
  (IFS=,; echo "${urls[*]}")
}

PG_DIR="$STATE_DIR/postgres"
MQ_DIR="$STATE_DIR/rabbitmq"
RUN_DIR="$STATE_DIR/run"
LOG_DIR="$STATE_DIR/logs"
DB_NAME="${DB_NAME:-bos}"

pg_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [ -n "$d" ] || { echo "PostgreSQL server binaries not found; run scripts/ensure-deps.sh" >&2; return 1; }
  echo "$d"
}

# Environment every BOS process of this profile gets.
stack_env() {
  export DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/$DB_NAME"
  export AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/"
  export BOS_ADMIN_TOKEN="${BOS_ADMIN_TOKEN:-bos-dev-admin}"
  export BOS_INTERNAL_SECRET="${BOS_INTERNAL_SECRET:-bos-dev-internal-secret-change-me}"
  export BOS_SESSION_SECRETS="${BOS_SESSION_SECRETS:-k1:bos-dev-session-secret-1,k2:bos-dev-session-secret-2}"
  export STRIPE_API_BASE="http://127.0.0.1:$STRIPE_SIM_PORT"
  export STRIPE_SECRET_KEY="${STRIPE_SECRET_KEY:-sk_test_bos_simulator}"
  # Two Stripe webhook endpoints, each with its signing secret(s): the account endpoint
  # (the platform's own events) and the Connect endpoint (connected accounts' events).
  export STRIPE_WEBHOOK_SECRETS="${STRIPE_WEBHOOK_SECRETS:-whsec_bos_dev_simulator}"
  export STRIPE_CONNECT_WEBHOOK_SECRETS="${STRIPE_CONNECT_WEBHOOK_SECRETS:-whsec_bos_dev_simulator_connect}"
  # The Stripe event types BOS handles, per endpoint (webhooks.service ACCOUNT_EVENT_TYPES
  # and CONNECT_EVENT_TYPES; a test keeps them in step): what each endpoint subscribes to
  # on Stripe, and on the simulator.
  export BOS_STRIPE_ACCOUNT_EVENTS="payment_intent.succeeded payment_intent.payment_failed payment_intent.requires_action setup_intent.succeeded charge.refunded"
  export BOS_STRIPE_CONNECT_EVENTS="account.updated"
  export BOS_STRIPE_EVENTS="$BOS_STRIPE_ACCOUNT_EVENTS $BOS_STRIPE_CONNECT_EVENTS"
  export GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT"
  export PUBLIC_BASE_URL="$GATEWAY_URL"
  export STRIPE_JS_URL="$STRIPE_API_BASE/js.stripe.com/v3/"
  export STRIPE_PUBLISHABLE_KEY="${STRIPE_PUBLISHABLE_KEY:-pk_test_bos}"
  export SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
  local s
  for s in "${SERVICES[@]}" gateway; do
    [ "$s" = gateway ] || export "$(echo "$s" | tr a-z A-Z)_URL=http://127.0.0.1:$(service_port "$s")"
    export "$(echo "$s" | tr a-z A-Z)_REPLICA_URLS=$(replica_urls "$s")"
  done
  export BOS_REPLICAS="$REPLICAS"
  if [ -n "${OTLP_TEST_PORT:-}" ]; then
    # make test: traces to the OTLP receiver of tests/e2e/test_obs_traces.py. Only a trace
    # a client starts sampled (its traceparent's flag) is recorded; the rest records none.
    export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTLP_TEST_PORT" \
      OTEL_TRACES_SAMPLER=parentbased_always_off OTEL_BSP_SCHEDULE_DELAY=200
  fi
  if [ "$REPLICAS" -gt 1 ]; then
    export RATE_LIMIT_STORAGE_URL="redis://127.0.0.1:$REDIS_PORT/0"
    # HAProxy appends the client's address to X-Forwarded-For.
    export TRUSTED_PROXY_COUNT=1
  fi
}

# Every service ready, then the gateway (whose readiness does not wait for its backends);
# with replicas, every process behind the load balancer too.
wait_ready() { # timeout_seconds
  local s url
  for s in "${SERVICES[@]}"; do
    wait_http "http://127.0.0.1:$(service_port "$s")/readyz" "${1:-60}" || return 1
  done
  wait_http "$GATEWAY_URL/readyz" "${1:-60}" || return 1
  [ "$REPLICAS" -gt 1 ] || return 0
  for url in $(echo "$GATEWAY_REPLICA_URLS,$TOKENS_REPLICA_URLS,$CATALOG_REPLICA_URLS,$CHECKOUT_REPLICA_URLS,$SUBSCRIPTIONS_REPLICA_URLS,$WEBHOOKS_REPLICA_URLS" | tr , ' '); do
    wait_http "$url/readyz" "${1:-60}" || return 1
  done
}

log() { printf '\033[1;34m[bos]\033[0m %s\n' "$*" >&2; }

wait_http() { # url timeout_seconds
  local url=$1 deadline=$(( $(date +%s) + ${2:-30} ))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $url" >&2; return 1; }
    sleep 0.2
  done
}
