"""The field-type base class: one small class per type knows everything about itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import marshmallow as ma
import sqlalchemy as sa

from formwork.runtime.errors import FieldError

if TYPE_CHECKING:
    from formwork.runtime.definitions import EntityDef, FieldDef

EQUALITY_OPS = frozenset({"eq", "ne", "in", "isnull"})
ORDER_OPS = EQUALITY_OPS | {"lt", "lte", "gt", "gte"}
TEXT_OPS = ORDER_OPS | {"contains", "startswith"}


class SaveContext(Protocol):
    """What a field type may ask of the save in progress (database look-ups)."""

    def exists(self, table: sa.Table, ids: set[Any]) -> set[Any]:
        """Return which of `ids` exist in `table`."""

    def table_of(self, entity_key: str) -> sa.Table:
        """Return the table of an entity by key."""

    def referable(self, entity_key: str, ids: set[Any]) -> set[Any]:
        """Return which of `ids` the saving principal may reference (readable or kept)."""

    @property
    def users_table(self) -> sa.Table:
        """Return the users table."""

    def file_rows(self, ids: set[str]) -> Mapping[str, Mapping[str, Any]]:
        """Return stored-file metadata keyed by id."""

    def may_attach(self, file_id: str, uploaded_by: int | None) -> bool:
        """Return True when the saving user may put this file on the record."""


class FieldType:
    """Base of every field type; subclasses override what differs."""

    name: ClassVar[str] = ""
    json_types: ClassVar[tuple[str, ...]] = ("string",)
    filter_ops: ClassVar[frozenset[str]] = EQUALITY_OPS
    stored: ClassVar[bool] = True
    aggregatable: ClassVar[bool] = False
    groupable: ClassVar[bool] = True
    sortable: ClassVar[bool] = True
    system_written: ClassVar[bool] = False
    holds_rows: ClassVar[bool] = False
    # True for values assigned once, after validation passed (document numbers).
    assigned_on_insert: ClassVar[bool] = False
    always_unique: ClassVar[bool] = False
    always_indexed: ClassVar[bool] = False
    # Lists the schema keywords the author may use on a property of this type.
    keywords: ClassVar[frozenset[str]] = frozenset()

    # -- storage -----------------------------------------------------------------------
    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return the SQL column type."""
        return sa.String(255)

    def columns(self, field: FieldDef, entity: EntityDef) -> list[sa.Column[Any]]:
        """Return fresh Column objects for the field (new objects on every call)."""
        return [
            sa.Column(
                field.name,
                self.sql_type(field),
                *self.constraints(field, entity),
                nullable=True,
                unique=field.unique or None,
                index=(field.indexed and not field.unique) or None,
            )
        ]

    def constraints(self, field: FieldDef, entity: EntityDef) -> list[Any]:
        """Return extra column arguments such as foreign keys."""
        return []

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'same', 'widen' or 'narrow' for a change of definition of one field."""
        if type(old.kind) is not type(new.kind):
            return "narrow"
        old_t, new_t = self.sql_type(old), self.sql_type(new)
        return "same" if repr(old_t) == repr(new_t) else "narrow"

    def ops(self, field: FieldDef) -> frozenset[str]:
        """Return the filter operators the field supports."""
        return self.filter_ops

    def can_aggregate(self, field: FieldDef) -> bool:
        """Return True when sum and avg make sense for the field."""
        return self.aggregatable

    def compute(self, field: FieldDef, record: dict[str, Any], ctx: Any, inserting: bool) -> Any:
        """Return the value the platform writes (only for `system_written` types)."""
        raise NotImplementedError(f"{self.name} values are written by users")

    # -- validation and conversion -----------------------------------------------------
    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the JSON Schema fragment that validates raw input for the field."""
        fragment = {k: v for k, v in field.schema.items() if k in self.keywords}
        fragment["type"] = [*self.json_types, "null"]
        return fragment

    def output_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the JSON Schema fragment describing the field in API output."""
        fragment = self.json_schema(field)
        fragment.update(self.describe(field))
        return fragment

    def describe(self, field: FieldDef) -> dict[str, Any]:
        """Return documentation keywords (title, description) for schemas."""
        out: dict[str, Any] = {"title": field.label("en")}
        if field.read_only:
            out["readOnly"] = True
        return out

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return the marshmallow field that converts JSON values to Python values."""
        return ma.fields.String(allow_none=True)

    def validate(self, field: FieldDef, value: Any, pointer: str) -> list[FieldError]:
        """Return problems with a converted, non-null value (checks needing no database)."""
        return []

    def check_stored(
        self, field: FieldDef, values: list[tuple[str, Any]], ctx: SaveContext
    ) -> list[FieldError]:
        """Return problems needing the database for (pointer, value) pairs of this field."""
        return []

    def to_db(self, field: FieldDef, value: Any) -> Any:
        """Return the value as stored in the column."""
        return value

    def from_db(self, field: FieldDef, value: Any) -> Any:
        """Return the Python value for a column value."""
        return value

    def dump(self, field: FieldDef, value: Any) -> Any:
        """Return the JSON form of a Python value."""
        return value

    def join_target(self, field: FieldDef, entity: EntityDef) -> str | None:
        """Return the entity key a filter may reach through this field (`field.other`)."""
        return None

    def as_text(self, field: FieldDef, value: Any, ctx: Any) -> str:
        """Return the value as text for document numbers and titles."""
        return "" if value is None else str(value)

    def parse_filter(self, field: FieldDef, text: str) -> Any:
        """Return the Python value of a query-string filter value (raise ValueError)."""
        try:
            return self.marshmallow_field(field).deserialize(text)
        except ma.ValidationError as exc:
            raise ValueError("; ".join(_flatten(exc.messages))) from exc

    def filter_column(self, field: FieldDef, column: Any, op: str, value: Any) -> Any:
        """Return a SQL condition for one filter (the generic operators)."""
        return None

    # -- definition checks ---------------------------------------------------------------
    def check(self, field: FieldDef, entity: EntityDef) -> list[FieldError]:
        """Return problems with the field's definition."""
        return []

    def references(self, field: FieldDef, entity: EntityDef) -> list[str]:
        """Return entity keys the field depends on (references, children)."""
        return []


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [m for v in messages.values() for m in _flatten(v)]
    return [m for v in messages for m in _flatten(v)]


def definition_error(field: FieldDef, key: str, detail: str) -> FieldError:
    """Return a definition problem addressed at a field's option."""
    return FieldError(f"/properties/{field.name}/x-formwork/{key}", "schema", {"detail": detail})
