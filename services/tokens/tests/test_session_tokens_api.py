"""Session and portal tokens against real Postgres: plan 1.1, 1.2, 1.7 (service side),
revocation, the gateway snapshot and portal sessions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import select

from bos_common.app import ServiceRuntime
from bos_common.auth import IDENTITY_HEADER, verify_identity
from bos_common.session_tokens import SessionKeys
from bos_common.testing import SECRET, Infra
from tokens.app import build_runtime, create_app
from tokens.models import session_tokens

from .conftest import SERVICE, SESSION_SECRETS, Org, create_org, events_of, settings

pytestmark = pytest.mark.integration

KEYS = SessionKeys.parse(SESSION_SECRETS)


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def stored(runtime: ServiceRuntime, token_id: str) -> Any:
    async with runtime.db.transaction() as session:
        return (
            await session.execute(select(session_tokens).where(session_tokens.c.id == token_id))
        ).first()


async def test_1_1_session_token_format_default_expiry_and_storage(
    org: Org, runtime: ServiceRuntime
) -> None:
    body = await org.session_token(external_user_id="user_42", metadata={"plan": "pro"})
    assert body["id"].startswith("sess_") and body["external_user_id"] == "user_42"
    token = body["token"]
    assert token.startswith("bos_session_") and token.count(".") == 1
    claims = KEYS.verify(token)
    assert (claims.jti, claims.org, claims.sub, claims.scope) == (
        body["id"],
        org.id,
        "user_42",
        "session",
    )
    assert claims.exp - claims.iat == 3600  # default: one hour
    assert ts(body["expires_at"]) == claims.exp and ts(body["created_at"]) == claims.iat
    row = await stored(runtime, body["id"])
    assert row is not None
    assert (row.org_id, row.external_user_id, row.scope, row.kid, row.api_key_id) == (
        org.id,
        "user_42",
        "session",
        "k1",
        org.key["id"],
    )
    assert row.metadata == {"plan": "pro"} and row.revoked_at is None
    assert row.expires_at.timestamp() == claims.exp
    assert body["metadata"] == {"plan": "pro"}


async def test_1_2_custom_expiry_of_two_hours(org: Org) -> None:
    body = await org.session_token(expires_in=7200)
    claims = KEYS.verify(body["token"])
    assert claims.exp - claims.iat == 7200
    assert ts(body["expires_at"]) - ts(body["created_at"]) == 7200


@pytest.mark.parametrize(
    "bad",
    [
        {"expires_in": 59},
        {"expires_in": 86_401},
        {"expires_in": "soon"},
        {"external_user_id": ""},
        {"external_user_id": "   "},
        {"external_user_id": "x" * 256},
        {"metadata": {"k": "v" * 501}},
        {"unknown": True},
        {"external_user_id": "a\x00b"},
        {"metadata": {"k": "a\x00b"}},
        {"metadata": {"k\x00": "v"}},
    ],
)
async def test_session_token_parameters_are_validated(org: Org, bad: dict[str, Any]) -> None:
    r = await org.request("POST", "/v1/session-tokens", json={"external_user_id": "u", **bad})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "invalid_request"


async def test_1_7_five_concurrent_tokens_for_one_user_are_all_valid_and_independent(
    org: Org, runtime: ServiceRuntime
) -> None:
    lifetimes = [60, 600, 3600, 7200, 86_400]
    bodies = await asyncio.gather(
        *(org.session_token(external_user_id="same_user", expires_in=s) for s in lifetimes)
    )
    assert len({b["id"] for b in bodies}) == 5 and len({b["token"] for b in bodies}) == 5
    for body, lifetime in zip(bodies, lifetimes, strict=True):
        claims = KEYS.verify(body["token"])
        assert claims.sub == "same_user" and claims.exp - claims.iat == lifetime
        assert await stored(runtime, body["id"]) is not None
    # Revoking one leaves the others alone.
    r = await org.request("DELETE", f"/v1/session-tokens/{bodies[0]['id']}")
    assert r.status_code == 200
    for body in bodies[1:]:
        assert (await stored(runtime, body["id"])).revoked_at is None


async def test_1_5_revocation_is_recorded_and_announced_once(
    org: Org, runtime: ServiceRuntime
) -> None:
    body = await org.session_token()
    r = await org.request("DELETE", f"/v1/session-tokens/{body['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == body["id"] and r.json()["revoked_at"] is not None
    again = await org.request("DELETE", f"/v1/session-tokens/{body['id']}")
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    events = await events_of(runtime, "session_token.revoked.v1", org.id)
    assert len(events) == 1
    data = events[0]["data"]
    assert (data["token_id"], data["org_id"], data["scope"], data["external_user_id"]) == (
        body["id"],
        org.id,
        "session",
        "user_1",
    )
    assert ts(data["expires_at"]) == ts(body["expires_at"])


async def test_another_organizations_token_cannot_be_revoked(
    http: httpx.AsyncClient, org: Org, runtime: ServiceRuntime
) -> None:
    other = await create_org(http)
    body = await other.session_token()
    r = await org.request("DELETE", f"/v1/session-tokens/{body['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "session_token_not_found"
    assert (await stored(runtime, body["id"])).revoked_at is None


async def test_gateway_snapshot_lists_revoked_unexpired_tokens_and_org_settings(
    http: httpx.AsyncClient, org: Org
) -> None:
    await org.request("PATCH", "/v1/organization", json={"allowed_origins": ["https://a.test"]})
    revoked = await org.session_token()
    kept = await org.session_token()
    await org.request("DELETE", f"/v1/session-tokens/{revoked['id']}")
    r = await http.get("/internal/gateway/snapshot", headers=SERVICE)
    assert r.status_code == 200, r.text
    snap = r.json()
    ids = {t["id"] for t in snap["revoked_tokens"]}
    assert revoked["id"] in ids and kept["id"] not in ids
    mine = next(o for o in snap["organizations"] if o["id"] == org.id)
    assert mine == {
        "id": org.id,
        "version": 2,
        "allowed_origins": ["https://a.test"],
        "rate_limits": {},
    }
    r = await http.get(f"/internal/organizations/{org.id}", headers=SERVICE)
    assert r.status_code == 200 and r.json()["platform_fee_bps"] == 500


# --- portal sessions (the customer lookup is the checkout service's) ----------------------


@pytest.fixture
async def checkout_stub() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for checkout's `GET /internal/customers/{id}`: knows cus_known in the
    organization that asks; records the identities it was called with."""
    seen: list[dict[str, Any]] = []

    async def customer(request: web.Request) -> web.Response:
        identity = verify_identity(request.headers[IDENTITY_HEADER], SECRET)
        assert identity is not None
        seen.append(identity.model_dump())
        if request.match_info["id"] == "cus_known":
            return web.json_response({"id": "cus_known", "org_id": identity.org_id})
        body = {
            "error": {
                "type": "not_found",
                "code": "customer_not_found",
                "message": "Customer not found",
                "request_id": "req_x",
            }
        }
        return web.Response(status=404, text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/internal/customers/{id}", customer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_portal_session_is_a_portal_token_bound_to_an_existing_customer(
    infra: Infra, runtime: ServiceRuntime, checkout_stub: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = checkout_stub
    rt = build_runtime(settings(infra, CHECKOUT_URL=url, BOS_PUBLIC_URL="https://pay.bos.test"))
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://tokens") as http:
        org = await create_org(http)
        r = await org.request("POST", "/v1/portal-sessions", json={"customer_id": "cus_known"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["id"].startswith("ps_") and body["customer_id"] == "cus_known"
        assert body["url"] == f"https://pay.bos.test/portal#token={body['token']}"
        claims = KEYS.verify(body["token"])
        assert (claims.scope, claims.cus, claims.org, claims.jti) == (
            "portal",
            "cus_known",
            org.id,
            body["id"],
        )
        assert seen[-1]["org_id"] == org.id and seen[-1]["principal_type"] == "api_key"

        r = await org.request("POST", "/v1/portal-sessions", json={"customer_id": "cus_other"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "customer_not_found"
        # A portal token is revoked like a session token.
        r = await org.request("DELETE", f"/v1/session-tokens/{body['id']}")
        assert r.status_code == 200 and r.json()["revoked_at"]
    await rt.db.dispose()


async def test_portal_session_without_a_reachable_checkout_is_503(
    infra: Infra, runtime: ServiceRuntime
) -> None:
    rt = build_runtime(settings(infra, CHECKOUT_URL="http://127.0.0.1:1"))
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://tokens") as http:
        org = await create_org(http)
        r = await org.request("POST", "/v1/portal-sessions", json={"customer_id": "cus_known"})
        assert r.status_code == 503 and r.headers["retry-after"]
    await rt.db.dispose()
