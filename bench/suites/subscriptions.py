"""Subscriptions scenarios (issue 8, "Benchmarks").

`subscriptions_entitlements`: `GET /v1/entitlements?customer_id=` through the gateway
(API key), each request for another customer of an organization holding ~10,000
subscriptions, beside the same request straight to the subscriptions service and the
floor. Target of the issue: p95 < 10 ms through the gateway (read from one connection);
throughput at 50 connections and CPU per request are reported beside it.

The data is made the way production makes it, minus the card payments: the prepare hook
creates an organization, an API key and products with features through the public API,
then publishes one `checkout.completed.v1` per subscription on the stack's bus (the event
checkout publishes when a checkout completes, with the catalog's price snapshot), so every
subscription is created by the subscriptions service's own consumer (inbox, outbox,
trial rules, the free -> paid upgrade that cancels a free plan). Customers hold one to
three subscriptions: paid monthly, paid yearly with a trial, and a free plan, which the
paid one ends for about half of them (5.2): the organization has active, trialing and
canceled rows, as a real one does.

The consumer creates 20-50 subscriptions a second on this shared 2-core machine (each
is a transaction with inbox, outbox and rules), so it makes the first 1,000
(BENCH_SUBSCRIPTIONS_VIA_BUS) and the rest are copies of its rows, customer by customer
under new ids, written with COPY into the service's table, then ANALYZE (as autovacuum
would after such a load): the table and its indexes look as if 10,000 had come through
checkout, in seconds instead of minutes. A full paid checkout per row (Stripe simulator,
webhooks) would take far longer still.

The scheduler benchmark of the issue (100,000 subscriptions due at once, invoiced exactly
once, >= 2,000 invoices/s) is not an HTTP load: `services/subscriptions/bench/
bench_scheduler.py` (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.fixtures import BenchOrg, create_org, create_product
from bench.scenarios import AddedLatency, MaxLatency, RpsRatio, Scenario, Target, register
from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.bus import Bus
from bos_common.db import asyncpg_dsn
from bos_common.events import CheckoutCompletedV1, Envelope, PriceSnapshot
from bos_common.ids import new_id

SUBSCRIPTIONS = int(os.environ.get("BENCH_SUBSCRIPTIONS", "10000"))
# How many of them the service's consumer creates from checkout.completed.v1; the rest are
# copies of those rows (see the module docstring).
VIA_BUS = int(os.environ.get("BENCH_SUBSCRIPTIONS_VIA_BUS", "1000"))
# Customers whose entitlements the load asks for, in rotation (a realistic spread over
# the table's pages, not one hot row).
QUERIED_CUSTOMERS = 2000
PUBLISH_IN_FLIGHT = 200
# A signed identity is trusted for 300 s (bos_common.auth.MAX_AGE_SECONDS); the direct
# target's is stamped ahead so one header stays valid through a run of several minutes.
IDENTITY_AHEAD_S = 280


# --- data ------------------------------------------------------------------------------


def _snapshot(product: dict[str, Any], price: dict[str, Any], trial_days: int = 0) -> PriceSnapshot:
    return PriceSnapshot(
        price_id=price["id"],
        product_id=product["id"],
        product_name=product["name"],
        amount=price["amount"],
        currency=price["currency"],
        type=price["type"],
        interval=price.get("interval"),
        trial_days=trial_days,
        features=list(product.get("features") or []),
    )


def _events(plans: dict[str, PriceSnapshot], n: int) -> tuple[list[CheckoutCompletedV1], list[str]]:
    """`n` checkout.completed.v1 events over customers holding 1-3 plans each (free first,
    so a later paid plan ends it); returns (events in order, customer ids)."""
    rnd = random.Random(8)
    events: list[CheckoutCompletedV1] = []
    customers: list[str] = []
    while len(events) < n:
        cus = new_id("cus")
        customers.append(cus)
        k = len(customers)
        owned = [p for p in ("free", "pro", "team") if rnd.random() < 0.6] or ["pro"]
        for plan in owned:
            snap = plans[plan]
            paid = snap.amount > 0
            events.append(
                CheckoutCompletedV1(
                    checkout_id=new_id("cs"),
                    customer_id=cus,
                    customer_email=f"bench-{k}@example.com",
                    customer_name=f"Bench Customer {k}",
                    external_user_id=f"user_{k}",
                    price=snap,
                    amount_subtotal=snap.amount,
                    amount_discount=0,
                    amount_total=0 if snap.trial_days else snap.amount,
                    is_free=not paid,
                    trial_days=snap.trial_days,
                    payment_id=new_id("pay") if paid and not snap.trial_days else None,
                    stripe_customer_id=f"cus_sim{k}" if paid else None,
                    payment_method_id=f"pm_sim{k}" if paid else None,
                    card_fingerprint=f"fp{k}" if paid else None,
                    metadata={"source": "bench"},
                    completed_at=datetime.now(UTC),
                )
            )
    return events[:n], customers


async def _publish(org: BenchOrg, events: list[CheckoutCompletedV1]) -> None:
    bus = Bus(os.environ["AMQP_URL"], "bench-checkout")
    await bus.connect()
    try:
        gate = asyncio.Semaphore(PUBLISH_IN_FLIGHT)

        async def one(event: CheckoutCompletedV1) -> None:
            async with gate:
                await bus.publish(Envelope.wrap(event, producer="checkout", org_id=org.org_id))

        # The free plan of a customer is published (and so created) before the paid one.
        await asyncio.gather(*(one(e) for e in events))
    finally:
        await bus.close()


async def _connect() -> asyncpg.Connection:
    return await asyncpg.connect(asyncpg_dsn(os.environ["DATABASE_URL"]))


async def _created(org_id: str) -> int:
    conn = await _connect()
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM subscriptions.subscriptions WHERE org_id = $1", org_id
            )
        )
    finally:
        await conn.close()


async def _clone(org_id: str, total: int) -> list[str]:
    """Bring the organization to `total` subscriptions by copying the rows the consumer
    created, customer by customer, under new ids (each copy of a customer gets a new
    customer id, email and external user id; no invoices: entitlements never read them).
    Returns the customer ids of the copies."""
    conn = await _connect()
    try:
        rows = await conn.fetch(
            "SELECT * FROM subscriptions.subscriptions WHERE org_id = $1 ORDER BY id", org_id
        )
        columns = list(rows[0].keys())
        records: list[tuple[Any, ...]] = []
        customers: list[str] = []
        by_customer: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            by_customer.setdefault(row["customer_id"], []).append(row)
        groups = list(by_customer.values())
        while len(records) < total - len(rows):
            group = groups[len(customers) % len(groups)]
            cus = new_id("cus")
            customers.append(cus)
            for row in group:
                copy = dict(row)
                copy.update(
                    id=new_id("sub"),
                    customer_id=cus,
                    customer_email=f"{cus}@example.com",
                    external_user_id=f"user_{cus}",
                    checkout_id=new_id("cs"),
                    latest_invoice_id=None,
                    pending_invoice_id=None,
                )
                records.append(tuple(copy[c] for c in columns))
        await conn.copy_records_to_table(
            "subscriptions", schema_name="subscriptions", columns=columns, records=records
        )
        # As autovacuum would after such a load: the planner sees the table as it is.
        await conn.execute("ANALYZE subscriptions.subscriptions")
        return customers
    finally:
        await conn.close()


async def _seed(
    org: BenchOrg, events: list[CheckoutCompletedV1], total: int, timeout_s: float = 900
) -> tuple[dict[str, Any], list[str]]:
    started = time.monotonic()
    await _publish(org, events)
    published = time.monotonic() - started
    while (created := await _created(org.org_id)) < len(events):
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"only {created} of {len(events)} subscriptions were created")
        await asyncio.sleep(1)
    consumed = time.monotonic() - started
    copies = await _clone(org.org_id, total) if total > len(events) else []
    timing = {
        "published_s": round(published, 1),
        "consumed_s": round(consumed, 1),
        "rows": await _created(org.org_id),
    }
    return timing, copies


def _lua(customers: list[str]) -> str:
    """A request() hook cycling over `customers` (a file of its own: Target.lua takes a
    path, and LUA_DIR / an absolute path is that path)."""
    ids = ",".join(f'"{c}"' for c in customers)
    script = (
        f"local ids = {{{ids}}}\n"
        "local n = #ids\n"
        "local i = math.random(n)\n"
        "request = function()\n"
        "  i = i % n + 1\n"
        '  return wrk.format(nil, "/v1/entitlements?customer_id=" .. ids[i])\n'
        "end\n"
    )
    with tempfile.NamedTemporaryFile(
        "w", suffix=".lua", prefix="bench-entitlements-", delete=False
    ) as f:
        f.write(script)
        return f.name


def prepare(urls: dict[str, str]) -> Scenario:
    org = create_org(urls, "bench-subscriptions")
    plans: dict[str, PriceSnapshot] = {}
    for plan, amount, interval, trial, features in (
        ("free", 0, "month", 0, ["basic"]),
        ("pro", 2900, "month", 0, ["basic", "pro_reports", "api"]),
        ("team", 29000, "year", 14, ["basic", "seats", "sso"]),
    ):
        product, price = create_product(
            urls, org, amount=amount, interval=interval, features=features
        )
        plans[plan] = _snapshot(product, price, trial)
    events, customers = _events(plans, min(VIA_BUS, SUBSCRIPTIONS))
    timing, copies = asyncio.run(_seed(org, events, SUBSCRIPTIONS))
    print(
        f"[bench] subscriptions_entitlements: {len(events)} subscriptions for "
        f"{len(customers)} customers created by the service's consumer "
        f"(published in {timing['published_s']} s, all created after {timing['consumed_s']} s)"
        f", copied for {len(copies)} more customers: {timing['rows']} rows in the organization",
        flush=True,
    )
    customers += copies
    queried = random.Random(80).sample(customers, min(QUERIED_CUSTOMERS, len(customers)))
    lua = _lua(queried)
    path = f"/v1/entitlements?customer_id={queried[0]}"
    identity = Identity(principal_type="api_key", principal_id="key_bench", org_id=org.org_id)
    signed = sign_identity(
        identity, os.environ["BOS_INTERNAL_SECRET"], now=time.time() + IDENTITY_AHEAD_S
    )
    targets = (
        dataclasses.replace(VIA_GATEWAY, path=path, headers=org.auth, lua=lua),
        dataclasses.replace(DIRECT, path=path, headers={IDENTITY_HEADER: signed}, lua=lua),
    )
    return dataclasses.replace(ENTITLEMENTS, targets=targets)


VIA_GATEWAY = Target(
    name="via_gateway",
    label="gateway GET /v1/entitlements?customer_id= (API key, 2,000 customers in turn)",
    base="gateway",
    path="/v1/entitlements",  # the customer is set by prepare() and the Lua hook
    procs=("gateway", "subscriptions"),
)
DIRECT = Target(
    name="direct",
    label="subscriptions GET /v1/entitlements?customer_id= directly (signed identity)",
    base="subscriptions",
    path="/v1/entitlements",
    procs=("subscriptions",),
    note="the gateway's forwarded identity header, signed by the bench: the service alone",
)

ENTITLEMENTS = register(
    Scenario(
        name="subscriptions_entitlements",
        description=(
            "GET /v1/entitlements through the gateway and straight to the subscriptions "
            f"service, for customers of an organization with {SUBSCRIPTIONS:,} subscriptions "
            "(created by the service's consumer from checkout.completed.v1), beside the floor."
        ),
        targets=(VIA_GATEWAY, DIRECT),
        floors=("ping",),
        checks=(
            MaxLatency("one_connection_p95", "via_gateway", "95", 10.0),
            AddedLatency("gateway_added_p50", "via_gateway", "direct", "50", 1.0),
            RpsRatio("via_gateway_vs_direct", "via_gateway", "direct", 0.5),
        ),
        notes=(
            "Issue 8: GET /v1/entitlements p95 < 10 ms through the gateway (one connection). "
            "BENCH_SUBSCRIPTIONS sets the organization's size (default 10,000).",
            "Scheduler throughput (100,000 due at once): "
            "services/subscriptions/bench/bench_scheduler.py.",
        ),
        prepare=prepare,
    )
)
