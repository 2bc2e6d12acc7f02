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

lint: ## ruff and mypy (libs/common strict)
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy --config-file libs/common/pyproject.toml libs/common/src

bench: ## Run the benchmark scenarios against a stack of their own; writes bench/results/
	@scripts/bench.sh

chaos: ## Checkouts under faults (killed replicas, broker and database restarts) on a REPLICAS=2 stack of its own, then checks
	@scripts/chaos.sh
