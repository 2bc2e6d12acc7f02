"""Provider contract: the Stripe behaviour BOS relies on, run against whatever
``STRIPE_API_BASE`` / ``STRIPE_SECRET_KEY`` point to.

- Neither set: the test starts ``tools/stripe-sim`` itself (CI).
- ``STRIPE_SECRET_KEY=sk_test_...`` alone: real Stripe test mode (https://api.stripe.com).
- Both: that base URL with that key.

Only test-mode keys are accepted. Steps that need a human (completing a 3DS challenge) or a
pre-onboarded connected account use the simulator's ``/_sim`` controls; against real Stripe
they run only as far as the API allows (or use ``STRIPE_CONNECTED_ACCOUNT`` when given).
Only ``pm_card_*`` test PaymentMethods are used, so no raw card numbers reach Stripe.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import stripe

from stripe_sim.testing import run_simulator

REAL_STRIPE = "https://api.stripe.com"


@dataclass(frozen=True)
class Provider:
    client: stripe.StripeClient
    base: str
    is_simulator: bool

    def sim(self, method: str, path: str, json: dict[str, object] | None = None) -> httpx.Response:
        assert self.is_simulator, "simulator-only control"
        response = httpx.request(method, f"{self.base}{path}", json=json, timeout=10)
        response.raise_for_status()
        return response


def _probe_simulator(base: str) -> bool:
    try:
        return httpx.get(f"{base}/_sim/stats", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    key = os.environ.get("STRIPE_SECRET_KEY")
    base = os.environ.get("STRIPE_API_BASE")
    if key and not key.startswith(("sk_test_", "rk_test_")):
        pytest.skip("the provider contract only runs with a test-mode key")
    if base is None and key is None:
        with run_simulator() as url:
            yield _provider("sk_test_contract", url)
        return
    yield _provider(key or "sk_test_contract", base or REAL_STRIPE)


def _provider(key: str, base: str) -> Provider:
    client = stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=2)
    return Provider(client, base, base != REAL_STRIPE and _probe_simulator(base))


def _confirmed(provider: Provider, **params: object) -> stripe.PaymentIntent:
    # explicit card-only: on real Stripe, dashboard-enabled redirect methods would otherwise
    # require a return_url on a server-side confirm
    body: dict[str, object] = {
        "amount": 2000,
        "currency": "usd",
        "confirm": True,
        "payment_method_types": ["card"],
    }
    body.update(params)
    return provider.client.v1.payment_intents.create(params=body)


def test_customer_create_retrieve_update_list(provider: Provider) -> None:
    email = f"contract-{uuid.uuid4().hex[:10]}@example.com"
    customer = provider.client.v1.customers.create(
        params={"email": email, "metadata": {"bos_customer_id": "c-1"}}
    )
    assert customer.id.startswith("cus_")
    assert provider.client.v1.customers.retrieve(customer.id).email == email
    updated = provider.client.v1.customers.update(customer.id, params={"name": "Contract"})
    assert updated.name == "Contract"
    assert updated.metadata["bos_customer_id"] == "c-1"
    listed = provider.client.v1.customers.list(params={"email": email})
    assert [c.id for c in listed.data] == [customer.id]


def test_payment_method_attach_and_list(provider: Provider) -> None:
    customer = provider.client.v1.customers.create()
    pm = provider.client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert pm.customer == customer.id
    assert (pm.card.brand, pm.card.last4) == ("visa", "4242")
    assert pm.card.fingerprint
    listed = provider.client.v1.payment_methods.list(
        params={"customer": customer.id, "type": "card"}
    )
    assert [p.id for p in listed.data] == [pm.id]


def test_payment_intent_success(provider: Provider) -> None:
    pi = _confirmed(
        provider,
        payment_method="pm_card_visa",
        metadata={"checkout_id": "chk_contract"},
        expand=["latest_charge.balance_transaction"],
    )
    assert pi.status == "succeeded"
    assert pi.amount_received == 2000
    assert pi.metadata["checkout_id"] == "chk_contract"
    charge = pi.latest_charge
    assert charge.paid is True
    if charge.balance_transaction is not None:  # real Stripe may create it asynchronously
        assert charge.balance_transaction.amount == 2000
        assert charge.balance_transaction.fee > 0


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_visa_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
def test_payment_intent_declines(
    provider: Provider, payment_method: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as info:
        _confirmed(provider, payment_method=payment_method)
    assert info.value.http_status == 402
    assert info.value.code == "card_declined"
    assert info.value.error.decline_code == decline_code
    pi = info.value.error.payment_intent
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.decline_code == decline_code


def test_payment_intent_3ds_requires_action(provider: Provider) -> None:
    pi = _confirmed(provider, payment_method="pm_card_authenticationRequired")
    assert pi.status == "requires_action"
    assert pi.next_action.type == "use_stripe_sdk"
    if not provider.is_simulator:
        return  # completing the challenge needs a browser on real Stripe
    provider.sim("POST", f"/_sim/payment_intents/{pi.id}/authenticate", {"outcome": "success"})
    assert provider.client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    failing = _confirmed(provider, payment_method="pm_card_authenticationRequired")
    provider.sim("POST", f"/_sim/payment_intents/{failing.id}/authenticate", {"outcome": "failure"})
    failed = provider.client.v1.payment_intents.retrieve(failing.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


def test_off_session_charge_needing_authentication_fails(provider: Provider) -> None:
    customer = provider.client.v1.customers.create()
    pm = provider.client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": customer.id}
    )
    with pytest.raises(stripe.CardError) as info:
        _confirmed(provider, customer=customer.id, payment_method=pm.id, off_session=True)
    assert info.value.code == "authentication_required"


def test_setup_intent_off_session_then_charge(provider: Provider) -> None:
    customer = provider.client.v1.customers.create()
    si = provider.client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "usage": "off_session",
            "confirm": True,
            "payment_method_types": ["card"],
        }
    )
    assert si.status == "succeeded"
    pm = provider.client.v1.payment_methods.retrieve(si.payment_method)
    assert pm.customer == customer.id
    renewal = _confirmed(provider, customer=customer.id, payment_method=pm.id, off_session=True)
    assert renewal.status == "succeeded"


def test_idempotent_replay_and_conflict(provider: Provider) -> None:
    key = f"contract-{uuid.uuid4()}"
    params = {
        "amount": 1500,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "payment_method_types": ["card"],
        "confirm": True,
    }
    first = provider.client.v1.payment_intents.create(
        params=params, options={"idempotency_key": key}
    )
    again = provider.client.v1.payment_intents.create(
        params=params, options={"idempotency_key": key}
    )
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        provider.client.v1.payment_intents.create(
            params={**params, "amount": 1600},
            options={"idempotency_key": key},
        )


def test_refund(provider: Provider) -> None:
    pi = _confirmed(provider, payment_method="pm_card_visa")
    refund = provider.client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    assert refund.amount == 500
    assert refund.status in ("succeeded", "pending")


def _connected_account(provider: Provider) -> str:
    configured = os.environ.get("STRIPE_CONNECTED_ACCOUNT")
    if configured:
        return configured
    if not provider.is_simulator:
        pytest.skip("set STRIPE_CONNECTED_ACCOUNT to an onboarded test account")
    account = provider.client.v1.accounts.create(params={"type": "express", "country": "US"})
    assert account.charges_enabled is False
    provider.sim("POST", f"/_sim/accounts/{account.id}/verify")
    assert provider.client.v1.accounts.retrieve(account.id).charges_enabled is True
    return account.id


def test_application_fee_on_destination_charge(provider: Provider) -> None:
    account = _connected_account(provider)
    pi = _confirmed(
        provider,
        amount=10000,
        payment_method="pm_card_visa",
        application_fee_amount=1200,
        transfer_data={"destination": account},
    )
    assert pi.status == "succeeded"
    assert pi.application_fee_amount == 1200
    charge = provider.client.v1.charges.retrieve(pi.latest_charge)
    assert charge.transfer
    transfer = provider.client.v1.transfers.retrieve(charge.transfer)
    assert transfer.destination == account
    assert transfer.amount == 10000  # the whole amount; the account pays the fee back
    assert charge.application_fee
    fee = provider.client.v1.application_fees.retrieve(charge.application_fee)
    assert fee.amount == 1200
    assert fee.account == account
