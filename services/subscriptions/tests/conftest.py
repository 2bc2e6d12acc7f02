"""Fixtures of the subscriptions tests: a migrated schema, a runtime with a frozen clock,
an ASGI client and helpers that drive consumers and the scheduler in a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bos_common.events import Envelope, Event
from bos_common.testing import SECRET, Infra, migrate
from subscriptions import service, testing
from subscriptions.app import build_runtime, create_app
from subscriptions.clock import Clock
from subscriptions.runtime import SubscriptionsRuntime
from subscriptions.scheduler import drain
from subscriptions.settings import SubscriptionsSettings

T0 = datetime(2026, 1, 31, 15, 0, tzinfo=UTC)
DOMAIN_TABLES = (
    "subscriptions",
    "subscription_checkouts",
    "trial_history",
    "invoices",
    "invoice_sequences",
    "invoice_attempts",
    "notifications",
    "organizations",
    "outbox",
    "inbox",
)


@pytest.fixture(scope="session")
async def schema(infra: Infra) -> str:
    await migrate(infra.database_url, "subscriptions")
    return infra.database_url


@pytest.fixture(scope="session")
async def session_rt(infra: Infra, schema: str) -> AsyncIterator[SubscriptionsRuntime]:
    # Explicit: the stack of `make test` exports CHECKOUT_URL etc. for its own processes.
    settings = SubscriptionsSettings(**infra.env(), CHECKOUT_URL="", SMTP_URL="")
    rt = build_runtime(settings, clock=Clock(T0))
    yield rt
    await rt.db.dispose()


@pytest.fixture
async def rt(session_rt: SubscriptionsRuntime) -> SubscriptionsRuntime:
    session_rt.clock.set(T0)
    async with session_rt.db.transaction() as session:
        await session.execute(text("TRUNCATE " + ", ".join(DOMAIN_TABLES)))
    return session_rt


@pytest.fixture
async def client(rt: SubscriptionsRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://subscriptions"
    ) as c:
        yield c


class Driver:
    """Runs what the bus and the worker would, in-process and deterministically."""

    def __init__(self, rt: SubscriptionsRuntime, client: httpx.AsyncClient) -> None:
        self.rt = rt
        self.client = client
        self.org = testing.uid("org")

    @property
    def now(self) -> datetime:
        return self.rt.clock.now()

    def at(self, when: datetime) -> None:
        self.rt.clock.set(when)

    async def deliver(self, event: Event, org_id: str | None = None) -> None:
        """Run the consumer of `event` exactly as the inbox-wrapped handler would."""
        env = Envelope.wrap(event, producer="checkout", org_id=org_id or self.org)
        spec = next(s for s in self.rt.consumers if env.event_type in s.routing_keys)
        await spec.handler(env)

    async def checkout(self, price: Any = None, **kw: Any) -> dict[str, Any]:
        """Complete a checkout; returns the subscription it created."""
        kw.setdefault("completed_at", self.now)
        event = testing.checkout_completed(price or testing.price(), **kw)
        await self.deliver(event)
        created = [
            e
            for e in await self.events("subscription.created.v1")
            if e["checkout_id"] == event.checkout_id
        ]
        assert created, "no subscription.created.v1 for the checkout"
        return await self.sub(created[-1]["subscription_id"])

    async def sub(self, sub_id: str) -> dict[str, Any]:
        async with self.rt.db.transaction() as session:
            sub = await service.get_subscription(session, self.org, sub_id)
        return sub.values()  # column -> value, as the tests read it

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return await testing.published(self.rt.db, self.org, event_type)

    async def invoices_created(self, sub_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in await self.events("invoice.created.v1")
            if sub_id is None or e["subscription_id"] == sub_id
        ]

    async def run_scheduler(self) -> int:
        return await drain(self.rt)

    async def pay(self, inv: dict[str, Any]) -> None:
        await self.deliver(testing.invoice_paid(inv, paid_at=self.now))

    async def fail(self, inv: dict[str, Any], **kw: Any) -> None:
        await self.deliver(testing.invoice_failed(inv, failed_at=self.now, **kw))

    def api(self, customer_id: str | None = None) -> dict[str, str]:
        return testing.identity_headers("api_key", SECRET, org_id=self.org)

    def portal(self, customer_id: str) -> dict[str, str]:
        return testing.identity_headers(
            "portal", SECRET, org_id=self.org, customer_id=customer_id, principal_id="ps_test"
        )

    async def notifications(self, kind: str | None = None) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from subscriptions.models import notifications

        async with self.rt.db.transaction() as session:
            stmt = select(notifications).where(notifications.c.org_id == self.org)
            if kind:
                stmt = stmt.where(notifications.c.kind == kind)
            return [
                dict(r._mapping)
                for r in (await session.execute(stmt.order_by(notifications.c.created_at))).all()
            ]


@pytest.fixture
async def drv(rt: SubscriptionsRuntime, client: httpx.AsyncClient) -> Driver:
    return Driver(rt, client)
