"""Plan 11.2 and 11.5 (error recovery) end to end, with real faults: checkout's Postgres
connections are killed and Postgres itself is stopped and started again (the stack's own
scripts, through `infra`), and a session token really expires while the customer types."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bos_common.session_tokens import SessionKeys
from bos_common.testing import Infra

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, intents_of, unique  # noqa: E402

pytestmark = pytest.mark.e2e


def assert_unavailable(r: httpx.Response) -> None:
    """A dependency down: 503 in the contract's format, a retry hint, nothing internal."""
    assert r.status_code == 503, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "service_unavailable"
    assert body["error"]["request_id"] == r.headers["x-request-id"]
    assert r.headers.get("retry-after")
    lowered = r.text.lower()
    assert not any(leak in lowered for leak in ("postgres", "asyncpg", "sqlalchemy", "select "))


async def retry_until_answered(call: Any, attempts: int = 40) -> httpx.Response:
    """What a client does after a 503: retry with a pause. Every answer in between must
    be the contract's 503, never a 500 or a hang; or, for a key whose failed request
    could not release it while the database was away, 409 `idempotency_key_in_use`
    until its lease runs out (docs/api.md: retry a moment later)."""
    for _ in range(attempts):
        r = await call()
        if r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_in_use":
            await asyncio.sleep(0.5)
            continue
        if r.status_code != 503:
            return r  # type: ignore[no-any-return]
        assert_unavailable(r)
        await asyncio.sleep(0.5)
    raise AssertionError("still unavailable after the database came back")


async def kill_checkout_connections() -> int:
    """The database drops every connection of the checkout service (as a failover or a
    network cut does); its pool still holds them."""
    engine = create_async_engine(os.environ["DATABASE_URL"])
    try:
        async with engine.begin() as conn:
            killed = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'checkout' AND pid <> pg_backend_pid()"
                )
            )
            return int(killed.scalar() or 0)
    finally:
        await engine.dispose()


async def test_11_2_connections_dropped_mid_checkout_fail_gracefully_and_retry_works(
    merchant: Merchant,
) -> None:
    checkout = await merchant.checkout((await merchant.price(2500))["id"])
    pm = await merchant.card()
    assert await kill_checkout_connections() > 0

    # Continuing the checkout: each call answers (the contract's 503 or the real answer),
    # the session survives, nothing half-made is charged.
    seen = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).status_code
    if seen == 503:
        seen = (
            await retry_until_answered(
                lambda: merchant.get(f"/v1/checkout-sessions/{checkout['id']}")
            )
        ).status_code
    assert seen == 200
    assert await kill_checkout_connections() > 0
    key = unique("after-drop")
    r = await retry_until_answered(lambda: merchant.confirm(checkout["id"], pm, key=key))
    if r.status_code == 409:
        # The request that died had charged the card, and the recovery sweep (another
        # replica's, or this one's) finished its payment before the retry came: the
        # checkout is no longer open (the checkout page shows it paid).
        assert r.json()["error"]["code"] == "checkout_complete", r.text
    else:
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("processing", "complete")
    done = await merchant.wait_status(checkout["id"], "complete")
    assert done["payment"]["status"] == "succeeded"
    assert len(await intents_of(merchant.sim, checkout["id"])) == 1


async def test_11_2_database_down_is_a_503_and_the_checkout_continues_when_it_returns(
    merchant: Merchant, infra: Infra
) -> None:
    checkout = await merchant.checkout((await merchant.price(2500))["id"])
    pm = await merchant.card()
    # The merchant's key is known to the gateway before the outage (it caches it), so the
    # failure below is checkout's own database, not authentication's.
    assert (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).status_code == 200

    await asyncio.to_thread(infra.postgres, "stop")
    try:
        down_confirm = await merchant.confirm(checkout["id"], pm, key=unique("down"))
        down_read = await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")
        # No Stripe call was made for a checkout the service could not even read.
        assert await intents_of(merchant.sim, checkout["id"]) == []
    finally:
        await asyncio.to_thread(infra.postgres, "start")
    assert_unavailable(down_confirm)
    assert_unavailable(down_read)

    # The database is back: the same checkout, untouched by the outage, is still open and
    # a retry (a new attempt: the failed one stored nothing) pays it once.
    body = (
        await retry_until_answered(lambda: merchant.get(f"/v1/checkout-sessions/{checkout['id']}"))
    ).json()
    assert body["status"] == "open" and body["payment"] is None
    key = unique("back")
    r = await retry_until_answered(lambda: merchant.confirm(checkout["id"], pm, key=key))
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("processing", "complete")
    done = await merchant.wait_status(checkout["id"], "complete", timeout=40)
    assert done["payment"]["status"] == "succeeded" and done["subscription_id"]
    assert len(await intents_of(merchant.sim, checkout["id"])) == 1


# --- 11.5 -----------------------------------------------------------------------------------


def short_lived_token(org_id: str, user: str, seconds: int) -> str:
    """A genuine session token of this organization that expires in `seconds` (the API's
    shortest lifetime is 60 s), minted with the deployment's session secret the way the
    tokens service mints them (as 1.4 and the browser tests do)."""
    keys = SessionKeys.parse(os.environ["BOS_SESSION_SECRETS"])
    issued = int(time.time()) - 3600 + seconds
    token, _ = keys.mint(org=org_id, sub=user, scope="session", expires_in=3600, now=issued)
    return token


async def test_11_5_session_expires_while_the_card_is_entered_then_a_new_token_continues(
    merchant: Merchant,
) -> None:
    price = await merchant.price(2900)
    user = unique("user")
    expiring = {"Authorization": f"Bearer {short_lived_token(merchant.org_id, user, 3)}"}
    created = await merchant.gateway.post(
        "/v1/checkout-sessions",
        json={"price_id": price["id"], "customer": {"email": f"{user}@example.com"}},
        headers=expiring,
    )
    assert created.status_code == 201, created.text
    checkout = created.json()
    pm = await merchant.card()  # the customer types the card...
    await asyncio.sleep(4)  # ...and the token runs out meanwhile

    r = await merchant.gateway.post(
        f"/v1/checkout-sessions/{checkout['id']}/confirm",
        json={"payment_method": pm},
        headers={**expiring, "Idempotency-Key": unique("k")},
    )
    # A clear expiry message, nothing charged, the checkout still open.
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert (r.json()["error"]["code"], r.json()["error"]["message"]) == (
        "session_expired",
        "Session expired",
    )
    assert await intents_of(merchant.sim, checkout["id"]) == []
    assert (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()[
        "status"
    ] == "open"

    # The merchant's backend mints a new session for the same user: the same checkout
    # continues and completes.
    minted = await merchant.post(
        "/v1/session-tokens", {"external_user_id": user, "expires_in": 600}
    )
    assert minted.status_code == 201, minted.text
    fresh = {"Authorization": f"Bearer {minted.json()['token']}"}
    seen = await merchant.gateway.get(f"/v1/checkout-sessions/{checkout['id']}", headers=fresh)
    assert seen.status_code == 200 and seen.json()["status"] == "open"
    r = await merchant.gateway.post(
        f"/v1/checkout-sessions/{checkout['id']}/confirm",
        json={"payment_method": pm},
        headers={**fresh, "Idempotency-Key": unique("k")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("processing", "complete")
    done = await merchant.wait_status(checkout["id"], "complete")
    assert done["payment"]["amount"] == 2900
    assert len(await intents_of(merchant.sim, checkout["id"])) == 1
    # A new session for another user of the organization cannot take it over.
    other = await merchant.post("/v1/session-tokens", {"external_user_id": unique("user")})
    stranger = {"Authorization": f"Bearer {other.json()['token']}"}
    r = await merchant.gateway.get(f"/v1/checkout-sessions/{checkout['id']}", headers=stranger)
    assert r.status_code in (403, 404)
