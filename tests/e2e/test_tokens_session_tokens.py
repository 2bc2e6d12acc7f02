"""Plan section 1 (session token management) and the organizations/keys contract, end to
end through the gateway: black box, except where the plan asks what is stored (1.1) or
sets up a token that expired a minute ago (1.4), which is built with the deployment's
own session secret the way the tokens service builds it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.session_tokens import SessionKeys

sys.path.insert(0, str(Path(__file__).parent))
from replicas import replica_urls, revoked_everywhere  # noqa: E402

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def keys() -> SessionKeys:
    return SessionKeys.parse(os.environ["BOS_SESSION_SECRETS"])


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"] == r.headers["x-request-id"]
    return body["error"]


async def new_org(gateway: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await gateway.post(
        "/admin/organizations",
        json={"name": f"org-{uuid.uuid4().hex[:8]}", **fields},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def mint(gateway: httpx.AsyncClient, key: str, **body: Any) -> dict[str, Any]:
    r = await gateway.post(
        "/v1/session-tokens", json={"external_user_id": "user_1", **body}, headers=bearer(key)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def db_row(query: str, **params: Any) -> Any:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(query), params)).first()
    finally:
        await engine.dispose()


# --- organizations and keys ---------------------------------------------------------------


async def test_admin_creates_an_organization_and_its_key_works(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway, allowed_origins=["https://shop.example.com"])
    assert org["id"].startswith("org_") and org["platform_fee_bps"] == 500
    secret = org["api_key"]["secret"]
    assert secret.startswith("sk_test_")
    r = await gateway.get("/v1/organization", headers=bearer(secret))
    assert r.status_code == 200 and r.json()["id"] == org["id"]
    # The secret is stored only as its hash.
    row = await db_row(
        "SELECT secret_hash FROM tokens.api_keys WHERE id = :id", id=org["api_key"]["id"]
    )
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    r = await gateway.post("/admin/organizations", json={"name": "x"}, headers=bearer(secret))
    assert r.status_code == 403


async def test_api_keys_create_list_revoke(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    main = bearer(org["api_key"]["secret"])
    r = await gateway.post("/v1/api-keys", json={"name": "second"}, headers=main)
    assert r.status_code == 201, r.text
    second = r.json()
    listed = (await gateway.get("/v1/api-keys", headers=main)).json()
    assert {k["id"] for k in listed["data"]} == {org["api_key"]["id"], second["id"]}
    assert all("secret" not in k for k in listed["data"])
    # Every gateway replica resolves the key (and caches it).
    for url in replica_urls("gateway"):
        async with httpx.AsyncClient(base_url=url) as replica:
            assert (
                await replica.get("/v1/organization", headers=bearer(second["secret"]))
            ).status_code == 200
    # Revoked: refused at once, on this gateway and (via api_key.revoked.v1) on any other.
    r, answers = await revoked_everywhere(
        lambda g: g.delete(f"/v1/api-keys/{second['id']}", headers=main),
        lambda g: g.get("/v1/organization", headers=bearer(second["secret"])),
    )
    assert r.status_code == 200 and r.json()["revoked_at"]
    for r in answers:
        assert r.status_code == 401 and error(r)["code"] == "invalid_api_key"


async def test_organization_update(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    r = await gateway.patch(
        "/v1/organization",
        headers=bearer(org["api_key"]["secret"]),
        json={
            "allowed_origins": ["https://Shop.Example.com/"],
            "platform_fee_bps": 250,
            "payout_schedule": {"interval": "weekly", "weekly_anchor": "monday"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["allowed_origins"] == ["https://shop.example.com"]
    assert r.json()["platform_fee_bps"] == 250


# --- 1.1 - 1.7 -----------------------------------------------------------------------------


async def test_1_1_basic_session_token_generation(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    body = await mint(gateway, org["api_key"]["secret"], external_user_id="ext_user_11")
    token = body["token"]
    assert token.startswith("bos_session_")
    payload, signature = token.removeprefix("bos_session_").split(".")
    claims = keys().verify(token)  # HMAC signature validates with the deployment's secret
    assert (claims.jti, claims.org, claims.sub) == (body["id"], org["id"], "ext_user_11")
    expires = datetime.fromisoformat(body["expires_at"])
    created = datetime.fromisoformat(body["created_at"])
    assert expires - created == timedelta(hours=1)  # default expiry
    assert abs((created - datetime.now(UTC)).total_seconds()) < 60
    row = await db_row(
        "SELECT org_id, external_user_id, expires_at FROM tokens.session_tokens WHERE id = :id",
        id=body["id"],
    )
    assert row is not None  # stored in the session_tokens table
    assert (row.org_id, row.external_user_id, row.expires_at) == (org["id"], "ext_user_11", expires)
    r = await gateway.get("/v1/products", headers=bearer(token))
    assert r.status_code == 200, r.text


async def test_1_2_custom_expiry(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    body = await mint(gateway, org["api_key"]["secret"], expires_in=7200)
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires - datetime.fromisoformat(body["created_at"]) == timedelta(hours=2)
    assert keys().verify(body["token"]).exp - keys().verify(body["token"]).iat == 7200
    for bad in (59, 86_401):
        r = await gateway.post(
            "/v1/session-tokens",
            headers=bearer(org["api_key"]["secret"]),
            json={"external_user_id": "u", "expires_in": bad},
        )
        assert r.status_code == 422 and error(r)["param"] == "expires_in"


async def test_1_3_invalid_or_expired_api_key_is_401(gateway: httpx.AsyncClient) -> None:
    body = {"external_user_id": "u"}
    for secret in ("sk_test_" + "x" * 40, "sk_live_" + "0" * 40, "sk_test_nope", "nonsense"):
        r = await gateway.post("/v1/session-tokens", json=body, headers=bearer(secret))
        assert r.status_code == 401, secret
        assert error(r) | {"request_id": None} == {
            "type": "authentication_error",
            "code": "invalid_api_key",
            "message": "Invalid API key provided.",
            "request_id": None,
        }
    org = await new_org(gateway)
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    r = await gateway.post(
        "/v1/api-keys", json={"expires_at": soon}, headers=bearer(org["api_key"]["secret"])
    )
    expiring = r.json()["secret"]
    assert (
        await gateway.post("/v1/session-tokens", json=body, headers=bearer(expiring))
    ).status_code == 201
    await asyncio.sleep(2.5)
    r = await gateway.post("/v1/session-tokens", json=body, headers=bearer(expiring))
    assert r.status_code == 401 and error(r)["code"] == "invalid_api_key"


async def test_1_4_session_token_expired_a_minute_ago(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    issued = int(time.time()) - 3600 - 60
    token, _ = keys().mint(
        org=org["id"], sub="user_1", scope="session", expires_in=3600, now=issued
    )
    r = await gateway.post(
        "/v1/checkout-sessions",
        headers=bearer(token),
        json={"price_id": "price_x", "customer": {"email": "a@b.test"}},
    )
    assert r.status_code == 401
    assert (error(r)["type"], error(r)["code"], error(r)["message"]) == (
        "authentication_error",
        "session_expired",
        "Session expired",
    )


async def test_1_5_revoked_session_token(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    key = org["api_key"]["secret"]
    body = await mint(gateway, key)
    assert (await gateway.get("/v1/products", headers=bearer(body["token"]))).status_code == 200
    r, answers = await revoked_everywhere(
        lambda g: g.delete(f"/v1/session-tokens/{body['id']}", headers=bearer(key)),
        lambda g: g.post(
            "/v1/checkout-sessions",
            headers=bearer(body["token"]),
            json={"price_id": "price_x", "customer": {"email": "a@b.test"}},
        ),
    )
    assert r.status_code == 200 and r.json()["revoked_at"]
    for r in answers:
        assert r.status_code == 401
        assert (error(r)["code"], error(r)["message"]) == ("session_invalid", "Session invalid")


async def test_1_5_revocation_elsewhere_reaches_the_gateway_within_100_ms(
    gateway: httpx.AsyncClient,
) -> None:
    """Revoked at the tokens service directly (as if through another gateway replica): this
    gateway learns it from session_token.revoked.v1 on its own queue."""
    org = await new_org(gateway)
    key_id = org["api_key"]["id"]
    identity = Identity(principal_type="api_key", principal_id=key_id, org_id=org["id"])
    delays = []
    async with httpx.AsyncClient(base_url=os.environ["TOKENS_URL"], timeout=10) as tokens:
        for _ in range(3):
            body = await mint(gateway, org["api_key"]["secret"])
            assert (
                await gateway.get("/v1/products", headers=bearer(body["token"]))
            ).status_code == 200
            signed = {IDENTITY_HEADER: sign_identity(identity, os.environ["BOS_INTERNAL_SECRET"])}
            r = await tokens.delete(f"/v1/session-tokens/{body['id']}", headers=signed)
            assert r.status_code == 200, r.text
            started = time.perf_counter()
            while True:
                r = await gateway.get("/v1/products", headers=bearer(body["token"]))
                if r.status_code == 401:
                    break
                assert time.perf_counter() - started < 2, "revocation never arrived"
            delays.append(time.perf_counter() - started)
            assert error(r)["code"] == "session_invalid"
    print(f"\nrevocation seen by the gateway after {[round(d * 1000, 1) for d in delays]} ms")
    assert max(delays) < 0.1, delays


async def test_1_6_one_session_token_for_several_checkouts(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    body = await mint(gateway, org["api_key"]["secret"])
    for i in range(3):
        r = await gateway.post(
            "/v1/checkout-sessions",
            headers=bearer(body["token"]),
            json={"price_id": f"price_missing{i}", "customer": {"email": "a@b.test"}},
        )
        # Authenticated every time: whatever checkout answers, it is not an auth refusal.
        assert r.status_code not in (401, 403, 429), r.text
        assert (await gateway.get("/v1/products", headers=bearer(body["token"]))).status_code == 200


async def test_1_7_five_concurrent_tokens_for_one_external_user(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    key = org["api_key"]["secret"]
    lifetimes = [600, 1200, 3600, 7200, 86_400]
    bodies = await asyncio.gather(
        *(mint(gateway, key, external_user_id="same_user", expires_in=s) for s in lifetimes)
    )
    assert len({b["id"] for b in bodies}) == 5 and len({b["token"] for b in bodies}) == 5
    for body, lifetime in zip(bodies, lifetimes, strict=True):
        expires = datetime.fromisoformat(body["expires_at"])
        assert expires - datetime.fromisoformat(body["created_at"]) == timedelta(seconds=lifetime)
        assert (await gateway.get("/v1/products", headers=bearer(body["token"]))).status_code == 200
    _, answers = await revoked_everywhere(
        lambda g: g.delete(f"/v1/session-tokens/{bodies[0]['id']}", headers=bearer(key)),
        lambda g: g.get("/v1/products", headers=bearer(bodies[0]["token"])),
    )
    assert all(r.status_code == 401 for r in answers)
    for body in bodies[1:]:
        assert (await gateway.get("/v1/products", headers=bearer(body["token"]))).status_code == 200
