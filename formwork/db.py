"""Database engine and the per-request session."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import Session, sessionmaker

from formwork.runtime.models import Base

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    """Create the platform's own tables when missing."""
    from formwork.runtime.workflow import models as _workflow_models  # noqa: F401  (tables)

    Base.metadata.create_all(engine)


def init_app(app: Flask) -> None:
    """Create the engine and session factory, and close the request's session at the end."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["formwork.engine"] = engine
    app.extensions["formwork.sessions"] = sessionmaker(engine, expire_on_commit=False)
    app.extensions["formwork.write_sessions"] = sessionmaker(
        for_writing(engine), expire_on_commit=False
    )
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """Return the current request's session, opening it on first use."""
    if "db_session" not in g:
        writes = not has_request_context() or request.method not in SAFE_METHODS
        factory = "formwork.write_sessions" if writes else "formwork.sessions"
        g.db_session = current_app.extensions[factory]()
    return g.db_session  # type: ignore[no-any-return]


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
