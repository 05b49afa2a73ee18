"""Entity definitions: JSON Schema 2020-12 documents with `x-formwork` extensions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from formwork.runtime.errors import DefinitionInvalid, FieldError
from formwork.runtime.messages import pick_label

if TYPE_CHECKING:
    from formwork.runtime.fields.base import FieldType

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
SYSTEM_COLUMNS = ("id", "created_at", "created_by", "updated_at", "updated_by", "version")
CHILD_COLUMNS = ("parent_id", "row_order")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


@dataclass(frozen=True)
class FieldDef:
    """One property of an entity, with its field type resolved."""

    name: str
    kind: FieldType
    schema: Mapping[str, Any]
    required: bool = False

    @property
    def options(self) -> Mapping[str, Any]:
        """Return the field's `x-formwork` block."""
        return self.schema.get("x-formwork", {})  # type: ignore[no-any-return]

    def opt(self, key: str, default: Any = None) -> Any:
        """Return one `x-formwork` option of the field."""
        return self.options.get(key, default)

    def label(self, locale: str = "zh-CN") -> str:
        """Return the field's label in `locale`."""
        return pick_label(self.opt("label") or self.schema.get("title") or self.name, locale)

    @property
    def read_only(self) -> bool:
        """Return True when users may not write the field."""
        return bool(self.schema.get("readOnly")) or self.kind.system_written

    @property
    def hidden(self) -> bool:
        """Return True when forms and lists should not show the field."""
        return bool(self.opt("hidden", False))

    @property
    def unique(self) -> bool:
        """Return True when values must be unique across the table."""
        return bool(self.opt("unique", False)) or self.kind.always_unique

    @property
    def indexed(self) -> bool:
        """Return True when the column gets an index."""
        return bool(self.opt("indexed", False)) or self.kind.always_indexed

    @property
    def default(self) -> Any:
        """Return the JSON default value, or None."""
        return self.schema.get("default")


@dataclass(frozen=True)
class IndexDef:
    """A composite index declared in `x-formwork.indexes`: fields in order, maybe unique."""

    fields: tuple[str, ...]
    unique: bool = False
    name: str | None = None

    @property
    def suffix(self) -> str:
        """Return what follows `ix_<table>_` in the index's name: its `name` or its fields."""
        return self.name or "_".join(self.fields)


@dataclass(frozen=True)
class EntityDef:
    """An entity definition with its fields resolved against the field-type registry."""

    pack: str
    name: str
    document: Mapping[str, Any]
    fields: tuple[FieldDef, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        """Return the entity's global key, `pack.name`."""
        return f"{self.pack}.{self.name}"

    @property
    def table_name(self) -> str:
        """Return the name of the entity's SQL table."""
        return f"{self.pack}__{self.name}"

    @property
    def options(self) -> Mapping[str, Any]:
        """Return the entity's `x-formwork` block."""
        return self.document.get("x-formwork", {})  # type: ignore[no-any-return]

    def label(self, locale: str = "zh-CN") -> str:
        """Return the entity's label in `locale`."""
        return pick_label(self.options.get("label") or self.document.get("title"), locale)

    @cached_property
    def field_map(self) -> dict[str, FieldDef]:
        """Return the fields keyed by name."""
        return {f.name: f for f in self.fields}

    def get_field(self, name: str) -> FieldDef | None:
        """Return the named field or None."""
        return self.field_map.get(name)

    @property
    def child_of(self) -> str | None:
        """Return the parent entity name when this entity holds line items."""
        return self.options.get("child_of")  # type: ignore[no-any-return]

    @property
    def search_fields(self) -> tuple[str, ...]:
        """Return the fields a quick search looks in."""
        return tuple(self.options.get("search", ()))

    @property
    def title_field(self) -> str | None:
        """Return the field that names a record in references and lists."""
        return self.options.get("title_field")  # type: ignore[no-any-return]

    @property
    def rules(self) -> tuple[Mapping[str, Any], ...]:
        """Return the record-level validation rules."""
        return tuple(self.options.get("rules", ()))

    @property
    def indexes(self) -> tuple[IndexDef, ...]:
        """Return the composite indexes declared in `x-formwork.indexes`."""
        return tuple(
            IndexDef(tuple(i["fields"]), bool(i.get("unique", False)), i.get("name"))
            for i in self.options.get("indexes", ())
        )

    def stored_fields(self) -> tuple[FieldDef, ...]:
        """Return the fields that own a column."""
        return self._stored

    @cached_property
    def _stored(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields if f.kind.stored)


def qualify(pack: str, ref: str) -> str:
    """Return `pack.entity` for a reference written as `entity` or `pack.entity`."""
    return ref if "." in ref else f"{pack}.{ref}"


def meta_schema_errors(document: Any) -> list[FieldError]:
    """Return every meta-schema error of an entity document, each with its JSON pointer."""
    try:
        text = json.dumps(document, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return _meta_schema_errors(document)
    # A registry is built from the same documents again and again (every definitions
    # version, every pack check); a document is checked against the meta-schema once.
    return list(_checked_text(text))


@lru_cache(maxsize=1024)
def _checked_text(text: str) -> tuple[FieldError, ...]:
    return tuple(_meta_schema_errors(json.loads(text)))


def _meta_schema_errors(document: Any) -> list[FieldError]:
    from formwork.runtime import metaschemas

    validator = metaschemas.validator("entity.schema.json")  # built once, then cached
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [
        FieldError(_pointer(e.absolute_path), "schema", {"detail": _describe(e)}) for e in errors
    ]


def parse_entity(pack: str, document: Mapping[str, Any]) -> EntityDef:
    """Check an entity document and return its EntityDef, or raise DefinitionInvalid."""
    from formwork.runtime.fields import get_field_type

    errors = meta_schema_errors(document)
    if errors:
        raise DefinitionInvalid(errors)
    required = set(document.get("required", ()))
    fields = tuple(
        FieldDef(name, get_field_type(prop["x-formwork"]["type"]), prop, name in required)
        for name, prop in document["properties"].items()
    )
    entity = EntityDef(pack, document["x-formwork"]["name"], document, fields)
    problems = [p for f in fields for p in f.kind.check(f, entity)]
    problems += _check_entity_options(entity)
    problems += _check_indexes(entity)
    if problems:
        raise DefinitionInvalid(problems)
    return entity


def _check_entity_options(entity: EntityDef) -> list[FieldError]:
    from formwork.runtime.expressions import ExpressionError, check

    problems = []
    for key in ("search",):
        for i, name in enumerate(entity.options.get(key, ())):
            if name not in entity.field_map:
                problems.append(_unknown(f"/x-formwork/{key}/{i}", name))
    title = entity.title_field
    if title and title not in entity.field_map:
        problems.append(_unknown("/x-formwork/title_field", title))
    problems += _check_reversal(entity)
    for i, rule in enumerate(entity.rules):
        try:
            check(rule["expression"])
        except ExpressionError as exc:
            problems.append(
                FieldError(f"/x-formwork/rules/{i}/expression", "expression", {"detail": str(exc)})
            )
    if len(entity.table_name) > 60:
        problems.append(
            FieldError(
                "/x-formwork/name",
                "schema",
                {"detail": f"table name '{entity.table_name}' is too long"},
            )
        )
    return problems


def _check_reversal(entity: EntityDef) -> list[FieldError]:
    """Return the problems of `x-formwork.reversal`: it negates numeric fields and sets
    stored ones (what cancelling an approval makes of a record the approval posted)."""
    reversal = entity.options.get("reversal") or {}
    problems = []
    for i, name in enumerate(reversal.get("negate", ())):
        fd = entity.field_map.get(name)
        if fd is None:
            problems.append(_unknown(f"/x-formwork/reversal/negate/{i}", name))
        elif not fd.kind.can_aggregate(fd):
            detail = f"'{name}' is not a number field; only numbers are negated"
            problems.append(_schema_error(f"/x-formwork/reversal/negate/{i}", detail))
    for name in reversal.get("set", {}):
        if name not in entity.field_map:
            problems.append(_unknown(f"/x-formwork/reversal/set/{name}", name))
    return problems


def _check_indexes(entity: EntityDef) -> list[FieldError]:
    """Return the problems of the composite indexes: unknown, unstored or repeated fields, clashes.

    Index names are `ix_<table>_<suffix>` (`uq_` when unique) and single-field indexes are
    `ix_<table>_<column>`, so a suffix equal to a column name, or to another index's suffix,
    would give two indexes one name.
    """
    columns = {*SYSTEM_COLUMNS, *(CHILD_COLUMNS if entity.child_of else ())}
    columns |= {f.name for f in entity.stored_fields()}
    problems: list[FieldError] = []
    seen: dict[tuple[str, ...], int] = {}
    suffixes: dict[str, int] = {}
    for i, index in enumerate(entity.indexes):
        at = f"/x-formwork/indexes/{i}"
        for j, name in enumerate(index.fields):
            problems += _index_field_problems(entity, f"{at}/fields/{j}", name, index.fields[:j])
        if index.suffix in columns:
            hint = "give the index another `name`" if index.name else "give the index a `name`"
            detail = f"index name '{index.suffix}' is the name of column '{index.suffix}''s index"
            problems.append(
                _schema_error(at + ("/name" if index.name else ""), f"{detail}; {hint}")
            )
        earlier = seen.setdefault(index.fields, i)
        clash = suffixes.setdefault(index.suffix, i)
        if earlier != i:
            problems.append(_schema_error(at, f"same fields as /x-formwork/indexes/{earlier}"))
        elif clash != i:
            problems.append(_schema_error(at, f"same name as /x-formwork/indexes/{clash}"))
    return problems


def _index_field_problems(
    entity: EntityDef, pointer: str, name: str, before: tuple[str, ...]
) -> list[FieldError]:
    """Return the problem of one field of a composite index ([] when it is fine)."""
    field = entity.get_field(name)
    system = SYSTEM_COLUMNS + (CHILD_COLUMNS if entity.child_of else ())
    if name in before:
        detail = f"field '{name}' appears twice in the index"
    elif field is None and name not in system:
        detail = f"unknown field '{name}'"
    elif field is not None and not field.kind.stored:
        detail = f"field '{name}' ({field.kind.name}) has no column to index"
    else:
        return []
    return [_schema_error(pointer, detail)]


def _schema_error(pointer: str, detail: str) -> FieldError:
    return FieldError(pointer, "schema", {"detail": detail})


def _unknown(pointer: str, name: str) -> FieldError:
    return FieldError(pointer, "schema", {"detail": f"unknown field '{name}'"})


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties", "unknown keys")
    return error.message
