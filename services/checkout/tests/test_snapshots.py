"""The price snapshot cache of checkout creation (checkout.snapshots): what it may serve,
for how long, and what drops it (plan 2.5 archived product, 2.8 deleted price)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from bos_common.errors import InvalidRequest
from bos_common.events import Envelope, PriceDeletedV1, PriceSnapshot, ProductUpdatedV1
from checkout.snapshots import SnapshotCache
from checkout.testing import price_snapshot


def snapshot(price_id: str = "price_1", product_id: str = "prod_1") -> PriceSnapshot:
    return price_snapshot(price_id=price_id, product_id=product_id, amount=2900)


class Catalog:
    """A stand-in for catalog's snapshot endpoint: counts calls, can be slowed or made
    to refuse (archived product)."""

    def __init__(self) -> None:
        self.calls = 0
        self.refuse = False
        self.gate: asyncio.Event | None = None
        self.product_of: dict[str, str] = {}

    async def fetch(self, org_id: str, price_id: str) -> PriceSnapshot:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse:
            raise InvalidRequest("product_not_available", "Product not available")
        return snapshot(price_id, self.product_of.get(price_id, "prod_1"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def product_updated(product_id: str = "prod_1", org_id: str = "org_1") -> Envelope:
    return Envelope.wrap(
        ProductUpdatedV1(
            product_id=product_id,
            name="Pro",
            visible=True,
            active=False,
            updated_at=datetime.now(UTC),
        ),
        producer="catalog",
        org_id=org_id,
    )


def price_deleted(price_id: str = "price_1", org_id: str = "org_1") -> Envelope:
    return Envelope.wrap(
        PriceDeletedV1(price_id=price_id, product_id="prod_1", deleted_at=datetime.now(UTC)),
        producer="catalog",
        org_id=org_id,
    )


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(catalog: Catalog, clock: Clock) -> SnapshotCache:
    return SnapshotCache(catalog.fetch, ttl=5.0, clock=clock)


async def test_a_snapshot_is_asked_once_then_served_locally(
    cache: SnapshotCache, catalog: Catalog
) -> None:
    for _ in range(20):
        assert (await cache.get("org_1", "price_1")).price_id == "price_1"
    assert catalog.calls == 1 and cache.hits == 19


async def test_a_snapshot_is_never_served_past_its_ttl(
    cache: SnapshotCache, catalog: Catalog, clock: Clock
) -> None:
    await cache.get("org_1", "price_1")
    clock.now += 4.9
    await cache.get("org_1", "price_1")
    assert catalog.calls == 1
    clock.now += 0.2
    await cache.get("org_1", "price_1")
    assert catalog.calls == 2


async def test_2_5_an_archived_product_is_refused_at_once_after_its_event(
    cache: SnapshotCache, catalog: Catalog
) -> None:
    await cache.get("org_1", "price_1")
    catalog.refuse = True  # catalog archived it...
    await cache.on_event(product_updated("prod_1"))  # ...and said so
    with pytest.raises(InvalidRequest):
        await cache.get("org_1", "price_1")


async def test_2_8_a_deleted_price_is_refused_at_once_after_its_event(
    cache: SnapshotCache, catalog: Catalog
) -> None:
    await cache.get("org_1", "price_1")
    catalog.refuse = True
    await cache.on_event(price_deleted("price_1"))
    with pytest.raises(InvalidRequest):
        await cache.get("org_1", "price_1")


async def test_a_product_event_drops_only_that_products_prices_of_that_org(
    cache: SnapshotCache, catalog: Catalog
) -> None:
    catalog.product_of = {"price_a": "prod_a", "price_b": "prod_b"}
    for org in ("org_1", "org_2"):
        for price in ("price_a", "price_b"):
            await cache.get(org, price)
    assert catalog.calls == 4
    await cache.on_event(product_updated("prod_a", org_id="org_1"))
    for org in ("org_1", "org_2"):
        for price in ("price_a", "price_b"):
            await cache.get(org, price)
    assert catalog.calls == 5  # only (org_1, price_a) was asked again


async def test_refusals_are_never_cached(cache: SnapshotCache, catalog: Catalog) -> None:
    catalog.refuse = True
    for _ in range(3):
        with pytest.raises(InvalidRequest):
            await cache.get("org_1", "price_1")
    assert catalog.calls == 3


async def test_a_fetch_that_raced_an_invalidation_is_not_kept(
    cache: SnapshotCache, catalog: Catalog
) -> None:
    catalog.gate = asyncio.Event()
    pending = asyncio.create_task(cache.get("org_1", "price_1"))
    await asyncio.sleep(0)
    # The archive lands while catalog's (older) answer is on its way.
    await cache.on_event(product_updated("prod_1"))
    catalog.gate.set()
    await pending
    catalog.gate = None
    catalog.refuse = True
    with pytest.raises(InvalidRequest):
        await cache.get("org_1", "price_1")


async def test_concurrent_misses_share_one_request(cache: SnapshotCache, catalog: Catalog) -> None:
    catalog.gate = asyncio.Event()
    waiting = [asyncio.create_task(cache.get("org_1", "price_1")) for _ in range(50)]
    await asyncio.sleep(0)
    catalog.gate.set()
    results = await asyncio.gather(*waiting)
    assert catalog.calls == 1 and {r.price_id for r in results} == {"price_1"}


async def test_without_the_bus_every_creation_asks_catalog_and_the_cache_restarts_empty(
    catalog: Catalog, clock: Clock
) -> None:
    connected = True
    cache = SnapshotCache(catalog.fetch, ttl=5.0, clock=clock, connected=lambda: connected)
    await cache.get("org_1", "price_1")
    connected = False  # invalidations could be missed from now on
    await cache.get("org_1", "price_1")
    await cache.get("org_1", "price_1")
    assert catalog.calls == 3
    connected = True
    await cache.get("org_1", "price_1")  # what was cached before the outage is gone
    assert catalog.calls == 4
    await cache.get("org_1", "price_1")
    assert catalog.calls == 4


async def test_the_cache_is_bounded(catalog: Catalog, clock: Clock) -> None:
    cache = SnapshotCache(catalog.fetch, ttl=5.0, clock=clock, max_entries=10)
    for n in range(25):
        await cache.get("org_1", f"price_{uuid.uuid4().hex[:6]}_{n}")
    assert len(cache._entries) == 10
