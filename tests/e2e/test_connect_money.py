"""Connect money as Stripe moves it (plan 12.1, 12.2; Stripe's rules 3 and 4), end to end
through the stack and read back from the simulator's ledger: a duplicate destination
charge refunded with its transfer and its platform fee, and a merchant's share held until
its account is verified, then transferred from its charge while the funds are still
pending."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, new_merchant, unique  # noqa: E402

pytestmark = pytest.mark.e2e

T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await read()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def connected_account(sim: httpx.AsyncClient, *, verified: bool) -> str:
    account = (await sim.post("/v1/accounts", data={"type": "express"})).json()["id"]
    if verified:
        assert (await sim.post(f"/_sim/accounts/{account}/verify")).status_code == 200
    return str(account)


async def balance(sim: httpx.AsyncClient, account: str | None = None) -> dict[str, int]:
    """Available + pending, in USD cents, of the platform or a connected account."""
    headers = {"Stripe-Account": account} if account else {}
    body = (await sim.get("/v1/balance", headers=headers)).json()
    return {
        kind: sum(b["amount"] for b in body[kind] if b["currency"] == "usd")
        for kind in ("available", "pending")
    }


def total(b: dict[str, int]) -> int:
    return b["available"] + b["pending"]


async def charge_of(sim: httpx.AsyncClient, intent: str) -> dict[str, Any]:
    [charge] = (await sim.get("/v1/charges", params={"payment_intent": intent})).json()["data"]
    return dict(charge)


async def test_12_1_a_duplicate_destination_charge_is_refunded_with_its_transfer_and_fee(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    account = await connected_account(sim, verified=True)
    merchant = await new_merchant(gateway, sim, stripe_account_id=account)
    checkout = await merchant.checkout((await merchant.price(10_000))["id"])
    platform_before, account_before = await balance(sim), await balance(sim, account)

    # The customer's first attempt needs 3D Secure and fails it; the checkout reopens and
    # a second card pays it.
    first = await merchant.confirm(checkout["id"], await merchant.card("3ds"), key=unique("k"))
    assert first.json()["status"] == "requires_action", first.text
    intent = first.json()["next_action"]["client_secret"].split("_secret_")[0]
    r = await sim.post(f"/_sim/payment_intents/{intent}/authenticate", json={"outcome": "failure"})
    assert r.status_code == 200, r.text
    await merchant.wait_status(checkout["id"], "open")
    r = await merchant.confirm(checkout["id"], await merchant.card("visa"), key=unique("k"))
    assert r.status_code == 200, r.text
    done = await merchant.wait_status(checkout["id"], "complete")
    paid = done["payment"]
    assert (paid["amount"], paid["platform_fee"]) == (10_000, 500)

    # Then the first attempt succeeds after all (a second tab finishing it with Stripe.js):
    # the customer is charged twice, and BOS must give the second charge back whole.
    r = await sim.post(
        f"/v1/payment_intents/{intent}/confirm",
        data={"payment_method": await merchant.card("visa")},
    )
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    duplicate = await charge_of(sim, intent)

    async def refunded() -> dict[str, Any] | None:
        charge = await charge_of(sim, intent)
        return charge if charge["refunded"] else None

    charge = await eventually(refunded, "the duplicate charge refunded")
    assert charge["amount_refunded"] == 10_000
    transfer = (await sim.get(f"/v1/transfers/{duplicate['transfer']}")).json()
    assert transfer["amount_reversed"] == transfer["amount"] == 10_000, transfer
    fee = (await sim.get(f"/v1/application_fees/{duplicate['application_fee']}")).json()
    assert (fee["amount"], fee["amount_refunded"], fee["refunded"]) == (500, 500, True), fee

    # What is left is exactly one payment: the merchant keeps 100 $ less the 5 $ fee, the
    # platform the fee less Stripe's own fee for each charge (the refunded charge's fee
    # is not returned by Stripe).
    platform_after, account_after = await balance(sim), await balance(sim, account)
    assert total(account_after) - total(account_before) == 9_500
    stripe_fee = 10_000 * 29 // 1000 + 30
    assert total(platform_after) - total(platform_before) == 500 - 2 * stripe_fee


async def test_12_2_a_held_share_is_transferred_from_its_charge_once_the_account_is_verified(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    account = await connected_account(sim, verified=False)
    merchant: Merchant = await new_merchant(gateway, sim, stripe_account_id=account)
    checkout = await merchant.checkout((await merchant.price(10_000))["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card("visa"), key=unique("k"))
    assert r.status_code == 200, r.text
    done = await merchant.wait_status(checkout["id"], "complete")
    intent = (await sim.get("/v1/payment_intents", params={"limit": 100})).json()["data"]
    [pi] = [p for p in intent if p["metadata"].get("checkout_id") == checkout["id"]]
    assert "transfer_data" not in pi or not pi["transfer_data"]  # taken on the platform
    charge = await charge_of(sim, pi["id"])

    async def transfers() -> list[dict[str, Any]]:
        r = await sim.get("/v1/transfers", params={"destination": account})
        return list(r.json()["data"])

    await asyncio.sleep(1.5)  # a sweep or more: nothing goes to an unverified account
    assert await transfers() == []
    assert (await sim.post(f"/_sim/accounts/{account}/verify")).status_code == 200
    made = await eventually(transfers, "the held share transferred")
    assert len(made) == 1, f"one held share, transferred more than once: {made}"
    [transfer] = made
    # From the charge's pending funds: the platform had nothing available for it.
    assert (transfer["amount"], transfer["source_transaction"]) == (9_500, charge["id"])
    assert (await balance(sim, account))["pending"] >= 9_500
    assert done["payment"]["net_amount"] == 9_500
