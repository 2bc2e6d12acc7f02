"""SetupIntents: off-session setup attaches the card; 3DS complete/fail; declines; cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe

from stripe_sim.testing import confirmed_card_payment

Events = Callable[..., list[dict[str, Any]]]


def test_setup_succeeds_and_attaches(client: stripe.StripeClient, sim_events: Events) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "usage": "off_session",
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )
    assert si.status == "requires_payment_method"
    assert si.client_secret.startswith(f"{si.id}_secret_")
    confirmed = client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    assert confirmed.usage == "off_session"
    pm = client.v1.payment_methods.retrieve(confirmed.payment_method)
    assert pm.customer == customer.id
    assert len(sim_events("setup_intent.succeeded", si.id)) == 1
    assert len(sim_events("payment_method.attached", pm.id)) == 1
    renewal = client.v1.payment_intents.create(
        params=confirmed_card_payment(1999, pm.id, customer=customer.id, off_session=True)
    )
    assert renewal.status == "succeeded"


def test_setup_3ds_complete_then_off_session_charge_of_3155(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequiredOnSetup",
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "use_stripe_sdk": True,
        }
    )
    assert si.status == "requires_action"
    assert si.next_action.type == "use_stripe_sdk"
    pm_id = si.payment_method
    assert client.v1.payment_methods.retrieve(pm_id).customer is None, "not attached before 3DS"
    response = http.post(f"/_sim/setup_intents/{si.id}/authenticate", json={"outcome": "success"})
    assert response.json()["status"] == "succeeded"
    assert client.v1.payment_methods.retrieve(pm_id).customer == customer.id
    charge = client.v1.payment_intents.create(
        params=confirmed_card_payment(500, pm_id, customer=customer.id, off_session=True)
    )
    assert charge.status == "succeeded"


def test_setup_3ds_failure(
    client: stripe.StripeClient, http: httpx.Client, sim_events: Events
) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )
    http.post(f"/_sim/setup_intents/{si.id}/authenticate", json={"outcome": "failure"})
    failed = client.v1.setup_intents.retrieve(si.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_setup_error.code == "setup_intent_authentication_failure"
    assert len(sim_events("setup_intent.setup_failed", si.id)) == 1
    assert client.v1.payment_methods.list(params={"customer": customer.id}).data == []


def test_setup_with_declining_card(client: stripe.StripeClient, sim_events: Events) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={"customer": customer.id, "allowed_payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.CardError) as info:
        client.v1.setup_intents.confirm(
            si.id, params={"payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds"}
        )
    assert info.value.error.decline_code == "insufficient_funds"
    assert info.value.error.setup_intent.status == "requires_payment_method"
    assert len(sim_events("setup_intent.setup_failed", si.id)) == 1
    ok = client.v1.setup_intents.confirm(
        si.id, params={"payment_method": "pm_card_chargeCustomerFail"}
    )
    assert ok.status == "succeeded", "0341 sets up fine and fails only when charged"


def test_cancel_and_unexpected_state(client: stripe.StripeClient, sim_events: Events) -> None:
    si = client.v1.setup_intents.create()
    canceled = client.v1.setup_intents.cancel(si.id)
    assert canceled.status == "canceled"
    assert len(sim_events("setup_intent.canceled", si.id)) == 1
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    assert info.value.code == "setup_intent_unexpected_state"


def test_global_style_setup_intent(global_stripe: Any) -> None:
    customer = global_stripe.Customer.create()
    si = global_stripe.SetupIntent.create(
        customer=customer.id,
        payment_method="pm_card_visa",
        confirm=True,
        usage="off_session",
        allowed_payment_method_types=["card"],
    )
    assert si.status == "succeeded"
    listed = global_stripe.SetupIntent.list(customer=customer.id)
    assert [s.id for s in listed.data] == [si.id]
