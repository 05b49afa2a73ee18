"""Language and formats: the locale of a request, Flask-Babel, and locale-aware display of
dates, moments, numbers and money."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, numbers
from babel.dates import format_date, format_datetime
from flask import Flask, current_app, g, session
from flask_babel import Babel
from flask_login import current_user

from formwork.auth import request_locale

LOCALES = ("zh-CN", "en")
BABEL_NAMES = {"zh-CN": "zh_CN", "en": "en"}


def current_locale() -> str:
    """Return zh-CN or en: the user's saved choice, else this browser session's choice,
    else Accept-Language, else zh-CN."""
    if "ui_locale" not in g:
        g.ui_locale = _user_locale() or _session_locale() or request_locale()
    return g.ui_locale  # type: ignore[no-any-return]


def _user_locale() -> str | None:
    if not current_user.is_authenticated:
        return None
    value = current_user.user.locale
    return value if value in LOCALES else None


def _session_locale() -> str | None:
    value = session.get("locale")
    return value if value in LOCALES else None


def babel_locale() -> str:
    """Return the Babel name of the current locale (zh_CN or en)."""
    return BABEL_NAMES[current_locale()]


@lru_cache(maxsize=4)
def _parsed(name: str) -> Locale:
    return Locale.parse(name)


def format_locale() -> Locale:
    """Return the current locale as a parsed Babel Locale (parsing text on every number
    formatted costs more than rendering a list page)."""
    return _parsed(babel_locale())


def init_app(app: Flask) -> None:
    """Install Flask-Babel with zh_CN as the default and register the format filters."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_CN")
    app.config.setdefault("DISPLAY_TIMEZONE", "Asia/Shanghai")
    # Babel reads "zh_CN" as zh_Hans_CN, so the Chinese catalog lives in zh_Hans_CN/.
    Babel(app, locale_selector=babel_locale)
    app.jinja_env.filters.update(
        fw_date=display_date,
        fw_datetime=display_datetime,
        fw_number=display_number,
        fw_money=display_money,
    )
    app.jinja_env.globals.update(current_locale=current_locale)


def display_zone() -> ZoneInfo:
    """Return the time zone moments are shown and entered in."""
    return ZoneInfo(current_app.config.get("DISPLAY_TIMEZONE", "Asia/Shanghai"))


def _date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _moment(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def display_date(value: Any) -> str:
    """Return a date as the current locale writes it (2026年11月24日 / Nov 24, 2026)."""
    day = _date(value)
    return "" if day is None else format_date(day, "medium", locale=format_locale())


def display_datetime(value: Any) -> str:
    """Return a moment in the display time zone as the current locale writes it."""
    moment = _moment(value)
    if moment is None:
        return ""
    return format_datetime(moment, "medium", tzinfo=display_zone(), locale=format_locale())


def display_number(value: Any, places: int | None = None) -> str:
    """Return a number with the locale's grouping (1,234.5)."""
    if value in (None, ""):
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if places is None:
        return numbers.format_decimal(number, locale=format_locale(), decimal_quantization=False)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return numbers.format_decimal(number, format=pattern, locale=format_locale())


def display_money(value: Any, currency: str = "CNY") -> str:
    """Return an amount with its currency as the current locale writes it (¥1,234.50)."""
    if value in (None, ""):
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return numbers.format_currency(number, currency, locale=format_locale())


def currency_symbol(currency: str) -> str:
    """Return the currency's symbol in the current locale (¥ for CNY in zh-CN)."""
    return numbers.get_currency_symbol(currency, locale=format_locale())
