"""Turn raw JSON input into Python values, collecting every problem with its pointer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import marshmallow as ma

from formwork.runtime.errors import FieldError
from formwork.runtime.registry import EntityMeta

ROW_KEYS = frozenset(
    {
        "id",
        "version",
        "row_order",
        "parent_id",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
    }
)
_LIMIT_CODES = {
    "maxLength": "max_length",
    "minLength": "min_length",
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "maxItems": "too_many_items",
}
_TYPE_NAMES = {
    "integer": "整数/integer",
    "string": "文本/text",
    "number": "数字/number",
    "boolean": "布尔/boolean",
    "array": "数组/array",
    "object": "对象/object",
}


@dataclass
class Converted:
    """The Python values of one record's input, its child rows, and the problems found."""

    values: dict[str, Any] = field(default_factory=dict)
    children: dict[str, list[Converted]] = field(default_factory=dict)
    row_id: int | None = None
    errors: list[FieldError] = field(default_factory=list)

    def all_errors(self) -> list[FieldError]:
        """Return the problems of the record and of all its child rows."""
        return self.errors + [
            e for rows in self.children.values() for r in rows for e in r.all_errors()
        ]


def convert(
    meta: EntityMeta,
    payload: Any,
    *,
    creating: bool,
    pointer: str = "",
    current: Mapping[str, Any] | None = None,
) -> Converted:
    """Validate raw input against the entity's JSON Schema and convert it with marshmallow."""
    out = Converted()
    if not isinstance(payload, Mapping):
        out.errors.append(FieldError(pointer or "/", "not_object"))
        return out
    data = dict(payload)
    out.row_id = data.get("id") if isinstance(data.get("id"), int) else None
    for key in ROW_KEYS & data.keys():
        del data[key]
    out.errors += _read_only_errors(meta, data, pointer, current)
    validator = meta.create_validator if creating else meta.update_validator
    bad = set()
    for error in validator.iter_errors(data):
        out.errors.append(_field_error(error, pointer))
        bad.add(error.absolute_path[0] if error.absolute_path else None)
    for name, value in data.items():
        if name not in bad and name in meta.entity.field_map:
            _convert_value(meta, name, value, pointer, out)
    return out


def _read_only_errors(
    meta: EntityMeta, data: dict[str, Any], pointer: str, current: Mapping[str, Any] | None
) -> list[FieldError]:
    # Clients often send back what they read: an unchanged read-only value is dropped,
    # a changed one is refused.
    errors = []
    for name in list(data):
        field_def = meta.entity.get_field(name)
        if field_def is None or not field_def.read_only:
            continue
        value = data.pop(name)
        old = field_def.kind.dump(field_def, current.get(name)) if current else None
        if value is not None and value != old:
            errors.append(FieldError(f"{pointer}/{name}", "read_only"))
    return errors


def _convert_value(meta: EntityMeta, name: str, value: Any, pointer: str, out: Converted) -> None:
    field_def = meta.entity.field_map[name]
    path = f"{pointer}/{name}"
    if value is None:
        if field_def.required:
            out.errors.append(FieldError(path, "required"))
        else:
            out.values[name] = None
        return
    try:
        python = meta.converter.fields[name].deserialize(value)
    except ma.ValidationError as exc:
        out.errors.append(FieldError(path, "invalid", {"detail": _first(exc.messages)}))
        return
    except (ArithmeticError, ValueError, TypeError) as exc:
        out.errors.append(FieldError(path, "invalid", {"detail": str(exc)}))
        return
    children = dict(meta.children)
    if name in children:
        out.children[name] = [
            convert(children[name], row, creating=True, pointer=f"{path}/{i}")
            for i, row in enumerate(python)
        ]
        return
    out.errors += field_def.kind.validate(field_def, python, path)
    out.values[name] = python


def _first(messages: Any) -> str:
    while not isinstance(messages, str):
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return messages


def _field_error(error: jsonschema.ValidationError, pointer: str) -> FieldError:
    path = pointer + "".join(f"/{p}" for p in error.absolute_path)
    kind = str(error.validator)
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return FieldError(f"{path}/{missing}", "required")
    if kind == "additionalProperties":
        schema = error.schema if isinstance(error.schema, dict) else {}
        instance = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        return FieldError(
            f"{path}/{extra[0] if extra else ''}", "unknown_field", {"name": ", ".join(extra)}
        )
    if kind in _LIMIT_CODES:
        return FieldError(path, _LIMIT_CODES[kind], {"limit": error.validator_value})
    if kind == "type":
        expected = [t for t in _as_list(error.validator_value) if t != "null"]
        return FieldError(
            path, "type", {"expected": ", ".join(_TYPE_NAMES.get(t, t) for t in expected)}
        )
    if kind == "pattern":
        return FieldError(
            path,
            "decimal" if "[0-9]{1,40}" in str(error.validator_value) else "pattern",
            {"pattern": error.validator_value},
        )
    if kind == "enum":
        options = ", ".join(str(v) for v in _as_list(error.validator_value) if v is not None)
        return FieldError(path, "choice", {"value": error.instance, "options": options})
    if kind == "format":
        return FieldError(path, "date" if error.validator_value == "date" else "datetime")
    return FieldError(path, "invalid", {"detail": error.message})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
