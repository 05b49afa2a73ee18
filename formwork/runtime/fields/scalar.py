"""Scalar field types: text, numbers, money, dates and booleans."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import marshmallow as ma
import sqlalchemy as sa

from formwork.runtime.errors import FieldError
from formwork.runtime.fields.base import EQUALITY_OPS, ORDER_OPS, TEXT_OPS, FieldType
from formwork.runtime.fields.numeric import ExactDecimal

if TYPE_CHECKING:
    from formwork.runtime.definitions import FieldDef

DECIMAL_TEXT = r"^-?[0-9]{1,40}(\.[0-9]{1,20})?$"
INT64 = 2**63 - 1


class StringType(FieldType):
    """A single line of text, 255 characters unless `maxLength` says otherwise."""

    name = "string"
    filter_ops = TEXT_OPS
    keywords = frozenset({"maxLength", "minLength", "pattern", "format"})
    default_length: ClassVar[int] = 255

    def max_length(self, field: FieldDef) -> int:
        """Return the longest value the column holds."""
        return int(field.schema.get("maxLength", self.default_length))

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return VARCHAR of the declared length."""
        return sa.String(self.max_length(field))

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment with the length limit made explicit."""
        fragment = super().json_schema(field)
        fragment["maxLength"] = self.max_length(field)
        return fragment

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'widen' for a longer string or a string becoming text."""
        if isinstance(new.kind, TextType) and not isinstance(old.kind, TextType):
            return "widen"
        if type(old.kind) is not type(new.kind):
            return "narrow"
        old_len, new_len = self.max_length(old), self.max_length(new)
        return "same" if old_len == new_len else ("widen" if new_len > old_len else "narrow")


class TextType(StringType):
    """Multi-line text, 65,535 characters unless `maxLength` says otherwise."""

    name = "text"
    default_length = 65535

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return TEXT."""
        return sa.Text()

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'same' for text to text; anything else loses characters."""
        return "same" if isinstance(new.kind, TextType) else "narrow"


class IntegerType(FieldType):
    """A whole number (64-bit)."""

    name = "integer"
    json_types = ("integer",)
    filter_ops = ORDER_OPS
    aggregatable = True
    keywords = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return BIGINT."""
        return sa.BigInteger()

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment limited to the 64-bit range."""
        fragment = super().json_schema(field)
        fragment.setdefault("minimum", -INT64)
        fragment.setdefault("maximum", INT64)
        return fragment

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return an Integer field."""
        return ma.fields.Integer(allow_none=True)

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'widen' for integer to decimal with enough integer digits."""
        if isinstance(new.kind, DecimalType):
            digits = new.kind.precision(new) - new.kind.scale(new)
            return "widen" if digits >= 19 else "narrow"
        return super().compare_storage(old, new)


class DecimalType(FieldType):
    """An exact decimal number: NUMERIC(precision, scale), text or number in JSON."""

    name = "decimal"
    json_types = ("string", "number")
    filter_ops = ORDER_OPS
    aggregatable = True
    keywords = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
    default_precision: ClassVar[int] = 18
    default_scale: ClassVar[int] = 4

    def precision(self, field: FieldDef) -> int:
        """Return the total number of significant digits."""
        return int(field.opt("precision", self.default_precision))

    def scale(self, field: FieldDef) -> int:
        """Return the number of digits after the point."""
        return int(field.opt("scale", self.default_scale))

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return NUMERIC(precision, scale), exact on every database."""
        return ExactDecimal(self.precision(field), self.scale(field))

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment; bounds are checked after conversion to Decimal."""
        return {"type": ["string", "number", "null"], "pattern": DECIMAL_TEXT}

    def output_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the output fragment: a decimal string."""
        out = {"type": ["string", "null"], "pattern": DECIMAL_TEXT, "format": "decimal"}
        out.update(self.describe(field))
        return out

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return a Decimal field that refuses NaN and infinity."""
        return ma.fields.Decimal(allow_none=True, allow_nan=False)

    def validate(self, field: FieldDef, value: Any, pointer: str) -> list[FieldError]:
        """Return digit-count and bound problems."""
        problems = _digit_problems(value, self.precision(field), self.scale(field), pointer)
        return problems + _bound_problems(field, value, pointer)

    def to_db(self, field: FieldDef, value: Any) -> Any:
        """Return the value quantized to the column's scale."""
        return None if value is None else value.quantize(Decimal(1).scaleb(-self.scale(field)))

    def from_db(self, field: FieldDef, value: Any) -> Any:
        """Return the stored number as a Decimal at the column's scale."""
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.scale(field)))

    def dump(self, field: FieldDef, value: Any) -> Any:
        """Return the decimal as a string, so no client loses a cent to floats."""
        return None if value is None else str(value)

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'widen' when neither integer nor fractional digits shrink."""
        if not isinstance(new.kind, DecimalType):
            return "narrow"
        old_p, old_s = old.kind.precision(old), old.kind.scale(old)  # type: ignore[attr-defined]
        new_p, new_s = new.kind.precision(new), new.kind.scale(new)
        if (old_p, old_s) == (new_p, new_s):
            return "same"
        return "widen" if new_s >= old_s and new_p - new_s >= old_p - old_s else "narrow"


class MoneyType(DecimalType):
    """An amount of money: exact decimal with 2 places and a currency (CNY by default)."""

    name = "money"
    default_scale = 2

    def currency(self, field: FieldDef) -> str:
        """Return the ISO 4217 currency code of the field."""
        return str(field.opt("currency", "CNY"))

    def describe(self, field: FieldDef) -> dict[str, Any]:
        """Return documentation keywords with the currency."""
        return {**super().describe(field), "x-currency": self.currency(field)}


class PercentType(DecimalType):
    """A percentage on a 0–100 scale, exact, 2 places by default."""

    name = "percent"
    default_precision = 9
    default_scale = 2


class DateType(FieldType):
    """A calendar date (ISO 8601 `YYYY-MM-DD`)."""

    name = "date"
    filter_ops = ORDER_OPS
    keywords = frozenset({"formatMinimum", "formatMaximum"})

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return DATE."""
        return sa.Date()

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment for a date string."""
        return {"type": ["string", "null"], "format": "date"}

    def output_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the output fragment with documentation keywords."""
        return {**self.json_schema(field), **self.describe(field)}

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return a Date field."""
        return ma.fields.Date(allow_none=True)

    def validate(self, field: FieldDef, value: Any, pointer: str) -> list[FieldError]:
        """Return bound problems against `formatMinimum`/`formatMaximum` (ISO dates)."""
        return _bound_problems(field, value, pointer, parse=dt.date.fromisoformat)

    def dump(self, field: FieldDef, value: Any) -> Any:
        """Return the ISO text of the date."""
        return None if value is None else value.isoformat()

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'widen' for date to datetime."""
        if isinstance(new.kind, DateTimeType):
            return "widen"
        return super().compare_storage(old, new)


class DateTimeType(DateType):
    """A moment in time, stored in UTC, ISO 8601 with offset in JSON."""

    name = "datetime"

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return a timezone-aware timestamp."""
        return sa.DateTime(timezone=True)

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment for a date-time string."""
        return {"type": ["string", "null"], "format": "date-time"}

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return a DateTime field."""
        return ma.fields.DateTime(allow_none=True)

    def validate(self, field: FieldDef, value: Any, pointer: str) -> list[FieldError]:
        """Return bound problems against ISO date-time bounds."""
        return _bound_problems(field, value, pointer, parse=dt.datetime.fromisoformat)

    def to_db(self, field: FieldDef, value: Any) -> Any:
        """Return the moment in UTC (a value without offset is taken as UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def from_db(self, field: FieldDef, value: Any) -> Any:
        """Return an aware UTC datetime (SQLite hands back naive values)."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'same' for datetime to datetime, else 'narrow'."""
        return "same" if isinstance(new.kind, DateTimeType) else "narrow"


class BooleanType(FieldType):
    """Yes or no."""

    name = "boolean"
    json_types = ("boolean",)
    filter_ops = EQUALITY_OPS

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return BOOLEAN."""
        return sa.Boolean()

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return a Boolean field."""
        return ma.fields.Boolean(allow_none=True)


def _digit_problems(value: Decimal, precision: int, scale: int, pointer: str) -> list[FieldError]:
    if not value.is_finite():
        return [FieldError(pointer, "decimal")]
    _sign, digits, exponent = value.normalize().as_tuple()
    fraction = max(0, -int(exponent))
    whole = max(0, len(digits) + int(exponent))
    if whole > precision - scale or fraction > scale:
        return [
            FieldError(
                pointer, "decimal_digits", {"integer_digits": precision - scale, "scale": scale}
            )
        ]
    return []


_BOUNDS = (
    ("minimum", "minimum", lambda v, b: v < b),
    ("maximum", "maximum", lambda v, b: v > b),
    ("exclusiveMinimum", "exclusive_minimum", lambda v, b: v <= b),
    ("exclusiveMaximum", "exclusive_maximum", lambda v, b: v >= b),
)


def _bound_problems(
    field: FieldDef, value: Any, pointer: str, parse: Any = None
) -> list[FieldError]:
    # Dates take their bounds from `formatMinimum`/`formatMaximum` (ISO text).
    problems = []
    for keyword, code, broken in _BOUNDS:
        key = "format" + keyword[0].upper() + keyword[1:] if parse else keyword
        bound = field.schema.get(key)
        if bound is None:
            continue
        limit = parse(bound) if parse else Decimal(str(bound))
        if broken(value, limit):
            problems.append(FieldError(pointer, code, {"limit": bound}))
    return problems
