"""The database look-ups a save offers to field types (references, files, sequences)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from formwork.runtime.definitions import EntityDef, qualify
from formwork.runtime.models import Sequence, StoredFile, User
from formwork.runtime.registry import Registry


class SaveContext:
    """Answer field types' questions inside the save's transaction."""

    def __init__(
        self, session: Session, registry: Registry, entity: EntityDef, now: dt.datetime
    ) -> None:
        self.session = session
        self.registry = registry
        self.entity = entity
        self.now = now

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

    def file_rows(self, ids: set[str]) -> Mapping[str, Mapping[str, Any]]:
        """Return the stored files' metadata keyed by id."""
        if not ids:
            return {}
        rows = self.session.scalars(sa.select(StoredFile).where(StoredFile.id.in_(ids)))
        return {
            r.id: {"name": r.name, "size": r.size, "content_type": r.content_type} for r in rows
        }

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
        """Return a field of the record as text (a reference gives its target's title)."""
        field_def = self.entity.get_field(name)
        value = record.get(name)
        if field_def is None:
            return "" if value is None else str(value)
        return field_def.kind.as_text(field_def, value, self)

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
