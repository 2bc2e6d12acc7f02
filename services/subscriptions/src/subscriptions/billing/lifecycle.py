"""Decisions of a subscription's lifecycle: cancellation, the end, and the scheduler's
step for a due subscription."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bos_common.events import (
    InvoiceVoidedV1,
    SubscriptionCanceledV1,
    SubscriptionEndedV1,
    SubscriptionTrialWillEndV1,
)
from subscriptions.billing.invoicing import issue_invoice
from subscriptions.billing.outcome import Outcome, Policy, notice
from subscriptions.billing.schedule import after_period
from subscriptions.periods import next_period_end, period_end
from subscriptions.rows import Invoice, Subscription

# --- transitions ----------------------------------------------------------------------


def end_subscription(
    sub: Subscription,
    inv: Invoice | None,
    *,
    now: datetime,
    reason: str,
    ended_at: datetime,
    invoice_status: str = "void",
) -> Outcome:
    """Status `canceled` now; an open invoice is never collected."""
    out = Outcome(
        updates={
            "status": "canceled",
            "ended_at": ended_at,
            "canceled_at": sub.canceled_at or now,
            "cancel_reason": sub.cancel_reason or reason,
            "next_action": None,
            "next_action_at": None,
            "pending_invoice_id": None,
        }
    )
    if inv is not None and inv.status == "open":
        out.invoice_updates = {
            "status": invoice_status,
            "voided_at": now,
            "next_payment_attempt": None,
            "updated_at": now,
        }
        out.events.append(
            InvoiceVoidedV1(
                invoice_id=inv.id,
                subscription_id=sub.id,
                customer_id=sub.customer_id,
                voided_at=now,
            )
        )
    out.events.append(
        SubscriptionEndedV1(
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            product_id=sub.product_id,
            reason=out.updates["cancel_reason"],
            ended_at=ended_at,
        )
    )
    return out


def cancel(
    sub: Subscription,
    inv: Invoice | None,
    *,
    now: datetime,
    at_period_end: bool,
    reason: str = "requested",
) -> Outcome:
    """Cancel at once, or at the period end. A trial, a free or one-time subscription, an
    unpaid one and one whose next invoice is already out end at once (a trial is never
    charged, 6.4; a canceled subscription is never charged again)."""
    if sub.status == "canceled":
        return Outcome()
    if sub.cancel_at_period_end and at_period_end:
        return Outcome()  # already scheduled
    immediate = (
        not at_period_end
        or sub.status in ("trialing", "past_due", "incomplete")
        or sub.current_period_end is None
        or sub.current_period_end <= now
        or sub.pending_invoice_id is not None
    )
    if immediate:
        out = end_subscription(sub, inv, now=now, reason=reason, ended_at=now)
        out.updates["canceled_at"] = now
        out.updates["cancel_reason"] = reason
        out.events[-1] = SubscriptionEndedV1(
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            product_id=sub.product_id,
            reason=reason,
            ended_at=now,
        )
        ends_at = now
    else:
        assert sub.current_period_end is not None  # else `immediate`
        ends_at = sub.current_period_end
        out = Outcome(
            updates={
                "cancel_at_period_end": True,
                "canceled_at": now,
                "cancel_reason": reason,
                "next_action": "end_at_period_end",
                "next_action_at": ends_at,
            }
        )
    out.events.insert(
        0,
        SubscriptionCanceledV1(
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            product_id=sub.product_id,
            reason=reason,
            at_period_end=not immediate,
            canceled_at=now,
            ends_at=ends_at,
        ),
    )
    if reason != "upgraded":
        out.notices.append(
            notice(
                "subscription_canceled",
                f"{sub.id}:{now.isoformat()}",
                sub,
                reason=reason,
                ends_at=ends_at,
                at_period_end=not immediate,
            )
        )
    return out


def on_due(sub: Subscription, inv: Invoice | None, *, now: datetime, policy: Policy) -> Outcome:
    """The scheduler's step for a subscription whose `next_action_at` has come."""
    action = sub.next_action
    status = sub.status
    if status == "canceled" or action is None:
        return Outcome(updates={"next_action": None, "next_action_at": None})

    if action == "trial_reminder":
        if status != "trialing":
            return Outcome(updates={"next_action": None, "next_action_at": None})
        assert sub.trial_end is not None, "a subscription in trial has its end"
        if sub.trial_end <= now:  # too late to warn: convert instead
            return on_due(replace(sub, next_action="convert_trial"), inv, now=now, policy=policy)
        out = Outcome(
            updates={
                "trial_reminder_for": sub.trial_end,
                "next_action": "convert_trial",
                "next_action_at": sub.trial_end,
            },
            events=[
                SubscriptionTrialWillEndV1(
                    subscription_id=sub.id,
                    customer_id=sub.customer_id,
                    product_id=sub.product_id,
                    trial_end=sub.trial_end,
                )
            ],
        )
        out.notices.append(
            notice(
                "trial_ending",
                f"{sub.id}:{sub.trial_end.isoformat()}",
                sub,
                trial_end=sub.trial_end,
            )
        )
        return out

    if action == "convert_trial":
        if status != "trialing":
            return Outcome(updates={"next_action": None, "next_action_at": None})
        assert sub.trial_end is not None and sub.interval is not None, "a trial of a plan"
        start = sub.trial_end
        return issue_invoice(
            sub,
            now=now,
            policy=policy,
            reason="trial_conversion",
            anchor=start,
            period_start=start,
            period_end_=period_end(start, sub.interval),
        )

    if action == "renew":
        if status not in ("active",) or sub.current_period_end is None or sub.interval is None:
            return Outcome(updates={"next_action": None, "next_action_at": None})
        if sub.cancel_at_period_end:
            return end_subscription(
                sub,
                inv,
                now=now,
                reason=sub.cancel_reason or "requested",
                ended_at=sub.current_period_end,
            )
        start = sub.current_period_end
        anchor = sub.billing_anchor or sub.current_period_start
        return issue_invoice(
            sub,
            now=now,
            policy=policy,
            reason="subscription_cycle",
            anchor=anchor,
            period_start=start,
            period_end_=next_period_end(anchor, sub.interval, start),
        )

    if action == "end_at_period_end":
        return end_subscription(
            sub,
            inv,
            now=now,
            reason=sub.cancel_reason or "requested",
            ended_at=sub.current_period_end or now,
        )

    if action == "await_payment":
        if inv is None or inv.status != "open":
            nxt, at = after_period(sub)
            return Outcome(
                updates={"pending_invoice_id": None, "next_action": nxt, "next_action_at": at}
            )
        # The result never came (lost, or checkout was down): ask again with the same
        # attempt and idempotency key, so a charge that did happen is not repeated.
        return Outcome(
            updates={"next_action": "await_payment", "next_action_at": now + policy.result_timeout},
            republish=True,
        )

    if action == "retry_payment":
        if inv is None or inv.status != "open":
            nxt, at = after_period(sub)
            return Outcome(
                updates={"pending_invoice_id": None, "next_action": nxt, "next_action_at": at}
            )
        return Outcome(
            updates={"next_action": "await_payment", "next_action_at": now + policy.result_timeout},
            invoice_updates={
                "attempt_count": inv.attempt_count + 1,
                "next_payment_attempt": None,
                "updated_at": now,
            },
            republish=True,
        )

    if action == "dunning_exhausted":
        out = end_subscription(
            sub, inv, now=now, reason="payment_failed", ended_at=now, invoice_status="uncollectible"
        )
        out.updates["canceled_at"] = now
        out.updates["cancel_reason"] = "payment_failed"
        out.events.insert(
            0,
            SubscriptionCanceledV1(
                subscription_id=sub.id,
                customer_id=sub.customer_id,
                product_id=sub.product_id,
                reason="payment_failed",
                at_period_end=False,
                canceled_at=now,
                ends_at=now,
            ),
        )
        out.notices.append(
            notice(
                "subscription_canceled",
                f"{sub.id}:{now.isoformat()}",
                sub,
                reason="payment_failed",
                ends_at=now,
                at_period_end=False,
            )
        )
        return out

    raise ValueError(f"unknown scheduled action {action!r}")
