#!/usr/bin/env bash
# `make up`: install what is missing, start Postgres, RabbitMQ, the Stripe simulator,
# every service and the gateway, migrate, wait for /readyz, print where things are.
# Running it twice is harmless: whatever already runs is left alone.
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/ensure-deps.sh"
"$ROOT/scripts/postgres.sh" start
"$ROOT/scripts/rabbitmq.sh" start
stack_env
"$VENV/bin/python" -m bos_common.migrate all >/dev/null
"$ROOT/scripts/services.sh" start
if ! wait_ready "${BOS_READY_TIMEOUT:-60}"; then
  log "the stack did not become ready; last log lines:"
  tail -n 5 "$LOG_DIR"/*.log >&2 || true
  exit 1
fi
# `make up OBS=1`: Prometheus, Alertmanager and a notification receiver too (scripts/obs.sh).
[ "${OBS:-0}" = 1 ] && "$ROOT/scripts/obs.sh" start
cat <<MSG

BOS is up ($PROFILE profile)
  gateway          $GATEWAY_URL   (docs: $GATEWAY_URL/docs, ready: $GATEWAY_URL/readyz)
  replicas         $REPLICAS of each service and of the gateway$([ "$REPLICAS" -gt 1 ] && echo " (behind HAProxy; Redis on 127.0.0.1:$REDIS_PORT)")
  stripe simulator $STRIPE_API_BASE
  postgres         127.0.0.1:$PG_PORT db $DB_NAME  (psql -h 127.0.0.1 -p $PG_PORT -U postgres $DB_NAME)
  rabbitmq         127.0.0.1:$AMQP_PORT
  admin token      $BOS_ADMIN_TOKEN
  logs             $LOG_DIR   (make logs)
  emails sent      $STATE_DIR/mail   (SMTP sink on 127.0.0.1:$SMTP_PORT)
  stop             make down
MSG
[ "${OBS:-0}" = 1 ] && echo "  observability    scripts/obs.sh status (README: Operations)"
# The demo is made again where the user changed it (scripts/seed_demo.py); should it still
# fail, the platform is up all the same: say so and what failed, and succeed.
if [ "${BOS_SEED:-1}" = 1 ]; then
  BOS_STATE_DIR="$STATE_DIR" "$VENV/bin/python" "$ROOT/scripts/seed_demo.py" \
    || log "the demo organization could not be seeded (reason above); BOS itself is up"
fi
