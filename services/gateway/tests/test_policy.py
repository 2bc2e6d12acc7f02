"""Scopes, origin checks (14.3), CORS preflights and the per-replica state."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from bos_common.auth import Identity
from bos_common.errors import PermissionDenied, ServiceUnavailable
from gateway.origins import OriginPolicy
from gateway.policy import CROSS_ORIGIN_KEY, CorsMiddleware, check_access, client_ip, is_same_origin
from gateway.routing import scope_allows
from gateway.state import AuthState

SESSION = Identity(
    principal_type="session",
    principal_id="sess_1",
    org_id="org_1",
    external_user_id="u1",
    scope="session",
)
PORTAL = Identity(
    principal_type="portal",
    principal_id="ps_1",
    org_id="org_1",
    customer_id="cus_1",
    scope="portal",
)
API_KEY = Identity(principal_type="api_key", principal_id="key_1", org_id="org_1")


def state_with(origins: dict[str, list[str]]) -> AuthState:
    state = AuthState()
    state.load(
        {
            "revoked_tokens": [],
            "organizations": [
                {"id": org, "version": 1, "allowed_origins": o, "rate_limits": {}}
                for org, o in origins.items()
            ],
        }
    )
    return state


STATE = state_with({"org_1": ["https://shop.one.test"], "org_2": ["https://shop.two.test"]})


class FakeOwner:
    """The tokens service's organizations, as `GET /internal/gateway/organizations`."""

    def __init__(self, orgs: dict[str, list[str]] | None = None, *, down: bool = False) -> None:
        self.orgs = {org: (1, origins) for org, origins in (orgs or {}).items()}
        self.down = down
        self.calls: list[str] = []

    def set(self, org: str, origins: list[str]) -> None:
        version = self.orgs.get(org, (0, []))[0] + 1
        self.orgs[org] = (version, origins)

    async def __call__(self, origin: str) -> list[dict[str, object]]:
        self.calls.append(origin)
        await asyncio.sleep(0.01)  # concurrent confirmations overlap
        if self.down:
            raise ServiceUnavailable("dependency_unavailable", "down")
        return [
            {"id": org, "version": v, "allowed_origins": o, "rate_limits": {}}
            for org, (v, o) in self.orgs.items()
            if origin in o
        ]


def policy(state: AuthState = STATE, owner: FakeOwner | None = None) -> OriginPolicy:
    return OriginPolicy(state, owner or FakeOwner())


POLICY = policy()


# --- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "method", "path", "allowed"),
    [
        ("session", "POST", "/v1/checkout-sessions", True),
        ("session", "POST", "/v1/checkout-sessions/cs_1/confirm", True),
        ("session", "GET", "/v1/products", True),
        ("session", "GET", "/v1/prices/price_1", True),
        ("session", "POST", "/v1/products", False),
        ("session", "DELETE", "/v1/prices/price_1", False),
        ("session", "POST", "/v1/session-tokens", False),
        ("session", "GET", "/v1/api-keys", False),
        ("session", "GET", "/v1/portal/subscriptions", False),
        ("session", "GET", "/v1/subscriptions", False),
        ("session", "POST", "/admin/organizations", False),
        ("session", "GET", "/checkout/cs_1", True),
        ("portal", "GET", "/v1/portal/subscriptions", True),
        ("portal", "POST", "/v1/portal/subscriptions/sub_1/cancel", True),
        ("portal", "GET", "/portal", True),
        ("portal", "POST", "/v1/checkout-sessions", False),
        ("portal", "GET", "/v1/subscriptions", False),
        ("portal", "GET", "/v1/products", False),
        ("other", "GET", "/v1/products", False),
    ],
)
def test_browser_credentials_reach_only_their_scope(
    scope: str, method: str, path: str, allowed: bool
) -> None:
    assert scope_allows(scope, method, path) is allowed


async def test_out_of_scope_is_403() -> None:
    with pytest.raises(PermissionDenied) as caught:
        await check_access(PORTAL, "POST", "/v1/checkout-sessions", None, POLICY)
    assert caught.value.status_code == 403
    await check_access(API_KEY, "POST", "/v1/session-tokens", None, POLICY)  # keys: no scope


# --- 14.3 origins ---------------------------------------------------------------------------


async def test_14_3_session_token_from_a_foreign_origin_is_403_origin_not_allowed() -> None:
    for origin in (
        "https://evil.test",
        "https://shop.two.test",
        "null",
        "https://shop.one.test.evil.test",
        "http://shop.one.test",
    ):
        with pytest.raises(PermissionDenied) as caught:
            await check_access(SESSION, "POST", "/v1/checkout-sessions", origin, POLICY)
        assert (caught.value.code, caught.value.message) == (
            "origin_not_allowed",
            "Origin not allowed",
        )


async def test_14_3_own_origin_and_same_origin_pass_and_api_keys_need_no_origin() -> None:
    await check_access(SESSION, "POST", "/v1/checkout-sessions", "https://shop.one.test", POLICY)
    await check_access(SESSION, "POST", "/v1/checkout-sessions", None, POLICY)  # same origin
    await check_access(API_KEY, "POST", "/v1/products", "https://evil.test", POLICY)


# --- rule 7: a refusal is confirmed with the owner ------------------------------------------


async def test_an_origin_the_copy_does_not_know_yet_is_confirmed_with_the_owner() -> None:
    owner = FakeOwner({"org_new": ["https://new.test"]})
    origins = policy(AuthState(), owner)
    new_session = SESSION.model_copy(update={"org_id": "org_new"})
    await check_access(new_session, "POST", "/v1/checkout-sessions", "https://new.test", origins)
    assert owner.calls == ["https://new.test"]
    # The answer is now in the copy: the next request asks nobody.
    await check_access(new_session, "GET", "/v1/products", "https://new.test", origins)
    assert origins.known("https://new.test", None)
    assert owner.calls == ["https://new.test"]


async def test_concurrent_refusals_share_one_call_and_stand_until_an_organization_changes() -> None:
    owner = FakeOwner({"org_1": ["https://shop.one.test"]})
    origins = policy(state_with({"org_1": ["https://shop.one.test"]}), owner)
    forged = [
        check_access(SESSION, "POST", "/v1/checkout-sessions", "https://evil.test", origins)
        for _ in range(20)
    ]
    results = await asyncio.gather(*forged, return_exceptions=True)
    assert all(isinstance(r, PermissionDenied) for r in results)
    assert owner.calls == ["https://evil.test"]
    with pytest.raises(PermissionDenied):
        await check_access(SESSION, "GET", "/v1/products", "https://evil.test", origins)
    assert len(owner.calls) == 1  # confirmed a moment ago
    owner.set("org_1", ["https://shop.one.test", "https://evil.test"])
    origins.forget_confirmations()  # what organization.updated.v1 does
    await check_access(SESSION, "GET", "/v1/products", "https://evil.test", origins)
    assert len(owner.calls) == 2


async def test_a_refusal_the_owner_cannot_confirm_is_a_503_not_a_403() -> None:
    origins = policy(AuthState(), FakeOwner(down=True))
    with pytest.raises(ServiceUnavailable):
        await check_access(SESSION, "GET", "/v1/products", "https://shop.one.test", origins)


def test_same_origin_compares_the_authority_with_host() -> None:
    assert is_same_origin("https://bos.example.com", "bos.example.com")
    assert is_same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not is_same_origin("http://127.0.0.1:8081", "127.0.0.1:8080")
    assert not is_same_origin("null", "bos.example.com")
    assert not is_same_origin("https://bos.example.com", None)


def test_client_ip_honours_only_trusted_proxies() -> None:
    assert client_ip("10.0.0.1", "1.1.1.1, 2.2.2.2", 0) == "10.0.0.1"
    assert client_ip("10.0.0.1", "1.1.1.1, 2.2.2.2", 1) == "2.2.2.2"
    assert client_ip("10.0.0.1", "9.9.9.9, 1.1.1.1, 2.2.2.2", 2) == "1.1.1.1"
    assert client_ip("10.0.0.1", "2.2.2.2", 3) == "10.0.0.1"
    assert client_ip("10.0.0.1", None, 1) == "10.0.0.1"


# --- CORS -----------------------------------------------------------------------------------


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = (scope.get(CROSS_ORIGIN_KEY) or "-").encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def client(origins: OriginPolicy = POLICY) -> httpx.AsyncClient:
    app = CorsMiddleware(echo, origins=origins)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bos.test")


async def test_14_3_preflight_is_answered_only_for_allowed_origins() -> None:
    async with client() as c:
        ok = await c.options(
            "/v1/checkout-sessions",
            headers={
                "Origin": "https://shop.two.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == "https://shop.two.test"
        assert "authorization" in ok.headers["access-control-allow-headers"]
        assert "POST" in ok.headers["access-control-allow-methods"]
        refused = await c.options(
            "/v1/checkout-sessions",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "origin_not_allowed"
        assert "access-control-allow-origin" not in refused.headers


async def test_cors_headers_only_for_allowed_origins_and_foreign_origin_is_marked() -> None:
    async with client() as c:
        allowed = await c.get("/v1/products", headers={"Origin": "https://shop.one.test"})
        assert allowed.headers["access-control-allow-origin"] == "https://shop.one.test"
        assert "x-request-id" in allowed.headers["access-control-expose-headers"]
        assert allowed.text == "https://shop.one.test"  # cross-origin: checked per org later
        foreign = await c.get("/v1/products", headers={"Origin": "https://evil.test"})
        assert "access-control-allow-origin" not in foreign.headers
        assert foreign.text == "https://evil.test"
        same = await c.get("/v1/products", headers={"Origin": "http://bos.test"})
        assert same.text == "-"  # the gateway's own pages
        plain = await c.get("/v1/products")
        assert plain.text == "-" and "access-control-allow-origin" not in plain.headers


async def test_preflight_and_cors_headers_for_an_organization_the_copy_does_not_know_yet() -> None:
    owner = FakeOwner({"org_new": ["https://new.test"]})
    preflight = {"Origin": "https://new.test", "Access-Control-Request-Method": "POST"}
    async with client(policy(AuthState(), owner)) as c:
        ok = await c.options("/v1/checkout-sessions", headers=preflight)
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == "https://new.test"
    async with client(policy(AuthState(), owner)) as c:
        r = await c.get("/v1/products", headers={"Origin": "https://new.test"})
        assert r.headers["access-control-allow-origin"] == "https://new.test"
    async with client(policy(AuthState(), FakeOwner(down=True))) as c:
        down = await c.options("/v1/checkout-sessions", headers=preflight)
        assert down.status_code == 503 and "retry-after" in down.headers
        assert down.json()["error"]["type"] == "service_unavailable"


# --- state ----------------------------------------------------------------------------------


def test_org_settings_apply_by_version_and_the_origin_union_follows() -> None:
    state = state_with({"org_1": ["https://a.test"]})
    assert not state.apply_org("org_1", 1, ["https://stale.test"], {})
    assert state.apply_org("org_1", 2, ["https://b.test"], {"session": "10/minute"})
    assert state.org("org_1").allowed_origins == {"https://b.test"}
    assert state.all_origins == {"https://b.test"}
    assert not state.apply_org("org_1", 2, ["https://c.test"], {})
    state.load(
        {
            "revoked_tokens": [],
            "organizations": [
                {
                    "id": "org_1",
                    "version": 1,
                    "allowed_origins": ["https://old.test"],
                    "rate_limits": {},
                }
            ],
        }
    )
    assert state.org("org_1").allowed_origins == {"https://b.test"}  # snapshot older: kept
    assert state.org("org_unknown").allowed_origins == frozenset()


def test_revocations_are_merged_never_dropped_until_they_expire() -> None:
    state = AuthState()
    state.revoke("sess_event", time.time() + 60)
    state.load(
        {
            "revoked_tokens": [
                {"id": "sess_snap", "expires_at": "2999-01-01T00:00:00Z"},
                {"id": "sess_gone", "expires_at": "2000-01-01T00:00:00+00:00"},
            ],
            "organizations": [],
        }
    )
    assert state.loaded
    assert state.is_revoked("sess_event") and state.is_revoked("sess_snap")
    assert not state.is_revoked("sess_gone")  # expired: refused as expired anyway
    assert state.prune(now=time.time() + 120) == 1 and not state.is_revoked("sess_event")
