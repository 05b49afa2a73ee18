"""Relation field types: references to records and users, and child tables of line items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import marshmallow as ma
import sqlalchemy as sa

from formwork.runtime.errors import FieldError
from formwork.runtime.fields.base import EQUALITY_OPS, FieldType, SaveContext

if TYPE_CHECKING:
    from formwork.runtime.definitions import EntityDef, FieldDef

ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class ReferenceType(FieldType):
    """A foreign key to a record of another entity (`x-formwork.entity`)."""

    name = "reference"
    json_types = ("integer",)
    filter_ops = EQUALITY_OPS
    always_indexed = True

    def target(self, field: FieldDef, entity: EntityDef) -> str:
        """Return the key of the referenced entity."""
        from formwork.runtime.definitions import qualify

        return qualify(entity.pack, field.opt("entity"))

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return the id type."""
        return ID_TYPE

    def constraints(self, field: FieldDef, entity: EntityDef) -> list[Any]:
        """Return the foreign key to the target table's id."""
        table = self.target(field, entity).replace(".", "__")
        return [sa.ForeignKey(f"{table}.id", ondelete="RESTRICT")]

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment: a positive record id."""
        return {"type": ["integer", "null"], "minimum": 1, "maximum": 2**63 - 1}

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return an Integer field."""
        return ma.fields.Integer(allow_none=True)

    def check_stored(
        self, field: FieldDef, values: list[tuple[str, Any]], ctx: SaveContext
    ) -> list[FieldError]:
        """Return a problem for every id that does not exist in the target table or that
        the saving user may not read (the same problem: existence is not confirmed)."""
        return _missing(
            values,
            ctx.referable(field.opt("entity"), {v for _, v in values}),
            "reference_missing",
            field.opt("entity"),
        )

    def join_target(self, field: FieldDef, entity: EntityDef) -> str | None:
        """Return the referenced entity: filters may reach its fields."""
        return self.target(field, entity)

    def as_text(self, field: FieldDef, value: Any, ctx: Any) -> str:
        """Return the referenced record's title."""
        return "" if value is None else ctx.title_of(field.opt("entity"), value)

    def references(self, field: FieldDef, entity: EntityDef) -> list[str]:
        """Return the referenced entity."""
        return [self.target(field, entity)]

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'same' while the target stays; a new target loses the links."""
        # "project" and "sample.project" name the same target within a pack.
        if type(new.kind) is not type(self):
            return "narrow"
        if old.opt("entity").split(".")[-1] != new.opt("entity").split(".")[-1]:
            return "narrow"
        return "same"


class UserType(ReferenceType):
    """A reference to a platform user."""

    name = "user"

    def join_target(self, field: FieldDef, entity: EntityDef) -> str | None:
        """Return None: users are not an entity filters can reach into."""
        return None

    def as_text(self, field: FieldDef, value: Any, ctx: Any) -> str:
        """Return the user id as text."""
        return "" if value is None else str(value)

    def target(self, field: FieldDef, entity: EntityDef) -> str:
        """Return the users table's pseudo key."""
        return "fw.users"

    def constraints(self, field: FieldDef, entity: EntityDef) -> list[Any]:
        """Return the foreign key to the users table."""
        return [sa.ForeignKey("fw_users.id", ondelete="RESTRICT")]

    def check_stored(
        self, field: FieldDef, values: list[tuple[str, Any]], ctx: SaveContext
    ) -> list[FieldError]:
        """Return a problem for every user id that does not exist."""
        found = ctx.exists(ctx.users_table, {v for _, v in values})
        return _missing(values, found, "user_missing", "user")

    def references(self, field: FieldDef, entity: EntityDef) -> list[str]:
        """Return nothing: users are a platform table."""
        return []

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'same' for user to user."""
        return "same" if type(new.kind) is type(self) else "narrow"


class ChildrenType(FieldType):
    """Ordered line items held in the child entity's own table (`x-formwork.entity`)."""

    name = "children"
    holds_rows = True
    json_types = ("array",)
    stored = False
    sortable = False
    groupable = False
    filter_ops = frozenset()

    def child_key(self, field: FieldDef, entity: EntityDef) -> str:
        """Return the key of the child entity."""
        from formwork.runtime.definitions import qualify

        return qualify(entity.pack, field.opt("entity"))

    def columns(self, field: FieldDef, entity: EntityDef) -> list[sa.Column[Any]]:
        """Return no columns: the rows live in the child table."""
        return []

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment: an array of objects (each checked as a child record)."""
        return {
            "type": ["array", "null"],
            "items": {"type": "object"},
            "maxItems": int(field.opt("max_rows", 1000)),
        }

    def output_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the output fragment (items described by the child schema)."""
        return {"type": "array", "items": {"type": "object"}, **self.describe(field)}

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return a raw list field; rows are converted by the child entity's schema."""
        return ma.fields.List(ma.fields.Raw(), allow_none=True)

    def references(self, field: FieldDef, entity: EntityDef) -> list[str]:
        """Return the child entity."""
        return [self.child_key(field, entity)]

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'same'; the child table evolves as an entity of its own."""
        return "same" if type(new.kind) is type(self) else "narrow"


def _missing(
    values: list[tuple[str, Any]], found: set[Any], code: str, entity: str
) -> list[FieldError]:
    return [
        FieldError(p, code, {"entity": entity, "value": v}) for p, v in values if v not in found
    ]
