"""The database look-ups a save offers to field types (references, files, sequences)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from formwork.runtime.definitions import EntityDef, qualify
from formwork.runtime.models import Sequence, StoredFile, User
from formwork.runtime.registry import Registry
from formwork.runtime.security import Principal, row_condition


class SaveContext:
    """Answer field types' questions inside the save's transaction."""

    def __init__(
        self,
        session: Session,
        registry: Registry,
        entity: EntityDef,
        now: dt.datetime,
        *,
        user_id: int | None = None,
        any_file: bool = True,
        kept_files: frozenset[str] = frozenset(),
        local_now: dt.datetime | None = None,
        author: Principal | None = None,
        reader: Principal | None = None,
        kept_refs: frozenset[tuple[str, int]] = frozenset(),
        before: Mapping[str, Any] | None = None,
    ) -> None:
        self.session = session
        self.registry = registry
        self.entity = entity
        self.now = now
        # The same moment in the company's time zone: what today() and date-stamped
        # numbers (DW-{YYYYMMDD}) mean to the people who use them.
        self.local_now = local_now or now
        # Who saves, and which files they may attach: their own uploads and the files the
        # record already holds (unless `any_file`, for administrators and the system).
        self.user_id = user_id
        self.any_file = any_file
        self.kept_files = kept_files
        # The id of the record (or line item) being computed, None while inserting.
        self.record_id: int | None = None
        # Who saves: a reference may name only records they may read, or that the record
        # already names (kept_refs: (entity key, id)); None for the system (any record).
        self.author = author
        self.kept_refs = kept_refs
        # Whose read rules sum_of/count_of apply: None while saving (a rule must see every
        # row), the user for a preview shown to them (see lookups()).
        self.reader = reader
        # The stored record (Python values, line items by field) when updating.
        self.before = before

    @property
    def users_table(self) -> sa.Table:
        """Return the users table."""
        return User.__table__  # type: ignore[return-value]

    def table_of(self, entity_key: str) -> sa.Table:
        """Return the table of an entity (a bare name means the current pack)."""
        return self.registry.meta(qualify(self.entity.pack, entity_key)).table

    def exists(self, table: sa.Table, ids: set[Any]) -> set[Any]:
        """Return which of `ids` exist in `table`, in one query."""
        if not ids:
            return set()
        rows = self.session.connection().execute(sa.select(table.c.id).where(table.c.id.in_(ids)))
        return {r[0] for r in rows}

    def referable(self, entity_key: str, ids: set[Any]) -> set[Any]:
        """Return which of `ids` the author may put in a reference to `entity_key`: records
        they may read, and those the record already names. An unreadable id is answered
        like a missing one, so a save never confirms that a record exists."""
        key = qualify(self.entity.pack, entity_key)
        meta = self.registry.meta(key)
        kept = {i for i in ids if (key, i) in self.kept_refs}
        fresh = set(ids) - kept
        found = self.exists(meta.table, kept)
        if fresh:
            where = [meta.table.c.id.in_(fresh), *self._author_rows(meta)]
            rows = self.session.connection().execute(sa.select(meta.table.c.id).where(*where))
            found |= {r[0] for r in rows}
        return found

    def _author_rows(self, meta: Any) -> list[Any]:
        if self.author is None:
            return []
        rule = row_condition(self.registry, self.author, meta, "read")
        return [] if rule is None else [rule]

    def matches(self, target: Any, record_id: Any, where: list[Any]) -> bool:
        """Return True when record `record_id` of `target` meets the conditions."""
        table = target.table
        query = sa.select(table.c.id).where(table.c.id == record_id, *where).limit(1)
        return self.session.connection().execute(query).first() is not None

    def file_rows(self, ids: set[str]) -> Mapping[str, Mapping[str, Any]]:
        """Return the stored files' metadata keyed by id."""
        if not ids:
            return {}
        rows = self.session.scalars(sa.select(StoredFile).where(StoredFile.id.in_(ids)))
        return {
            r.id: {
                "name": r.name,
                "size": r.size,
                "content_type": r.content_type,
                "created_by": r.created_by,
            }
            for r in rows
        }

    def may_attach(self, file_id: str, uploaded_by: int | None) -> bool:
        """Return True when the saving user may put this file on the record."""
        return self.any_file or file_id in self.kept_files or uploaded_by == self.user_id

    def next_in_sequence(self, key: str) -> int:
        """Return the next number of a gap-free sequence.

        The counter row is updated in the caller's transaction: PostgreSQL holds the row
        lock until commit and SQLite holds the database write lock, so concurrent inserts
        queue instead of sharing a number, and a rolled-back insert gives its number back.
        """
        full_key = f"{self.entity.key}:{key}"[:200]
        table: sa.Table = Sequence.__table__  # type: ignore[assignment]
        bump = (
            sa.update(table)
            .where(table.c.key == full_key)
            .values(value=table.c.value + 1)
            .returning(table.c.value)
        )
        value = self.session.connection().execute(bump).scalar()
        if value is None:
            try:
                with self.session.begin_nested():
                    self.session.connection().execute(
                        sa.insert(table).values(key=full_key, value=0)
                    )
            except IntegrityError:
                pass  # another transaction created the counter first; use it
            value = self.session.connection().execute(bump).scalar()
        return int(value)  # type: ignore[arg-type]

    def field_text(self, name: str, record: dict[str, Any]) -> str:
        """Return a field of the record as text (a reference gives its target's title).

        `reference.field` reads one field of the referenced record (e.g. `project.code`).
        """
        if "." in name:
            return self._referenced_text(name, record)
        field_def = self.entity.get_field(name)
        value = record.get(name)
        if field_def is None:
            return "" if value is None else str(value)
        return field_def.kind.as_text(field_def, value, self)

    def _referenced_text(self, path: str, record: dict[str, Any]) -> str:
        head, _, tail = path.partition(".")
        field_def = self.entity.get_field(head)
        target = field_def.kind.join_target(field_def, self.entity) if field_def else None
        value = record.get(head)
        if target is None or value is None:
            return ""
        table = self.table_of(target)
        found = (
            self.session.connection()
            .execute(sa.select(table.c[tail]).where(table.c.id == value))
            .scalar()
        )
        return "" if found is None else str(found)

    def lookups(self) -> Mapping[str, Callable[..., Any]]:
        """Return the expression library's database functions, answered in this transaction.

        While saving they read every record (no row rules): a rule such as "commitments may
        not exceed the budget" must see the whole budget, whoever saves. With a `reader`
        (a form's live preview) they read only what that user may read — their row rules,
        and refused on a hidden field or an entity they may not read — so a value shown to
        them is never built from rows they cannot see.
        """
        return {"sum_of": self._sum_of, "count_of": self._count_of}

    def _sum_of(self, entity: Any, field: Any, filters: Any = None) -> Decimal:
        if not isinstance(field, str):
            raise TypeError("sum_of: the field must be a name (text)")
        rows = self._aggregate(entity, {"sum": [field]}, filters, "sum_of")
        value = rows[0].get(f"sum_{field}") if rows else None
        return Decimal(str(value)) if value is not None else Decimal(0)

    def _count_of(self, entity: Any, filters: Any = None) -> int:
        rows = self._aggregate(entity, {}, filters, "count_of")
        return int(rows[0]["count"]) if rows else 0

    def _aggregate(
        self, entity: Any, params: dict[str, list[str]], filters: Any, function: str
    ) -> list[dict[str, Any]]:
        from formwork.runtime.aggregate import aggregate
        from formwork.runtime.errors import BadQuery
        from formwork.runtime.security import system_principal

        if not isinstance(entity, str) or entity not in self.registry.entities:
            raise ValueError(f"{function}: unknown entity {entity!r}")
        if filters is not None and not isinstance(filters, Mapping):
            raise TypeError(f"{function}: filters must be a record of field__op: value")
        for name, value in (filters or {}).items():
            key, text = _filter_param(str(name), value)
            params[key] = [text]
        meta = self.registry.meta(entity)
        if self.reader is not None and not self.reader.can(entity, "read"):
            raise ValueError(f"{function}: {entity} is not readable here")
        who = self.reader or system_principal()
        try:
            return aggregate(self.session, self.registry, meta, params, principal=who)
        except BadQuery as exc:
            detail = "; ".join(f"{e.pointer}: {e.code} {e.params}" for e in exc.errors)
            raise ValueError(f"{function} on {entity}: {detail}") from None

    def title_of(self, entity_key: str, record_id: Any) -> str:
        """Return the title of a record (its id when the entity has no title field)."""
        target = self.registry.entity(qualify(self.entity.pack, entity_key))
        table = self.table_of(target.key)
        column = table.c[target.title_field or "id"]
        found = (
            self.session.connection()
            .execute(sa.select(column).where(table.c.id == record_id))
            .scalar()
        )
        return str(found if found is not None else record_id)


def _filter_param(name: str, value: Any) -> tuple[str, str]:
    """Return a filter as a query parameter; equal to null means `isnull`."""
    path, _, op = name.rpartition("__") if "__" in name else (name, "", "eq")
    if value is None and op in ("eq", "ne"):
        return f"{path}__isnull", "true" if op == "eq" else "false"
    return name, _filter_text(value)


def _filter_text(value: Any) -> str:
    """Return a filter value as the query-string text the query layer parses."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_filter_text(v) for v in value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if value is None:
        raise ValueError("a filter value cannot be null; use field__isnull: true")
    return str(value)
