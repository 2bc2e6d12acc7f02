"""LeaseRenewer: what a process holds is renewed together, and nothing once released."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bos_common.leases import LeaseRenewer


async def test_held_claims_are_renewed_together_until_released() -> None:
    renewed: list[list[str]] = []
    renewal = asyncio.Event()

    async def renew(keys: list[str]) -> None:
        renewed.append(sorted(keys))
        renewal.set()

    leases = LeaseRenewer("test", renew, lease=timedelta(milliseconds=30))
    with leases.hold("a"), leases.hold("b"):
        await renewal.wait()
        assert renewed[0] == ["a", "b"]
    assert leases.held == []
    task = leases._task
    assert task is not None
    await task  # the renewer ends once nothing is held
    count = len(renewed)
    with leases.hold("c"):  # and starts again with the next claim
        renewal.clear()
        await renewal.wait()
    assert renewed[count:][0] == ["c"]


async def test_a_failed_renewal_is_tried_again() -> None:
    attempts = 0
    second = asyncio.Event()

    async def renew(keys: list[str]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database restarting")
        second.set()

    leases = LeaseRenewer("test", renew, lease=timedelta(milliseconds=30))
    with leases.hold("a"):
        await second.wait()
    assert attempts >= 2
