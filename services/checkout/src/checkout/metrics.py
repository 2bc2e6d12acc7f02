"""The checkout funnel as Prometheus counters (plan 18.1): conversion is
`completed / created` over a window (recording rule `bos:checkout_conversion:ratio_1h`),
payment failures by code feed the failure-spike alert (18.2). Every count is of a
committed transition: a transaction that rolls back (a batch of events handled again one
by one) counts nothing (`bos_common.db.after_commit`)."""

from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.db import after_commit

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


def checkout_created(*, paid: bool) -> None:
    CHECKOUTS_CREATED.labels("true" if paid else "false").inc()


def checkout_completed(session: AsyncSession) -> None:
    after_commit(session, CHECKOUTS_COMPLETED.inc)


def payment_succeeded(kind: str, session: AsyncSession | None = None) -> None:
    counter = PAYMENTS.labels(kind, "succeeded", "")
    if session is None:  # written by a statement that has committed already
        counter.inc()
    else:
        after_commit(session, counter.inc)


def payment_failed(kind: str, code: str, session: AsyncSession) -> None:
    after_commit(session, PAYMENTS.labels(kind, "failed", code).inc)
