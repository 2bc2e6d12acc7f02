"""Calendar-correct billing periods.

Periods are anchored: the k-th period of a monthly plan ends k months after the anchor,
clamped to the month's last day (Jan 31 -> Feb 28/29 -> Mar 31), never chained from the
previous (clamped) end, so a short month does not pull later periods earlier. A yearly
plan ends on the same date the next year (Feb 29 -> Feb 28 in common years, back to
Feb 29 in leap years).
"""

from __future__ import annotations

import calendar
from datetime import datetime

MONTHS = {"month": 1, "year": 12}


def add_months(anchor: datetime, months: int) -> datetime:
    total = anchor.month - 1 + months
    year, month = anchor.year + total // 12, total % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def interval_months(interval: str) -> int:
    try:
        return MONTHS[interval]
    except KeyError:
        raise ValueError(f"unknown billing interval {interval!r}") from None


def period_end(anchor: datetime, interval: str, index: int = 1) -> datetime:
    """End of the `index`-th period (1 = the first) counted from `anchor`."""
    return add_months(anchor, index * interval_months(interval))


def next_period_end(anchor: datetime, interval: str, after: datetime) -> datetime:
    """The first period boundary strictly after `after` (the end of the period that
    contains `after`, or the first period's end when `after` precedes the anchor)."""
    step = interval_months(interval)
    months = (after.year - anchor.year) * 12 + (after.month - anchor.month)
    index = max(1, months // step)
    # `months // step` lands on or just before the boundary; walk to the first one after.
    while index > 1 and add_months(anchor, (index - 1) * step) > after:
        index -= 1
    while add_months(anchor, index * step) <= after:
        index += 1
    return add_months(anchor, index * step)
