"""The API holds callers to its own OpenAPI document: a documented query parameter with a
type (integer, number, boolean) or a list of allowed values is checked against it before
the view runs, so `?limit=null` or `?overdue=maybe` is a 400 naming the parameter instead of
being read as a default or ignored. Filters (`field__op`) are left to the field types, which
parse them with their own rules.

The operations are read from the document once per definitions version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app

from formwork.runtime.errors import BadQuery, FieldError
from formwork.runtime.params import whole_number

CACHE = "formwork.api_operations"
BOOLEAN_WORDS = frozenset({"true", "false", "1", "0"})


@dataclass(frozen=True)
class Operation:
    """One documented operation: its path as a pattern, and its typed query parameters."""

    pattern: re.Pattern[str]
    method: str
    query: Mapping[str, Mapping[str, Any]]


def operations_of(document: Mapping[str, Any]) -> list[Operation]:
    """Return every operation of an OpenAPI document with its checked query parameters."""
    found = []
    for path, item in document.get("paths", {}).items():
        pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, Mapping):
                continue
            query = {
                p["name"]: p.get("schema", {})
                for p in operation.get("parameters", ())
                if p.get("in") == "query" and "__" not in p["name"] and _checked(p)
            }
            found.append(Operation(pattern, method.upper(), query))
    # Literal paths first: /{pack}/{entity}/aggregate before /{pack}/{entity}/{id}.
    return sorted(found, key=lambda op: op.pattern.pattern.count("[^/]+"))


def _checked(parameter: Mapping[str, Any]) -> bool:
    schema = parameter.get("schema", {})
    return "enum" in schema or schema.get("type") in ("integer", "number", "boolean")


def check_query(
    operations: list[Operation], method: str, path: str, args: Mapping[str, list[str]]
) -> None:
    """Raise BadQuery naming every documented query parameter whose value breaks its schema."""
    for operation in operations:
        if operation.method == method and operation.pattern.match(path):
            errors = [
                problem
                for name, schema in operation.query.items()
                for value in args.get(name, ())
                if (problem := _problem(name, schema, value)) is not None
            ]
            if errors:
                raise BadQuery(errors)
            return


def _problem(name: str, schema: Mapping[str, Any], value: str) -> FieldError | None:
    kind = schema.get("type")
    if "enum" in schema and value not in [str(v) for v in schema["enum"]]:
        return _invalid(name, "one of " + ", ".join(str(v) for v in schema["enum"]))
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        number = whole_number(value)
        if number is None or (low is not None and number < low):
            return _invalid(name, "an integer" + (f" from {low}" if low is not None else ""))
        if high is not None and number > high:
            return _invalid(name, f"an integer of at most {high}")
    if kind == "number" and not _is_number(value):
        return _invalid(name, "a number")
    if kind == "boolean" and value.lower() not in BOOLEAN_WORDS:
        return _invalid(name, "true or false")
    return None


def _is_number(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _invalid(name: str, expected: str) -> FieldError:
    return FieldError(name, "invalid", {"detail": f"{name}: expected {expected}"})


def documented_operations(version: int, build: Any) -> list[Operation]:
    """Return the app's operations for a definitions version, building them once."""
    cached = current_app.extensions.get(CACHE)
    if cached is None or cached[0] != version:
        cached = (version, operations_of(build()))
        current_app.extensions[CACHE] = cached
    return cached[1]  # type: ignore[no-any-return]
