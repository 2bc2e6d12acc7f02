"""Helpers of the observability e2e tests (test_obs_*): the stack's infrastructure driven
by its own scripts, and metrics read the way Prometheus reads them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("tokens", "catalog", "checkout", "subscriptions", "webhooks")


def service_urls() -> dict[str, str]:
    """Each service's own base URL (exported by scripts/lib.sh stack_env)."""
    urls = {s: os.environ.get(f"{s.upper()}_URL", "") for s in SERVICES}
    if not all(urls.values()) or not os.environ.get("BOS_STATE_DIR"):
        pytest.skip("the stack's service URLs / state dir are not set (run `make test`)")
    return urls


def _stack_env() -> dict[str, str]:
    """The environment scripts/rabbitmq.sh needs to address the stack under test: its
    profile, state dir and ports (the AMQP port from AMQP_URL, as the services use it)."""
    env = dict(os.environ)
    env.setdefault("BOS_PROFILE", "test")
    amqp = urlsplit(os.environ.get("AMQP_URL", ""))
    if amqp.port:
        env["AMQP_PORT"] = str(amqp.port)
    return env


async def rabbitmq(action: str) -> None:
    """`scripts/rabbitmq.sh start|stop` on the stack under test."""
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "rabbitmq.sh"),
        action,
        env=_stack_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, f"rabbitmq.sh {action}: {out.decode(errors='replace')}"


async def stop_service(name: str) -> None:
    """Stops every process of a service (`catalog`, or with REPLICAS=N `catalog-1`..N;
    scripts/services.sh keeps their pid files)."""
    run = Path(os.environ["BOS_STATE_DIR"]) / "run"
    pid_files = [p for p in [run / f"{name}.pid", *sorted(run.glob(f"{name}-*.pid"))] if p.exists()]
    assert pid_files, f"no process {name} in {run}"
    await asyncio.gather(*(_stop(int(p.read_text())) for p in pid_files))


async def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


async def start_services() -> None:
    """`scripts/services.sh start`: starts the stack's processes that are not running."""
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "services.sh"),
        "start",
        env=_stack_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, f"services.sh start: {out.decode(errors='replace')}"


async def sample(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float | None:
    """The value of one sample of `url`'s /metrics, or None when the series is absent."""
    text = (await client.get(f"{url}/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


# ------------------------------------------------------------------ the operations stack

# Time compressed for the tests: 1 s scrapes and evaluations, every `for:` of the rules
# shortened to FOR_IN_TESTS, Alertmanager grouping in a second. Expressions and windows
# are the repository's, unchanged.
FOR_IN_TESTS = "2s"
OBS_ENV = {
    "OBS_SCRAPE_INTERVAL": "1s",
    "OBS_EVAL_INTERVAL": "1s",
    "OBS_GROUP_WAIT": "1s",
    "OBS_GROUP_INTERVAL": "1s",
    "OBS_REPEAT_INTERVAL": "1h",
}


def compressed_rules(target: Path) -> Path:
    """deploy/prometheus/rules with every alert's `for:` set to FOR_IN_TESTS."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            group.pop("interval", None)  # recordings every evaluation too
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = FOR_IN_TESTS
        (target / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


class OpsStack:
    """Prometheus, Alertmanager and the alert receiver of scripts/obs.sh, on the stack
    under test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.prometheus = f"http://127.0.0.1:{env['PROMETHEUS_PORT']}"
        self.alertmanager = f"http://127.0.0.1:{env['ALERTMANAGER_PORT']}"
        self.receiver = f"http://127.0.0.1:{env['ALERT_RECEIVER_PORT']}"

    def run(self, action: str) -> None:
        proc = subprocess.run(
            [str(ROOT / "scripts" / "obs.sh"), action],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"obs.sh {action}: {proc.stdout}{proc.stderr}"

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(f"{self.prometheus}/api/v1/query", params={"query": expr})
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()["data"]["result"]
        return result

    async def notifications(self) -> list[dict[str, Any]]:
        """Every (receiver path, alert, status) Alertmanager delivered, flattened."""
        async with httpx.AsyncClient(timeout=10) as client:
            records = (await client.get(f"{self.receiver}/notifications")).json()
        return [
            {"receiver_path": rec["receiver_path"], **alert}
            for rec in records
            for alert in rec["payload"]["alerts"]
        ]

    async def delivered(self, alertname: str, status: str = "firing") -> list[dict[str, Any]]:
        return [
            n
            for n in await self.notifications()
            if n["labels"].get("alertname") == alertname and n["status"] == status
        ]


def start_ops_stack(tmp: Path) -> OpsStack:
    env = {
        **_stack_env(),
        **OBS_ENV,
        "OBS_RULES_DIR": str(compressed_rules(tmp / "rules")),
        "PROMETHEUS_PORT": os.environ.get("PROMETHEUS_PORT", "19090"),
        "ALERTMANAGER_PORT": os.environ.get("ALERTMANAGER_PORT", "19093"),
        "ALERT_RECEIVER_PORT": os.environ.get("ALERT_RECEIVER_PORT", "19095"),
    }
    stack = OpsStack(env)
    stack.run("start")
    return stack
