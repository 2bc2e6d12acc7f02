"""With RATE_LIMIT_STORAGE_URL set, gateway replicas share their counters (Redis through
the limits library): two limiters, as two replicas, let 60 session requests through
between them, not 60 each. Runs a throwaway redis-server of its own."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from bos_common.auth import Identity
from bos_common.errors import RateLimited
from gateway.ratelimit import RateLimiter

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") or os.environ.get("BOS_TEST_STACK"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    import time

                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def test_14_4_replicas_share_counters_through_redis(redis_url: str) -> None:
    replicas = [
        RateLimiter(
            api_key="100/second", session="60/minute", ip="60/minute", storage_url=redis_url
        )
        for _ in range(2)
    ]
    session = Identity(principal_type="session", principal_id="sess_shared", org_id="org_1")
    allowed, refused = 0, None
    for i in range(100):
        try:
            await replicas[i % 2].check(session, "/v1/products", None, {})
            allowed += 1
        except RateLimited as exc:
            refused = exc
    assert allowed == 60
    assert refused is not None and 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_an_unreachable_redis_lets_requests_through() -> None:
    limiter = RateLimiter(
        api_key="100/second",
        session="1/minute",
        ip="60/minute",
        storage_url=f"redis://127.0.0.1:{_free_port()}/0",
    )
    session = Identity(principal_type="session", principal_id="sess_x", org_id="org_1")
    for _ in range(3):
        await asyncio.wait_for(limiter.check(session, "/v1/products", None, {}), 10)
