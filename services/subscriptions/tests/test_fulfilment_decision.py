"""Unit tests of a checkout's fulfilment decision (`billing.fulfil`, no servers): what a
checkout creates, brings back or points at, and the invoice of what it charged."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from subscriptions import billing
from subscriptions.billing import Policy
from subscriptions.testing import checkout_completed, price

T = datetime(2026, 1, 31, 15, tzinfo=UTC)
POLICY = Policy()


def fulfil(ev, **kw):
    args = {"live": None, "canceled_free": None, "trial_used": None, **kw}
    return billing.fulfil(ev, "org_1", now=T, policy=POLICY, **args)


def test_a_paid_monthly_checkout_creates_an_active_subscription_with_its_paid_invoice() -> None:
    ev = checkout_completed(price(amount=5000), completed_at=T)
    done = fulfil(ev)
    assert done.kind == "created"
    sub = done.sub
    assert sub.status == "active" and sub.next_action == "renew"
    assert sub.current_period_end == datetime(2026, 2, 28, 15, tzinfo=UTC)
    assert done.invoice is not None and done.invoice.status == "paid"
    assert done.invoice.amount_paid == 5000 and sub.latest_invoice_id == done.invoice.id
    assert done.attempt == {
        "invoice_id": done.invoice.id,
        "attempt": 1,
        "org_id": "org_1",
        "customer_id": ev.customer_id,
        "status": "succeeded",
        "amount": 5000,
        "currency": "usd",
        "payment_id": ev.payment_id,
        "failure_code": None,
        "failure_message": None,
        "created_at": done.invoice.paid_at,
    }
    assert done.event.subscription_id == sub.id and done.event.status == "active"
    assert done.then.empty and done.trial is None


def test_a_trial_is_remembered_and_only_the_setup_fee_is_invoiced() -> None:
    ev = checkout_completed(price(trial_days=14, setup_fee=900), completed_at=T, trial_days=14)
    assert billing.needs_trial_check(ev)
    done = fulfil(ev)
    assert done.sub.status == "trialing"
    assert done.sub.trial_end == T + timedelta(days=14)
    assert done.trial is not None and done.trial["email"] == ev.customer_email.lower()
    assert done.invoice is not None and done.invoice.total == 900


def test_a_second_trial_is_refused_and_the_first_period_invoiced() -> None:
    ev = checkout_completed(price(trial_days=14), completed_at=T, trial_days=14)
    done = fulfil(ev, trial_used="card")
    assert done.trial_denied and done.event.trial_denied
    assert done.sub.status == "incomplete" and done.trial is None
    assert done.then.new_invoice is not None
    assert done.then.new_invoice.billing_reason == "subscription_create"


def test_a_live_subscription_makes_the_checkout_a_duplicate() -> None:
    ev = checkout_completed(price(), completed_at=T)
    live = fulfil(checkout_completed(ev.price, completed_at=T)).sub
    done = fulfil(ev, live=live)
    assert done.kind == "duplicate" and done.sub is live
    assert done.event.checkout_id == ev.checkout_id and done.invoice is None


def test_a_canceled_free_subscription_is_brought_back() -> None:
    ev = checkout_completed(price(amount=0), completed_at=T)
    assert billing.needs_canceled_free(ev) and not billing.needs_trial_check(ev)
    canceled = replace(fulfil(ev).sub, status="canceled", ended_at=T)
    done = fulfil(ev, canceled_free=canceled)
    assert done.kind == "reactivated"
    assert done.sub.id == canceled.id and done.sub.status == "active"
    assert done.updates["ended_at"] is None and done.event.reactivated


def test_every_completed_checkout_gets_one_confirmation_and_a_duplicate_none() -> None:
    paid = fulfil(checkout_completed(price(amount=5000), completed_at=T))
    assert paid.confirmation is not None and paid.invoice is not None
    assert paid.confirmation.kind == "checkout_completed"
    assert paid.confirmation.dedupe_key == f"checkout_completed:{paid.sub.checkout_id}"
    assert paid.confirmation.invoice_id == paid.invoice.id
    assert paid.confirmation.context["amount_paid"] == 5000

    trial = fulfil(checkout_completed(price(trial_days=14), completed_at=T, trial_days=14))
    assert trial.confirmation is not None and trial.confirmation.invoice_id is None
    assert trial.confirmation.context["status"] == "trialing"
    assert trial.confirmation.context["trial_end"] == (T + timedelta(days=14)).isoformat()

    free_ev = checkout_completed(price(amount=0), completed_at=T)
    free = fulfil(free_ev)
    assert free.confirmation is not None and free.confirmation.context["is_free"]
    canceled = replace(free.sub, status="canceled", ended_at=T)
    back = fulfil(free_ev, canceled_free=canceled)
    assert back.kind == "reactivated" and back.confirmation is not None

    duplicate = fulfil(checkout_completed(price(), completed_at=T), live=paid.sub)
    assert duplicate.kind == "duplicate" and duplicate.confirmation is None
