#!/usr/bin/env bash
# Install what the stack needs and is missing: OS packages (apt-get), uv, the project's
# virtualenv from the lock file. Idempotent and quiet when everything is there.
source "$(dirname "$0")/lib.sh"

need_apt=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need_apt+=(postgresql)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
command -v curl >/dev/null || need_apt+=(curl)
if [ "${BOS_WITH_REDIS:-0}" = 1 ]; then command -v redis-server >/dev/null || need_apt+=(redis-server); fi
# Replicas (REPLICAS>1) run behind HAProxy and share rate limits through Redis.
if [ "${REPLICAS:-1}" -gt 1 ]; then
  command -v haproxy >/dev/null || need_apt+=(haproxy)
  command -v redis-server >/dev/null || need_apt+=(redis-server)
fi
if [ "${BOS_WITH_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
  # The browser tests' other engines: Firefox ESR (driven over WebDriver BiDi) and WebKitGTK
  # (its WebDriver and MiniBrowser, on an Xvfb display).
  command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)
  command -v WebKitWebDriver >/dev/null || need_apt+=(webkit2gtk-driver)
  command -v Xvfb >/dev/null || need_apt+=(xvfb)
fi
if [ "${BOS_WITH_BENCH:-0}" = 1 ]; then command -v wrk >/dev/null || need_apt+=(wrk); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing OS packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  log "installing uv"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
UV="$(command -v uv)"
"$UV" sync --quiet --frozen --all-packages --python python3
