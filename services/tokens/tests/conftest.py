"""Fixtures of the tokens tests: a migrated tokens schema on the real Postgres of `infra`,
the app driven in-process through httpx.ASGITransport, and signed identities (the
gateway's job in production)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bos_common.app import ServiceRuntime
from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.testing import SECRET, Infra, migrate
from tokens.app import build_runtime, create_app
from tokens.models import outbox
from tokens.settings import TokensSettings

SESSION_SECRETS = "k1:tokens-test-secret-one-0123,k2:tokens-test-secret-two-0123"


def identity_headers(principal_type: str, **fields: Any) -> dict[str, str]:
    identity = Identity(principal_type=principal_type, **fields)  # type: ignore[arg-type]
    return {IDENTITY_HEADER: sign_identity(identity, SECRET)}


ADMIN = identity_headers("admin", principal_id="admin")
SERVICE = identity_headers("service", principal_id="gateway")


def settings(infra: Infra, **extra: Any) -> TokensSettings:
    return TokensSettings(**infra.env(), BOS_SESSION_SECRETS=SESSION_SECRETS, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def runtime(infra: Infra) -> AsyncIterator[ServiceRuntime]:
    await migrate(infra.database_url, "tokens")
    rt = build_runtime(settings(infra))
    yield rt
    await rt.db.dispose()


@pytest.fixture(scope="session")
async def http(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tokens") as client:
        yield client
    # ASGITransport runs no lifespan: close the minting pool the app opened on first use.
    await app.state.session_token_store.close()


class Org:
    """An organization created through the admin route, acting with its first key."""

    def __init__(self, http: httpx.AsyncClient, body: dict[str, Any]) -> None:
        self.http = http
        self.body = body
        self.id: str = body["id"]
        self.key: dict[str, Any] = body["api_key"]
        self.headers = identity_headers("api_key", principal_id=self.key["id"], org_id=self.id)

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=kw.pop("headers", self.headers), **kw)

    async def session_token(self, **body: Any) -> dict[str, Any]:
        r = await self.request(
            "POST", "/v1/session-tokens", json={"external_user_id": "user_1", **body}
        )
        assert r.status_code == 201, r.text
        return r.json()


async def create_org(http: httpx.AsyncClient, **body: Any) -> Org:
    r = await http.post("/admin/organizations", json={"name": "Acme", **body}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return Org(http, r.json())


@pytest.fixture
async def org(http: httpx.AsyncClient) -> Org:
    return await create_org(http)


async def events_of(runtime: ServiceRuntime, event_type: str, org_id: str) -> list[dict[str, Any]]:
    """Envelopes this service wrote to its outbox (in the request's transaction)."""
    async with runtime.db.transaction() as session:
        rows = await session.execute(
            select(outbox.c.envelope)
            .where(outbox.c.event_type == event_type, outbox.c.org_id == org_id)
            .order_by(outbox.c.id)
        )
        return [r.envelope for r in rows]
