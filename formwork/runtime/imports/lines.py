"""Import records with line items from one flat sheet: one row per line item.

A crew's monthly day-work sheet comes as rows like (date, project, crew, worker, work-days,
hours, rate). Columns mapped to the record's own fields say which record a row belongs to:
consecutive or not, rows with the same values there become one record, and the columns mapped
to `lines.<field>` become its line items, in sheet order. Problems of a line point at its row.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import FieldError
from formwork.runtime.imports.cells import importable
from formwork.runtime.registry import EntityMeta

SEPARATOR = " · "
LOCALES = ("zh-CN", "en")


def line_fields(meta: EntityMeta, locked: frozenset[str] = frozenset()) -> list[FieldDef]:
    """Return the importable fields of the entity's first line-item table as `name.field`.

    Fields copied from the parent (`from_parent`) and computed ones are left out: the save
    fills them in.
    """
    for name, child in meta.children:
        if name in locked:
            return []
        parent = meta.entity.field_map[name]
        out = []
        for fd in child.entity.fields:
            if fd.read_only or fd.opt("from_parent") or not importable(fd):
                continue
            label = {loc: f"{parent.label(loc)}{SEPARATOR}{fd.label(loc)}" for loc in LOCALES}
            schema = {**fd.schema, "x-formwork": {**fd.options, "label": label}}
            out.append(dataclasses.replace(fd, name=f"{name}.{fd.name}", schema=schema))
        return out
    return []


def names_of(fd: FieldDef) -> list[str]:
    """Return the column titles that match a field: its name and labels (a line field also
    by its own name and label, when no field of the record takes them first)."""
    names = [fd.name, fd.label("zh-CN"), fd.label("en")]
    if "." in fd.name:
        names += [fd.name.split(".", 1)[1]] + [
            fd.label(loc).split(SEPARATOR)[-1] for loc in LOCALES
        ]
    return names


@dataclass
class Group:
    """One record to save: its own values, and its lines with the sheet rows they came from."""

    first_row: int
    values: dict[str, Any]
    lines: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    problems: list[tuple[int, FieldError]] = field(default_factory=list)

    def payload(self, children: str) -> dict[str, Any]:
        """Return the record with its line items, as the records service takes it."""
        return {**self.values, children: [line for _row, line in self.lines]}

    def row_of(self, error: FieldError, children: str) -> int:
        """Return the sheet row a save problem belongs to (a line's row, else the first)."""
        parts = error.pointer.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == children and parts[1].isdigit():
            index = int(parts[1])
            if index < len(self.lines):
                return self.lines[index][0]
        return self.first_row


def group_rows(
    rows: list[tuple[int, dict[str, Any], list[FieldError]]], children: str
) -> list[Group]:
    """Group converted rows into records by the values of the record's own fields."""
    groups: dict[str, Group] = {}
    for number, payload, problems in rows:
        own = {k: v for k, v in payload.items() if "." not in k}
        line = {k.split(".", 1)[1]: v for k, v in payload.items() if "." in k}
        key = json.dumps(own, sort_keys=True, default=str)
        group = groups.setdefault(key, Group(number, own))
        index = len(group.lines)
        group.lines.append((number, line))
        for problem in problems:
            pointer = problem.pointer
            if pointer.startswith(f"/{children}."):
                pointer = f"/{children}/{index}/{pointer.split('.', 1)[1]}"
            group.problems.append((number, FieldError(pointer, problem.code, problem.params)))
    return list(groups.values())


def line_label(meta: EntityMeta, pointer: str, locale: str) -> str | None:
    """Return the label of the line field a problem's pointer names (None: not a line's)."""
    parts = pointer.strip("/").split("/")
    for name, child in meta.children:
        if len(parts) >= 3 and parts[0] == name:
            fd = child.entity.get_field(parts[2])
            if fd is not None:
                return fd.label(locale)
    return None


def mapped_children(meta: EntityMeta, mapping: Mapping[int, str]) -> str | None:
    """Return the line-item field whose columns are mapped, if any."""
    for name in mapping.values():
        if name and "." in name:
            head = name.split(".", 1)[0]
            if head in {n for n, _c in meta.children}:
                return head
    return None
