"""docker-compose.yml against the service contract: it validates, its services' commands,
ports, healthchecks and environment, the start order, the observability mounts and the
Stripe.js pages' publishable key."""

from __future__ import annotations

import re
from typing import Any

from deploykit import (
    GATEWAY_URL_TARGETS,
    MIGRATED,
    REPO,
    SERVICES,
    STRIPE_ENV,
    STRIPE_JS_SERVICES,
    STRIPE_SECRETS,
    STRIPE_SERVICES,
    STRIPE_SIM_PORT,
    common_env,
    compose_env,
    ok,
    run,
    sim_endpoints,
    which,
)


def test_compose_config_validates() -> None:
    docker_compose = which("docker-compose")
    ok(run([docker_compose, "-f", "docker-compose.yml", "config", "-q"], env=compose_env()))
    # the observability profile is part of the file too
    out = ok(
        run([docker_compose, "-f", "docker-compose.yml", "config", "--services"], env=compose_env())
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
        common = common_env(name)
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
    account, connect = sim_endpoints(sim["environment"]["STRIPE_SIM_WEBHOOK_ENDPOINTS"])
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


def test_compose_gives_the_stripe_js_pages_a_publishable_key(compose: dict[str, Any]) -> None:
    for name in STRIPE_JS_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["STRIPE_PUBLISHABLE_KEY"].startswith("pk_test_"), name
        assert env["STRIPE_JS_URL"].endswith("/js.stripe.com/v3/"), name
