#!/usr/bin/env bash
# The local operations stack (`make up OBS=1`): Prometheus scraping the local BOS processes
# with the repository's rules, Alertmanager routing by severity (deploy/alertmanager) to a
# local webhook receiver that records notifications (scripts/alert_receiver.py) and to the
# SMTP sink. Real processes from the Debian packages `prometheus` and
# `prometheus-alertmanager`, installed when missing.
# Usage: scripts/obs.sh start|stop|status
# Settings (environment): PROMETHEUS_PORT, ALERTMANAGER_PORT, ALERT_RECEIVER_PORT;
# OBS_SCRAPE_INTERVAL, OBS_EVAL_INTERVAL, OBS_GROUP_WAIT, OBS_GROUP_INTERVAL,
# OBS_REPEAT_INTERVAL (shortened by the tests); OBS_RULES_DIR (default deploy/prometheus/rules).
source "$(dirname "$0")/lib.sh"
stack_env

if [ "$PROFILE" = "test" ]; then
  PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"
  ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-19093}"
  ALERT_RECEIVER_PORT="${ALERT_RECEIVER_PORT:-19095}"
else
  PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
  ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9093}"
  ALERT_RECEIVER_PORT="${ALERT_RECEIVER_PORT:-9095}"
fi
OBS_DIR="$STATE_DIR/obs"
RULES_DIR="${OBS_RULES_DIR:-$ROOT/deploy/prometheus/rules}"
NAMES=(obs-alert-receiver obs-alertmanager obs-prometheus)

ensure_packages() {
  local missing=()
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  [ "${#missing[@]}" -eq 0 ] && return
  log "installing ${missing[*]}"
  local sudo="" policy=/usr/sbin/policy-rc.d created=0
  [ "$(id -u)" = 0 ] || sudo=sudo
  # The packages would start system-wide daemons on :9090/:9093: denied while installing.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null; $sudo chmod 755 "$policy"; created=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -qq; DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  [ "$created" = 0 ] || $sudo rm -f "$policy"
}

prometheus_config() {
  local s
  cat <<YML
# Rendered by scripts/obs.sh for the local stack; deploy/prometheus/prometheus.yml is compose's.
global:
  scrape_interval: ${OBS_SCRAPE_INTERVAL:-15s}
  scrape_timeout: ${OBS_SCRAPE_INTERVAL:-10s}
  evaluation_interval: ${OBS_EVAL_INTERVAL:-15s}
  external_labels:
    environment: local
rule_files:
  - $RULES_DIR/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$ALERTMANAGER_PORT"]
scrape_configs:
  - job_name: bos
    honor_labels: true
    static_configs:
YML
  # Every process on its own port (with REPLICAS=N, not the load balancer's, which would
  # answer each scrape from another replica under one instance label), as Prometheus
  # scrapes each pod in Kubernetes.
  local name targets
  for s in gateway "${SERVICES[@]}"; do
    targets=()
    for name in $(replica_names "$s"); do targets+=("\"127.0.0.1:$(replica_port "$name")\""); done
    printf '      - targets: [%s]\n        labels: {service: %s}\n' "$(IFS=,; echo "${targets[*]}")" "$s"
  done
  cat <<YML
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$PROMETHEUS_PORT"]
  - job_name: alertmanager
    static_configs:
      - targets: ["127.0.0.1:$ALERTMANAGER_PORT"]
YML
}

alertmanager_config() { # deploy/alertmanager/alertmanager.yml with local addresses and intervals
  sed -e "s|http://alert-receiver:9095|http://127.0.0.1:$ALERT_RECEIVER_PORT|" \
      -e "s|smtp_smarthost: smtp-sink:1025|smtp_smarthost: 127.0.0.1:$SMTP_PORT|" \
      -e "s|^  group_wait: .*|  group_wait: ${OBS_GROUP_WAIT:-30s}|" \
      -e "s|^  group_interval: .*|  group_interval: ${OBS_GROUP_INTERVAL:-5m}|" \
      -e "s|^  repeat_interval: .*|  repeat_interval: ${OBS_REPEAT_INTERVAL:-4h}|" \
      "$ROOT/deploy/alertmanager/alertmanager.yml"
}

launch() { # name command...
  local name=$1; shift
  if [ -f "$RUN_DIR/$name.pid" ] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then return; fi
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

start() {
  ensure_packages
  mkdir -p "$OBS_DIR/prometheus" "$OBS_DIR/alertmanager" "$OBS_DIR/receiver" "$RUN_DIR" "$LOG_DIR"
  prometheus_config >"$OBS_DIR/prometheus.yml"
  alertmanager_config >"$OBS_DIR/alertmanager.yml"
  promtool check config "$OBS_DIR/prometheus.yml" >/dev/null
  launch obs-alert-receiver "$VENV/bin/python" "$ROOT/scripts/alert_receiver.py" \
    --port "$ALERT_RECEIVER_PORT" --dir "$OBS_DIR/receiver"
  launch obs-alertmanager prometheus-alertmanager --config.file="$OBS_DIR/alertmanager.yml" \
    --storage.path="$OBS_DIR/alertmanager" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address=
  launch obs-prometheus prometheus --config.file="$OBS_DIR/prometheus.yml" \
    --storage.tsdb.path="$OBS_DIR/prometheus" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-lifecycle
  wait_http "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" 30
  wait_http "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 30
  wait_http "http://127.0.0.1:$ALERT_RECEIVER_PORT/notifications" 30
  log "prometheus on 127.0.0.1:$PROMETHEUS_PORT, alertmanager on 127.0.0.1:$ALERTMANAGER_PORT, alert receiver on 127.0.0.1:$ALERT_RECEIVER_PORT"
}

stop() {
  local name pid
  for name in "${NAMES[@]}"; do
    [ -f "$RUN_DIR/$name.pid" ] || continue
    pid=$(cat "$RUN_DIR/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$RUN_DIR/$name.pid"
  done
}

status() {
  local name
  for name in "${NAMES[@]}"; do
    if [ -f "$RUN_DIR/$name.pid" ] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
      echo "$name running"; else echo "$name stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
