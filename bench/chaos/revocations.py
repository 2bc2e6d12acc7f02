"""API-key revocations during the run: a key is created, used on every gateway replica
(each caches it), revoked through the load balancer, then each replica is asked, directly,
until it refuses the key: the time from the revocation's answer to that refusal."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from bench.chaos.client import Client, Merchant

POLL_SECONDS = 0.005
GIVE_UP_SECONDS = 60.0


@dataclass
class Revocation:
    started: float
    # gateway replica URL -> seconds until it refused the key (None: never within the limit)
    effect: dict[str, float | None] = field(default_factory=dict)
    # replicas that did not answer at some point while polled (killed and restarting):
    # their time includes the restart
    interrupted: set[str] = field(default_factory=set)


async def _refused_after(
    http: httpx.AsyncClient, secret: str, since: float
) -> tuple[float | None, bool]:
    """Seconds until this replica refused the key, and whether it was down meanwhile."""
    deadline = since + GIVE_UP_SECONDS
    down = False
    while time.monotonic() < deadline:
        try:
            r = await http.get("/v1/products", headers={"Authorization": f"Bearer {secret}"})
            if r.status_code == 401:
                return time.monotonic() - since, down
        except httpx.HTTPError:
            down = True  # killed: it loads the revocations when it starts again
        await asyncio.sleep(POLL_SECONDS)
    return None, down


async def revoke_once(
    client: Client, merchant: Merchant, replicas: list[httpx.AsyncClient]
) -> Revocation | None:
    r = await client.bos(merchant, "POST", "/v1/api-keys", {"name": "chaos"})
    if r.status_code != 201:
        return None
    key = r.json()
    secret = key.get("secret") or key.get("key")
    # Warm every replica's cache with the key (a replica that is down is skipped).
    for http in replicas:
        try:
            await http.get("/v1/products", headers={"Authorization": f"Bearer {secret}"})
        except httpx.HTTPError:
            pass
    revoked = await client.bos(merchant, "DELETE", f"/v1/api-keys/{key['id']}")
    if revoked.status_code != 200:
        return None
    since = time.monotonic()
    rev = Revocation(started=time.time())
    found = await asyncio.gather(*(_refused_after(h, str(secret), since) for h in replicas))
    for h, (seconds, down) in zip(replicas, found, strict=True):
        rev.effect[str(h.base_url)] = seconds
        if down:
            rev.interrupted.add(str(h.base_url))
    return rev


async def revocations(
    client: Client,
    merchant: Merchant,
    replica_urls: list[str],
    until: float,
    every: float = 8.0,
) -> list[Revocation]:
    found: list[Revocation] = []
    clients = [httpx.AsyncClient(base_url=u, timeout=5) for u in replica_urls]
    try:
        while time.time() < until:
            try:
                rev = await revoke_once(client, merchant, clients)
            except Exception as e:  # noqa: BLE001 - the run goes on; reported as a miss
                rev = Revocation(started=time.time(), effect={"error": None})
                client.errors.append(f"revocation: {type(e).__name__}: {e}")
            if rev:
                found.append(rev)
            await asyncio.sleep(every)
    finally:
        for c in clients:
            await c.aclose()
    return found
