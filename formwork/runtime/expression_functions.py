"""The whitelisted function library and the arithmetic of Formwork's expression language.

Every function of ``FUNCTIONS`` can be called from an expression (see
``formwork.runtime.expressions``) and nothing else can; the arithmetic section gives the operators
their exact, size-limited meaning. Everything takes and returns plain data only - numbers (``int``
or exact ``Decimal``, never ``float``), text, booleans, dates, lists and records (dicts) - and
signals bad input with ``TypeError`` or ``ValueError`` carrying a short English message, which the
evaluator wraps into an ``ExpressionError`` naming the function.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

MAX_LENGTH = 100_000  # longest text (characters) or collection (items) a value may have
MAX_INT_DIGITS = 1_000  # longest whole number (digits) an expression may make
MAX_EXPONENT = 100
MAX_POWER_DIGITS = 100

_SEQUENCES = (str, list, tuple)
_MAX_PLACES = 28
_MAX_PATTERN_LENGTH = 100
_DATE_DIRECTIVES = frozenset("YmdHMSy%")
_DURATION = re.compile(
    r"P(?:(?P<W>\d+(?:\.\d+)?)W)?(?:(?P<D>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<H>\d+(?:\.\d+)?)H)?(?:(?P<M>\d+(?:\.\d+)?)M)?(?:(?P<S>\d+(?:\.\d+)?)S)?)?"
)
_SECONDS = MappingProxyType({"W": 604_800, "D": 86_400, "H": 3_600, "M": 60, "S": 1})


def kind_of(value: Any) -> str:
    """Return the name of a value's kind as an expression author knows it."""
    kinds = (
        (type(None), "null"), (bool, "boolean"), (int | Decimal | float, "number"),
        (datetime, "datetime"), (date, "date"), (str, "text"), (list | tuple, "list"),
        (dict, "record"),
    )  # fmt: skip
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


# --- numbers ------------------------------------------------------------------------------------


def to_decimal(value: Any) -> Decimal:
    """Convert a number or numeric text to an exact, finite Decimal (floats via their text)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(int(value))
    elif isinstance(value, float):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value[:50]!r} is not a number") from None
    else:
        raise TypeError(f"expected a number, got {kind_of(value)}")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _number(value: Any) -> int | Decimal:
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, float):
        return to_decimal(value)
    raise TypeError(f"expected a number, got {kind_of(value)}")


def _whole(value: Any, what: str) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise TypeError(f"{what} must be a whole number, got {kind_of(value)}")


def _items(values: tuple[Any, ...]) -> list[Any]:
    if len(values) == 1 and isinstance(values[0], list | tuple | set | frozenset):
        values = tuple(values[0])
    if not values:
        raise ValueError("no values given")
    return list(values)


def sum_(values: Iterable[Any]) -> int | Decimal:
    """Add up numbers exactly, starting at 0; null values count as 0."""
    total: int | Decimal = 0
    for value in values:
        if value is not None:
            total = total + _number(value)
    return total


def sumof(rows: Iterable[Mapping[str, Any]], field: str) -> int | Decimal:
    """Add up one field over a list of records (child rows); null values count as 0."""
    total: int | Decimal = 0
    for index, row in enumerate(rows or ()):
        if not isinstance(row, Mapping):
            raise TypeError(f"item {index} is {kind_of(row)}, not a record")
        if field not in row:
            raise ValueError(f"record {index} has no field {field!r}")
        if row[field] is not None:
            total = total + _number(row[field])
    return total


def count(values: Iterable[Any] | None) -> int:
    """Count the items of a list (null counts as an empty list)."""
    return 0 if values is None else sum(1 for _ in values)


def min_(*values: Any) -> Any:
    """Return the smallest of the arguments, or of a single list argument."""
    return min(_items(values))


def max_(*values: Any) -> Any:
    """Return the largest of the arguments, or of a single list argument."""
    return max(_items(values))


def abs_(value: Any) -> int | Decimal:
    """Return the absolute value of a number."""
    number = _number(value)
    return -number if number < 0 else number


def round_(value: Any, n: Any = 0) -> Decimal:
    """Round half up (commercial rounding) to n decimal places: round(2.675, 2) is 2.68."""
    places = _whole(n, "the number of places")
    if abs(places) > _MAX_PLACES:
        raise ValueError(f"the number of places must be between -{_MAX_PLACES} and {_MAX_PLACES}")
    return to_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def int_(value: Any) -> int:
    """Convert a number or numeric text to a whole number, dropping any fraction."""
    if isinstance(value, int):
        return int(value)
    number = to_decimal(value)
    if number.adjusted() >= MAX_INT_DIGITS:  # int(Decimal("1e999999")) builds a million digits
        raise ValueError(f"the number has more than {MAX_INT_DIGITS:,} digits")
    return int(number)


def decimal_(value: Any) -> Decimal:
    """Convert a number or numeric text to an exact decimal."""
    return to_decimal(value)


# --- arithmetic (the operators of the language) ------------------------------------------------


def _too_long(size: int) -> ValueError:
    return ValueError(f"the result would be too long ({size:,}; the limit is {MAX_LENGTH:,})")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal)


def add(left: Any, right: Any) -> Any:
    """Return left + right, refusing text or lists longer than MAX_LENGTH."""
    sequences = isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES)
    if sequences and len(left) + len(right) > MAX_LENGTH:
        raise _too_long(len(left) + len(right))
    return left + right


def multiply(left: Any, right: Any) -> Any:
    """Return left * right, refusing repeated text or lists longer than MAX_LENGTH."""
    for sequence, times in ((left, right), (right, left)):
        repeated = isinstance(sequence, _SEQUENCES) and isinstance(times, int)
        if repeated and len(sequence) * times > MAX_LENGTH:
            raise _too_long(len(sequence) * times)
    return left * right


def divide(left: Any, right: Any) -> Any:
    """Return left / right; two whole numbers give an exact Decimal, never a float."""
    if isinstance(left, int) and isinstance(right, int):
        return Decimal(left) / Decimal(right)
    return left / right


def floor_divide(left: Any, right: Any) -> Any:
    """Return left // right, rounding down for Decimal too (Decimal's own // truncates)."""
    if isinstance(left, int) and isinstance(right, int):
        return left // right
    if _is_number(left) and _is_number(right):
        return (Decimal(left) / Decimal(right)).to_integral_value(rounding=ROUND_FLOOR)
    return left // right


def modulo(left: Any, right: Any) -> Any:
    """Return left % right for numbers only (text % is printf formatting, which is refused)."""
    if not (_is_number(left) and _is_number(right)):
        raise TypeError("'%' works on numbers only")
    if isinstance(left, int) and isinstance(right, int):
        return left % right
    return Decimal(left) - Decimal(right) * floor_divide(left, right)


def power(base: Any, exponent: Any) -> Any:
    """Return base ** exponent, refusing huge exponents and results of over MAX_POWER_DIGITS."""
    if not (_is_number(base) and _is_number(exponent)):
        raise TypeError("'**' works on numbers only")
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"exponent {exponent} is too large (the limit is {MAX_EXPONENT})")
    if base not in (0, 1, -1) and exponent * Decimal(abs(base)).log10() > MAX_POWER_DIGITS:
        raise ValueError(f"the result of '**' would have more than {MAX_POWER_DIGITS} digits")
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        return base**exponent
    return Decimal(base) ** Decimal(exponent)


# --- text and general ------------------------------------------------------------------------


def str_(value: Any) -> str:
    """Convert a single value (text, number, boolean, date or null) to text; null becomes ""."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        # 1e999999 is a short literal whose text has a million digits: size it first.
        _fits(decimal_text_length(value))
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str | int):
        return str(value)
    raise TypeError(f"cannot convert {kind_of(value)} to text")


def bool_(value: Any) -> bool:
    """Return whether a value is true (non-zero, non-empty, not null)."""
    return bool(value)


def len_(value: Any) -> int:
    """Return the number of characters of text or items of a list or record (null is 0)."""
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | dict | set | frozenset):
        return len(value)
    raise TypeError(f"{kind_of(value)} has no length")


def coalesce(*values: Any) -> Any:
    """Return the first argument that is not null, or null."""
    return next((value for value in values if value is not None), None)


def contains(haystack: Any, needle: Any) -> bool:
    """Return whether text contains a piece of text, or a list contains an item."""
    return False if haystack is None else needle in haystack


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {kind_of(value)}")
    return value


def startswith(text: Any, prefix: Any) -> bool:
    """Return whether text starts with the prefix (null text never does)."""
    return text is not None and _text(text).startswith(_text(prefix))


def endswith(text: Any, suffix: Any) -> bool:
    """Return whether text ends with the suffix (null text never does)."""
    return text is not None and _text(text).endswith(_text(suffix))


def lower(text: Any) -> str | None:
    """Return text in lower case (null stays null)."""
    return None if text is None else _cased(text).lower()


def upper(text: Any) -> str | None:
    """Return text in upper case (null stays null)."""
    return None if text is None else _cased(text).upper()


def _cased(value: Any) -> str:
    # Case mapping may lengthen text ('ß'.upper() is 'SS'): refuse long input before it runs.
    text = _text(value)
    _fits(len(text))
    return text


def concat(*values: Any) -> str:
    """Join values as text; null values are skipped."""
    return "".join(_bounded_parts(values, 0))


def join(values: Iterable[Any] | None, separator: Any = ",") -> str:
    """Join a list's values as text with a separator; null values are skipped (null list: "")."""
    glue = _text(separator)
    present = [value for value in values or () if value is not None]
    return glue.join(_bounded_parts(present, len(glue)))


def _bounded_parts(values: Iterable[Any], separator: int) -> list[str]:
    """Return the values as text, refusing as soon as they and their separators would make
    text longer than MAX_LENGTH: sizes are added before anything is built (joining 100,000
    values of 100,000 characters once took 48 s and 10 GB before the old check ran)."""
    parts: list[str] = []
    size = 0
    for value in values:
        size += _text_length(value) + (separator if parts else 0)
        _fits(size)
        parts.append(str_(value))
    return parts


def _text_length(value: Any) -> int:
    """Return how long str_(value) would be, without building it when that could be costly."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Decimal):
        return decimal_text_length(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() * 30103 // 100000 + 2  # digits of 2**n: n * log10(2)
    return len(str_(value))


def decimal_text_length(value: Decimal) -> int:
    """Return an upper bound of the length of a Decimal written out in full (format 'f')."""
    if not value.is_finite():
        return 10
    _sign, digits, exponent = value.as_tuple()
    return len(digits) + abs(int(exponent)) + 3


def _fits(size: int) -> None:
    if size > MAX_LENGTH:
        raise ValueError(f"the result would be longer than {MAX_LENGTH:,} characters")


# --- dates -------------------------------------------------------------------------------------


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return _to_datetime(value).date()
    raise TypeError(f"expected a date, got {kind_of(value)}")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value[:50]!r} is not an ISO date or datetime") from None
    raise TypeError(f"expected a date or datetime, got {kind_of(value)}")


def _to_moment(value: Any) -> date:
    if isinstance(value, str) and len(value.strip()) > 10:
        return _to_datetime(value)
    return value if isinstance(value, date) else _to_date(value)


def now() -> datetime:
    """Return the current date and time (timezone-aware, UTC unless the caller fixed it)."""
    return datetime.now(UTC)


def today() -> date:
    """Return the current date (of now())."""
    return now().date()


def date_(year: Any, month: Any, day: Any) -> date:
    """Return the date of a year, month and day."""
    return date(_whole(year, "year"), _whole(month, "month"), _whole(day, "day"))


def parse_date(value: Any) -> date:
    """Return the date of ISO text such as "2026-01-31" (or of a date or datetime)."""
    return _to_date(value)


def parse_datetime(value: Any) -> datetime:
    """Return the datetime of ISO text such as "2026-01-31T08:30:00+08:00"."""
    return _to_datetime(value)


def days_between(start: Any, end: Any) -> int:
    """Return the number of calendar days from start to end (end - start)."""
    return (_to_date(end) - _to_date(start)).days


def hours_between(start: Any, end: Any) -> Decimal:
    """Return the hours from start to end as an exact decimal; naive times count as UTC."""
    first, last = _to_datetime(start), _to_datetime(end)
    if (first.tzinfo is None) != (last.tzinfo is None):
        first, last = (moment.replace(tzinfo=moment.tzinfo or UTC) for moment in (first, last))
    delta = last - first
    seconds = Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)
    return seconds / 3_600


def add_days(value: Any, days: Any) -> date:
    """Return the date (or datetime) a number of days later; negative goes back."""
    moment = value if isinstance(value, datetime) else _to_date(value)
    return moment + timedelta(days=_whole(days, "days"))


def add_months(value: Any, months: Any) -> date:
    """Return the date a number of months later, clamped to the end of a shorter month."""
    moment = value if isinstance(value, datetime) else _to_date(value)
    year, month = divmod(moment.year * 12 + moment.month - 1 + _whole(months, "months"), 12)
    month += 1
    if not 1 <= year <= 9999:
        raise ValueError("the resulting date is out of range")
    last_day = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def year(value: Any) -> int:
    """Return the year of a date."""
    return _to_date(value).year


def month(value: Any) -> int:
    """Return the month (1-12) of a date."""
    return _to_date(value).month


def day(value: Any) -> int:
    """Return the day of the month of a date."""
    return _to_date(value).day


def weekday(value: Any) -> int:
    """Return the day of the week of a date: Monday is 1, Sunday is 7."""
    return _to_date(value).isoweekday()


def format_date(value: Any, pattern: Any) -> str:
    """Format a date with only %Y %m %d %H %M %S %y (and %%), e.g. format_date(d, "%Y%m%d")."""
    if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN_LENGTH:
        raise ValueError(f"the pattern must be text of at most {_MAX_PATTERN_LENGTH} characters")
    for directive in re.findall(r"%(.?)", pattern, flags=re.DOTALL):
        if directive not in _DATE_DIRECTIVES:
            raise ValueError(f"'%{directive}' is not allowed; use only %Y %m %d %H %M %S %y")
    return _to_moment(value).strftime(pattern)


def duration_hours(text: Any) -> Decimal:
    """Return the hours of an ISO 8601 duration such as "PT1H30M" (weeks to seconds only)."""
    found = _DURATION.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    parts = {
        unit: amount for unit, amount in (found.groupdict() if found else {}).items() if amount
    }
    if not parts or str(text).strip().upper().endswith("T"):
        raise ValueError(f"{str(text)[:50]!r} is not an ISO 8601 duration like 'PT1H30M'")
    seconds = sum((Decimal(amount) * _SECONDS[unit] for unit, amount in parts.items()), Decimal(0))
    return seconds / 3_600


# --- database look-ups ---------------------------------------------------------------------------
# These two are answered by the save (see SaveContext.lookups): an entity rule or a computed field
# may add up or count other records, e.g. the commitments already booked against a budget line.
# Anywhere else (reports, BPMN scripts) there is no database at hand, so they refuse to run.


def sum_of(entity: Any, field: Any, filters: Any = None) -> Decimal:
    """Add up `field` over the records of `entity` matching `filters` (entity rules and
    computed fields only), e.g. sum_of("cost_center.commitment", "amount", {"project": project})."""
    raise ValueError("sum_of reads the database: use it in an entity rule or a computed field")


def count_of(entity: Any, filters: Any = None) -> int:
    """Count the records of `entity` matching `filters` (entity rules and computed fields only)."""
    raise ValueError("count_of reads the database: use it in an entity rule or a computed field")


_LIBRARY = (
    abs_, add_days, add_months, bool_, coalesce, concat, contains, count, count_of, date_, day,
    days_between, decimal_, duration_hours, endswith, format_date, hours_between, int_, join,
    len_, lower, max_, min_, month, now, parse_date, parse_datetime, round_, startswith, str_,
    sum_, sum_of, sumof, today, upper, weekday, year,
)  # fmt: skip
FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {func.__name__.rstrip("_"): func for func in _LIBRARY} | {"Decimal": decimal_}
)
"""Every function an expression may call, by the name it is called with."""


def library(fixed_now: datetime | None = None) -> Mapping[str, Callable[..., Any]]:
    """Return the function library, with now() and today() fixed to `fixed_now` when given."""
    if fixed_now is None:
        return FUNCTIONS
    moment: datetime = fixed_now

    def now() -> datetime:
        """Return the fixed current date and time."""
        return moment

    def today() -> date:
        """Return the date of the fixed current time."""
        return moment.date()

    return MappingProxyType({**FUNCTIONS, "now": now, "today": today})
