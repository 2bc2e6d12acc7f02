"""Health of a BOS process, in three separate answers:

- liveness (`/healthz`): the process serves HTTP at all. A restart is the only cure for a
  failure here, so it depends on nothing outside the process.
- readiness (`/readyz`): this process can serve its own requests. A service needs its
  database; not the broker, whose absence the outbox absorbs (events wait in the outbox
  and leave when it returns), so a broker restart does not take every pod out of its
  load balancer. The gateway needs what routing needs (its auth state), not every backend:
  a route whose backend is down answers 503 by itself.
- dependencies (`/healthz/details`, internal, and the `bos_dependency_up` gauges): the
  state of each dependency (database, rabbitmq, each backend for the gateway), checked
  every few seconds by a background loop, for dashboards, alerts and people.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from prometheus_client import Gauge

__all__ = [
    "DEPENDENCY_UP",
    "WORKER_LAST_SUCCESS",
    "DependencyMonitor",
    "Probe",
    "heartbeat",
]

log = logging.getLogger("bos.health")

DEPENDENCY_UP: Final = Gauge(
    "bos_dependency_up",
    "1 when this process can reach the dependency (database, rabbitmq, a backend), else 0.",
    ["service", "dependency"],
    multiprocess_mode="livemin",
)

WORKER_LAST_SUCCESS: Final = Gauge(
    "bos_worker_last_success_timestamp_seconds",
    "Unix time at which a background worker last completed a pass.",
    ["service", "worker"],
    multiprocess_mode="livemax",
)

CHECK_INTERVAL_SECONDS: Final = 5.0
PROBE_TIMEOUT_SECONDS: Final = 2.0

# A probe answers True (up) or False (down), or raises (down).
Probe = Callable[[], Awaitable[bool]]


def heartbeat(service: str, worker: str) -> None:
    """A worker completed a pass: alerts see a stalled loop from this timestamp."""
    WORKER_LAST_SUCCESS.labels(service, worker).set(time.time())


class DependencyMonitor:
    """Checks each dependency every CHECK_INTERVAL_SECONDS, keeps the latest answers and
    sets `bos_dependency_up{service,dependency}`. The gauges exist (at 0, "not checked
    yet" counts as down) from construction, so a series never appears only at a failure."""

    def __init__(self, service: str, probes: Mapping[str, Probe]) -> None:
        self.service = service
        self.probes = dict(probes)
        self.state: dict[str, str] = {name: "unknown" for name in self.probes}
        self.checked_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        for name in self.probes:
            DEPENDENCY_UP.labels(service, name).set(0)

    async def check(self) -> dict[str, str]:
        """Runs every probe now (concurrently), records and returns {name: "ok"|"down"}."""
        names = list(self.probes)
        results = await asyncio.gather(*(self._probe(n) for n in names))
        for name, up in zip(names, results, strict=True):
            self.state[name] = "ok" if up else "down"
            DEPENDENCY_UP.labels(self.service, name).set(1 if up else 0)
        self.checked_at = time.time()
        return dict(self.state)

    async def _probe(self, name: str) -> bool:
        try:
            return await asyncio.wait_for(self.probes[name](), timeout=PROBE_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - any failure of a probe means down
            return False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.service}-dependencies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - the loop must outlive a broken probe
                log.warning("dependency check failed", exc_info=True)
            await asyncio.sleep(CHECK_INTERVAL_SECONDS)

    def details(self, *, ready: bool) -> dict[str, object]:
        """The body of `/healthz/details`."""
        degraded = any(v != "ok" for v in self.state.values())
        return {
            "status": "degraded" if degraded else "ok",
            "service": self.service,
            "ready": ready,
            "dependencies": dict(self.state),
            "checked_at": self.checked_at,
        }
