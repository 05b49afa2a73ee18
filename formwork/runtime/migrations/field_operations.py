"""Operations on a field's columns: add, remove, rename and change their type."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from formwork.runtime.migrations.base import FieldOperation, Operation
from formwork.runtime.migrations.context import OperationContext
from formwork.runtime.migrations.conversions import (
    Conversion,
    field_conversions,
    plural,
    storage_change,
)
from formwork.runtime.migrations.recreate import table_batch
from formwork.runtime.migrations.schema import (
    Reference,
    constraint_name,
    count_rows,
    covering_index_names,
    field_columns,
    field_def,
    foreign_key_names,
    foreign_keys,
    has_column,
    index_names,
    rename_constraints,
    unique_names,
)


@dataclasses.dataclass(frozen=True)
class AddField(FieldOperation):
    """Add a field's column(s), with its foreign key, index or unique constraint."""

    schema: Mapping[str, Any]

    def forwards(self, ctx: OperationContext) -> None:
        """Add the columns, then their constraints and index."""
        field = field_def(self.field, self.schema)
        columns = field_columns(self.pack, self.entity, field)
        references = foreign_keys(self.pack, self.entity, field)
        if not references and not field.unique:
            for column in columns:
                ctx.op.add_column(self.table, column)
        else:  # SQLite adds constraints only by recreating the table
            with table_batch(ctx, self.table, recreate=True) as batch:
                for column in columns:
                    batch.add_column(column)
                for name, target, remote, ondelete in references:
                    batch.create_foreign_key(
                        constraint_name("fk", self.table, name),
                        target,
                        [name],
                        [remote],
                        ondelete=ondelete,
                    )
                for column in columns if field.unique else ():
                    batch.create_unique_constraint(
                        constraint_name("uq", self.table, column.name), [column.name]
                    )
        for column in columns if field.indexed and not field.unique else ():
            ctx.op.create_index(
                constraint_name("ix", self.table, column.name), self.table, [column.name]
            )

    def reverse(self) -> Operation:
        """Return the RemoveField of the same field."""
        return RemoveField(self.pack, self.entity, self.table, self.field, self.schema)

    def describe(self) -> str:
        """Return e.g. "Add field sample.project.budget (money)"."""
        return f"Add field {self.key} ({self.schema['x-formwork']['type']})"


@dataclasses.dataclass(frozen=True)
class RemoveField(FieldOperation):
    """Remove a field's column(s) and their values; backwards re-adds them empty."""

    schema: Mapping[str, Any]

    @property
    def destructive(self) -> bool:
        """Return True: the values go with the column."""
        return True

    def forwards(self, ctx: OperationContext) -> None:
        """Drop the columns (with their indexes and constraints)."""
        conn = ctx.connection
        field = field_def(self.field, self.schema)
        names = [c.name for c in field_columns(self.pack, self.entity, field)]
        # Alembic's batch recreate would rebuild indexes on a dropped column: drop them first,
        # composite ones too (the autodetector drops those in a step of their own before).
        indexes = [
            i for n in names for u in (True, False) for i in index_names(conn, self.table, n, u)
        ]
        covering = [i for n in names for i in covering_index_names(conn, self.table, n)]
        indexes += list(dict.fromkeys(covering))
        uniques = [u for n in names for u in unique_names(conn, self.table, n)]
        with table_batch(ctx, self.table, recreate=True) as batch:
            for index in indexes:
                batch.drop_index(index)
            for unique in uniques:
                batch.drop_constraint(unique, type_="unique")
            for name in names:
                batch.drop_column(name)

    def reverse(self) -> Operation:
        """Return the AddField of the same field."""
        return AddField(self.pack, self.entity, self.table, self.field, self.schema)

    def describe(self) -> str:
        """Return e.g. "Remove field sample.project.budget (money)"."""
        return f"Remove field {self.key} ({self.schema['x-formwork']['type']})"

    def losses(self, conn: sa.Connection) -> list[str]:
        """Return how many non-empty values would be lost."""
        columns = field_columns(self.pack, self.entity, field_def(self.field, self.schema))
        present = [c.name for c in columns if has_column(conn, self.table, c.name)]
        where = sa.or_(*[sa.column(name).is_not(None) for name in present])
        values = count_rows(conn, self.table, where) if present else 0
        if not values:
            return []
        return [f"remove field {self.key}: {plural(values, 'non-empty value')} would be lost"]


@dataclasses.dataclass(frozen=True)
class RenameField(FieldOperation):
    """Rename a field's column(s); the values stay."""

    new_field: str
    schema: Mapping[str, Any]

    def forwards(self, ctx: OperationContext) -> None:
        """Rename the columns and the indexes and constraints named after them."""
        old = field_columns(self.pack, self.entity, field_def(self.field, self.schema))
        new = field_columns(self.pack, self.entity, field_def(self.new_field, self.schema))
        for before, after in zip(old, new, strict=True):
            ctx.op.alter_column(self.table, before.name, new_column_name=after.name)
            rename_constraints(
                ctx,
                self.table,
                f"{self.table}_{before.name}",
                f"{self.table}_{after.name}",
                stem=False,
            )

    def reverse(self) -> Operation:
        """Return the rename back."""
        return RenameField(
            self.pack, self.entity, self.table, self.new_field, self.field, self.schema
        )

    def describe(self) -> str:
        """Return e.g. "Rename field sample.project.code to reference"."""
        return f"Rename field {self.key} to {self.new_field}"


@dataclasses.dataclass(frozen=True)
class AlterField(FieldOperation):
    """Change a field's column type, converting the stored values.

    `change` is 'widen' (every value fits the new type) or 'narrow' (values that do not fit are
    truncated, rounded or cleared, which needs confirmation).
    """

    old_schema: Mapping[str, Any]
    new_schema: Mapping[str, Any]
    change: str

    @property
    def destructive(self) -> bool:
        """Return True for a narrowing change, or one whose conversion can lose values."""
        return self.change == "narrow" or any(c.can_lose for _, _, c in self._pairs())

    def _pairs(self) -> list[tuple[sa.Column[Any], sa.Column[Any], Conversion]]:
        old, new = field_def(self.field, self.old_schema), field_def(self.field, self.new_schema)
        return field_conversions(self.pack, self.entity, old, new)

    def _references(self) -> tuple[list[Reference], list[Reference]]:
        old, new = field_def(self.field, self.old_schema), field_def(self.field, self.new_schema)
        return foreign_keys(self.pack, self.entity, old), foreign_keys(self.pack, self.entity, new)

    def forwards(self, ctx: OperationContext) -> None:
        """Change the column types, converting values and moving foreign keys as needed."""
        pairs = self._pairs()
        old_refs, new_refs = self._references()
        moved = old_refs != new_refs
        if not moved and all(repr(o.type) == repr(n.type) for o, n, _ in pairs):
            # Same column types (options removed): converting the values is all there is to do.
            table = sa.table(self.table, *[sa.column(o.name) for o, _, _ in pairs])
            values = {o.name: c.value(o.name, ctx.dialect) for o, _, c in pairs}
            ctx.connection.execute(sa.update(table).values(values))
            return
        conn = ctx.connection
        stale = [n for name, *_ in old_refs for n in foreign_key_names(conn, self.table, name)]
        convert = {old.name: _converter(conversion) for old, _, conversion in pairs}
        with table_batch(ctx, self.table, recreate=True, convert=convert) as batch:
            for name in stale if moved else ():
                batch.drop_constraint(name, type_="foreignkey")
            for old, new, conversion in pairs:
                using = _compiled(ctx, conversion.value(old.name, ctx.dialect))
                batch.alter_column(
                    old.name, type_=new.type, existing_type=old.type, postgresql_using=using
                )
            for name, target, remote, ondelete in new_refs if moved else ():
                batch.create_foreign_key(
                    constraint_name("fk", self.table, name),
                    target,
                    [name],
                    [remote],
                    ondelete=ondelete,
                )

    def reverse(self) -> Operation:
        """Return the change back to the old type (it may narrow, and then needs confirming)."""
        old, new = field_def(self.field, self.old_schema), field_def(self.field, self.new_schema)
        change = storage_change(self.pack, self.entity, new, old)
        return AlterField(
            self.pack,
            self.entity,
            self.table,
            self.field,
            self.new_schema,
            self.old_schema,
            "narrow" if change == "narrow" else "widen",
        )

    def describe(self) -> str:
        """Return e.g. "Alter field sample.project.name (string VARCHAR(100) → text TEXT)"."""
        kinds = self.old_schema["x-formwork"]["type"], self.new_schema["x-formwork"]["type"]
        types = [(str(o.type), str(n.type)) for o, n, _ in self._pairs()]
        shown = ", ".join(f"{kinds[0]} {o} → {kinds[1]} {n}" for o, n in types)
        note = "; values that do not fit are converted" if self.destructive else ""
        return f"Alter field {self.key} ({shown}{note})"

    def losses(self, conn: sa.Connection) -> list[str]:
        """Return how many values would be truncated, rounded or cleared."""
        if not self.destructive:
            return []
        found = []
        for old, _, conversion in self._pairs():
            if not has_column(conn, self.table, old.name):
                continue
            condition = conversion.lost(old.name, conn.dialect.name)
            count = count_rows(conn, self.table, condition) if condition is not None else 0
            if count:
                found.append(f"alter field {self.key}: {conversion.loss_phrase(count)}")
        return found


def _converter(conversion: Conversion) -> Callable[[str], Any]:
    """Return the function giving a column's new value when a SQLite table is refilled."""
    return lambda name: conversion.value(name, "sqlite")


def _compiled(ctx: OperationContext, expression: Any) -> str:
    """Return the SQL text of an expression, as PostgreSQL's `USING` clause needs it."""
    compiled = expression.compile(
        dialect=ctx.connection.dialect, compile_kwargs={"literal_binds": True}
    )
    return str(compiled)
