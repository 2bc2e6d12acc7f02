"""Public catalog API against real Postgres: plan 2.1-2.8 (catalog side), products,
prices, coupons, listing and org isolation. The gateway's job (authenticating and
signing the identity) is done by the tests with the shared test secret."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bos_common.events import PriceSnapshot
from catalog.schemas import CouponOut, PriceOut, ProductOut, SnapshotOut

pytestmark = pytest.mark.integration


def error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"]
    return body["error"]


# --- 2.x: product and pricing selection (what checkout gets from the catalog) ---------------


async def test_2_1_basic_product_with_a_monthly_price_of_5000_usd(merchant: Any) -> None:
    product = await merchant.product(
        name="Basic", features=["reports", "export"], description="The basic plan"
    )
    price = await merchant.price(product["id"], amount=5000, currency="usd")
    ProductOut.model_validate(product)
    PriceOut.model_validate(price)
    assert price["amount"] == 5000 and price["currency"] == "usd"
    assert price["type"] == "recurring" and price["interval"] == "month"
    assert price["id"].startswith("price_") and product["id"].startswith("prod_")

    r = await merchant.snapshot(price["id"])
    assert r.status_code == 200, r.text
    body = SnapshotOut.model_validate(r.json())
    assert body.available and body.reason is None
    snap = PriceSnapshot.model_validate(r.json()["snapshot"])
    assert snap == PriceSnapshot(
        price_id=price["id"],
        product_id=product["id"],
        product_name="Basic",
        amount=5000,
        currency="usd",
        type="recurring",
        interval="month",
        trial_days=0,
        setup_fee=0,
        features=["reports", "export"],
    )
    assert body.product.description == "The basic plan"


async def test_2_2_free_product_price_is_free(merchant: Any) -> None:
    product = await merchant.product(name="Free")
    price = await merchant.price(product["id"], amount=0)
    assert price["is_free"] is True and price["amount"] == 0
    snap = (await merchant.snapshot(price["id"])).json()["snapshot"]
    assert snap["amount"] == 0 and snap["setup_fee"] == 0
    with_fee = await merchant.price(product["id"], amount=0, setup_fee=500)
    assert with_fee["is_free"] is False


async def test_2_3_trial_product_price_carries_its_trial_days(merchant: Any) -> None:
    product = await merchant.product(name="Pro")
    price = await merchant.price(product["id"], amount=9900, trial_days=14)
    assert price["trial_days"] == 14
    assert (await merchant.snapshot(price["id"])).json()["snapshot"]["trial_days"] == 14


async def test_2_3_trial_days_only_on_recurring_prices(merchant: Any) -> None:
    product = await merchant.product()
    r = await merchant.post(
        "/v1/prices",
        {
            "product_id": product["id"],
            "amount": 100,
            "currency": "usd",
            "type": "one_time",
            "trial_days": 7,
        },
    )
    assert r.status_code == 422
    assert error(r)["param"] == "trial_days"


async def test_2_4_annual_price_shows_monthly_equivalent_and_savings(merchant: Any) -> None:
    product = await merchant.product(name="Team")
    monthly = await merchant.price(product["id"], amount=5000, interval="month")
    annual = await merchant.price(product["id"], amount=50000, interval="year")
    assert annual["amount"] == 50000 and annual["interval"] == "year"
    assert annual["monthly_equivalent"] == 4167
    assert annual["savings"] == {
        "amount": 10000,
        "percent": 16.67,
        "compared_to_price_id": monthly["id"],
    }
    assert monthly["monthly_equivalent"] == 5000 and monthly["savings"] is None

    again = (await merchant.get(f"/v1/prices/{annual['id']}")).json()
    assert again == annual
    snap = (await merchant.snapshot(annual["id"])).json()
    assert snap["snapshot"]["amount"] == 50000 and snap["snapshot"]["interval"] == "year"
    assert snap["monthly_equivalent"] == 4167 and snap["savings"]["amount"] == 10000

    # Another currency's monthly price is no comparison; a deleted monthly price neither.
    eur_annual = await merchant.price(product["id"], amount=40000, currency="eur", interval="year")
    assert eur_annual["savings"] is None
    await merchant.delete(f"/v1/prices/{monthly['id']}")
    assert (await merchant.get(f"/v1/prices/{annual['id']}")).json()["savings"] is None


async def test_2_4_annual_only_product_has_no_savings(merchant: Any) -> None:
    product = await merchant.product(name="Enterprise")
    annual = await merchant.price(product["id"], amount=29900, interval="year")
    assert annual["savings"] is None and annual["monthly_equivalent"] == 2492


async def test_2_5_archived_product_is_not_available(merchant: Any) -> None:
    product = await merchant.product(name="Old")
    price = await merchant.price(product["id"])
    r = await merchant.post(f"/v1/products/{product['id']}/archive")
    assert r.status_code == 200 and r.json()["active"] is False
    archived_at = r.json()["archived_at"]
    assert archived_at

    r = await merchant.snapshot(price["id"])
    assert r.status_code == 400
    e = error(r)
    assert (e["type"], e["code"], e["message"]) == (
        "invalid_request",
        "product_not_available",
        "Product not available",
    )
    # For renewals of existing subscriptions the snapshot is still there on request.
    r = await merchant.snapshot(price["id"], include_unavailable="true")
    assert r.status_code == 200
    assert r.json()["available"] is False and r.json()["reason"] == "product_not_available"

    # Still readable by id, gone from active listings, archiving again changes nothing.
    assert (await merchant.get(f"/v1/products/{product['id']}")).json()["active"] is False
    listed = (await merchant.get("/v1/products", params={"active": "true"})).json()["data"]
    assert product["id"] not in [p["id"] for p in listed]
    again = await merchant.post(f"/v1/products/{product['id']}/archive")
    assert again.json()["archived_at"] == archived_at
    # No new price on an archived product.
    r = await merchant.post(
        "/v1/prices",
        {"product_id": product["id"], "amount": 1, "currency": "usd", "type": "one_time"},
    )
    assert r.status_code == 400 and error(r)["code"] == "product_not_available"


async def test_2_6_invisible_product_is_accessible_by_id(merchant: Any) -> None:
    product = await merchant.product(name="Hidden", visible=False)
    visible = await merchant.product(name="Shown")
    price = await merchant.price(product["id"])
    assert product["visible"] is False

    # API access by id: merchant and browser alike; checkout can sell it.
    assert (await merchant.get(f"/v1/products/{product['id']}")).status_code == 200
    r = await merchant.get(f"/v1/products/{product['id']}", headers=merchant.session_headers())
    assert r.status_code == 200 and r.json()["visible"] is False
    assert (await merchant.snapshot(price["id"])).status_code == 200
    r = await merchant.get(f"/v1/prices/{price['id']}", headers=merchant.session_headers())
    assert r.status_code == 200

    # Visibility only affects listings for browsers.
    browser = (await merchant.get("/v1/products", headers=merchant.session_headers())).json()
    assert [p["id"] for p in browser["data"]] == [visible["id"]]
    hidden_for_browser = await merchant.get(
        "/v1/products", params={"visible": "false"}, headers=merchant.session_headers()
    )
    assert hidden_for_browser.json()["data"] == []
    api = (await merchant.get("/v1/products")).json()["data"]
    assert {p["id"] for p in api} == {product["id"], visible["id"]}
    only_hidden = (await merchant.get("/v1/products", params={"visible": "false"})).json()
    assert [p["id"] for p in only_hidden["data"]] == [product["id"]]


async def test_2_7_another_organizations_product_is_not_found(
    merchant_factory: Callable[[], Any],
) -> None:
    a, b = merchant_factory(), merchant_factory()
    product = await a.product(name="A's")
    price = await a.price(product["id"])
    await a.coupon(code="AONLY", percent_off=10)

    for r in (
        await b.get(f"/v1/products/{product['id']}"),
        await b.patch(f"/v1/products/{product['id']}", {"name": "stolen"}),
        await b.post(f"/v1/products/{product['id']}/archive"),
        await b.snapshot(price["id"]),
        await b.post(
            "/v1/prices",
            {"product_id": product["id"], "amount": 1, "currency": "usd", "type": "one_time"},
        ),
    ):
        assert r.status_code == 404, r.text
        e = error(r)
        assert (e["type"], e["code"], e["message"]) == (
            "not_found",
            "product_not_found",
            "Product not found",
        )
    for r in (
        await b.get(f"/v1/prices/{price['id']}"),
        await b.delete(f"/v1/prices/{price['id']}"),
        await b.get("/v1/coupons/AONLY"),
    ):
        assert r.status_code == 404
    r = await b.evaluate(code="AONLY", product_id=product["id"], amount=5000)
    assert r.status_code == 400 and error(r)["code"] == "invalid_coupon"
    assert (await b.get("/v1/products")).json()["data"] == []
    assert (await b.get("/v1/prices", params={"product_id": product["id"]})).json()["data"] == []
    # Nothing changed on A's side.
    assert (await a.get(f"/v1/products/{product['id']}")).json()["name"] == "A's"
    assert (await a.get(f"/v1/prices/{price['id']}")).json()["active"] is True
    # Unknown ids look exactly the same as other orgs' ids.
    r = await b.snapshot("price_doesnotexist000000")
    assert r.status_code == 404 and error(r)["code"] == "product_not_found"


async def test_2_8_deleted_price_is_not_available(merchant: Any) -> None:
    product = await merchant.product()
    price = await merchant.price(product["id"])
    r = await merchant.delete(f"/v1/prices/{price['id']}")
    assert r.status_code == 200
    assert r.json()["active"] is False and r.json()["deleted_at"]

    r = await merchant.snapshot(price["id"])
    assert r.status_code == 400
    e = error(r)
    assert (e["code"], e["message"]) == ("price_not_available", "Price not available")
    # Still readable; deleting twice is harmless; the product stays active.
    assert (await merchant.get(f"/v1/prices/{price['id']}")).json()["active"] is False
    assert (await merchant.delete(f"/v1/prices/{price['id']}")).status_code == 200
    assert (await merchant.get(f"/v1/products/{product['id']}")).json()["active"] is True
    active = await merchant.get(
        "/v1/prices", params={"product_id": product["id"], "active": "true"}
    )
    assert active.json()["data"] == []


async def test_archived_product_wins_over_deleted_price(merchant: Any) -> None:
    product = await merchant.product()
    price = await merchant.price(product["id"])
    await merchant.delete(f"/v1/prices/{price['id']}")
    await merchant.post(f"/v1/products/{product['id']}/archive")
    assert error(await merchant.snapshot(price["id"]))["code"] == "product_not_available"


# --- products ----------------------------------------------------------------------------------


async def test_product_fields_and_update(merchant: Any) -> None:
    product = await merchant.product(
        name="  Pro  ", description="d", features=["a", "b"], metadata={"tier": "2"}
    )
    assert product["name"] == "Pro" and product["metadata"] == {"tier": "2"}
    assert product["active"] is True and product["archived_at"] is None
    assert product["created_at"].endswith("Z")

    r = await merchant.patch(
        f"/v1/products/{product['id']}", {"name": "Pro 2", "description": None, "features": ["c"]}
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["name"], updated["description"], updated["features"]) == ("Pro 2", None, ["c"])
    assert updated["metadata"] == {"tier": "2"} and updated["visible"] is True
    assert updated["updated_at"] >= product["updated_at"]
    r = await merchant.patch(f"/v1/products/{product['id']}", {"name": None})
    assert r.status_code == 422 and error(r)["param"] == "name"
    r = await merchant.patch(f"/v1/products/{product['id']}", {})
    assert r.status_code == 200 and r.json()["name"] == "Pro 2"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "features": [1]}, "features[0]"),
        ({"name": "x", "metadata": {"k": 1}}, "metadata.k"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x" * 256}, "name"),
    ],
)
async def test_product_validation(merchant: Any, body: dict[str, Any], param: str) -> None:
    r = await merchant.post("/v1/products", body)
    assert r.status_code == 422, r.text
    e = error(r)
    assert e["type"] == "invalid_request" and e["param"] == param


async def test_writes_need_an_api_key_reads_allow_session_tokens(
    merchant: Any, http: httpx.AsyncClient
) -> None:
    r = await http.post("/v1/products", json={"name": "x"})
    assert r.status_code == 401 and error(r)["type"] == "authentication_error"
    r = await http.post(
        "/v1/products", json={"name": "x"}, headers={"x-bos-identity": "forged.value"}
    )
    assert r.status_code == 401
    r = await merchant.post("/v1/products", {"name": "x"}, headers=merchant.session_headers())
    assert r.status_code == 403 and error(r)["type"] == "permission_error"
    product = await merchant.product()
    r = await merchant.post(
        f"/v1/products/{product['id']}/archive", headers=merchant.session_headers()
    )
    assert r.status_code == 403
    r = await merchant.get("/v1/products", headers=merchant.session_headers())
    assert r.status_code == 200
    r = await merchant.get("/v1/coupons", headers=merchant.session_headers())
    assert r.status_code == 403


async def test_idempotency_key_replays_product_creation(merchant: Any) -> None:
    headers = {**merchant.headers, "Idempotency-Key": "create-once-1"}
    first = await merchant.post("/v1/products", {"name": "Once"}, headers=headers)
    second = await merchant.post("/v1/products", {"name": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true"
    assert first.content == second.content
    assert len((await merchant.get("/v1/products")).json()["data"]) == 1


# --- listing ------------------------------------------------------------------------------------


async def test_listing_is_cursor_paginated_newest_first(merchant: Any) -> None:
    created = [(await merchant.product(name=f"P{i}"))["id"] for i in range(25)]
    seen: list[str] = []
    cursor = None
    pages = []
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor:
            params["starting_after"] = cursor
        body = (await merchant.get("/v1/products", params=params)).json()
        pages.append(len(body["data"]))
        seen += [p["id"] for p in body["data"]]
        if not body["has_more"]:
            break
        cursor = body["data"][-1]["id"]
    assert pages == [10, 10, 5]
    assert seen == sorted(created, reverse=True) == list(reversed(created))
    default = (await merchant.get("/v1/products")).json()
    assert len(default["data"]) == 20 and default["has_more"] is True
    assert default["object"] == "list"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"starting_after": "price_abc"},
        {"active": "maybe"},
    ],
)
async def test_listing_rejects_bad_parameters(merchant: Any, params: dict[str, Any]) -> None:
    r = await merchant.get("/v1/products", params=params)
    assert r.status_code == 422
    assert error(r)["code"] == "parameter_invalid"


async def test_listing_filters_active_and_visible(merchant: Any) -> None:
    shown = await merchant.product(name="shown")
    hidden = await merchant.product(name="hidden", visible=False)
    gone = await merchant.product(name="gone")
    gone_hidden = await merchant.product(name="gone hidden", visible=False)
    for p in (gone, gone_hidden):
        await merchant.post(f"/v1/products/{p['id']}/archive")

    async def ids(**params: str) -> set[str]:
        return {p["id"] for p in (await merchant.get("/v1/products", params=params)).json()["data"]}

    assert await ids() == {shown["id"], hidden["id"], gone["id"], gone_hidden["id"]}
    assert await ids(active="true") == {shown["id"], hidden["id"]}
    assert await ids(active="false") == {gone["id"], gone_hidden["id"]}
    assert await ids(visible="true") == {shown["id"], gone["id"]}
    assert await ids(visible="false") == {hidden["id"], gone_hidden["id"]}
    assert await ids(active="true", visible="true") == {shown["id"]}
    assert await ids(active="false", visible="false") == {gone_hidden["id"]}


# --- prices -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": 50.5}, "amount"),
        ({"amount": "5000"}, "amount"),
        ({"currency": "xyz"}, "currency"),
        ({"type": "weekly"}, "type"),
        ({"interval": None}, "interval"),
        ({"interval": "week"}, "interval"),
        ({"type": "one_time"}, "interval"),
        ({"setup_fee": -5}, "setup_fee"),
    ],
)
async def test_price_validation(merchant: Any, body: dict[str, Any], param: str) -> None:
    product = await merchant.product()
    payload = {
        "product_id": product["id"],
        "amount": 5000,
        "currency": "usd",
        "type": "recurring",
        "interval": "month",
        **body,
    }
    r = await merchant.post("/v1/prices", payload)
    assert r.status_code == 422, r.text
    assert error(r)["param"] == param


async def test_price_currency_is_lower_case_and_one_time_prices_work(merchant: Any) -> None:
    product = await merchant.product()
    price = await merchant.price(
        product["id"], amount=2999, currency="JPY", type="one_time", interval=None
    )
    assert price["currency"] == "jpy" and price["interval"] is None
    assert price["monthly_equivalent"] is None
    snap = (await merchant.snapshot(price["id"])).json()["snapshot"]
    assert snap["type"] == "one_time" and snap["currency"] == "jpy"


async def test_prices_are_listed_by_product(merchant: Any) -> None:
    p1, p2 = await merchant.product(), await merchant.product()
    a = await merchant.price(p1["id"], amount=100)
    b = await merchant.price(p1["id"], amount=200, interval="year")
    await merchant.price(p2["id"], amount=300)
    body = (await merchant.get("/v1/prices", params={"product_id": p1["id"]})).json()
    assert [p["id"] for p in body["data"]] == [b["id"], a["id"]]
    for p in body["data"]:
        PriceOut.model_validate(p)
    # Browsers see active prices only.
    await merchant.delete(f"/v1/prices/{a['id']}")
    r = await merchant.get(
        "/v1/prices", params={"product_id": p1["id"]}, headers=merchant.session_headers()
    )
    assert [p["id"] for p in r.json()["data"]] == [b["id"]]


# --- coupons ------------------------------------------------------------------------------------


async def test_coupon_creation_and_retrieval_by_code(merchant: Any) -> None:
    product = await merchant.product()
    c = await merchant.coupon(
        code="Spring-25",
        percent_off=25,
        duration="repeating",
        duration_in_months=3,
        product_ids=[product["id"]],
        max_redemptions=100,
        new_customers_only=True,
    )
    CouponOut.model_validate(c)
    assert c["id"].startswith("coupon_") and c["percent_off"] == 25.0
    assert c["times_redeemed"] == 0 and c["valid"] is True
    for code in ("Spring-25", "SPRING-25", "spring-25"):
        r = await merchant.get(f"/v1/coupons/{code}")
        assert r.status_code == 200 and r.json() == c
    r = await merchant.get("/v1/coupons/Spring-25", headers=merchant.session_headers())
    assert r.status_code == 200
    r = await merchant.get("/v1/coupons/NOPE")
    assert r.status_code == 404 and error(r)["code"] == "coupon_not_found"
    listed = (await merchant.get("/v1/coupons")).json()["data"]
    assert [x["id"] for x in listed] == [c["id"]]


async def test_coupon_codes_are_unique_per_org_case_insensitively(
    merchant_factory: Callable[[], Any],
) -> None:
    a, b = merchant_factory(), merchant_factory()
    await a.coupon(code="SAVE10", amount_off=1000, currency="usd")
    r = await a.post("/v1/coupons", {"code": "save10", "percent_off": 5})
    assert r.status_code == 409 and error(r)["code"] == "coupon_code_taken"
    await b.coupon(code="SAVE10", percent_off=5)  # another org: its own code


async def test_concurrent_creation_of_one_code_has_one_winner(merchant: Any) -> None:
    results = await asyncio.gather(
        *[merchant.post("/v1/coupons", {"code": "RACE", "percent_off": 10}) for _ in range(5)]
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"percent_off": 10, "amount_off": 100, "currency": "usd"}, "amount_off"),
        ({"amount_off": 100}, "currency"),
        ({"percent_off": 10, "currency": "usd"}, "currency"),
        ({}, "percent_off"),
        ({"percent_off": 0}, "percent_off"),
        ({"percent_off": 100.5}, "percent_off"),
        ({"percent_off": 10.123}, "percent_off"),
        ({"amount_off": 0, "currency": "usd"}, "amount_off"),
        ({"percent_off": 10, "duration": "repeating"}, "duration_in_months"),
        ({"percent_off": 10, "duration_in_months": 3}, "duration_in_months"),
        ({"percent_off": 10, "max_redemptions": 0}, "max_redemptions"),
        ({"percent_off": 10, "code": "bad code!"}, "code"),
        ({"percent_off": 10, "product_ids": []}, "product_ids"),
    ],
)
async def test_coupon_validation(merchant: Any, body: dict[str, Any], param: str) -> None:
    r = await merchant.post("/v1/coupons", {"code": "C1", **body})
    assert r.status_code == 422, r.text
    assert error(r)["param"] == param


async def test_coupon_products_must_belong_to_the_org(
    merchant_factory: Callable[[], Any],
) -> None:
    a, b = merchant_factory(), merchant_factory()
    theirs = await b.product()
    r = await a.post("/v1/coupons", {"code": "X", "percent_off": 5, "product_ids": [theirs["id"]]})
    assert r.status_code == 404 and error(r)["code"] == "product_not_found"


async def test_trial_extension_only_coupon_and_expired_coupon_are_allowed(merchant: Any) -> None:
    trial = await merchant.coupon(code="TRIAL30", trial_extension_days=30)
    assert trial["percent_off"] is None and trial["amount_off"] is None
    expired = await merchant.coupon(code="OLD", percent_off=10, expires_at="2020-01-01T00:00:00Z")
    assert expired["valid"] is False and expired["expires_at"] == "2020-01-01T00:00:00Z"
