"""What a subscription does next, and when."""

from __future__ import annotations

from datetime import datetime, timedelta

from subscriptions.billing.outcome import Policy
from subscriptions.rows import Subscription

# --- scheduling ---------------------------------------------------------------------


def after_period(sub: Subscription) -> tuple[str | None, datetime | None]:
    """What comes at the end of the current period."""
    if sub.interval is None or sub.current_period_end is None:
        return None, None
    if sub.cancel_at_period_end:
        return "end_at_period_end", sub.current_period_end
    return "renew", sub.current_period_end


def trial_schedule(sub: Subscription, now: datetime, policy: Policy) -> tuple[str, datetime]:
    trial_end = sub.trial_end
    assert trial_end is not None, "a subscription in trial has its end"
    reminder = trial_end - timedelta(days=policy.reminder_days)
    if policy.reminder_days and reminder > now and sub.trial_reminder_for != trial_end:
        return "trial_reminder", reminder
    return "convert_trial", trial_end
