"""The context every schema operation runs in: one connection, one transaction."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from formwork.runtime.storage import new_metadata


@dataclass(frozen=True)
class OperationContext:
    """Hold the caller's connection and the Alembic `Operations` built on it."""

    connection: sa.Connection
    op: Operations

    @property
    def dialect(self) -> str:
        """Return the database dialect name (`sqlite`, `postgresql`)."""
        return self.connection.dialect.name

    @property
    def is_sqlite(self) -> bool:
        """Return True on SQLite, where most ALTERs become a table recreate."""
        return self.dialect == "sqlite"


def build_context(conn: sa.Connection) -> OperationContext:
    """Return an operation context on `conn`, inside a real database transaction."""
    begin_transaction(conn)
    # The target metadata only lends its naming convention, so constraints made here are named
    # like the ones `storage` makes (`uq_<table>_<column>`, `fk_…`, `ix_…`).
    migration = MigrationContext.configure(conn, opts={"target_metadata": new_metadata()})
    return OperationContext(conn, Operations(migration))


def begin_transaction(conn: sa.Connection) -> None:
    """Make sure DDL on `conn` is transactional (SQLite's Python driver needs a BEGIN)."""
    if conn.dialect.name != "sqlite":
        return
    # SQLAlchemy's autobegin is only logical here: Python's sqlite3 module (legacy transaction
    # control, Python < 3.12) sends BEGIN before INSERT/UPDATE/DELETE only, so DDL issued first
    # would be autocommitted and survive a rollback. An explicit BEGIN puts it in the transaction.
    # SQLAlchemy's own transaction is begun first, because an app using SQLAlchemy's pysqlite
    # recipe (driver autocommit plus BEGIN in the "begin" event) has then begun the real one.
    if not conn.in_transaction():
        conn.begin()
    raw = conn.connection.dbapi_connection
    if raw is not None and not getattr(raw, "in_transaction", True):
        conn.exec_driver_sql("BEGIN")
