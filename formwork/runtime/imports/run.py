"""Run an import: sheet rows to payloads, payloads through the records service, all rows or
none (no Flask; a request runs a small file, `formwork worker` a large one).

Every row is saved in its own savepoint inside one savepoint for the whole file, so one bad
row does not hide the others' problems; the whole is kept only when asked to commit and no
row failed. The caller commits its transaction either way (a dry run keeps nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import FieldError, ValidationFailed
from formwork.runtime.fields.relation import ReferenceType, UserType
from formwork.runtime.imports.cells import CellContext, from_cell, importable
from formwork.runtime.imports.lines import group_rows, line_fields, line_label, mapped_children
from formwork.runtime.imports.sheets import Sheet
from formwork.runtime.models import User
from formwork.runtime.records import RecordService
from formwork.runtime.registry import EntityMeta, Registry
from formwork.runtime.security import Principal
from formwork.runtime.titles import find_by_title

SHOWN_PROBLEMS = 500  # rows with problems kept for the result page (all are counted)
PROGRESS_EVERY = 200  # rows between two progress notes

Progress = Callable[[int, int], None]


@dataclass
class ImportResult:
    """What a run found: rows that were (or would be) saved and every bad row's reasons."""

    total: int = 0
    saved: int = 0
    bad: int = 0
    problems: list[tuple[int, list[str]]] = field(default_factory=list)

    def add(self, row: int, messages: list[str]) -> None:
        """Note a bad row (its messages kept for the first SHOWN_PROBLEMS rows)."""
        self.bad += 1
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append((row, messages))


@dataclass(frozen=True)
class ImportPlan:
    """What to do with a sheet: which column goes to which field, and whether to keep it."""

    mapping: Mapping[int, str]
    commit: bool
    locale: str = "zh-CN"
    zone: dt.tzinfo = dt.UTC


def importable_fields(meta: EntityMeta, principal: Principal) -> list[FieldDef]:
    """Return the fields a column can be mapped to (writable by the principal); the fields
    of line items come as `lines.field` (one sheet row per line item)."""
    locked = principal.read_only_fields(meta.entity.key, "create")
    own = [
        f for f in meta.entity.fields if not f.read_only and importable(f) and f.name not in locked
    ]
    return own + line_fields(meta, locked)


def run_import(
    records: RecordService,
    meta: EntityMeta,
    sheet: Sheet,
    plan: ImportPlan,
    progress: Progress | None = None,
) -> ImportResult:
    """Save every row (or group of rows with line items) in one savepoint; keep it only
    when the plan commits and no row failed."""
    fields = {f.name: f for f in importable_fields(meta, records.principal)}
    ctx = cell_context(
        records.session, records.registry, meta, fields, sheet, plan, records.principal
    )
    converted = [
        (n, *_payload(fields, plan.mapping, cells, ctx, plan.locale)) for n, cells in sheet.data
    ]
    result = ImportResult(total=len(converted))
    note = progress or (lambda _done, _total: None)
    whole = records.session.begin_nested()
    children = mapped_children(meta, plan.mapping)
    if children is None:
        _save_rows(records, meta, converted, result, plan.locale, note)
    else:
        groups = group_rows(converted, children)
        _save_groups(records, meta, groups, children, result, plan.locale, note)
    if plan.commit and not result.bad:
        whole.commit()
    else:
        whole.rollback()
        result.saved = result.saved if not plan.commit else 0
    note(result.total, result.total)
    return result


def _save_rows(
    records: RecordService,
    meta: EntityMeta,
    converted: list[tuple[int, dict[str, Any], list[FieldError]]],
    result: ImportResult,
    locale: str,
    note: Progress,
) -> None:
    for done, (number, payload, problems) in enumerate(converted, start=1):
        try:
            with records.session.begin_nested():
                if problems:
                    raise ValidationFailed(problems)
                records.create(meta.entity.key, payload)
            result.saved += 1
        except ValidationFailed as exc:
            result.add(number, [describe(meta, e, locale) for e in exc.errors])
        if done % PROGRESS_EVERY == 0:
            note(done, result.total)


def _save_groups(
    records: RecordService,
    meta: EntityMeta,
    groups: list[Any],
    children: str,
    result: ImportResult,
    locale: str,
    note: Progress,
) -> None:
    """Save one record per group with its line items; report problems at their rows."""
    done = 0
    for group in groups:
        found: list[tuple[int, FieldError]] = list(group.problems)
        if not found:
            try:
                with records.session.begin_nested():
                    records.create(meta.entity.key, group.payload(children))
                result.saved += 1
            except ValidationFailed as exc:
                found = [(group.row_of(e, children), e) for e in exc.errors]
        by_row: dict[int, list[str]] = {}
        for row, error in found:
            by_row.setdefault(row, []).append(describe(meta, error, locale))
        for row, messages in sorted(by_row.items()):
            result.add(row, messages)
        done += len(group.lines)
        note(done, result.total)


def _payload(
    fields: Mapping[str, FieldDef],
    mapping: Mapping[int, str],
    cells: list[Any],
    ctx: CellContext,
    locale: str,
) -> tuple[dict[str, Any], list[FieldError]]:
    payload: dict[str, Any] = {}
    problems: list[FieldError] = []
    for index, name in mapping.items():
        fd = fields.get(name) if name else None
        if fd is None:
            continue
        value = from_cell(fd, cells[index] if index < len(cells) else None, ctx)
        if isinstance(fd.kind, ReferenceType) and isinstance(value, str):
            entity = fd.opt("entity") or ("user" if locale == "en" else "用户")
            problems.append(
                FieldError(f"/{name}", "reference_missing", {"entity": entity, "value": value})
            )
            continue
        if value is not None or fd.required:
            payload[name] = value
    return payload, problems


def cell_context(
    session: Session,
    registry: Registry,
    meta: EntityMeta,
    fields: Mapping[str, FieldDef],
    sheet: Sheet,
    plan: ImportPlan,
    principal: Principal | None = None,
) -> CellContext:
    """Return the ids of the records (and users) the sheet names by title, per column; with a
    principal, only records they may read (a title never names what the author cannot see)."""
    ctx = CellContext(zone=plan.zone)
    for index, name in plan.mapping.items():
        fd = fields.get(name) if name else None
        if fd is None or not isinstance(fd.kind, ReferenceType):
            continue
        texts = {
            str(c[index]).strip() for _n, c in sheet.data if index < len(c) and c[index] is not None
        }
        if isinstance(fd.kind, UserType):
            rows = session.execute(
                sa.select(User.username, User.id).where(User.username.in_(texts))
            )
            ctx.by_title[name] = {str(r[0]): int(r[1]) for r in rows}
        else:
            target = fd.kind.target(fd, meta.entity)
            ctx.by_title[name] = find_by_title(session, registry, target, texts, principal)
    return ctx


def describe(meta: EntityMeta, error: FieldError, locale: str) -> str:
    """Return a problem as people read it: the field's label, then the message."""
    name = error.pointer.strip("/").split("/")[0]
    fd = meta.entity.get_field(name)
    label = line_label(meta, error.pointer, locale) or (fd.label(locale) if fd else None)
    prefix = f"{label}: " if label else ""
    return prefix + error.message(locale)
