"""What a failed payment changes: retries, a hard decline, the end of dunning."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bos_common.events import (
    SubscriptionPastDueV1,
)
from subscriptions.billing.lifecycle import on_due
from subscriptions.billing.outcome import Outcome, Policy, notice
from subscriptions.rows import Invoice, Subscription

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


def is_hard_decline(failure_code: str | None, decline_code: str | None) -> bool:
    return (decline_code in HARD_DECLINE_CODES) or (failure_code in HARD_FAILURE_CODES)


def on_payment_failed(
    sub: Subscription,
    inv: Invoice,
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
            "invoice_id": inv.id,
            "attempt": attempt,
            "org_id": inv.org_id,
            "customer_id": inv.customer_id,
            "status": "failed",
            "amount": amount,
            "currency": inv.currency,
            "payment_id": payment_id,
            "failure_code": decline_code or failure_code,
            "failure_message": failure_message,
            "created_at": failed_at,
        }
    )
    if inv.status != "open" or attempt != inv.attempt_count or sub.status == "canceled":
        return out  # stale: a later attempt or a payment already decided this invoice
    hard = hard_decline if hard_decline is not None else is_hard_decline(failure_code, decline_code)
    since = sub.past_due_since or now
    retries_done = inv.attempt_count - 1
    out.invoice_updates = {
        "last_failure_code": decline_code or failure_code,
        "last_failure_message": failure_message,
        "updated_at": now,
    }
    if not hard and retries_done >= len(policy.retry_days):
        exhausted = on_due(
            replace(sub, next_action="dunning_exhausted"), inv, now=now, policy=policy
        )
        exhausted.attempt = out.attempt
        exhausted.invoice_updates.update(out.invoice_updates)
        return exhausted
    status = "incomplete" if sub.status == "incomplete" else "past_due"
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
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            product_id=sub.product_id,
            invoice_id=inv.id,
            attempt=attempt,
            next_attempt_at=next_attempt,
            failure_code=decline_code or failure_code,
        )
    )
    out.notices.append(
        notice(
            "payment_failed",
            f"{inv.id}:{attempt}",
            sub,
            invoice_id=inv.id,
            amount_due=inv.amount_due,
            next_attempt_at=next_attempt,
            hard_decline=hard,
            failure_message=failure_message,
        )
    )
    return out
