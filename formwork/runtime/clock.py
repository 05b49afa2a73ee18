"""The kernel's one clock: what "now" and "today" mean for records, reports, timers and demos.

Everything that asks what time it is asks the kernel's clock, never the wall directly, so a
test (or a reproducible demo) can fix the moment and every part of the platform agrees on it.
"Today" is the calendar day in the company's time zone (Asia/Shanghai by default), not the
server's: a report run at 07:00 in Beijing is already on the next day in UTC terms.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"
CLOCK_KEY = "formwork.clock"
_OFFSET = re.compile(r"^([+-])(\d{1,5})d$")


class ClockError(ValueError):
    """A clock setting that cannot be read."""


class Clock:
    """Wall time, or a moment set by a test or a demo; aware datetimes in UTC.

    A set clock is frozen: it moves only when told (`set`, `advance`), so two reads in one
    test give the same moment.
    """

    def __init__(self, fixed: dt.datetime | None = None, zone: str = DEFAULT_ZONE) -> None:
        self.zone = _zone(zone)
        self._lock = threading.Lock()
        self._fixed = _aware(fixed) if fixed is not None else None

    @property
    def is_fixed(self) -> bool:
        """Return True when the clock was set (it does not follow the wall)."""
        return self._fixed is not None

    def now(self) -> dt.datetime:
        """Return the current moment (aware, UTC)."""
        fixed = self._fixed
        return fixed if fixed is not None else dt.datetime.now(dt.UTC)

    def local_now(self) -> dt.datetime:
        """Return the current moment in the company's time zone."""
        return self.now().astimezone(self.zone)

    def today(self) -> dt.date:
        """Return today's date in the company's time zone."""
        return self.local_now().date()

    def set(self, moment: dt.datetime | dt.date) -> None:
        """Fix the clock at a moment (a date means 10:00 local time on that day)."""
        with self._lock:
            self._fixed = _moment(moment, self.zone)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move a fixed clock on by `delta` (fixing it at wall time first); return the moment."""
        with self._lock:
            self._fixed = (self._fixed or dt.datetime.now(dt.UTC)) + delta
            return self._fixed

    def follow_wall(self) -> None:
        """Let the clock follow the wall again."""
        with self._lock:
            self._fixed = None


def session_clock(session: Any) -> Clock:
    """Return the clock of a session made by the kernel (the wall's for any other session).

    The kernel's session factories carry its clock in `Session.info`, so code that is handed
    a session (token expiry, security events, fixtures) reads the same clock as the rest.
    """
    found = getattr(session, "info", {}).get(CLOCK_KEY)
    return found if isinstance(found, Clock) else Clock()


def clock_for(session: Any, given: Clock | dt.datetime | None) -> Clock:
    """Return the clock a service uses: the one given, one fixed at a given moment, or the
    session's (the kernel's)."""
    if isinstance(given, Clock):
        return given
    if given is not None:
        return Clock(given)
    return session_clock(session)


def clock_from_setting(text: str | None, zone: str = DEFAULT_ZONE) -> Clock:
    """Return a clock from a setting: empty (the wall), an ISO date or datetime (fixed there),
    or `+Nd`/`-Nd` (fixed N days from the wall's now, for trying a time bomb)."""
    clock = Clock(zone=zone)
    text = (text or "").strip()
    if not text or text == "wall":
        return clock
    offset = _OFFSET.match(text)
    if offset is not None:
        days = int(offset.group(2)) * (-1 if offset.group(1) == "-" else 1)
        clock.set(dt.datetime.now(dt.UTC) + dt.timedelta(days=days))
        return clock
    try:
        parsed: dt.datetime | dt.date = (
            dt.datetime.fromisoformat(text)
            if "T" in text or " " in text
            else dt.date.fromisoformat(text)
        )
    except ValueError:
        raise ClockError(
            f"FORMWORK_CLOCK: {text!r} is not an ISO date or datetime, '+Nd' or 'wall'"
        ) from None
    clock.set(parsed)
    return clock


def _moment(value: dt.datetime | dt.date, zone: ZoneInfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _aware(value, zone)
    return dt.datetime(value.year, value.month, value.day, 10, tzinfo=zone).astimezone(dt.UTC)


def _aware(value: dt.datetime, zone: ZoneInfo | None = None) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone or dt.UTC)
    return value.astimezone(dt.UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClockError(f"unknown time zone {name!r}") from None
