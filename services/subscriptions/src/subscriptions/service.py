"""Domain logic of the subscriptions service (never commits: the request or consumer scope
does): lifecycle actions of the API and the portal, and reads. Decisions live in
`billing`; `outcomes.write_outcomes` writes them with their events (outbox) and emails in
the caller's transaction. A checkout's fulfilment is `fulfilment.py`, payment results
`payments.py`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.errors import Conflict, InvalidRequest, NotFound
from bos_common.events import SubscriptionReactivatedV1, SubscriptionTrialExtendedV1
from subscriptions import billing, repository
from subscriptions.billing import Outcome
from subscriptions.outcomes import apply_outcome
from subscriptions.periods import period_end
from subscriptions.rows import Changes, Invoice, Row, Subscription
from subscriptions.runtime import SubscriptionsRuntime

SUBSCRIPTION_NOT_FOUND = ("subscription_not_found", "Subscription not found")
INVOICE_NOT_FOUND = ("invoice_not_found", "Invoice not found")


# --- lifecycle actions (API key and portal) --------------------------------------------------


async def _locked(
    session: AsyncSession, org_id: str, sub_id: str, customer_id: str | None = None
) -> tuple[Subscription, Invoice | None]:
    sub = await repository.get_subscription(
        session, sub_id, org_id=org_id, customer_id=customer_id, lock=True
    )
    if sub is None:
        raise NotFound(*SUBSCRIPTION_NOT_FOUND)
    inv = None
    if sub.pending_invoice_id:
        inv = await repository.get_invoice(session, sub.pending_invoice_id, lock=True)
    return sub, inv


async def get_subscription(
    session: AsyncSession, org_id: str, sub_id: str, customer_id: str | None = None
) -> Subscription:
    sub = await repository.get_subscription(session, sub_id, org_id=org_id, customer_id=customer_id)
    if sub is None:
        raise NotFound(*SUBSCRIPTION_NOT_FOUND)
    return sub


async def cancel_subscription(
    rt: SubscriptionsRuntime,
    session: AsyncSession,
    org_id: str,
    sub_id: str,
    *,
    at_period_end: bool,
    customer_id: str | None = None,
) -> Subscription:
    sub, inv = await _locked(session, org_id, sub_id, customer_id)
    out = billing.cancel(sub, inv, now=rt.clock.now(), at_period_end=at_period_end)
    return await apply_outcome(rt, session, sub, inv, out)


async def reactivate_subscription(
    rt: SubscriptionsRuntime,
    session: AsyncSession,
    org_id: str,
    sub_id: str,
    *,
    customer_id: str | None = None,
) -> Subscription:
    """Undo a cancel-at-period-end before the period ends (17.4)."""
    sub, _ = await _locked(session, org_id, sub_id, customer_id)
    now = rt.clock.now()
    end = sub.current_period_end
    if sub.status == "canceled" or (sub.cancel_at_period_end and end is not None and end <= now):
        raise Conflict(
            "subscription_not_reactivatable",
            "This subscription has ended and cannot be reactivated.",
        )
    if not sub.cancel_at_period_end:
        return sub  # nothing to undo
    updates: Changes = {"cancel_at_period_end": False, "canceled_at": None, "cancel_reason": None}
    updates["next_action"], updates["next_action_at"] = billing.after_period(
        replace(sub, **updates)
    )
    out = Outcome(updates=updates)
    out.events.append(
        SubscriptionReactivatedV1(
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            product_id=sub.product_id,
            current_period_end=sub.current_period_end,
            reactivated_at=now,
        )
    )
    out.notices.append(
        billing.notice(
            "subscription_reactivated",
            f"{sub.id}:{now.isoformat()}",
            sub,
            current_period_end=sub.current_period_end,
        )
    )
    return await apply_outcome(rt, session, sub, None, out)


async def extend_trial(
    rt: SubscriptionsRuntime, session: AsyncSession, org_id: str, sub_id: str, days: int
) -> Subscription:
    sub, inv = await _locked(session, org_id, sub_id)
    now = rt.clock.now()
    if sub.status != "trialing":
        raise Conflict("not_trialing", "Only a subscription in trial can have its trial extended.")
    assert sub.trial_end is not None, "a subscription in trial has its end"
    if inv is not None or sub.trial_end <= now:
        raise Conflict("trial_ended", "The trial has already ended.")
    previous = sub.trial_end
    trial_end = previous + timedelta(days=days)
    updates: Changes = {
        "trial_end": trial_end,
        "current_period_end": trial_end,
        "billing_anchor": trial_end,
    }
    updates["next_action"], updates["next_action_at"] = billing.trial_schedule(
        replace(sub, **updates), now, rt.policy
    )
    out = Outcome(updates=updates)
    out.events.append(
        SubscriptionTrialExtendedV1(
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            product_id=sub.product_id,
            days=days,
            previous_trial_end=previous,
            trial_end=trial_end,
        )
    )
    out.notices.append(
        billing.notice(
            "trial_extended",
            f"{sub.id}:{trial_end.isoformat()}",
            sub,
            days=days,
            trial_end=trial_end,
            previous_trial_end=previous,
        )
    )
    return await apply_outcome(rt, session, sub, None, out)


async def end_trial(
    rt: SubscriptionsRuntime, session: AsyncSession, org_id: str, sub_id: str
) -> Subscription:
    """Convert now: the trial ends and the first period is invoiced (charged by checkout)."""
    sub, inv = await _locked(session, org_id, sub_id)
    now = rt.clock.now()
    if sub.status != "trialing":
        raise Conflict("not_trialing", "Only a subscription in trial can end its trial.")
    if inv is not None:
        return sub  # already converting
    assert sub.interval is not None, "a trial of a plan"
    ended = replace(sub, trial_end=now, current_period_end=now)
    out = billing.issue_invoice(
        ended,
        now=now,
        policy=rt.policy,
        reason="trial_conversion",
        anchor=now,
        period_start=now,
        period_end_=period_end(now, sub.interval),
    )
    out.updates = {"trial_end": now, "current_period_end": now, **out.updates}
    return await apply_outcome(rt, session, sub, None, out)


# --- reads ---------------------------------------------------------------------------------------


def is_entitled(sub: Row, now: datetime, grace: timedelta) -> bool:
    status = sub["status"]
    if status == "trialing":
        return True
    if status == "active":
        end = sub.get("current_period_end")
        return not (sub.get("cancel_at_period_end") and end is not None and end <= now)
    if status == "past_due":
        since = sub.get("past_due_since")
        return since is None or since + grace > now
    return False


async def entitlements(
    rt: SubscriptionsRuntime,
    conn: asyncpg.Connection,
    org_id: str,
    *,
    customer_id: str | None,
    external_user_id: str | None,
) -> Row:
    if not customer_id and not external_user_id:
        raise InvalidRequest(
            "parameter_missing", "customer_id or external_user_id is required.", param="customer_id"
        )
    now = rt.clock.now()
    grace = timedelta(days=rt.policy.grace_days)
    data: list[Row] = []
    features: set[str] = set()
    for sub in await repository.entitled_subscriptions(
        conn, org_id, customer_id=customer_id, external_user_id=external_user_id
    ):
        if not is_entitled(sub, now, grace):
            continue
        expires = sub["current_period_end"] if sub.get("cancel_at_period_end") else None
        for feature in sub.get("features") or []:
            features.add(feature)
            data.append(
                {
                    "feature": feature,
                    "product_id": sub["product_id"],
                    "subscription_id": sub["id"],
                    "status": sub["status"],
                    "expires_at": expires,
                }
            )
    return {
        "object": "entitlements",
        "customer_id": customer_id,
        "external_user_id": external_user_id,
        "features": sorted(features),
        "data": data,
    }


def next_billing(sub: Subscription, inv: Invoice | None) -> Row | None:
    """When and how much the customer pays next (17.2); None when nothing is due."""
    if sub.status == "canceled" or sub.cancel_at_period_end or sub.is_free or sub.interval is None:
        return None
    if inv is not None and inv.status == "open":
        return {
            "date": inv.next_payment_attempt or inv.created_at,
            "amount": inv.amount_due,
            "currency": inv.currency,
        }
    start = sub.trial_end if sub.status == "trialing" else sub.current_period_end
    if start is None:
        return None
    coupon = sub.coupon
    applies = billing.discount_applies(coupon, sub.discount_start or start, start)
    amount = sub.amount - (billing.discount_amount(coupon, sub.amount) if applies else 0)
    return {"date": start, "amount": amount, "currency": sub.currency}
