"""How a spreadsheet cell becomes the JSON value a field takes, one small class per field
type (looked up along the type's MRO, like the web's widgets), with no Flask: imports run in
`formwork worker` too. A value a field cannot take is passed on as text, so the records
service refuses it with its own message at its row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from formwork.runtime.definitions import FieldDef
from formwork.runtime.fields import FieldType
from formwork.runtime.fields.choice import MultiSelectType, SelectType
from formwork.runtime.fields.relation import ChildrenType, ReferenceType
from formwork.runtime.fields.scalar import (
    BooleanType,
    DateTimeType,
    DateType,
    DecimalType,
    IntegerType,
)
from formwork.runtime.fields.special import AttachmentType, AutoNumberType, ComputedType

TRUE_WORDS = frozenset({"1", "true", "yes", "y", "是", "对", "on", "√", "✓"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "否", "off", ""})
_NUMBER_MARKS = (",", " ", "\u00a0", "_", "¥", "￥", "%", "，")
_WHOLE = re.compile(r"-?[0-9]{1,30}")  # ASCII digits only: int('²') raises


@dataclass
class CellContext:
    """What converting cells needs: record ids by title per reference field, and the zone
    a moment without one is read in."""

    zone: dt.tzinfo
    by_title: dict[str, dict[str, int]] = field(default_factory=dict)


class Cell:
    """Plain text: the fallback for every field type."""

    importable: ClassVar[bool] = True

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return the JSON value for a cell (None for an empty one)."""
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if isinstance(cell, float) and cell.is_integer():
            cell = int(cell)
        return str(cell).strip()


class IntegerCell(Cell):
    """A whole number, from a number cell or digits with separators."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return an int for an integral number or its text, else the text."""
        if isinstance(cell, bool):
            return str(cell)
        if isinstance(cell, int):
            return cell
        if isinstance(cell, float) and cell.is_integer():
            return int(cell)
        text = clean_number(cell)
        return int(text) if _WHOLE.fullmatch(text) else (text or None)


class DecimalCell(Cell):
    """An exact decimal; floats go through their text so 0.1 stays 0.1."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return the number as text."""
        if cell is None or isinstance(cell, bool):
            return None if cell is None else str(cell)
        if isinstance(cell, int | float | Decimal):
            return str(cell)
        return clean_number(cell) or None


class DateCell(Cell):
    """A date cell, or text like 2026-11-24 or 2026/11/24."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return the ISO date (or the text when it is not one)."""
        if isinstance(cell, dt.datetime):
            return cell.date().isoformat()
        if isinstance(cell, dt.date):
            return cell.isoformat()
        text = super().value(fd, cell, ctx)
        if text is None:
            return None
        try:
            return dt.date.fromisoformat(text.replace("/", "-")).isoformat()
        except ValueError:
            return text


class DateTimeCell(Cell):
    """A moment; one without a zone is read in the company's zone."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return the ISO moment with its offset (or the text when it is not one)."""
        text = cell.isoformat() if isinstance(cell, dt.datetime) else super().value(fd, cell, ctx)
        if text is None:
            return None
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        return (moment if moment.tzinfo else moment.replace(tzinfo=ctx.zone)).isoformat()


class BooleanCell(Cell):
    """True/False from a boolean cell or words like 是/否, yes/no, 1/0."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return True, False, None, or the text when it is neither."""
        if isinstance(cell, bool) or cell is None:
            return cell
        word = str(cell).strip().lower()
        if word in TRUE_WORDS:
            return True
        return False if word in FALSE_WORDS else str(cell)


class SelectCell(Cell):
    """An option, by its value or its label in either language."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return the option value."""
        text = super().value(fd, cell, ctx)
        return None if text is None else option_for(fd, text)


class MultiSelectCell(Cell):
    """Options written as `住宅, 道路` or `housing,road`."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return the list of option values."""
        text = super().value(fd, cell, ctx)
        if text is None:
            return []
        parts = [p.strip() for p in str(text).replace("，", ",").split(",")]
        return [option_for(fd, p) for p in parts if p]


class ReferenceCell(Cell):
    """A record (or user) by its title (or user name), or by its id."""

    def value(self, fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
        """Return the id, or the text when no record has that title."""
        text = super().value(fd, cell, ctx)
        if text is None:
            return None
        found = ctx.by_title.get(fd.name, {}).get(str(text))
        if found is not None:
            return found
        return int(text) if _WHOLE.fullmatch(str(text)) else str(text)


class NotImported(Cell):
    """Values the platform writes or files: never taken from a sheet."""

    importable = False


TEXT = Cell()
CELLS: Mapping[type[FieldType], Cell] = {
    IntegerType: IntegerCell(),
    DecimalType: DecimalCell(),
    DateType: DateCell(),
    DateTimeType: DateTimeCell(),
    BooleanType: BooleanCell(),
    SelectType: SelectCell(),
    MultiSelectType: MultiSelectCell(),
    ReferenceType: ReferenceCell(),
    AttachmentType: NotImported(),
    ComputedType: NotImported(),
    AutoNumberType: NotImported(),
    ChildrenType: NotImported(),
}


def cell_reader(fd: FieldDef) -> Cell:
    """Return how cells become values for a field (the nearest class on its type's MRO)."""
    for cls in type(fd.kind).__mro__:
        if cls in CELLS:
            return CELLS[cls]
    return TEXT


def importable(fd: FieldDef) -> bool:
    """Return True when a column can be mapped to the field."""
    return cell_reader(fd).importable


def from_cell(fd: FieldDef, cell: Any, ctx: CellContext) -> Any:
    """Return the JSON value of a cell for a field."""
    return cell_reader(fd).value(fd, cell, ctx)


def clean_number(raw: Any) -> str:
    """Return number text without grouping marks, spaces or currency and percent signs."""
    text = str(raw).strip()
    for mark in _NUMBER_MARKS:
        text = text.replace(mark, "")
    return text


def option_for(fd: FieldDef, text: str) -> str:
    """Return the value of the option named `text` (its value or a label), else the text."""
    for option in fd.opt("options", ()):
        label = option.get("label") or {}
        names = {str(option["value"]).lower(), *(str(v).lower() for v in label.values())}
        if text.strip().lower() in names:
            return str(option["value"])
    return text
