"""Alter a table in batch mode; on SQLite, recreate it without losing referencing rows.

SQLite cannot change a column's type or drop a constrained column in place, so Alembic's batch
mode copies the table to a new one, drops the old one and renames the copy. The app runs SQLite
with `PRAGMA foreign_keys=ON`, and that pragma cannot be switched off inside the caller's
transaction (it is a no-op there). With foreign keys on, `DROP TABLE` first deletes every row,
and that delete fires the foreign-key actions of the tables that reference it:

* `ON DELETE RESTRICT` fails at once, and a plain (NO ACTION) reference counts a violation;
* `ON DELETE CASCADE` deletes the referencing rows (a day sheet's lines would vanish);
* `ON DELETE SET NULL` blanks the references.

What works inside the transaction is therefore: `PRAGMA defer_foreign_keys=ON` (RESTRICT then
behaves like a deferred constraint, checked at commit), copy the table and every table a cascade
would touch into temporary tables, empty the table, let Alembic recreate the now empty table,
insert the rows back (which settles the deferred violations, because the parents exist again
under the same ids) and put back the rows and references the cascades removed. Renaming a
filled copy into place does not work: the violations counted by the drop are never settled and
the commit fails. `PRAGMA foreign_key_check` then confirms every reference is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import BatchOperations

from formwork.runtime.migrations.context import OperationContext
from formwork.runtime.migrations.errors import MigrationError
from formwork.runtime.storage import NAMING

ColumnConversion = Callable[[str], Any]
HOLD_PREFIX = "_fw_hold_"


@dataclass
class _Held:
    """Tables copied aside for one recreate and what the cascades will do to them."""

    table: str
    deferred: int = 0
    deleted: list[str] = field(default_factory=list)
    nulled: list[tuple[str, str]] = field(default_factory=list)

    def tables(self) -> list[str]:
        """Return every table copied aside, the altered one first."""
        others = [t for t, _ in self.nulled if t != self.table and t not in self.deleted]
        return [self.table, *self.deleted, *dict.fromkeys(others)]


@contextmanager
def table_batch(
    ctx: OperationContext,
    table: str,
    *,
    recreate: bool,
    convert: Mapping[str, ColumnConversion] | None = None,
) -> Iterator[BatchOperations]:
    """Yield a batch for `table`; plain ALTERs on PostgreSQL, a safe recreate on SQLite.

    `convert` maps a column name to a function returning the SQL expression of its new value
    from the stored old one (SQLite only: PostgreSQL converts with `ALTER … USING`).
    """
    if not ctx.is_sqlite:
        with ctx.op.batch_alter_table(table, recreate="auto") as batch:
            yield batch
        return
    if not recreate:
        with ctx.op.batch_alter_table(table, recreate="never") as batch:
            yield batch
        return
    held = _hold(ctx.connection, table)
    with ctx.op.batch_alter_table(table, recreate="always", naming_convention=NAMING) as batch:
        yield batch
    _restore(ctx.connection, held, convert or {})


def _q(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _hold(conn: sa.Connection, table: str) -> _Held:
    held = _cascades(conn, table)
    held.deferred = int(conn.exec_driver_sql("PRAGMA defer_foreign_keys").scalar_one())
    conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
    for name in held.tables():
        # Only dialect-quoted table names go into this text, never values.
        hold, source = _q(conn, HOLD_PREFIX + name), _q(conn, name)
        conn.exec_driver_sql(f"CREATE TEMP TABLE {hold} AS SELECT * FROM {source}")  # noqa: S608
    conn.execute(sa.delete(sa.table(table)))
    return held


def _references(conn: sa.Connection) -> list[tuple[str, str, str, str]]:
    """Return (child table, child column, parent table, on delete) for every foreign key."""
    names = conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).scalars()
    found = []
    for child in list(names):
        for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list({_q(conn, child)})").mappings():
            found.append((child, row["from"], row["table"], str(row["on_delete"]).upper()))
    return found


def _cascades(conn: sa.Connection, table: str) -> _Held:
    """Return the tables whose rows a delete from `table` would remove or blank, in order."""
    references = _references(conn)
    held = _Held(table)
    queue = [table]
    while queue:
        parent = queue.pop(0)
        for child, column, target, action in references:
            if target != parent:
                continue
            if action == "CASCADE" and child != table and child not in held.deleted:
                held.deleted.append(child)
                queue.append(child)
            elif action in ("SET NULL", "SET DEFAULT"):
                held.nulled.append((child, column))
    return held


def _columns(conn: sa.Connection, table: str, schema: str = "main") -> list[str]:
    rows = conn.exec_driver_sql(f"PRAGMA {schema}.table_info({_q(conn, table)})").mappings()
    return [row["name"] for row in rows]


def _primary_key(conn: sa.Connection, table: str) -> list[str]:
    rows = conn.exec_driver_sql(f"PRAGMA main.table_info({_q(conn, table)})").mappings()
    key = sorted((row["pk"], row["name"]) for row in rows if row["pk"])
    if not key:
        raise MigrationError(f"cannot recreate a table referenced by {table}: it has no key")
    return [name for _, name in key]


def _restore(conn: sa.Connection, held: _Held, convert: Mapping[str, ColumnConversion]) -> None:
    _refill(conn, held.table, convert)
    for table in held.deleted:
        _reinsert(conn, table)
    for table, column in held.nulled:
        _reset_column(conn, table, column)
    for table in held.tables():
        conn.exec_driver_sql(f"DROP TABLE temp.{_q(conn, HOLD_PREFIX + table)}")
    _check_references(conn, [held.table, *held.deleted])
    # Every reference holds again, so later statements of the caller's transaction may go back
    # to immediate checks (SQLite resets the pragma at commit anyway).
    conn.exec_driver_sql(f"PRAGMA defer_foreign_keys={'ON' if held.deferred else 'OFF'}")


def _refill(conn: sa.Connection, table: str, convert: Mapping[str, ColumnConversion]) -> None:
    """Insert the held rows into the recreated table, converting the changed columns."""
    old = set(_columns(conn, HOLD_PREFIX + table, "temp"))
    names = [c for c in _columns(conn, table) if c in old]
    values = [convert[c](c) if c in convert else sa.column(c) for c in names]
    source = sa.select(*values).select_from(sa.table(HOLD_PREFIX + table, schema="temp"))
    target = sa.table(table, *[sa.column(c) for c in names])
    conn.execute(sa.insert(target).from_select(names, source))


def _reinsert(conn: sa.Connection, table: str) -> None:
    """Insert back the rows a cascade deleted (rows still present are left alone)."""
    names = _columns(conn, table)
    key = _primary_key(conn, table)
    hold = sa.table(HOLD_PREFIX + table, *[sa.column(c) for c in names], schema="temp")
    live = sa.table(table, *[sa.column(c) for c in names])
    present = sa.select(sa.literal(1)).where(*[live.c[k] == hold.c[k] for k in key])
    source = sa.select(*[hold.c[c] for c in names]).where(~present.exists())
    conn.execute(sa.insert(live).from_select(names, source))


def _reset_column(conn: sa.Connection, table: str, column: str) -> None:
    """Put back the references a SET NULL (or SET DEFAULT) action overwrote."""
    key = _primary_key(conn, table)
    hold = sa.table(HOLD_PREFIX + table, *[sa.column(c) for c in {*key, column}], schema="temp")
    live = sa.table(table, *[sa.column(c) for c in {*key, column}])
    match = sa.and_(*[hold.c[k] == live.c[k] for k in key])
    old = sa.select(hold.c[column]).where(match).scalar_subquery()
    held_row = sa.select(sa.literal(1)).where(match).exists()
    conn.execute(sa.update(live).values({column: old}).where(held_row))


def _check_references(conn: sa.Connection, tables: list[str]) -> None:
    children = {child for child, _, parent, _ in _references(conn) if parent in tables}
    problems = []
    for table in sorted(children | set(tables)):
        rows = conn.exec_driver_sql(f"PRAGMA foreign_key_check({_q(conn, table)})").all()
        problems += [f"{row[0]} row {row[1]} → {row[2]}" for row in rows]
    if problems:
        raise MigrationError("recreating a table broke references: " + "; ".join(problems[:5]))
