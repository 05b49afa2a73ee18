"""The records service: create, read, update and delete records of any entity.

Each write validates against the effective definition, computes derived values,
writes the row and its line items, the audit entry and the lifecycle events — all in
the caller's transaction (the caller commits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from formwork.runtime.audit import diff, record_audit
from formwork.runtime.clock import Clock, clock_for
from formwork.runtime.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from formwork.runtime.events import EventBus, RecordEvent
from formwork.runtime.expressions import ExpressionError
from formwork.runtime.fields.special import AttachmentType
from formwork.runtime.registry import EntityMeta, Registry
from formwork.runtime.save_context import SaveContext
from formwork.runtime.security import Principal, redact, row_condition
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
        clock: Clock | dt.datetime | None = None,
    ) -> None:
        self.session = session
        self.registry = registry
        self.principal = principal
        self.events = events or EventBus()
        # The kernel's clock; a datetime fixes the moment (a workflow step's own).
        self.clock = clock_for(session, clock)

    @property
    def now(self) -> dt.datetime:
        """Return the moment used for timestamps, from the service's clock."""
        return self.clock.now()

    def _meta(self, key: str, action: str) -> EntityMeta:
        meta = self.registry.meta(key)
        if meta.entity.child_of:
            raise NotFound(f"'{key}' holds line items; reach them through their parent")
        self.principal.require(key, action)
        return meta

    def get(self, key: str, record_id: int, *, for_task: bool = False) -> dict[str, Any]:
        """Return one record with its line items, as JSON values (hidden fields left out).

        `for_task`: the principal acts on a workflow task bound to the record, which shows
        it to them whatever their grants and row rules (field rules still apply)."""
        if for_task:
            meta = self.registry.meta(key)
            where = []
        else:
            meta = self._meta(key, "read")
            where = self._rows(meta, "read")
        values = read_row(self.session, meta, record_id, where=where)
        children = read_children(self.session, meta, [record_id])
        return self.shown(meta, dump_record(meta, values, children.get(record_id, {})))

    def _context(
        self,
        meta: EntityMeta,
        before: Mapping[str, Any] | None = None,
        stored: Mapping[str, Any] | None = None,
    ) -> SaveContext:
        return SaveContext(
            self.session,
            self.registry,
            meta.entity,
            self.now,
            local_now=self.clock.local_now(),
            user_id=self.principal.user_id,
            any_file=self.principal.is_admin,
            kept_files=frozenset(_file_ids(meta, before or {})),
            author=self.principal,
            kept_refs=frozenset(reference_ids(meta, before or {})),
            before=stored,
        )

    # -- permissions on rows and fields ------------------------------------------------------
    def _rows(self, meta: EntityMeta, action: str) -> list[Any]:
        condition = row_condition(self.registry, self.principal, meta, action, self.session)
        return [] if condition is None else [condition]

    def shown(self, meta: EntityMeta, record: dict[str, Any]) -> dict[str, Any]:
        """Return the record without the fields hidden from the principal."""
        return redact(record, self.principal.hidden_fields(meta.entity.key))

    def _read_for(self, meta: EntityMeta, record_id: int, action: str) -> dict[str, Any]:
        # Not readable: 404, as if it did not exist; readable but out of the action's
        # rows (a crew leader's view of another crew's approved sheet): 403.
        old = read_row(self.session, meta, record_id, lock=True, where=self._rows(meta, "read"))
        if action != "read" and not self._reaches(meta, record_id, action):
            raise PermissionDenied(
                f"'{self.principal.username}' may not {action} {meta.entity.key} {record_id}"
            )
        return old

    def _reaches(self, meta: EntityMeta, record_id: int, action: str) -> bool:
        rows = self._rows(meta, action)
        if not rows:
            return True
        found = self.session.connection().execute(
            sa.select(meta.table.c.id).where(meta.table.c.id == record_id, *rows)
        )
        return found.first() is not None

    def _check_writable(
        self, meta: EntityMeta, payload: Any, action: str, before: Mapping[str, Any] | None = None
    ) -> None:
        # A field the role may not set is refused when the payload changes it; sending
        # back the value it has (a client that PATCHes what it read) is fine.
        if not isinstance(payload, Mapping):
            return
        current = before or {}
        errors = [
            FieldError(f"/{name}", "set_by_process")
            for name in sorted(self._process_fields(meta))
            if name in payload and not _same(payload[name], current.get(name))
        ]
        locked = self.principal.read_only_fields(meta.entity.key, action)
        for name in sorted(locked):
            head, _, tail = name.partition(".")
            if not tail and name in payload and not _same(payload[name], current.get(name)):
                errors.append(FieldError(f"/{name}", "read_only_for_role"))
            elif tail and isinstance(payload.get(head), list):
                old_rows = {r.get("id"): r for r in current.get(head) or []}
                errors += [
                    FieldError(f"/{head}/{i}/{tail}", "read_only_for_role")
                    for i, row in enumerate(payload[head])
                    if isinstance(row, Mapping)
                    and tail in row
                    and not _same(row[tail], old_rows.get(row.get("id"), {}).get(tail))
                ]
        if errors:
            raise ValidationFailed(errors)

    def _process_fields(self, meta: EntityMeta) -> frozenset[str]:
        """Return the fields only a process writes (`set_by: process`), unless the principal
        is a process or the system (pack data, the command line)."""
        if self.principal.is_process or self.principal.user_id is None:
            return frozenset()
        return frozenset(f.name for f in meta.entity.fields if f.opt("set_by") == "process")

    def _keep_locked_lines(
        self, meta: EntityMeta, converted: Converted, old_children: Mapping[str, list[Any]]
    ) -> None:
        # Line items are replaced as a whole; a line field the role may not set keeps
        # its stored value on the lines that already existed.
        for name in self.principal.read_only_fields(meta.entity.key, "update"):
            head, _, tail = name.partition(".")
            if not tail or head not in converted.children:
                continue
            old_rows = {row["id"]: row for row in old_children.get(head, [])}
            for row in converted.children[head]:
                if row.row_id in old_rows:
                    row.values[tail] = old_rows[row.row_id].get(tail)

    def _still_reaches(self, meta: EntityMeta, record_id: int, action: str) -> None:
        # The saved record must stay within the principal's rows: nobody files a sheet
        # under another crew, or moves a record out of their own reach.
        if not self._reaches(meta, record_id, action):
            raise PermissionDenied(
                f"'{self.principal.username}' may not {action} {meta.entity.key} records "
                "outside their rows"
            )

    def create(self, key: str, payload: Any) -> dict[str, Any]:
        """Validate and insert a record with its line items; return it as JSON values."""
        meta = self._meta(key, "create")
        self._check_writable(meta, payload, "create")
        converted = convert(meta, payload, creating=True)
        _apply_defaults(meta, converted)
        ctx = self._context(meta)
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
        self._still_reaches(meta, record_id, "create")
        return self.shown(meta, result)

    def update(self, key: str, record_id: int, payload: Any, version: Any) -> dict[str, Any]:
        """Apply a partial change if `version` is current; return the record as JSON values."""
        meta = self._meta(key, "update")
        old = self._read_for(meta, record_id, "update")
        self._emit("before_change", meta, old, old, record_id)
        old_children = read_children(self.session, meta, [record_id]).get(record_id, {})
        before = dump_record(meta, old, old_children)
        _check_version(version, old, self.shown(meta, before))
        self._check_writable(meta, payload, "update", before)
        converted = convert(meta, payload, creating=False, current=old)
        self._keep_locked_lines(meta, converted, old_children)
        ctx = self._context(meta, before, {**old, **old_children})
        merged = Converted(
            {**_user_values(meta, old), **converted.values},
            {**_as_rows(old_children), **converted.children},
            record_id,
            converted.errors,
        )
        record = self._prepare(meta, merged, ctx, inserting=False, record_id=record_id)
        rows = {name: record.get(name, []) for name, _child in meta.children}
        if not diff(before, dump_record(meta, {**old, **record, "id": record_id}, rows)):
            # Nothing changed: no new version, no audit entry, no conflict later.
            return self.shown(meta, before)
        self._emit("before_save", meta, record, old, record_id)
        row = {
            **_stored(meta, record),
            "updated_at": ctx.now,
            "updated_by": self.principal.user_id,
            "version": old["version"] + 1,
        }
        self._update_row(meta, record_id, old["version"], row, self.shown(meta, before))
        children = write_children(
            self.session, meta, record_id, record, old_children, row_meta(self)
        )
        after = dump_record(meta, {**old, **record, **_system(row), "id": record_id}, children)
        record_audit(
            self.session, meta, record_id, "update", before, after, self.principal, ctx.now
        )
        self._emit("on_update", meta, record, old, record_id)
        self._still_reaches(meta, record_id, "update")
        return self.shown(meta, after)

    def delete(self, key: str, record_id: int, version: Any = None) -> None:
        """Delete a record and its line items (refused while other records refer to it)."""
        meta = self._meta(key, "delete")
        old = self._read_for(meta, record_id, "delete")
        self._emit("before_change", meta, old, old, record_id)
        old_children = read_children(self.session, meta, [record_id]).get(record_id, {})
        before = dump_record(meta, old, old_children)
        if version is not None:
            _check_version(version, old, self.shown(meta, before))
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
        errors = check_record(self.session, meta, record, ctx, record_id, old=ctx.before)
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


def _file_ids(meta: EntityMeta, record: Mapping[str, Any]) -> set[str]:
    """Return the ids of the files a record (and its line items) holds."""
    found: set[str] = set()
    for fd in meta.entity.fields:
        if isinstance(fd.kind, AttachmentType):
            value = record.get(fd.name)
            found.update(value if isinstance(value, list) else [value] if value else [])
    for name, child in meta.children:
        for row in record.get(name) or []:
            found |= _file_ids(child, row)
    return found


def reference_ids(meta: EntityMeta, record: Mapping[str, Any]) -> set[tuple[str, int]]:
    """Return (entity key, id) of every record a record (and its line items) refers to."""
    found: set[tuple[str, int]] = set()
    for fd in meta.entity.fields:
        target = fd.kind.join_target(fd, meta.entity)
        value = record.get(fd.name)
        if target is not None and isinstance(value, int):
            found.add((target, value))
    for name, child in meta.children:
        for row in record.get(name) or []:
            found |= reference_ids(child, row)
    return found


def _same(given: Any, stored: Any) -> bool:
    if given == stored:
        return True
    try:
        return Decimal(str(given)) == Decimal(str(stored))
    except (ArithmeticError, ValueError):
        return False


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
