#!/usr/bin/env bash
# Installs the tools that tests/deploy needs, and only what is missing (idempotent).
#
#   promtool        <- Debian package `prometheus`      (promtool check/test rules, check config)
#   docker-compose  <- Debian package `docker-compose`  (v1, validates docker-compose.yml offline)
#   kubectl         <- on the machine image (renders kustomize); Debian's own `kubernetes-client`
#                      is 1.20 with kustomize v2, too old for these manifests, so it is not used
#   kubernetes-validate, promql-parser, pyyaml <- PyPI, root pyproject.toml [dependency-groups] dev
#   checkov         <- PyPI, pinned, in its own venv under ~/.cache/bos-deploy-tools (its many
#                      dependencies stay out of the workspace lock)
#
# Usage: scripts/ensure-deploy-tools.sh   (as root, or with sudo available)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

log() { printf 'ensure-deploy-tools: %s\n' "$*" >&2; }

apt_install() {
    # $@: Debian packages. Never starts daemons: a temporary policy-rc.d denies service starts
    # (the prometheus package would otherwise try to launch a server on :9090).
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        created=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
        log "apt-get install $* failed; refreshing package lists and retrying"
        $SUDO apt-get update -qq || true
        $SUDO apt-get install -y --no-install-recommends "$@" >/dev/null || rc=$?
    fi
    if [ "$created" = 1 ]; then $SUDO rm -f "$policy"; fi
    return "$rc"
}

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# --no-install-recommends matters: with recommends, docker-compose pulls in a Docker engine.
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
fi

if ! command -v kubectl >/dev/null 2>&1; then
    # Works where an apt source carrying `kubectl` is configured (the machine image has one).
    log "kubectl missing; trying apt-get install kubectl"
    apt_install kubectl || log "WARNING: kubectl could not be installed; the kustomize tests will skip"
fi
if command -v kubectl >/dev/null 2>&1; then
    kv="$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}\([0-9]*\).*/\1/p')"
    if [ -z "$kv" ] || [ "$kv" -lt 4 ]; then
        log "WARNING: kubectl's built-in kustomize is older than v4; the kustomize tests will skip"
    fi
fi

# Python tools live in the workspace venv (dev dependency group).
if [ ! -x "$ROOT/.venv/bin/kubernetes-validate" ] \
    || ! "$ROOT/.venv/bin/python" -c 'import promql_parser, yaml' >/dev/null 2>&1; then
    log "syncing the uv workspace (dev group carries kubernetes-validate, promql-parser, pyyaml)"
    for attempt in 1 2 3 4 5 6; do
        if (cd "$ROOT" && uv sync --all-packages --python python3); then break; fi
        if [ "$attempt" = 6 ]; then log "uv sync failed"; exit 1; fi
        log "uv sync failed (lock busy?), retry $attempt in 5 s"
        sleep 5
    done
fi

CHECKOV_VERSION=3.3.30   # tests/deploy/test_k8s_operator.py CHECKOV_VERSION
CHECKOV_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/bos-deploy-tools/checkov-$CHECKOV_VERSION"
if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
    log "installing checkov $CHECKOV_VERSION into $CHECKOV_VENV"
    mkdir -p "$(dirname "$CHECKOV_VENV")"
    uv venv -q --python python3 "$CHECKOV_VENV"
    uv pip install -q --python "$CHECKOV_VENV/bin/python" "checkov==$CHECKOV_VERSION"
fi

for tool in promtool docker-compose kubectl; do
    if command -v "$tool" >/dev/null 2>&1; then log "ok: $tool"; else log "MISSING: $tool"; fi
done
"$ROOT/.venv/bin/kubernetes-validate" --version >/dev/null && log "ok: kubernetes-validate"
"$CHECKOV_VENV/bin/checkov" --version >/dev/null && log "ok: checkov"
