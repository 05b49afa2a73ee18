"""The records service: create, read, update and delete records of any entity.

Each write validates against the effective definition, computes derived values,
writes the row and its line items, the audit entry and the lifecycle events — all in
the caller's transaction (the caller commits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from formwork.runtime.audit import diff, record_audit
from formwork.runtime.errors import Conflict, FieldError, NotFound, ValidationFailed
from formwork.runtime.events import EventBus, RecordEvent
from formwork.runtime.expressions import ExpressionError
from formwork.runtime.registry import EntityMeta, Registry
from formwork.runtime.save_context import SaveContext
from formwork.runtime.security import Principal
from formwork.runtime.validation import Converted, convert
from formwork.runtime.writing import (
    assign_numbers,
    check_record,
    compute_fields,
    dump_record,
    read_children,
    read_row,
    write_children,
)


class RecordService:
    """CRUD on records for one principal in one session."""

    def __init__(
        self,
        session: Session,
        registry: Registry,
        principal: Principal,
        events: EventBus | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.session = session
        self.registry = registry
        self.principal = principal
        self.events = events or EventBus()
        self._now = now

    @property
    def now(self) -> dt.datetime:
        """Return the moment used for timestamps (fixed when the service was given one)."""
        return self._now or dt.datetime.now(dt.UTC)

    def _meta(self, key: str, action: str) -> EntityMeta:
        meta = self.registry.meta(key)
        if meta.entity.child_of:
            raise NotFound(f"'{key}' holds line items; reach them through their parent")
        self.principal.require(key, action)
        return meta

    def get(self, key: str, record_id: int) -> dict[str, Any]:
        """Return one record with its line items, as JSON values."""
        meta = self._meta(key, "read")
        values = read_row(self.session, meta, record_id)
        children = read_children(self.session, meta, [record_id])
        return dump_record(meta, values, children.get(record_id, {}))

    def create(self, key: str, payload: Any) -> dict[str, Any]:
        """Validate and insert a record with its line items; return it as JSON values."""
        meta = self._meta(key, "create")
        converted = convert(meta, payload, creating=True)
        _apply_defaults(meta, converted)
        ctx = SaveContext(self.session, self.registry, meta.entity, self.now)
        record = self._prepare(meta, converted, ctx, inserting=True, record_id=None)
        self._emit("before_save", meta, record, None)
        now = ctx.now
        row = {
            **_stored(meta, record),
            "created_at": now,
            "updated_at": now,
            "created_by": self.principal.user_id,
            "updated_by": self.principal.user_id,
            "version": 1,
        }
        record_id = self._insert(meta, row)
        children = write_children(self.session, meta, record_id, record, {}, row_meta(self))
        result = dump_record(meta, {**record, **_system(row), "id": record_id}, children)
        record_audit(self.session, meta, record_id, "create", None, result, self.principal, now)
        self._emit("after_insert", meta, record, None, record_id)
        return result

    def update(self, key: str, record_id: int, payload: Any, version: Any) -> dict[str, Any]:
        """Apply a partial change if `version` is current; return the record as JSON values."""
        meta = self._meta(key, "update")
        old = read_row(self.session, meta, record_id, lock=True)
        old_children = read_children(self.session, meta, [record_id]).get(record_id, {})
        before = dump_record(meta, old, old_children)
        _check_version(version, old, before)
        converted = convert(meta, payload, creating=False, current=old)
        ctx = SaveContext(self.session, self.registry, meta.entity, self.now)
        merged = Converted(
            {**_user_values(meta, old), **converted.values},
            {**_as_rows(old_children), **converted.children},
            record_id,
            converted.errors,
        )
        record = self._prepare(meta, merged, ctx, inserting=False, record_id=record_id)
        rows = {name: record.get(name, []) for name, _child in meta.children}
        if not diff(before, dump_record(meta, {**old, **record, "id": record_id}, rows)):
            return before  # nothing changed: no new version, no audit entry, no conflict later
        self._emit("before_save", meta, record, old, record_id)
        row = {
            **_stored(meta, record),
            "updated_at": ctx.now,
            "updated_by": self.principal.user_id,
            "version": old["version"] + 1,
        }
        self._update_row(meta, record_id, old["version"], row, before)
        children = write_children(
            self.session, meta, record_id, record, old_children, row_meta(self)
        )
        after = dump_record(meta, {**old, **record, **_system(row), "id": record_id}, children)
        record_audit(
            self.session, meta, record_id, "update", before, after, self.principal, ctx.now
        )
        self._emit("on_update", meta, record, old, record_id)
        return after

    def delete(self, key: str, record_id: int, version: Any = None) -> None:
        """Delete a record and its line items (refused while other records refer to it)."""
        meta = self._meta(key, "delete")
        old = read_row(self.session, meta, record_id, lock=True)
        old_children = read_children(self.session, meta, [record_id]).get(record_id, {})
        before = dump_record(meta, old, old_children)
        if version is not None:
            _check_version(version, old, before)
        self._emit("on_delete", meta, old, old, record_id)
        for _name, child in meta.children:
            self.session.connection().execute(
                sa.delete(child.table).where(child.table.c.parent_id == record_id)
            )
        try:
            with self.session.begin_nested():
                self.session.connection().execute(
                    sa.delete(meta.table).where(meta.table.c.id == record_id)
                )
        except IntegrityError as exc:
            raise Conflict(f"{key} {record_id} is referenced by other records") from exc
        record_audit(
            self.session, meta, record_id, "delete", before, None, self.principal, self.now
        )

    # -- steps -------------------------------------------------------------------------------
    def _prepare(
        self,
        meta: EntityMeta,
        converted: Converted,
        ctx: SaveContext,
        *,
        inserting: bool,
        record_id: int | None,
    ) -> dict[str, Any]:
        errors = converted.all_errors()
        if errors:
            raise ValidationFailed(errors)
        try:
            record = compute_fields(meta, converted, ctx)
        except ExpressionError as exc:
            raise ValidationFailed([FieldError("/", "expression", {"detail": str(exc)})]) from exc
        errors = check_record(self.session, meta, record, ctx, record_id)
        if errors:
            raise ValidationFailed(errors)
        if inserting:
            assign_numbers(meta, record, ctx)
        return record

    def _insert(self, meta: EntityMeta, row: dict[str, Any]) -> int:
        # No savepoint: uniqueness and references were checked already, so a constraint
        # error here is a race; it fails the whole save, which the caller rolls back.
        try:
            result = self.session.connection().execute(sa.insert(meta.table), row)
        except IntegrityError as exc:
            raise ValidationFailed(
                [FieldError("/", "invalid", {"detail": _integrity(exc)})]
            ) from exc
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _update_row(
        self,
        meta: EntityMeta,
        record_id: int,
        version: int,
        row: dict[str, Any],
        before: dict[str, Any],
    ) -> None:
        table = meta.table
        statement = (
            sa.update(table).where(table.c.id == record_id, table.c.version == version).values(row)
        )
        try:
            result = self.session.connection().execute(statement)
        except IntegrityError as exc:
            raise ValidationFailed(
                [FieldError("/", "invalid", {"detail": _integrity(exc)})]
            ) from exc
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("the record was changed by someone else", before)

    def _emit(
        self,
        name: str,
        meta: EntityMeta,
        record: dict[str, Any],
        old: dict[str, Any] | None,
        record_id: int | None = None,
    ) -> None:
        self.events.emit(
            RecordEvent(name, meta.entity, record, old, self.principal, self.session, record_id)
        )


def row_meta(service: RecordService) -> dict[str, Any]:
    """Return the system values stamped on line items written by this service."""
    now = service.now
    return {
        "created_at": now,
        "updated_at": now,
        "created_by": service.principal.user_id,
        "updated_by": service.principal.user_id,
    }


def _apply_defaults(meta: EntityMeta, converted: Converted) -> None:
    for field_def in meta.entity.fields:
        if field_def.name in converted.values or field_def.read_only:
            continue
        if field_def.default is not None and field_def.name not in converted.children:
            converted.values[field_def.name] = meta.converter.fields[field_def.name].deserialize(
                field_def.default
            )


def _stored(meta: EntityMeta, record: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: f.kind.to_db(f, record.get(f.name)) for f in meta.entity.stored_fields()}


def _system(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("created_at", "created_by", "updated_at", "updated_by", "version")
    return {k: row[k] for k in keys if k in row}


def _user_values(meta: EntityMeta, old: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: old.get(f.name) for f in meta.entity.stored_fields()}


def _as_rows(children: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[Converted]]:
    return {
        name: [Converted(dict(row), row_id=row["id"]) for row in rows]
        for name, rows in children.items()
    }


def _check_version(version: Any, old: Mapping[str, Any], before: dict[str, Any]) -> None:
    if version is None:
        raise ValidationFailed([FieldError("/version", "required")])
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValidationFailed([FieldError("/version", "type", {"expected": "integer"})])
    if version != old["version"]:
        raise Conflict(
            f"version {version} is stale; the current version is {old['version']}", before
        )


def _integrity(exc: IntegrityError) -> str:
    return str(exc.orig).splitlines()[0][:300]
