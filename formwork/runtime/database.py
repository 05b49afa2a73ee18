"""The database engine (SQLite pragmas, write transactions) and the platform's own tables."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from formwork.runtime.models import Base


def make_engine(url: str) -> sa.Engine:
    """Return an engine; SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLAlchemy, not the sqlite3 module, opens transactions (see _sqlite_begin): sqlite3
    # begins one only before INSERT/UPDATE/DELETE, so DDL or a SAVEPOINT sent first would
    # run outside it and survive a rollback.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: sa.Connection) -> None:
    # A transaction that will write takes the write lock up front (IMMEDIATE): one that
    # read first and wrote later could otherwise fail at once with "database is locked"
    # when another writer got there between its read and its write. Readers stay DEFERRED
    # so they never queue behind writers (WAL).
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def for_writing(engine: sa.Engine) -> sa.Engine:
    """Return the engine whose SQLite transactions take the write lock when they begin."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def create_system_tables(engine: sa.Engine) -> None:
    """Create the platform's own tables when missing, and bring tables an older Formwork
    made up to date: missing columns (nullable or with a default) and indexes are added,
    and a table whose unique constraints changed is rebuilt with its rows."""
    from formwork.runtime.workflow import models as _workflow_models  # noqa: F401  (tables)

    older = set(sa.inspect(engine).get_table_names())
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in older:  # tables made just now are up to date
                _upgrade_table(conn, table)


def _upgrade_table(conn: sa.Connection, table: sa.Table) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    inspector = sa.inspect(conn)
    if _stale_uniques(inspector, table):
        _rebuild(conn, table, {c["name"] for c in inspector.get_columns(table.name)})
        return
    existing = {c["name"] for c in inspector.get_columns(table.name)}
    operations = Operations(MigrationContext.configure(conn))
    for column in table.columns:
        if column.name in existing:
            continue
        if not column.nullable and column.server_default is None:
            raise RuntimeError(f"{table.name}.{column.name} needs a manual migration")
        operations.add_column(table.name, column._copy())
    indexes = {i["name"] for i in sa.inspect(conn).get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexes:
            index.create(conn)


def _stale_uniques(inspector: Any, table: sa.Table) -> bool:
    declared = {
        tuple(sorted(c.name for c in constraint.columns))
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    }
    declared |= {tuple(sorted(c.name for c in i.columns)) for i in table.indexes if i.unique}
    declared |= {(c.name,) for c in table.columns if c.unique}
    found = {tuple(sorted(u["column_names"])) for u in inspector.get_unique_constraints(table.name)}
    return bool(found - declared)


def _rebuild(conn: sa.Connection, table: sa.Table, old_columns: set[str]) -> None:
    # Small platform tables only (grants, settings): copy the rows, recreate, copy back.
    # A table other tables point to cannot be dropped and made again like this.
    referenced = [
        other.name
        for other in Base.metadata.sorted_tables
        if any(fk.column.table is table for fk in other.foreign_keys)
    ]
    if referenced:
        raise RuntimeError(f"{table.name} changed its unique constraints; migrate it by hand")
    kept = [c for c in table.columns if c.name in old_columns]
    rows = [dict(r) for r in conn.execute(sa.select(*kept)).mappings()]
    table.drop(conn)
    table.create(conn)
    if rows:
        conn.execute(sa.insert(table), rows)
    if conn.dialect.name == "postgresql" and "id" in table.c and rows:
        highest = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        conn.execute(sa.select(sa.func.setval(sequence, highest)))
