"""Helpers of the observability e2e tests (test_obs_*): the stack's infrastructure driven
by its own scripts, and metrics read the way Prometheus reads them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
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
    """Stops one process of the stack (scripts/services.sh keeps its pid file)."""
    pid_file = Path(os.environ["BOS_STATE_DIR"]) / "run" / f"{name}.pid"
    pid = int(pid_file.read_text())
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
