"""Fixtures of the catalog tests: a migrated catalog schema on the real Postgres of
`infra`, the app driven in-process through httpx.ASGITransport, and signed identities
(the gateway's job in production)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bos_common.app import ServiceRuntime
from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.testing import SECRET, Infra, migrate
from catalog.app import build_runtime, create_app
from catalog.settings import CatalogSettings


def identity_headers(
    org_id: str | None = "org_1",
    principal_type: str = "api_key",
    principal_id: str | None = "key_1",
    **extra: Any,
) -> dict[str, str]:
    identity = Identity(
        principal_type=principal_type,  # type: ignore[arg-type]
        principal_id=principal_id,
        org_id=org_id,
        **extra,
    )
    return {IDENTITY_HEADER: sign_identity(identity, SECRET)}


def new_org() -> str:
    return f"org_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
async def runtime(infra: Infra) -> AsyncIterator[ServiceRuntime]:
    await migrate(infra.database_url, "catalog")
    rt = build_runtime(CatalogSettings(**infra.env()))  # type: ignore[arg-type]
    yield rt
    await rt.db.dispose()


@pytest.fixture(scope="session")
async def http(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
        yield client


class Merchant:
    """One organization's API key (and helpers to act as its browser or as a service)."""

    def __init__(self, http: httpx.AsyncClient, org_id: str) -> None:
        self.http = http
        self.org_id = org_id
        self.headers = identity_headers(org_id)

    def session_headers(self) -> dict[str, str]:
        return identity_headers(self.org_id, "session", "sess_1", external_user_id="user_1")

    def service_headers(self) -> dict[str, str]:
        return identity_headers(None, "service", "checkout")

    def admin_headers(self) -> dict[str, str]:
        return identity_headers(None, "admin", "admin")

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=kw.pop("headers", self.headers), **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.post(path, json=json, headers=kw.pop("headers", self.headers), **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.patch(path, json=json, headers=kw.pop("headers", self.headers), **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.delete(path, headers=kw.pop("headers", self.headers), **kw)

    async def product(self, **body: Any) -> dict[str, Any]:
        r = await self.post("/v1/products", {"name": "Product", **body})
        assert r.status_code == 201, r.text
        return r.json()

    async def price(self, product_id: str, **body: Any) -> dict[str, Any]:
        payload = {
            "product_id": product_id,
            "amount": 5000,
            "currency": "usd",
            "type": "recurring",
            "interval": "month",
            **body,
        }
        r = await self.post("/v1/prices", payload)
        assert r.status_code == 201, r.text
        return r.json()

    async def coupon(self, **body: Any) -> dict[str, Any]:
        r = await self.post("/v1/coupons", body)
        assert r.status_code == 201, r.text
        return r.json()

    async def snapshot(self, price_id: str, **params: Any) -> httpx.Response:
        return await self.get(
            f"/internal/orgs/{self.org_id}/prices/{price_id}/snapshot",
            params=params,
            headers=self.service_headers(),
        )

    async def evaluate(self, **body: Any) -> httpx.Response:
        payload = {"currency": "usd", "customer_is_new": True, **body}
        return await self.post(
            f"/internal/orgs/{self.org_id}/coupons/evaluate",
            payload,
            headers=self.service_headers(),
        )

    async def reserve(self, **body: Any) -> httpx.Response:
        payload = {"currency": "usd", "customer_is_new": True, **body}
        return await self.post(
            f"/internal/orgs/{self.org_id}/coupons/reserve", payload, headers=self.service_headers()
        )


@pytest.fixture
def merchant_factory(http: httpx.AsyncClient) -> Callable[[], Merchant]:
    return lambda: Merchant(http, new_org())


@pytest.fixture
def merchant(merchant_factory: Callable[[], Merchant]) -> Merchant:
    return merchant_factory()
