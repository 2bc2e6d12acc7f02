"""The billing engine's decisions, as pure functions over subscription and invoice rows
(`rows.Row`): what a checkout creates, what a due subscription does, what a payment result
or a cancellation changes, which events and emails follow; one module per stage. The
service loads the rows, calls these and writes the `Outcome` (`outcomes.write_outcomes`),
so one rule has one implementation for the single-row paths (API, consumers) and the
batched scheduler alike.
"""

from subscriptions.billing.amounts import (
    build_invoice,
    coupon_summary,
    describe_period,
    discount_amount,
    discount_applies,
    discount_end,
)
from subscriptions.billing.checkout import (
    Fulfilment,
    created_event,
    fulfil,
    is_free_checkout,
    needs_canceled_free,
    needs_trial_check,
)
from subscriptions.billing.dunning import (
    HARD_DECLINE_CODES,
    HARD_FAILURE_CODES,
    is_hard_decline,
    on_payment_failed,
)
from subscriptions.billing.invoicing import (
    issue_invoice,
    on_paid,
)
from subscriptions.billing.lifecycle import (
    cancel,
    end_subscription,
    on_due,
)
from subscriptions.billing.outcome import (
    Notice,
    Outcome,
    Policy,
    notice,
    sub_context,
)
from subscriptions.billing.schedule import (
    after_period,
    trial_schedule,
)

__all__ = [
    "Fulfilment",
    "HARD_DECLINE_CODES",
    "HARD_FAILURE_CODES",
    "Notice",
    "Outcome",
    "Policy",
    "after_period",
    "build_invoice",
    "cancel",
    "coupon_summary",
    "created_event",
    "describe_period",
    "discount_amount",
    "discount_applies",
    "discount_end",
    "end_subscription",
    "fulfil",
    "is_free_checkout",
    "is_hard_decline",
    "issue_invoice",
    "needs_canceled_free",
    "needs_trial_check",
    "notice",
    "on_due",
    "on_paid",
    "on_payment_failed",
    "sub_context",
    "trial_schedule",
]
