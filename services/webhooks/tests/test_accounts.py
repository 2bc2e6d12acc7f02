"""Which accounts are ours (unit, with a fake tokens client)."""

from __future__ import annotations

from typing import Any

import pytest

from bos_common.errors import BOSError, NotFound, ServiceUnavailable
from webhooks.accounts import AccountDirectory


class FakeTokens:
    def __init__(self, known: set[str], down: bool = False) -> None:
        self.known, self.down, self.calls = known, down, 0

    async def request(self, method: str, path: str, **_: Any) -> tuple[int, Any]:
        self.calls += 1
        if self.down:
            raise ServiceUnavailable("dependency_unavailable", "down")
        if path == "/internal/stripe-accounts":
            return 200, {"data": [{"stripe_account_id": a, "org_id": "org_1"} for a in self.known]}
        account = path.rsplit("/", 1)[1]
        if account not in self.known:
            raise NotFound("account_not_found", "Not found")
        return 200, {"org_id": "org_1"}

    async def close(self) -> None: ...


async def test_platform_events_and_known_connected_accounts_are_ours() -> None:
    tokens = FakeTokens({"acct_known"})
    directory = AccountDirectory(tokens, "acct_platform")  # type: ignore[arg-type]
    assert await directory.is_ours(None)
    assert await directory.is_ours("acct_platform")
    assert await directory.is_ours("acct_known")
    assert await directory.is_ours("acct_known")
    assert tokens.calls == 1, "positive answers are cached"


async def test_9_7_unknown_account_is_not_ours() -> None:
    directory = AccountDirectory(FakeTokens(set()), None)  # type: ignore[arg-type]
    assert not await directory.is_ours("acct_stranger")


async def test_tokens_down_is_an_error_not_a_rejection() -> None:
    directory = AccountDirectory(FakeTokens(set(), down=True), None)  # type: ignore[arg-type]
    with pytest.raises(BOSError) as err:
        await directory.is_ours("acct_x")
    assert err.value.status_code == 503


async def test_connected_accounts_are_asked_afresh_and_then_known_to_be_ours() -> None:
    tokens = FakeTokens({"acct_a", "acct_b", "acct_platform"})
    directory = AccountDirectory(tokens, "acct_platform")  # type: ignore[arg-type]
    assert sorted(await directory.connected()) == ["acct_a", "acct_b"], "the platform's aside"
    assert await directory.is_ours("acct_a") and await directory.is_ours("acct_b")
    assert tokens.calls == 1
    tokens.known.add("acct_c")
    assert "acct_c" in await directory.connected()
    assert tokens.calls == 2


async def test_tokens_down_when_listing_connected_accounts_is_an_error() -> None:
    directory = AccountDirectory(FakeTokens(set(), down=True), None)  # type: ignore[arg-type]
    with pytest.raises(BOSError) as err:
        await directory.connected()
    assert err.value.status_code == 503
