"""`POST /v1/webhooks/stripe` answered before FastAPI's router (webhooks.fastpath): the
same answers as the FastAPI route for every case of plan section 9 (accepted, duplicate,
bad or missing signature, wrong account, Postgres down), nothing stored when refused,
and the route still documented and labelled in the metrics."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from bos_common.errors import NotFound
from bos_common.testing import (
    Exchange,
    Infra,
    asgi_client,
    migrate,
    same_answer,
    without_fast_paths,
)
from webhooks.accounts import AccountDirectory
from webhooks.app import build_runtime, create_app
from webhooks.models import outbox, stripe_events
from webhooks.runtime import WebhooksRuntime
from webhooks.settings import WebhooksSettings
from webhooks.testing import signed_headers, stripe_event

pytestmark = pytest.mark.integration
SECRET = "whsec_fast_path_test"
CONNECT_SECRET = "whsec_fast_path_connect"
PATH = "/v1/webhooks/stripe"


class Tokens:
    """The tokens service's answer: one connected account is a BOS organization's."""

    async def request(self, method: str, path: str, **_: Any) -> tuple[int, Any]:
        if path.endswith("/acct_ours"):
            return 200, {"org_id": "org_fast"}
        raise NotFound("account_not_found", "Not found")

    async def close(self) -> None: ...


def settings(infra: Infra, **overrides: str) -> WebhooksSettings:
    env: dict[str, Any] = {
        **infra.env(),
        "STRIPE_WEBHOOK_SECRETS": f"whsec_old_rotated,{SECRET}",
        "STRIPE_CONNECT_WEBHOOK_SECRETS": CONNECT_SECRET,
        "STRIPE_SECRET_KEY": "sk_test_fast_path",
        "TOKENS_URL": "http://127.0.0.1:9",
        "RECONCILE_INTERVAL_SECONDS": "3600",
        **overrides,
    }
    return WebhooksSettings(**env)


def clients(runtime: WebhooksRuntime) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """(the app as served, the same app with the fast path taken out)."""
    fast = create_app(runtime)
    slow = without_fast_paths(create_app(runtime))
    assert len(slow.user_middleware) == len(fast.user_middleware) - 1
    return asgi_client(fast, "http://webhooks"), asgi_client(slow, "http://webhooks")


@pytest.fixture(scope="module")
async def runtime(infra: Infra) -> AsyncIterator[WebhooksRuntime]:
    await migrate(infra.database_url, "webhooks")
    runtime = build_runtime(settings(infra))
    runtime.accounts = AccountDirectory(Tokens(), "acct_platform")  # type: ignore[arg-type]
    yield runtime
    await runtime.db.dispose()


@pytest.fixture(scope="module")
async def both(runtime: WebhooksRuntime) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    fast, slow = clients(runtime)
    async with fast, slow:
        yield fast, slow


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    return signed_headers(body, secret, at)


async def stored(runtime: WebhooksRuntime, event_id: str) -> tuple[int, int]:
    """(stripe_events rows, outbox rows) of a Stripe event."""
    async with runtime.db.transaction() as s:
        events = await s.scalar(select(func.count()).where(stripe_events.c.id == event_id))
        rows = await s.scalar(
            select(func.count()).where(
                outbox.c.envelope["data"]["stripe_event_id"].astext == event_id
            )
        )
    return int(events or 0), int(rows or 0)


async def same(
    both: tuple[httpx.AsyncClient, ...], body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """The fast path's answer to this request, after checking the route answers alike
    (bos_common.testing.same_answer)."""
    fast, slow = both
    request = {"content": body, "headers": headers}
    answer, _ = await same_answer(fast, slow, "POST", PATH, request=request)
    return answer.response


def a_signed_event() -> dict[str, Any]:
    """A new event of org_fast, signed: the request arguments."""
    body = json.dumps(stripe_event(org_id="org_fast")).encode()
    return {"content": body, "headers": signed(body)}


async def test_9_1_accepted_event_same_answer_and_effect_as_the_route(
    runtime: WebhooksRuntime, both: tuple[httpx.AsyncClient, ...]
) -> None:
    async def written(exchange: Exchange) -> tuple[int, int]:
        return await stored(runtime, json.loads(exchange.request["content"])["id"])

    fast, slow = both
    # A new event each (the same one twice would be a duplicate the second time).
    a, b = await same_answer(fast, slow, "POST", PATH, request=a_signed_event, written=written)
    assert await written(a) == (1, 1)
    assert a.response.json() == {"received": True, "duplicate": False}
    assert a.response.content == b.response.content


async def test_rule_5_connect_endpoints_secret_same_answer_and_effect_as_the_route(
    runtime: WebhooksRuntime, both: tuple[httpx.AsyncClient, ...]
) -> None:
    # A connected account's event, delivered to the Connect endpoint with its own secret.
    for client in both:
        event = stripe_event(org_id="org_fast", account="acct_ours")
        body = json.dumps(event).encode()
        r = await client.post(PATH, content=body, headers=signed(body, CONNECT_SECRET))
        assert r.status_code == 200, r.text
        assert r.json() == {"received": True, "duplicate": False}
        assert await stored(runtime, event["id"]) == (1, 1)


async def test_9_3_duplicate_same_answer_and_no_new_effect(
    runtime: WebhooksRuntime, both: tuple[httpx.AsyncClient, ...]
) -> None:
    event = stripe_event(org_id="org_fast")
    body = json.dumps(event).encode()
    fast, slow = both
    first = await fast.post(PATH, content=body, headers=signed(body))
    assert first.json() == {"received": True, "duplicate": False}
    again_fast = await same(both, body, signed(body))
    assert again_fast.json() == {"received": True, "duplicate": True}
    assert await stored(runtime, event["id"]) == (1, 1)


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "garbage",
        "wrong_secret",
        "tampered",
        "stale",
        "not_an_event",
        "not_json",
    ],
)
async def test_9_2_refused_signature_same_400_and_nothing_stored(
    runtime: WebhooksRuntime, both: tuple[httpx.AsyncClient, ...], case: str
) -> None:
    event = stripe_event(org_id="org_fast")
    body = json.dumps(event).encode()
    headers = signed(body)
    if case == "missing":
        del headers["Stripe-Signature"]
    elif case == "empty":
        headers["Stripe-Signature"] = ""
    elif case == "garbage":
        headers["Stripe-Signature"] = "nonsense"
    elif case == "wrong_secret":
        headers = signed(body, "whsec_someone_else")
    elif case == "tampered":
        body = body.replace(b"1200", b"9900")
    elif case == "stale":
        headers = signed(body, at=int(time.time()) - 301)
    elif case == "not_an_event":
        body = b'{"hello": "world"}'
        headers = signed(body)
    elif case == "not_json":
        body = b"{not json"
        headers = signed(body)
    a = await same(both, body, headers)
    assert a.status_code == 400
    code = "signature_missing" if case in ("missing", "empty") else "signature_invalid"
    assert a.json()["error"]["code"] == code
    assert await stored(runtime, event["id"]) == (0, 0)


async def test_9_7_wrong_account_same_400_and_nothing_stored(
    runtime: WebhooksRuntime, both: tuple[httpx.AsyncClient, ...]
) -> None:
    event = stripe_event(org_id="org_fast", account="acct_stranger")
    body = json.dumps(event).encode()
    a = await same(both, body, signed(body))
    assert a.status_code == 400
    assert a.json()["error"]["code"] == "wrong_account"
    assert await stored(runtime, event["id"]) == (0, 0)
    # A connected account of an organization is ours.
    event = stripe_event(org_id="org_fast", account="acct_ours")
    body = json.dumps(event).encode()
    ok = await both[0].post(PATH, content=body, headers=signed(body))
    assert ok.status_code == 200, ok.text
    assert await stored(runtime, event["id"]) == (1, 1)


async def test_9_5_postgres_unreachable_same_503_and_retry_after(infra: Infra) -> None:
    # Nothing listens on port 1: the pool's first connection is refused.
    runtime = build_runtime(
        settings(infra, DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    )
    event = stripe_event(org_id="org_fast")
    body = json.dumps(event).encode()
    fast, slow = clients(runtime)
    async with fast, slow:
        a = await same((fast, slow), body, signed(body))
    await runtime.db.dispose()
    assert a.status_code == 503, a.text
    assert (a.json()["error"]["type"], a.json()["error"]["code"]) == (
        "service_unavailable",
        "service_unavailable",
    )
    assert a.headers.get("retry-after")
    assert "postgres" not in a.text.lower() and "127.0.0.1" not in a.text


async def test_other_methods_reach_the_route_and_the_route_stays_documented(
    runtime: WebhooksRuntime, both: tuple[httpx.AsyncClient, ...]
) -> None:
    fast, slow = both
    a, b = await fast.get(PATH), await slow.get(PATH)
    assert a.status_code == b.status_code == 405
    app: FastAPI = fast._transport.app  # type: ignore[attr-defined]
    assert "post" in app.openapi()["paths"][PATH]


async def test_fast_path_requests_are_labelled_with_the_route(
    both: tuple[httpx.AsyncClient, ...],
) -> None:
    labels = {"service": "webhooks", "method": "POST", "route": PATH, "status": "200"}
    before = REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0
    body = json.dumps(stripe_event(org_id="org_fast")).encode()
    assert (await both[0].post(PATH, content=body, headers=signed(body))).status_code == 200
    after = REGISTRY.get_sample_value("http_request_duration_seconds_count", labels)
    assert after == before + 1
