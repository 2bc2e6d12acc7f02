"""The delivery worker's claim against real Postgres: replicas claiming at the same time
get disjoint deliveries (endpoints locked with SKIP LOCKED, deliveries leased), an
endpoint's deliveries in flight stay within its bound across claimers, a claim leases only
what it returns, a disabled endpoint's deliveries wait, and the consumer's planning writes one
delivery per subscribed endpoint."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bos_common.db import Database
from bos_common.events import Envelope, SubscriptionCanceledV1
from bos_common.ids import new_id
from bos_common.testing import Infra, migrate
from webhooks.endpoints import repository, service
from webhooks.endpoints.models import webhook_deliveries, webhook_events
from webhooks.endpoints.rows import ClaimedDelivery

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(infra: Infra) -> Database:
    await migrate(infra.database_url, "webhooks")
    database = Database(infra.database_url, "webhooks", pool_size=4)
    yield database  # type: ignore[misc]
    await database.dispose()


async def _endpoint(db: Database, org: str, event_types: list[str] | None = None) -> str:
    async with db.transaction() as s:
        row = await repository.insert_endpoint(
            s,
            id=new_id(service.ENDPOINT_PREFIX),
            org_id=org,
            url="http://127.0.0.1:9/",
            event_types=event_types or [],
            description=None,
            secret=service.new_secret(),
        )
    return row.id


def _canceled(org: str) -> Envelope:
    now = datetime.now(UTC)
    event = SubscriptionCanceledV1(
        subscription_id=f"sub_{uuid.uuid4().hex[:12]}",
        customer_id="cus_1",
        product_id="prod_1",
        reason="requested",
        at_period_end=False,
        canceled_at=now,
        ends_at=now,
    )
    return Envelope.wrap(event, producer="subscriptions", org_id=org)


async def test_planning_writes_one_delivery_per_subscribed_endpoint(db: Database) -> None:
    org = f"org_{uuid.uuid4().hex[:10]}"
    every = await _endpoint(db, org)
    canceled_only = await _endpoint(db, org, ["subscription.canceled"])
    await _endpoint(db, org, ["invoice.paid"])  # not subscribed to it
    await _endpoint(db, f"org_{uuid.uuid4().hex[:10]}")  # another organization
    envelope = _canceled(org)
    async with db.transaction() as s:
        assert await service.plan_deliveries(s, [envelope]) == 2
    async with db.transaction() as s:
        rows = (
            await s.execute(
                select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.event_type)
                .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id)
                .where(webhook_events.c.source_event_id == envelope.event_id)
            )
        ).all()
    assert sorted(rows) == sorted(
        [(every, "subscription.canceled"), (canceled_only, "subscription.canceled")]
    )


async def _finish(db: Database, rows: list[ClaimedDelivery]) -> None:
    """Record these attempts as successes (they are no longer in flight)."""
    async with db.transaction() as s:
        await repository.record_successes(s, [(r.id, 200, 5) for r in rows])


async def test_concurrent_claims_are_disjoint_and_bounded_per_endpoint_in_flight(
    db: Database,
) -> None:
    org = f"org_{uuid.uuid4().hex[:10]}"
    endpoints = [await _endpoint(db, org) for _ in range(3)]
    disabled = await _endpoint(db, org)
    async with db.transaction() as s:
        assert await service.plan_deliveries(s, [_canceled(org) for _ in range(6)]) == 24
    # Disabled after its deliveries were planned: they wait.
    async with db.transaction() as s:
        await repository.update_endpoint(s, org, disabled, {"status": "disabled"})

    async def claim() -> list[dict[str, object]]:
        async with db.transaction() as s:
            return await repository.claim_due(s, limit=100, per_endpoint=2, busy=[], lease=60)

    claimed: list[dict[str, object]] = []
    for _ in range(10):
        # Two replicas claiming at once, then claiming again before any attempt ended:
        # never more than 2 in flight per endpoint between them.
        first, second = await asyncio.gather(claim(), claim())
        third = await claim()
        in_flight = Counter(r.endpoint_id for r in first + second + third)
        assert all(n <= 2 for n in in_flight.values()), in_flight
        claimed += first + second + third
        if not first and not second and not third:
            break
        await _finish(db, first + second + third)
    ids = [r.id for r in claimed]
    assert len(ids) == len(set(ids)) == 18  # the disabled endpoint's 6 wait
    assert {r.endpoint_id for r in claimed} == set(endpoints)
    async with db.transaction() as s:
        waiting = await s.scalar(
            select(func.count()).where(
                webhook_deliveries.c.endpoint_id == disabled,
                webhook_deliveries.c.status == "pending",
            )
        )
    assert waiting == 6


async def test_a_claim_leases_no_more_than_it_returns(db: Database) -> None:
    org = f"org_{uuid.uuid4().hex[:10]}"
    endpoint = await _endpoint(db, org)
    async with db.transaction() as s:
        await service.plan_deliveries(s, [_canceled(org) for _ in range(6)])
    async with db.transaction() as s:
        one = await repository.claim_due(s, limit=1, per_endpoint=5, busy=[], lease=60)
    assert len(one) == 1
    # The other five are still due: four fit beside the one in flight.
    async with db.transaction() as s:
        more = await repository.claim_due(s, limit=10, per_endpoint=5, busy=[], lease=60)
    assert len(more) == 4 and {r.endpoint_id for r in more} == {endpoint}
    # A lease that ended (a crashed attempt) is due again and no longer counts.
    async with db.transaction() as s:
        await s.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id == one[0].id)
            .values(next_attempt_at=func.now(), leased_until=func.now())
        )
    async with db.transaction() as s:
        again = await repository.claim_due(s, limit=10, per_endpoint=5, busy=[], lease=60)
    # Four in flight, room for one: the ended lease does not count (else room for none).
    assert len(again) == 1


async def test_a_busy_endpoint_is_skipped(db: Database) -> None:
    org = f"org_{uuid.uuid4().hex[:10]}"
    busy, free = await _endpoint(db, org), await _endpoint(db, org)
    async with db.transaction() as s:
        await service.plan_deliveries(s, [_canceled(org)])
    async with db.transaction() as s:
        rows = await repository.claim_due(s, limit=10, per_endpoint=5, busy=[busy], lease=60)
    assert {r.endpoint_id for r in rows} == {free}


async def test_migrations_match_models(infra: Infra, db: Database) -> None:
    """Migration 0003 builds exactly the tables endpoints/models.py declares (and the
    earlier ones theirs)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    from webhooks.models import metadata

    engine = create_async_engine(infra.database_url)

    def diff(conn: object) -> list[object]:
        def include(name: str | None, type_: str, parent: object) -> bool:
            if type_ == "schema":
                return name == "webhooks"
            return not (type_ == "table" and name == "alembic_version")

        ctx = MigrationContext.configure(
            conn,  # type: ignore[arg-type]
            opts={
                "compare_type": True,
                "include_schemas": True,
                "target_metadata": metadata,
                "include_name": include,
            },
        )
        return list(compare_metadata(ctx, metadata))

    try:
        async with engine.connect() as conn:
            changes = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == [], changes
