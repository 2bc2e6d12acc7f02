"""The gateway's authenticator without servers: session tokens verified locally, the
revocation set, API keys resolved through a fake tokens service and cached."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bos_common.errors import AuthenticationError, BOSError, ServiceUnavailable
from bos_common.session_tokens import SessionKeys
from gateway.apikeys import ApiKeyCache
from gateway.auth import Authenticator
from gateway.settings import GatewaySettings

SECRETS = "k1:first-secret-0123456789,k2:second-secret-0123456789"
API_KEY = "sk_test_" + "A" * 40
OTHER_KEY = "sk_live_" + "B" * 40


def gateway_settings(**overrides: Any) -> GatewaySettings:
    env = {
        "BOS_INTERNAL_SECRET": "test-internal-secret-0123456789",
        "BOS_ADMIN_TOKEN": "admin-token-123",
        "BOS_SESSION_SECRETS": SECRETS,
        "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
        "TOKENS_URL": "http://127.0.0.1:1",
        "CATALOG_URL": "http://127.0.0.1:1",
        "CHECKOUT_URL": "http://127.0.0.1:1",
        "SUBSCRIPTIONS_URL": "http://127.0.0.1:1",
        "WEBHOOKS_URL": "http://127.0.0.1:1",
        "LOG_JSON": "false",
    }
    env.update(overrides)
    return GatewaySettings(**env)


class FakeTokens:
    """Stands in for the tokens service's internal routes."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {
            API_KEY: {"key_id": "key_1", "org_id": "org_1", "livemode": False, "expires_at": None},
        }
        self.calls = 0
        self.down = False
        self.delay = 0.0

    async def request(
        self, method: str, path: str, *, json: Any = None, **_: Any
    ) -> tuple[int, Any]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise ServiceUnavailable("dependency_unavailable", "down")
        if path == "/internal/api-keys/resolve":
            found = self.keys.get(json["secret"])
            if found is None:
                raise BOSError("invalid_api_key", "Invalid API key provided.", status_code=401)
            return 200, found
        if path == "/internal/gateway/snapshot":
            return 200, {"revoked_tokens": [], "organizations": []}
        raise AssertionError(path)

    async def close(self) -> None:
        pass


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture
def auth(tokens: FakeTokens) -> Authenticator:
    authenticator = Authenticator(gateway_settings(), tokens=tokens)  # type: ignore[arg-type]
    authenticator.state.load({"revoked_tokens": [], "organizations": []})
    return authenticator


KEYS = SessionKeys.parse(SECRETS)


def session_token(**kw: Any) -> tuple[str, str]:
    args: dict[str, Any] = {"org": "org_1", "sub": "user_1", "scope": "session", "expires_in": 3600}
    args.update(kw)
    token, claims = KEYS.mint(**args)
    return token, claims.jti


async def expect_401(auth: Authenticator, credential: str, code: str, message: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await auth.authenticate(f"Bearer {credential}", "/v1/checkout-sessions")
    assert (caught.value.status_code, caught.value.code, caught.value.message) == (
        401,
        code,
        message,
    )


# --- session and portal tokens ------------------------------------------------------------


async def test_session_token_becomes_a_session_identity(auth: Authenticator) -> None:
    token, jti = session_token()
    identity = await auth.authenticate(f"Bearer {token}", "/v1/checkout-sessions")
    assert identity.principal_type == "session"
    assert (identity.principal_id, identity.org_id, identity.external_user_id, identity.scope) == (
        jti,
        "org_1",
        "user_1",
        "session",
    )


async def test_portal_token_becomes_a_portal_identity_bound_to_its_customer(
    auth: Authenticator,
) -> None:
    token, jti = session_token(scope="portal", sub="cus_9", cus="cus_9")
    identity = await auth.authenticate(f"Bearer {token}", "/v1/portal/subscriptions")
    assert (identity.principal_type, identity.principal_id, identity.customer_id) == (
        "portal",
        jti,
        "cus_9",
    )
    assert identity.external_user_id is None and identity.scope == "portal"


async def test_1_4_token_expired_a_minute_ago_is_401_session_expired(
    auth: Authenticator,
) -> None:
    token, _ = session_token(now=int(time.time()) - 3600 - 60)
    await expect_401(auth, token, "session_expired", "Session expired")


async def test_1_5_revoked_token_is_401_session_invalid(auth: Authenticator) -> None:
    token, jti = session_token()
    await auth.authenticate(f"Bearer {token}", "/v1/checkout-sessions")
    auth.state.revoke(jti, time.time() + 3600)
    await expect_401(auth, token, "session_invalid", "Session invalid")


async def test_14_5_tampered_token_is_401_session_invalid(auth: Authenticator) -> None:
    token, _ = session_token()
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    await expect_401(auth, tampered, "session_invalid", "Session invalid")


async def test_no_session_token_is_accepted_before_revocations_are_known(
    tokens: FakeTokens,
) -> None:
    cold = Authenticator(gateway_settings(), tokens=tokens)  # type: ignore[arg-type]
    token, _ = session_token()
    with pytest.raises(ServiceUnavailable):
        await cold.authenticate(f"Bearer {token}", "/v1/checkout-sessions")


async def test_revocation_proxied_by_this_replica_applies_at_once(auth: Authenticator) -> None:
    token, jti = session_token()
    auth.changed_here("tokens", "DELETE", f"/v1/session-tokens/{jti}", 404)
    await auth.authenticate(f"Bearer {token}", "/v1/checkout-sessions")  # not on a 404
    auth.changed_here("tokens", "DELETE", f"/v1/session-tokens/{jti}", 200)
    await expect_401(auth, token, "session_invalid", "Session invalid")


# --- API keys, the admin token, anything else ----------------------------------------------


async def test_api_key_is_resolved_once_then_cached(
    auth: Authenticator, tokens: FakeTokens
) -> None:
    for _ in range(5):
        identity = await auth.authenticate(f"Bearer {API_KEY}", "/v1/products")
        assert (identity.principal_type, identity.principal_id, identity.org_id) == (
            "api_key",
            "key_1",
            "org_1",
        )
    assert tokens.calls == 1


async def test_1_3_unknown_api_key_is_401_and_remembered_briefly(
    auth: Authenticator, tokens: FakeTokens
) -> None:
    for _ in range(3):
        await expect_401(auth, OTHER_KEY, "invalid_api_key", "Invalid API key provided.")
    assert tokens.calls == 1


async def test_1_3_expired_api_key_is_401(auth: Authenticator, tokens: FakeTokens) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    tokens.keys[API_KEY]["expires_at"] = soon.isoformat()
    await auth.authenticate(f"Bearer {API_KEY}", "/v1/products")
    auth.api_keys._entries[API_KEY].expires_at = time.time() - 1  # as if a second passed
    await expect_401(auth, API_KEY, "invalid_api_key", "Invalid API key provided.")


async def test_revoked_api_key_leaves_the_cache_at_once(
    auth: Authenticator, tokens: FakeTokens
) -> None:
    await auth.authenticate(f"Bearer {API_KEY}", "/v1/products")
    auth.api_keys.revoke("key_1")
    del tokens.keys[API_KEY]
    await expect_401(auth, API_KEY, "invalid_api_key", "Invalid API key provided.")


async def test_a_resolution_in_flight_when_the_key_is_revoked_is_not_trusted() -> None:
    release = asyncio.Event()

    async def slow_resolve(secret: str) -> dict[str, Any] | None:
        await release.wait()
        return {"key_id": "key_1", "org_id": "org_1", "expires_at": None}

    cache = ApiKeyCache(slow_resolve)
    pending = asyncio.create_task(cache.identity(API_KEY))
    await asyncio.sleep(0)
    cache.revoke("key_1")
    release.set()
    with pytest.raises(AuthenticationError):
        await pending


async def test_concurrent_misses_for_one_key_share_one_resolution(
    auth: Authenticator, tokens: FakeTokens
) -> None:
    tokens.delay = 0.05
    identities = await asyncio.gather(
        *(auth.authenticate(f"Bearer {API_KEY}", "/v1/products") for _ in range(20))
    )
    assert {i.principal_id for i in identities} == {"key_1"}
    assert tokens.calls == 1


async def test_tokens_service_down_is_503_not_401(auth: Authenticator, tokens: FakeTokens) -> None:
    tokens.down = True
    with pytest.raises(ServiceUnavailable):
        await auth.authenticate(f"Bearer {API_KEY}", "/v1/products")
    tokens.down = False
    assert (await auth.authenticate(f"Bearer {API_KEY}", "/v1/products")).org_id == "org_1"


async def test_malformed_credentials_never_reach_the_tokens_service(
    auth: Authenticator, tokens: FakeTokens
) -> None:
    for credential in ("sk_test_nope" + "x" * 300, "pk_test_123", "garbage"):
        await expect_401(auth, credential, "invalid_api_key", "Invalid API key provided.")
    assert tokens.calls == 0
    with pytest.raises(AuthenticationError) as caught:
        await auth.authenticate("Basic dXNlcjpwYXNz", "/v1/products")
    assert caught.value.code == "invalid_authorization"


async def test_admin_token_and_anonymous(auth: Authenticator) -> None:
    assert (
        await auth.authenticate("Bearer admin-token-123", "/admin/organizations")
    ).principal_type == "admin"
    assert (await auth.authenticate(None, "/v1/products")).principal_type == "anonymous"


# --- the hot path's caches ----------------------------------------------------------------


async def test_a_cached_token_still_expires_and_a_changed_one_is_verified_again(
    auth: Authenticator,
) -> None:
    token, _ = session_token(expires_in=60)
    exp = KEYS.verify(token).exp
    assert auth.session_identity(token, now=exp - 1).principal_type == "session"
    assert token in auth._verified
    with pytest.raises(AuthenticationError) as caught:
        auth.session_identity(token, now=exp)
    assert caught.value.code == "session_expired"
    with pytest.raises(AuthenticationError) as caught:
        auth.session_identity(token[:-1] + ("A" if token[-1] != "A" else "B"), now=exp - 1)
    assert caught.value.code == "session_invalid"


def test_signed_identity_is_reused_within_a_second_and_verifies() -> None:
    from bos_common.auth import ANONYMOUS, verify_identity
    from gateway.app import Gateway

    gateway = Gateway(gateway_settings())
    token, jti = session_token()
    gateway.authenticator.state.load({"revoked_tokens": [], "organizations": []})
    session = gateway.authenticator.session_identity(token)
    first = gateway.signed(session)
    assert gateway.signed(session) == first
    verified = verify_identity(first, "test-internal-secret-0123456789")
    assert verified is not None and verified.principal_id == jti
    assert gateway.signed(ANONYMOUS) != first
