"""What reconciliation asks Stripe (unit, fake Stripe and tokens): the platform's events
and each connected account's with `Stripe-Account`, each with the event types its webhook
endpoint subscribes to, over the window, then from the previous pass on."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from webhooks.accounts import AccountDirectory
from webhooks.service import ACCOUNT_EVENT_TYPES, CONNECT_EVENT_TYPES, TRANSLATIONS
from webhooks.worker import OVERLAP_SECONDS, reconcile_once

WINDOW = 3 * 24 * 3600


class Events:
    """`stripe.v1.events`: records each list call, answers an empty page."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def list_async(self, params: dict[str, Any], options: dict[str, Any]) -> Any:
        self.calls.append((dict(params), dict(options)))
        return SimpleNamespace(data=[], has_more=False)


class Tokens:
    async def request(self, method: str, path: str, **_: Any) -> tuple[int, Any]:
        assert (method, path) == ("GET", "/internal/stripe-accounts")
        data = [{"stripe_account_id": a, "org_id": "org_1"} for a in ("acct_1", "acct_platform")]
        return 200, {"data": data}

    async def close(self) -> None: ...


def fake_runtime() -> Any:
    return SimpleNamespace(
        settings=SimpleNamespace(reconcile_window_seconds=WINDOW),
        reconciled_at={},
        accounts=AccountDirectory(Tokens(), "acct_platform"),  # type: ignore[arg-type]
        stripe=SimpleNamespace(v1=SimpleNamespace(events=Events())),
    )


def test_the_two_endpoints_together_subscribe_to_every_type_bos_handles() -> None:
    assert set(ACCOUNT_EVENT_TYPES) | set(CONNECT_EVENT_TYPES) == set(TRANSLATIONS)
    assert not set(ACCOUNT_EVENT_TYPES) & set(CONNECT_EVENT_TYPES)
    assert CONNECT_EVENT_TYPES == ("account.updated",)


async def test_rule_5_the_platform_and_each_connected_account_are_listed_over_windows() -> None:
    runtime = fake_runtime()
    calls = runtime.stripe.v1.events.calls
    now = int(time.time())

    assert await reconcile_once(runtime) == 0

    [(platform, no_account), (connected, as_account)] = calls
    assert no_account == {} and as_account == {"stripe_account": "acct_1"}
    assert platform["types"] == list(ACCOUNT_EVENT_TYPES)
    assert connected["types"] == list(CONNECT_EVENT_TYPES)
    for params in (platform, connected):
        assert abs(params["created"]["gte"] - (now - WINDOW)) <= 2

    # The next pass starts shortly before the previous one did, not at the whole window.
    calls.clear()
    assert await reconcile_once(runtime) == 0
    assert [c[1] for c in calls] == [{}, {"stripe_account": "acct_1"}]
    for params, _ in calls:
        assert abs(params["created"]["gte"] - (now - OVERLAP_SECONDS)) <= 2
