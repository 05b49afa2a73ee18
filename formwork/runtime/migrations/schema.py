"""Schema helpers shared by the operations: columns of a stored field, names, look-ups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import conv

from formwork.runtime.definitions import EntityDef, FieldDef
from formwork.runtime.fields import get_field_type
from formwork.runtime.migrations.errors import MigrationError

DUPLICATES_SHOWN = 5
Reference = tuple[str, str, str, str | None]  # column, referenced table and column, ondelete


def field_def(name: str, schema: Mapping[str, Any]) -> FieldDef:
    """Return a FieldDef rebuilt from a stored property schema."""
    return FieldDef(name, get_field_type(schema["x-formwork"]["type"]), schema)


def stub_entity(pack: str, name: str) -> EntityDef:
    """Return an EntityDef holding only what field types need to build columns."""
    return EntityDef(pack, name, {"x-formwork": {"name": name}})


def field_columns(pack: str, entity: str, field: FieldDef) -> list[sa.Column[Any]]:
    """Return fresh columns of a field without index or unique flags and without foreign keys.

    Indexes, unique constraints and foreign keys are created as separate, named steps so that
    each can be added and dropped alike on SQLite and PostgreSQL.
    """
    columns = []
    for column in field.kind.columns(field, stub_entity(pack, entity)):
        columns.append(sa.Column(column.name, column.type, nullable=True))
    return columns


def foreign_keys(pack: str, entity: str, field: FieldDef) -> list[Reference]:
    """Return (column, referenced table, referenced column, ondelete) for each foreign key."""
    found = []
    for column in field.kind.columns(field, stub_entity(pack, entity)):
        for fk in column.foreign_keys:
            table, remote = fk.target_fullname.rsplit(".", 1)
            found.append((column.name, table, remote, fk.ondelete))
    return sorted(found)


def constraint_name(kind: str, table: str, column: str) -> conv:
    """Return the conventional name (`ix`, `uq`, `fk`) as `storage.NAMING` spells it."""
    # `conv` marks the name final and lets SQLAlchemy shorten it past 63 characters, exactly as
    # the naming convention does for tables built by `storage`.
    return conv(f"{kind}_{table}_{column}")


def has_table(conn: sa.Connection, table: str) -> bool:
    """Return True when the table exists."""
    return sa.inspect(conn).has_table(table)


def has_column(conn: sa.Connection, table: str, column: str) -> bool:
    """Return True when the table exists and has the column."""
    if not has_table(conn, table):
        return False
    return any(c["name"] == column for c in sa.inspect(conn).get_columns(table))


def index_names(conn: sa.Connection, table: str, column: str, unique: bool) -> list[str]:
    """Return names of the plain (or unique) indexes on exactly `column`."""
    found = []
    for index in sa.inspect(conn).get_indexes(table):
        if index.get("duplicates_constraint"):
            continue
        if index["column_names"] == [column] and bool(index["unique"]) == unique and index["name"]:
            found.append(index["name"])
    return found


def unique_names(conn: sa.Connection, table: str, column: str) -> list[str]:
    """Return names of the unique constraints on exactly `column` (conventional when unnamed)."""
    return [
        u["name"] or constraint_name("uq", table, column)
        for u in sa.inspect(conn).get_unique_constraints(table)
        if u["column_names"] == [column]
    ]


def foreign_key_names(conn: sa.Connection, table: str, column: str) -> list[str]:
    """Return names of the foreign keys on exactly `column` (conventional when unnamed)."""
    return [
        fk["name"] or constraint_name("fk", table, column)
        for fk in sa.inspect(conn).get_foreign_keys(table)
        if fk["constrained_columns"] == [column]
    ]


def referencing_tables(conn: sa.Connection, table: str) -> list[str]:
    """Return `other.column` for every foreign key of another table that points at `table`."""
    inspector = sa.inspect(conn)
    found = []
    for other in sorted(inspector.get_table_names()):
        if other == table:
            continue
        for fk in inspector.get_foreign_keys(other):
            if fk["referred_table"] == table:
                found.append(f"{other}.{', '.join(fk['constrained_columns'])}")
    return found


def count_rows(conn: sa.Connection, table: str, where: Any = None) -> int:
    """Return how many rows of `table` match `where` (all rows when None)."""
    query = sa.select(sa.func.count()).select_from(sa.table(table))
    if where is not None:
        query = query.where(where)
    return int(conn.execute(query).scalar_one())


def check_no_duplicates(
    conn: sa.Connection, table: str, column: str | Sequence[str], label: str
) -> None:
    """Raise MigrationError naming the duplicate values when `column` (or columns) is not unique.

    Rows with an empty value in any of the columns are left out: neither database counts them
    as duplicates in a unique index.
    """
    names = [column] if isinstance(column, str) else list(column)
    cols: list[sa.ColumnClause[Any]] = [sa.column(name) for name in names]
    query = (
        sa.select(*cols, sa.func.count().label("n"))
        .select_from(sa.table(table))
        .where(*[col.is_not(None) for col in cols])
        .group_by(*cols)
        .having(sa.func.count() > 1)
        .order_by(*cols)
        .limit(DUPLICATES_SHOWN + 1)
    )
    rows = conn.execute(query).all()
    if not rows:
        return
    shown = ", ".join(f"{_values(row[:-1])} ({row[-1]} rows)" for row in rows[:DUPLICATES_SHOWN])
    more = ", …" if len(rows) > DUPLICATES_SHOWN else ""
    raise MigrationError(
        f"cannot make {label} unique: duplicate values {shown}{more}; "
        "fix or remove the duplicates first"
    )


def _values(values: Sequence[Any]) -> str:
    """Return one value as its repr, several as `(a, b)`."""
    if len(values) == 1:
        return repr(values[0])
    return f"({', '.join(repr(v) for v in values)})"


def index_by_name(conn: sa.Connection, table: str, name: str) -> dict[str, Any] | None:
    """Return the reflected index of `table` called `name`, or None."""
    for index in sa.inspect(conn).get_indexes(table):
        if index["name"] == name:
            return dict(index)
    return None


def index_on(conn: sa.Connection, table: str, columns: Sequence[str], unique: bool) -> str | None:
    """Return the name of an index on exactly `columns` (in order) and of that uniqueness."""
    for index in sa.inspect(conn).get_indexes(table):
        same = list(index["column_names"]) == list(columns) and bool(index["unique"]) == unique
        if same and index["name"] and not index.get("duplicates_constraint"):
            return str(index["name"])
    return None


def covering_index_names(conn: sa.Connection, table: str, column: str) -> list[str]:
    """Return names of the indexes over several columns, `column` among them."""
    return [
        str(index["name"])
        for index in sa.inspect(conn).get_indexes(table)
        if len(index["column_names"]) > 1 and column in index["column_names"] and index["name"]
    ]


def rename_constraints(ctx: Any, table: str, old: str, new: str, *, stem: bool) -> None:
    """Rename the indexes and constraints of `table` named after `old` to be named after `new`.

    Conventional names are `ix_<table>_<column>`, `uq_…`, `fk_…` and `pk_<table>`. With `stem`,
    `old` is a table name and every name that starts with it is renamed; otherwise `old` is
    `<table>_<column>` and only exact names are. Index names are global on both databases, so a
    later table or column reusing the old name would otherwise collide with them.
    """
    conn: sa.Connection = ctx.connection
    inspector = sa.inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    for index in inspector.get_indexes(table):
        renamed = _renamed(index["name"], old, new, stem)
        if not renamed or index.get("duplicates_constraint"):
            continue
        if ctx.is_sqlite:  # SQLite cannot rename an index
            ctx.op.drop_index(index["name"], table_name=table)
            ctx.op.create_index(renamed, table, index["column_names"], unique=index["unique"])
        else:
            ctx.op.execute(f"ALTER INDEX {quote(str(index['name']))} RENAME TO {quote(renamed)}")
    if ctx.is_sqlite:
        return  # constraint names live inside the table's SQL and are local to it on SQLite
    constraints = [
        inspector.get_pk_constraint(table),
        *inspector.get_unique_constraints(table),
        *inspector.get_foreign_keys(table),
    ]
    for constraint in constraints:
        renamed = _renamed(constraint.get("name"), old, new, stem)
        if renamed:
            ctx.op.execute(
                f"ALTER TABLE {quote(table)} RENAME CONSTRAINT "
                f"{quote(str(constraint['name']))} TO {quote(renamed)}"
            )


def rename_sequence(ctx: Any, old_table: str, new_table: str) -> None:
    """Rename the id sequence PostgreSQL made for a table (nothing to do on SQLite)."""
    if ctx.is_sqlite:
        return
    query = sa.text("SELECT pg_get_serial_sequence(:table, 'id')")
    sequence = ctx.connection.execute(query, {"table": new_table}).scalar()
    if sequence and sequence.rsplit(".", 1)[-1].strip('"') == f"{old_table}_id_seq":
        quote = ctx.connection.dialect.identifier_preparer.quote
        ctx.op.execute(f"ALTER SEQUENCE {sequence} RENAME TO {quote(new_table + '_id_seq')}")


def _renamed(name: str | None, old: str, new: str, stem: bool) -> str | None:
    if not name:
        return None
    for kind in ("ix", "uq", "fk", "pk"):
        prefix = f"{kind}_{old}"
        if name == prefix or (stem and name.startswith(prefix + "_")):
            return f"{kind}_{new}{name[len(prefix) :]}"
    return None
