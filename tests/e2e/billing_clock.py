"""The subscriptions service's billing clock, moved by tests through its internal routes
(test stacks only). Each process keeps its own clock, so with `REPLICAS=N` every replica
is moved together: a replica left behind (or left ahead after the test) would decide
renewals and cancellations on another date than its peers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from replicas import replica_urls

from bos_common.internal import InternalClient


def control(url: str) -> InternalClient:
    return InternalClient(url, caller="e2e", secret=os.environ["BOS_INTERNAL_SECRET"])


class BillingClock:
    def __init__(self, clients: list[InternalClient]) -> None:
        self.clients = clients

    async def advance(self, seconds: float) -> None:
        for client in self.clients:
            await client.request("POST", "/internal/clock", json={"advance_seconds": seconds})

    async def run_scheduler(self) -> None:
        """One scheduler pass that drains every due subscription (on one replica: all
        clocks agree)."""
        await self.clients[0].request("POST", "/internal/scheduler/run")

    async def reset(self) -> None:
        for client in self.clients:
            await client.request("POST", "/internal/clock", json={"reset": True})


@asynccontextmanager
async def billing_clock_ahead(seconds: float) -> AsyncIterator[BillingClock]:
    """Every subscriptions process `seconds` ahead for the block, back to real time after
    it (also when the block fails)."""
    clock = BillingClock([control(url) for url in replica_urls("subscriptions")])
    try:
        await clock.advance(seconds)
        yield clock
    finally:
        try:
            await clock.reset()
        finally:
            for client in clock.clients:
                await client.close()
