"""The rules for a confirm whose process died (checkout.recovery), without a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from checkout.recovery import (
    REPLAY_CREATE_WITHIN,
    Resolution,
    decide,
    decide_replay_refusal,
    intent_of_payment,
)

# A confirm that died seconds ago.
FRESH = timedelta(seconds=8)


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
    outcome = decide(intent, customer_at_stripe=True, age=FRESH)
    assert outcome.resolution is resolution
    assert outcome.intent is intent


def test_no_customer_at_stripe_means_no_intent_was_ever_asked_for() -> None:
    outcome = decide(None, customer_at_stripe=False, age=FRESH)
    assert outcome.resolution is Resolution.NOT_CHARGED
    assert outcome.intent is None


def test_no_intent_at_stripe_replays_the_create_at_once() -> None:
    """The intent may have been asked for (the customer is at Stripe): the create is sent
    again under its key; no waiting for it to appear."""
    outcome = decide(None, customer_at_stripe=True, age=FRESH)
    assert outcome.resolution is Resolution.REPLAY_CREATE
    assert outcome.intent is None


def test_a_create_stripe_never_saw_long_ago_is_not_sent_again() -> None:
    """An hour on, a create Stripe has no intent for never reached it: the checkout
    reopens uncharged, rather than charging a customer who left (and replaying a key
    Stripe may have forgotten after 24 hours)."""
    just_in_time = decide(
        None, customer_at_stripe=True, age=REPLAY_CREATE_WITHIN - timedelta(seconds=1)
    )
    assert just_in_time.resolution is Resolution.REPLAY_CREATE
    late = decide(None, customer_at_stripe=True, age=REPLAY_CREATE_WITHIN)
    assert late.resolution is Resolution.NOT_CHARGED
    # An intent Stripe has is settled whatever the payment's age.
    found = decide(
        {"id": "pi_1", "status": "succeeded"}, customer_at_stripe=True, age=timedelta(days=3)
    )
    assert found.resolution is Resolution.FULFIL


@pytest.mark.parametrize(
    ("http_status", "error_type", "code", "resolution"),
    [
        # The first create is still executing at Stripe: look again shortly.
        (409, "invalid_request_error", "idempotency_key_in_use", Resolution.WAIT),
        # Declined (Stripe's saved answer to the first create, or this one's own).
        (402, "card_error", "card_declined", Resolution.DECLINED),
        (400, "invalid_request_error", "payment_method_unactivated", Resolution.DECLINED),
        # Nothing decided: a key reused with other parameters (a bug), Stripe down.
        (400, "idempotency_error", None, None),
        (500, "api_error", None, None),
        (503, None, None, None),
        (429, "invalid_request_error", "rate_limit", None),
        (None, None, None, None),
    ],
)
def test_a_refused_replay_decides_only_what_stripe_decided(
    http_status: int | None, error_type: str | None, code: str | None, resolution: Resolution | None
) -> None:
    assert decide_replay_refusal(http_status, error_type, code) is resolution


def test_a_replayed_creates_intent_is_settled_like_any_other() -> None:
    """What the replay answers (the saved response, or the create performed now) is an
    intent, decided by the same rules."""
    replayed = {"id": "pi_5", "status": "succeeded"}
    assert decide(replayed, customer_at_stripe=True, age=FRESH).resolution is Resolution.FULFIL


def test_the_payments_intent_is_found_by_its_metadata() -> None:
    mine = {"id": "pi_2", "metadata": {"payment_id": "pay_2"}}
    intents = [{"id": "pi_3", "metadata": {"payment_id": "pay_3"}}, mine, {"id": "pi_4"}]
    assert intent_of_payment(intents, "pay_2") is mine
    assert intent_of_payment(intents, "pay_9") is None
