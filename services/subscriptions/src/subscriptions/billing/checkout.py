"""The decision of a checkout's fulfilment (checkout.completed.v1): the subscription it
creates (active, trialing, or incomplete when a second trial is refused), brings back (a
canceled free one) or points at (a duplicate), the invoice of what checkout charged, and
what follows. Pure: the service reads what it needs first (`needs_canceled_free`,
`needs_trial_check` say when a read is needed) and writes the result."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from bos_common.events import CheckoutCompletedV1, SubscriptionCreatedV1
from bos_common.ids import new_id
from subscriptions.billing.amounts import coupon_summary, describe_period
from subscriptions.billing.invoicing import issue_invoice
from subscriptions.billing.outcome import Notice, Outcome, Policy, notice
from subscriptions.billing.schedule import trial_schedule
from subscriptions.clock import utc
from subscriptions.periods import period_end
from subscriptions.rows import Changes, Invoice, Row, Subscription


@dataclass
class Fulfilment:
    """What fulfilling a checkout writes. `kind` is the checkout's outcome: `created`
    (insert `sub`, with `invoice` and its succeeded `attempt`, remember `trial`, then
    write `then` on it), `reactivated` (apply `updates` to the canceled free `sub`) or
    `duplicate` (the customer already has `sub`: link the checkout to it).
    `confirmation` is the customer's one e-mail for the completed checkout (none for a
    duplicate, which is refunded)."""

    kind: Literal["created", "reactivated", "duplicate"]
    sub: Subscription
    event: SubscriptionCreatedV1
    updates: Changes = field(default_factory=dict)
    invoice: Invoice | None = None
    attempt: Row | None = None
    trial: Row | None = None
    trial_denied: bool = False
    then: Outcome = field(default_factory=Outcome)
    confirmation: Notice | None = None


def confirmation(ev: CheckoutCompletedV1, sub: Subscription, invoice: Invoice | None) -> Notice:
    """The e-mail confirming a completed checkout, once per checkout: what the customer now
    has (a trial and when it ends, a paid period, free access) and, when checkout charged
    something, the receipt (its invoice, attached as a PDF)."""
    return notice(
        "checkout_completed",
        ev.checkout_id,
        sub,
        invoice_id=invoice.id if invoice else None,
        status=sub.status,
        is_free=sub.is_free,
        trial_end=sub.trial_end,
        current_period_end=sub.current_period_end,
        amount_paid=invoice.amount_paid if invoice else 0,
    )


def is_free_checkout(ev: CheckoutCompletedV1) -> bool:
    return ev.is_free or (ev.price.amount == 0 and ev.price.setup_fee == 0)


def is_recurring(ev: CheckoutCompletedV1) -> bool:
    return ev.price.type == "recurring" and ev.price.interval is not None


def needs_canceled_free(ev: CheckoutCompletedV1) -> bool:
    """Whether `fulfil` needs the customer's last canceled free subscription to the
    product (5.5: resubscribing brings it back)."""
    return is_free_checkout(ev)


def needs_trial_check(ev: CheckoutCompletedV1) -> bool:
    """Whether `fulfil` needs to know if the customer, email or card had the trial."""
    return not is_free_checkout(ev) and is_recurring(ev) and ev.trial_days > 0


def created_event(
    sub: Subscription, *, reactivated: bool = False, trial_denied: bool = False
) -> SubscriptionCreatedV1:
    return SubscriptionCreatedV1(
        subscription_id=sub.id,
        checkout_id=sub.checkout_id,
        customer_id=sub.customer_id,
        external_user_id=sub.external_user_id,
        product_id=sub.product_id,
        price_id=sub.price_id,
        status=sub.status,
        is_free=sub.is_free,
        amount=sub.amount,
        currency=sub.currency,
        interval=sub.interval,
        current_period_start=sub.current_period_start,
        current_period_end=sub.current_period_end,
        trial_start=sub.trial_start,
        trial_end=sub.trial_end,
        trial_denied=trial_denied,
        reactivated=reactivated,
        features=list(sub.features or []),
        metadata=dict(sub.metadata or {}),
        created_at=sub.created_at,
    )


def checkout_invoice(
    sub: Subscription,
    ev: CheckoutCompletedV1,
    *,
    now: datetime,
    with_plan: bool,
    period_start: datetime,
    period_end_: datetime | None,
) -> Invoice | None:
    """The invoice of what checkout already charged. Checkout's figures: `amount_total` is
    the first period after the discount (without the setup fee); it charges
    `(0 if trial_days else amount_total) + setup_fee`, so a trial pays only the fee (6.2)."""
    price = ev.price
    plan = ev.amount_total if with_plan else 0
    discount = ev.amount_discount if with_plan else 0
    total = plan + price.setup_fee
    if total <= 0 or not (ev.payment_id or ev.payment_intent_id):
        return None
    lines: list[Row] = []
    if with_plan:
        lines.append(
            {
                "type": "subscription" if price.type == "recurring" else "one_time",
                "description": (
                    f"{price.product_name} ({describe_period(period_start, period_end_)})"
                    if price.type == "recurring"
                    else price.product_name
                ),
                "quantity": 1,
                "unit_amount": price.amount,
                "amount": price.amount,
                "period_start": period_start.isoformat(),
                "period_end": period_end_.isoformat() if period_end_ else None,
            }
        )
    if price.setup_fee:
        lines.append(
            {
                "type": "setup_fee",
                "description": f"{price.product_name} setup fee",
                "quantity": 1,
                "unit_amount": price.setup_fee,
                "amount": price.setup_fee,
                "period_start": None,
                "period_end": None,
            }
        )
    subtotal = total + discount
    if sum(line["amount"] for line in lines) != subtotal:
        lines = [
            {
                "type": "checkout",
                "description": price.product_name,
                "quantity": 1,
                "unit_amount": subtotal,
                "amount": subtotal,
                "period_start": period_start.isoformat(),
                "period_end": period_end_.isoformat() if period_end_ else None,
            }
        ]
    coupon = ev.coupon.model_dump() if ev.coupon else None
    paid_at = utc(ev.completed_at)
    return Invoice(
        id=new_id("inv"),
        org_id=sub.org_id,
        number=None,
        subscription_id=sub.id,
        customer_id=sub.customer_id,
        customer_email=sub.customer_email,
        customer_name=sub.customer_name,
        status="paid",
        billing_reason="subscription_create" if price.type == "recurring" else "one_time",
        currency=sub.currency,
        subtotal=subtotal,
        discount_amount=discount,
        tax=0,
        total=total,
        amount_due=total,
        amount_paid=total,
        lines=lines,
        discount=coupon_summary(coupon, discount) if discount else None,
        period_start=period_start,
        period_end=period_end_,
        attempt_count=1,
        next_payment_attempt=None,
        payment_id=ev.payment_id,
        payment_intent_id=ev.payment_intent_id,
        paid_at=paid_at,
        voided_at=None,
        last_failure_code=None,
        last_failure_message=None,
        created_at=now,
        updated_at=now,
    )


def fulfil(
    ev: CheckoutCompletedV1,
    org_id: str,
    *,
    now: datetime,
    policy: Policy,
    live: Subscription | None,
    canceled_free: Subscription | None,
    trial_used: str | None,
) -> Fulfilment:
    """Fulfil the checkout: `live` is the customer's live subscription to the product
    (checkout refuses a second one; a race got through), `canceled_free` their last
    canceled free one (read when `needs_canceled_free`), `trial_used` why they cannot
    have another trial (read when `needs_trial_check`; None: eligible)."""
    price = ev.price
    if live is not None:
        linked = replace(live, checkout_id=ev.checkout_id)
        return Fulfilment("duplicate", live, created_event(linked))

    start = utc(ev.completed_at)
    is_free = is_free_checkout(ev)
    base: Row = {
        "org_id": org_id,
        "customer_id": ev.customer_id,
        "customer_email": ev.customer_email,
        "customer_name": ev.customer_name,
        "external_user_id": ev.external_user_id,
        "checkout_id": ev.checkout_id,
        "product_id": price.product_id,
        "product_name": price.product_name,
        "price_id": price.price_id,
        "price_type": price.type,
        "interval": price.interval if price.type == "recurring" else None,
        "amount": price.amount,
        "currency": price.currency.lower(),
        "is_free": is_free,
        "features": list(price.features),
        "metadata": dict(ev.metadata),
        "coupon": ev.coupon.model_dump() if ev.coupon and not is_free else None,
        "stripe_customer_id": ev.stripe_customer_id,
        "payment_method_id": ev.payment_method_id,
        "card_fingerprint": ev.card_fingerprint,
        "payment_method_updated_at": start,
        "updated_at": now,
    }

    if is_free and canceled_free is not None:  # 5.5: resubscribing brings it back
        updates = {
            **base,
            "status": "active",
            "current_period_start": start,
            "current_period_end": None,
            "billing_anchor": None,
            "trial_start": None,
            "trial_end": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "ended_at": None,
            "cancel_reason": None,
            "next_action": None,
            "next_action_at": None,
            "pending_invoice_id": None,
            "past_due_since": None,
        }
        back = replace(canceled_free, **updates)
        return Fulfilment(
            "reactivated",
            back,
            created_event(back, reactivated=True),
            updates,
            confirmation=confirmation(ev, back, None),
        )

    sub = Subscription(
        **base,
        id=new_id("sub"),
        created_at=now,
        status="active",
        billing_anchor=None,
        current_period_start=start,
        current_period_end=None,
        trial_start=None,
        trial_end=None,
        trial_reminder_for=None,
        cancel_at_period_end=False,
        canceled_at=None,
        ended_at=None,
        cancel_reason=None,
        discount_start=None,
        latest_invoice_id=None,
        pending_invoice_id=None,
        past_due_since=None,
        hard_declined=False,
        next_action=None,
        next_action_at=None,
    )
    invoice: Invoice | None = None
    trial: Row | None = None
    trial_denied = False
    then = Outcome()

    if is_free or not is_recurring(ev):
        # Free (5.1, a trial is ignored, 5.4) or one-time: features for good, no renewals.
        if not is_free:
            invoice = checkout_invoice(
                sub, ev, now=now, with_plan=True, period_start=start, period_end_=None
            )
    elif ev.trial_days > 0 and trial_used is None:
        trial_end = start + timedelta(days=ev.trial_days)
        sub = replace(
            sub,
            status="trialing",
            trial_start=start,
            trial_end=trial_end,
            current_period_end=trial_end,
            billing_anchor=trial_end,
        )
        next_action, next_action_at = trial_schedule(sub, now, policy)
        sub = replace(sub, next_action=next_action, next_action_at=next_action_at)
        trial = {
            "org_id": org_id,
            "product_id": price.product_id,
            "customer_id": ev.customer_id,
            "email": ev.customer_email.strip().lower(),
            "card_fingerprint": ev.card_fingerprint,
            "subscription_id": sub.id,
            "created_at": now,
        }
        # A setup fee was charged at checkout (6.2); the plan is charged at trial end.
        invoice = checkout_invoice(
            sub, ev, now=now, with_plan=False, period_start=start, period_end_=trial_end
        )
    elif ev.trial_days > 0:
        # 6.6: this customer, email or card had the trial: no second one, the first
        # period is charged now (checkout took only a card or a setup fee).
        trial_denied = True
        assert sub.interval is not None  # recurring
        end = period_end(start, sub.interval)
        sub = replace(sub, status="incomplete", billing_anchor=start, current_period_end=end)
        invoice = checkout_invoice(
            sub, ev, now=now, with_plan=False, period_start=start, period_end_=end
        )
        then = issue_invoice(
            sub,
            now=now,
            policy=policy,
            reason="subscription_create",
            anchor=start,
            period_start=start,
            period_end_=end,
        )
    else:
        assert sub.interval is not None  # recurring
        end = period_end(start, sub.interval)
        sub = replace(
            sub,
            status="active",
            billing_anchor=start,
            current_period_end=end,
            discount_start=start if sub.coupon else None,
            next_action="renew",
            next_action_at=end,
        )
        invoice = checkout_invoice(
            sub, ev, now=now, with_plan=True, period_start=start, period_end_=end
        )

    attempt: Row | None = None
    if invoice is not None:
        sub = replace(sub, latest_invoice_id=invoice.id)
        attempt = {
            "invoice_id": invoice.id,
            "attempt": 1,
            "org_id": org_id,
            "customer_id": sub.customer_id,
            "status": "succeeded",
            "amount": invoice.amount_paid,
            "currency": sub.currency,
            "payment_id": ev.payment_id,
            "failure_code": None,
            "failure_message": None,
            "created_at": invoice.paid_at,
        }
    event = created_event(sub, trial_denied=trial_denied)
    return Fulfilment(
        "created",
        sub,
        event,
        invoice=invoice,
        attempt=attempt,
        trial=trial,
        trial_denied=trial_denied,
        then=then,
        confirmation=confirmation(ev, sub, invoice),
    )
