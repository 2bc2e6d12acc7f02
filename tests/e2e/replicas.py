"""The stack's processes one by one, for tests that look behind the load balancer (a
service's metrics and logs): with `REPLICAS=N` (scripts/lib.sh) each service runs N
processes, and its URL reaches one of them per request."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bos_common.testing import eventually


def replica_urls(service: str) -> list[str]:
    """Every process of `service` (`checkout`, ...): <SERVICE>_REPLICA_URLS, else its URL."""
    name = service.upper()
    urls = os.environ.get(f"{name}_REPLICA_URLS") or os.environ[f"{name}_URL"]
    return urls.split(",")


def log_files(state_dir: str, service: str) -> list[Path]:
    """The log of each process of `service` (`checkout.log`, or `checkout-1.log`, ...)."""
    logs = Path(state_dir, "logs")
    return [
        p for p in [logs / f"{service}.log", *sorted(logs.glob(f"{service}-*.log"))] if p.exists()
    ]


# A revocation takes effect at once on the gateway replica that proxied it and reaches the
# others through its event (docs/api.md): within this bound here.
PROPAGATION_SECONDS = 2.0


async def revoked_everywhere(
    revoke: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    probe: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
) -> tuple[httpx.Response, list[httpx.Response]]:
    """`revoke` sent to one gateway replica, then `probe` on each: on that replica at once,
    on every other one as soon as it answers 401 (within PROPAGATION_SECONDS). Returns the
    revocation's answer and each replica's answer to `probe` (the first one's first)."""
    first, *others = replica_urls("gateway")
    async with httpx.AsyncClient(base_url=first, timeout=10) as here:
        revoked = await revoke(here)
        answers = [await probe(here)]
    for url in others:
        async with httpx.AsyncClient(base_url=url, timeout=10) as there:

            async def refused(there: httpx.AsyncClient = there) -> httpx.Response | None:
                r = await probe(there)
                return r if r.status_code == 401 else None

            answers.append(await eventually(refused, timeout=PROPAGATION_SECONDS))
    return revoked, answers
