"""PaymentIntents through the official SDK: success, declines, 3DS, capture, cancel, refunds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe

from stripe_sim.testing import confirmed_card_payment

Events = Callable[..., list[dict[str, Any]]]


def _saved_card(client: stripe.StripeClient, token: str) -> tuple[str, str]:
    customer = client.v1.customers.create(params={"email": "saved@example.com"})
    pm = client.v1.payment_methods.attach(token, params={"customer": customer.id})
    return customer.id, pm.id


def test_create_then_confirm_succeeds_with_charge_and_events(
    client: stripe.StripeClient, sim_events: Events
) -> None:
    pi = client.v1.payment_intents.create(
        params={
            "amount": 4200,
            "currency": "usd",
            "metadata": {"order": "o-1"},
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )
    assert pi.status == "requires_payment_method"
    assert pi.client_secret.startswith(f"{pi.id}_secret_")
    assert pi.object == "payment_intent"
    confirmed = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 4200
    assert confirmed.latest_charge.startswith("ch_")
    assert confirmed.metadata["order"] == "o-1"
    charge = client.v1.charges.retrieve(confirmed.latest_charge)
    assert charge.paid is True and charge.captured is True
    assert charge.payment_method_details.card.last4 == "4242"
    types = [e["type"] for e in sim_events(object_id=pi.id)]
    assert types == ["payment_intent.created", "payment_intent.succeeded"]
    assert len(sim_events("charge.succeeded", confirmed.latest_charge)) == 1


def test_global_style_create_with_confirm(global_stripe: Any) -> None:
    pi = global_stripe.PaymentIntent.create(
        amount=999,
        currency="eur",
        payment_method="pm_card_mastercard",
        confirm=True,
        allowed_payment_method_types=["card"],
    )
    assert pi.status == "succeeded"
    assert pi.currency == "eur"
    assert global_stripe.PaymentIntent.retrieve(pi.id).status == "succeeded"


@pytest.mark.parametrize(
    ("token", "decline_code", "message"),
    [
        ("pm_card_visa_chargeDeclined", "generic_decline", "Your card was declined."),
        (
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
    ],
)
def test_declines(
    client: stripe.StripeClient, sim_events: Events, token: str, decline_code: str, message: str
) -> None:
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params=confirmed_card_payment(2500, token))
    err = info.value
    assert err.http_status == 402
    assert err.code == "card_declined"
    assert err.error.decline_code == decline_code
    assert err.user_message == message
    pi = err.error.payment_intent
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.decline_code == decline_code
    assert pi.payment_method is None
    fetched = client.v1.payment_intents.retrieve(pi.id)
    assert fetched.last_payment_error.code == "card_declined"
    assert len(sim_events("payment_intent.payment_failed", pi.id)) == 1
    # the same intent can be retried with a good card
    ok = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert ok.status == "succeeded"
    assert ok.last_payment_error is None


def test_card_numbers_through_a_payment_method(client: stripe.StripeClient) -> None:
    # the API takes raw card numbers on PaymentMethods only (not in payment_method_data)
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000000000009995", "exp_month": 1, "exp_year": 2040, "cvc": "314"},
        }
    )
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params=confirmed_card_payment(1000, pm.id))
    assert info.value.error.decline_code == "insufficient_funds"


def test_3ds_required_on_session_then_completed(
    client: stripe.StripeClient, http: httpx.Client, sim_events: Events
) -> None:
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(3000, "pm_card_authenticationRequired", use_stripe_sdk=True)
    )
    assert pi.status == "requires_action"
    assert pi.next_action.type == "use_stripe_sdk"
    assert len(sim_events("payment_intent.requires_action", pi.id)) == 1
    response = http.post(f"/_sim/payment_intents/{pi.id}/authenticate", json={"outcome": "success"})
    assert response.status_code == 200
    done = client.v1.payment_intents.retrieve(pi.id)
    assert done.status == "succeeded"
    assert done.next_action is None
    charge = client.v1.charges.retrieve(done.latest_charge)
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"


def test_3ds_failure_leaves_requires_payment_method(
    client: stripe.StripeClient, http: httpx.Client, sim_events: Events
) -> None:
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(3000, "pm_card_authenticationRequiredOnSetup")
    )
    assert pi.status == "requires_action"
    http.post(f"/_sim/payment_intents/{pi.id}/authenticate", json={"outcome": "failure"})
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    assert failed.latest_charge is None
    assert len(sim_events("payment_intent.payment_failed", pi.id)) == 1
    again = http.post(f"/_sim/payment_intents/{pi.id}/authenticate", json={"outcome": "success"})
    assert again.status_code == 400


def test_return_url_gives_redirect_to_url(client: stripe.StripeClient, sim_url: str) -> None:
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(
            3000, "pm_card_authenticationRequired", return_url="https://shop.example/return"
        )
    )
    assert pi.next_action.type == "redirect_to_url"
    url = pi.next_action.redirect_to_url.url
    assert url.startswith(f"{sim_url}/_sim/3ds/{pi.id}")
    page = httpx.get(url)
    assert "Complete" in page.text and "Fail" in page.text
    submitted = httpx.post(
        f"{sim_url}/_sim/3ds/{pi.id}",
        data={"outcome": "success", "return_url": "https://shop.example/return"},
    )
    assert submitted.status_code == 303
    location = submitted.headers["location"]
    assert location.startswith("https://shop.example/return?payment_intent=" + pi.id)
    assert "redirect_status=succeeded" in location
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_3155_off_session_without_setup_needs_authentication(
    client: stripe.StripeClient,
) -> None:
    customer, pm = _saved_card(client, "pm_card_authenticationRequiredOnSetup")
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(
            params=confirmed_card_payment(1000, pm, customer=customer, off_session=True)
        )
    assert info.value.code == "authentication_required"
    assert info.value.error.payment_intent.status == "requires_payment_method"


def test_3155_off_session_succeeds_after_on_session_setup(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    customer = client.v1.customers.create()
    first = client.v1.payment_intents.create(
        params=confirmed_card_payment(
            1000,
            "pm_card_authenticationRequiredOnSetup",
            customer=customer.id,
            setup_future_usage="off_session",
        )
    )
    assert first.status == "requires_action"
    http.post(f"/_sim/payment_intents/{first.id}/authenticate", json={"outcome": "success"})
    first = client.v1.payment_intents.retrieve(first.id)
    assert first.status == "succeeded"
    pm = client.v1.payment_methods.retrieve(first.payment_method)
    assert pm.customer == customer.id, "setup_future_usage attaches the card"
    renewal = client.v1.payment_intents.create(
        params=confirmed_card_payment(1000, pm.id, customer=customer.id, off_session=True)
    )
    assert renewal.status == "succeeded"
    on_session = client.v1.payment_intents.create(
        params=confirmed_card_payment(1000, pm.id, customer=customer.id)
    )
    assert on_session.status == "requires_action", "3155 still needs 3DS on-session"


def test_3184_always_requires_authentication_even_when_set_up(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "usage": "off_session",
        }
    )
    assert si.status == "requires_action"
    http.post(f"/_sim/setup_intents/{si.id}/authenticate", json={"outcome": "success"})
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "succeeded"
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(
            params=confirmed_card_payment(
                1000, si.payment_method, customer=customer.id, off_session=True
            )
        )
    assert info.value.code == "authentication_required"


def test_error_on_requires_action(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(
            params=confirmed_card_payment(
                1000, "pm_card_authenticationRequired", error_on_requires_action=True
            )
        )
    assert info.value.code == "authentication_required"


def test_manual_capture_and_cancel(client: stripe.StripeClient, sim_events: Events) -> None:
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(5000, "pm_card_visa", capture_method="manual")
    )
    assert pi.status == "requires_capture"
    assert pi.amount_capturable == 5000
    captured = client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 4000})
    assert captured.status == "succeeded"
    assert captured.amount_received == 4000
    charge = client.v1.charges.retrieve(captured.latest_charge)
    assert charge.amount_captured == 4000
    assert len(sim_events("payment_intent.succeeded", pi.id)) == 1

    other = client.v1.payment_intents.create(params={"amount": 700, "currency": "usd"})
    canceled = client.v1.payment_intents.cancel(
        other.id, params={"cancellation_reason": "abandoned"}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert len(sim_events("payment_intent.canceled", other.id)) == 1
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.cancel(pi.id)
    assert info.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.confirm(canceled.id, params={"payment_method": "pm_card_visa"})


def test_refunds_partial_full_and_over(client: stripe.StripeClient, sim_events: Events) -> None:
    pi = client.v1.payment_intents.create(params=confirmed_card_payment(1000, "pm_card_visa"))
    partial = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 300})
    assert partial.status == "succeeded"
    assert partial.amount == 300
    assert partial.charge == pi.latest_charge
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (300, False)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 800})
    assert info.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"charge": pi.latest_charge})
    assert rest.amount == 700
    assert client.v1.charges.retrieve(pi.latest_charge).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": pi.id})
    assert info.value.code == "charge_already_refunded"
    refunded_events = sim_events("charge.refunded", pi.latest_charge)
    assert [e["data"]["object"]["amount_refunded"] for e in refunded_events] == [300, 1000]
    listed = client.v1.refunds.list(params={"payment_intent": pi.id})
    assert [r.id for r in listed.data] == [rest.id, partial.id]
    txn = client.v1.balance_transactions.retrieve(rest.balance_transaction)
    assert (txn.type, txn.amount) == ("refund", -700)


def test_refund_of_unpaid_intent_is_rejected(client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        client.v1.refunds.create(params={"payment_intent": pi.id})


def test_automatic_payment_methods_require_return_url_unless_redirects_never(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "automatic_payment_methods": {"enabled": True},
                "payment_method": "pm_card_visa",
                "confirm": True,
            }
        )
    assert info.value.param == "return_url"
    ok = client.v1.payment_intents.create(params=confirmed_card_payment(1000, "pm_card_visa"))
    assert ok.status == "succeeded"
    assert ok.automatic_payment_methods.enabled is True


def test_parameter_validation(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert info.value.code == "amount_too_small"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "customer": "cus_missing"}
        )
    assert (info.value.code, info.value.param) == ("resource_missing", "customer")
    with pytest.raises(stripe.InvalidRequestError, match="application_fee_amount"):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "application_fee_amount": 100}
        )
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.confirm(
            client.v1.payment_intents.create(
                params={"amount": 1000, "currency": "usd", "allowed_payment_method_types": ["card"]}
            ).id
        )
    assert info.value.param == "payment_method"


def test_saved_card_needs_its_customer(client: stripe.StripeClient) -> None:
    customer, pm = _saved_card(client, "pm_card_visa")
    with pytest.raises(stripe.InvalidRequestError, match="customer"):
        client.v1.payment_intents.create(params=confirmed_card_payment(1000, pm))
    other = client.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError, match="different Customer"):
        client.v1.payment_intents.create(params=confirmed_card_payment(1000, pm, customer=other.id))


def test_one_time_card_cannot_be_reused(client: stripe.StripeClient) -> None:
    pm = client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})
    client.v1.payment_intents.create(params=confirmed_card_payment(1000, pm.id))
    with pytest.raises(stripe.InvalidRequestError, match="may not be used again"):
        client.v1.payment_intents.create(params=confirmed_card_payment(1000, pm.id))


def test_list_by_customer(client: stripe.StripeClient) -> None:
    customer, pm = _saved_card(client, "pm_card_visa")
    made = [
        client.v1.payment_intents.create(
            params={"amount": 100 * (i + 1), "currency": "usd", "customer": customer}
        ).id
        for i in range(3)
    ]
    listed = client.v1.payment_intents.list(params={"customer": customer})
    assert [p.id for p in listed.data] == list(reversed(made))
