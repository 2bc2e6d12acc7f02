"""Waiting for a free checkout's completion (checkout.completion), without a database."""

from __future__ import annotations

import asyncio

from checkout.completion import CompletionWaiter


class Checkout:
    def __init__(self) -> None:
        self.status = "processing"
        self.reads = 0

    async def read(self) -> str | None:
        self.reads += 1
        return self.status


def waiter() -> CompletionWaiter:
    return CompletionWaiter(db=None)  # type: ignore[arg-type]  # no LISTEN in these tests


async def test_a_notification_wakes_the_waiter_without_polling() -> None:
    checkout = Checkout()
    completed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def complete() -> None:
        checkout.status = "complete"
        completed.set_result(None)

    asyncio.get_running_loop().call_later(0.05, complete)
    assert await waiter().wait(completed, checkout.read, timeout=5) == "complete"
    assert checkout.reads == 2  # before waiting, and once woken


async def test_without_listen_the_row_is_polled() -> None:
    checkout = Checkout()
    asyncio.get_running_loop().call_later(0.12, lambda: setattr(checkout, "status", "complete"))
    assert await waiter().wait(None, checkout.read, timeout=5) == "complete"
    assert checkout.reads >= 3


async def test_past_the_bound_the_status_is_what_it_is() -> None:
    checkout = Checkout()
    completed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert await waiter().wait(completed, checkout.read, timeout=0.05) == "processing"


async def test_a_notification_reaches_only_the_waiters_of_that_checkout() -> None:
    w = waiter()
    loop = asyncio.get_running_loop()
    mine: asyncio.Future[None] = loop.create_future()
    other: asyncio.Future[None] = loop.create_future()
    w._waiting = {"cs_1": {mine}, "cs_2": {other}}
    w._notified(None, 1, "checkout_completed", "cs_1")
    assert mine.done() and not other.done()
