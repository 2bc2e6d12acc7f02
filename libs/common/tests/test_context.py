"""Request ids: taken when sane, minted otherwise, visible to code, echoed on every response."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from bos_common.context import (
    RequestContextMiddleware,
    get_request_id,
    is_valid_request_id,
    new_request_id,
    request_id_var,
)
from bos_common.errors import NotFound, install_error_handlers

GENERATED = re.compile(r"req_[0-9a-f]{24}")


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/id")
    async def current_id() -> dict[str, str | None]:
        return {"request_id": get_request_id()}

    @app.get("/slow/{delay_ms}")
    async def slow(delay_ms: int) -> dict[str, str | None]:
        before = request_id_var.get()
        await asyncio.sleep(delay_ms / 1000)
        # Another request ran meanwhile; ours must not have changed.
        assert request_id_var.get() == before
        return {"request_id": before}

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound()

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def test_new_request_id_format() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(GENERATED.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("abc-123_X.y", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        ("has space", False),
        ("new\nline", False),
        ('quote"', False),
        ("ünï", False),
    ],
)
def test_is_valid_request_id(value: str, ok: bool) -> None:
    assert is_valid_request_id(value) is ok


async def test_generated_when_absent(client: httpx.AsyncClient) -> None:
    resp = await client.get("/id")
    rid = resp.headers["x-request-id"]
    assert GENERATED.fullmatch(rid)
    assert resp.json() == {"request_id": rid}
    assert request_id_var.get() is None  # reset after the request


async def test_sane_incoming_id_is_kept(client: httpx.AsyncClient) -> None:
    resp = await client.get("/id", headers={"X-Request-Id": "gw-7f3a.b_c"})
    assert resp.headers["x-request-id"] == "gw-7f3a.b_c"
    assert resp.json() == {"request_id": "gw-7f3a.b_c"}


@pytest.mark.parametrize("bad", ["x" * 129, "bad id", "<script>", "a;b"])
async def test_insane_incoming_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    resp = await client.get("/id", headers={"X-Request-Id": bad})
    rid = resp.headers["x-request-id"]
    assert GENERATED.fullmatch(rid)
    assert resp.json() == {"request_id": rid}


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/nope", 404), ("/crash", 500)])
async def test_error_responses_carry_the_id_once(
    client: httpx.AsyncClient, path: str, status: int
) -> None:
    resp = await client.get(path, headers={"X-Request-Id": "err-1"})
    assert resp.status_code == status
    assert resp.headers.get_list("x-request-id") == ["err-1"]
    assert resp.json()["error"]["request_id"] == "err-1"


async def test_concurrent_requests_do_not_mix(client: httpx.AsyncClient) -> None:
    async def call(i: int) -> None:
        resp = await client.get(f"/slow/{(i % 3) * 5}", headers={"X-Request-Id": f"r{i}"})
        assert resp.json() == {"request_id": f"r{i}"}
        assert resp.headers["x-request-id"] == f"r{i}"

    await asyncio.gather(*(call(i) for i in range(20)))


async def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(str(scope["type"]))
        assert request_id_var.get() is None

    middleware = RequestContextMiddleware(app)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    await middleware({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
