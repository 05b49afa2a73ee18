"""Operations on composite indexes (`x-formwork.indexes`): add one, remove one.

A composite index is a plain `CREATE [UNIQUE] INDEX` on both databases, so neither operation
recreates a SQLite table. Its name comes from `storage.composite_index_name`, so a table built
from the definition and one built by these operations carry the same index under the same name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy.sql.elements import conv

from formwork.runtime.definitions import parse_entity
from formwork.runtime.migrations.base import Operation
from formwork.runtime.migrations.context import OperationContext
from formwork.runtime.migrations.errors import MigrationError
from formwork.runtime.migrations.schema import (
    check_no_duplicates,
    has_column,
    index_by_name,
    index_on,
)
from formwork.runtime.storage import CompositeIndex, composite_indexes


@dataclasses.dataclass(frozen=True)
class CompositeIndexOperation(Operation):
    """Common parts of the operations on one composite index."""

    pack: str
    entity: str
    table: str
    name: str
    columns: tuple[str, ...]
    unique: bool = False

    def __post_init__(self) -> None:
        # The JSON form gives a list; a tuple keeps the operation comparable and hashable.
        object.__setattr__(self, "columns", tuple(self.columns))

    @property
    def key(self) -> str:
        """Return `pack.entity`."""
        return f"{self.pack}.{self.entity}"

    def _shown(self) -> str:
        kind = "unique composite index" if self.unique else "composite index"
        return f"{kind} {self.name} on {self.key} ({', '.join(self.columns)})"


@dataclasses.dataclass(frozen=True)
class AddCompositeIndex(CompositeIndexOperation):
    """Create an index over several columns; when unique, existing duplicates refuse it."""

    def forwards(self, ctx: OperationContext) -> None:
        """Check the columns (and, for a unique index, the rows), then create the index."""
        conn = ctx.connection
        missing = [c for c in self.columns if not has_column(conn, self.table, c)]
        if missing:
            raise MigrationError(f"cannot add {self._shown()}: no column {', '.join(missing)}")
        if index_by_name(conn, self.table, self.name):
            raise MigrationError(f"cannot add {self._shown()}: an index of that name exists")
        if self.unique:
            label = f"({', '.join(self.columns)}) of {self.key}"
            check_no_duplicates(conn, self.table, self.columns, label)
        # `conv`: the name is final, whatever the metadata's naming convention says.
        ctx.op.create_index(conv(self.name), self.table, list(self.columns), unique=self.unique)

    def reverse(self) -> Operation:
        """Return the RemoveCompositeIndex of the same index."""
        return RemoveCompositeIndex(*dataclasses.astuple(self))

    def describe(self) -> str:
        """Return e.g. "Add composite index ix_sample__widget_kind_day on sample.widget (…)"."""
        return f"Add {self._shown()}"


@dataclasses.dataclass(frozen=True)
class RemoveCompositeIndex(CompositeIndexOperation):
    """Drop an index over several columns (the rows stay)."""

    def forwards(self, ctx: OperationContext) -> None:
        """Drop the index by its name, or the one on exactly these columns if renamed since."""
        name = self.name if index_by_name(ctx.connection, self.table, self.name) else None
        # A table renamed with a long index name keeps an index named after the old table.
        name = name or index_on(ctx.connection, self.table, self.columns, self.unique)
        if name is None:
            raise MigrationError(f"cannot remove {self._shown()}: there is none")
        ctx.op.drop_index(conv(name), table_name=self.table)

    def reverse(self) -> Operation:
        """Return the AddCompositeIndex of the same index."""
        return AddCompositeIndex(*dataclasses.astuple(self))

    def describe(self) -> str:
        """Return e.g. "Remove composite index ix_sample__widget_kind_day on sample.widget (…)"."""
        return f"Remove {self._shown()}"


def name_composite_indexes(
    ctx: OperationContext, pack: str, table: str, document: Mapping[str, Any]
) -> None:
    """Give the table's composite indexes the names its definition gives them in `table`.

    Renaming a table renames the indexes named after it, but a name shortened with a hash
    cannot be renamed by its prefix alone; this puts the declared names back.
    """
    if not document.get("x-formwork", {}).get("indexes"):
        return
    for index in composite_indexes(parse_entity(pack, document), table):
        current = index_on(ctx.connection, table, index.columns, index.unique)
        if (
            current
            and current != index.name
            and not index_by_name(ctx.connection, table, index.name)
        ):
            _rename_index(ctx, table, current, index)


def _rename_index(ctx: OperationContext, table: str, current: str, index: CompositeIndex) -> None:
    if ctx.is_sqlite:  # SQLite cannot rename an index
        ctx.op.drop_index(conv(current), table_name=table)
        ctx.op.create_index(conv(index.name), table, list(index.columns), unique=index.unique)
        return
    quote = ctx.connection.dialect.identifier_preparer.quote
    ctx.op.execute(f"ALTER INDEX {quote(current)} RENAME TO {quote(index.name)}")
