"""Test infrastructure shared by every BOS test suite (a pytest plugin, loaded by the
repository's root conftest).

Integration tests get real servers, never fakes:
- under `make test`, the throwaway Postgres and RabbitMQ that scripts/test.sh started
  (`IT_DATABASE_URL`, `IT_AMQP_URL`, and `BOS_STATE_DIR` to stop/start them);
- otherwise, when a Docker engine answers, testcontainers;
- otherwise the test is skipped with the reason, except under CI or `make test`, where
  missing infrastructure is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bos_common.errors import is_dependency_unavailable

ROOT = Path(__file__).resolve().parents[4]
SECRET = "test-internal-secret-0123456789"


@dataclass(frozen=True)
class Infra:
    database_url: str
    amqp_url: str
    # Only for the servers scripts/test.sh started: stop/start them mid-test.
    scripts_env: dict[str, str] | None = None

    def rabbitmq(self, action: str) -> None:
        """Stop or start the broker mid-test (`make test`'s local servers only)."""
        self._script("rabbitmq.sh", action)

    def postgres(self, action: str) -> None:
        """Stop or start Postgres mid-test (`make test`'s local servers only)."""
        self._script("postgres.sh", action)

    def _script(self, script: str, action: str) -> None:
        if self.scripts_env is None:
            pytest.skip("stopping servers mid-test needs the local servers of `make test`")
        subprocess.run(
            [str(ROOT / "scripts" / script), action],
            env={**os.environ, **self.scripts_env},
            check=True,
            capture_output=True,
            timeout=120,
        )

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "AMQP_URL": self.amqp_url,
            "BOS_INTERNAL_SECRET": SECRET,
            "LOG_JSON": "false",
            "LOG_LEVEL": "WARNING",
        }


def _must_have_infra() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("BOS_TEST_STACK"))


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    db, amqp = os.environ.get("IT_DATABASE_URL"), os.environ.get("IT_AMQP_URL")
    if db and amqp:
        state = os.environ.get("BOS_STATE_DIR")
        scripts_env = {"BOS_PROFILE": "test", "BOS_STATE_DIR": state} if state else None
        yield Infra(db, amqp, scripts_env)
        return
    try:
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        with (
            PostgresContainer("postgres:15", driver="asyncpg") as pg,
            DockerContainer("rabbitmq:3.13").with_exposed_ports(5672) as mq,
        ):
            wait_for_logs(mq, "Server startup complete", timeout=120)
            host, port = mq.get_container_host_ip(), mq.get_exposed_port(5672)
            yield Infra(pg.get_connection_url(), f"amqp://guest:guest@{host}:{port}/")
            return
    except Exception as exc:  # noqa: BLE001 - no Docker engine: DockerException etc.
        reason = f"no IT_DATABASE_URL/IT_AMQP_URL and no Docker engine ({type(exc).__name__})"
        if _must_have_infra():
            pytest.fail(reason)
        pytest.skip(reason)


async def reset_schemas(database_url: str, *schemas: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        for schema in schemas:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


async def migrate(database_url: str, *services: str) -> None:
    """Fresh schemas for these services, migrated to head (Alembic runs its own loop,
    so it goes to a thread)."""
    from bos_common.migrations import upgrade

    await reset_schemas(database_url, *services)
    for service in services:
        await asyncio.to_thread(upgrade, service, database_url)


async def eventually(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll `probe` until it returns a truthy value; fail with the last value seen.

    A probe that meets a dependency still coming back (the database after a restart in
    the test: a pooled connection from before it) is polled again; any other error
    fails at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        try:
            last = await probe()
        except Exception as exc:
            if not is_dependency_unavailable(exc):
                raise
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve_app(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on loopback (lifespan included) for peers that
    must call it, such as the Stripe simulator delivering webhooks; yields its base URL."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# --- parity of fast paths ---------------------------------------------------------------
#
# A fast path (ServiceRuntime.install_fast_paths) must answer as the FastAPI route it stands
# in for. Its parity test sends the same request to the app as served and to the same app
# without its fast paths, and compares what matters of the two answers and what each wrote.


def without_fast_paths(app: FastAPI) -> FastAPI:
    """`app` with what `install_fast_paths` installed taken out, so that every request goes
    through FastAPI's routes. Before the app serves its first request (Starlette builds
    its middleware stack then)."""
    installed = getattr(app.state, "fast_paths", [])
    assert installed, "this app has no fast paths"
    app.router.routes = [r for r in app.router.routes if all(r is not f for f in installed)]
    app.user_middleware = [m for m in app.user_middleware if all(m is not f for f in installed)]
    return app


def asgi_client(app: FastAPI, base_url: str = "http://testserver") -> httpx.AsyncClient:
    """An HTTP client calling `app` in process (no lifespan: the runtime is the test's)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@dataclass(frozen=True)
class Exchange:
    """One side of a parity check: the request (httpx `request` keyword arguments) and
    its answer."""

    request: Mapping[str, Any]
    response: httpx.Response


PARITY_HEADERS = ("content-type", "retry-after", "idempotent-replayed")


def assert_same_answer(
    fast: httpx.Response,
    routed: httpx.Response,
    *,
    headers: Sequence[str] = PARITY_HEADERS,
    normalize: Callable[[Any], Any] = lambda body: body,
) -> None:
    """Same status, same `headers`, same body: JSON with the same keys in the same order
    (an error's `request_id` must be its answer's X-Request-Id, then is left out of the
    comparison; `normalize` replaces other generated values), else the same bytes."""
    where = (fast.request.method, str(fast.request.url.path), fast.text, routed.text)
    assert fast.status_code == routed.status_code, where
    for name in headers:
        assert fast.headers.get(name) == routed.headers.get(name), (name, *where)
    if not fast.headers.get("content-type", "").startswith("application/json"):
        assert fast.content == routed.content, where
        return
    bodies = []
    for response in (fast, routed):
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "request_id" in error:
            assert error.pop("request_id") == response.headers["x-request-id"], where
        bodies.append(normalize(body))
    assert bodies[0] == bodies[1], where
    if isinstance(bodies[0], dict):
        assert list(bodies[0]) == list(bodies[1]), where


async def same_answer(
    fast: httpx.AsyncClient,
    routed: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    request: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
    written: Callable[[Exchange], Awaitable[Any]] | None = None,
    headers: Sequence[str] = PARITY_HEADERS,
    normalize: Callable[[Any], Any] = lambda body: body,
) -> tuple[Exchange, Exchange]:
    """Sends `method url` to the app as served (`fast`) and to it without its fast paths
    (`routed`, see `without_fast_paths`), fast first, and asserts the two answers alike
    (`assert_same_answer`) and, with `written`, that each request wrote the same rows
    (`written` reads back what one exchange wrote, its generated values normalized).
    `request`: the httpx request arguments, or a function making them afresh for each
    side (a second identical request would be a duplicate)."""
    exchanges = []
    for client in (fast, routed):
        kwargs = dict(request() if callable(request) else request or {})
        response = await client.request(method, url, **kwargs)
        exchanges.append(Exchange(kwargs, response))
    one, other = exchanges
    assert_same_answer(one.response, other.response, headers=headers, normalize=normalize)
    if written is not None:
        assert await written(one) == await written(other), (method, url)
    return one, other
