"""Unit tests of the billing decisions (no servers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from subscriptions import billing
from subscriptions.billing import Policy
from subscriptions.testing import invoice_row, subscription_row

T = datetime(2026, 1, 31, 15, tzinfo=UTC)
DAY = timedelta(days=1)


def sub(**kw):
    return subscription_row(
        **{"current_period_start": T, "current_period_end": T + 28 * DAY, "billing_anchor": T, **kw}
    )


def test_discounts_percent_rounds_half_up_and_amount_never_exceeds_subtotal():
    assert billing.discount_amount({"percent_off": 20}, 10000) == 2000
    assert billing.discount_amount({"percent_off": 33.33}, 999) == 333
    assert billing.discount_amount({"percent_off": 12.5}, 4) == 1  # 0.5 -> 1
    assert billing.discount_amount({"amount_off": 1000}, 5000) == 1000
    assert billing.discount_amount({"amount_off": 9000}, 5000) == 5000, "never below zero"


def test_7_7_discount_window_once_repeating_forever():
    start = T
    once = {"duration": "once"}
    assert billing.discount_applies(once, None, T)
    assert billing.discount_applies(once, start, start)
    assert not billing.discount_applies(once, start, start + 31 * DAY)
    rep = {"duration": "repeating", "duration_in_months": 2}
    assert billing.discount_applies(rep, start, start + 28 * DAY)
    assert not billing.discount_applies(rep, start, start + 59 * DAY)
    forever = {"duration": "forever"}
    assert billing.discount_applies(forever, start, start + 3650 * DAY)
    assert not billing.discount_applies(None, start, start)


def test_hard_declines():
    assert billing.is_hard_decline("card_declined", "stolen_card")
    assert billing.is_hard_decline("expired_card", None)
    assert billing.is_hard_decline("authentication_required", None)
    assert not billing.is_hard_decline("card_declined", "insufficient_funds")
    assert not billing.is_hard_decline("card_declined", "generic_decline")


def test_6_4_cancel_in_trial_is_immediate_even_at_period_end():
    s = sub(status="trialing", trial_end=T + 14 * DAY, current_period_end=T + 14 * DAY)
    out = billing.cancel(s, None, now=T + DAY, at_period_end=True)
    assert out.updates["status"] == "canceled" and out.updates["ended_at"] == T + DAY
    assert out.new_invoice is None


def test_cancel_at_period_end_schedules_the_end():
    out = billing.cancel(sub(), None, now=T + DAY, at_period_end=True)
    assert out.updates["cancel_at_period_end"] is True
    assert out.updates["next_action"] == "end_at_period_end"
    assert out.updates["next_action_at"] == T + 28 * DAY
    assert billing.cancel(sub(status="canceled"), None, now=T, at_period_end=False).empty


def test_payment_failure_schedule_then_exhaustion():
    policy = Policy(retry_days=(1, 3, 5))
    inv = invoice_row(id="inv_1", org_id="org_1", customer_id="cus_1", amount_due=5000)
    kw = {
        "policy": policy,
        "payment_id": None,
        "amount": 5000,
        "failure_code": "card_declined",
        "decline_code": "insufficient_funds",
        "failure_message": "no",
        "hard_decline": None,
    }
    out = billing.on_payment_failed(sub(), inv, now=T, attempt=1, failed_at=T, **kw)
    assert out.updates["status"] == "past_due"
    assert out.updates["next_action"] == "retry_payment"
    assert out.updates["next_action_at"] == T + DAY
    since = sub(status="past_due", past_due_since=T)
    out = billing.on_payment_failed(
        since, replace(inv, attempt_count=3), now=T + 3 * DAY, attempt=3, failed_at=T, **kw
    )
    assert out.updates["next_action_at"] == T + 5 * DAY
    out = billing.on_payment_failed(
        since, replace(inv, attempt_count=4), now=T + 5 * DAY, attempt=4, failed_at=T, **kw
    )
    assert out.updates["status"] == "canceled"
    assert out.invoice_updates["status"] == "uncollectible"
    # A failure for an older attempt changes nothing but the history.
    stale = billing.on_payment_failed(
        since, replace(inv, attempt_count=2), now=T, attempt=1, failed_at=T, **kw
    )
    assert stale.updates == {} and stale.attempt is not None


def test_zero_total_invoice_is_paid_at_once():
    s = sub(coupon={"percent_off": 100, "duration": "forever"}, discount_start=T)
    out = billing.on_due(s, None, now=T + 28 * DAY, policy=Policy())
    assert out.new_invoice is not None
    assert out.new_invoice.status == "paid" and out.new_invoice.total == 0
    assert out.updates["current_period_end"] > T + 28 * DAY
    assert out.updates["next_action"] == "renew"


def test_trial_reminder_announces_trial_will_end_once_with_the_customer_notice():
    trial_end = T + 14 * DAY
    s = sub(
        status="trialing",
        trial_end=trial_end,
        current_period_end=trial_end,
        next_action="trial_reminder",
    )
    out = billing.on_due(s, None, now=trial_end - 3 * DAY, policy=Policy())
    [event] = out.events
    assert event.event_type == "subscription.trial_will_end.v1"
    assert (event.subscription_id, event.customer_id, event.product_id) == (
        "sub_1",
        "cus_1",
        "prod_1",
    )
    assert event.trial_end == trial_end
    assert [n.kind for n in out.notices] == ["trial_ending"]
    assert out.updates["trial_reminder_for"] == trial_end, "not reminded again for this end"

    converting = billing.on_due(
        sub(status="trialing", trial_end=trial_end, next_action="convert_trial"),
        None,
        now=trial_end,
        policy=Policy(),
    )
    assert "subscription.trial_will_end.v1" not in [e.event_type for e in converting.events]
