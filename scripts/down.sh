#!/usr/bin/env bash
# `make down`: stop exactly what `make up` started (data stays in $STATE_DIR).
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/obs.sh" stop
"$ROOT/scripts/services.sh" stop
"$ROOT/scripts/rabbitmq.sh" stop
"$ROOT/scripts/postgres.sh" stop
log "stopped"
