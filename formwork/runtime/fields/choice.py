"""Choice field types: one option (select) or several (multi-select)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import marshmallow as ma
import sqlalchemy as sa

from formwork.runtime.errors import FieldError
from formwork.runtime.fields.base import EQUALITY_OPS, FieldType, definition_error
from formwork.runtime.messages import pick_label

if TYPE_CHECKING:
    from formwork.runtime.definitions import EntityDef, FieldDef

OPTION_LENGTH = 64


def option_values(field: FieldDef) -> list[str]:
    """Return the values of a choice field's options, in order."""
    return [str(o["value"]) for o in field.opt("options", ())]


def option_label(field: FieldDef, value: str, locale: str = "zh-CN") -> str:
    """Return the label of one option in `locale` (the value when unknown)."""
    for option in field.opt("options", ()):
        if option["value"] == value:
            return pick_label(option.get("label"), locale) or value
    return value


class SelectType(FieldType):
    """One value from a list of options, each with zh-CN and en labels."""

    name = "select"
    filter_ops = EQUALITY_OPS

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return VARCHAR wide enough for an option value."""
        return sa.String(OPTION_LENGTH)

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment listing the allowed values."""
        return {"type": ["string", "null"], "enum": [*option_values(field), None]}

    def parse_filter(self, field: FieldDef, text: str) -> Any:
        """Return the option value, refusing values that are not options."""
        if text not in option_values(field):
            raise ValueError(f"'{text}' is not one of {', '.join(option_values(field))}")
        return text

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'narrow' when options are removed (stored values may be lost)."""
        if type(new.kind) is not type(self):
            return "narrow"
        removed = set(option_values(old)) - set(option_values(new))
        return "narrow" if removed else "same"

    def check(self, field: FieldDef, entity: EntityDef) -> list[FieldError]:
        """Return duplicate-option problems."""
        values = option_values(field)
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            return [definition_error(field, "options", f"duplicate option values: {dupes}")]
        return []


class MultiSelectType(SelectType):
    """Several values from a list of options; stored as `,a,b,` so `contains` is one LIKE."""

    name = "multi_select"
    filter_ops = frozenset({"contains", "isnull"})
    sortable = False
    groupable = False

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return VARCHAR holding the delimited values."""
        return sa.String(1024)

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment: an array of distinct option values."""
        return {
            "type": ["array", "null"],
            "items": {"type": "string", "enum": option_values(field)},
            "uniqueItems": True,
        }

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return a list-of-strings field."""
        return ma.fields.List(ma.fields.String(), allow_none=True)

    def to_db(self, field: FieldDef, value: Any) -> Any:
        """Return the delimited form, values in option order."""
        if not value:
            return None
        order = option_values(field)
        chosen = sorted(value, key=lambda v: order.index(v) if v in order else len(order))
        return "," + ",".join(chosen) + ","

    def from_db(self, field: FieldDef, value: Any) -> Any:
        """Return the list of values."""
        return [v for v in value.split(",") if v] if value else []

    def filter_column(self, field: FieldDef, column: Any, op: str, value: Any) -> Any:
        """Return `column LIKE '%,value,%'` for contains."""
        if op == "contains":
            return column.like(f"%,{value},%")
        return None

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'narrow' when options are removed."""
        return super().compare_storage(old, new)
