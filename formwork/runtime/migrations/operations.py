"""Recorded schema operations: small verb-noun steps with forwards, backwards and a JSON form.

Each operation holds everything it needs (pack, entity, table and the JSON schema of the entity
or field), so a stored migration replays without the definition registry. `forwards` and
`backwards` take an `OperationContext` and run inside the caller's transaction. Entity and index
operations live here, the column operations of a field in `field_operations`; `OPERATIONS` maps
every `op` name of the JSON form to its class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from formwork.runtime.definitions import EntityDef, parse_entity
from formwork.runtime.migrations.base import FieldOperation, Operation
from formwork.runtime.migrations.context import OperationContext
from formwork.runtime.migrations.conversions import plural
from formwork.runtime.migrations.errors import IrreversibleOperation, MigrationError
from formwork.runtime.migrations.field_operations import (
    AddField,
    AlterField,
    RemoveField,
    RenameField,
)
from formwork.runtime.migrations.index_operations import (
    AddCompositeIndex,
    RemoveCompositeIndex,
    name_composite_indexes,
)
from formwork.runtime.migrations.recreate import table_batch
from formwork.runtime.migrations.schema import (
    check_no_duplicates,
    constraint_name,
    count_rows,
    has_column,
    has_table,
    index_names,
    referencing_tables,
    rename_constraints,
    rename_sequence,
    unique_names,
)
from formwork.runtime.storage import table_columns, table_indexes

__all__ = [
    "OPERATIONS",
    "AddCompositeIndex",
    "AddField",
    "AddIndex",
    "AlterField",
    "CreateEntity",
    "DropEntity",
    "IrreversibleOperation",
    "Operation",
    "RemoveCompositeIndex",
    "RemoveField",
    "RemoveIndex",
    "RenameEntity",
    "RenameField",
]


def _entity(pack: str, document: Mapping[str, Any]) -> EntityDef:
    return parse_entity(pack, document)


@dataclasses.dataclass(frozen=True)
class CreateEntity(Operation):
    """Create an entity's table with its columns, indexes (composite too) and constraints."""

    pack: str
    entity: str
    table: str
    document: Mapping[str, Any]

    def forwards(self, ctx: OperationContext) -> None:
        """Create the table (Alembic creates the Index objects given with it)."""
        entity = _entity(self.pack, self.document)
        ctx.op.create_table(self.table, *table_columns(entity), *table_indexes(entity))

    def reverse(self) -> Operation:
        """Return the DropEntity of the same table."""
        return DropEntity(self.pack, self.entity, self.table, self.document)

    def describe(self) -> str:
        """Return e.g. "Create entity sample.project (table sample__project)"."""
        return f"Create entity {self.pack}.{self.entity} (table {self.table})"


@dataclasses.dataclass(frozen=True)
class DropEntity(Operation):
    """Drop an entity's table and its rows; backwards recreates it empty."""

    pack: str
    entity: str
    table: str
    document: Mapping[str, Any]

    @property
    def destructive(self) -> bool:
        """Return True: the rows go with the table."""
        return True

    def forwards(self, ctx: OperationContext) -> None:
        """Drop the table, refusing while other tables still reference it."""
        referencing = referencing_tables(ctx.connection, self.table)
        if referencing:
            raise MigrationError(
                f"cannot drop entity {self.pack}.{self.entity}: still "
                f"referenced by {', '.join(referencing)}"
            )
        ctx.op.drop_table(self.table)

    def reverse(self) -> Operation:
        """Return the CreateEntity of the same table."""
        return CreateEntity(self.pack, self.entity, self.table, self.document)

    def describe(self) -> str:
        """Return e.g. "Drop entity sample.project (table sample__project)"."""
        return f"Drop entity {self.pack}.{self.entity} (table {self.table})"

    def losses(self, conn: sa.Connection) -> list[str]:
        """Return how many rows would be lost."""
        rows = count_rows(conn, self.table) if has_table(conn, self.table) else 0
        if not rows:
            return []
        return [f"drop entity {self.pack}.{self.entity}: {plural(rows, 'row')} would be lost"]


@dataclasses.dataclass(frozen=True)
class RenameEntity(Operation):
    """Rename an entity's table; rows, indexes and references follow."""

    pack: str
    old_entity: str
    new_entity: str
    old_table: str
    new_table: str
    document: Mapping[str, Any]

    def forwards(self, ctx: OperationContext) -> None:
        """Rename the table and the indexes and constraints named after it."""
        ctx.op.rename_table(self.old_table, self.new_table)
        rename_constraints(ctx, self.new_table, self.old_table, self.new_table, stem=True)
        rename_sequence(ctx, self.old_table, self.new_table)
        name_composite_indexes(ctx, self.pack, self.new_table, self.document)

    def reverse(self) -> Operation:
        """Return the rename back."""
        return RenameEntity(
            self.pack,
            self.new_entity,
            self.old_entity,
            self.new_table,
            self.old_table,
            self.document,
        )

    def describe(self) -> str:
        """Return e.g. "Rename entity sample.project to sample.site"."""
        return f"Rename entity {self.pack}.{self.old_entity} to {self.pack}.{self.new_entity}"


@dataclasses.dataclass(frozen=True)
class AddIndex(FieldOperation):
    """Index a field's column; with `unique`, add a unique constraint instead."""

    unique: bool = False

    def forwards(self, ctx: OperationContext) -> None:
        """Create the index, or check for duplicates and add the unique constraint."""
        if not has_column(ctx.connection, self.table, self.field):
            raise MigrationError(f"cannot index {self.key}: no column {self.field}")
        if not self.unique:
            ctx.op.create_index(
                constraint_name("ix", self.table, self.field), self.table, [self.field]
            )
            return
        check_no_duplicates(ctx.connection, self.table, self.field, self.key)
        with table_batch(ctx, self.table, recreate=True) as batch:
            batch.create_unique_constraint(
                constraint_name("uq", self.table, self.field), [self.field]
            )

    def reverse(self) -> Operation:
        """Return the RemoveIndex of the same index."""
        return RemoveIndex(self.pack, self.entity, self.table, self.field, self.unique)

    def describe(self) -> str:
        """Return e.g. "Add unique index on sample.project.code"."""
        return f"Add {'unique ' if self.unique else ''}index on {self.key}"


@dataclasses.dataclass(frozen=True)
class RemoveIndex(FieldOperation):
    """Drop a field's index; with `unique`, its unique constraint (or unique index)."""

    unique: bool = False

    def forwards(self, ctx: OperationContext) -> None:
        """Drop whatever index or unique constraint covers exactly the column."""
        conn = ctx.connection
        constraints = unique_names(conn, self.table, self.field) if self.unique else []
        indexes = index_names(conn, self.table, self.field, self.unique)
        if not constraints and not indexes:
            kind = "unique index" if self.unique else "index"
            raise MigrationError(f"cannot remove the {kind} on {self.key}: there is none")
        for name in indexes:
            ctx.op.drop_index(name, table_name=self.table)
        if constraints:
            with table_batch(ctx, self.table, recreate=True) as batch:
                for name in constraints:
                    batch.drop_constraint(name, type_="unique")

    def reverse(self) -> Operation:
        """Return the AddIndex of the same index."""
        return AddIndex(self.pack, self.entity, self.table, self.field, self.unique)

    def describe(self) -> str:
        """Return e.g. "Remove unique index on sample.project.code"."""
        return f"Remove {'unique ' if self.unique else ''}index on {self.key}"


OPERATIONS: Mapping[str, type[Operation]] = MappingProxyType(
    {
        cls.__name__: cls
        for cls in (
            CreateEntity,
            DropEntity,
            RenameEntity,
            AddField,
            RemoveField,
            RenameField,
            AlterField,
            AddIndex,
            RemoveIndex,
            AddCompositeIndex,
            RemoveCompositeIndex,
        )
    }
)
