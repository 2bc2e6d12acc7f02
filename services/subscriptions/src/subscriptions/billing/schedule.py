"""What a subscription does next, and when."""

from __future__ import annotations

from datetime import datetime, timedelta

from subscriptions.billing.outcome import Policy
from subscriptions.rows import Row

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
