"""The rules for a confirm whose process died (checkout.recovery), without a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from checkout.recovery import INTENT_MAY_APPEAR_FOR, Resolution, decide, intent_of_payment

SECONDS_AGO = timedelta(seconds=8)


@pytest.mark.parametrize(
    ("status", "resolution"),
    [
        ("succeeded", Resolution.FULFIL),
        ("requires_action", Resolution.AWAIT_CUSTOMER),
        ("requires_confirmation", Resolution.AWAIT_CUSTOMER),
        ("processing", Resolution.WAIT),
        ("requires_payment_method", Resolution.DECLINED),
        ("canceled", Resolution.DECLINED),
    ],
)
def test_the_intent_stripe_has_decides(status: str, resolution: Resolution) -> None:
    intent = {"id": "pi_1", "status": status}
    outcome = decide(intent, customer_at_stripe=True, age=SECONDS_AGO)
    assert outcome.resolution is resolution
    assert outcome.intent is intent


def test_no_customer_at_stripe_means_no_intent_was_ever_asked_for() -> None:
    outcome = decide(None, customer_at_stripe=False, age=SECONDS_AGO)
    assert outcome.resolution is Resolution.NOT_CHARGED
    assert outcome.intent is None


def test_no_intent_yet_is_waited_for_while_a_request_may_still_create_it() -> None:
    """The process died with the intent's request at Stripe: Stripe finishes it."""
    assert decide(None, customer_at_stripe=True, age=SECONDS_AGO).resolution is Resolution.WAIT
    late = decide(None, customer_at_stripe=True, age=INTENT_MAY_APPEAR_FOR)
    assert late.resolution is Resolution.NOT_CHARGED


def test_the_payments_intent_is_found_by_its_metadata() -> None:
    mine = {"id": "pi_2", "metadata": {"payment_id": "pay_2"}}
    intents = [{"id": "pi_3", "metadata": {"payment_id": "pay_3"}}, mine, {"id": "pi_4"}]
    assert intent_of_payment(intents, "pay_2") is mine
    assert intent_of_payment(intents, "pay_9") is None
