"""The kernel's one clock: fixed or wall, the company's day, settings, and the sessions that
carry it."""

from __future__ import annotations

import datetime as dt

import pytest

from formwork.runtime.clock import Clock, ClockError, clock_from_setting, session_clock

BEIJING = dt.timezone(dt.timedelta(hours=8))


def test_a_fixed_clock_stays_until_moved() -> None:
    clock = Clock(dt.datetime(2026, 3, 15, 23, 30, tzinfo=dt.UTC))
    assert clock.now() == clock.now() == dt.datetime(2026, 3, 15, 23, 30, tzinfo=dt.UTC)
    assert clock.today() == dt.date(2026, 3, 16)  # 07:30 the next morning in Beijing
    assert clock.advance(dt.timedelta(hours=1)).hour == 0
    clock.set(dt.date(2027, 1, 1))
    assert clock.local_now() == dt.datetime(2027, 1, 1, 10, tzinfo=BEIJING)
    clock.follow_wall()
    assert not clock.is_fixed
    assert abs(clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_a_naive_moment_is_taken_as_utc_and_a_date_as_ten_in_the_morning() -> None:
    assert Clock(dt.datetime(2026, 1, 1, 12)).now() == dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    clock = Clock(zone="Europe/Berlin")
    clock.set(dt.date(2026, 7, 1))
    assert clock.now() == dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)


def test_settings() -> None:
    assert not clock_from_setting("").is_fixed and not clock_from_setting("wall").is_fixed
    assert clock_from_setting("2026-05-04").today() == dt.date(2026, 5, 4)
    fixed = clock_from_setting("2026-05-04T01:02:03+08:00")
    assert fixed.now() == dt.datetime(2026, 5, 3, 17, 2, 3, tzinfo=dt.UTC)
    ahead = clock_from_setting("+365d").now() - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=364, hours=23) < ahead < dt.timedelta(days=365, hours=1)
    for bad in ("tomorrow", "2026-13-01", "+1y"):
        with pytest.raises(ClockError, match="FORMWORK_CLOCK"):
            clock_from_setting(bad)
    with pytest.raises(ClockError, match="unknown time zone"):
        Clock(zone="Mars/Olympus")


def test_kernel_sessions_carry_the_kernel_clock(app, session, clock) -> None:
    assert session_clock(session) is clock
    assert session_clock(object()).is_fixed is False  # any other session: the wall
    clock.advance(dt.timedelta(days=3))
    assert session_clock(session).now() == clock.now()
