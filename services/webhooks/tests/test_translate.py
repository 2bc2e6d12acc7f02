"""Translation of Stripe events into BOS domain events (unit)."""

from __future__ import annotations

from typing import Any

from bos_common.events import (
    AccountUpdatedV1,
    PaymentFailedV1,
    PaymentRefundedV1,
    PaymentRequiresActionV1,
    PaymentSucceededV1,
    SetupSucceededV1,
)
from webhooks.service import org_of, translate

META = {"org_id": "org_1", "checkout_id": "cs_1", "customer_id": "cus_1", "payment_id": "pay_1"}


def event(type_: str, obj: dict[str, Any], account: str | None = None) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "type": type_,
        "created": 1_790_000_000,
        "account": account,
        "data": {"object": obj},
    }


def test_payment_intent_succeeded_carries_bos_ids_time_and_status() -> None:
    [e] = translate(
        event(
            "payment_intent.succeeded",
            {
                "id": "pi_1",
                "amount": 10500,
                "amount_received": 10500,
                "currency": "usd",
                "status": "succeeded",
                "payment_method": "pm_1",
                "customer": "cus_stripe",
                "metadata": META,
            },
            account="acct_1",
        )
    )
    assert isinstance(e, PaymentSucceededV1)
    assert (e.payment_intent_id, e.amount, e.currency, e.status) == (
        "pi_1",
        10500,
        "usd",
        "succeeded",
    )
    assert (e.checkout_id, e.customer_id, e.payment_id) == ("cs_1", "cus_1", "pay_1")
    assert e.stripe_account == "acct_1" and e.stripe_created.timestamp() == 1_790_000_000
    assert (e.payment_method_id, e.stripe_customer_id) == ("pm_1", "cus_stripe")


def test_payment_failed_carries_the_decline() -> None:
    [e] = translate(
        event(
            "payment_intent.payment_failed",
            {
                "id": "pi_1",
                "amount": 2900,
                "currency": "usd",
                "status": "requires_payment_method",
                "last_payment_error": {
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                },
                "metadata": META,
            },
        )
    )
    assert isinstance(e, PaymentFailedV1)
    assert (e.failure_code, e.decline_code) == ("card_declined", "insufficient_funds")
    assert e.status == "requires_payment_method"


def test_requires_action_setup_refund_and_account_translate() -> None:
    [a] = translate(
        event(
            "payment_intent.requires_action",
            {"id": "pi_1", "amount": 1, "currency": "eur", "status": "requires_action"},
        )
    )
    [s] = translate(
        event(
            "setup_intent.succeeded",
            {"id": "seti_1", "status": "succeeded", "payment_method": {"id": "pm_9"}},
        )
    )
    [r] = translate(
        event(
            "charge.refunded",
            {
                "id": "ch_1",
                "payment_intent": "pi_1",
                "amount_refunded": 500,
                "currency": "usd",
                "status": "succeeded",
            },
        )
    )
    [u] = translate(
        event(
            "account.updated", {"id": "acct_1", "charges_enabled": True, "payouts_enabled": False}
        )
    )
    assert isinstance(a, PaymentRequiresActionV1) and a.currency == "eur"
    assert isinstance(s, SetupSucceededV1) and s.payment_method_id == "pm_9"
    assert isinstance(r, PaymentRefundedV1) and r.amount_refunded == 500
    assert isinstance(u, AccountUpdatedV1) and u.charges_enabled and not u.payouts_enabled


def test_9_6_unknown_types_translate_to_nothing() -> None:
    assert translate(event("issuing_card.created", {"id": "ic_1"})) == []


def test_org_comes_from_metadata() -> None:
    assert org_of(event("payment_intent.succeeded", {"id": "pi", "metadata": META})) == "org_1"
    assert org_of(event("payment_intent.succeeded", {"id": "pi"})) is None
