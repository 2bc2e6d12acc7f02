#!/usr/bin/env bash
# Start/stop the BOS processes (Stripe simulator, services, gateway) in the background,
# each with a pid file in $RUN_DIR and a log in $LOG_DIR.
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
  local s
  for s in "${SERVICES[@]}"; do
    launch "$s" "${UVICORN[@]}" --port "$(service_port "$s")" "$s.app:app"
  done
  launch gateway "${UVICORN[@]}" --port "$GATEWAY_PORT" --workers "${GATEWAY_WORKERS:-1}" gateway.app:app
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
