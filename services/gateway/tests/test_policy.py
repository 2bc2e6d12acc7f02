"""Scopes, origin checks (14.3), CORS preflights and the per-replica state."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from bos_common.auth import Identity
from bos_common.errors import PermissionDenied
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


def test_out_of_scope_is_403() -> None:
    with pytest.raises(PermissionDenied) as caught:
        check_access(PORTAL, "POST", "/v1/checkout-sessions", None, STATE)
    assert caught.value.status_code == 403
    check_access(API_KEY, "POST", "/v1/session-tokens", None, STATE)  # keys are not scoped


# --- 14.3 origins ---------------------------------------------------------------------------


def test_14_3_session_token_from_a_foreign_origin_is_403_origin_not_allowed() -> None:
    for origin in (
        "https://evil.test",
        "https://shop.two.test",
        "null",
        "https://shop.one.test.evil.test",
        "http://shop.one.test",
    ):
        with pytest.raises(PermissionDenied) as caught:
            check_access(SESSION, "POST", "/v1/checkout-sessions", origin, STATE)
        assert (caught.value.code, caught.value.message) == (
            "origin_not_allowed",
            "Origin not allowed",
        )


def test_14_3_own_origin_and_same_origin_pass_and_api_keys_need_no_origin() -> None:
    check_access(SESSION, "POST", "/v1/checkout-sessions", "https://shop.one.test", STATE)
    check_access(SESSION, "POST", "/v1/checkout-sessions", None, STATE)  # same origin/no browser
    check_access(API_KEY, "POST", "/v1/products", "https://evil.test", STATE)


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


def client(state: AuthState = STATE) -> httpx.AsyncClient:
    app = CorsMiddleware(echo, state=state)
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
