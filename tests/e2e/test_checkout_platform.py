"""Plan 12.3 (multi-currency) and 12.4 (transfer timing) end to end: what BOS shows and
records, and what the Stripe simulator holds afterwards (intents, charges, Connect transfers,
balance transactions, the connected account's payout settings), read as from Stripe."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from bos_common.testing import eventually

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, intent_of, new_merchant, unique  # noqa: E402

pytestmark = pytest.mark.e2e


async def charge_of(sim: httpx.AsyncClient, intent_id: str) -> dict[str, Any]:
    r = await sim.get("/v1/charges", params={"payment_intent": intent_id})
    [charge] = r.json()["data"]
    return dict(charge)


async def verified_account(sim: httpx.AsyncClient) -> str:
    account = (await sim.post("/v1/accounts", data={"type": "express"})).json()["id"]
    assert (await sim.post(f"/_sim/accounts/{account}/verify")).status_code == 200
    return str(account)


async def test_12_3_a_eur_price_is_shown_and_charged_in_eur_as_is(merchant: Merchant) -> None:
    price = await merchant.price(4_500, currency="EUR")
    assert price["currency"] == "eur"
    email = f"{unique('us-buyer')}@example.com"
    checkout = await merchant.checkout(price["id"], email=email)
    # Price shown in EUR: the checkout (what the page renders) carries the currency and
    # the amount in euro cents, not a converted figure.
    assert (checkout["currency"], checkout["amount_subtotal"], checkout["amount_total"]) == (
        "eur",
        4_500,
        4_500,
    )
    # What the hosted page loads (with the checkout's client secret, no API key).
    page = await merchant.gateway.get(
        f"/v1/checkout-sessions/{checkout['id']}",
        headers={"X-Checkout-Secret": checkout["client_secret"]},
    )
    assert page.status_code == 200, page.text
    assert (page.json()["currency"], page.json()["amount_total"]) == ("eur", 4_500)

    pm = await merchant.card()  # a US card (Stripe's 4242 test card is issued in the US)
    card = (await merchant.sim.get(f"/v1/payment_methods/{pm}")).json()["card"]
    assert card["country"] == "US"
    await merchant.confirm(checkout["id"], pm, key=unique("k"))
    done = await merchant.wait_status(checkout["id"], "complete")

    # Charged in EUR, the same amount: any conversion to the card's currency is the
    # issuer's, never BOS's.
    assert (done["payment"]["currency"], done["payment"]["amount"]) == ("eur", 4_500)
    pi = await intent_of(merchant.sim, checkout["id"])
    assert (pi["currency"], pi["amount"], pi["status"]) == ("eur", 4_500, "succeeded")
    charge = await charge_of(merchant.sim, pi["id"])
    assert (charge["currency"], charge["amount"], charge["paid"]) == ("eur", 4_500, True)
    sub = (await merchant.get(f"/v1/subscriptions/{done['subscription_id']}")).json()
    assert (sub["currency"], sub["amount"]) == ("eur", 4_500)


async def test_12_3_platform_fee_of_a_eur_charge_is_in_eur(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    account = await verified_account(sim)
    merchant = await new_merchant(gateway, sim, stripe_account_id=account)
    checkout = await merchant.checkout((await merchant.price(10_000, currency="eur"))["id"])
    await merchant.confirm(checkout["id"], await merchant.card(), key=unique("k"))
    done = await merchant.wait_status(checkout["id"], "complete")
    payment = done["payment"]
    assert (payment["currency"], payment["platform_fee"], payment["net_amount"]) == (
        "eur",
        500,
        9_500,
    )
    pi = await intent_of(sim, checkout["id"])
    assert (pi["currency"], pi["application_fee_amount"]) == ("eur", 500)


async def test_12_4_transfer_goes_with_the_charge_and_pays_out_on_the_orgs_schedule(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    account = await verified_account(sim)
    schedule = {"interval": "weekly", "weekly_anchor": "friday", "delay_days": 3}
    merchant = await new_merchant(gateway, sim, stripe_account_id=account, payout_schedule=schedule)
    checkout = await merchant.checkout((await merchant.price(10_000))["id"])
    await merchant.confirm(checkout["id"], await merchant.card(), key=unique("k"))
    done = await merchant.wait_status(checkout["id"], "complete")

    # The destination charge moves the merchant's share to its account with the charge
    # itself: one transfer from this charge, of the whole amount as on Stripe (the account
    # then pays the platform fee back as the application fee: its net is the payment's).
    pi = await intent_of(sim, checkout["id"])
    charge = await charge_of(sim, pi["id"])
    transfers = (await sim.get("/v1/transfers", params={"destination": account})).json()["data"]
    assert len(transfers) == 1
    [transfer] = transfers
    assert transfer["id"] == charge["transfer"]
    assert (transfer["amount"], transfer["currency"]) == (done["payment"]["amount"], "usd")
    fee = (await sim.get(f"/v1/application_fees/{charge['application_fee']}")).json()
    assert transfer["amount"] - fee["amount"] == done["payment"]["net_amount"]
    assert transfer["source_transaction"] == charge["id"]
    assert 0 <= transfer["created"] - charge["created"] <= 5

    # From there Stripe pays it out on the connected account's schedule: the organization's,
    # which checkout pushed to the account when the organization was created
    # (organization.updated.v1), not during the payment.
    async def applied() -> bool:
        settings = (await sim.get(f"/v1/accounts/{account}")).json()["settings"]
        schedule_now = settings["payouts"]["schedule"]
        return {k: str(v) for k, v in schedule_now.items() if k in schedule} == {
            k: str(v) for k, v in schedule.items()
        }

    assert await eventually(applied)

    # ...and the merchant sees it applied, with its account's state.
    async def shown() -> dict[str, Any] | None:
        r = await merchant.get("/v1/connected-account")
        assert r.status_code == 200, r.text
        body = dict(r.json())
        return body if body["payout_schedule"]["status"] == "applied" else None

    account_out = await eventually(shown)
    assert account_out["id"] == account
    assert (account_out["charges_enabled"], account_out["payouts_enabled"]) == (True, True)
    assert account_out["payout_schedule"]["schedule"] == schedule
    assert account_out["payout_schedule"]["error"] is None


async def test_12_4_a_payout_schedule_stripe_refuses_is_shown_to_the_merchant(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    # A Standard account keeps its own payout settings: Stripe refuses the platform's change.
    account = (await sim.post("/v1/accounts", data={"type": "standard"})).json()["id"]
    schedule = {"interval": "monthly", "monthly_anchor": 15}
    merchant = await new_merchant(gateway, sim, stripe_account_id=account, payout_schedule=schedule)

    async def refused() -> dict[str, Any] | None:
        state = (await merchant.get("/v1/connected-account")).json()["payout_schedule"]
        return dict(state) if state["status"] == "refused" else None

    state = await eventually(refused)
    assert state["schedule"] == schedule
    assert state["error"]["code"] and state["error"]["message"]

    # A new schedule is pending until applied, never shown with the old one's answer.
    weekly = {"interval": "weekly", "weekly_anchor": "monday"}
    changed = await merchant.gateway.patch(
        "/v1/organization", json={"payout_schedule": weekly}, headers=merchant.auth
    )
    assert changed.status_code == 200, changed.text
    now = (await merchant.get("/v1/connected-account")).json()["payout_schedule"]
    assert now["schedule"] == weekly
    assert now["status"] in ("pending", "refused")
    assert now["status"] == "pending" or now["error"]["code"] == state["error"]["code"]
    assert (await eventually(refused))["schedule"] == weekly


async def test_an_organization_without_a_connected_account_gets_404(merchant: Merchant) -> None:
    r = await merchant.get("/v1/connected-account")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "connected_account_not_found"
