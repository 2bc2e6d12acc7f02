"""Which Stripe accounts are ours: the platform account and the connected accounts of
BOS organizations (owned by the tokens service, asked over its internal API and cached)."""

from __future__ import annotations

import time

from bos_common.errors import BOSError
from bos_common.internal import InternalClient

POSITIVE_TTL_SECONDS = 300.0
# Short, so an organization that just connected its account is recognised quickly.
NEGATIVE_TTL_SECONDS = 10.0


class AccountDirectory:
    def __init__(self, tokens: InternalClient, platform_account_id: str | None) -> None:
        self._tokens = tokens
        self._platform = platform_account_id
        self._cache: dict[str, tuple[float, bool]] = {}

    async def is_ours(self, account: str | None) -> bool:
        """Raises ServiceUnavailable when tokens cannot answer (Stripe then retries)."""
        if account is None or account == self._platform:
            return True
        now = time.monotonic()
        cached = self._cache.get(account)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            await self._tokens.request("GET", f"/internal/stripe-accounts/{account}")
            known = True
        except BOSError as exc:
            if exc.status_code != 404:
                raise
            known = False
        ttl = POSITIVE_TTL_SECONDS if known else NEGATIVE_TTL_SECONDS
        self._cache[account] = (now + ttl, known)
        return known

    async def connected(self) -> list[str]:
        """Every BOS organization's connected account (the platform's own aside), asked
        afresh; they are cached as ours. Raises ServiceUnavailable when tokens is down."""
        _, body = await self._tokens.request("GET", "/internal/stripe-accounts")
        accounts = [a["stripe_account_id"] for a in body["data"]]
        until = time.monotonic() + POSITIVE_TTL_SECONDS
        for account in accounts:
            self._cache[account] = (until, True)
        return [a for a in accounts if a != self._platform]

    async def close(self) -> None:
        await self._tokens.close()
