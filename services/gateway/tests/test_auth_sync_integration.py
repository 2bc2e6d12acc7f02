"""The gateway's revocation set and caches, kept current over real RabbitMQ and Postgres:
plan 1.5 (a revocation seen by the gateway within 100 ms), API-key and organization
changes, and the reload after the broker comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from bos_common.app import ServiceRuntime
from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.errors import AuthenticationError
from bos_common.testing import SECRET, Infra, eventually, migrate
from gateway.auth import Authenticator
from tokens.app import build_runtime, create_app
from tokens.settings import TokensSettings

from .test_auth import gateway_settings

pytestmark = pytest.mark.integration

SESSION_SECRETS = "k1:sync-test-secret-one-0123,k2:sync-test-secret-two-0123"
ADMIN = {IDENTITY_HEADER: sign_identity(Identity(principal_type="admin"), SECRET)}


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    server = uvicorn.Server(
        # log_config/log_level None: leave the process's logging configuration alone.
        uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_config=None, log_level=None
        )
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server), timeout=10)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


class Stack:
    def __init__(self, tokens: ServiceRuntime, http: httpx.AsyncClient, auth: Authenticator):
        self.tokens = tokens
        self.http = http
        self.auth = auth

    async def org(self) -> tuple[str, str, dict[str, str]]:
        r = await self.http.post("/admin/organizations", json={"name": "Sync"}, headers=ADMIN)
        assert r.status_code == 201, r.text
        body = r.json()
        identity = Identity(
            principal_type="api_key", principal_id=body["api_key"]["id"], org_id=body["id"]
        )
        return (
            body["id"],
            body["api_key"]["secret"],
            {IDENTITY_HEADER: sign_identity(identity, SECRET)},
        )


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    await migrate(infra.database_url, "tokens")
    tokens = build_runtime(
        TokensSettings(**infra.env(), BOS_SESSION_SECRETS=SESSION_SECRETS)  # type: ignore[arg-type]
    )
    tokens.relay.poll_interval = 0.2
    await tokens.start()
    app = create_app(tokens)
    async with serve(app) as url:
        auth = Authenticator(
            gateway_settings(
                TOKENS_URL=url,
                AMQP_URL=infra.amqp_url,
                BOS_SESSION_SECRETS=SESSION_SECRETS,
                BOS_INTERNAL_SECRET=SECRET,
            )
        )
        await auth.start()
        await eventually(lambda: _ready(auth), timeout=30)
        async with httpx.AsyncClient(base_url=url) as http:
            yield Stack(tokens, http, auth)
        await auth.stop()
    await tokens.stop()


async def _ready(auth: Authenticator) -> bool:
    return auth.state.loaded and auth.sync.bus.is_connected


async def _within(probe: Any, seconds: float) -> float:
    """Seconds until `probe()` is true (fails after `seconds`), polled every millisecond."""
    started = time.perf_counter()
    while not probe():
        if time.perf_counter() - started > seconds:
            raise AssertionError(f"not within {seconds}s")
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def mint(stack: Stack, headers: dict[str, str], user: str = "user_1") -> dict[str, Any]:
    r = await stack.http.post(
        "/v1/session-tokens", json={"external_user_id": user}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_1_5_revocation_reaches_the_gateway_within_100_ms(stack: Stack) -> None:
    _, _, headers = await stack.org()
    delays = []
    for _ in range(5):
        token = await mint(stack, headers)
        identity = await stack.auth.authenticate(f"Bearer {token['token']}", "/v1/products")
        assert identity.principal_id == token["id"]
        r = await stack.http.delete(f"/v1/session-tokens/{token['id']}", headers=headers)
        assert r.status_code == 200
        delays.append(await _within(lambda t=token: stack.auth.state.is_revoked(t["id"]), 1.0))
        with pytest.raises(AuthenticationError) as caught:
            await stack.auth.authenticate(f"Bearer {token['token']}", "/v1/products")
        assert caught.value.code == "session_invalid"
    assert max(delays) < 0.1, delays


async def test_api_key_revocation_empties_the_cache_at_once(stack: Stack) -> None:
    _, secret, headers = await stack.org()
    identity = await stack.auth.authenticate(f"Bearer {secret}", "/v1/products")
    assert secret in stack.auth.api_keys._entries
    r = await stack.http.delete(f"/v1/api-keys/{identity.principal_id}", headers=headers)
    assert r.status_code == 200
    delay = await _within(lambda: secret not in stack.auth.api_keys._entries, 1.0)
    assert delay < 0.1
    with pytest.raises(AuthenticationError) as caught:
        await stack.auth.authenticate(f"Bearer {secret}", "/v1/products")
    assert caught.value.code == "invalid_api_key"


async def test_organization_changes_reach_the_gateway(stack: Stack) -> None:
    org_id, _, headers = await stack.org()
    r = await stack.http.patch(
        "/v1/organization", headers=headers, json={"allowed_origins": ["https://shop.sync.test"]}
    )
    assert r.status_code == 200
    await _within(
        lambda: "https://shop.sync.test" in stack.auth.state.org(org_id).allowed_origins, 1.0
    )
    assert "https://shop.sync.test" in stack.auth.state.all_origins


async def test_a_revocation_during_a_broker_outage_is_picked_up_and_state_reloads(
    stack: Stack, infra: Infra
) -> None:
    _, _, headers = await stack.org()
    token = await mint(stack, headers)
    infra.rabbitmq("stop")
    try:
        await eventually(lambda: _disconnected(stack.auth), timeout=30)
        r = await stack.http.delete(f"/v1/session-tokens/{token['id']}", headers=headers)
        assert r.status_code == 200
        # No event can arrive: the snapshot, read every second while the bus is down.
        await _within(lambda: stack.auth.state.is_revoked(token["id"]), 5.0)
    finally:
        infra.rabbitmq("start")
    await eventually(lambda: _ready(stack.auth), timeout=60)
    # Back on events: the next revocation is fast again.
    other = await mint(stack, headers)
    r = await stack.http.delete(f"/v1/session-tokens/{other['id']}", headers=headers)
    assert r.status_code == 200
    await _within(lambda: stack.auth.state.is_revoked(other["id"]), 5.0)


async def _disconnected(auth: Authenticator) -> bool:
    return not auth.sync.bus.is_connected
