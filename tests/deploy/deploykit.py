"""What the deployment tests share: the service contract the assets must follow (ports,
environment, metric names), running the deploy tools (scripts/ensure-deploy-tools.sh
installs them; a missing one skips its tests, or fails them with
``BOS_REQUIRE_DEPLOY_TOOLS=1``), rendering the kustomize overlays, and reading compose
files and the simulator's webhook endpoints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhooks.service import ACCOUNT_EVENT_TYPES, CONNECT_EVENT_TYPES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PROM = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
OVERLAYS = ("dev", "prod")
K8S_VERSION = "1.30"

# ---------------------------------------------------------------------------- the contract
SERVICES: dict[str, int] = {
    "gateway": 8080,
    "tokens": 8001,
    "catalog": 8002,
    "checkout": 8003,
    "subscriptions": 8004,
    "webhooks": 8005,
}
MIGRATED = ("tokens", "catalog", "checkout", "subscriptions", "webhooks")  # gateway owns no schema
STRIPE_SIM_PORT = 12111
COMMON_ENV = {
    "DATABASE_URL",
    "AMQP_URL",
    "BOS_INTERNAL_SECRET",
    "BOS_ADMIN_TOKEN",
    "BOS_SESSION_SECRETS",
}
GATEWAY_ENV = {"TOKENS_URL", "CATALOG_URL", "CHECKOUT_URL", "SUBSCRIPTIONS_URL", "WEBHOOKS_URL"}
STRIPE_SECRETS = {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRETS", "STRIPE_CONNECT_WEBHOOK_SECRETS"}
STRIPE_ENV = {"STRIPE_API_BASE"} | STRIPE_SECRETS
STRIPE_SERVICES = ("checkout", "webhooks")
# The gateway owns no schema: it gets everything common but the database credentials.
GATEWAY_COMMON_ENV = COMMON_ENV - {"DATABASE_URL"}
GATEWAY_URL_TARGETS = {f"{name.upper()}_URL": name for name in SERVICES if name != "gateway"}
# Secrets that overlays/prod expects to exist in the cluster (never rendered from the repo).
EXTERNAL_SECRETS = {
    "bos-secrets": COMMON_ENV,
    "bos-stripe": STRIPE_SECRETS,
    "bos-migrations": {"MIGRATIONS_DATABASE_URL", "BOS_RUNTIME_DB_ROLE"},
}
# The Stripe keys each Stripe service's settings read (checkout verifies no webhook).
STRIPE_ENV_OF = {
    "checkout": {"STRIPE_API_BASE", "STRIPE_SECRET_KEY"},
    "webhooks": STRIPE_ENV,
}

# Metric names every service exports, with the labels each carries.
CONTRACT_METRICS: dict[str, set[str]] = {
    "http_request_duration_seconds_bucket": {"service", "method", "route", "status", "le"},
    "http_request_duration_seconds_count": {"service", "method", "route", "status"},
    "http_request_duration_seconds_sum": {"service", "method", "route", "status"},
    "bos_outbox_backlog": {"service"},
    "bos_consumer_messages_total": {"service", "queue", "outcome"},
}
CONSUMER_OUTCOMES = {"ok", "retry", "dead_letter", "duplicate", "dropped"}
# The checkout funnel (services/checkout/src/checkout/metrics.py), read by the plan-18 rules.
CHECKOUT_METRICS: dict[str, set[str]] = {
    "bos_checkout_sessions_created_total": {"paid"},
    "bos_checkout_sessions_completed_total": set(),
    "bos_checkout_payments_total": {"kind", "outcome", "code"},
}
# Merchant webhook delivery (services/webhooks/src/webhooks/endpoints/worker.py).
MERCHANT_WEBHOOK_METRICS: dict[str, set[str]] = {
    "bos_merchant_webhook_attempts_total": {"outcome"},
    "bos_merchant_webhook_pending": {"state"},
    "bos_merchant_webhook_oldest_pending_seconds": set(),
}
# Series that recording/alerting rules may read besides the contract: Prometheus' own `up`
# and RabbitMQ's per-queue depth (rabbitmq_prometheus, /metrics/detailed queue_coarse_metrics).
RULE_EXTERNAL_METRICS = {"up", "rabbitmq_detailed_queue_messages"}
# Operations signals (issue 16): dependency health and worker heartbeats (bos_common.health),
# duplicate refunds (checkout), webhook signature failures (webhooks); outside BOS the
# exporters' pg_up and RabbitMQ's consumers and ready messages per queue.
OPERATIONS_METRICS: dict[str, set[str]] = {
    "bos_dependency_up": {"service", "dependency"},
    "bos_worker_last_success_timestamp_seconds": {"service", "worker"},
    "bos_duplicate_payment_refunds_total": set(),
    "bos_webhook_signature_failures_total": {"reason"},
    "bos_checkout_funnel_steps_total": {"step"},
}
RULE_EXTERNAL_METRICS |= {
    "pg_up",
    "process_start_time_seconds",
    "rabbitmq_detailed_queue_consumers",
    "rabbitmq_detailed_queue_messages_ready",
}
TARGET_LABELS = {"job", "instance", "namespace", "pod"}


# ---------------------------------------------------------------------------- helpers
def settings_env(service: str, *, required_only: bool = False) -> set[str]:
    """The environment variables a service's settings class reads (its fields' aliases),
    or only those without a default (the process refuses to start without them)."""
    import importlib

    from bos_common.settings import CommonSettings

    module = importlib.import_module(f"{service}.settings")
    [cls] = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, CommonSettings) and c.__module__ == module.__name__
    ]
    names: set[str] = set()
    for field in cls.model_fields.values():
        if required_only and not field.is_required():
            continue
        alias = field.validation_alias
        choices = [str(c) for c in getattr(alias, "choices", None) or [alias]]
        # a required field with alternative names needs its first (current) one
        names |= {choices[0]} if required_only else set(choices)
    return names


def common_env(service: str) -> set[str]:
    return GATEWAY_COMMON_ENV if service == "gateway" else COMMON_ENV


def missing_tool(tool: str, why: str = "not installed") -> None:
    msg = f"{tool} {why}: run scripts/ensure-deploy-tools.sh"
    if os.environ.get("BOS_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def which(tool: str) -> str:
    """A tool on PATH or in this interpreter's venv bin dir (pip-installed CLIs)."""
    venv_bin = Path(sys.executable).parent / tool
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which(tool)
    if not found:
        missing_tool(tool)
    return str(found)


def run(
    args: list[str],
    *,
    stdin: str | None = None,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    timeout: int = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def containers_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def promql_names(expr: str) -> list[tuple[str, list[str]]]:
    """(metric name, label names matched) of every selector in a PromQL expression."""
    import promql_parser

    found: list[tuple[str, list[str]]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            labels = [m.name for m in node.matchers.matchers]
            name = node.name
            if name is None:  # {__name__="..."} form
                name = next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            assert name, f"selector without a metric name in {expr!r}"
            found.append((name, [label for label in labels if label != "__name__"]))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


# ---------------------------------------------------------------------------- docker-compose
_INTERP = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose-style ${VAR:-default} with the defaults (the file must work with no .env)."""
    if isinstance(value, str):
        return _INTERP.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def compose_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    for var in (
        "BOS_IMAGE",
        "BOS_INTERNAL_SECRET",
        "BOS_ADMIN_TOKEN",
        "BOS_SESSION_SECRETS",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRETS",
        "STRIPE_CONNECT_WEBHOOK_SECRETS",
        "LOG_LEVEL",
    ):
        env.pop(var, None)
    return env


# ---------------------------------------------------------------------------- Kubernetes
_rendered: dict[str, str] = {}


def render(kubectl: str, overlay: str) -> str:
    if overlay not in _rendered:
        _rendered[overlay] = ok(run([kubectl, "kustomize", str(K8S / "overlays" / overlay)]))
    return _rendered[overlay]


def rendered_docs(kubectl: str, overlay: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(kubectl, overlay)) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads_of(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"})


def migrate_job_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [job] = [
        d
        for d in docs
        if d["kind"] == "Job" and d["metadata"]["labels"]["app.kubernetes.io/name"] == "migrate"
    ]
    return job


def base_name(name: str) -> str:
    """bos-secrets-5k2f8m9h -> bos-secrets (kustomize generator hash suffix)."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def render_with(
    kubectl: str, tmp_path: Path, overlay: str, *components: str
) -> list[dict[str, Any]]:
    """An overlay plus components, as an operator's own kustomization would add them."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "overlays" / overlay, tmp_path)],
                "components": [
                    os.path.relpath(K8S / "components" / c, tmp_path) for c in components
                ],
            }
        )
    )
    out = ok(run([kubectl, "kustomize", str(tmp_path)]))
    return [d for d in yaml.safe_load_all(out) if d]


# The pages with Stripe.js (checkout's hosted page, subscriptions' portal).
STRIPE_JS_SERVICES = ("checkout", "subscriptions")


def sim_endpoints(value: str) -> list[tuple[str, str, list[str]]]:
    """The simulator's two webhook endpoints, (url, secret, event types) each: the account
    endpoint's, then the Connect endpoint's (Stripe rule 5), each subscribed to the types
    BOS handles from it."""
    account, connect = value.split(",")
    url, secret, types = account.split("|")
    curl, csecret, ctypes, flag = connect.split("|")
    assert url == curl == "http://gateway:8080/v1/webhooks/stripe"
    assert types.split() == list(ACCOUNT_EVENT_TYPES), "what BOS handles from the platform"
    assert (ctypes.split(), flag) == (list(CONNECT_EVENT_TYPES), "connect")
    return [(url, secret, types.split()), (curl, csecret, ctypes.split())]
