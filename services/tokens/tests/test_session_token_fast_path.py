"""`POST /v1/session-tokens` answered before FastAPI's router (tokens.fastpath): the same
answers as the FastAPI route, the route's own errors for everything it does not take,
Idempotency-Key around it, and the contract's 503 when Postgres is unreachable; the
store that writes tokens minted together in one statement (tokens.repository)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from bos_common.app import ServiceRuntime
from bos_common.auth import IDENTITY_HEADER
from bos_common.session_tokens import SessionKeys
from bos_common.testing import Exchange, Infra, asgi_client, same_answer, without_fast_paths
from tokens.app import build_runtime, create_app
from tokens.models import session_tokens
from tokens.settings import TokensSettings
from tokens.token_store import SessionTokenStore

from .conftest import SESSION_SECRETS, Org, identity_headers

pytestmark = pytest.mark.integration

KEYS = SessionKeys.parse(SESSION_SECRETS)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _store(app: FastAPI) -> SessionTokenStore:
    store: SessionTokenStore = app.state.session_token_store
    return store


@pytest.fixture(scope="module")
async def route_only(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    """The same app with the fast path taken out: every request goes through FastAPI."""
    app = without_fast_paths(create_app(runtime))
    async with asgi_client(app, "http://tokens") as client:
        yield client
    await _store(app).close()


def shape(body: Any) -> Any:
    """The response with its generated values (ids, token, times) replaced by their kind."""
    if isinstance(body, dict):
        return {k: shape(v) for k, v in body.items()}
    if isinstance(body, str) and TIMESTAMP.fullmatch(body):
        return "<timestamp>"
    if isinstance(body, str) and body.startswith(("sess_", "bos_session_", "req_")):
        return body.split("_", 1)[0]
    return body


async def both(
    org: Org, route_only: httpx.AsyncClient, runtime: ServiceRuntime | None = None, **request: Any
) -> tuple[Exchange, Exchange]:
    """The same request to the fast path and to the route, answered alike (generated values
    aside); with `runtime`, each wrote the same row."""
    request.setdefault("headers", org.headers)
    written = partial(_written, runtime) if runtime else None
    return await same_answer(
        org.http,
        route_only,
        "POST",
        "/v1/session-tokens",
        request=request,
        normalize=shape,
        written=written,
    )


async def _written(runtime: ServiceRuntime, exchange: Exchange) -> Any:
    """The token's row, checked against its claims, without its generated values."""
    created = exchange.response.json()
    claims = KEYS.verify(created["token"])
    t = session_tokens
    async with runtime.db.transaction() as session:
        row = (await session.execute(select(t).where(t.c.id == created["id"]))).one()
    assert (claims.jti, claims.org, claims.sub) == (row.id, row.org_id, row.external_user_id)
    assert row.created_at.timestamp() == claims.iat
    assert row.expires_at.timestamp() == claims.exp
    return {
        "org_id": row.org_id,
        "scope": row.scope,
        "external_user_id": row.external_user_id,
        "customer_id": row.customer_id,
        "api_key_id": row.api_key_id,
        "kid": row.kid,
        "metadata": row.metadata,
        "lifetime": claims.exp - claims.iat,
        "revoked": row.revoked_at is not None,
    }


async def test_1_1_fast_path_answers_exactly_as_the_route(
    org: Org, route_only: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    body = {"external_user_id": "user_7", "expires_in": 600, "metadata": {"plan": "pro"}}
    fast, _ = await both(org, route_only, runtime, json=body)
    assert fast.response.status_code == 201, fast.response.text
    assert fast.response.headers["content-type"] == "application/json"
    assert await _written(runtime, fast) == {
        "org_id": org.id,
        "scope": "session",
        "external_user_id": "user_7",
        "customer_id": None,
        "api_key_id": org.key["id"],
        "kid": "k1",
        "metadata": {"plan": "pro"},
        "lifetime": 600,
        "revoked": False,
    }


@pytest.mark.parametrize(
    "case",
    [
        {"json": {"external_user_id": "u", "expires_in": 59}},
        {"json": {"external_user_id": "u", "surprise": 1}},
        {"json": {}},
        {"content": b"{not json"},
        {"content": b""},
        # A JSON body under another content type (or none) is not read as JSON by the route.
        {"content": b'{"external_user_id": "u"}', "content_type": "text/plain"},
        {"content": b'{"external_user_id": "u"}', "content_type": None},
        {"json": {"external_user_id": "u"}, "identity": None},
        {"json": {"external_user_id": "u"}, "identity": "forged.value"},
        {"json": {"external_user_id": "u"}, "identity": "session"},
        {"json": {"external_user_id": "u"}, "identity": "admin"},
    ],
)
async def test_1_1_what_the_fast_path_does_not_take_gets_the_routes_answer(
    org: Org, route_only: httpx.AsyncClient, case: dict[str, Any]
) -> None:
    headers = dict(org.headers)
    identity = case.pop("identity", "api_key")
    if identity is None:
        del headers[IDENTITY_HEADER]
    elif identity == "forged.value":
        headers[IDENTITY_HEADER] = identity
    elif identity != "api_key":
        headers = identity_headers(identity, principal_id="x", org_id=org.id)
    if "content_type" in case:
        content_type = case.pop("content_type")
        if content_type is not None:
            headers["content-type"] = content_type
    fast, _ = await both(org, route_only, headers=headers, **case)
    assert fast.response.status_code in (401, 403, 422), fast.response.text


async def test_1_1_idempotency_key_replays_a_fast_path_token(
    org: Org, runtime: ServiceRuntime
) -> None:
    headers = {**org.headers, "Idempotency-Key": "mint-once"}
    body = {"external_user_id": "user_idem"}
    first = await org.http.post("/v1/session-tokens", json=body, headers=headers)
    again = await org.http.post("/v1/session-tokens", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content
    other = await org.http.post(
        "/v1/session-tokens", json={"external_user_id": "someone_else"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    async with runtime.db.transaction() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(session_tokens)
            .where(session_tokens.c.external_user_id == "user_idem")
        )
    assert count == 1


async def test_11_2_postgres_unreachable_is_the_contracts_503(infra: Infra, org: Org) -> None:
    # Nothing listens on port 1: the store's first connection is refused.
    env = {**infra.env(), "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    app = create_app(build_runtime(TokensSettings(**env, BOS_SESSION_SECRETS=SESSION_SECRETS)))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tokens") as client:
        r = await client.post(
            "/v1/session-tokens", json={"external_user_id": "u"}, headers=org.headers
        )
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("service_unavailable", "service_unavailable")
    assert r.headers.get("retry-after")
    assert "postgres" not in r.text.lower() and "127.0.0.1" not in r.text
    assert json.loads(r.text)["error"]["request_id"] == r.headers["x-request-id"]


# --- the store: tokens minted together are written together -----------------------------


def token_row(token_id: str, org_id: str = "org_store_test") -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": token_id,
        "org_id": org_id,
        "scope": "session",
        "external_user_id": "user_store",
        "customer_id": None,
        "api_key_id": "key_store_test",
        "kid": "k1",
        "metadata": {"n": token_id},
        "created_at": now,
        "expires_at": now + timedelta(hours=1),
    }


async def stored_ids(runtime: ServiceRuntime, prefix: str) -> set[str]:
    async with runtime.db.transaction() as session:
        result = await session.execute(
            select(session_tokens.c.id).where(session_tokens.c.id.startswith(prefix))
        )
        return {r.id for r in result}


async def test_1_7_a_bad_row_fails_alone_when_tokens_are_written_together(
    infra: Infra, runtime: ServiceRuntime
) -> None:
    store = SessionTokenStore(runtime.db)
    prefix = f"sess_batch_{uuid.uuid4().hex[:8]}_"
    rows = [token_row(f"{prefix}{i}") for i in range(6)]
    rows[3]["org_id"] = "o" * 40  # longer than the column: a data error for this row only
    try:
        # Queued in the same loop iteration: the first writer takes them as one batch.
        results = await asyncio.gather(*(store.insert(r) for r in rows), return_exceptions=True)
    finally:
        await store.close()
    assert [r is None for r in results] == [True, True, True, False, True, True], results
    assert isinstance(results[3], asyncpg.DataError)
    assert await stored_ids(runtime, prefix) == {r["id"] for i, r in enumerate(rows) if i != 3}


async def test_store_close_writes_what_is_queued_then_refuses(
    infra: Infra, runtime: ServiceRuntime
) -> None:
    store = SessionTokenStore(runtime.db)
    prefix = f"sess_close_{uuid.uuid4().hex[:8]}_"
    pending = [asyncio.ensure_future(store.insert(token_row(f"{prefix}{i}"))) for i in range(20)]
    await asyncio.sleep(0)  # queued, not written yet
    await store.close()
    assert [await p for p in pending] == [None] * 20
    assert len(await stored_ids(runtime, prefix)) == 20
    with pytest.raises(RuntimeError):
        await store.insert(token_row(f"{prefix}late"))
