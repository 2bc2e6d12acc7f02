"""Connect: accounts and verification, destination charges with application fees, direct
charges with Stripe-Account, transfers, application fees, balance transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe

from stripe_sim.testing import confirmed_card_payment

Events = Callable[..., list[dict[str, Any]]]


def _verified_account(
    client: stripe.StripeClient, http: httpx.Client, type_: str = "express"
) -> str:
    account = client.v1.accounts.create(params={"type": type_, "country": "US"})
    response = http.post(f"/_sim/accounts/{account.id}/verify")
    assert response.status_code == 200
    return account.id


def test_express_and_custom_accounts_start_unverified(
    client: stripe.StripeClient, http: httpx.Client, sim_events: Events
) -> None:
    express = client.v1.accounts.create(
        params={
            "type": "express",
            "country": "US",
            "email": "creator@example.com",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    custom = client.v1.accounts.create(params={"type": "custom", "country": "DE"})
    assert express.id.startswith("acct_")
    assert express.type == "express"
    assert custom.type == "custom"
    assert (express.charges_enabled, express.payouts_enabled) == (False, False)
    assert express.requirements.currently_due
    http.post(f"/_sim/accounts/{express.id}/verify")
    verified = client.v1.accounts.retrieve(express.id)
    assert (verified.charges_enabled, verified.payouts_enabled) == (True, True)
    assert verified.capabilities.transfers == "active"
    events = sim_events("account.updated", express.id)
    assert len(events) == 1
    assert events[0]["account"] == express.id
    assert events[0]["data"]["previous_attributes"]["charges_enabled"] is False


def test_account_link_onboarding_page_verifies(client: stripe.StripeClient, sim_url: str) -> None:
    account = client.v1.accounts.create(params={"type": "express"})
    link = client.v1.account_links.create(
        params={
            "account": account.id,
            "refresh_url": "https://bos.example/refresh",
            "return_url": "https://bos.example/return",
            "type": "account_onboarding",
        }
    )
    assert link.url.startswith(f"{sim_url}/_sim/connect/onboarding/{account.id}")
    assert "Complete onboarding" in httpx.get(link.url).text
    done = httpx.post(
        f"{sim_url}/_sim/connect/onboarding/{account.id}",
        data={"outcome": "success", "return_url": "https://bos.example/return"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "https://bos.example/return"
    assert client.v1.accounts.retrieve(account.id).charges_enabled is True


def test_destination_charge_needs_a_verified_account(client: stripe.StripeClient) -> None:
    account = client.v1.accounts.create(params={"type": "express"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "transfer_data": {"destination": account.id},
            }
        )
    assert info.value.param == "transfer_data[destination]"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "transfer_data": {"destination": "acct_x"}}
        )
    assert info.value.code == "resource_missing"


def test_destination_charge_with_application_fee(
    client: stripe.StripeClient, http: httpx.Client, sim_events: Events
) -> None:
    account = _verified_account(client, http)
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(
            10000,
            "pm_card_visa",
            application_fee_amount=1500,
            transfer_data={"destination": account},
            on_behalf_of=account,
            expand=["latest_charge.balance_transaction"],
        )
    )
    assert pi.status == "succeeded"
    assert pi.application_fee_amount == 1500
    assert pi.transfer_data.destination == account
    assert pi.on_behalf_of == account
    charge = pi.latest_charge
    txn = charge.balance_transaction
    assert (txn.amount, txn.fee, txn.net) == (10000, 320, 9680)
    assert [d.type for d in txn.fee_details] == ["stripe_fee"]

    # the whole amount goes to the connected account, which pays the fee back
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert (transfer.amount, transfer.destination) == (10000, account)
    assert transfer.source_transaction == charge.id
    payment_txn = client.v1.balance_transactions.list(
        params={"source": transfer.destination_payment}, options={"stripe_account": account}
    ).data[0]
    assert (payment_txn.amount, payment_txn.fee, payment_txn.net) == (10000, 1500, 8500)
    fees = client.v1.application_fees.list(params={"charge": charge.id})
    assert [(f.amount, f.account) for f in fees.data] == [(1500, account)]
    transfers = client.v1.transfers.list(params={"destination": account})
    assert charge.transfer in [t.id for t in transfers.data]
    created = sim_events("transfer.created", charge.transfer)
    assert len(created) == 1
    assert created[0]["account"] is None
    # events of destination charges belong to the platform
    succeeded = sim_events("payment_intent.succeeded", pi.id)
    assert succeeded[0]["account"] is None


def test_direct_charge_with_stripe_account_header(
    client: stripe.StripeClient, http: httpx.Client, sim_events: Events
) -> None:
    account = _verified_account(client, http, "custom")
    opts = {"stripe_account": account}
    customer = client.v1.customers.create(params={"email": "direct@example.com"}, options=opts)
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(
            2000, "pm_card_visa", customer=customer.id, application_fee_amount=200
        ),
        options=opts,
    )
    assert pi.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(pi.id)  # not visible to the platform
    charge = client.v1.charges.retrieve(pi.latest_charge, options=opts)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction, options=opts)
    assert {d.type: d.amount for d in txn.fee_details} == {"stripe_fee": 88, "application_fee": 200}
    assert txn.net == 2000 - 88 - 200
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount, fee.account) == (200, account)
    events = sim_events("payment_intent.succeeded", pi.id)
    assert events[0]["account"] == account
    # /v1/events is scoped by Stripe-Account
    scoped = client.v1.events.list(params={"type": "payment_intent.succeeded"}, options=opts)
    assert pi.id in [e.data.object["id"] for e in scoped.data]
    platform = client.v1.events.list(params={"type": "payment_intent.succeeded", "limit": 100})
    assert pi.id not in [e.data.object["id"] for e in platform.data]


def test_manual_transfer_and_list(client: stripe.StripeClient, http: httpx.Client) -> None:
    account = _verified_account(client, http)
    pi = client.v1.payment_intents.create(params=confirmed_card_payment(5000, "pm_card_visa"))
    transfer = client.v1.transfers.create(
        params={
            "amount": 3000,
            "currency": "usd",
            "destination": account,
            "source_transaction": pi.latest_charge,
            "transfer_group": "order-77",
        }
    )
    assert transfer.object == "transfer"
    assert transfer.amount == 3000
    listed = client.v1.transfers.list(params={"transfer_group": "order-77"})
    assert [t.id for t in listed.data] == [transfer.id]
    unverified = client.v1.accounts.create(params={"type": "express"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(
            params={"amount": 100, "currency": "usd", "destination": unverified.id}
        )


def test_refund_reverses_transfer_and_application_fee(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    account = _verified_account(client, http)
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(
            10000,
            "pm_card_visa",
            application_fee_amount=1000,
            transfer_data={"destination": account},
        )
    )
    client.v1.refunds.create(
        params={
            "payment_intent": pi.id,
            "amount": 5000,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    charge = client.v1.charges.retrieve(pi.latest_charge)
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert transfer.amount_reversed == 5000
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert fee.amount_refunded == 500
