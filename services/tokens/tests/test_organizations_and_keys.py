"""Organizations and API keys against real Postgres (docs/api.md "Organizations and keys")."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from bos_common.app import ServiceRuntime
from tokens.models import api_keys
from tokens.schemas import normalize_origin

from .conftest import ADMIN, SERVICE, Org, create_org, events_of, identity_headers

pytestmark = pytest.mark.integration


def error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    return body["error"]


# --- POST /admin/organizations ------------------------------------------------------------


async def test_admin_creates_an_organization_with_defaults_and_a_test_key(
    http: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    org = await create_org(http, name="Acme Inc")
    body = org.body
    assert body["id"].startswith("org_") and body["name"] == "Acme Inc"
    assert body["platform_fee_bps"] == 500
    assert body["allowed_origins"] == [] and body["stripe_account_id"] is None
    assert body["payout_schedule"] == {"interval": "daily"}
    key = body["api_key"]
    assert key["id"].startswith("key_") and key["secret"].startswith("sk_test_")
    assert len(key["secret"]) == len("sk_test_") + 40 and key["livemode"] is False
    assert key["redacted_secret"] == f"sk_test_...{key['secret'][-4:]}"
    events = await events_of(runtime, "organization.updated.v1", org.id)
    assert [e["data"]["version"] for e in events] == [1]


async def test_organization_fields_are_taken_and_validated(http: httpx.AsyncClient) -> None:
    org = await create_org(
        http,
        platform_fee_bps=250,
        allowed_origins=["https://Shop.Example.com:443/", "http://localhost:3000"],
        stripe_account_id="acct_123abc",
        payout_schedule={"interval": "weekly", "weekly_anchor": "friday"},
        livemode=True,
    )
    assert org.body["platform_fee_bps"] == 250
    assert org.body["allowed_origins"] == ["https://shop.example.com", "http://localhost:3000"]
    assert org.body["stripe_account_id"] == "acct_123abc"
    assert org.body["payout_schedule"] == {"interval": "weekly", "weekly_anchor": "friday"}
    assert org.key["secret"].startswith("sk_live_")
    for bad in (
        {"name": ""},
        {"name": "x", "platform_fee_bps": 10_001},
        {"name": "x", "platform_fee_bps": -1},
        {"name": "x", "allowed_origins": ["https://shop.example.com/path"]},
        {"name": "x", "allowed_origins": ["*"]},
        {"name": "x", "allowed_origins": ["ftp://shop.example.com"]},
        {"name": "x", "stripe_account_id": "cus_123"},
        {"name": "x", "payout_schedule": {"interval": "daily", "weekly_anchor": "monday"}},
        {"name": "x", "rate_limits": {"api_key": "many"}},
        {"name": "x", "unknown": 1},
    ):
        r = await http.post("/admin/organizations", json=bad, headers=ADMIN)
        assert r.status_code == 422, (bad, r.text)
        assert error(r)["type"] == "invalid_request"


def test_origins_are_normalized_to_what_browsers_send() -> None:
    assert normalize_origin("HTTPS://A.Example.COM") == "https://a.example.com"
    assert normalize_origin("http://a.test:80") == "http://a.test"
    assert normalize_origin("https://a.test:8443/") == "https://a.test:8443"
    assert normalize_origin("http://[::1]:3000") == "http://[::1]:3000"
    for bad in ("a.test", "https://", "https://a.test?x=1", "https://u:p@a.test", "https://*.a"):
        with pytest.raises(ValueError):
            normalize_origin(bad)


async def test_only_the_admin_token_creates_organizations(
    http: httpx.AsyncClient, org: Org
) -> None:
    r = await http.post("/admin/organizations", json={"name": "x"})
    assert r.status_code == 401 and error(r)["code"] == "authentication_required"
    r = await org.request("POST", "/admin/organizations", json={"name": "x"})
    assert r.status_code == 403
    r = await org.request(
        "PATCH", f"/admin/organizations/{org.id}", json={"rate_limits": {"api_key": "1000/second"}}
    )
    assert r.status_code == 403


# --- PATCH /v1/organization ---------------------------------------------------------------


async def test_merchant_updates_its_organization_and_an_event_carries_the_new_version(
    org: Org, runtime: ServiceRuntime
) -> None:
    r = await org.request(
        "PATCH",
        "/v1/organization",
        json={
            "allowed_origins": ["https://shop.acme.test"],
            "platform_fee_bps": 300,
            "stripe_account_id": "acct_9",
            "payout_schedule": {"interval": "monthly", "monthly_anchor": 15},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allowed_origins"] == ["https://shop.acme.test"]
    assert body["platform_fee_bps"] == 300 and body["stripe_account_id"] == "acct_9"
    assert body["payout_schedule"] == {"interval": "monthly", "monthly_anchor": 15}
    assert (await org.request("GET", "/v1/organization")).json() == body
    events = await events_of(runtime, "organization.updated.v1", org.id)
    assert [e["data"]["version"] for e in events] == [1, 2]
    assert events[-1]["data"]["allowed_origins"] == ["https://shop.acme.test"]
    # Rate limits are the operator's, not the merchant's.
    r = await org.request(
        "PATCH", "/v1/organization", json={"rate_limits": {"api_key": "1000/second"}}
    )
    assert r.status_code == 422
    r = await org.request("PATCH", "/v1/organization", json={"platform_fee_bps": None})
    assert r.status_code == 400


async def test_admin_sets_per_organization_rate_limits(
    http: httpx.AsyncClient, org: Org, runtime: ServiceRuntime
) -> None:
    r = await http.patch(
        f"/admin/organizations/{org.id}",
        json={"rate_limits": {"api_key": "500/second", "session": "120/minute"}},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert r.json()["rate_limits"] == {"api_key": "500/second", "session": "120/minute"}
    events = await events_of(runtime, "organization.updated.v1", org.id)
    assert events[-1]["data"]["rate_limits"] == {"api_key": "500/second", "session": "120/minute"}
    r = await http.patch("/admin/organizations/org_nope", json={"name": "x"}, headers=ADMIN)
    assert r.status_code == 404 and error(r)["code"] == "organization_not_found"


# --- API keys -----------------------------------------------------------------------------


async def test_api_key_secret_is_shown_once_and_only_its_hash_is_stored(
    org: Org, runtime: ServiceRuntime
) -> None:
    r = await org.request("POST", "/v1/api-keys", json={"name": "CI"})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("sk_test_") and created["name"] == "CI"  # same mode as caller
    listed = (await org.request("GET", "/v1/api-keys")).json()
    assert {k["id"] for k in listed["data"]} == {org.key["id"], created["id"]}
    assert all("secret" not in k for k in listed["data"])
    async with runtime.db.transaction() as session:
        row = (await session.execute(select(api_keys).where(api_keys.c.id == created["id"]))).one()
        dump = (
            (await session.execute(text("SELECT row_to_json(k)::text FROM api_keys k")))
            .scalars()
            .all()
        )
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in line or secret[8:] in line for line in dump)


async def test_list_is_cursor_paginated_newest_first(org: Org) -> None:
    ids = []
    for i in range(3):
        r = await org.request("POST", "/v1/api-keys", json={"name": f"k{i}"})
        ids.append(r.json()["id"])
    first = (await org.request("GET", "/v1/api-keys", params={"limit": 2})).json()
    assert [k["id"] for k in first["data"]] == [ids[2], ids[1]] and first["has_more"]
    rest = (
        await org.request("GET", "/v1/api-keys", params={"limit": 2, "starting_after": ids[1]})
    ).json()
    assert [k["id"] for k in rest["data"]] == [ids[0], org.key["id"]]
    assert rest["has_more"] is False
    assert (await org.request("GET", "/v1/api-keys", params={"limit": 0})).status_code == 422


async def test_1_3_revoked_expired_or_unknown_keys_do_not_resolve(
    http: httpx.AsyncClient, org: Org, runtime: ServiceRuntime
) -> None:
    async def resolve(secret: str) -> httpx.Response:
        return await http.post(
            "/internal/api-keys/resolve", json={"secret": secret}, headers=SERVICE
        )

    ok = await resolve(org.key["secret"])
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "key_id": org.key["id"],
        "org_id": org.id,
        "livemode": False,
        "expires_at": None,
    }
    listed = (await org.request("GET", "/v1/api-keys")).json()["data"]
    assert listed[0]["last_used_at"] is not None

    secret = org.key["secret"]
    for wrong in (
        secret[:-1] + ("A" if secret[-1] != "A" else "B"),  # same lookup, other hash
        secret.replace("sk_test_", "sk_live_"),
        "sk_test_short",
        "",
        "x" * 150,
    ):
        r = await resolve(wrong)
        assert r.status_code == 401 and error(r)["code"] == "invalid_api_key", wrong

    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    expiring = (await org.request("POST", "/v1/api-keys", json={"expires_at": soon})).json()
    async with runtime.db.transaction() as session:
        await session.execute(
            api_keys.update()
            .where(api_keys.c.id == expiring["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await resolve(expiring["secret"])).status_code == 401

    r = await org.request("DELETE", f"/v1/api-keys/{org.key['id']}")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert (await resolve(secret)).status_code == 401
    again = await org.request("DELETE", f"/v1/api-keys/{org.key['id']}")
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    events = await events_of(runtime, "api_key.revoked.v1", org.id)
    assert [e["data"]["key_id"] for e in events] == [org.key["id"]]  # once


async def test_expires_at_must_be_future_and_zoned(org: Org) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert (await org.request("POST", "/v1/api-keys", json={"expires_at": past})).status_code == 400
    naive = "2030-01-01T00:00:00"
    assert (
        await org.request("POST", "/v1/api-keys", json={"expires_at": naive})
    ).status_code == 422


async def test_another_organizations_key_is_404(http: httpx.AsyncClient, org: Org) -> None:
    other = await create_org(http)
    r = await org.request("DELETE", f"/v1/api-keys/{other.key['id']}")
    assert r.status_code == 404 and error(r)["code"] == "api_key_not_found"


async def test_browser_and_service_credentials_cannot_manage_keys(org: Org) -> None:
    browser = identity_headers(
        "session", principal_id="sess_1", org_id=org.id, external_user_id="u"
    )
    for method, path in (
        ("GET", "/v1/api-keys"),
        ("POST", "/v1/session-tokens"),
        ("PATCH", "/v1/organization"),
    ):
        r = await org.request(method, path, json={}, headers=browser)
        assert r.status_code == 403, (method, path)
    r = await org.request("GET", "/internal/gateway/snapshot")
    assert r.status_code == 403  # an API key is not a service


async def test_every_route_refuses_an_anonymous_caller(http: httpx.AsyncClient) -> None:
    from fastapi.routing import APIRoute

    from tokens import api, internal_api

    routes = [r for r in api.router.routes + internal_api.router.routes if isinstance(r, APIRoute)]
    checked = 0
    for route in routes:
        path = (
            route.path.replace("{org_id}", "org_x")
            .replace("{key_id}", "key_x")
            .replace("{token_id}", "sess_x")
        )
        for method in route.methods:
            r = await http.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked >= 14


async def test_a_stripe_account_belongs_to_one_organization_and_webhooks_can_ask(
    http: httpx.AsyncClient,
) -> None:
    import uuid

    account = f"acct_{uuid.uuid4().hex[:16]}"
    owner = await create_org(http, stripe_account_id=account)
    r = await http.get(f"/internal/stripe-accounts/{account}", headers=SERVICE)
    assert r.status_code == 200 and r.json() == {"stripe_account_id": account, "org_id": owner.id}
    r = await http.get("/internal/stripe-accounts/acct_unknown", headers=SERVICE)
    assert r.status_code == 404 and error(r)["code"] == "stripe_account_not_found"
    r = await http.post(
        "/admin/organizations", json={"name": "x", "stripe_account_id": account}, headers=ADMIN
    )
    assert r.status_code == 409 and error(r)["code"] == "stripe_account_in_use"
    other = await create_org(http)
    r = await other.request("PATCH", "/v1/organization", json={"stripe_account_id": account})
    assert r.status_code == 409 and error(r)["code"] == "stripe_account_in_use"


async def test_gateways_can_ask_which_organizations_allow_an_origin(
    http: httpx.AsyncClient,
) -> None:
    import uuid

    origin = f"https://{uuid.uuid4().hex[:8]}.shop.test"
    owner = await create_org(http, allowed_origins=[origin, "https://other.test"])
    await create_org(http, allowed_origins=["https://other.test"])
    r = await http.get(
        "/internal/gateway/organizations", params={"allowed_origin": origin}, headers=SERVICE
    )
    assert r.status_code == 200
    assert [(o["id"], o["allowed_origins"]) for o in r.json()] == [
        (owner.id, [origin, "https://other.test"])
    ]
    assert r.json()[0]["version"] >= 1
    r = await http.get(
        "/internal/gateway/organizations",
        params={"allowed_origin": "https://nobody.test"},
        headers=SERVICE,
    )
    assert r.status_code == 200 and r.json() == []


async def test_webhooks_can_list_every_organizations_stripe_account(
    http: httpx.AsyncClient,
) -> None:
    import uuid

    account = f"acct_{uuid.uuid4().hex[:16]}"
    owner = await create_org(http, stripe_account_id=account)
    await create_org(http)  # no Stripe account: not listed
    r = await http.get("/internal/stripe-accounts", headers=SERVICE)
    assert r.status_code == 200, r.text
    listed = r.json()["data"]
    assert {"stripe_account_id": account, "org_id": owner.id} in listed
    assert all(a["stripe_account_id"] for a in listed)
    assert (await http.get("/internal/stripe-accounts", headers=owner.headers)).status_code == 403
