"""Field types the platform fills in or that point outside the table: attachments,
computed values and auto-numbers."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import marshmallow as ma
import sqlalchemy as sa

from formwork.runtime.errors import FieldError
from formwork.runtime.fields.base import EQUALITY_OPS, FieldType, SaveContext, definition_error

if TYPE_CHECKING:
    from formwork.runtime.definitions import EntityDef, FieldDef

FILE_ID = r"^[0-9a-f]{32}$"
TOKEN_RE = re.compile(r"\{([^{}]+)\}")
DATE_TOKENS = {
    "YYYY": "%Y",
    "YY": "%y",
    "MM": "%m",
    "DD": "%d",
    "YYYYMM": "%Y%m",
    "YYYYMMDD": "%Y%m%d",
}


class ComputeContext(SaveContext, Protocol):
    """What computing a value may ask for: the clock and the sequences."""

    @property
    def now(self) -> dt.datetime:
        """Return the moment of the save."""

    @property
    def local_now(self) -> dt.datetime:
        """Return the moment of the save in the company's time zone."""

    def next_in_sequence(self, key: str) -> int:
        """Return the next number of a gap-free sequence, inside the save's transaction."""

    def field_text(self, name: str, record: dict[str, Any]) -> str:
        """Return a field of the record as text (a reference as its target's title)."""


class AttachmentType(FieldType):
    """Uploaded file(s) kept under `instance/files`, with size and type limits."""

    name = "attachment"
    filter_ops = frozenset({"isnull"})
    sortable = False
    groupable = False

    def multiple(self, field: FieldDef) -> bool:
        """Return True when the field holds a list of files."""
        return bool(field.opt("multiple", False))

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return TEXT for a list of ids, or a 32-character id."""
        return sa.Text() if self.multiple(field) else sa.String(32)

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment: a file id, or a list of them."""
        one = {"type": "string", "pattern": FILE_ID}
        if self.multiple(field):
            return {
                "type": ["array", "null"],
                "items": one,
                "uniqueItems": True,
                "maxItems": int(field.opt("max_files", 20)),
            }
        return {"type": ["string", "null"], "pattern": FILE_ID}

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return a string or list-of-strings field."""
        if self.multiple(field):
            return ma.fields.List(ma.fields.String(), allow_none=True)
        return ma.fields.String(allow_none=True)

    def to_db(self, field: FieldDef, value: Any) -> Any:
        """Return the ids joined by commas for a multiple field."""
        if self.multiple(field):
            return ",".join(value) if value else None
        return value

    def from_db(self, field: FieldDef, value: Any) -> Any:
        """Return the id, or the list of ids."""
        if self.multiple(field):
            return value.split(",") if value else []
        return value

    def check_stored(
        self, field: FieldDef, values: list[tuple[str, Any]], ctx: SaveContext
    ) -> list[FieldError]:
        """Return problems for missing files and files over the field's limits."""
        pairs = [(p, v) for p, vs in values for v in (vs if isinstance(vs, list) else [vs])]
        rows = ctx.file_rows({v for _, v in pairs})
        problems = []
        for pointer, file_id in pairs:
            row = rows.get(file_id)
            if row is None:
                problems.append(FieldError(pointer, "file_missing", {"value": file_id}))
            elif not ctx.may_attach(file_id, row.get("created_by")):
                # Attaching someone else's upload would hand its readers the file.
                problems.append(FieldError(pointer, "file_not_yours", {"value": file_id}))
            else:
                problems += self._limit_problems(field, pointer, row)
        return problems

    def _limit_problems(self, field: FieldDef, pointer: str, row: Any) -> list[FieldError]:
        limit = field.opt("max_size")
        if limit is not None and row["size"] > int(limit):
            return [FieldError(pointer, "file_too_large", {"name": row["name"], "limit": limit})]
        accept = field.opt("accept")
        if accept and not any(_accepts(a, row["content_type"], row["name"]) for a in accept):
            params = {
                "name": row["name"],
                "content_type": row["content_type"],
                "accept": ", ".join(accept),
            }
            return [FieldError(pointer, "file_type", params)]
        return []


def _accepts(pattern: str, content_type: str, filename: str) -> bool:
    if pattern.startswith("."):
        return filename.lower().endswith(pattern.lower())
    if pattern.endswith("/*"):
        return content_type.startswith(pattern[:-1])
    return content_type == pattern


class ComputedType(FieldType):
    """A value computed by an expression from the record's other fields, stored for SQL."""

    name = "computed"
    system_written = True

    def result(self, field: FieldDef) -> FieldType:
        """Return the field type of the computed value (decimal unless `result` says)."""
        from formwork.runtime.fields import get_field_type

        return get_field_type(field.opt("result", "decimal"))

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return the result type's column type."""
        return self.result(field).sql_type(field)

    def ops(self, field: FieldDef) -> frozenset[str]:
        """Return the result type's filter operators."""
        return self.result(field).ops(field)

    def can_aggregate(self, field: FieldDef) -> bool:
        """Return True when the result type can be summed."""
        return self.result(field).can_aggregate(field)

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the result type's fragment (input is ignored: the value is computed)."""
        return self.result(field).json_schema(field)

    def output_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the result type's output fragment, read-only."""
        return {**self.result(field).output_schema(field), "readOnly": True}

    def marshmallow_field(self, field: FieldDef) -> ma.fields.Field:
        """Return the result type's marshmallow field."""
        return self.result(field).marshmallow_field(field)

    def compute(
        self, field: FieldDef, record: dict[str, Any], ctx: ComputeContext, inserting: bool
    ) -> Any:
        """Return the expression's value for the record, converted to the result type."""
        from formwork.runtime.expressions import evaluate

        lookups = getattr(ctx, "lookups", None)  # a save offers sum_of/count_of
        names = {"id": getattr(ctx, "record_id", None), **record}
        value = evaluate(
            field.opt("expression"),
            names,
            now=ctx.local_now,
            lookups=lookups() if lookups else None,
        )
        return self.coerce(field, value)

    def coerce(self, field: FieldDef, value: Any) -> Any:
        """Return `value` converted by the result type's marshmallow field."""
        if value is None:
            return None
        if isinstance(value, dt.date | dt.datetime):
            value = value.isoformat()
        return (
            self.result(field)
            .marshmallow_field(field)
            .deserialize(value if isinstance(value, str | bool | int) else str(value))
        )

    def to_db(self, field: FieldDef, value: Any) -> Any:
        """Return the result type's stored form."""
        return self.result(field).to_db(field, value)

    def from_db(self, field: FieldDef, value: Any) -> Any:
        """Return the result type's Python value."""
        return self.result(field).from_db(field, value)

    def dump(self, field: FieldDef, value: Any) -> Any:
        """Return the result type's JSON form."""
        return self.result(field).dump(field, value)

    def parse_filter(self, field: FieldDef, text: str) -> Any:
        """Return the filter value parsed by the result type."""
        return self.result(field).parse_filter(field, text)

    def compare_storage(self, old: FieldDef, new: FieldDef) -> str:
        """Return 'same' while the stored column type is unchanged, else 'narrow'."""
        if type(new.kind) is not type(self):
            return "narrow"
        same = repr(self.sql_type(old)) == repr(new.kind.sql_type(new))
        return "same" if same else "narrow"

    def check(self, field: FieldDef, entity: EntityDef) -> list[FieldError]:
        """Return problems with the expression or the result type."""
        from formwork.runtime.expressions import ExpressionError, check
        from formwork.runtime.fields import FIELD_TYPES

        result = field.opt("result", "decimal")
        if result not in FIELD_TYPES or result in COMPUTED_RESULT_EXCLUDED:
            return [definition_error(field, "result", f"'{result}' cannot be computed")]
        try:
            check(field.opt("expression", ""))
        except ExpressionError as exc:
            return [definition_error(field, "expression", str(exc))]
        return []


COMPUTED_RESULT_EXCLUDED = frozenset(
    {"computed", "autonumber", "children", "attachment", "reference", "user", "multi_select"}
)


class AutoNumberType(FieldType):
    """A document number such as `CR-{YYYY}-{####}`, gap-free per rendered prefix."""

    name = "autonumber"
    system_written = True
    assigned_on_insert = True
    always_unique = True
    filter_ops = EQUALITY_OPS | {"contains", "startswith", "lt", "lte", "gt", "gte"}
    max_length: ClassVar[int] = 64

    def sql_type(self, field: FieldDef) -> sa.types.TypeEngine[Any]:
        """Return VARCHAR(64)."""
        return sa.String(self.max_length)

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """Return the fragment: text (input is ignored: the number is assigned)."""
        return {"type": ["string", "null"], "maxLength": self.max_length}

    def compute(
        self, field: FieldDef, record: dict[str, Any], ctx: ComputeContext, inserting: bool
    ) -> Any:
        """Return a new number on insert; keep the existing number on update."""
        if not inserting:
            return record.get(field.name)
        stamp = record.get(field.opt("date_field", "")) or ctx.local_now
        prefix = TOKEN_RE.sub(
            lambda m: self._render(field, m.group(1), record, stamp, ctx), field.opt("pattern")
        )
        width = prefix.count("#")
        counter_token = "#" * width
        number = ctx.next_in_sequence(f"{field.name}:{prefix}")
        return prefix.replace(counter_token, str(number).zfill(width), 1)

    def _render(
        self, field: FieldDef, token: str, record: dict[str, Any], stamp: Any, ctx: ComputeContext
    ) -> str:
        if set(token) == {"#"}:
            return token
        if token in DATE_TOKENS:
            return stamp.strftime(DATE_TOKENS[token])  # type: ignore[no-any-return]
        return ctx.field_text(token, record)

    def check(self, field: FieldDef, entity: EntityDef) -> list[FieldError]:
        """Return problems with the pattern: one counter, known tokens."""
        pattern = field.opt("pattern") or ""
        tokens = TOKEN_RE.findall(pattern)
        counters = [t for t in tokens if set(t) == {"#"}]
        problems = []
        if len(counters) != 1:
            problems.append(definition_error(field, "pattern", "needs exactly one {#…} counter"))
        for token in tokens:
            known = token.partition(".")[0] in entity.field_map  # `ref.field`: one hop
            if token not in DATE_TOKENS and set(token) != {"#"} and not known:
                problems.append(definition_error(field, "pattern", f"unknown token '{token}'"))
        return problems
