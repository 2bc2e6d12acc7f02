"""The service's notion of "now", injectable so renewals, trial ends and dunning can be
driven deterministically (tests set or advance it; production reads the system clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc(value: datetime) -> datetime:
    """`value` in UTC (a naive one is taken as UTC)."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def wall_now() -> datetime:
    """The real time, for operational schedules (email delivery and its retries) that must
    not follow the injected billing clock: an email written while a test clock stands a
    month ahead goes out now, not when the real clock reaches that month."""
    return datetime.now(UTC)


class Clock:
    def __init__(self, fixed: datetime | None = None) -> None:
        self._fixed = fixed
        self._offset = timedelta(0)

    def now(self) -> datetime:
        if self._fixed is not None:
            return self._fixed
        return datetime.now(UTC) + self._offset

    def set(self, when: datetime) -> None:
        """Freeze the clock at `when` (aware, any zone; kept in UTC)."""
        if when.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._fixed = when.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward: a frozen clock moves by `delta`, a live one gains an offset."""
        if self._fixed is not None:
            self._fixed += delta
        else:
            self._offset += delta
        return self.now()

    def reset(self) -> None:
        self._fixed = None
        self._offset = timedelta(0)
