"""Webhooks to merchants in the chaos run: the first shop registers two endpoints on a
receiver this run serves on 127.0.0.1, one for every public type and one for
`checkout.completed` only, before the load. After it: every internal event of that shop that
makes a public one reached each endpoint subscribed to its type at least once, and no
endpoint got a type it did not subscribe to (from the receiver's requests, and from the
webhooks schema's deliveries)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
import orjson
from aiohttp import web

from bench.chaos import sql
from bench.chaos.checks import Check
from bench.chaos.client import Merchant
from webhooks.endpoints import catalogue

NARROW_TYPES = ["checkout.completed"]


@dataclass
class Receiver:
    """What each endpoint (its path) received: the public events' ids and types."""

    port: int = 0
    received: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.received[request.match_info["name"]][body["id"]] = body["type"]
        return web.Response(text="ok")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Endpoints:
    org_id: str
    every: str  # endpoint ids
    narrow: str


async def register(merchant: Merchant, receiver: Receiver) -> Endpoints:
    ids = []
    for name, types in (("every", []), ("narrow", NARROW_TYPES)):
        r = await merchant.post(
            "/v1/webhook-endpoints", {"url": receiver.url(name), "event_types": types}
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return Endpoints(merchant.org_id, ids[0], ids[1])


async def settle(conn: asyncpg.Connection, endpoints: Endpoints, timeout: float) -> None:
    """Wait (bounded) until no delivery of the endpoints is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not await sql.merchant_deliveries_pending(conn, [endpoints.every, endpoints.narrow]):
            return
        await asyncio.sleep(2)


async def checks(conn: asyncpg.Connection, receiver: Receiver, endpoints: Endpoints) -> list[Check]:
    # What should have been sent: the shop's internal events that make a public one.
    expected: dict[str, str] = {}  # internal event id -> public type
    for row in await sql.outbox_events(conn, endpoints.org_id, list(catalogue.SOURCES)):
        found = catalogue.source_of(row["event_type"], orjson.loads(row["data"]))
        if found is not None:
            expected[row["event_id"]] = found[0].public_type
    # Public event id -> internal event id, for what the receiver got.
    source_of = await sql.merchant_event_sources(conn, endpoints.org_id)
    got = {
        name: {source_of.get(public_id, public_id) for public_id in events}
        for name, events in receiver.received.items()
    }
    narrow_expected = {e for e, t in expected.items() if t in NARROW_TYPES}
    missing_every = set(expected) - got.get("every", set())
    missing_narrow = narrow_expected - got.get("narrow", set())
    unsubscribed = sorted(
        {t for t in receiver.received.get("narrow", {}).values() if t not in NARROW_TYPES}
    )
    wrong_rows = await sql.merchant_deliveries_unsubscribed(conn, endpoints.org_id)
    return [
        Check(
            "merchant webhooks: every event delivered at least once",
            not missing_every and not missing_narrow,
            f"{len(expected)} events to the every-type endpoint, {len(narrow_expected)} to"
            f" the checkout.completed one; missing {len(missing_every)} and"
            f" {len(missing_narrow)}",
        ),
        Check(
            "merchant webhooks: nothing of an unsubscribed type",
            not unsubscribed and wrong_rows == 0,
            f"received {unsubscribed or 'none'}; {wrong_rows} such deliveries in the schema",
        ),
    ]
