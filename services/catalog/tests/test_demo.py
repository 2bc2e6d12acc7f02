"""Demo data: the plan's "Test Data Setup", seeded idempotently per organization."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from catalog.schemas import DemoOut

pytestmark = pytest.mark.integration


async def seed(merchant: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return await merchant.post(
        f"/internal/demo/{merchant.org_id}", headers=headers or merchant.service_headers()
    )


async def test_demo_seed_creates_the_test_data_setup(merchant: Any) -> None:
    r = await seed(merchant)
    assert r.status_code == 200, r.text
    demo = DemoOut.model_validate(r.json())
    assert demo.created is True
    assert set(demo.products) == {
        "free-product",
        "basic-product",
        "pro-product",
        "enterprise-product",
    }
    assert set(demo.coupons) == {"WELCOME20", "SAVE10", "TRIAL30", "EXPIRED"}

    async def price(key: str) -> dict[str, Any]:
        return (await merchant.get(f"/v1/prices/{demo.products[key].price_id}")).json()

    free, basic, pro, enterprise = [
        await price(k)
        for k in ("free-product", "basic-product", "pro-product", "enterprise-product")
    ]
    assert (free["amount"], free["interval"], free["is_free"]) == (0, "month", True)
    assert (basic["amount"], basic["interval"], basic["trial_days"]) == (2900, "month", 0)
    assert (pro["amount"], pro["interval"], pro["trial_days"]) == (9900, "month", 14)
    assert (enterprise["amount"], enterprise["interval"]) == (29900, "year")
    listed = (
        await merchant.get(
            "/v1/prices", params={"product_id": demo.products["enterprise-product"].product_id}
        )
    ).json()["data"]
    assert [p["interval"] for p in listed] == ["year"]  # annual only

    basic_id = demo.products["basic-product"].product_id

    async def evaluate(code: str, new: bool = True) -> httpx.Response:
        return await merchant.evaluate(
            code=code, product_id=basic_id, amount=2900, customer_is_new=new
        )

    assert (await evaluate("WELCOME20")).json()["amount_discount"] == 580
    assert (await evaluate("WELCOME20", new=False)).json()["error"]["code"] == (
        "coupon_new_customers_only"
    )
    assert (await evaluate("SAVE10", new=False)).json()["amount_total"] == 1900
    assert (await evaluate("TRIAL30")).json()["trial_extension_days"] == 30
    assert (await evaluate("EXPIRED")).json()["error"]["code"] == "coupon_expired"


async def test_demo_seed_is_idempotent_even_concurrently(merchant: Any) -> None:
    first, second = await asyncio.gather(seed(merchant), seed(merchant))
    assert first.status_code == second.status_code == 200
    third = await seed(merchant)
    bodies = [first.json(), second.json(), third.json()]
    assert sorted(b["created"] for b in bodies) == [False, False, True]
    for b in bodies:
        b.pop("created")
    assert bodies[0] == bodies[1] == bodies[2]
    products = (await merchant.get("/v1/products")).json()["data"]
    assert len(products) == 4
    assert len((await merchant.get("/v1/coupons")).json()["data"]) == 4


async def test_demo_seed_needs_a_service_or_admin(merchant: Any) -> None:
    assert (await seed(merchant, merchant.headers)).status_code == 403
    assert (await seed(merchant, merchant.session_headers())).status_code == 403
    assert (await seed(merchant, merchant.admin_headers())).status_code == 200
