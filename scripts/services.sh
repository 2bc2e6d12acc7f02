#!/usr/bin/env bash
# Start/stop the BOS processes (Stripe simulator, services, gateway) in the background,
# each with a pid file in $RUN_DIR and a log in $LOG_DIR. With REPLICAS>1 (lib.sh): every
# replica of each, Redis for the gateways' rate limits, and HAProxy in front of them all.
# Usage: scripts/services.sh start|stop|status
source "$(dirname "$0")/lib.sh"
stack_env
mkdir -p "$RUN_DIR" "$LOG_DIR"
export PYTHONUNBUFFERED=1  # logs reach the files as they happen

UVICORN=("$VENV/bin/uvicorn" --host 127.0.0.1 --no-access-log --no-server-header --log-level warning --loop uvloop --http httptools)

launch() { # name command...
  local name=$1; shift
  if [ -f "$RUN_DIR/$name.pid" ] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then return; fi
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

start() {
  # Two endpoints as on Stripe (deploy/README.md), each with its own secret and only the
  # event types BOS handles from it (stack_env): the account endpoint gets the platform's
  # own events, the Connect endpoint connected accounts' (account.updated). Every other
  # type would be delivered, verified and stored for nothing.
  local hook="$GATEWAY_URL/v1/webhooks/stripe"
  export STRIPE_SIM_WEBHOOK_ENDPOINTS="$hook|${STRIPE_WEBHOOK_SECRETS%%,*}|$BOS_STRIPE_ACCOUNT_EVENTS,$hook|${STRIPE_CONNECT_WEBHOOK_SECRETS%%,*}|$BOS_STRIPE_CONNECT_EVENTS|connect"
  launch stripe-sim "$VENV/bin/python" -m stripe_sim --host 127.0.0.1 --port "$STRIPE_SIM_PORT"
  # Notification emails land as .eml files here (a local SMTP sink, dev and test only).
  launch smtp-sink "$VENV/bin/python" -m subscriptions.smtp_sink --host 127.0.0.1 \
    --port "$SMTP_PORT" --dir "$STATE_DIR/mail"
  if [ "$REPLICAS" -gt 1 ]; then
    launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
    haproxy_config >"$STATE_DIR/haproxy.cfg"
    launch haproxy haproxy -db -f "$STATE_DIR/haproxy.cfg"
  fi
  local s replica
  for s in "${SERVICES[@]}"; do
    for replica in $(replica_names "$s"); do
      launch "$replica" "${UVICORN[@]}" --port "$(replica_port "$replica")" "$s.app:app"
    done
  done
  for replica in $(replica_names gateway); do
    launch "$replica" "${UVICORN[@]}" --port "$(replica_port "$replica")" \
      --workers "${GATEWAY_WORKERS:-1}" gateway.app:app
  done
}

# One HAProxy frontend per service and one for the gateway, on the ports a single process
# would have, round-robin over the replicas. A replica that refuses connections (killed,
# restarting) is skipped at once (retries on another one) and out of rotation until it
# accepts connections again (uvicorn listens once the app has started). The checks are
# TCP connects, not HTTP: a replica slow to answer under load stays in rotation.
haproxy_config() {
  local s replica
  cat <<CFG
global
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  option redispatch
  retries 3
  retry-on conn-failure
  timeout connect 1s
  timeout client 120s
  timeout server 120s
  timeout http-request 30s
  default-server inter 1s fall 2 rise 1
CFG
  for s in gateway "${SERVICES[@]}"; do
    printf 'listen %s\n  bind 127.0.0.1:%s\n  balance roundrobin\n' \
      "$s" "$(replica_port "$s")"
    [ "$s" = gateway ] && printf '  option forwardfor\n'
    for replica in $(replica_names "$s"); do
      printf '  server %s 127.0.0.1:%s check\n' "$replica" "$(replica_port "$replica")"
    done
  done
}

stop() {
  local f pid
  for f in "$RUN_DIR"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for f in "$RUN_DIR"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

status() {
  local f name
  for f in "$RUN_DIR"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$name running"; else echo "$name dead"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
