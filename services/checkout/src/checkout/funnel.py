"""What the checkout funnel records of each transition: a Prometheus counter (plan 18.1:
conversion is `completed / created` over a window, recording rule
`checkout:conversion:ratio_1h`; 18.2: payment failures by code feed
BosPaymentFailureSpike) and an audit line (18.3, `bos_common.audit`). Both only for a
committed transition: a transaction that rolls back (a batch of events handled again one
by one) records nothing (`bos_common.db.after_commit`)."""

from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.audit import audit, audit_by
from bos_common.auth import Identity
from bos_common.db import after_commit
from checkout.records import Checkout, ConfirmedPayment, Payment

CHECKOUTS_CREATED = Counter(
    "bos_checkout_sessions_created_total", "Checkout sessions created.", ["paid"]
)
CHECKOUTS_COMPLETED = Counter(
    "bos_checkout_sessions_completed_total",
    "Checkout sessions completed (their subscription exists).",
)
PAYMENTS = Counter(
    "bos_checkout_payments_total",
    "Payments that reached an outcome, by kind (checkout, setup, renewal, card_update), "
    "outcome (succeeded, failed) and error code (empty on success).",
    ["kind", "outcome", "code"],
)
FUNNEL_STEPS = Counter(
    "bos_checkout_funnel_steps_total",
    "Checkout steps between creation and payment: confirmed (a confirm reached Stripe), "
    "requires_action (3-D Secure asked of the customer).",
    ["step"],
)
# The series whose labels are known in advance start at 0 (failure codes are Stripe's,
# unknown until they happen: the alerts count a new series' first value, see
# deploy/prometheus/rules).
for _paid in ("true", "false"):
    CHECKOUTS_CREATED.labels(_paid)
for _kind in ("checkout", "setup", "renewal", "card_update"):
    PAYMENTS.labels(_kind, "succeeded", "")
for _step in ("confirmed", "requires_action"):
    FUNNEL_STEPS.labels(_step)


def step(name: str, session: AsyncSession | None = None) -> None:
    """A funnel step (`confirmed`, `requires_action`), counted once `session` commits
    (None: already committed)."""
    child = FUNNEL_STEPS.labels(name)
    if session is None:
        child.inc()
    else:
        after_commit(session, child.inc)


def checkout_created(row: Checkout, identity: Identity) -> None:
    """`row` was written by a statement (or transaction) that has committed."""
    CHECKOUTS_CREATED.labels("false" if row.is_free else "true").inc()
    audit_by(
        "checkout.created",
        identity,
        org_id=row.org_id,
        checkout_id=row.id,
        customer_id=row.customer_id,
        price_id=row.price_id,
        amount_total=row.amount_total,
        currency=row.currency,
    )


def checkout_completed(
    session: AsyncSession, *, checkout_id: str, org_id: str | None, subscription_id: str
) -> None:
    def record() -> None:
        CHECKOUTS_COMPLETED.inc()
        audit(
            "checkout.completed",
            actor_type="system",
            org_id=org_id,
            checkout_id=checkout_id,
            subscription_id=subscription_id,
        )

    after_commit(session, record)


def payment_succeeded(payment: ConfirmedPayment, session: AsyncSession | None = None) -> None:
    """`session`: the transaction that made the transition (None: a statement that has
    committed already)."""
    _payment_outcome(payment, "succeeded", "", session)


def payment_failed(payment: Payment, code: str, session: AsyncSession) -> None:
    _payment_outcome(payment, "failed", code, session)


def _payment_outcome(
    payment: ConfirmedPayment, outcome: str, code: str, session: AsyncSession | None
) -> None:
    def record() -> None:
        PAYMENTS.labels(payment.kind, outcome, code).inc()
        audit(
            f"payment.{outcome}",
            actor_type="stripe",
            org_id=payment.org_id,
            payment_id=payment.id,
            checkout_id=payment.checkout_id,
            kind=payment.kind,
            code=code or None,
        )

    if session is None:
        record()
    else:
        after_commit(session, record)
