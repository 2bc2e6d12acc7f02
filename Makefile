# The two commands: `make up` (the platform) and `make test` (every test).
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help up down logs test test-unit lint bench status chaos

help: ## This list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

up: ## Install what is missing, start the whole platform, print where it is (OBS=1: + Prometheus, Alertmanager)
	@scripts/up.sh

down: ## Stop exactly what `make up` started
	@scripts/down.sh

status: ## Which processes of `make up` are running
	@scripts/services.sh status

logs: ## Tail the logs of `make up`
	@tail -n 20 -F .var/dev/logs/*.log

test: ## Every test (unit, contract, integration, e2e) on throwaway infrastructure
	@scripts/test.sh

test-unit: ## Unit tests only (no servers)
	@scripts/ensure-deps.sh && .venv/bin/pytest -m "not integration and not e2e and not browser"

# mypy once per package, every one run even when an earlier one fails (the last line says
# which failed): libs/common strict (libs/common/pyproject.toml), the services and the
# Stripe simulator with check_untyped_defs (the root pyproject.toml's [tool.mypy]).
lint: ## ruff, then mypy on libs/common (strict), every service and tools/stripe-sim
	@scripts/ensure-deps.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check .
	@failed=""; \
	.venv/bin/mypy --config-file libs/common/pyproject.toml libs/common/src || failed="$$failed libs/common"; \
	.venv/bin/mypy --config-file pyproject.toml services/gateway/src || failed="$$failed gateway"; \
	.venv/bin/mypy --config-file pyproject.toml services/tokens/src || failed="$$failed tokens"; \
	.venv/bin/mypy --config-file pyproject.toml services/catalog/src || failed="$$failed catalog"; \
	.venv/bin/mypy --config-file pyproject.toml services/checkout/src || failed="$$failed checkout"; \
	.venv/bin/mypy --config-file pyproject.toml services/subscriptions/src || failed="$$failed subscriptions"; \
	.venv/bin/mypy --config-file pyproject.toml services/webhooks/src || failed="$$failed webhooks"; \
	.venv/bin/mypy --config-file pyproject.toml tools/stripe-sim/src || failed="$$failed stripe-sim"; \
	if [ -n "$$failed" ]; then echo "mypy failed:$$failed" >&2; exit 1; fi

bench: ## Run the benchmark scenarios against a stack of their own; writes bench/results/
	@scripts/bench.sh

chaos: ## Checkouts under faults (killed replicas, broker and database restarts) on a REPLICAS=2 stack of its own, then checks
	@scripts/chaos.sh
