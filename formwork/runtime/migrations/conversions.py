"""How stored values move from a field's old column to its new one when its type changes.

Each conversion answers three questions in SQL, on the values as stored: which rows would lose
something (`lost`, counted before asking for confirmation), what the new stored value is
(`value`, used by PostgreSQL's `ALTER … USING` and by the refill of a recreated SQLite table) and
whether the change can lose anything at all (`can_lose`). Conversions are chosen by the column
types (storage's business), not by field-type names; choice fields are the one exception,
because removing an option keeps the column type but not the values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formwork.runtime.definitions import FieldDef
from formwork.runtime.fields.choice import MultiSelectType, SelectType, option_values
from formwork.runtime.fields.numeric import ExactDecimal
from formwork.runtime.migrations.errors import MigrationError
from formwork.runtime.migrations.schema import field_columns, foreign_keys

Expr = Any  # a SQLAlchemy column expression
INT64_MAX = 2**63 - 1
INTEGER_DIGITS = 18  # whole digits every BIGINT value has room for


class Conversion:
    """Keep the stored values as they are (the base: nothing is lost)."""

    can_lose = False

    def lost(self, name: str, dialect: str) -> Expr | None:
        """Return a condition true for rows whose value would change or vanish (None: none)."""
        return None

    def value(self, name: str, dialect: str) -> Expr:
        """Return the new stored value computed from the old stored column `name`."""
        return sa.column(name)

    def loss_phrase(self, count: int) -> str:
        """Return what happens to the `count` rows that lose something."""
        return f"{plural(count, 'value')} would change"


@dataclass(frozen=True)
class TruncateText(Conversion):
    """Shorten text to the new length (None: no limit)."""

    old_length: int | None
    new_length: int | None

    @property
    def can_lose(self) -> bool:  # type: ignore[override]
        """Return True when the new limit is shorter."""
        if self.new_length is None:
            return False
        return self.old_length is None or self.new_length < self.old_length

    def lost(self, name: str, dialect: str) -> Expr | None:
        """Return `length(column) > new length`."""
        if not self.can_lose:
            return None
        return sa.func.length(sa.column(name, sa.String())) > self.new_length

    def value(self, name: str, dialect: str) -> Expr:
        """Return the text cut to the new length."""
        column = sa.column(name, sa.String())
        if not self.can_lose:
            return column
        return sa.case(
            (sa.func.length(column) > self.new_length, sa.func.substr(column, 1, self.new_length)),
            else_=column,
        )

    def loss_phrase(self, count: int) -> str:
        """Return the truncation sentence."""
        return (
            f"{plural(count, 'value')} longer than {self.new_length} characters would be truncated"
        )


@dataclass(frozen=True)
class NumberShape:
    """Digits of a numeric column and whether SQLite stores it as a scaled integer."""

    precision: int
    scale: int
    scaled: bool

    def stored_scale(self, dialect: str) -> int:
        """Return the power of ten the stored integer carries (0 where numbers are native)."""
        return self.scale if self.scaled and dialect == "sqlite" else 0


@dataclass(frozen=True)
class RescaleNumber(Conversion):
    """Round to the new scale; clear values whose whole part does not fit."""

    old: NumberShape
    new: NumberShape

    @property
    def can_lose(self) -> bool:  # type: ignore[override]
        """Return True when fraction or whole digits shrink."""
        whole = self.new.precision - self.new.scale < self.old.precision - self.old.scale
        return self.new.scale < self.old.scale or whole

    def _dropped(self) -> int:
        return max(0, self.old.scale - self.new.scale)

    def _rounded(self, name: str, dialect: str) -> Expr:
        """Return the value rounded to the new scale, in the new column's stored units."""
        column: Expr = sa.column(name, sa.BigInteger() if dialect == "sqlite" else sa.Numeric())
        if dialect != "sqlite":
            return sa.func.round(column, self.new.scale) if self._dropped() else column
        unit = self.old.stored_scale(dialect)
        if self._dropped() and unit:
            divisor, half = 10 ** self._dropped(), 10 ** self._dropped() // 2
            # Integer division truncates toward zero, so adding half away from zero rounds half
            # away from zero, as NUMERIC does on PostgreSQL.
            column = sa.case(
                (column >= 0, (column + half) // divisor), else_=(column - half) // divisor
            )
            unit -= self._dropped()
        factor = 10 ** (self.new.stored_scale(dialect) - unit)
        return column * factor if factor != 1 else column

    def _too_big(self, rounded: Expr, dialect: str) -> Expr | None:
        whole = self.new.precision - self.new.scale
        limit = 10 ** (whole + self.new.stored_scale(dialect))
        if dialect == "sqlite" and limit > INT64_MAX:
            return None  # no stored integer reaches it
        return sa.func.abs(rounded) >= limit

    def lost(self, name: str, dialect: str) -> Expr | None:
        """Return rows that would be rounded or cleared."""
        if not self.can_lose:
            return None
        rounded = self._rounded(name, dialect)
        conditions = [self._too_big(rounded, dialect)]
        if self._dropped():
            if dialect == "sqlite" and self.old.stored_scale(dialect):
                stored = sa.column(name, sa.BigInteger())
                conditions.append(stored % (10 ** self._dropped()) != 0)
            else:
                conditions.append(sa.column(name, sa.Numeric()) != rounded)
        return sa.or_(*[c for c in conditions if c is not None])

    def value(self, name: str, dialect: str) -> Expr:
        """Return the rounded value, or NULL when its whole part does not fit."""
        rounded = self._rounded(name, dialect)
        too_big = self._too_big(rounded, dialect)
        return rounded if too_big is None else sa.case((too_big, sa.null()), else_=rounded)

    def loss_phrase(self, count: int) -> str:
        """Return the rounding sentence."""
        p, s = self.new.precision, self.new.scale
        return f"{plural(count, 'value')} beyond NUMERIC({p}, {s}) would be rounded or cleared"


@dataclass(frozen=True)
class DateToDateTime(Conversion):
    """Turn a date into midnight UTC of that day."""

    def value(self, name: str, dialect: str) -> Expr:
        """Return midnight UTC in the stored form of a timestamp."""
        if dialect == "sqlite":
            # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
            return sa.column(name, sa.String()).concat(" 00:00:00.000000")
        return sa.func.timezone("UTC", sa.cast(sa.column(name), sa.DateTime()))


@dataclass(frozen=True)
class DateTimeToDate(Conversion):
    """Keep the UTC date of a moment; the time of day is lost."""

    can_lose = True

    def lost(self, name: str, dialect: str) -> Expr | None:
        """Return rows whose time of day is not midnight UTC."""
        if dialect == "sqlite":
            return sa.func.substr(sa.column(name, sa.String()), 12) != "00:00:00.000000"
        return sa.cast(_utc(name), sa.Time()) != dt.time(0)

    def value(self, name: str, dialect: str) -> Expr:
        """Return the date part (in UTC)."""
        if dialect == "sqlite":
            return sa.func.substr(sa.column(name, sa.String()), 1, 10)
        return sa.cast(_utc(name), sa.Date())

    def loss_phrase(self, count: int) -> str:
        """Return the lost-time sentence."""
        return f"{plural(count, 'value')} would lose their time of day"


def _utc(name: str) -> Expr:
    return sa.func.timezone("UTC", sa.column(name, sa.DateTime(timezone=True)))


@dataclass(frozen=True)
class DropOptions(Conversion):
    """Clear choices of options that no longer exist."""

    removed: tuple[str, ...]
    multiple: bool
    can_lose = True

    def lost(self, name: str, dialect: str) -> Expr | None:
        """Return rows holding a removed option."""
        column = sa.column(name, sa.String())
        if self.multiple:
            return sa.or_(*[column.like(f"%,{value},%") for value in self.removed])
        return column.in_(self.removed)

    def value(self, name: str, dialect: str) -> Expr:
        """Return the value without the removed options (NULL when nothing is left)."""
        column = sa.column(name, sa.String())
        if not self.multiple:
            return sa.case((column.in_(self.removed), sa.null()), else_=column)
        kept: Expr = column
        for value in self.removed:
            kept = sa.func.replace(kept, f",{value},", ",")
        return sa.func.nullif(kept, ",")

    def loss_phrase(self, count: int) -> str:
        """Return the removed-options sentence."""
        removed = ", ".join(self.removed)
        return f"{plural(count, 'value')} with removed options ({removed}) would be cleared"


@dataclass(frozen=True)
class ClearValues(Conversion):
    """Clear every value: the new column holds a different kind of data."""

    old_type: str
    new_type: str
    can_lose = True

    def lost(self, name: str, dialect: str) -> Expr | None:
        """Return every non-null row."""
        return sa.column(name).is_not(None)

    def value(self, name: str, dialect: str) -> Expr:
        """Return NULL."""
        return sa.null()

    def loss_phrase(self, count: int) -> str:
        """Return the clearing sentence."""
        return (
            f"{plural(count, 'non-empty value')} would be cleared "
            f"(the type changes from {self.old_type} to {self.new_type})"
        )


def choose_conversion(
    old: FieldDef,
    new: FieldDef,
    old_column: sa.Column[Any],
    new_column: sa.Column[Any],
    references_change: bool,
) -> Conversion:
    """Return how values of `old_column` become values of `new_column`."""
    old_type, new_type = old_column.type, new_column.type
    clear = ClearValues(old.kind.name, new.kind.name)
    if references_change:
        return clear  # ids of one table mean nothing in another
    if isinstance(new.kind, SelectType):
        if type(old.kind) is not type(new.kind):
            return clear
        removed = tuple(v for v in option_values(old) if v not in option_values(new))
        multiple = isinstance(new.kind, MultiSelectType)
        return DropOptions(removed, multiple) if removed else Conversion()
    if repr(old_type) == repr(new_type):
        return Conversion()
    if isinstance(old_type, sa.String) and isinstance(new_type, sa.String):
        return TruncateText(old_type.length, new_type.length)
    old_shape, new_shape = _number_shape(old_type), _number_shape(new_type)
    if old_shape and new_shape:
        return RescaleNumber(old_shape, new_shape)
    if isinstance(old_type, sa.Date) and isinstance(new_type, sa.DateTime):
        return DateToDateTime()
    if isinstance(old_type, sa.DateTime) and isinstance(new_type, sa.Date):
        return DateTimeToDate()
    return clear


def plural(count: int, noun: str) -> str:
    """Return e.g. "1 value" or "3 values"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _number_shape(type_: Any) -> NumberShape | None:
    if isinstance(type_, ExactDecimal):
        return NumberShape(type_.precision, type_.scale, scaled=True)
    if isinstance(type_, sa.Numeric):
        return NumberShape(type_.precision or INTEGER_DIGITS, type_.scale or 0, scaled=False)
    if isinstance(type_, sa.Integer):
        return NumberShape(INTEGER_DIGITS, 0, scaled=False)
    return None


def field_conversions(
    pack: str, entity: str, old: FieldDef, new: FieldDef
) -> list[tuple[sa.Column[Any], sa.Column[Any], Conversion]]:
    """Return (old column, new column, conversion) for each column of a changed field."""
    old_columns = field_columns(pack, entity, old)
    new_columns = field_columns(pack, entity, new)
    if len(old_columns) != len(new_columns):
        raise MigrationError(f"cannot convert {entity}.{new.name}: its columns differ in number")
    moved = foreign_keys(pack, entity, old) != foreign_keys(pack, entity, new)
    return [
        (o, n, choose_conversion(old, new, o, n, moved))
        for o, n in zip(old_columns, new_columns, strict=True)
    ]


def storage_change(pack: str, entity: str, old: FieldDef, new: FieldDef) -> str:
    """Return 'same', 'widen' or 'narrow' for a change of a stored field's definition.

    The field type's `compare_storage` decides, checked against the columns themselves: a
    change whose columns, references and values all stay put is 'same', one whose columns
    differ is never 'same', and one that can lose values is never 'widen'.
    """
    declared = old.kind.compare_storage(old, new)
    pairs = field_conversions(pack, entity, old, new)
    can_lose = any(conversion.can_lose for _, _, conversion in pairs)
    identical = all(repr(o.type) == repr(n.type) for o, n, _ in pairs) and (
        foreign_keys(pack, entity, old) == foreign_keys(pack, entity, new)
    )
    if identical and not can_lose:
        return "same"
    if declared == "same" or (declared == "widen" and can_lose):
        return "narrow" if can_lose else "widen"
    return declared
