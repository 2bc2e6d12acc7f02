"""Plan 14.3 (CSRF: origins and CORS), 14.4 (rate limiting), 14.5 (token tampering) and
14.7 (no information disclosure), end to end through the gateway.

Unauthenticated requests are limited per client address, so the tests that count them
connect from an address of their own in 127.0.0.0/8 (Linux routes the whole range to the
loopback): neither they nor the rest of the suite eat each other's allowance."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import uuid
from typing import Any

import httpx
import pytest

from bos_common.session_tokens import SessionKeys

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SHOP = "https://shop.e2e-origins.test"
CHECKOUT_BODY = {"price_id": "price_x", "customer": {"email": "a@b.test"}}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def error(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"type", "code", "message", "request_id"}
    return body["error"]


async def new_org(gateway: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await gateway.post(
        "/admin/organizations",
        json={"name": f"org-{uuid.uuid4().hex[:8]}", **fields},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def session_token(gateway: httpx.AsyncClient, org: dict[str, Any]) -> str:
    r = await gateway.post(
        "/v1/session-tokens",
        json={"external_user_id": "user_1"},
        headers=bearer(org["api_key"]["secret"]),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def per_minute(variable: str) -> int:
    """The stack's configured limit (scripts/test.sh passes its environment to the stack
    and to the tests); the default of docs/api.md "Rate limits" when unset."""
    value = os.environ.get(variable, "60/minute")
    amount, _, unit = value.partition("/")
    assert unit == "minute", f"{variable}={value}: these tests expect a per-minute limit"
    return int(amount)


def from_own_address(gateway_url: str) -> httpx.AsyncClient:
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=gateway_url, transport=transport, timeout=10)


# --- 14.3 CSRF --------------------------------------------------------------------------------


async def test_14_3_forged_request_from_another_origin_is_rejected(
    gateway: httpx.AsyncClient,
) -> None:
    org = await new_org(gateway, allowed_origins=[SHOP])
    token = await session_token(gateway, org)
    for origin in (
        "https://evil.example",
        "null",
        SHOP + ".evil.example",
        "http://shop.e2e-origins.test",
    ):
        r = await gateway.post(
            "/v1/checkout-sessions", json=CHECKOUT_BODY, headers={**bearer(token), "Origin": origin}
        )
        assert r.status_code == 403, origin
        assert (error(r)["type"], error(r)["code"]) == ("permission_error", "origin_not_allowed")
    # The organization's own origin passes, and may read the answer (CORS).
    r = await gateway.get("/v1/products", headers={**bearer(token), "Origin": SHOP})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SHOP
    # Another organization's allowed origin is not this token's.
    other = await new_org(gateway, allowed_origins=["https://other.e2e-origins.test"])
    r = await gateway.get(
        "/v1/products", headers={**bearer(await session_token(gateway, other)), "Origin": SHOP}
    )
    assert r.status_code == 403 and error(r)["code"] == "origin_not_allowed"


async def test_a_new_organizations_origin_is_honoured_by_its_very_first_request(
    gateway: httpx.AsyncClient,
) -> None:
    """Rule 7: the gateway's copy of organizations may be behind the tokens service by
    an event; a refusal is confirmed with the owner, so none of these is a 403."""
    refused = []
    for _ in range(50):
        origin = f"https://{uuid.uuid4().hex[:10]}.e2e-origins.test"
        org = await new_org(gateway, allowed_origins=[origin])
        preflight = await gateway.options(
            "/v1/products", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        origin2 = f"https://{uuid.uuid4().hex[:10]}.e2e-origins.test"
        org2 = await new_org(gateway, allowed_origins=[origin2])
        r = await gateway.get(
            "/v1/products",
            headers={**bearer(await session_token(gateway, org2)), "Origin": origin2},
        )
        if preflight.status_code != 204 or r.status_code != 200:
            refused.append((org["id"], preflight.status_code, org2["id"], r.status_code))
        elif r.headers.get("access-control-allow-origin") != origin2:
            refused.append((org2["id"], "no CORS header"))
    assert refused == []


async def test_14_3_the_gateways_own_pages_and_server_calls_pass(
    gateway: httpx.AsyncClient, gateway_url: str
) -> None:
    org = await new_org(gateway, allowed_origins=[SHOP])
    token = await session_token(gateway, org)
    r = await gateway.get("/v1/products", headers={**bearer(token), "Origin": gateway_url})
    assert r.status_code == 200  # same origin: the hosted checkout page
    r = await gateway.get("/v1/products", headers=bearer(token))
    assert r.status_code == 200  # no Origin: not a browser
    r = await gateway.get(
        "/v1/organization",
        headers={**bearer(org["api_key"]["secret"]), "Origin": "https://evil.example"},
    )
    assert r.status_code == 200  # API keys are server to server


async def test_14_3_cors_preflight_is_answered_only_for_allowed_origins(
    gateway: httpx.AsyncClient,
) -> None:
    await new_org(gateway, allowed_origins=[SHOP])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }
    r = await gateway.options("/v1/checkout-sessions", headers={**preflight, "Origin": SHOP})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SHOP
    allowed = r.headers["access-control-allow-headers"]
    assert "authorization" in allowed and "idempotency-key" in allowed
    r = await gateway.options(
        "/v1/checkout-sessions", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and error(r)["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers


async def test_14_3_a_newly_allowed_origin_is_honoured_at_once(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    token = await session_token(gateway, org)
    origin = f"https://{uuid.uuid4().hex[:8]}.e2e-origins.test"
    headers = {**bearer(token), "Origin": origin}
    assert (await gateway.get("/v1/products", headers=headers)).status_code == 403
    r = await gateway.patch(
        "/v1/organization",
        json={"allowed_origins": [origin]},
        headers=bearer(org["api_key"]["secret"]),
    )
    assert r.status_code == 200
    for _ in range(100):  # organization.updated.v1 reaches the gateway within milliseconds
        if (await gateway.get("/v1/products", headers=headers)).status_code == 200:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the new origin was never accepted")


# --- 14.4 rate limiting -------------------------------------------------------------------


async def test_14_4_one_session_100_requests_in_a_minute_is_limited_after_60(
    gateway: httpx.AsyncClient,
) -> None:
    limit = per_minute("RATE_LIMIT_SESSION")  # 60 by default
    org = await new_org(gateway)
    token = await session_token(gateway, org)
    statuses = [
        (await gateway.get("/v1/products", headers=bearer(token))).status_code
        for _ in range(limit + 40)
    ]
    assert statuses[:limit] == [200] * limit
    assert statuses[limit:] == [429] * 40
    r = await gateway.get("/v1/products", headers=bearer(token))
    assert r.status_code == 429 and error(r)["code"] == "rate_limited"
    assert error(r)["type"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # Another session of the same user and organization has its own allowance.
    assert (
        await gateway.get("/v1/products", headers=bearer(await session_token(gateway, org)))
    ).status_code == 200


async def test_14_4_one_address_100_unauthenticated_requests_is_limited_after_60(
    gateway_url: str,
) -> None:
    limit = per_minute("RATE_LIMIT_IP")  # 60 by default
    async with from_own_address(gateway_url) as client:
        statuses = [(await client.get("/v1/products")).status_code for _ in range(limit + 40)]
        assert 429 not in statuses[:limit]
        assert statuses[limit:] == [429] * 40
        r = await client.get("/v1/products")
        assert error(r)["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    async with from_own_address(gateway_url) as client:  # another address is not limited
        assert (await client.get("/v1/products")).status_code != 429


async def test_14_4_per_organization_api_key_limit(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    r = await gateway.patch(
        f"/admin/organizations/{org['id']}",
        json={"rate_limits": {"api_key": "5/minute"}},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    await asyncio.sleep(0.5)  # organization.updated.v1 reaches the gateway
    key = bearer(org["api_key"]["secret"])
    statuses = [(await gateway.get("/v1/organization", headers=key)).status_code for _ in range(8)]
    assert statuses == [200] * 5 + [429] * 3


async def test_14_4_admin_token_and_stripe_webhooks_are_not_limited(
    gateway: httpx.AsyncClient, gateway_url: str
) -> None:
    org = await new_org(gateway)
    for _ in range(per_minute("RATE_LIMIT_IP") + 10):
        r = await gateway.get(f"/admin/organizations/{org['id']}", headers=ADMIN)
        assert r.status_code == 200
    async with from_own_address(gateway_url) as client:
        for _ in range(per_minute("RATE_LIMIT_IP") + 10):
            r = await client.post(
                "/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}
            )
            assert r.status_code == 400  # refused by its signature check, never 429


# --- 14.5 tampering -----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.removeprefix("bos_session_").split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_14_5_tampered_tokens_are_401_session_invalid(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    token = await session_token(gateway, org)
    other = await session_token(gateway, await new_org(gateway))
    payload, signature = token.removeprefix("bos_session_").split(".")
    other_payload, other_signature = other.removeprefix("bos_session_").split(".")
    claims = _claims(token)
    flip = {"A": "B"}
    forged = [
        # payload modified, signature kept
        "bos_session_"
        + _b64(json.dumps({**claims, "sub": "someone_else"}).encode())
        + "."
        + signature,
        "bos_session_"
        + _b64(json.dumps({**claims, "exp": claims["exp"] + 10**7}).encode())
        + "."
        + signature,
        # one character changed in the payload, then in the signature
        "bos_session_" + payload[:10] + flip.get(payload[10], "A") + payload[11:] + "." + signature,
        "bos_session_"
        + payload
        + "."
        + signature[:-2]
        + flip.get(signature[-2], "A")
        + signature[-1],
        # payloads swapped between two genuine tokens
        f"bos_session_{other_payload}.{signature}",
        f"bos_session_{payload}.{other_signature}",
        # alg and kid games
        "bos_session_" + _b64(json.dumps({**claims, "alg": "none"}).encode()) + ".",
        "bos_session_" + _b64(json.dumps({**claims, "kid": "k2"}).encode()) + "." + signature,
        SessionKeys.parse("k1:an-attacker-secret-0123456789").sign(claims),
        f"bos_session_{payload}",
    ]
    for bad in forged:
        r = await gateway.post("/v1/checkout-sessions", json=CHECKOUT_BODY, headers=bearer(bad))
        assert r.status_code == 401, bad
        assert (error(r)["code"], error(r)["message"]) == ("session_invalid", "Session invalid")
    assert (await gateway.get("/v1/products", headers=bearer(token))).status_code == 200


async def test_14_5_a_session_token_cannot_leave_its_scope(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    token = await session_token(gateway, org)
    for method, path in (
        ("POST", "/v1/session-tokens"),
        ("GET", "/v1/api-keys"),
        ("PATCH", "/v1/organization"),
        ("POST", "/v1/products"),
        ("GET", "/v1/portal/subscriptions"),
        ("GET", "/v1/subscriptions"),
        ("POST", "/admin/organizations"),
    ):
        r = await gateway.request(method, path, json={}, headers=bearer(token))
        assert r.status_code == 403, (method, path, r.text)
        assert error(r)["type"] == "permission_error"


# --- 14.7 information disclosure ------------------------------------------------------------


async def test_14_7_errors_carry_no_secrets_stack_traces_or_sql(gateway: httpx.AsyncClient) -> None:
    org = await new_org(gateway)
    secret = org["api_key"]["secret"]
    token = await session_token(gateway, org)
    key = bearer(secret)
    wrong_key = "sk_test_" + "Q" * 40
    responses = [
        await gateway.get("/v1/products", headers=bearer(wrong_key)),
        await gateway.get("/v1/products", headers=bearer(token[:-4] + "AAAA")),
        await gateway.get("/v1/products", headers={"Authorization": "Basic c2VjcmV0"}),
        await gateway.post(
            "/v1/session-tokens",
            headers={**key, "Content-Type": "application/json"},
            content=b"{not json",
        ),
        await gateway.post(
            "/v1/session-tokens",
            headers=key,
            json={
                "external_user_id": "'; DROP TABLE session_tokens;--",
                "expires_in": "1; SELECT pg_sleep(10)",
            },
        ),
        await gateway.post("/v1/session-tokens", headers=key, json={"external_user_id": ["x"]}),
        await gateway.delete("/v1/session-tokens/sess_' OR '1'='1", headers=key),
        await gateway.delete("/v1/api-keys/key_nope", headers=key),
        await gateway.patch(
            "/v1/organization", headers=key, json={"allowed_origins": ["javascript:alert(1)"]}
        ),
        await gateway.post("/admin/organizations", headers=key, json={"name": "x"}),
        await gateway.get(f"/admin/organizations/{org['id']}", headers=bearer(token)),
        await gateway.put("/v1/session-tokens", headers=key, json={}),
        await gateway.get("/internal/gateway/snapshot", headers=ADMIN),
        await gateway.get("/v1/../internal/gateway/snapshot", headers=key),
    ]
    forbidden = [
        secret,
        secret[8:],
        wrong_key[8:],
        os.environ["BOS_INTERNAL_SECRET"],
        ADMIN_TOKEN,
        "Traceback",
        'File "',
        "sqlalchemy",
        "asyncpg",
        "psycopg",
        "SELECT ",
        "INSERT ",
        "DROP TABLE",
        "session_tokens",
        "tokens.",
        "postgresql",
        "pg_sleep",
    ]
    forbidden += [part.split(":", 1)[1] for part in os.environ["BOS_SESSION_SECRETS"].split(",")]
    for r in responses:
        assert r.status_code >= 400, r.request.url
        body = error(r)
        assert r.headers["x-request-id"] == body["request_id"]
        for word in forbidden:
            assert word not in r.text, (r.request.method, r.request.url, word, r.text)
