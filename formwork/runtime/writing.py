"""The steps of a save: compute derived values, check against the database, read and
write rows and line items, and turn Python values into JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime import reference_filters
from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.expressions import ExpressionError, evaluate
from formwork.runtime.registry import EntityMeta
from formwork.runtime.save_context import SaveContext
from formwork.runtime.validation import Converted

SYSTEM_OUT = ("created_at", "created_by", "updated_at", "updated_by")


def compute_fields(
    meta: EntityMeta,
    converted: Converted,
    ctx: SaveContext,
    inherited: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the record's values with computed fields (and line items) filled in.

    Line items are computed first so that a parent's expression can sum them; a line
    item's `from_parent` fields take the parent's value (so reports filter lines in SQL).
    """
    record: dict[str, Any] = {f.name: None for f in meta.entity.stored_fields()}
    record.update(converted.values)
    record.update(inherited or {})
    for name, child in meta.children:
        rows = converted.children.get(name, [])
        copied = {
            f.name: record.get(f.opt("from_parent"))
            for f in child.entity.fields
            if f.opt("from_parent")
        }
        record[name] = [
            {**compute_fields(child, row, ctx, copied), "id": row.row_id} for row in rows
        ]
    ctx.record_id = converted.row_id  # computed fields may leave their own record out of sum_of
    for field_def in meta.entity.fields:
        kind = field_def.kind
        if kind.system_written and not kind.assigned_on_insert:
            record[field_def.name] = _normal(field_def, kind.compute(field_def, record, ctx, False))
    for field_def in meta.entity.stored_fields():
        record[field_def.name] = _normal(field_def, record[field_def.name])
    return record


def _normal(field_def: FieldDef, value: Any) -> Any:
    # The value as it will read back from the database (quantized, sorted, in UTC), so
    # sums see what users see and a save's response equals the next read.
    return field_def.kind.from_db(field_def, field_def.kind.to_db(field_def, value))


def assign_numbers(meta: EntityMeta, record: dict[str, Any], ctx: SaveContext) -> None:
    """Fill in the values assigned once on insert (document numbers), after validation."""
    for field_def in meta.entity.fields:
        if field_def.kind.assigned_on_insert:
            record[field_def.name] = field_def.kind.compute(field_def, record, ctx, True)


def check_record(
    session: Session,
    meta: EntityMeta,
    record: Mapping[str, Any],
    ctx: SaveContext,
    record_id: int | None,
    pointer: str = "",
    *,
    parent: Mapping[str, Any] | None = None,
    old: Mapping[str, Any] | None = None,
    old_parent: Mapping[str, Any] | None = None,
) -> list[FieldError]:
    """Return problems that need the database or the whole record: references (they must
    exist, be readable by the author and meet their filters), files, uniqueness and the
    entity's rules. `old` is the stored record (or line) when updating."""
    errors: list[FieldError] = []
    for field_def in meta.entity.stored_fields():
        value = record.get(field_def.name)
        if value is None:
            continue
        path = f"{pointer}/{field_def.name}"
        errors += field_def.kind.check_stored(field_def, [(path, value)], ctx)
        if field_def.unique and not field_def.kind.system_written:
            errors += _unique_problem(session, meta, field_def.name, value, record_id, path, ctx)
    failed = frozenset(e.pointer for e in errors)
    errors += reference_filters.problems(
        ctx, meta, record, pointer, parent=parent, old=old, old_parent=old_parent, skip=failed
    )
    errors += _unique_together_problems(session, meta, record, record_id, pointer, ctx)
    errors += _rule_problems(meta, record, ctx, pointer, record_id)
    for name, child in meta.children:
        old_rows = {r["id"]: r for r in (old or {}).get(name) or [] if r.get("id")}
        for i, row in enumerate(record.get(name, [])):
            errors += check_record(
                session,
                child,
                row,
                ctx,
                row.get("id"),
                f"{pointer}/{name}/{i}",
                parent=record,
                old=old_rows.get(row.get("id")),
                old_parent=old,
            )
    return errors


def _unique_problem(
    session: Session,
    meta: EntityMeta,
    name: str,
    value: Any,
    record_id: int | None,
    path: str,
    ctx: SaveContext,
) -> list[FieldError]:
    params = {"value": value, "record_id": record_id or 0}
    if session.connection().execute(meta.unique_query(name), params).first() is None:
        return []
    if not _sees_every_row(ctx, meta, (name,)):
        return [FieldError(path, "unique_unavailable")]
    field_def = meta.entity.field_map[name]
    return [FieldError(path, "unique", {"value": field_def.kind.dump(field_def, value)})]


def _sees_every_row(ctx: SaveContext, meta: EntityMeta, fields: Sequence[str]) -> bool:
    """Return True when the author reads every row of the entity and these fields, so that
    "already exists" tells them nothing they could not look up. Anyone else gets one
    neutral "cannot be used" whether the clash is in rows they see or not: the answer then
    depends on who asks, never on where the value is, and no record is named."""
    author = ctx.author
    if author is None:
        return True
    key = meta.entity.key
    return author.rows_for(key, "read") is None and all(
        author.may_read_field(key, name) for name in fields
    )


def _unique_together_problems(
    session: Session,
    meta: EntityMeta,
    record: Mapping[str, Any],
    record_id: int | None,
    pointer: str,
    ctx: SaveContext,
) -> list[FieldError]:
    """Return a problem per unique composite index another record already fills with the
    same values (checked here so the answer names the fields, not a database error)."""
    problems = []
    table = meta.table
    for index in meta.entity.indexes:
        if not index.unique:
            continue
        values = {name: record.get(name) for name in index.fields if name in table.c}
        if len(values) < len(index.fields) or any(v is None for v in values.values()):
            continue  # an empty value never clashes (as on both databases)
        stored = {n: _stored_value(meta, n, v) for n, v in values.items()}
        query = sa.select(table.c.id).where(
            *(table.c[n] == v for n, v in stored.items()), table.c.id != (record_id or 0)
        )
        if session.connection().execute(query.limit(1)).first() is not None:
            shown = ", ".join(index.fields)
            code = "unique_together"
            if not _sees_every_row(ctx, meta, index.fields):
                code = "unique_together_unavailable"
            problems.append(FieldError(f"{pointer}/{index.fields[0]}", code, {"fields": shown}))
    return problems


def _stored_value(meta: EntityMeta, name: str, value: Any) -> Any:
    field_def = meta.entity.get_field(name)
    return field_def.kind.to_db(field_def, value) if field_def is not None else value


def _rule_problems(
    meta: EntityMeta,
    record: Mapping[str, Any],
    ctx: SaveContext,
    pointer: str,
    record_id: int | None = None,
) -> list[FieldError]:
    errors = []
    for i, rule in enumerate(meta.entity.rules):
        try:
            names = {**record, "id": record_id}  # sum_of/count_of rules leave the record out
            ok = evaluate(rule["expression"], names, now=ctx.local_now, lookups=ctx.lookups())
        except ExpressionError as exc:
            errors.append(
                FieldError(f"{pointer}/x-formwork/rules/{i}", "expression", {"detail": str(exc)})
            )
            continue
        if not ok:
            target = f"{pointer}/{rule['field']}" if rule.get("field") else pointer or "/"
            errors.append(
                FieldError(
                    target,
                    "rule",
                    {"message_zh": rule["message"]["zh-CN"], "message_en": rule["message"]["en"]},
                )
            )
    return errors


def read_row(
    session: Session,
    meta: EntityMeta,
    record_id: int,
    lock: bool = False,
    where: Sequence[Any] = (),
) -> dict[str, Any]:
    """Return one row as Python values, or raise NotFound (also when `where` excludes it)."""
    query = sa.select(meta.table).where(meta.table.c.id == record_id, *where)
    if lock:
        query = query.with_for_update()
    row = session.connection().execute(query).mappings().first()
    if row is None:
        raise NotFound(f"{meta.entity.key} {record_id} does not exist")
    return from_row(meta, dict(row))


def from_row(meta: EntityMeta, row: Mapping[str, Any]) -> dict[str, Any]:
    """Return a row's Python values (system columns as stored)."""
    values = {k: row[k] for k in ("id", "version", *SYSTEM_OUT)}
    for key in ("created_at", "updated_at"):
        stamp = values.get(key)
        if stamp is not None and stamp.tzinfo is None:
            values[key] = stamp.replace(tzinfo=dt.UTC)
    for field_def in meta.entity.stored_fields():
        values[field_def.name] = field_def.kind.from_db(field_def, row[field_def.name])
    return values


def read_children(
    session: Session, meta: EntityMeta, parent_ids: list[int]
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Return the line items of the given parents, per parent and field, in row order."""
    out: dict[int, dict[str, list[dict[str, Any]]]] = {pid: {} for pid in parent_ids}
    for name, child in meta.children:
        for pid in parent_ids:
            out[pid][name] = []
        table = child.table
        rows = (
            session.connection()
            .execute(
                sa.select(table)
                .where(table.c.parent_id.in_(parent_ids))
                .order_by(table.c.parent_id, table.c.row_order, table.c.id)
            )
            .mappings()
        )
        for row in rows:
            out[row["parent_id"]][name].append(from_row(child, dict(row)))
    return out


def write_children(
    session: Session,
    meta: EntityMeta,
    parent_id: int,
    record: Mapping[str, Any],
    old: Mapping[str, list[dict[str, Any]]],
    stamp: Mapping[str, Any],
) -> dict[str, list[dict[str, Any]]]:
    """Insert, update and delete line items so the table matches `record`; return them
    (Python values with their ids)."""
    written: dict[str, list[dict[str, Any]]] = {}
    for name, child in meta.children:
        old_rows = {row["id"]: row for row in old.get(name, [])}
        rows = record.get(name, [])
        _check_row_ids(name, rows, old_rows)
        kept = {row["id"] for row in rows if row.get("id")}
        gone = set(old_rows) - kept
        if gone:
            session.connection().execute(sa.delete(child.table).where(child.table.c.id.in_(gone)))
        written[name] = [
            _write_row(session, child, parent_id, order, row, old_rows.get(row.get("id")), stamp)
            for order, row in enumerate(rows)
        ]
    return written


def _check_row_ids(name: str, rows: list[dict[str, Any]], old_rows: Mapping[int, Any]) -> None:
    errors = [
        FieldError(f"/{name}/{i}/id", "invalid", {"detail": f"no line {row['id']}"})
        for i, row in enumerate(rows)
        if row.get("id") and row["id"] not in old_rows
    ]
    if errors:
        raise ValidationFailed(errors)


def _write_row(
    session: Session,
    child: EntityMeta,
    parent_id: int,
    order: int,
    row: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    stamp: Mapping[str, Any],
) -> dict[str, Any]:
    stored = {f.name: f.kind.to_db(f, row.get(f.name)) for f in child.entity.stored_fields()}
    table = child.table
    if old is None:
        values = {**stored, **stamp, "parent_id": parent_id, "row_order": order, "version": 1}
        result = session.connection().execute(sa.insert(table).values(values))
        row_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    else:
        row_id = old["id"]
        changed = {
            k: v
            for k, v in stored.items()
            if v != child.entity.field_map[k].kind.to_db(child.entity.field_map[k], old.get(k))
        }
        if changed or old.get("row_order") != order:
            session.connection().execute(
                sa.update(table)
                .where(table.c.id == row_id)
                .values(
                    **changed,
                    row_order=order,
                    updated_at=stamp["updated_at"],
                    updated_by=stamp["updated_by"],
                    version=table.c.version + 1,
                )
            )
    return {**row, "id": row_id}


def dump_values(meta: EntityMeta, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the JSON form of a line item's (or record's) field values and id."""
    out: dict[str, Any] = {"id": values.get("id")}
    for field_def in meta.entity.stored_fields():
        out[field_def.name] = field_def.kind.dump(field_def, values.get(field_def.name))
    return out


def dump_record(
    meta: EntityMeta, values: Mapping[str, Any], children: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Return a record as the API shows it: system fields, fields and line items."""
    out = dump_values(meta, values)
    out["version"] = values.get("version")
    for key in SYSTEM_OUT:
        stamp = values.get(key)
        out[key] = stamp.isoformat() if isinstance(stamp, dt.datetime) else stamp
    for name, child in meta.children:
        out[name] = [dump_values(child, row) for row in children.get(name, [])]
    return out
