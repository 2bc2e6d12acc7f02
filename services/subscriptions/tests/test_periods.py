"""Calendar-correct periods (8.5, 8.6) and a property-based test across month ends and
leap years."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.periods import add_months, next_period_end, period_end


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_8_5_jan_31_renews_on_the_last_day_of_february():
    anchor = d(2026, 1, 31, 15)
    assert period_end(anchor, "month", 1) == d(2026, 2, 28, 15)
    assert period_end(anchor, "month", 2) == d(2026, 3, 31, 15), "not chained from Feb 28"
    assert period_end(d(2028, 1, 31, 15), "month", 1) == d(2028, 2, 29, 15)
    assert period_end(d(2026, 12, 15), "month", 1) == d(2027, 1, 15)


def test_8_6_year_is_next_year_same_date():
    assert period_end(d(2026, 3, 1, 9, 30), "year") == d(2027, 3, 1, 9, 30)
    assert period_end(d(2028, 2, 29), "year", 1) == d(2029, 2, 28)
    assert period_end(d(2028, 2, 29), "year", 4) == d(2032, 2, 29)


def test_next_period_end_from_the_anchor():
    anchor = d(2026, 1, 31, 15)
    assert next_period_end(anchor, "month", anchor) == d(2026, 2, 28, 15)
    assert next_period_end(anchor, "month", d(2026, 2, 28, 15)) == d(2026, 3, 31, 15)
    assert next_period_end(anchor, "month", d(2026, 2, 1)) == d(2026, 2, 28, 15)
    assert next_period_end(anchor, "year", d(2026, 6, 1)) == d(2027, 1, 31, 15)


moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2300, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(anchor=moments, months=st.integers(min_value=0, max_value=1200))
def test_add_months_keeps_the_day_or_clamps_to_month_end(anchor, months):
    result = add_months(anchor, months)
    total = anchor.year * 12 + anchor.month - 1 + months
    assert (result.year, result.month) == (total // 12, total % 12 + 1)
    last = calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(anchor.day, last)
    assert result.timetz() == anchor.timetz()


@settings(max_examples=400, deadline=None)
@given(
    anchor=moments,
    interval=st.sampled_from(["month", "year"]),
    offset=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)),
)
def test_next_period_end_is_the_first_boundary_after(anchor, interval, offset):
    after = anchor + offset
    if after.year > 9000:
        return
    end = next_period_end(anchor, interval, after)
    assert end > after
    step = 12 if interval == "year" else 1
    boundaries = [add_months(anchor, k * step) for k in range(1, 12 * 12 + 2)]
    assert end in boundaries, "periods are counted from the anchor"
    earlier = [b for b in boundaries if b < end]
    assert all(b <= after for b in earlier), "no boundary is skipped"


@settings(max_examples=200, deadline=None)
@given(anchor=moments, interval=st.sampled_from(["month", "year"]))
def test_periods_are_increasing_and_of_calendar_length(anchor, interval):
    ends = [period_end(anchor, interval, k) for k in range(0, 30)]
    assert all(a < b for a, b in zip(ends, ends[1:], strict=False))
    for a, b in zip(ends, ends[1:], strict=False):
        length = (b - a).days
        assert (28 <= length <= 31) if interval == "month" else (365 <= length <= 366)
