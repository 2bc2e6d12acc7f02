"""What a decision changes (`Outcome`, its emails as `Notice`s) and the policy decisions follow."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bos_common.events import (
    Event,
)
from subscriptions.rows import Changes, Invoice, Row, Subscription


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

    updates: Changes = field(default_factory=dict)
    new_invoice: Invoice | None = None
    invoice_updates: Changes = field(default_factory=dict)
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


def sub_context(sub: Subscription) -> Row:
    return {
        "subscription_id": sub.id,
        "product_name": sub.product_name,
        "customer_name": sub.customer_name,
        "amount": sub.amount,
        "currency": sub.currency,
        "interval": sub.interval,
    }


def notice(
    kind: str, key: str, sub: Subscription, invoice_id: str | None = None, **extra: Any
) -> Notice:
    context = sub_context(sub)
    context.update({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in extra.items()})
    return Notice(kind=kind, dedupe_key=f"{kind}:{key}", context=context, invoice_id=invoice_id)
