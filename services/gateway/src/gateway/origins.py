"""Which browser origins an organization allows, as a replica may answer it.

The replica's copy (`AuthState`, fed by `organization.updated.v1` and snapshots) may let a
request through on its own. A refusal is confirmed with the owner first
(docs/service-guide.md, "Copies of another service's data"): an origin the copy does not
know for an organization is looked up at the tokens service
(`GET /internal/gateway/organizations?allowed_origin=...`), whose answer is applied to the
copy by version, like an event. So an organization created or changed a moment ago
is honoured even before its event reaches this replica.

Concurrent confirmations of one origin share a single call, and a confirmation stands for
`confirmation_ttl` seconds, so forged requests from an origin do not each cost a call;
every organization change this replica learns of (event, snapshot, a change it proxied)
drops the confirmations at once, so only a change not yet seen by this replica could meet
one, within that second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from gateway.state import AuthState

# origin -> the settings of every organization that allows it (OrganizationGatewaySettings).
OrganizationsAllowing = Callable[[str], Awaitable[Sequence[Mapping[str, Any]]]]

CONFIRMATION_TTL_SECONDS = 1.0
MAX_CONFIRMATIONS = 10_000


class OriginPolicy:
    def __init__(
        self,
        state: AuthState,
        organizations_allowing: OrganizationsAllowing,
        *,
        confirmation_ttl: float = CONFIRMATION_TTL_SECONDS,
    ) -> None:
        self.state = state
        self._organizations_allowing = organizations_allowing
        self.confirmation_ttl = confirmation_ttl
        self._confirmed: dict[str, float] = {}  # origin -> monotonic time of the answer
        self._inflight: dict[str, asyncio.Future[None]] = {}

    def known(self, origin: str, org_id: str | None) -> bool:
        """The copy's answer: `org_id` allows `origin` (None: some organization does)."""
        if org_id is None:
            return origin in self.state.all_origins
        return origin in self.state.org(org_id).allowed_origins

    async def allows(self, origin: str, org_id: str | None) -> bool:
        """The copy's yes, or the owner's answer. Raises when the owner cannot be asked."""
        if self.known(origin, org_id):
            return True
        await self.confirm(origin)
        return self.known(origin, org_id)

    async def confirm(self, origin: str) -> None:
        """Bring the copy up to date for `origin` from the tokens service."""
        confirmed_at = self._confirmed.get(origin)
        if confirmed_at is not None and time.monotonic() - confirmed_at < self.confirmation_ttl:
            return
        pending = self._inflight.get(origin)
        if pending is not None:
            await asyncio.shield(pending)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[origin] = future
        try:
            organizations = await self._organizations_allowing(origin)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no warning when nobody else waited
            raise
        finally:
            del self._inflight[origin]
        for o in organizations:
            self.state.apply_org(o["id"], o["version"], o["allowed_origins"], o["rate_limits"])
        if len(self._confirmed) >= MAX_CONFIRMATIONS:
            self._confirmed.clear()
        self._confirmed[origin] = time.monotonic()
        future.set_result(None)

    def forget_confirmations(self) -> None:
        """An organization changed: a confirmation may be out of date now."""
        self._confirmed.clear()
