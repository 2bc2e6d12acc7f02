"""Customers and PaymentMethods through the official SDK (StripeClient and global style)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_sim.testing import confirmed_card_payment


def _card(number: str, exp_year: int = 2034, cvc: str = "123") -> dict[str, Any]:
    return {
        "type": "card",
        "card": {"number": number, "exp_month": 12, "exp_year": exp_year, "cvc": cvc},
    }


def test_customer_crud_and_list_by_email(client: stripe.StripeClient) -> None:
    email = f"crud-{uuid.uuid4().hex[:8]}@example.com"
    created = client.v1.customers.create(
        params={"email": email, "name": "Ada", "metadata": {"k": "v"}}
    )
    assert created.id.startswith("cus_")
    assert created.email == email
    assert created.metadata["k"] == "v"
    fetched = client.v1.customers.retrieve(created.id)
    assert fetched.name == "Ada"
    updated = client.v1.customers.update(created.id, params={"name": "Ada L."})
    assert updated.name == "Ada L."
    other = client.v1.customers.create(params={"email": f"other-{email}"})
    listed = client.v1.customers.list(params={"email": email})
    assert [c.id for c in listed.data] == [created.id]
    assert other.id not in [c.id for c in listed.data]
    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    assert client.v1.customers.list(params={"email": email}).data == []
    assert client.v1.customers.retrieve(created.id).deleted is True


def test_customer_updated_event_has_previous_attributes(
    client: stripe.StripeClient, sim_events: Callable[..., list[dict[str, Any]]]
) -> None:
    customer = client.v1.customers.create(params={"email": "before@example.com"})
    client.v1.customers.update(customer.id, params={"email": "after@example.com"})
    events = sim_events("customer.updated", customer.id)
    assert len(events) == 1
    assert events[0]["data"]["object"]["email"] == "after@example.com"
    assert events[0]["data"]["previous_attributes"] == {"email": "before@example.com"}


def test_missing_customer_raises_invalid_request(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve("cus_missing")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"


def test_card_payment_method_brand_last4_and_stable_fingerprint(
    client: stripe.StripeClient,
) -> None:
    visa_a = client.v1.payment_methods.create(params=_card("4242424242424242"))
    visa_b = client.v1.payment_methods.create(params=_card("4242 4242 4242 4242"))
    master = client.v1.payment_methods.create(params=_card("5555555555554444"))
    amex = client.v1.payment_methods.create(params=_card("378282246310005", cvc="1234"))
    assert visa_a.type == "card"
    assert (visa_a.card.brand, visa_a.card.last4) == ("visa", "4242")
    assert (master.card.brand, master.card.last4) == ("mastercard", "4444")
    assert (amex.card.brand, amex.card.last4) == ("amex", "0005")
    assert visa_a.card.fingerprint == visa_b.card.fingerprint
    assert visa_a.card.fingerprint != master.card.fingerprint
    assert visa_a.id != visa_b.id
    assert visa_a.card.exp_year == 2034
    assert visa_a.customer is None


@pytest.mark.parametrize(
    ("card", "code", "param"),
    [
        (_card("4242424242424241"), "incorrect_number", "card[number]"),
        (_card("4242424242424242", exp_year=2001), "invalid_expiry_year", "card[exp_year]"),
        (_card("4242424242424242", cvc="12"), "invalid_cvc", "card[cvc]"),
    ],
)
def test_invalid_card_details_are_card_errors(
    client: stripe.StripeClient, card: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_methods.create(params=card)
    assert info.value.code == code
    assert info.value.param == param
    assert info.value.http_status == 402


def test_attach_detach_and_list_by_customer_and_type(
    client: stripe.StripeClient, sim_events: Callable[..., list[dict[str, Any]]]
) -> None:
    customer = client.v1.customers.create(params={"email": "pm@example.com"})
    pm = client.v1.payment_methods.create(params=_card("4242424242424242"))
    attached = client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert attached.customer == customer.id
    second = client.v1.payment_methods.attach(
        "pm_card_mastercard", params={"customer": customer.id}
    )
    assert second.id.startswith("pm_") and second.id != "pm_card_mastercard"
    listed = client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert {p.id for p in listed.data} == {pm.id, second.id}
    via_customer = client.v1.customers.payment_methods.list(customer.id)
    assert {p.id for p in via_customer.data} == {pm.id, second.id}
    assert len(sim_events("payment_method.attached", pm.id)) == 1

    detached = client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    listed = client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert [p.id for p in listed.data] == [second.id]
    with pytest.raises(stripe.InvalidRequestError, match="may not be used again"):
        client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})


def test_attach_to_a_second_customer_is_rejected(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create()
    second = client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": first.id})
    with pytest.raises(stripe.InvalidRequestError, match="already been attached"):
        client.v1.payment_methods.attach(pm.id, params={"customer": second.id})


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [("4000000000000002", "generic_decline"), ("4000000000009995", "insufficient_funds")],
)
def test_decline_cards_cannot_be_attached(
    client: stripe.StripeClient, number: str, decline_code: str
) -> None:
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.create(params=_card(number))
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert info.value.code == "card_declined"
    assert info.value.error.decline_code == decline_code
    assert client.v1.payment_methods.retrieve(pm.id).customer is None


def test_0341_attaches_but_fails_on_charge(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.create(params=_card("4000000000000341"))
    attached = client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert attached.customer == customer.id
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(
            params=confirmed_card_payment(1000, pm.id, customer=customer.id, off_session=True)
        )
    assert info.value.code == "card_declined"
    assert info.value.error.decline_code == "generic_decline"


def test_global_style_customer_and_payment_method(global_stripe: Any) -> None:
    customer = global_stripe.Customer.create(email="global@example.com")
    pm = global_stripe.PaymentMethod.attach("pm_card_visa", customer=customer.id)
    listed = global_stripe.PaymentMethod.list(customer=customer.id, type="card")
    assert [p.id for p in listed.data] == [pm.id]
    modified = global_stripe.Customer.modify(
        customer.id, invoice_settings={"default_payment_method": pm.id}
    )
    assert modified.invoice_settings.default_payment_method == pm.id
    stranger = global_stripe.PaymentMethod.create(type="card", card={"token": "tok_visa"})
    with pytest.raises(stripe.InvalidRequestError, match="does not have a payment method"):
        global_stripe.Customer.modify(
            customer.id, invoice_settings={"default_payment_method": stranger.id}
        )
