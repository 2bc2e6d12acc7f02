"""The billing engine's decisions, as pure functions over subscription and invoice rows
(plain dicts): what a due subscription does, what a payment result or a cancellation
changes, which events and emails follow. `service.py` and `scheduler.py` load the rows,
call these and write the outcome, so one rule has one implementation for the single-row
paths (API, consumers) and the batched scheduler alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bos_common.events import (
    Event,
    InvoiceVoidedV1,
    SubscriptionCanceledV1,
    SubscriptionEndedV1,
    SubscriptionPastDueV1,
    SubscriptionRenewedV1,
    SubscriptionTrialWillEndV1,
)
from bos_common.ids import new_id
from subscriptions.periods import add_months, next_period_end, period_end

Row = dict[str, Any]

# Stripe decline codes after which retrying the same card cannot succeed (the customer
# must act: new card, or authenticate on-session).
HARD_DECLINE_CODES = frozenset(
    {
        "stolen_card",
        "lost_card",
        "pickup_card",
        "fraudulent",
        "restricted_card",
        "security_violation",
        "invalid_account",
        "new_account_information_available",
        "card_not_supported",
        "currency_not_supported",
        "expired_card",
        "incorrect_number",
        "invalid_number",
        "revocation_of_authorization",
        "revocation_of_all_authorizations",
        "stop_payment_order",
        "transaction_not_allowed",
        "authentication_required",
    }
)
HARD_FAILURE_CODES = frozenset(
    {
        "expired_card",
        "incorrect_number",
        "invalid_number",
        "card_not_supported",
        "authentication_required",
        "payment_method_unactivated",
        "resource_missing",
    }
)


@dataclass(frozen=True)
class Policy:
    retry_days: tuple[int, ...] = (1, 3, 5)
    grace_days: int = 7
    result_timeout: timedelta = timedelta(hours=1)
    reminder_days: int = 3


@dataclass
class Notice:
    kind: str
    dedupe_key: str
    context: dict[str, Any]
    invoice_id: str | None = None


@dataclass
class Outcome:
    """What one decision changes. `new_invoice` is inserted (numbered by the writer) and
    announced with invoice.created.v1; `republish` re-announces an existing open invoice
    (a resend or a dunning retry)."""

    updates: Row = field(default_factory=dict)
    new_invoice: Row | None = None
    invoice_updates: Row = field(default_factory=dict)
    republish: bool = False
    events: list[Event] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    attempt: Row | None = None  # an invoice_attempts row (payment history)
    became_paid_active: bool = False  # a paid subscription starts: end free ones (5.2)

    @property
    def empty(self) -> bool:
        return not (
            self.updates
            or self.new_invoice
            or self.invoice_updates
            or self.republish
            or self.events
            or self.notices
            or self.attempt
        )


# --- amounts ------------------------------------------------------------------------


def is_hard_decline(failure_code: str | None, decline_code: str | None) -> bool:
    return (decline_code in HARD_DECLINE_CODES) or (failure_code in HARD_FAILURE_CODES)


def discount_amount(coupon: Row | None, subtotal: int) -> int:
    if not coupon or subtotal <= 0:
        return 0
    if coupon.get("percent_off") is not None:
        value = (Decimal(subtotal) * Decimal(str(coupon["percent_off"])) / 100).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return min(subtotal, int(value))
    if coupon.get("amount_off") is not None:
        return min(subtotal, int(coupon["amount_off"]))
    return 0


def discount_end(coupon: Row | None, discount_start: datetime | None) -> datetime | None:
    if not coupon or discount_start is None or coupon.get("duration") != "repeating":
        return None
    return add_months(discount_start, int(coupon.get("duration_in_months") or 0))


def discount_applies(
    coupon: Row | None, discount_start: datetime | None, period_start: datetime
) -> bool:
    """Whether the coupon discounts the period starting at `period_start`. The discount
    starts with the first paid period (after a trial, 7.7); `once` covers that period
    only, `repeating` the periods starting within its months, `forever` all."""
    if not coupon:
        return False
    if discount_start is None or period_start <= discount_start:
        return discount_start is None or period_start == discount_start
    duration = coupon.get("duration")
    if duration == "forever":
        return True
    if duration == "repeating":
        end = discount_end(coupon, discount_start)
        return end is not None and period_start < end
    return False  # once


def describe_period(start: datetime, end: datetime | None) -> str:
    if end is None:
        return start.strftime("%b %d, %Y")
    return f"{start.strftime('%b %d, %Y')} - {end.strftime('%b %d, %Y')}"


def build_invoice(
    sub: Row, *, now: datetime, reason: str, period_start: datetime, period_end_: datetime | None
) -> Row:
    """A new (open) invoice for one period of `sub`, numbered later."""
    subtotal = int(sub["amount"])
    coupon = sub.get("coupon")
    start = sub.get("discount_start") or period_start
    applies = discount_applies(coupon, start, period_start)
    discount = discount_amount(coupon, subtotal) if applies else 0
    tax = 0
    total = subtotal - discount + tax
    lines = [
        {
            "type": "subscription",
            "description": f"{sub['product_name']} ({describe_period(period_start, period_end_)})",
            "quantity": 1,
            "unit_amount": subtotal,
            "amount": subtotal,
            "period_start": period_start.isoformat(),
            "period_end": period_end_.isoformat() if period_end_ else None,
        }
    ]
    return {
        "id": new_id("inv"),
        "org_id": sub["org_id"],
        "number": None,
        "subscription_id": sub["id"],
        "customer_id": sub["customer_id"],
        "customer_email": sub.get("customer_email"),
        "customer_name": sub.get("customer_name"),
        "status": "open" if total > 0 else "paid",
        "billing_reason": reason,
        "currency": sub["currency"],
        "subtotal": subtotal,
        "discount_amount": discount,
        "tax": tax,
        "total": total,
        "amount_due": total,
        "amount_paid": 0,
        "lines": lines,
        "discount": coupon_summary(coupon, discount) if discount else None,
        "period_start": period_start,
        "period_end": period_end_,
        "attempt_count": 1,
        "next_payment_attempt": None,
        "payment_id": None,
        "payment_intent_id": None,
        "paid_at": now if total <= 0 else None,
        "voided_at": None,
        "last_failure_code": None,
        "last_failure_message": None,
        "created_at": now,
        "updated_at": now,
    }


def coupon_summary(coupon: Row | None, amount: int) -> Row | None:
    if not coupon:
        return None
    return {
        "coupon_id": coupon.get("coupon_id"),
        "code": coupon.get("code"),
        "percent_off": coupon.get("percent_off"),
        "amount_off": coupon.get("amount_off"),
        "duration": coupon.get("duration"),
        "duration_in_months": coupon.get("duration_in_months"),
        "amount": amount,
    }


# --- scheduling ---------------------------------------------------------------------


def after_period(sub: Row) -> tuple[str | None, datetime | None]:
    """What comes at the end of the current period."""
    if sub.get("interval") is None or sub.get("current_period_end") is None:
        return None, None
    if sub.get("cancel_at_period_end"):
        return "end_at_period_end", sub["current_period_end"]
    return "renew", sub["current_period_end"]


def trial_schedule(sub: Row, now: datetime, policy: Policy) -> tuple[str, datetime]:
    trial_end: datetime = sub["trial_end"]
    reminder = trial_end - timedelta(days=policy.reminder_days)
    if policy.reminder_days and reminder > now and sub.get("trial_reminder_for") != trial_end:
        return "trial_reminder", reminder
    return "convert_trial", trial_end


def sub_context(sub: Row) -> Row:
    return {
        "subscription_id": sub["id"],
        "product_name": sub["product_name"],
        "customer_name": sub.get("customer_name"),
        "amount": sub["amount"],
        "currency": sub["currency"],
        "interval": sub.get("interval"),
    }


def notice(kind: str, key: str, sub: Row, invoice_id: str | None = None, **extra: Any) -> Notice:
    context = sub_context(sub)
    context.update({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in extra.items()})
    return Notice(kind=kind, dedupe_key=f"{kind}:{key}", context=context, invoice_id=invoice_id)


# --- transitions ----------------------------------------------------------------------


def end_subscription(
    sub: Row,
    inv: Row | None,
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
            "canceled_at": sub.get("canceled_at") or now,
            "cancel_reason": sub.get("cancel_reason") or reason,
            "next_action": None,
            "next_action_at": None,
            "pending_invoice_id": None,
        }
    )
    if inv is not None and inv["status"] == "open":
        out.invoice_updates = {
            "status": invoice_status,
            "voided_at": now,
            "next_payment_attempt": None,
            "updated_at": now,
        }
        out.events.append(
            InvoiceVoidedV1(
                invoice_id=inv["id"],
                subscription_id=sub["id"],
                customer_id=sub["customer_id"],
                voided_at=now,
            )
        )
    out.events.append(
        SubscriptionEndedV1(
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            product_id=sub["product_id"],
            reason=out.updates["cancel_reason"],
            ended_at=ended_at,
        )
    )
    return out


def cancel(
    sub: Row, inv: Row | None, *, now: datetime, at_period_end: bool, reason: str = "requested"
) -> Outcome:
    """Cancel at once, or at the period end. A trial, a free or one-time subscription, an
    unpaid one and one whose next invoice is already out end at once (a trial is never
    charged, 6.4; a canceled subscription is never charged again)."""
    if sub["status"] == "canceled":
        return Outcome()
    if sub.get("cancel_at_period_end") and at_period_end:
        return Outcome()  # already scheduled
    immediate = (
        not at_period_end
        or sub["status"] in ("trialing", "past_due", "incomplete")
        or sub.get("current_period_end") is None
        or sub["current_period_end"] <= now
        or sub.get("pending_invoice_id") is not None
    )
    if immediate:
        out = end_subscription(sub, inv, now=now, reason=reason, ended_at=now)
        out.updates["canceled_at"] = now
        out.updates["cancel_reason"] = reason
        out.events[-1] = SubscriptionEndedV1(
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            product_id=sub["product_id"],
            reason=reason,
            ended_at=now,
        )
        ends_at = now
    else:
        ends_at = sub["current_period_end"]
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
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            product_id=sub["product_id"],
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
                f"{sub['id']}:{now.isoformat()}",
                sub,
                reason=reason,
                ends_at=ends_at,
                at_period_end=not immediate,
            )
        )
    return out


def on_due(sub: Row, inv: Row | None, *, now: datetime, policy: Policy) -> Outcome:
    """The scheduler's step for a subscription whose `next_action_at` has come."""
    action = sub.get("next_action")
    status = sub["status"]
    if status == "canceled" or action is None:
        return Outcome(updates={"next_action": None, "next_action_at": None})

    if action == "trial_reminder":
        if status != "trialing":
            return Outcome(updates={"next_action": None, "next_action_at": None})
        if sub["trial_end"] <= now:  # too late to warn: convert instead
            return on_due({**sub, "next_action": "convert_trial"}, inv, now=now, policy=policy)
        out = Outcome(
            updates={
                "trial_reminder_for": sub["trial_end"],
                "next_action": "convert_trial",
                "next_action_at": sub["trial_end"],
            },
            events=[
                SubscriptionTrialWillEndV1(
                    subscription_id=sub["id"],
                    customer_id=sub["customer_id"],
                    product_id=sub["product_id"],
                    trial_end=sub["trial_end"],
                )
            ],
        )
        out.notices.append(
            notice(
                "trial_ending",
                f"{sub['id']}:{sub['trial_end'].isoformat()}",
                sub,
                trial_end=sub["trial_end"],
            )
        )
        return out

    if action == "convert_trial":
        if status != "trialing":
            return Outcome(updates={"next_action": None, "next_action_at": None})
        start = sub["trial_end"]
        return issue_invoice(
            sub,
            now=now,
            policy=policy,
            reason="trial_conversion",
            anchor=start,
            period_start=start,
            period_end_=period_end(start, sub["interval"]),
        )

    if action == "renew":
        if status not in ("active",) or sub.get("current_period_end") is None:
            return Outcome(updates={"next_action": None, "next_action_at": None})
        if sub.get("cancel_at_period_end"):
            return end_subscription(
                sub,
                inv,
                now=now,
                reason=sub.get("cancel_reason") or "requested",
                ended_at=sub["current_period_end"],
            )
        start = sub["current_period_end"]
        anchor = sub.get("billing_anchor") or sub["current_period_start"]
        return issue_invoice(
            sub,
            now=now,
            policy=policy,
            reason="subscription_cycle",
            anchor=anchor,
            period_start=start,
            period_end_=next_period_end(anchor, sub["interval"], start),
        )

    if action == "end_at_period_end":
        return end_subscription(
            sub,
            inv,
            now=now,
            reason=sub.get("cancel_reason") or "requested",
            ended_at=sub.get("current_period_end") or now,
        )

    if action == "await_payment":
        if inv is None or inv["status"] != "open":
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
        if inv is None or inv["status"] != "open":
            nxt, at = after_period(sub)
            return Outcome(
                updates={"pending_invoice_id": None, "next_action": nxt, "next_action_at": at}
            )
        return Outcome(
            updates={"next_action": "await_payment", "next_action_at": now + policy.result_timeout},
            invoice_updates={
                "attempt_count": inv["attempt_count"] + 1,
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
                subscription_id=sub["id"],
                customer_id=sub["customer_id"],
                product_id=sub["product_id"],
                reason="payment_failed",
                at_period_end=False,
                canceled_at=now,
                ends_at=now,
            ),
        )
        out.notices.append(
            notice(
                "subscription_canceled",
                f"{sub['id']}:{now.isoformat()}",
                sub,
                reason="payment_failed",
                ends_at=now,
                at_period_end=False,
            )
        )
        return out

    raise ValueError(f"unknown scheduled action {action!r}")


def issue_invoice(
    sub: Row,
    *,
    now: datetime,
    policy: Policy,
    reason: str,
    anchor: datetime,
    period_start: datetime,
    period_end_: datetime | None,
) -> Outcome:
    invoice = build_invoice(
        sub, now=now, reason=reason, period_start=period_start, period_end_=period_end_
    )
    updates: Row = {
        "billing_anchor": anchor,
        "latest_invoice_id": invoice["id"],
        "pending_invoice_id": invoice["id"],
        "next_action": "await_payment",
        "next_action_at": now + policy.result_timeout,
    }
    if sub.get("coupon") and sub.get("discount_start") is None:
        updates["discount_start"] = period_start
    out = Outcome(updates=updates, new_invoice=invoice)
    if invoice["status"] == "paid":
        # Nothing to collect (a 100% discount): the period advances at once.
        paid = on_paid(
            {**sub, **updates},
            {**invoice, "status": "open"},
            now=now,
            amount=0,
            payment_id=None,
            payment_intent_id=None,
            attempt=1,
            paid_at=now,
        )
        out.updates.update(paid.updates)
        out.events.extend(paid.events)
        out.notices.extend(paid.notices)
        out.became_paid_active = paid.became_paid_active
    return out


def on_paid(
    sub: Row,
    inv: Row,
    *,
    now: datetime,
    amount: int,
    payment_id: str | None,
    payment_intent_id: str | None,
    attempt: int,
    paid_at: datetime,
) -> Outcome:
    """Checkout charged the invoice: the period advances, dunning stops."""
    out = Outcome()
    if inv["status"] == "paid":
        return out  # already recorded
    out.attempt = {
        "invoice_id": inv["id"],
        "attempt": attempt,
        "org_id": inv["org_id"],
        "customer_id": inv["customer_id"],
        "status": "succeeded",
        "amount": amount,
        "currency": inv["currency"],
        "payment_id": payment_id,
        "failure_code": None,
        "failure_message": None,
        "created_at": paid_at,
    }
    out.invoice_updates = {
        "amount_paid": amount,
        "paid_at": paid_at,
        "payment_id": payment_id,
        "payment_intent_id": payment_intent_id,
        "next_payment_attempt": None,
        "updated_at": now,
    }
    if inv["status"] in ("void", "uncollectible") or sub["status"] == "canceled":
        # The charge raced a cancellation: recorded, the subscription stays ended
        # (invoice.voided.v1 already told checkout to refund it).
        return out
    out.invoice_updates["status"] = "paid"
    new_end = inv.get("period_end")
    updates: Row = {
        "status": "active",
        "pending_invoice_id": None,
        "past_due_since": None,
        "hard_declined": False,
    }
    cur_end = sub.get("current_period_end")
    if cur_end is None or new_end is None or new_end > cur_end:
        updates["current_period_start"] = inv["period_start"]
        updates["current_period_end"] = new_end
    merged = {**sub, **updates}
    nxt, at = after_period(merged)
    updates["next_action"], updates["next_action_at"] = nxt, at
    out.updates = updates
    converted = inv["billing_reason"] == "trial_conversion"
    out.became_paid_active = sub["status"] in ("trialing", "incomplete") and not sub["is_free"]
    out.events.append(
        SubscriptionRenewedV1(
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            product_id=sub["product_id"],
            invoice_id=inv["id"],
            amount_paid=amount,
            currency=inv["currency"],
            current_period_start=merged["current_period_start"],
            current_period_end=merged.get("current_period_end"),
            trial_converted=converted,
        )
    )
    if converted:
        out.notices.append(
            notice(
                "trial_converted",
                inv["id"],
                sub,
                invoice_id=inv["id"],
                amount_paid=amount,
                current_period_end=new_end,
            )
        )
    if amount > 0:
        out.notices.append(
            notice(
                "invoice_paid",
                inv["id"],
                sub,
                invoice_id=inv["id"],
                amount_paid=amount,
                number=inv.get("number"),
            )
        )
    return out


def on_payment_failed(
    sub: Row,
    inv: Row,
    *,
    now: datetime,
    policy: Policy,
    attempt: int,
    payment_id: str | None,
    amount: int,
    failure_code: str | None,
    decline_code: str | None,
    failure_message: str | None,
    hard_decline: bool | None,
    failed_at: datetime,
) -> Outcome:
    """A charge failed: past_due (features on within grace) and the next dunning step."""
    out = Outcome(
        attempt={
            "invoice_id": inv["id"],
            "attempt": attempt,
            "org_id": inv["org_id"],
            "customer_id": inv["customer_id"],
            "status": "failed",
            "amount": amount,
            "currency": inv["currency"],
            "payment_id": payment_id,
            "failure_code": decline_code or failure_code,
            "failure_message": failure_message,
            "created_at": failed_at,
        }
    )
    if inv["status"] != "open" or attempt != inv["attempt_count"] or sub["status"] == "canceled":
        return out  # stale: a later attempt or a payment already decided this invoice
    hard = hard_decline if hard_decline is not None else is_hard_decline(failure_code, decline_code)
    since = sub.get("past_due_since") or now
    retries_done = inv["attempt_count"] - 1
    out.invoice_updates = {
        "last_failure_code": decline_code or failure_code,
        "last_failure_message": failure_message,
        "updated_at": now,
    }
    if not hard and retries_done >= len(policy.retry_days):
        exhausted = on_due({**sub, "next_action": "dunning_exhausted"}, inv, now=now, policy=policy)
        exhausted.attempt = out.attempt
        exhausted.invoice_updates.update(out.invoice_updates)
        return exhausted
    status = "incomplete" if sub["status"] == "incomplete" else "past_due"
    if hard:
        grace_end = since + timedelta(days=policy.grace_days)
        next_action, next_at, next_attempt = "dunning_exhausted", max(now, grace_end), None
    else:
        retry_at = max(now, since + timedelta(days=policy.retry_days[retries_done]))
        next_action, next_at, next_attempt = "retry_payment", retry_at, retry_at
    out.invoice_updates["next_payment_attempt"] = next_attempt
    out.updates = {
        "status": status,
        "past_due_since": since,
        "hard_declined": hard,
        "next_action": next_action,
        "next_action_at": next_at,
    }
    out.events.append(
        SubscriptionPastDueV1(
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            product_id=sub["product_id"],
            invoice_id=inv["id"],
            attempt=attempt,
            next_attempt_at=next_attempt,
            failure_code=decline_code or failure_code,
        )
    )
    out.notices.append(
        notice(
            "payment_failed",
            f"{inv['id']}:{attempt}",
            sub,
            invoice_id=inv["id"],
            amount_due=inv["amount_due"],
            next_attempt_at=next_attempt,
            hard_decline=hard,
            failure_message=failure_message,
        )
    )
    return out
