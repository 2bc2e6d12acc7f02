#!/usr/bin/env bash
# Run RabbitMQ as a local process (as the rabbitmq user, private HOME, cookie and epmd port).
# Usage: scripts/rabbitmq.sh start|stop|status|queues|pause|resume|vhost NAME
source "$(dirname "$0")/lib.sh"
M="$MQ_DIR"
export RABBITMQ_NODENAME="bos$AMQP_PORT@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT="$AMQP_PORT" RABBITMQ_DIST_PORT=$((AMQP_PORT + 20000)) \
  RABBITMQ_MNESIA_BASE="$M/mnesia" RABBITMQ_LOG_BASE="$M/log" RABBITMQ_LOGS="$M/log/rabbit.log" \
  RABBITMQ_PID_FILE="$M/rabbit.pid" RABBITMQ_CONFIG_FILE="$M/rabbitmq.conf" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$M/enabled_plugins" RABBITMQ_CONF_ENV_FILE=/dev/null \
  ERL_EPMD_PORT="$EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1
as_mq() { if [ "$(id -u)" = 0 ]; then runuser -u rabbitmq -- env HOME="$M" "$@"; else env HOME="$M" "$@"; fi; }
ctl() { as_mq /usr/lib/rabbitmq/bin/rabbitmqctl "$@"; }

running() { ctl status >/dev/null 2>&1; }

start() {
  if [ -f "$M/rabbit.pid" ] && running; then log "rabbitmq already running on $AMQP_PORT"; return; fi
  mkdir -p "$M/log" "$M/mnesia"
  [ -f "$M/rabbitmq.conf" ] || printf 'loopback_users = none\nlisteners.tcp.default = %s\n' "$AMQP_PORT" >"$M/rabbitmq.conf"
  [ -f "$M/enabled_plugins" ] || echo '[].' >"$M/enabled_plugins"
  rm -f "$M/rabbit.pid"
  [ "$(id -u)" = 0 ] && chown -R rabbitmq:rabbitmq "$M"
  as_mq setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$M/log/stdout.log" 2>&1 < /dev/null &
  local deadline=$(( $(date +%s) + 60 ))
  until [ -f "$M/rabbit.pid" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "rabbitmq did not write its pid file" >&2; tail -20 "$M/log/stdout.log" >&2; return 1; }
    sleep 0.2
  done
  ctl wait --timeout 60 "$M/rabbit.pid" >/dev/null
  log "rabbitmq up on 127.0.0.1:$AMQP_PORT"
}

stop() {
  [ -d "$M" ] || return 0
  ctl shutdown >/dev/null 2>&1 || true
  as_mq /usr/lib/erlang/bin/epmd -kill >/dev/null 2>&1 || epmd -kill >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) running && echo running ;;
  queues) ctl list_queues -q name messages ;;
  # The broker down for its clients (every connection closed, the port shut) with its
  # Erlang node kept: back in seconds where a cold start takes a minute on a loaded machine.
  pause) ctl stop_app >/dev/null ;;
  resume) ctl start_app >/dev/null ;;
  vhost) ctl add_vhost "$2" >/dev/null 2>&1 || true; ctl set_permissions -p "$2" guest ".*" ".*" ".*" >/dev/null ;;
  *) echo "usage: $0 start|stop|status|queues|pause|resume|vhost NAME" >&2; exit 2 ;;
esac
