"""The hot reads (GET /v1/products, the price snapshot) on their plain Starlette routes:
verified identity headers remembered but never beyond their age, the same contract
(errors, OpenAPI, metrics) as every other route."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest

from bos_common import auth
from bos_common.auth import IDENTITY_HEADER, MAX_AGE_SECONDS, Identity, sign_identity
from bos_common.testing import SECRET, asgi_client, same_answer, without_fast_paths
from catalog import repository
from catalog.app import create_app
from catalog.schemas import ProductList, SnapshotOut, product_out, products_out


def _header(org_id: str, *, now: float | None = None, **extra: Any) -> dict[str, str]:
    identity = Identity(principal_type="api_key", principal_id="key_1", org_id=org_id, **extra)
    return {IDENTITY_HEADER: sign_identity(identity, SECRET, now=now)}


async def test_14_6_a_remembered_identity_header_still_ages_out(
    merchant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await merchant.product(name="P")
    headers = _header(merchant.org_id)
    assert (await merchant.get("/v1/products", headers=headers)).status_code == 200
    assert any(  # the second use skips the HMAC (bos_common.auth remembers the header)
        value == headers[IDENTITY_HEADER] for _, value in auth._VERIFIED
    )
    assert (await merchant.get("/v1/products", headers=headers)).status_code == 200

    later = time.time() + MAX_AGE_SECONDS + 5
    monkeypatch.setattr(time, "time", lambda: later)
    r = await merchant.get("/v1/products", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_identity"


async def test_14_5_a_tampered_identity_header_is_refused_even_next_to_a_remembered_one(
    merchant: Any, merchant_factory: Any
) -> None:
    headers = _header(merchant.org_id)
    assert (await merchant.get("/v1/products", headers=headers)).status_code == 200
    other = merchant_factory()
    payload, _, mac = headers[IDENTITY_HEADER].partition(".")
    forged = _header(other.org_id)[IDENTITY_HEADER].partition(".")[0] + "." + mac
    r = await merchant.get("/v1/products", headers={IDENTITY_HEADER: forged})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_identity"


async def test_2_7_the_remembered_identity_is_the_header_s_own_org(
    merchant: Any, merchant_factory: Any
) -> None:
    mine = await merchant.product(name="mine")
    other = merchant_factory()
    theirs = await other.product(name="theirs")
    for who, product in ((merchant, mine), (other, theirs), (merchant, mine)):
        body = (await who.get("/v1/products", headers=_header(who.org_id))).json()
        assert [p["id"] for p in body["data"]] == [product["id"]]


async def test_hot_routes_keep_the_documented_shapes(merchant: Any) -> None:
    product = await merchant.product(name="P", features=["a"], metadata={"k": "v"})
    price = await merchant.price(product["id"])
    listed = (await merchant.get("/v1/products")).json()
    ProductList.model_validate(listed)
    assert listed["data"][0] == product
    snapshot = await merchant.snapshot(price["id"])
    SnapshotOut.model_validate(snapshot.json())
    assert snapshot.json()["snapshot"]["features"] == ["a"]


async def test_hot_routes_answer_contract_errors(merchant: Any) -> None:
    r = await merchant.get("/v1/products", headers={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_required"
    assert r.headers["x-request-id"]
    r = await merchant.get("/v1/products", params={"limit": 0})
    assert r.status_code == 422 and r.json()["error"]["code"] == "parameter_invalid"
    r = await merchant.snapshot("price_doesnotexist")
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_not_found"
    # Other methods on the same path still reach FastAPI's routes.
    assert (await merchant.post("/v1/products", {"name": "x"})).status_code == 201
    r = await merchant.delete("/v1/products")
    assert r.status_code == 405 and "error" in r.json()


async def test_hot_routes_are_documented_and_measured(
    http: httpx.AsyncClient, merchant: Any
) -> None:
    price = await merchant.price((await merchant.product(name="P"))["id"])
    assert (await merchant.get("/v1/products")).status_code == 200
    assert (await merchant.snapshot(price["id"])).status_code == 200
    doc = (await http.get("/openapi.json")).json()
    params = {p["name"] for p in doc["paths"]["/v1/products"]["get"]["parameters"]}
    assert params == {"limit", "starting_after", "active", "visible"}
    metrics = (await http.get("/metrics")).text
    assert 'route="/v1/products"' in metrics
    assert 'route="/internal/orgs/{org_id}/prices/{price_id}/snapshot"' in metrics


async def test_listed_products_are_product_out_of_their_rows(merchant: Any, runtime: Any) -> None:
    """products_out (by column position) and product_out (by name) build the same dicts."""
    await merchant.product(name="a", features=["x"], metadata={"k": "v"})
    archived = await merchant.product(name="b", visible=False)
    await merchant.post(f"/v1/products/{archived['id']}/archive")
    async with runtime.db.driver_connection() as conn:
        rows = await repository.list_products(
            conn, merchant.org_id, limit=10, starting_after=None, active=None, visible=None
        )
    # (orjson.Fragment compares by identity: compare what is sent)
    assert orjson.dumps(products_out(rows)) == orjson.dumps([product_out(r) for r in rows])
    assert [p["active"] for p in products_out(rows)] == [False, True]


async def test_the_fast_routes_answer_as_the_documented_routes(merchant: Any, runtime: Any) -> None:
    """Parity: the same requests through the app without the fast routes (FastAPI's routes
    run the same functions) give the same statuses, headers and bodies, errors included."""
    product = await merchant.product(name="Parity")
    price = await merchant.price(product["id"])
    routed = without_fast_paths(create_app(runtime))
    service = merchant.service_headers()
    snapshot = f"/internal/orgs/{merchant.org_id}/prices"
    requests = [
        ("/v1/products", merchant.headers),
        ("/v1/products?limit=1", merchant.headers),
        ("/v1/products?limit=0", merchant.headers),
        ("/v1/products?starting_after=nope", merchant.headers),
        ("/v1/products", {}),
        (f"{snapshot}/{price['id']}/snapshot", service),
        (f"{snapshot}/{price['id']}/snapshot?include_unavailable=true", service),
        (f"{snapshot}/price_missing/snapshot", service),
        (f"{snapshot}/{price['id']}/snapshot", merchant.headers),
    ]
    async with asgi_client(routed, "http://catalog") as plain:
        for path, headers in requests:
            await same_answer(merchant.http, plain, "GET", path, request={"headers": headers})
