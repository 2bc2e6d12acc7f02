"""What a gateway replica knows without asking anyone per request: the revoked session
and portal tokens that have not expired yet, and each organization's allowed origins
and rate-limit overrides. Filled from the tokens service's snapshot at start and after
every bus reconnection, kept current by events in between (gateway.sync)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class OrgSettings:
    version: int
    allowed_origins: frozenset[str] = frozenset()
    rate_limits: Mapping[str, str] = field(default_factory=dict)


NO_SETTINGS = OrgSettings(version=0)


def epoch(value: str | datetime) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.timestamp()


class AuthState:
    def __init__(self) -> None:
        # jti -> its exp (epoch seconds): after that the token is refused as expired anyway.
        self.revoked: dict[str, float] = {}
        self.orgs: dict[str, OrgSettings] = {}
        # Every organization's origins together: what a CORS preflight (which carries no
        # credential, so no organization) may be answered for.
        self.all_origins: frozenset[str] = frozenset()
        # False until the first snapshot: session tokens are refused (503) before that,
        # never accepted without knowing what was revoked.
        self.loaded = False

    # --- revocations ------------------------------------------------------------------

    def is_revoked(self, jti: str) -> bool:
        return jti in self.revoked

    def revoke(self, jti: str, expires_at: float) -> None:
        # Revocation is permanent and idempotent: keep the latest expiry seen.
        if expires_at > self.revoked.get(jti, 0.0):
            self.revoked[jti] = expires_at

    def prune(self, now: float | None = None) -> int:
        current = time.time() if now is None else now
        gone = [jti for jti, exp in self.revoked.items() if exp <= current]
        for jti in gone:
            del self.revoked[jti]
        return len(gone)

    # --- organizations ------------------------------------------------------------------

    def org(self, org_id: str) -> OrgSettings:
        return self.orgs.get(org_id, NO_SETTINGS)

    def apply_org(
        self,
        org_id: str,
        version: int,
        allowed_origins: Iterable[str],
        rate_limits: Mapping[str, str],
    ) -> bool:
        """Apply an organization's settings unless what we hold is as new or newer."""
        if not self._set_org(org_id, version, allowed_origins, rate_limits):
            return False
        self._recompute_origins()
        return True

    def _set_org(
        self, org_id: str, version: int, origins: Iterable[str], rate_limits: Mapping[str, str]
    ) -> bool:
        if version <= self.org(org_id).version:
            return False
        self.orgs[org_id] = OrgSettings(version, frozenset(origins), dict(rate_limits))
        return True

    def _recompute_origins(self) -> None:
        self.all_origins = frozenset().union(*(o.allowed_origins for o in self.orgs.values()))

    # --- snapshot -----------------------------------------------------------------------

    def load(self, snapshot: Mapping[str, Any]) -> None:
        """Merge a snapshot: revocations are added (never removed: one that arrived by
        event after the snapshot was taken must survive), organizations are applied by
        version, for the same reason."""
        for token in snapshot.get("revoked_tokens", ()):
            self.revoke(token["id"], epoch(token["expires_at"]))
        changed = [
            self._set_org(o["id"], o["version"], o["allowed_origins"], o["rate_limits"])
            for o in snapshot.get("organizations", ())
        ]
        if any(changed):
            self._recompute_origins()
        self.prune()
        self.loaded = True
